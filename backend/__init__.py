"""inklabel: annotation tool and labelling backend for tattoo photos.

`create_app(config=None)` builds the app with its command line: the web app of backend/web/app.py (`config`
overrides settings read from the environment) plus the `manage.py` commands on `app.cli`. Everything is imported
on first use, so importing `backend.core`, `backend.ml`, ... does not import Flask.
"""
from __future__ import annotations


def create_app(config: dict | None = None, full: bool = True):
    """`full=False` leaves out the HTTP API and Flask-Migrate (most of a command's start-up): for the commands that
    use neither (manage.py's LIGHT_COMMANDS)."""
    from backend.commands import register_commands
    from backend.web.app import create_app as create_web_app

    app = create_web_app(config, full=full)
    register_commands(app)
    return app


def __getattr__(name: str):
    if name == "ensure_workspace":
        from backend.web.app import ensure_workspace

        return ensure_workspace
    raise AttributeError(f"module 'backend' has no attribute {name!r}")
