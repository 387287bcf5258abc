"""The ML console's Models page as an admin: train a tiny segmenter from the form and watch its curves grow epoch
by epoch, see a classifier's confusion matrix and per-style F1, promote a model and roll back."""
from __future__ import annotations

import pytest

from .console_support import console, labelled_data, make_export, shoot  # noqa: F401 (fixture)
from ..support.browser import login_api

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]  # trains 4 tiny models


def _train(page, kind: str, epochs: int, size: int, batch: int, promote: str, encoder: str = "",
           weights: str = "auto") -> None:
    form = page.locator("form[aria-label='Train a model']")
    form.locator("select[name=kind]").select_option(kind)
    if encoder:
        form.locator("input[name=encoder]").fill(encoder)
    form.locator("select[name=encoder_weights]").select_option(weights)
    form.locator("input[name=epochs]").fill(str(epochs))
    form.locator("input[name=input_size]").fill(str(size))
    form.locator("input[name=batch_size]").fill(str(batch))
    form.locator("select[name=device]").select_option("cpu")
    form.locator("select[name=promote]").select_option(promote)
    form.locator("[data-testid=start-training]").click()


def _current_ids(client) -> dict:
    return {m["kind"]: m["id"] for m in client.get("/api/v1/models?current=true").get_json()["items"]}


def _hold_after_first_epoch(monkeypatch):
    """Make the training job (it runs in this process, in the live server's job thread) wait after its first epoch
    until the test has seen that epoch drawn: the live curve is then checked without racing the training."""
    import threading

    from backend.jobs import training

    release = threading.Event()
    original = training._live_history

    def held(ctx, kind, epochs):
        record = original(ctx, kind, epochs)

        def hook(entry):
            record(entry)
            if entry["epoch"] == 1:
                release.wait(60)
        return hook

    monkeypatch.setattr(training, "_live_history", held)
    return release


