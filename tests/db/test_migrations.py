"""Alembic migrations build an empty database to exactly the models' schema (SQLite and PostgreSQL)."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from backend import create_app
from backend.db.migrate import MIGRATIONS_DIR, has_migrations
from backend.db.extensions import db
from backend.db.models import Base


def _diff(engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        return compare_metadata(ctx, Base.metadata)


def _migrated_app(tmp_path, url):
    return create_app({"TESTING": True, "WORKSPACE": str(tmp_path / "ws"), "SQLALCHEMY_DATABASE_URI": url})


def test_migrations_exist():
    assert has_migrations(), "migrations/versions is empty: run `python manage.py db migrate`"


def test_upgrade_builds_the_model_schema_on_sqlite(tmp_path):
    app = _migrated_app(tmp_path, f"sqlite:///{tmp_path / 'm.db'}")
    with app.app_context():
        upgrade(directory=str(MIGRATIONS_DIR))
        assert _diff(db.engine) == []
        downgrade(directory=str(MIGRATIONS_DIR), revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}


def test_upgrade_builds_the_model_schema_on_postgresql(tmp_path, fresh_pg_database):
    app = _migrated_app(tmp_path, fresh_pg_database)
    with app.app_context():
        upgrade(directory=str(MIGRATIONS_DIR))
        assert _diff(db.engine) == []
        db.engine.dispose()
