"""The ML console's Exports page as an admin: the form starts an export, a progress bar runs, the list shows it
with counts, size and checksum, the link downloads the zip, the manifest opens, two exports are compared."""
from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest

from .console_support import console, labelled_data, shoot  # noqa: F401 (fixture)
from ..support.browser import login_api, wait_for

pytestmark = pytest.mark.e2e


def _relabel(live, image_id: int) -> None:
    from backend.core.annotations import current_document, save_document
    from backend.db.extensions import db
    from backend.db.models import User
    from sqlalchemy import select

    with live.app.app_context():
        admin = db.session.scalar(select(User).where(User.username == "ml"))
        doc = current_document(image_id)
        save_document(image_id, admin, doc["version"], doc["regions"][:1] if doc["regions"] else [], doc["tags"])


def test_export_form_progress_download_manifest_and_diff(console, page):
    data = labelled_data(console, n=8, fraction=0.75)
    login_api(page, console, "ml")
    page.goto(console.url + "/#/exports")
    page.wait_for_selector("[data-testid=exports-table]")
    assert "No exports yet" in page.inner_text("[data-testid=exports-table]")

    form = page.locator("form[aria-label='New export']")
    for fmt in ("cvat", "labelstudio"):  # offered, not ticked by default
        assert not form.locator(f"input[name=formats][value={fmt}]").is_checked()
    for fmt in ("crops", "yolo", "labelme"):  # keep COCO and masks, add CVAT
        form.locator(f"input[name=formats][value={fmt}]").uncheck()
    form.locator("input[name=formats][value=cvat]").check()
    form.locator("select[name=categories]").select_option("styles")
    form.locator("input[name=val]").fill("25")
    form.locator("input[name=seed]").fill("7")
    form.locator("[data-testid=start-export]").click()
    page.wait_for_selector("[data-testid=export-running] [role=progressbar]")
    row = page.locator("[data-testid=exports-table] tr[data-status=succeeded]")
    row.wait_for(timeout=60_000)
    cells = row.locator("td").all_inner_texts()
    assert cells[2] == "ml" and cells[4] == str(len(data["labelled"])), cells  # who, images
    assert cells[6] == "coco, masks, cvat"
    shoot(page, "exports")

    # the server's record matches what the page shows
    admin = console.client(console.user("ml2", "admin")[1])
    listed = admin.get("/api/v1/exports").get_json()["items"][0]
    assert listed["options"]["categories"] == "styles"
    assert listed["options"]["split"] == {"val": 0.25, "test": 0.1, "seed": 7, "near_duplicate_distance": listed["options"]["split"]["near_duplicate_distance"]}
    assert cells[8].startswith(listed["archive_sha256"][:10])

    with page.expect_download() as info:
        row.locator("[data-testid=download-export]").click()
    blob = open(info.value.path(), "rb").read()
    assert hashlib.sha256(blob).hexdigest() == listed["archive_sha256"]
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(blob)).read("manifest.json"))
    assert sorted(i["id"] for i in manifest["images"]) == sorted(data["labelled"])
    assert any(name.startswith("cvat/") for name in manifest["files"])

    row.locator("[data-testid=show-manifest]").click()
    page.wait_for_selector("[data-testid=manifest]")
    assert "zip sha256: " + listed["archive_sha256"] in page.inner_text("[data-testid=manifest]")

    # a second export after one image was relabelled and one more accepted: the diff says so
    _relabel(console, data["labelled"][0])
    resp = admin.post("/api/v1/exports", json={"formats": ["coco"], "split": {"val": 0.25, "test": 0.1, "seed": 7}})
    assert resp.status_code == 202
    wait_for(timeout=60, predicate=lambda: admin.get(f"/api/v1/exports/{resp.get_json()['export_id']}").get_json()["status"] == "succeeded")
    page.reload()
    page.wait_for_selector("[data-testid=exports-table] tr[data-status=succeeded] >> nth=1")
    boxes = page.locator("[data-testid=exports-table] tr[data-status=succeeded] input[type=checkbox]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.click("[data-testid=compare-exports]")
    diff = page.locator("[data-testid=export-diff]")
    diff.wait_for()
    text = diff.inner_text()
    assert "+0 added" in text and "1 relabelled" in text, text
    assert f"image {data['labelled'][0]}:" in text
    shoot(page, "exports-diff")
    assert not page.js_errors, page.js_errors
