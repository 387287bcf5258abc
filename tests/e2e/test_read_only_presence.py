"""Issue 19 items 4 and 7: an accepted or submitted image opens read-only for an annotator, with a banner saying why
and who can change it (no edits taken, no "restore" offered); an image someone else holds says "held by <user>
until HH:MM" in the editor and on the grid."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from .conftest import screenshot
from ..support.browser import click_image, draw_polygon, login_api, open_image, server_doc, store_regions

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("status", ["accepted", "submitted"])
def test_frozen_or_submitted_image_is_read_only_with_a_banner(page, live, status):
    _, token = live.user("alice")
    client = live.client(token)
    image_id = live.image(800, 600)
    live.set_image(image_id, status=status)
    login_api(page, live, "alice")
    page.goto(live.url + "/")
    # an unsaved draft from an earlier visit must not be offered back: it can never be saved
    page.evaluate("""(id) => localStorage.setItem('inklabel.draft.' + id, JSON.stringify({base_version: 0,
        document: {regions: [], tags: {styles: ['japanese'], flags: []}}, saved_at: Date.now()}))""", image_id)
    open_image(page, live, image_id)
    banner = page.locator("[data-testid=readonly-banner]")
    banner.wait_for()
    text = banner.inner_text()
    assert "Read-only" in text and "reviewer" in text
    assert page.locator("dialog[open]").count() == 0, "no 'Restore my changes' for a read-only image"
    assert page.evaluate("(id) => localStorage.getItem('inklabel.draft.' + id)", image_id) is None
    assert not page.is_visible("[data-testid=submit-next]")
    # drawing tools are off, and edits from the keyboard and panels are refused
    page.keyboard.press("p")
    assert page.evaluate("window.inklabel.editor.toolName") == "select"
    click_image(page, 100, 100)
    page.evaluate("""() => window.inklabel.store.create({geometry: {type: 'Polygon',
        coordinates: [[[1,1],[50,1],[50,50],[1,1]]]}, style: null, motifs: [], source: 'human'})""")
    assert page.locator("[data-testid=image-style-japanese]").is_disabled()
    page.evaluate("() => window.inklabel.store.setTags({styles: ['japanese'], flags: []})")
    assert store_regions(page) == []
    assert page.evaluate("window.inklabel.store.toDocument().tags.styles") == []
    assert page.get_attribute("[data-testid=save-status]", "data-status") != "error"
    screenshot(page, f"i19-read-only-{status}")
    assert server_doc(client, image_id)["version"] == 0
    assert not page.js_errors, page.js_errors


def test_someone_elses_hold_is_shown_in_the_editor_and_on_the_grid(page, live):
    live.user("bob")
    live.user("alice")
    image_id = live.image(800, 600)
    until = datetime.now(timezone.utc) + timedelta(minutes=12)
    live.set_image(image_id, assignee="bob", lock_expires_at=until, status="in_progress")
    login_api(page, live, "alice")
    page.goto(live.url + "/")
    chip = page.locator("[data-testid=held-by]")
    chip.wait_for()
    hhmm = page.evaluate("(iso) => new Date(iso).toLocaleTimeString([], {hour: '2-digit', minute: '2-digit'})",
                         until.isoformat())
    assert chip.inner_text() == f"held by bob until {hhmm}"
    screenshot(page, "i19-presence-grid")
    open_image(page, live, image_id)
    banner = page.locator("[data-testid=readonly-banner]")
    banner.wait_for()
    assert f"Held by bob until {hhmm}" in banner.inner_text()
    screenshot(page, "i19-presence-editor")
    assert page.locator("[data-testid=edit-anyway]").count() == 0  # the server would refuse an annotator's save
    live.user("rita", "reviewer")
    login_api(page, live, "rita")
    page.reload()  # the app boots again as rita on the same image
    page.wait_for_function("() => window.inklabel && window.inklabel.imageId === %d" % image_id)
    page.locator("[data-testid=readonly-banner]").wait_for()
    page.click("[data-testid=edit-anyway]")
    assert page.locator("[data-testid=readonly-banner]").count() == 0
    page.keyboard.press("p")
    assert page.evaluate("window.inklabel.editor.toolName") == "polygon"
    assert not page.js_errors, page.js_errors


def test_conflict_dialog_names_who_saved(page, live):
    live.user("alice")
    _, bob_token = live.user("bob", "reviewer")  # another annotator may not write while alice holds the lease
    bob = live.client(bob_token)
    image_id = live.image(800, 600)
    login_api(page, live, "alice")
    open_image(page, live, image_id)
    draw_polygon(page, [(100, 100), (300, 100), (300, 300)])
    page.evaluate("() => window.inklabel.autosave.flush()")
    page.wait_for_function("() => window.inklabel.autosave.status === 'saved'")
    mine = server_doc(bob, image_id)
    resp = bob.put(f"/api/v1/images/{image_id}/annotation", json={
        "base_version": mine["version"], "regions": mine["regions"], "tags": {"styles": [], "flags": ["bad_example"]},
        "time_spent_ms": 1000})
    assert resp.status_code == 200, resp.get_json()
    page.keyboard.press("2")
    page.wait_for_selector(".conflict-dialog", timeout=10_000)
    assert page.inner_text(".conflict-dialog h2").startswith("bob saved this image at ")
    assert "by bob" in page.inner_text("[data-testid=conflict-who]")
    screenshot(page, "i19-conflict-names-bob")
