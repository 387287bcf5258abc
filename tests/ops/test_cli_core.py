"""The core CLI: init, create-user, create-token, and the secret key rules."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend import create_app

ROOT = Path(__file__).resolve().parents[2]


def _run(args, workspace, input_text=None, env_extra=None):
    env = dict(os.environ, INKLABEL_WORKSPACE=str(workspace))
    env.pop("DATABASE_URL", None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, input=input_text,
                          capture_output=True, text=True, timeout=120)


def test_init_create_user_and_token_on_a_new_workspace(tmp_path):
    workspace = tmp_path / "ws"
    result = _run(["create-user", "alice", "--role", "reviewer", "--password", "long-password"], workspace)
    assert result.returncode == 0, result.stderr
    assert (workspace / "secret_key").stat().st_size >= 32
    assert (workspace / "inklabel.db").exists() and (workspace / "taxonomy.json").exists()
    token = _run(["create-token", "alice"], workspace)
    assert token.returncode == 0, token.stderr
    assert token.stdout.strip().startswith("ink_") and len(token.stdout.strip().splitlines()) == 1

    app = create_app({"WORKSPACE": str(workspace), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workspace / 'inklabel.db'}"})
    me = app.test_client().get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token.stdout.strip()}"})
    assert me.status_code == 200 and me.get_json()["user"]["role"] == "reviewer"


def test_password_prompt_and_bad_input(tmp_path):
    workspace = tmp_path / "ws"
    ok = _run(["create-user", "bob"], workspace, input_text="a-good-password\na-good-password\n")
    assert ok.returncode == 0, ok.stderr
    again = _run(["create-user", "bob", "--password", "another-password"], workspace)
    assert again.returncode != 0 and "exists" in again.stderr
    short = _run(["create-user", "carol", "--password", "short"], workspace)
    assert short.returncode != 0 and "8 characters" in short.stderr
    missing = _run(["create-token", "nobody"], workspace)
    assert missing.returncode != 0 and "no user" in missing.stderr


def test_every_command_explains_itself(tmp_path):
    for command in ("init", "create-user", "create-token", "serve", "import"):
        result = _run([command, "--help"], tmp_path / "ws")
        assert result.returncode == 0 and len(result.stdout) > 100, command


def test_refuses_to_start_without_a_usable_secret_key(tmp_path, monkeypatch):
    monkeypatch.setenv("INKLABEL_SECRET_KEY", "")
    with pytest.raises(RuntimeError, match="secret key"):
        create_app({"WORKSPACE": str(tmp_path / "ws")})
    monkeypatch.setenv("INKLABEL_SECRET_KEY", "changeme")
    with pytest.raises(RuntimeError, match="secret key"):
        create_app({"WORKSPACE": str(tmp_path / "ws")})
    # on the command line: the reason and what to do, without a traceback
    result = _run(["init"], tmp_path / "ws", env_extra={"INKLABEL_SECRET_KEY": "short"})
    assert result.returncode == 1 and "Error: No usable secret key" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_deleted_default_taxonomy_is_explained(tmp_path, monkeypatch):
    """`rm -rf annotations` to start the demo over also deletes the checked-in default taxonomy: a new workspace
    then says how to get it back instead of failing on its first saved document."""
    from backend.config import SetupError
    from backend.core import taxonomy

    monkeypatch.setattr(taxonomy, "DEFAULT_TAXONOMY", tmp_path / "annotations" / "taxonomy.json")
    with pytest.raises(SetupError, match="git checkout -- annotations/taxonomy.json"):
        taxonomy.ensure_taxonomy(tmp_path / "ws")
    assert not (tmp_path / "ws" / "taxonomy.json").exists()


def test_secret_key_is_generated_once(tmp_path):
    ws = tmp_path / "ws"
    first = create_app({"WORKSPACE": str(ws)}).config["SECRET_KEY"]
    second = create_app({"WORKSPACE": str(ws)}).config["SECRET_KEY"]
    assert first == second and len(first) >= 32


def test_commands_without_models_leave_the_heavy_parts_unimported(tmp_path):
    """`--help` and a command that runs on an up-to-date workspace import neither Alembic, the HTTP API, numpy,
    pydantic nor torch (start-up time: see benchmarks/README.md)."""
    workspace = tmp_path / "ws"
    assert _run(["init"], workspace).returncode == 0
    heavy = ("alembic", "flask_migrate", "backend.web.api", "numpy", "pydantic", "torch", "PIL")
    probe = ("import runpy, sys\nsys.argv = ['manage.py'] + sys.argv[1:]\ntry:\n    runpy.run_path('manage.py', "
             f"run_name='__main__')\nexcept SystemExit:\n    pass\nprint([m for m in {heavy!r} if m in sys.modules])")
    for args in (["--help"], ["jobs-list"], ["init"], ["export", "--help"]):
        env = dict(os.environ, INKLABEL_WORKSPACE=str(workspace))
        env.pop("DATABASE_URL", None)
        done = subprocess.run([sys.executable, "-c", probe, *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "[]", (args, done.stdout[-500:])
