#!/usr/bin/env python
"""inklabel's command line: `python manage.py --help` lists the commands, `python manage.py CMD --help` explains one."""
import click
from flask.cli import FlaskGroup


# Commands that use neither the HTTP API nor Flask-Migrate: their app is built without both (most of the start-up)
LIGHT_COMMANDS = frozenset({"init", "create-user", "create-token", "import", "export", "jobs-list", "jobs-cancel",
                            "jobs-reap", "ready", "scores", "promote"})


def create_app():
    from backend import create_app as factory  # the app (and what it imports) only when a command runs
    from backend.config import SetupError

    try:
        return factory(full=_running_command() not in LIGHT_COMMANDS)
    except SetupError as err:
        raise click.ClickException(str(err)) from None


def _running_command() -> str | None:
    """The name of the top-level command being run (`db` for `db upgrade`), if any."""
    ctx = click.get_current_context(silent=True)
    while ctx is not None and ctx.parent is not None and ctx.parent.parent is not None:
        ctx = ctx.parent
    return ctx.info_name if ctx is not None and ctx.parent is not None else None


class InklabelCli(FlaskGroup):
    """Finds inklabel's commands without building the app: `--help` and `CMD --help` import only the command
    modules; running a command builds the app (its `with_appcontext`). Commands that only an app adds (Flask-Migrate's
    `db`) are still found, by building it."""

    _own: dict | None = None
    _listing = False  # while --help lists the commands

    def _commands(self) -> dict:
        if self._own is None:
            from backend.commands import all_commands

            self._own = {command.name: command for command in all_commands()}
        return self._own

    def get_command(self, ctx, name):
        command = self._commands().get(name) or click.Group.get_command(self, ctx, name)
        if command is None and self._listing and name == "db":  # its line in the list, without importing Alembic
            return click.Command("db", help="Perform database migrations.")
        return command or super().get_command(ctx, name)

    def format_commands(self, ctx, formatter):
        self._listing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False

    def list_commands(self, ctx):
        return sorted(set(click.Group.list_commands(self, ctx)) | set(self._commands()) | {"db"})


cli = InklabelCli(create_app=create_app, add_default_commands=True,
                  help="inklabel: annotation tool for tattoo photos. The workspace is INKLABEL_WORKSPACE (default annotations/).")

if __name__ == "__main__":
    cli()
