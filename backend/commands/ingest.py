"""CLI commands: ingest."""
COMMANDS = []
