"""Issue 19 item 6: the review view — who annotated the image, saves and active time, the checks they kept with
reasons, a diff overlay (pre-fill → now, and since the rejection), no "Submit & next" for the reviewer; the
annotator's rework is a link on the home page."""
from __future__ import annotations

import pytest

from .conftest import screenshot
from ..support.browser import login_api, open_image

pytestmark = pytest.mark.e2e

SQUARE = {"type": "Polygon", "coordinates": [[[100, 100], [300, 100], [300, 300], [100, 300], [100, 100]]]}
OTHER = {"type": "Polygon", "coordinates": [[[400, 120], [600, 120], [500, 350], [400, 120]]]}


def test_reviewer_sees_who_when_reasons_and_a_diff(page, live):
    _, token = live.user("alice")
    live.user("rita", "reviewer")
    alice = live.client(token)
    image_id = live.image(800, 600)
    live.cached_prediction(image_id, [{"geometry": OTHER, "style": "japanese"}])
    doc = {"base_version": 0, "regions": [{"id": "a" * 32, "geometry": SQUARE, "style": None, "motifs": [], "source": "human"}],
           "tags": {"styles": [], "flags": []}, "time_spent_ms": 185_000}
    assert alice.put(f"/api/v1/images/{image_id}/annotation", json=doc).status_code == 200
    body = {"overrides": [{"check": "unstyled_regions", "count": 1, "reason": "faded, style unclear"}]}
    assert alice.post(f"/api/v1/images/{image_id}/submit-checks", json=body).status_code == 201
    assert alice.post(f"/api/v1/images/{image_id}/submit").status_code == 200

    login_api(page, live, "rita")
    open_image(page, live, image_id)
    who = page.locator("[data-testid=review-who]")
    page.wait_for_function("() => document.querySelector('[data-testid=review-who]').textContent.includes('Annotated by')")
    assert "Annotated by alice" in who.inner_text() and "1 save" in who.inner_text() and "3 minutes" in who.inner_text()
    assert "faded, style unclear" in page.inner_text("[data-testid=review-overrides]")
    assert not page.is_visible("[data-testid=submit-next]")
    page.select_option("[data-testid=compare-with]", "prefill")
    kinds = page.eval_on_selector_all("[data-testid=compare-layer] path", "els => els.map(e => e.dataset.kind).sort()")
    assert kinds == ["added", "removed"]
    assert "1 region added, 1 region removed" in page.inner_text("[data-testid=compare-summary]")
    # a comment pinned to the region: listed, labelled on the canvas, and a click there selects the region
    page.evaluate("() => window.inklabel.editor.select('%s')" % ("a" * 32))
    page.fill("[data-testid=pin-text]", "the outline misses the left arm")
    page.click("[data-testid=pin-comment]")
    page.wait_for_selector("[data-testid=region-comments] li")
    assert "Region 1: the outline misses the left arm — rita" in page.inner_text("[data-testid=region-comments]")
    assert page.locator(".overlay-svg text:has-text('1 comment')").count() == 1
    page.evaluate("() => window.inklabel.editor.select(null)")
    page.click("[data-testid=region-comments] li button")
    assert page.evaluate("window.inklabel.editor.selectedId") == "a" * 32
    screenshot(page, "i19-review-view")
    # reject: the annotator sees the rework on the home page and the diff since the rejection
    page.fill("textarea[aria-label='Review comment']", "the second tattoo is missing")
    page.click("button:has-text('Reject')")
    page.wait_for_selector("[data-testid=next-review]")
    assert not page.js_errors, page.js_errors


def test_annotator_reaches_rework_from_home_and_sees_what_changed(page, live):
    _, token = live.user("alice")
    _, rtoken = live.user("rita", "reviewer")
    alice, rita = live.client(token), live.client(rtoken)
    image_id = live.image(800, 600)
    doc = {"base_version": 0, "regions": [{"id": "a" * 32, "geometry": SQUARE, "style": "tribal", "motifs": [], "source": "human"}],
           "tags": {"styles": [], "flags": []}, "time_spent_ms": 1000}
    assert alice.put(f"/api/v1/images/{image_id}/annotation", json=doc).status_code == 200
    assert alice.post(f"/api/v1/images/{image_id}/submit").status_code == 200
    assert rita.post(f"/api/v1/images/{image_id}/review", json={"decision": "reject", "comment": "add the arm"}).status_code == 201
    login_api(page, live, "alice")
    page.goto(live.url + "/")
    link = page.locator("[data-testid=to-fix]")
    link.wait_for()
    assert "to fix after review" in link.inner_text()
    link.click()
    page.wait_for_selector(".image-card")
    assert "status=rejected" in page.url
    open_image(page, live, image_id)
    page.wait_for_selector("[data-testid=compare-with] option[value=previous]", state="attached")
    page.evaluate("""() => window.inklabel.store.create({geometry: {type: 'Polygon', coordinates: [[[400,120],[600,120],[500,350],[400,120]]]},
        style: 'japanese', motifs: [], source: 'human'})""")
    page.select_option("[data-testid=compare-with]", "previous")
    assert "1 region added" in page.inner_text("[data-testid=compare-summary]")
    screenshot(page, "i19-rework-diff")
    assert not page.js_errors, page.js_errors
