"""Issue 19 item 9: "Styles in the photo" follows the regions' styles (ticked, marked, not untickable), and only
the extra image-level styles are ticked by hand; the saved document keeps just those extras as image tags."""
from __future__ import annotations

import pytest

from .conftest import screenshot
from ..support.browser import draw_polygon, login_api, open_image, server_doc, wait_saved

pytestmark = pytest.mark.e2e


def test_region_styles_tick_the_image_styles(page, live):
    _, token = live.user("alice")
    client = live.client(token)
    image_id = live.image(800, 600)
    login_api(page, live, "alice")
    open_image(page, live, image_id)
    japanese = page.locator("[data-testid=image-style-japanese]")
    assert not japanese.is_checked()
    draw_polygon(page, [(100, 100), (300, 100), (300, 300)])
    page.keyboard.press("2")  # Japanese
    assert japanese.is_checked() and japanese.is_disabled()
    assert japanese.get_attribute("data-derived") == "regions"
    page.check("[data-testid=image-style-lettering]")  # an extra style seen in the photo, by hand
    screenshot(page, "i19-image-styles-derived")
    wait_saved(page)
    doc = server_doc(client, image_id)
    assert doc["tags"]["styles"] == ["lettering"]
    meta = client.get(f"/api/v1/images/{image_id}").get_json()
    assert set(meta["styles"]) == {"japanese", "lettering"}  # what the API reports, now what the panel shows
    page.keyboard.press("Delete")  # the region goes: its style is no longer ticked
    assert not japanese.is_checked() and not japanese.is_disabled()
    assert page.locator("[data-testid=image-style-lettering]").is_checked()
    assert not page.js_errors, page.js_errors
