"""End-to-end fixtures: the real app on a loopback port (werkzeug, in a thread), Debian's Chromium driven by
Playwright, users and images made through the backend's own code.

Skips with a reason when Playwright or Chromium is missing. Chromium is INKLABEL_CHROMIUM or /usr/bin/chromium;
screenshots go to test-artifacts/ (git-ignored).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from ..support.app import build_app
from ..support.browser import CHROMIUM, CHROMIUM_ARGS, playwright_or_skip
from ..support.live import LiveServer

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="package")  # closed before other packages (tests/security) start their own Playwright
def browser():
    sync_playwright = playwright_or_skip()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def live(tmp_path):
    app = build_app(tmp_path, "sqlite")
    server = LiveServer(app)
    yield server
    server.stop()
    from backend.db.extensions import db

    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, device_scale_factor=1)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and "Failed to load resource" not in msg.text else None)
    page.js_errors = errors
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
