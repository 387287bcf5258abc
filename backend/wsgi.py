"""WSGI entry point for gunicorn: `gunicorn -c python:backend.gunicorn_conf backend.wsgi:app`."""
from . import create_app

app = create_app()
