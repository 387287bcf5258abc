"""CLI commands: init, create-user, create-token, serve."""
from __future__ import annotations

import os
import signal
import sys

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from backend.db.migrate import init_db
from backend.db.extensions import db
from backend.db.models import ROLES, User


def prepare_workspace() -> None:
    """Every command calls this first: a new workspace gets its folders, key, taxonomy and schema."""
    init_db(current_app._get_current_object())


@click.command("init")
@with_appcontext
def init_command():
    """Create or upgrade the workspace: folders, secret key, taxonomy and database schema.

    The workspace is INKLABEL_WORKSPACE (default annotations/); the database is DATABASE_URL (default SQLite in
    the workspace). Safe to run again: it only adds what is missing and applies new migrations.
    """
    prepare_workspace()
    click.echo(f"workspace ready: {current_app.config['WORKSPACE']}")


@click.command("create-user")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), default="annotator", show_default=True,
              help="annotators label; reviewers also accept/reject; admins also manage users, exports and models")
@click.option("--password", help="for scripts; without it you are asked (twice, hidden)")
@with_appcontext
def create_user_command(username, role, password):
    """Create a user who can log in to the browser tool."""
    from backend.web.auth import create_user

    prepare_workspace()
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_user(username, password, role)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"created {user.role} {user.username!r}", err=True)


@click.command("create-token")
@click.argument("username")
@click.option("--name", default="", help="a label to recognise the token by in listings")
@with_appcontext
def create_token_command(username, name):
    """Print a new API token for USERNAME (only the token on stdout).

    Scripts send it as `Authorization: Bearer <token>`. It is stored hashed: keep it, it cannot be shown again.
    """
    from backend.web.auth import create_token

    prepare_workspace()
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.ClickException(f"no user {username!r}; create one with `manage.py create-user {username}`")
    click.echo(create_token(user, name))


def public_url(host: str, port: int) -> str:
    return f"http://{'localhost' if host in ('0.0.0.0', '127.0.0.1', '::', '::1') else host}:{port}/"


def bind_threaded_server(app, host: str, port: int):
    """Bind the listening socket now, so the URL printed after this answers as soon as serving starts."""
    from werkzeug.serving import make_server

    try:
        return make_server(host, port, app, threaded=True)
    except OSError as err:
        raise click.ClickException(f"cannot listen on {host}:{port} ({err.strerror or err}); another program may "
                                   "use that port: pick a free one with --port") from None


def serve_until_interrupted(server) -> None:
    """Serve in this process until Ctrl+C or SIGTERM; request threads are daemons, so nothing is left running."""
    def stop(signum, frame):
        raise KeyboardInterrupt

    # SIGINT too: a process started in the background of a script inherits SIGINT ignored
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.serve_forever()  # werkzeug's returns on KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    finally:
        click.echo("\ninklabel: stopped", err=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.server_close()


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, envvar="INKLABEL_HOST",
              help="address to listen on (0.0.0.0 for all) [INKLABEL_HOST]")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535), envvar="INKLABEL_PORT",
              help="port to listen on [INKLABEL_PORT]")
@click.option("--prod", "mode", flag_value="prod",
              help="gunicorn with several worker processes and the settings in backend/serve/gunicorn_conf.py: for a "
                   "server that a team shares")
@click.option("--dev", "mode", flag_value="dev", default=True,
              help="one process with a thread per request (the default): for one person or a few on a laptop")
@with_appcontext
def serve_command(host, port, mode):
    """Start the annotation tool and print its URL; Ctrl+C stops it.

    \b
    By default it runs in this one process with a thread per request, which is
    enough for a few people. `--prod` runs gunicorn (several processes, request
    time limits, graceful restarts) for a shared server; see docs/operations.md.
    """
    prepare_workspace()
    app = current_app._get_current_object()
    users = db.session.scalar(select(db.func.count(User.id)))
    db.session.remove()
    server = bind_threaded_server(app, host, port) if mode != "prod" else None
    port = server.server_port if server else port  # --port 0: the port the system chose
    click.echo(f"inklabel: open {public_url(host, port)}")
    if not users:
        click.echo("No users yet: create one with `python manage.py create-user NAME --role admin`.")
    else:
        click.echo("Log in with a user made by `python manage.py create-user` (or the demo login `manage.py demo` printed).")
    sys.stdout.flush()
    if mode == "prod":
        from backend.serve import PROCESS_ENV

        env = {**PROCESS_ENV, **os.environ, "INKLABEL_WORKSPACE": app.config["WORKSPACE"]}
        args = [sys.executable, "-m", "gunicorn", "-c", "python:backend.serve.gunicorn_conf", "-b", f"{host}:{port}", "backend.serve.wsgi:app"]
        os.execvpe(args[0], args, env)
    from backend.serve.warmup import start_model_warmup

    start_model_warmup(app)
    serve_until_interrupted(server)


COMMANDS = [init_command, create_user_command, create_token_command, serve_command]
