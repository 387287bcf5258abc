"""The ML console's dataset dashboard (as a reviewer) and the low-concentration gallery with bulk actions (as an
admin): numbers from /dataset/overview and /stats, the concentration histogram with its threshold line, photos
lowest concentration first, flags set through new annotation versions, images sent back to the queue."""
from __future__ import annotations

import pytest

from .console_support import console, labelled_data, shoot  # noqa: F401 (fixture)
from ..support.browser import login_api

pytestmark = pytest.mark.e2e


def _predict(live, concentrations: dict[int, float]) -> None:
    from backend.db.extensions import db
    from backend.db.models import Prediction

    with live.app.app_context():
        for image_id, value in concentrations.items():
            db.session.add(Prediction(image_id=image_id, concentration=value, regions=[], style_probs={}, uncertainty={}))
        db.session.commit()


def test_dashboard_shows_the_dataset(console, page):
    data = labelled_data(console, n=8, fraction=0.5)
    ids = data["labelled"] + data["unlabelled"]
    _predict(console, {i: c for i, c in zip(ids, (0.02, 0.12, 0.18, 0.31, 0.44, 0.52, 0.77, 0.93))})
    login_api(page, console, "rev")
    page.goto(console.url + "/#/dashboard")
    page.wait_for_selector("[data-testid=concentration-chart] canvas")
    tiles = page.inner_text("[data-testid=tiles]")
    assert "8\nimages" in tiles and "3\nunder 25 % tattoo" in tiles, tiles
    styles = page.inner_text("[data-testid=styles-table]")
    overview = console.client(console.user("rev2", "reviewer")[1]).get("/api/v1/dataset/overview").get_json()
    assert overview["concentration"]["counts"][0] == 1 and overview["concentration"]["below_threshold"] == 3
    for key, n in overview["styles"]["regions"].items():
        assert str(n) in styles
    assert page.locator("[data-testid=throughput-chart] canvas").count() == 1
    assert "ml" in page.inner_text("[data-testid=throughput-table]")
    shoot(page, "dashboard")
    page.click("[data-testid=low-link]")
    page.wait_for_selector("[data-testid=not-allowed]")  # the gallery is the admins' page
    assert not page.js_errors, page.js_errors


def test_gallery_lowest_first_and_bulk_actions(console, page):
    data = labelled_data(console, n=6, fraction=0.5)
    ids = data["labelled"] + data["unlabelled"]
    conc = dict(zip(ids, (0.40, 0.05, 0.20, 0.90, 0.10, 0.60)))
    _predict(console, conc)
    login_api(page, console, "ml")
    page.goto(console.url + "/#/gallery?below=0.25")
    page.wait_for_selector("[data-testid=gallery] li[data-image-id]")
    shown = [int(x) for x in page.eval_on_selector_all("[data-testid=gallery] li[data-image-id]", "els => els.map(e => e.dataset.imageId)")]
    low = sorted((i for i in ids if conc[i] < 0.25), key=conc.get)
    assert shown == low

    # tick the first, shift-tick the last: the range; mark them bad training examples
    boxes = page.locator("[data-testid=gallery] li input[type=checkbox]")
    boxes.nth(0).click()
    boxes.nth(len(low) - 1).click(modifiers=["Shift"])
    assert page.inner_text("[data-testid=selected-count]") == f"{len(low)} selected"
    shoot(page, "gallery")
    page.click("[data-action=bad_example]")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=gallery] .chip.flag').length === %d" % len(low))
    admin = console.client(console.user("ml2", "admin")[1])
    for image_id in low:
        doc = admin.get(f"/api/v1/images/{image_id}/annotation").get_json()
        assert "bad_example" in doc["tags"]["flags"] and doc["version"] >= 1
    regions_before = {i: len(admin.get(f"/api/v1/images/{i}/annotation").get_json()["regions"]) for i in low}

    # flagged first, then send an accepted one back to the queue
    page.goto(console.url + "/#/gallery?order=flag")
    page.wait_for_selector("[data-testid=gallery] li[data-image-id]")
    first = [int(x) for x in page.eval_on_selector_all("[data-testid=gallery] li[data-image-id]", "els => els.map(e => e.dataset.imageId)")][:len(low)]
    assert sorted(first) == sorted(low)
    accepted = next(i for i in low if i in data["labelled"])
    page.locator(f"li[data-image-id='{accepted}'] input[type=checkbox]").click()
    page.click("[data-action=requeue]")
    page.wait_for_selector(f"li[data-image-id='{accepted}'] .badge[data-status=new]")
    assert admin.get(f"/api/v1/images/{accepted}").get_json()["status"] == "new"
    # nothing of the annotation was lost on the way
    assert len(admin.get(f"/api/v1/images/{accepted}/annotation").get_json()["regions"]) == regions_before[accepted]
    assert not page.js_errors, page.js_errors
