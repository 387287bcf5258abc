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


def test_schema_check_reads_the_head_from_the_migration_files_and_upgrades_only_when_behind(tmp_path):
    from alembic.script import ScriptDirectory

    from backend.db.migrate import head_revisions, init_db, schema_at_head

    app = _migrated_app(tmp_path, f"sqlite:///{tmp_path / 'h.db'}")
    with app.app_context():
        assert head_revisions() == set(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads())
        assert not schema_at_head(db.engine)  # a new database: no alembic_version yet
        init_db(app)
        assert schema_at_head(db.engine) and _diff(db.engine) == []
        downgrade(directory=str(MIGRATIONS_DIR), revision="-1")  # as if made by the previous release
        assert not schema_at_head(db.engine)
        init_db(app)
        assert schema_at_head(db.engine)
