"""Persistence: the data model (models.py), the engine (engine.py: SQLite pragmas and transactions; its writer queue in
writer_queue.py), the JSON columns' codecs (codecs.py), schema creation and upgrades (migrate.py) and prepared
statements (prepared.py)."""
