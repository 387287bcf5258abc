"""Chromium through Playwright, and the shared steps of the browser tests and benchmarks: log in, open an image,
map image pixels to the page and back."""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pytest

from .live import PASSWORD

CHROMIUM = os.environ.get("INKLABEL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
]


def playwright_or_skip():
    """Playwright's sync_playwright, or a skip with the reason (no package, no Chromium)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is not installed (pip install -r requirements-dev.txt)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set INKLABEL_CHROMIUM)")
    return sync_playwright


def js_round(value: float, decimals: int = 2) -> float:
    """The editor's rounding (JavaScript Math.round: halves go up), to compare coordinates exactly."""
    f = 10 ** decimals
    return math.floor(value * f + 0.5) / f


def login_api(page, live, username: str) -> None:
    """Log in through the API (sets the session cookie in the browser context)."""
    resp = page.request.post(live.url + "/api/v1/auth/login", data={"username": username, "password": PASSWORD})
    assert resp.ok, resp.text()


def open_image(page, live, image_id: int, suffix: str = "") -> None:
    page.goto(f"{live.url}/#/image/{image_id}{suffix}")
    page.wait_for_function("() => window.inklabel && window.inklabel.imageId === %d" % image_id)
    page.wait_for_function("() => window.inklabel.viewport.scale > 0 && window.inklabel.viewport.width > 10")
    page.wait_for_timeout(50)  # the first animation frame applies the transform


def view(page) -> dict:
    return page.evaluate(
        """() => { const v = window.inklabel.viewport; const r = window.inklabel.editor.svgEl.getBoundingClientRect();
        return {scale: v.scale, tx: v.tx, ty: v.ty, left: r.left, top: r.top}; }"""
    )


def to_client(v: dict, x: float, y: float) -> tuple[float, float]:
    return v["left"] + v["tx"] + x * v["scale"], v["top"] + v["ty"] + y * v["scale"]


def to_image(v: dict, cx: float, cy: float) -> list[float]:
    return [js_round((cx - v["left"] - v["tx"]) / v["scale"]), js_round((cy - v["top"] - v["ty"]) / v["scale"])]


def click_image(page, x: float, y: float, **kw) -> list[float]:
    """Click at the page pixel nearest to image point (x, y); returns the image point the editor should record."""
    v = view(page)
    cx, cy = to_client(v, x, y)
    cx, cy = round(cx), round(cy)
    page.mouse.click(cx, cy, **kw)
    return to_image(v, cx, cy)


def draw_polygon(page, points: list[tuple[float, float]]) -> None:
    """The polygon tool: P, a click on each vertex (image coordinates), Enter."""
    page.keyboard.press("p")
    for x, y in points:
        click_image(page, x, y)
    page.keyboard.press("Enter")


def drag_image(page, path: list[tuple[float, float]], steps: int = 4) -> None:
    v = view(page)
    pts = [to_client(v, x, y) for x, y in path]
    page.mouse.move(*pts[0])
    page.mouse.down()
    for p in pts[1:]:
        page.mouse.move(*p, steps=steps)
    page.mouse.up()


def store_regions(page) -> list[dict]:
    return page.evaluate("() => window.inklabel.store.toDocument().regions")


def save_status(page) -> str:
    return page.get_attribute("[data-testid=save-status]", "data-status")


def wait_saved(page, timeout: float = 10) -> None:
    """Wait until the editor has nothing unsaved (autosave ran) — flushes first to not wait out the delay."""
    page.evaluate("() => window.inklabel.autosave.flush()")
    page.wait_for_function("() => window.inklabel.autosave.status === 'saved' && !window.inklabel.autosave.dirty",
                           timeout=timeout * 1000)


def server_doc(client, image_id: int, path: str = "annotation") -> dict:
    resp = client.get(f"/api/v1/images/{image_id}/{path}")
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def wait_for(predicate, timeout: float = 10, interval: float = 0.1):
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def snapshot_store(page) -> None:
    page.evaluate("() => { window.__snap = JSON.stringify(window.inklabel.store.toDocument()); }")


def wait_store_changed(page, timeout: float = 10) -> None:
    """After snapshot_store: wait until the document differs and no brush computation is pending."""
    page.wait_for_function(
        """() => JSON.stringify(window.inklabel.store.toDocument()) !== window.__snap
        && !window.inklabel.editor.tools.brush.pending && !window.inklabel.editor.tools.eraser.pending""",
        timeout=timeout * 1000)


def open_new_image(page, live, username: str = "alice", width: int = 800, height: int = 600) -> int:
    """A user, one synthetic photo, logged in and open in the editor; returns the image id."""
    live.user(username)
    image_id = live.image(width, height)
    login_api(page, live, username)
    open_image(page, live, image_id)
    return image_id
