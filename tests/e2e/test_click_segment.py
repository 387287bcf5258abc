"""Issue 21 (editor side): click-to-segment — clicks on the tattoo (Shift+click off it) go to
POST /images/<id>/assist {"tool": "click", "points", "negative_points"}; each answer replaces the region being
made; Backspace takes a click back; Enter keeps the region."""
from __future__ import annotations

import json

import pytest

from .conftest import screenshot
from ..support.browser import click_image, open_new_image, store_regions

pytestmark = pytest.mark.e2e


def test_click_to_segment_refines_one_region(page, live):
    image_id = open_new_image(page, live, width=800, height=600)
    requests = []
    page.on("request", lambda r: requests.append(json.loads(r.post_data)) if r.url.endswith("/assist") else None)
    page.keyboard.press("c")
    assert page.evaluate("window.inklabel.editor.toolName") == "click"
    click_image(page, 320, 300)  # the dark disc in the middle of the synthetic tattoo
    page.wait_for_function("() => window.inklabel.store.size === 1", timeout=20000)
    first = store_regions(page)[0]
    assert first["source"] == "assist" and first["kind"] == "mask"
    page.keyboard.down("Shift")
    click_image(page, 700, 80)  # Shift+click: not the tattoo
    page.keyboard.up("Shift")
    page.wait_for_function("(n) => document.querySelectorAll('.click-mark').length === n", arg=2)
    page.wait_for_function("() => !window.inklabel.editor.tools.click.busy")
    assert requests[0] == {"tool": "click", "points": [requests[0]["points"][0]], "negative_points": []}
    assert len(requests) >= 2 and len(requests[-1]["negative_points"]) == 1 and len(requests[-1]["points"]) == 1
    regions = store_regions(page)
    assert len(regions) == 1 and regions[0]["id"] == first["id"], "each answer replaces the region being made"
    screenshot(page, "i21-click-segment")
    page.keyboard.press("Enter")
    assert not page.evaluate("window.inklabel.editor.tools.click.drawing")
    assert len(store_regions(page)) == 1
    assert not page.js_errors, page.js_errors
