#!/usr/bin/env python
"""inklabel's command line: `python manage.py --help` lists the commands, `python manage.py CMD --help` explains one."""
from flask.cli import FlaskGroup

from backend import create_app

cli = FlaskGroup(create_app=create_app, add_default_commands=True,
                 help="inklabel: annotation tool for tattoo photos. The workspace is INKLABEL_WORKSPACE (default annotations/).")

if __name__ == "__main__":
    cli()
