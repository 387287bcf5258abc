"""Issue 19 item 3: contradictions are listed in one dialog at submit — fixed there, or kept with a reason that
the reviewer sees (review-info and the review panel)."""
from __future__ import annotations

import pytest

from .conftest import screenshot
from ..support.browser import draw_polygon, login_api, open_image, open_new_image, store_regions

pytestmark = pytest.mark.e2e


def draw_square(page, x0, y0, size=150):
    draw_polygon(page, [(x0, y0), (x0 + size, y0), (x0 + size, y0 + size)])
    page.keyboard.press("Escape")


def test_contradictions_are_fixed_or_kept_with_a_reason(page, live):
    _, token = live.user("alice")
    _, rtoken = live.user("rita", "reviewer")
    reviewer = live.client(rtoken)
    ids = [live.image(800, 600, f"arm{i}.jpg", seed=i) for i in range(2)]
    live.cached_prediction(ids[0], [{"geometry": {"type": "Polygon", "coordinates": [[[500, 300], [700, 300], [600, 500], [500, 300]]]}}])
    login_api(page, live, "alice")
    open_image(page, live, ids[0])
    page.wait_for_selector("g.region.suggested")
    draw_square(page, 100, 100)
    draw_square(page, 300, 100)
    page.check("[data-testid=flag-not_tattoo]")
    screenshot(page, "i19-submit-checks-before")
    page.keyboard.press("Control+Enter")
    dialog = page.locator("[data-testid=submit-checks]")
    dialog.wait_for()
    checks = page.eval_on_selector_all("[data-testid=submit-checks] .check", "els => els.map(e => e.dataset.check)")
    assert checks == ["flag_with_regions", "unstyled_regions", "unanswered_suggestions"]
    assert page.is_disabled("[data-testid=checks-submit]")
    screenshot(page, "i19-submit-checks")
    page.click("[data-testid=fix-unanswered_suggestions] >> text=Reject all")  # fixed in the dialog
    assert page.locator("[data-testid=submit-checks] .check").count() == 2
    page.fill("[data-testid=reason-flag_with_regions]", "a stencil on paper, drawn for the segmenter anyway")
    assert page.is_disabled("[data-testid=checks-submit]")
    page.fill("[data-testid=reason-unstyled_regions]", "style unclear")
    page.click("[data-testid=checks-submit]")
    page.wait_for_function("(id) => window.inklabel && window.inklabel.imageId !== id", arg=ids[0])
    assert reviewer.get(f"/api/v1/images/{ids[0]}").get_json()["status"] == "submitted"
    info = reviewer.get(f"/api/v1/images/{ids[0]}/review-info").get_json()
    assert {o["check"]: o["reason"] for o in info["note"]["overrides"]} == {
        "flag_with_regions": "a stencil on paper, drawn for the segmenter anyway", "unstyled_regions": "style unclear"}
    assert not page.js_errors, page.js_errors


def test_go_back_keeps_the_image_open_and_show_me_selects(page, live):
    image_id = open_new_image(page, live, width=800, height=600)
    draw_square(page, 100, 100)
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("[data-testid=submit-checks]")
    page.click("[data-testid=fix-unstyled_regions]")  # "Show me"
    assert page.locator("dialog[open]").count() == 0
    assert page.evaluate("window.inklabel.editor.selectedId") == store_regions(page)[0]["id"]
    page.keyboard.press("1")
    page.keyboard.press("Control+Enter")  # nothing left to check: submits
    page.wait_for_function("() => document.querySelector('[data-testid=image-status]').dataset.status === 'submitted' || !window.inklabel || window.inklabel.imageId !== %d" % image_id)
