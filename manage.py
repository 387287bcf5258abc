#!/usr/bin/env python
"""inklabel's command line: `python manage.py --help` lists the commands, `python manage.py CMD --help` explains one."""
import click
from flask.cli import FlaskGroup


def create_app():
    from backend import create_app as factory  # the app (and what it imports) only when a command runs

    return factory()


class InklabelCli(FlaskGroup):
    """Finds inklabel's commands without building the app: `--help` and `CMD --help` import only the command
    modules; running a command builds the app (its `with_appcontext`). Commands that only an app adds (Flask-Migrate's
    `db`) are still found, by building it."""

    _own: dict | None = None

    def _commands(self) -> dict:
        if self._own is None:
            from backend.commands import all_commands

            self._own = {command.name: command for command in all_commands()}
        return self._own

    def get_command(self, ctx, name):
        return self._commands().get(name) or super().get_command(ctx, name)

    def list_commands(self, ctx):
        return sorted(set(click.Group.list_commands(self, ctx)) | set(self._commands()) | {"db"})


cli = InklabelCli(create_app=create_app, add_default_commands=True,
                  help="inklabel: annotation tool for tattoo photos. The workspace is INKLABEL_WORKSPACE (default annotations/).")

if __name__ == "__main__":
    cli()
