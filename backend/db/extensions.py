"""Extensions created unbound and joined to the app with init_app (the flaskr habit)."""
from flask_sqlalchemy import SQLAlchemy

from backend.db.models import Base

db = SQLAlchemy(model_class=Base)

