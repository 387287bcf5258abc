"""CLI commands: ml."""
COMMANDS = []
