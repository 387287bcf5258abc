"""Issue 19 item 10: photo brightness/contrast/gamma, labels on the canvas (L), hide/show by style, copy and paste
regions (also onto the next image), "regions from the previous image", and the time spent on the image."""
from __future__ import annotations

import pytest

from .conftest import screenshot
from ..support.browser import login_api, open_image, open_new_image, store_regions

pytestmark = pytest.mark.e2e

SQUARE = "{type: 'Polygon', coordinates: [[[100,100],[250,100],[250,250],[100,250],[100,100]]]}"
TRIANGLE = "{type: 'Polygon', coordinates: [[[400,100],[600,100],[500,300],[400,100]]]}"


def test_photo_adjustments_labels_and_style_visibility(page, live):
    image_id = open_new_image(page, live, width=800, height=600)
    page.evaluate(f"""() => {{ const s = window.inklabel.store;
        s.create({{geometry: {SQUARE}, style: 'tribal', motifs: [], source: 'human'}});
        s.create({{geometry: {TRIANGLE}, style: 'japanese', motifs: [], source: 'human'}}); }}""")
    assert page.get_attribute("image.photo", "filter") is None
    page.fill("[data-testid=photo-brightness]", "1.6")
    page.fill("[data-testid=photo-gamma]", "1.8")
    assert page.get_attribute("image.photo", "filter").startswith("url(#photo-filter-")
    assert page.evaluate("window.inklabel.view.options.brightness") == 1.6
    page.focus(".stage")
    page.keyboard.press("l")
    assert page.is_checked("[data-testid=show-labels]")
    assert page.locator(".overlay-svg text").count() >= 2
    page.click("[data-testid=style-visibility] [data-style=tribal]")
    assert page.locator("g.region.hidden").count() == 1
    screenshot(page, "i19-view-tools")
    page.click("[data-testid=style-visibility] [data-style=tribal]")
    assert page.locator("g.region.hidden").count() == 0
    page.wait_for_function("() => /on this image/.test(document.querySelector('[data-testid=image-time]').textContent)")
    assert not page.js_errors, page.js_errors


def test_copy_paste_and_regions_from_the_previous_image(page, live):
    live.user("alice")
    first, second = live.image(800, 600, "a.jpg", seed=1), live.image(800, 600, "b.jpg", seed=2)
    login_api(page, live, "alice")
    open_image(page, live, first)
    page.evaluate(f"""() => {{ const s = window.inklabel.store;
        const r = s.create({{geometry: {SQUARE}, style: 'tribal', motifs: ['koi'], source: 'human'}});
        s.create({{geometry: {TRIANGLE}, style: 'japanese', motifs: [], source: 'human'}});
        window.inklabel.editor.select(r.id); }}""")
    page.focus(".stage")
    page.keyboard.press("Control+c")
    page.keyboard.press("Control+v")
    regions = store_regions(page)
    assert len(regions) == 3 and regions[2]["geometry"] == regions[0]["geometry"] and regions[2]["id"] != regions[0]["id"]
    page.keyboard.press("Control+z")
    assert len(store_regions(page)) == 2
    open_image(page, live, second)
    page.wait_for_selector("[data-testid=from-previous]:not([disabled])")
    assert "(2)" in page.inner_text("[data-testid=from-previous]")
    page.focus(".stage")
    page.keyboard.press("Control+v")  # the clipboard outlives the image
    page.click("[data-testid=from-previous]")
    regions = store_regions(page)
    assert [r["style"] for r in regions] == ["tribal", "tribal", "japanese"]
    assert all(r["source"] == "human" for r in regions)
    assert not page.js_errors, page.js_errors
