"""Uploading photos from the home page: the button (file picker) and drag-and-drop, a progress line, and an answer
that says what was added, what was already there and which file was refused and why; the grid shows the new ones."""
from __future__ import annotations

import pytest

from .conftest import screenshot
from ..support.browser import login_api
from ..support.live import jpeg_bytes

pytestmark = pytest.mark.e2e


def _wait_status(page, text: str) -> str:
    page.wait_for_function("t => (document.querySelector('[data-testid=upload-status]')?.textContent || '').includes(t)",
                           arg=text, timeout=30_000)
    return page.inner_text("[data-testid=upload-status]")


def test_upload_with_the_button_and_by_dropping(page, live):
    live.user("ann", "annotator")
    login_api(page, live, "ann")
    page.goto(live.url + "/#/")
    page.locator("[data-testid=image-grid] .empty-state").wait_for()
    assert "Upload some" in page.inner_text("[data-testid=image-grid]")

    first = jpeg_bytes(320, 240, seed=1)
    files = [{"name": "arm.jpg", "mimeType": "image/jpeg", "buffer": first},
             {"name": "again.jpg", "mimeType": "image/jpeg", "buffer": first},  # the same bytes
             {"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"this is not an image"}]
    with page.expect_file_chooser() as chooser:
        page.click("[data-testid=upload-images]")
    chooser.value.set_files(files)
    status = _wait_status(page, "added")
    assert "1 added · 1 already here · 1 refused" in status, status
    assert "notes.jpg:" in status  # the refused file, with the server's reason
    page.wait_for_function("() => document.querySelectorAll('[data-testid=image-grid] .image-card').length === 1")
    assert page.inner_text(".image-card .name") == "arm.jpg"
    screenshot(page, "upload-button")

    # drop two photos on the page (a DataTransfer with files, as a file manager sends it)
    page.evaluate("""([a, b]) => {
        const dt = new DataTransfer();
        for (const [name, bytes] of [["leg.jpg", a], ["back.jpg", b]]) {
            dt.items.add(new File([new Uint8Array(bytes)], name, { type: "image/jpeg" }));
        }
        const home = document.querySelector(".home");
        home.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }));
        home.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
    }""", [list(jpeg_bytes(320, 240, seed=2)), list(jpeg_bytes(320, 240, seed=3))])
    status = _wait_status(page, "2 added")
    assert "refused" not in status, status
    page.wait_for_function("() => document.querySelectorAll('[data-testid=image-grid] .image-card').length === 3")
    names = sorted(page.locator(".image-card .name").all_inner_texts())
    assert names == ["arm.jpg", "back.jpg", "leg.jpg"]
    assert page.inner_text(".list-head").strip().endswith("3 images")
    client = live.client(live.user("admin1", "admin")[1])
    assert client.get("/api/v1/images").get_json()["total"] == 3
    screenshot(page, "upload-dropped")
    assert not page.js_errors, page.js_errors
