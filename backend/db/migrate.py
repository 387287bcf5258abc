"""Schema creation and upgrades: Alembic (Flask-Migrate) when migrations exist, else create_all."""
from __future__ import annotations

from pathlib import Path

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def has_migrations() -> bool:
    return any((MIGRATIONS_DIR / "versions").glob("*.py"))


def init_db(app) -> None:
    """Bring the database to the current schema: Alembic upgrade when migrations exist, else create_all."""
    from backend.db.extensions import db

    with app.app_context():
        if has_migrations() and not app.config.get("SCHEMA_CREATE_ALL"):
            from flask_migrate import upgrade

            upgrade(directory=str(MIGRATIONS_DIR))
        else:
            db.create_all()
