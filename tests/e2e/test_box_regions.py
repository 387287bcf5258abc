"""Box regions in the browser: a saved box shows as a dashed rectangle, is listed as a box, survives an edit of
its style and the autosave as a box; the image list says what an image is labelled with."""
from __future__ import annotations

import pytest

from .conftest import screenshot
from ..support.browser import login_api, open_image, server_doc, wait_for, wait_saved

pytestmark = pytest.mark.e2e

BOX = {"type": "Polygon", "coordinates": [[[100, 80], [420, 80], [420, 330], [100, 330], [100, 80]]]}
MASK = {"type": "Polygon", "coordinates": [[[470, 100], [600, 120], [560, 260], [480, 230], [470, 100]]]}


def test_box_region_renders_dashed_and_stays_a_box(page, live):
    _, token = live.user("alice")
    client = live.client(token)
    image_id = live.image(640, 480)
    resp = client.put(f"/api/v1/images/{image_id}/annotation", json={
        "base_version": 0, "tags": {"styles": [], "flags": []},
        "regions": [{"id": "b1", "kind": "box", "geometry": BOX}, {"id": "m1", "geometry": MASK}]})
    assert resp.status_code == 200, resp.get_json()

    login_api(page, live, "alice")
    page.goto(live.url + "/#/")
    summary = page.locator("[data-testid=label-summary]").first
    summary.wait_for()
    assert summary.text_content() == "1 mask · 1 box"

    open_image(page, live, image_id)
    box = page.locator(".region.box[data-id=b1] .shape")
    box.wait_for()
    assert page.locator(".region.box").count() == 1
    assert box.evaluate("el => getComputedStyle(el).strokeDasharray") not in ("", "none")
    assert page.locator(".region[data-id=m1] .shape").evaluate("el => getComputedStyle(el).strokeDasharray") == "none"
    assert "box" in page.locator("[data-testid=region-list]").text_content()
    screenshot(page, "box-region")

    page.evaluate("window.inklabel.store.update('b1', {style: 'tribal'})")
    wait_saved(page)
    doc = wait_for(lambda: (d := server_doc(client, image_id)) and d["version"] == 2 and d)
    assert [(r["id"], r["kind"], r["style"]) for r in doc["regions"]] == [("b1", "box", "tribal"), ("m1", "mask", None)]
    assert doc["regions"][0]["geometry"] == BOX
    assert not page.js_errors, page.js_errors
