"""Issue 19 item 1: a cached pre-fill is drawn as suggestions as soon as an image opens (on by default, no model
call), the Pre-fill button stays visible on a 1024×700 screen, and the option can be turned off."""
from __future__ import annotations

import pytest

from .conftest import screenshot
from ..support.browser import login_api, open_image

pytestmark = pytest.mark.e2e

SQUARE = {"type": "Polygon", "coordinates": [[[100, 100], [300, 100], [300, 300], [100, 300], [100, 100]]]}
TRIANGLE = {"type": "Polygon", "coordinates": [[[400, 120], [600, 120], [500, 350], [400, 120]]]}


@pytest.fixture
def small_page(browser):
    context = browser.new_context(viewport={"width": 1024, "height": 700}, device_scale_factor=1)
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda err: page.js_errors.append(str(err)))
    yield page
    context.close()


def test_cached_suggestions_are_drawn_when_the_image_opens(small_page, live):
    page = small_page
    live.user("alice")
    image_id = live.image(800, 600)
    live.cached_prediction(image_id, [{"geometry": SQUARE, "style": "japanese"}, {"geometry": TRIANGLE}])
    login_api(page, live, "alice")
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and "/prefill" in r.url else None)
    open_image(page, live, image_id)
    page.wait_for_function("() => document.querySelectorAll('g.region.suggested').length === 2", timeout=5000)
    assert posts == [], "a cached pre-fill needs no model call"
    regions = page.evaluate("() => window.inklabel.store.all().map(r => ({style: r.style, suggested: !!r.suggested}))")
    assert {r["style"] for r in regions} == {"japanese", None} and all(r["suggested"] for r in regions)
    # the top bar's Pre-fill button is on screen at 1024×700
    box = page.locator("[data-testid=prefill-top]").bounding_box()
    assert box and box["y"] + box["height"] <= 700 and box["x"] + box["width"] <= 1024
    page.wait_for_function("() => performance.getEntriesByName('inklabel:suggestions').length > 0")
    page.wait_for_selector(".canvas-wrap[data-loaded=display]")
    screenshot(page, "i19-prefill-on-open-1024x700")
    assert not page.js_errors, page.js_errors


def test_pre_fill_on_open_can_be_turned_off(page, live):
    live.user("alice")
    image_id = live.image(800, 600)
    live.cached_prediction(image_id, [{"geometry": SQUARE, "style": "japanese"}])
    login_api(page, live, "alice")
    page.goto(live.url + "/")
    page.evaluate("() => localStorage.setItem('inklabel.autoPrefill', '0')")
    open_image(page, live, image_id)
    page.wait_for_timeout(300)
    assert page.locator("g.region").count() == 0
    assert not page.is_checked("#auto-prefill")
    page.click("[data-testid=prefill-top]")  # asks the model on demand; no loadable model here → explained
    page.wait_for_function("() => !document.querySelector('[data-testid=prefill-top]').disabled")
    assert "model" in page.inner_text("[data-testid=model-info]").lower()
