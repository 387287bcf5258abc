"""The model commands in-process (Flask's CLI runner): `train` with --promote-if-better, and `demo` (slow) on
synthetic data and on real photos with boxes."""
import pytest
from sqlalchemy import func, select

from backend.db.extensions import db
from backend.db.models import Image, ImageScore, ModelVersion, Prediction
from backend.ml.synth import write_export_folder

from ..support.app import REAL_TATTOOS, build_app
from ..support.models import SMALL_IMAGES

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_cli_train_with_promote_if_better(sqlite_app, tmp_path):
    export = tmp_path / "export"
    write_export_folder(export, 12, seed=3, **SMALL_IMAGES)
    runner = sqlite_app.test_cli_runner()
    args = ["train", "segmenter", "--export", str(export), "--epochs", "1", "--input-size", "64", "--batch-size", "4",
            "--device", "cpu", "--promote-if-better", "--no-progress"]
    first = runner.invoke(args=args)
    assert first.exit_code == 0, first.output
    assert "promoted: now the current model" in first.output and "val IoU" in first.output
    second = runner.invoke(args=args + ["--seed", "1"])
    assert second.exit_code == 0, second.output
    assert "scores" in second.output  # compared with the current model on the same validation images
    with sqlite_app.app_context():
        rows = db.session.scalars(select(ModelVersion).order_by(ModelVersion.id)).all()
        assert len(rows) == 2 and sum(r.is_current for r in rows) == 1
    bad = runner.invoke(args=["train", "segmenter", "--export", "missing-export", "--no-progress"])
    assert bad.exit_code != 0 and "not found" in bad.output
    odd = runner.invoke(args=["train", "segmenter", "--export", str(export), "--input-size", "100"])
    assert odd.exit_code != 0 and "multiple of 32" in odd.output


@pytest.mark.slow
def test_demo_builds_a_workspace(tmp_path):
    app = build_app(tmp_path, "sqlite")
    result = app.test_cli_runner().invoke(args=["demo", "--images", "24", "--epochs", "1", "--no-serve",
                                                "--no-progress", "--password", "demo-password-1"])
    assert result.exit_code == 0, result.output
    assert "login: demo / demo-password-1" in result.output
    with app.app_context():
        images = db.session.scalars(select(Image)).all()
        assert len(images) == 24 and {i.source for i in images} == {"synthetic"}
        accepted = [i for i in images if i.status == "accepted"]
        assert len(accepted) == 14
        current = {m.kind for m in db.session.scalars(select(ModelVersion).where(ModelVersion.is_current.is_(True)))}
        assert current == {"segmenter", "classifier"}
        predicted = set(db.session.scalars(select(Prediction.image_id)))
        assert predicted == {i.id for i in images if i.status == "new"}
        scored = set(db.session.scalars(select(ImageScore.image_id).where(ImageScore.strategy == "uncertainty")))
        assert scored == predicted  # the queue ranks by the demo model's uncertainty from the start
    client = app.test_client()
    assert client.post("/api/v1/auth/login", json={"username": "demo", "password": "demo-password-1"}).status_code == 200
    again = app.test_cli_runner().invoke(args=["demo", "--no-serve", "--no-progress"])
    assert again.exit_code != 0 and "fresh" in again.output


@pytest.mark.slow
def test_demo_with_real_photos_trains_on_their_boxes(tmp_path):
    from backend.db.models import Region

    photos = sorted((REAL_TATTOOS / "images").glob("*.jpg"))[:3] if REAL_TATTOOS.exists() else []
    if not photos:
        pytest.skip("the shared real photos are absent")
    real = tmp_path / "real"
    real.mkdir()
    for photo in photos:
        (real / photo.name).write_bytes(photo.read_bytes())
        (real / photo.with_suffix(".txt").name).write_bytes(photo.with_suffix(".txt").read_bytes())
    app = build_app(tmp_path, "sqlite")
    result = app.test_cli_runner().invoke(args=["demo", "--images", "12", "--epochs", "1", "--no-serve",
                                                "--no-progress", "--real", str(real)])
    assert result.exit_code == 0, result.output
    assert "3 real photo(s)" in result.output and "composites on their skin" in result.output
    with app.app_context():
        sources = {i.source for i in db.session.scalars(select(Image))}
        assert sources == {"synthetic", "import"}
        boxes = db.session.scalar(select(func.count()).select_from(Region).where(Region.kind == "box"))
        assert boxes >= 3
        seg = db.session.scalars(select(ModelVersion).where(ModelVersion.kind == "segmenter")).one()
        assert seg.metrics["train_box_images"] >= 1
    missing = build_app(tmp_path / "other", "sqlite").test_cli_runner().invoke(
        args=["demo", "--no-serve", "--real", str(tmp_path / "nowhere")])
    assert missing.exit_code != 0 and "does not exist" in missing.output
