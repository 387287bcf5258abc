"""The Flask CLI of the app (`python manage.py --help`): one module per area."""
from __future__ import annotations

from importlib import import_module

COMMAND_MODULES = ("core", "ingest", "datasets", "ml", "ops", "workflow")


def all_commands() -> list:
    """Every command object, from the command modules (no app needed: manage.py lists them before building one)."""
    return [command for name in COMMAND_MODULES
            for command in getattr(import_module(f"{__name__}.{name}"), "COMMANDS", ())]


def register_commands(app) -> None:
    for command in all_commands():
        app.cli.add_command(command)
