"""The data commands in-process (Flask's CLI runner): `import` of folders of photos and of labelled datasets, and
`export`. Each test checks what was stored afterwards, on SQLite and PostgreSQL."""
from __future__ import annotations

import hashlib
import json
import zipfile

import pytest
from PIL import Image as PILImage

from backend.db.models import Annotation, Image

from ..support.app import REAL_TATTOOS
from ..support.datasets import annotated_images
from ..support.images import HTML, blob_files, count, encode, image_rows, two_tone
from ..support.images import two_tone_jpeg as jpeg


def test_import_command_on_a_folder(app, tmp_path):
    src = tmp_path / "incoming"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / ".git").mkdir()
    a = jpeg(seed=3)
    (src / "a.jpg").write_bytes(a)
    (src / "sub" / "b.PNG").write_bytes(encode(two_tone(20, 20), "PNG"))
    (src / "sub" / "deeper" / "c.webp").write_bytes(encode(two_tone(20, 10), "WEBP"))
    (src / "sub" / "copy.jpeg").write_bytes(a)
    (src / "sub" / "fake.jpg").write_bytes(HTML)
    (src / "notes.txt").write_text("not an image")
    (src / ".git" / "x.jpg").write_bytes(jpeg(seed=4))
    result = app.test_cli_runner().invoke(args=["import", str(src), "--source", "batch1"])
    assert result.exit_code == 0, result.output
    assert "imported 3 new image(s), skipped 1 duplicate(s), rejected 1 of 5 file(s)" in result.stdout
    assert "rejected sub/fake.jpg: This is an HTML document" in result.stderr
    rows = image_rows(app)
    assert sorted(r.original_filename for r in rows) == ["a.jpg", "b.PNG", "c.webp"]
    assert {r.source for r in rows} == {"batch1"} and {r.uploaded_by for r in rows} == {None}
    assert count(app, Annotation) == 3
    assert len([f for f in blob_files(app) if ".thumb" not in f and ".display" not in f]) == 3

    again = app.test_cli_runner().invoke(args=["import", str(src)])
    assert again.exit_code == 0 and "imported 0 new image(s), skipped 4 duplicate(s)" in again.stdout
    assert count(app, Image) == 3


def test_import_command_failures(app, tmp_path):
    runner = app.test_cli_runner()
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(args=["import", str(empty)])
    assert result.exit_code == 1 and "no JPEG, PNG or WebP files" in result.output
    (empty / "bad.jpg").write_bytes(b"")
    result = runner.invoke(args=["import", str(empty)])
    assert result.exit_code == 1 and "rejected bad.jpg: The file is empty" in result.stderr
    assert runner.invoke(args=["import", str(tmp_path / "nope")]).exit_code == 2
    assert runner.invoke(args=["import", str(empty), "--source", "Bad Source"]).exit_code == 2
    help_text = runner.invoke(args=["import", "--help"]).output
    assert "recursively" in help_text and "duplicates" in help_text and "--format" in help_text
    assert count(app, Image) == 0


def test_import_command_dataset_formats_delegate(app, tmp_path, monkeypatch):
    import backend.datasets.importers as importers

    calls = []

    class Report:
        images_added, images_existing = 2, 1
        skipped, skipped_count = [{"item": "x.json", "reason": "not a LabelMe file"}], 1

        def __str__(self):
            return "2 images added, 1 already present"

    def fake_import_path(path, fmt, source, progress, status=None):
        calls.append((path, fmt, source))
        progress(3, 3, "importing")
        return Report()

    monkeypatch.setattr(importers, "import_path", fake_import_path)
    result = app.test_cli_runner().invoke(args=["import", str(tmp_path), "--format", "labelme", "--source", "lm1"])
    assert result.exit_code == 0, result.output
    assert calls == [(tmp_path.resolve(), "labelme", "lm1")]
    assert "labelme import: 2 images added, 1 already present" in result.stdout
    assert "skipped x.json: not a LabelMe file" in result.stderr

    Report.images_added = Report.images_existing = 0
    assert app.test_cli_runner().invoke(args=["import", str(tmp_path), "--format", "coco"]).exit_code == 1


@pytest.mark.skipif(not (REAL_TATTOOS / "images").is_dir(), reason="../shared/data/real-tattoos is not on this machine")
def test_import_real_tattoos(app):
    result = app.test_cli_runner().invoke(args=["import", str(REAL_TATTOOS / "images")])
    assert result.exit_code == 0, result.output
    jpgs = sorted((REAL_TATTOOS / "images").glob("*.jpg"))
    distinct = {hashlib.sha256(p.read_bytes()).hexdigest() for p in jpgs}
    assert count(app, Image) == len(distinct) and count(app, Annotation) == len(distinct)
    assert f"imported {len(distinct)} new image(s), skipped {len(jpgs) - len(distinct)} duplicate(s)" in result.stdout
    for row in image_rows(app)[:3]:
        with PILImage.open(REAL_TATTOOS / "images" / row.original_filename) as img:
            assert row.format == "jpeg" and max(row.width, row.height) == max(img.size)


def test_cli_export(app, tmp_path):
    annotated_images(app, 3)
    runner = app.test_cli_runner()
    out = tmp_path / "copy" / "set.zip"
    result = runner.invoke(args=["export", "--formats", "coco,masks", "--split", "val=0.34,test=0,seed=1",
                                 "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(out)
    with zipfile.ZipFile(out) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["options"]["formats"] == ["coco", "masks"] and manifest["split"]["seed"] == 1
    assert manifest["counts"]["images"]["test"] == 0 and sum(manifest["counts"]["images"].values()) == 3
    bad = runner.invoke(args=["export", "--formats", "coco,gif"])
    assert bad.exit_code == 2 and "formats" in bad.output
    bad = runner.invoke(args=["export", "--split", "val=lots"])
    assert bad.exit_code == 2 and "number" in bad.output
    help_text = runner.invoke(args=["export", "--help"]).output
    assert "near-" in help_text and "--status" in help_text
