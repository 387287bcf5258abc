"""Schema creation and upgrades: Alembic (Flask-Migrate) when migrations exist, else create_all."""
from __future__ import annotations

import logging.config
import re
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def has_migrations() -> bool:
    return any((MIGRATIONS_DIR / "versions").glob("*.py"))


def init_migrate(app) -> None:
    """Join Flask-Migrate to the app (for `manage.py db` and schema upgrades) unless it is already. It imports Alembic
    (~0.3 s), so commands that need neither build their app without it (create_app's `full`)."""
    if "migrate" not in app.extensions:
        import logging

        # Alembic logs each plugin it sets up at import (INFO), now after create_app has configured logging
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
        from flask_migrate import Migrate

        from backend.db.extensions import db

        Migrate(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True, compare_type=True)


def head_revisions() -> set[str]:
    """The heads of the migrations folder, from each file's `revision` and `down_revision` lines (asking Alembic
    means importing it: ~0.3 s at every command)."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        for name, value in re.findall(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+)$", source, re.M):
            (revisions if name == "revision" else parents).update(re.findall(r"['\"]([^'\"]+)['\"]", value))
    return revisions - parents


def schema_at_head(engine) -> bool:
    """True when the database's alembic_version holds exactly the migrations' heads (one short read)."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from backend.db.engine import reads_only

    heads = head_revisions()
    try:
        with reads_only(), engine.connect() as connection:
            stored = set(connection.scalars(text("SELECT version_num FROM alembic_version")))
    except SQLAlchemyError:  # no alembic_version table: a new database
        return False
    return bool(heads) and stored == heads


def init_db(app) -> None:
    """Bring the database to the current schema: Alembic upgrade when migrations exist, else create_all. A database
    already at the head is only checked (no Alembic import)."""
    from backend.db.extensions import db

    with app.app_context():
        if has_migrations() and not app.config.get("SCHEMA_CREATE_ALL"):
            if schema_at_head(db.engine):
                # the logging setup the upgrade's env.py would have made (root at WARN): commands print the same
                logging.config.fileConfig(MIGRATIONS_DIR / "alembic.ini", disable_existing_loggers=False)
                return
            from flask_migrate import upgrade

            init_migrate(app)
            upgrade(directory=str(MIGRATIONS_DIR))
        else:
            db.create_all()
