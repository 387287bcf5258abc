"""The web layer: the app factory, HTTP errors, request authentication, observability and the API blueprints."""
