"""Issue 19 item 1: the current models are loaded once per process when a server starts (in a background thread),
not by the first pre-fill request; with no model yet the warm-up ends quietly."""
import pytest

from backend.jobs import predictions as prefill_tasks
from backend.serve.warmup import start_model_warmup, warm_models

from ..support.models import register_models

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_warm_up_without_a_model_ends_quietly(app):
    prefill_tasks.clear_model_cache()
    assert warm_models(app) is False
    assert len(prefill_tasks._MODELS) == 0
    app.config["WARM_MODELS"] = False
    assert start_model_warmup(app) is None


def test_warm_up_loads_the_current_models_before_the_first_prefill(app, annotator, tiny_bundles):
    prefill_tasks.clear_model_cache()
    register_models(app, tiny_bundles)
    app.config["WARM_MODELS"] = True
    thread = start_model_warmup(app)
    thread.join(60)
    assert not thread.is_alive()
    assert len(prefill_tasks._MODELS) == 2  # segmenter and classifier, in the cache requests use
    loads = []
    original = prefill_tasks._MODELS.get

    def counting_get(key, loader):
        return original(key, lambda: loads.append(key) or loader())

    prefill_tasks._MODELS.get = counting_get
    try:
        resp = annotator.upload([(_jpeg(), "a.jpg")])
        image_id = resp.get_json()["images"][0]["id"]
        assert annotator.post(f"/api/v1/images/{image_id}/prefill").status_code == 200
    finally:
        del prefill_tasks._MODELS.get
    assert loads == [], "the first pre-fill of the process found the models already loaded"


def _jpeg() -> bytes:
    from backend.ml.synth import generate_image

    return generate_image(3, width=96, height=96).jpeg_bytes()
