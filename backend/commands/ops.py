"""CLI commands: ops."""
COMMANDS = []
