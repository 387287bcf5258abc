"""The routes the ML console reads (SQLite and PostgreSQL): dataset overview, the concentration gallery and bulk
curation, export manifest / diff / checksum / style and flag filters, who started a job, and the training job's
live per-epoch history."""
import hashlib

from backend.db.extensions import db
from backend.db.models import Image, Job, Prediction

from ..support.datasets import add_image, disc, donut, jpeg, smooth_image


def _images(app, styles=("japanese", "tribal", "japanese", None)):
    with app.app_context():
        return [add_image(jpeg(smooth_image(k)), [{"id": f"r{k}", "geometry": donut(60, 60, 40, 15), "style": s,
                                                   "motifs": []}]) for k, s in enumerate(styles)]


def _predict(app, values: dict[int, float]):
    with app.app_context():
        for image_id, value in values.items():
            db.session.add(Prediction(image_id=image_id, concentration=value, regions=[], style_probs={},
                                      uncertainty={}))
        db.session.commit()


def test_overview_counts_and_histogram(app, reviewer, annotator):
    ids = _images(app)
    _predict(app, {ids[0]: 0.03, ids[1]: 0.24, ids[2]: 0.25, ids[3]: 1.0})
    _predict(app, {ids[0]: 0.5})  # the newest prediction of an image counts
    assert annotator.get("/api/v1/dataset/overview").status_code == 403
    ov = reviewer.get("/api/v1/dataset/overview").get_json()
    assert ov["images"]["total"] == 4 and ov["images"]["by_status"]["accepted"] == 4
    assert ov["styles"]["regions"] == {"(no style)": 1, "japanese": 2, "tribal": 1}
    assert ov["styles"]["images"] == {"japanese": 2, "tribal": 1}
    c = ov["concentration"]
    assert c["threshold"] == 0.25 and c["below_threshold"] == 1 and c["with_prediction"] == 4
    assert len(c["bins"]) == 21 and len(c["counts"]) == 20
    assert c["counts"][4] == 1 and c["counts"][5] == 1 and c["counts"][10] == 1 and c["counts"][19] == 1


def test_gallery_order_and_bulk_actions(app, admin, reviewer):
    ids = _images(app)
    _predict(app, {ids[0]: 0.2, ids[1]: 0.05, ids[2]: 0.7})  # ids[3] has no prediction: last
    assert reviewer.get("/api/v1/dataset/concentration").status_code == 403
    page = admin.get("/api/v1/dataset/concentration").get_json()
    assert [i["id"] for i in page["items"]] == [ids[1], ids[0], ids[2], ids[3]] and page["total"] == 4
    assert page["items"][-1]["concentration"] is None
    low = admin.get("/api/v1/dataset/concentration?below=0.25&per_page=1&page=2").get_json()
    assert low["total"] == 2 and [i["id"] for i in low["items"]] == [ids[0]]

    resp = admin.post("/api/v1/dataset/bulk", json={"image_ids": [ids[1], ids[0], 999_999], "action": "not_tattoo"})
    assert resp.status_code == 200, resp.get_json()
    out = resp.get_json()
    assert out["changed"] == sorted([ids[0], ids[1]]) and out["missing"] == [999_999]
    doc = admin.get(f"/api/v1/images/{ids[1]}/annotation").get_json()
    assert doc["tags"]["flags"] == ["not_tattoo"] and len(doc["regions"]) == 1 and doc["version"] == 2
    again = admin.post("/api/v1/dataset/bulk", json={"image_ids": [ids[1]], "action": "not_tattoo"}).get_json()
    assert again["unchanged"] == [ids[1]]
    flagged = admin.get("/api/v1/dataset/concentration?order=flag").get_json()
    assert {i["id"] for i in flagged["items"][:2]} == {ids[0], ids[1]}
    assert admin.get("/api/v1/dataset/concentration?flag=not_tattoo").get_json()["total"] == 2

    assert admin.post("/api/v1/dataset/bulk", json={"image_ids": [ids[2]], "action": "requeue"}).get_json()["changed"] == [ids[2]]
    with app.app_context():
        assert db.session.get(Image, ids[2]).status == "new"
    for bad in ({"image_ids": [], "action": "requeue"}, {"image_ids": [1], "action": "delete"}, {"image_ids": "x"}):
        assert admin.post("/api/v1/dataset/bulk", json=bad).status_code == 422


def _me(client) -> dict:
    return client.get("/api/v1/auth/me").get_json()["user"]


