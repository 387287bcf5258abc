"""`celery -A backend.serve.celery_worker:celery worker -Q cpu`: the Celery app for celery's own CLI (broker from
INKLABEL_BROKER_URL), whose worker processes build the web app for their jobs. `python manage.py worker` is the
same worker with inklabel's options."""
import os

from backend.jobs.celery_app import get_celery, set_app_factory
from backend.web.app import create_app

set_app_factory(create_app)
celery = get_celery(os.environ.get("INKLABEL_BROKER_URL") or "memory://")
