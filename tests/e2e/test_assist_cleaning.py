"""Issue 19 item 8 in the editor: an assist answer says what cleaning did, "nothing found" is said instead of a
speck, and the region panel simplifies at a tolerance the annotator sets and sees."""
from __future__ import annotations

import math

import pytest

from .conftest import screenshot
from ..support.browser import drag_image, open_new_image, store_regions

pytestmark = pytest.mark.e2e


def test_simplify_with_a_visible_tolerance(page, live):
    image_id = open_new_image(page, live, width=800, height=600)
    # a 240-vertex circle with 0.3 px of wobble, as a brush or the wand leaves it
    page.evaluate("""() => {
        const ring = [];
        for (let i = 0; i < 240; i++) { const a = i / 240 * 2 * Math.PI, r = 100 + (i % 2 ? 0.3 : 0);
            ring.push([Math.round((400 + r * Math.cos(a)) * 100) / 100, Math.round((300 + r * Math.sin(a)) * 100) / 100]); }
        ring.push(ring[0]);
        const reg = window.inklabel.store.create({geometry: {type: 'Polygon', coordinates: [ring]}, style: null, motifs: [], source: 'assist'});
        window.inklabel.editor.select(reg.id);
    }""")
    page.fill("[data-testid=simplify-tolerance]", "0.5")
    page.click("[data-testid=simplify]")
    ring = store_regions(page)[0]["geometry"]["coordinates"][0]
    assert 12 < len(ring) < 120
    assert all(abs(math.hypot(x - 400, y - 300) - 100) < 1.2 for x, y in ring)
    page.wait_for_selector(".toast:has-text('Simplified at 0.5 px: 240 →')")
    screenshot(page, "i19-simplify")
    page.keyboard.press("Control+z")
    assert len(store_regions(page)[0]["geometry"]["coordinates"][0]) == 241


def test_box_assist_over_bare_skin_says_nothing_found(page, live):
    image_id = open_new_image(page, live, width=800, height=600)
    page.keyboard.press("x")
    drag_image(page, [(620, 40), (700, 90), (780, 140)])  # a corner of plain skin
    page.wait_for_selector(".toast:has-text('Nothing found')", timeout=15000)
    assert store_regions(page) == []
    screenshot(page, "i19-nothing-found")
    assert not page.js_errors, page.js_errors
