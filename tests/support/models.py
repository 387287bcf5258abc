"""Tiny trained models for the tests that need a current segmenter / classifier (tests/conftest.py's
`tiny_bundles` fixture trains them once per module)."""
import json
import shutil
from pathlib import Path

from backend.db.extensions import db
from backend.ml.data import open_export
from backend.ml.synth import write_export_folder
from backend.ml.train import TrainOptions, train_model
from backend.ml.weights import save_bundle
from backend.db.models import ModelVersion

TINY_DECODER = [32, 16, 16, 16, 8]
SMALL_IMAGES = {"width": 96, "height": 96, "p_empty": 0.0, "n_tattoos": 1}


def train_tiny_bundles(root: Path) -> Path:
    """A tiny segmenter (64 px) and classifier (32 px) trained on 24 procedural 96 px images; files in root/models."""
    export = root / "export"
    write_export_folder(export, 24, seed=5, **SMALL_IMAGES)
    with open_export(export) as data:
        seg = train_model(data, TrainOptions(kind="segmenter", epochs=10, input_size=64, batch_size=8, lr=1e-2,
                                             decoder_channels=TINY_DECODER, device="cpu"))
        cls = train_model(data, TrainOptions(kind="classifier", epochs=4, input_size=32, batch_size=8,
                                             device="cpu"))
    save_bundle(seg.model, seg.sidecar, root / "models", "tiny-seg")
    save_bundle(cls.model, cls.sidecar, root / "models", "tiny-cls")
    return root / "models"


def register_models(app, bundle_dir: Path, classifier: bool = True, promote: bool = True) -> dict:
    """Copy the tiny bundles into the app's workspace and register (and promote) them as model versions."""
    target = Path(app.config["WORKSPACE"]) / "models"
    target.mkdir(parents=True, exist_ok=True)
    ids = {}
    kinds = [("segmenter", "tiny-seg")] + ([("classifier", "tiny-cls")] if classifier else [])
    with app.app_context():
        for kind, name in kinds:
            for suffix in (".safetensors", ".json"):
                shutil.copy(bundle_dir / f"{name}{suffix}", target / f"{name}{suffix}")
            side = json.loads((target / f"{name}.json").read_text())
            mv = ModelVersion(kind=kind, name=name, architecture=side["architecture"],
                              weights_path=f"{name}.safetensors", metrics=side["metrics"], export_id="synthetic",
                              is_current=promote)
            db.session.add(mv)
            db.session.commit()
            ids[kind] = mv.id
    return ids


def timm_offline(monkeypatch) -> None:
    """timm.create_model as on a machine without network: asking for pretrained weights fails as a download would."""
    import timm

    real_create = timm.create_model

    def create(name, pretrained=False, **kwargs):
        if pretrained:
            raise OSError("network unreachable (test)")
        return real_create(name, pretrained=False, **kwargs)

    monkeypatch.setattr(timm, "create_model", create)
