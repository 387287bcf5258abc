"""Issue 18 in the browser: when another annotator takes the image while it is open, the editor says why the save
is refused, keeps the drawing, and the server keeps the holder's document."""
from __future__ import annotations

from .conftest import screenshot
from ..support.browser import draw_polygon, login_api, open_image, save_status, server_doc


def test_save_on_an_image_someone_else_holds_says_why(page, live):
    live.user("alice")
    _, bob_token = live.user("bob")
    bob = live.client(bob_token)
    image_id = live.image(800, 600)
    login_api(page, live, "alice")
    open_image(page, live, image_id)  # free when alice opens it: the editor is editable
    assert bob.post("/api/v1/queue/next?strategy=oldest").get_json()["image_id"] == image_id  # then bob takes it
    draw_polygon(page, [(100, 100), (300, 100), (300, 300)])
    page.evaluate("() => window.inklabel.autosave.flush()")
    toast = page.wait_for_selector(".toast-error", timeout=10_000)
    assert "Another annotator is working on this image" in toast.inner_text()
    assert save_status(page) == "error"
    assert len(page.evaluate("() => window.inklabel.store.toDocument().regions")) == 1  # the drawing is kept
    screenshot(page, "editor-leased-elsewhere")
    assert server_doc(bob, image_id)["version"] == 0
