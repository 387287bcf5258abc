"""WSGI entry point for gunicorn: `gunicorn -c python:backend.serve.gunicorn_conf backend.serve.wsgi:app`.

Settings come from the environment (DATABASE_URL, INKLABEL_WORKSPACE, INKLABEL_BROKER_URL, ...), as for
`manage.py`. The schema is not touched here: run `python manage.py init` once per deploy (the Docker image's
entrypoint does) so that several workers never race to migrate.
"""
from backend.web.app import create_app

app = create_app()