def test_export_checksum_manifest_diff_and_filters(app, admin):
    ids = _images(app)
    with app.app_context():
        flagged = add_image(jpeg(smooth_image(9)), [{"id": "f", "geometry": disc(50, 50, 20), "style": "tribal",
                                                     "motifs": []}], tags={"styles": [], "flags": ["store_front"]})
    first = admin.post("/api/v1/exports", json={"formats": ["coco"], "split": {"val": 0.5, "test": 0, "seed": 1}}).get_json()
    one = admin.get(f"/api/v1/exports/{first['export_id']}").get_json()
    blob = admin.get(one["download_url"]).data
    assert one["archive_sha256"] == hashlib.sha256(blob).hexdigest()
    listed = admin.get("/api/v1/exports").get_json()["items"][0]
    assert listed["created_by_name"] == _me(admin)["username"] and listed["counts"]["images"] and listed["archive_sha256"]
    manifest = admin.get(f"/api/v1/exports/{first['export_id']}/manifest").get_json()
    assert sorted(i["id"] for i in manifest["images"]) == sorted(ids) and manifest["files"]

    # relabel one image, drop one (rejected), keep the seed: the diff says exactly that
    admin.put(f"/api/v1/images/{ids[0]}/annotation", json={"base_version": 1, "regions": [], "tags": {"styles": [], "flags": []}})
    with app.app_context():
        db.session.get(Image, ids[3]).status = "rejected"
        db.session.commit()
    second = admin.post("/api/v1/exports", json={"formats": ["coco"], "split": {"val": 0.5, "test": 0, "seed": 1}}).get_json()
    diff = admin.get(f"/api/v1/exports/{second['export_id']}/diff?against={first['export_id']}").get_json()
    assert diff["counts"] == {"added": 0, "removed": 1, "relabelled": 1, "moved": 0, "unchanged": 2}
    assert diff["removed"][0]["id"] == ids[3] and diff["relabelled"][0]["id"] == ids[0]
    assert diff["relabelled"][0]["old_version"] == 1 and diff["relabelled"][0]["version"] == 2
    default = admin.get(f"/api/v1/exports/{second['export_id']}/diff").get_json()  # against the one before
    assert default["old_export_id"] == first["export_id"] and default["counts"] == diff["counts"]
    assert admin.get(f"/api/v1/exports/{second['export_id']}/diff?against=nope").status_code == 404

    # style and flag filters
    tribal = admin.post("/api/v1/exports", json={"formats": ["coco"], "filter": {"status": ["accepted"], "styles": ["tribal"]},
                                                 "include_excluded": True}).get_json()
    m = admin.get(f"/api/v1/exports/{tribal['export_id']}/manifest").get_json()
    assert sorted(i["id"] for i in m["images"]) == sorted([ids[1], flagged])
    fronts = admin.post("/api/v1/exports", json={"formats": ["coco"], "filter": {"status": ["accepted"], "flags": ["store_front"]},
                                                 "include_excluded": True}).get_json()
    m = admin.get(f"/api/v1/exports/{fronts['export_id']}/manifest").get_json()
    assert [i["id"] for i in m["images"]] == [flagged]
    bad = admin.post("/api/v1/exports", json={"filter": {"status": ["accepted"], "styles": ["Not A Key"]}})
    assert bad.status_code == 422


def test_jobs_say_who_started_them_and_filter_by_kind(app, admin, annotator):
    admin_id = _me(admin)["id"]
    with app.app_context():
        for kind in ("export", "prefill"):
            db.session.add(Job(kind=kind, params={}, status="queued", created_by=admin_id))
        db.session.add(Job(kind="scores", params={}, status="queued", created_by=None))
        db.session.commit()
    jobs = admin.get("/api/v1/jobs").get_json()
    assert jobs["total"] == 3
    names = {j["kind"]: j["created_by_name"] for j in jobs["items"]}
    assert names["scores"] is None and names["export"] == _me(admin)["username"]
    only = admin.get("/api/v1/jobs?kind=prefill").get_json()
    assert [j["kind"] for j in only["items"]] == ["prefill"]
    assert admin.get("/api/v1/jobs?kind=Bad-Kind").status_code == 422


def test_training_reports_each_epoch_as_it_ends(sqlite_app, tmp_path, one_torch_thread):
    """train_model's on_epoch hook sees every history entry at once, and the train job keeps them in its result
    while it runs (the console's live curves read GET /jobs/<id>)."""
    from types import SimpleNamespace

    from backend.ml.data import open_export
    from backend.ml.synth import write_export_folder
    from backend.ml.train import TrainOptions, train_model
    from backend.jobs.training import _live_history

    from ..support.models import SMALL_IMAGES

    export = tmp_path / "export"
    write_export_folder(export, 8, seed=3, **SMALL_IMAGES)
    seen = []
    with open_export(export) as data:
        result = train_model(data, TrainOptions(kind="segmenter", epochs=3, input_size=64, batch_size=4, device="cpu"),
                             on_epoch=seen.append)
    assert seen == result.metrics["history"] and [e["epoch"] for e in seen] == [1, 2, 3]

    with sqlite_app.app_context():
        job = Job(kind="train", params={}, status="running")
        db.session.add(job)
        db.session.commit()
        record = _live_history(SimpleNamespace(job_id=job.id), "segmenter", 3)
        record(seen[0])
        record(seen[1])
        db.session.expire_all()
        live = db.session.get(Job, job.id).result
    assert live == {"live": True, "kind": "segmenter", "epochs": 3, "history": seen[:2]}
