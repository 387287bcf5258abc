"""Alembic migrations build an empty database to exactly the models' schema (SQLite and PostgreSQL)."""
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text

from backend import create_app
from backend.db.engine import MIGRATIONS_DIR, has_migrations
from backend.db.extensions import db
from backend.db.models import Base

from ..conftest import postgres_url


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


def test_upgrade_builds_the_model_schema_on_postgresql(tmp_path):
    base_url = postgres_url()
    if base_url is None:
        pytest.skip("PostgreSQL not reachable (TEST_DATABASE_URL)")
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS inklabel_migrations_test"))
        conn.execute(text("CREATE DATABASE inklabel_migrations_test"))
    url = base_url.rsplit("/", 1)[0] + "/inklabel_migrations_test"
    try:
        app = _migrated_app(tmp_path, url)
        with app.app_context():
            upgrade(directory=str(MIGRATIONS_DIR))
            assert _diff(db.engine) == []
            db.engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS inklabel_migrations_test WITH (FORCE)"))
        admin.dispose()


def test_schema_check_reads_the_head_from_the_migration_files_and_upgrades_only_when_behind(tmp_path):
    from alembic.script import ScriptDirectory

    from backend.db.engine import head_revisions, init_db, schema_at_head

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
