"""The Flask CLI of the app (`python manage.py --help`): one module per area."""
from __future__ import annotations

from importlib import import_module

COMMAND_MODULES = ("core", "ingest", "datasets", "ml", "ops", "workflow")


def register_commands(app) -> None:
    for name in COMMAND_MODULES:
        module = import_module(f"{__name__}.{name}")
        for command in getattr(module, "COMMANDS", ()):
            app.cli.add_command(command)
