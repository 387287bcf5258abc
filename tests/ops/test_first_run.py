"""The README's commands, typed as a new user types them (issue 16).

The commands are read from README.md, so the README and this test cannot drift: the "Start" block runs exactly as
written (pip install and the full demo), then logs in with the login it printed, through the API and in Chromium;
the "Everyday use" block runs in order on a fresh workspace, with only its placeholders filled in (the photo and
dataset folders, the export id), `--password` for the command that would prompt, and a small size for the
two training commands (their 512 px default takes minutes on 2 cores; the demo test trains as the README says). Servers listen on a free port
through INKLABEL_PORT, and stop as a user stops them: Ctrl+C (SIGINT to the process group).
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import numpy as np
import pytest

from ..support.browser import CHROMIUM, CHROMIUM_ARGS, playwright_or_skip
from ..support.datasets import jpeg, smooth_image

from .conftest import ROOT, free_port, wait_for

README = ROOT / "README.md"
ARTIFACTS = ROOT / "test-artifacts"


def readme_commands(heading: str) -> list[str]:
    """The command lines of the first ```bash block under `## heading`, without their trailing comments."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(f"## {heading}"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [re.sub(r"\s{2,}#.*$", "", line).strip() for line in block.splitlines() if line.strip()]


class Typed:
    """A command line run through bash in the repository, as typed in a terminal, with its output collected."""

    def __init__(self, command: str, env: dict):
        self.command = command
        self.proc = subprocess.Popen(["bash", "-c", command], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match:
        def seen():
            if self.proc.poll() is not None and not self.reader.is_alive():
                raise AssertionError(f"`{self.command}` exited with {self.proc.returncode}:\n{self.output[-4000:]}")
            return next((m for m in map(re.compile(pattern).search, list(self.lines)) if m), None)

        return wait_for(seen, timeout, interval=0.5, what=lambda: f"{pattern!r} in:\n{self.output[-4000:]}")

    def ctrl_c(self, times: int = 1) -> None:
        for _ in range(times):
            os.killpg(self.proc.pid, signal.SIGINT)
            time.sleep(0.2)

    def finish(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self.reader.join(5)

    def group_alive(self) -> bool:
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def kill(self) -> None:
        if self.group_alive():
            os.killpg(self.proc.pid, signal.SIGKILL)


def user_env(workspace: Path, port: int, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "INKLABEL_", "PYTEST"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # `python`, `pip`: this env's
    env.update(INKLABEL_WORKSPACE=str(workspace), INKLABEL_PORT=str(port), PYTHONUNBUFFERED="1", **extra)
    return env


def answering(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def api_login(base: str, username: str, password: str) -> dict:
    """Log in as the browser does (session cookie) and read /auth/me with it."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    body = json.dumps({"username": username, "password": password}).encode()
    request = urllib.request.Request(base + "api/v1/auth/login", body, {"Content-Type": "application/json"})
    with opener.open(request, timeout=60) as resp:
        assert resp.status == 200
    with opener.open(base + "api/v1/auth/me", timeout=60) as resp:
        return json.load(resp)


def browser_login(url: str, username: str, password: str, screenshot: str) -> str:
    """Open the printed URL in Chromium, log in through the form; returns the page's text after login."""
    with playwright_or_skip()() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url)
            page.fill("#login-user", username)
            page.fill("#login-pass", password)
            page.press("#login-pass", "Enter")
            page.wait_for_selector(".login-page", state="detached", timeout=15_000)
            page.wait_for_load_state("networkidle")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / screenshot))
            return page.inner_text("body")
        finally:
            browser.close()


def stop_like_a_user(typed: Typed, times: int = 1, timeout: float = 30) -> int:
    typed.ctrl_c(times)
    code = typed.finish(timeout)
    wait_for(lambda: not typed.group_alive(), 10, what=lambda: f"no process left after Ctrl+C:\n{typed.output[-2000:]}")
    return code


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_readme_start_command_serves_the_demo_then_serve_serves_it(tmp_path):
    """The README's first command, as written: builds the demo, serves the printed URL with the printed login."""
    [start] = readme_commands("Start (one command)")
    assert "manage.py demo" in start
    workspace, port = tmp_path / "workspace", free_port()
    typed = Typed(start, user_env(workspace, port))
    try:
        url = typed.wait_for_line(r"open (http://\S+)", timeout=900).group(1)
        username, password = typed.wait_for_line(r"login: (\S+) / (\S+)", timeout=5).groups()
        assert url == f"http://localhost:{port}/"
        wait_for(lambda: answering(url), 30, what=f"{url} to answer")
        assert api_login(url, username, password)["user"]["role"] == "admin"
        assert "Next image" in browser_login(url, username, password, "first-run-demo.png")
        # each phase printed its start and end, although the output is a pipe and not a terminal
        for phase in ("images", "export", "train segmenter", "train classifier", "prefill"):
            assert f"[{phase}] started" in typed.output and re.search(rf"\[{phase}\] done", typed.output), phase
        ready = float(re.search(r"demo ready in (\d+)s", typed.output).group(1))
        print(f"demo ready in {ready:.0f}s")
        assert stop_like_a_user(typed) == 0
        assert "inklabel: stopped" in typed.output
    finally:
        typed.kill()

    [serve] = [c for c in readme_commands("Everyday use") if "manage.py serve" in c]
    typed = Typed(serve, user_env(workspace, port))
    try:
        url = typed.wait_for_line(r"open (http://\S+)", timeout=60).group(1)
        wait_for(lambda: answering(url), 30, what=f"{url} to answer")
        assert api_login(url, username, password)["user"]["username"] == username
        assert stop_like_a_user(typed) == 0
    finally:
        typed.kill()


def _coco_dataset(folder: Path, n: int = 10) -> Path:
    """A small COCO dataset as another tool would hand it over: images and polygons with style categories."""
    from ..support.datasets import ring

    styles = ["fineline", "tribal"]
    (folder / "images").mkdir(parents=True)
    images, annotations = [], []
    for i in range(n):
        name = f"images/p{i:02d}.jpg"
        array = np.array(smooth_image(100 + i, 160, 120))
        cx, cy, r = 50 + 5 * i, 60, 20 + i
        array[int(cy - r / 2):int(cy + r / 2), int(cx - r / 2):int(cx + r / 2)] = 20  # ink inside the polygon
        (folder / name).write_bytes(jpeg(array))
        polygon = [v for point in ring(cx, cy, r, 24)[:-1] for v in point]
        images.append({"id": i + 1, "file_name": name, "width": 160, "height": 120})
        annotations.append({"id": i + 1, "image_id": i + 1, "category_id": 1 + i % 2, "iscrowd": 0,
                            "segmentation": [polygon], "bbox": [cx - r, cy - r, 2 * r, 2 * r], "area": 3.14 * r * r})
    categories = [{"id": k + 1, "name": style} for k, style in enumerate(styles)]
    (folder / "annotations.json").write_text(json.dumps(
        {"images": images, "annotations": annotations, "categories": categories}))
    return folder


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_readme_everyday_commands_run_in_order_on_a_fresh_workspace(tmp_path):
    """Every command of "Everyday use", in order, as written: placeholders filled, a password for the prompt."""
    home = tmp_path / "home"
    photos = home / "photos"
    photos.mkdir(parents=True)
    for i in range(3):
        (photos / f"new{i}.jpg").write_bytes(jpeg(smooth_image(i, 200, 150)))
    data = _coco_dataset(tmp_path / "data")
    workspace, port = tmp_path / "workspace", free_port()
    env = user_env(workspace, port, HOME=str(home))
    export_id = token = None
    for command in readme_commands("Everyday use"):
        assert command.startswith("python manage.py "), command
        typed_command = command.replace(" data/ ", f" {data}/ ")
        if "create-user" in command:
            typed_command += " --password correct-horse-battery"
        if "<EXPORT_ID>" in command:
            typed_command = typed_command.replace("<EXPORT_ID>", export_id)
        if "manage.py train" in command:  # the default 512 px x 30 epochs takes minutes; the demo test trains fully
            typed_command += " --epochs 2 --input-size 64"
        if "manage.py serve" in command:
            typed = Typed(typed_command, env)
            try:
                url = typed.wait_for_line(r"open (http://\S+)", timeout=60).group(1)
                wait_for(lambda: answering(url), 30, what=f"{url} to answer")
                request = urllib.request.Request(url + "api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
                with urllib.request.urlopen(request, timeout=60) as resp:
                    assert json.load(resp)["user"]["username"] == "alice"
                assert stop_like_a_user(typed) == 0
            finally:
                typed.kill()
            continue
        done = subprocess.run(["bash", "-c", typed_command], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=900)
        assert done.returncode == 0, f"`{typed_command}` failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        if "create-token" in command:
            token = done.stdout.strip()
        if "manage.py export" in command and export_id is None:  # the first one has the crops for the classifier
            export_id = re.search(r"export (\w+):", done.stderr).group(1)
        if "import ~/photos" in command:
            assert "imported 3 new image(s)" in done.stdout
        if "--format coco" in command:
            assert "10" in done.stdout, done.stdout
        if "train segmenter" in command or "train classifier" in command:
            assert "promoted: now the current model" in done.stdout, done.stdout
        if "prefill" in command:
            # the promotions already pre-filled the pool when the train commands ended
            done_now, skipped = map(int, re.search(r"pre-filled (\d+) image\(s\), skipped (\d+)", done.stdout).groups())
            assert done_now + skipped == 3, done.stdout
    assert token and export_id
    listed = " | ".join(readme_commands("Everyday use"))
    for step in ("import ~/photos", "--format coco", "train segmenter", "train classifier", "prefill", "manage.py serve"):
        assert step in listed, f"the README's Everyday use lost `{step}`, whose output this test checks"


@pytest.mark.timeout(120)
def test_serve_prod_stops_on_ctrl_c_twice_without_orphan_workers(tmp_path):
    """`serve --prod`: a second Ctrl+C while gunicorn stops never leaves worker processes behind."""
    workspace, port = tmp_path / "workspace", free_port()
    # Workers leave at once on Ctrl+C (gunicorn_conf.worker_int); should one not, the arbiter kills it after
    # graceful_timeout, so the wait here outlasts that: what must hold is that nothing is left behind.
    env = user_env(workspace, port, GUNICORN_WORKERS="2", GUNICORN_GRACEFUL_TIMEOUT="20")
    typed = Typed("python manage.py serve --prod", env)
    try:
        url = typed.wait_for_line(r"open (http://\S+)", timeout=60).group(1)
        wait_for(lambda: answering(url), 60, what=f"{url} to answer")
        stop_like_a_user(typed, times=2, timeout=60)
    finally:
        typed.kill()


@pytest.mark.timeout(120)
def test_serve_refuses_a_port_in_use_with_what_to_do(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([sys.executable, "manage.py", "serve"], cwd=ROOT, capture_output=True, text=True,
                              env=user_env(tmp_path / "workspace", port), timeout=60)
    assert done.returncode != 0
    assert "--port" in done.stderr or "different port" in done.stderr
