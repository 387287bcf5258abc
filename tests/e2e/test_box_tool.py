"""Issue 21 (editor side): the box tool draws a region of kind "box" whose geometry is the canonical rectangle;
its corners drag as a rectangle; M turns it into a mask with box assist (one undo step brings the box back)."""
from __future__ import annotations

import pytest

from .conftest import screenshot
from ..support.browser import drag_image, login_api, open_image, server_doc, store_regions, wait_saved

pytestmark = pytest.mark.e2e


def test_box_tool_draws_saves_and_converts_a_box(page, live):
    _, token = live.user("alice")
    client = live.client(token)
    image_id = live.image(800, 600)
    login_api(page, live, "alice")
    open_image(page, live, image_id)
    page.keyboard.press("n")
    assert page.evaluate("window.inklabel.editor.toolName") == "rect"
    drag_image(page, [(520, 480), (300, 250), (110, 100)])  # dragged up-left: the ring is still x0<x1, y0<y1
    regions = store_regions(page)
    assert len(regions) == 1 and regions[0]["kind"] == "box"
    ring = regions[0]["geometry"]["coordinates"][0]
    (x0, y0), (x1, _), (_, y1) = ring[0], ring[1], ring[2]
    assert ring == [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]] and x0 < x1 and y0 < y1
    assert abs(x0 - 110) < 2 and abs(y1 - 480) < 2
    # drag a corner with the select tool: still a rectangle, the opposite corner fixed
    page.keyboard.press("Escape")
    page.evaluate("(id) => window.inklabel.editor.select(id)", regions[0]["id"])
    drag_image(page, [(x1, y1), (x1 + 40, y1 + 10), (x1 + 60, y1 + 20)])
    ring2 = store_regions(page)[0]["geometry"]["coordinates"][0]
    assert ring2[0] == [x0, y0] and abs(ring2[2][0] - (x1 + 60)) < 2 and ring2[1][1] == y0 and ring2[3][0] == x0
    wait_saved(page)
    saved = server_doc(client, image_id)["regions"][0]
    assert saved["kind"] == "box" and saved["geometry"]["coordinates"][0] == ring2
    screenshot(page, "i21-box-tool")
    # M: box assist turns it into a mask in one step
    page.keyboard.press("m")
    page.wait_for_function("() => window.inklabel.store.all()[0].kind === 'mask'", timeout=15000)
    mask = store_regions(page)[0]
    assert mask["id"] == saved["id"] and mask["source"] == "assist"
    page.keyboard.press("Control+z")
    assert store_regions(page)[0]["kind"] == "box"
    assert not page.js_errors, page.js_errors
