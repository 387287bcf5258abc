"""Running the app in production: the WSGI entry point, gunicorn settings and worker, per-request limits, warm-up."""
