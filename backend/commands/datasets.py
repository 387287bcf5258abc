"""CLI commands: datasets."""
COMMANDS = []
