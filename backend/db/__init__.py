"""Persistence: the data model, the engine (SQLite pragmas, the SQLite writer queue, migrations) and prepared statements."""
