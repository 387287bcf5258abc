"""Extensions created unbound and joined to the app with init_app (the flaskr habit)."""
from flask_sqlalchemy import SQLAlchemy

from backend.db.models import Base

db = SQLAlchemy(model_class=Base)


def init_migrate(app) -> None:
    """Join Flask-Migrate to the app (for `manage.py db` and schema upgrades) unless it is already. It imports Alembic
    (~0.3 s), so commands that need neither build their app without it (create_app's `full`)."""
    if "migrate" not in app.extensions:
        import logging

        # Alembic logs each plugin it sets up at import (INFO), now after create_app has configured logging
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
        from flask_migrate import Migrate

        from backend.db.engine import MIGRATIONS_DIR

        Migrate(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True, compare_type=True)