def test_train_watch_curves_confusion_promote_and_roll_back(console, page, monkeypatch):
    labelled_data(console, n=8, fraction=0.75)
    make_export(console)
    admin = console.client(console.user("ml2", "admin")[1])
    login_api(page, console, "ml")
    page.goto(console.url + "/#/models")
    page.wait_for_selector("[data-testid=models-table]")
    assert "No models yet" in page.inner_text("[data-testid=models-table]")

    # a segmenter: the live curve shows epochs as they finish (the job's result carries the history meanwhile)
    release = _hold_after_first_epoch(monkeypatch)
    _train(page, "segmenter", 3, 64, 4, "if_better")
    page.wait_for_selector("[data-testid=live-curve-host][data-epochs='1'] canvas", timeout=60_000)
    running = admin.get("/api/v1/jobs?kind=train").get_json()["items"][0]
    assert running["status"] == "running" and running["result"]["live"] and len(running["result"]["history"]) == 1
    release.set()  # the curve grows to the last epoch while the job goes on
    page.wait_for_selector("[data-testid=model-detail]", timeout=120_000)
    assert page.get_attribute("[data-testid=live-curve-host]", "data-epochs") == "3"
    detail = page.locator("[data-testid=model-detail]")
    detail.locator("[data-testid=training-curve] canvas").wait_for()
    legend = detail.locator("[data-testid=training-curve] .u-legend").inner_text()
    assert "train loss" in legend and "val IoU" in legend, legend
    seg = admin.get("/api/v1/models?kind=segmenter").get_json()["items"][0]
    assert len(seg["metrics"]["history"]) == 3 and seg["is_current"]  # the first model is better than none
    assert detail.locator(".badge.current").count() == 1
    page.locator("[data-testid=overlay]").first.wait_for(timeout=60_000)
    shoot(page, "models-segmenter")
    # trained on masks alone: the pre-fill is not fitted to boxes, and the page says how to get there
    assert "Not fitted" in detail.locator("[data-testid=prefill-fit]").inner_text()

    # pre-fill the new images with the current segmenter, with a progress bar (the promotion pre-filled them
    # already: recompute)
    page.check("[data-testid=prefill-refresh]")
    page.click("[data-testid=prefill-pool]")
    page.wait_for_function("() => /succeeded/.test(document.querySelector('[data-testid=prefill-status]').textContent)", timeout=60_000)
    status = page.inner_text("[data-testid=prefill-status]")
    assert "2 pre-filled, 0 already" in status, status
    with console.app.app_context():
        from sqlalchemy import func, select

        from backend.db.extensions import db
        from backend.db.models import Prediction

        assert db.session.scalar(select(func.count(func.distinct(Prediction.image_id)))) >= 2

    # a classifier, not promoted: confusion matrix, F1 bars, side by side has no current yet
    _train(page, "classifier", 2, 32, 8, "never")
    page.wait_for_function("() => document.querySelector('[data-testid=model-detail]')?.textContent.includes('classifier')", timeout=120_000)
    detail.locator("canvas[data-testid=confusion]").wait_for()
    detail.locator("[data-testid=f1-bars] canvas").wait_for()
    cls = admin.get("/api/v1/models?kind=classifier").get_json()["items"][0]
    assert not cls["is_current"]
    classes = cls["metrics"]["val"]["confusion"]["classes"]
    assert classes and len(cls["metrics"]["val"]["confusion"]["matrix"]) == len(classes)
    detail.locator("canvas[data-testid=confusion]").scroll_into_view_if_needed()
    shoot(page, "models-classifier")

    # promote it from the page
    detail.locator("[data-testid=promote-model]").click()
    page.click("dialog [data-value=true]")
    page.wait_for_function("() => !document.querySelector('[data-testid=promote-model]')")
    assert _current_ids(admin)["classifier"] == cls["id"]

    # a second classifier from ImageNet weights (EfficientNet-Lite0's come in a package: offline), promoted by hand,
    # then roll back to the first from its page
    _train(page, "classifier", 1, 32, 8, "always", encoder="tf_efficientnet_lite0", weights="imagenet")
    page.wait_for_function(f"() => document.querySelector('[data-testid=model-detail]')?.textContent.includes('Model #{cls['id'] + 1}')", timeout=120_000)
    assert _current_ids(admin)["classifier"] == cls["id"] + 1
    second = admin.get(f"/api/v1/models/{cls['id'] + 1}").get_json()
    assert second["architecture"]["backbone"] == "tf_efficientnet_lite0", second["architecture"]
    assert second["metrics"]["pretrained"] is True
    text = page.inner_text("[data-testid=model-detail]")
    assert "tf_efficientnet_lite0 (from ImageNet weights)" in text, text[:300]
    page.click(f"tr[data-model-id='{cls['id']}'] button.link")
    page.wait_for_function(f"() => document.querySelector('[data-testid=model-detail]')?.textContent.includes('Model #{cls['id']}')")
    side = page.inner_text("[data-testid=side-by-side]")
    assert f"#{cls['id'] + 1} (current)" in side, side
    rollback = page.locator("[data-testid=promote-model]")
    assert rollback.inner_text() == "Roll back to this version"
    rollback.click()
    page.click("dialog [data-value=true]")
    page.wait_for_function("() => !document.querySelector('[data-testid=promote-model]')")
    assert _current_ids(admin)["classifier"] == cls["id"]

    # a segmenter whose training fitted the pre-fill to boxes (train.fit_prefill) shows what was fitted
    fit = {"threshold": 0.85, "group_gap": 0.015, "min_score": 0.4, "regions": 490, "regions_kept": 234,
           "ap50": 0.1565, "recall50": 0.2871, "base_ap50": 0.0948, "images": 89, "boxes": 202,
           "measure": "box_ap50", "grid": {}}
    with console.app.app_context():
        from backend.db.extensions import db
        from backend.db.models import ModelVersion

        row = db.session.get(ModelVersion, seg["id"])
        row.metrics = {**row.metrics, "prefill_fit": fit}
        db.session.commit()
    page.click(f"tr[data-model-id='{seg['id']}'] button.link")
    page.wait_for_function(f"() => document.querySelector('[data-testid=model-detail]')?.textContent.includes('Model #{seg['id']}')")
    fitted = page.locator("[data-testid=prefill-fit]")
    fitted.scroll_into_view_if_needed()
    text = fitted.inner_text()
    assert "Fitted to 89 box-labelled photos (202 boxes)" in text and "at least 85 % sure" in text, text
    assert "closer than 3 % of the photo's short side" in text and "AP50 0.157" in text and "0.095" in text, text
    assert "score under 0.4) are not suggested" in text and "256 of the 490 suggestions" in text, text
    shoot(page, "models-prefill-fit")
    assert not page.js_errors, page.js_errors
