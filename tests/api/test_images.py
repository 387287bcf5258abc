"""Image ingest through the API and the CLI: uploads, refusals, the list, the bytes. Each test checks what was
stored afterwards (rows in the database, files under blobs/), on SQLite and PostgreSQL."""
from __future__ import annotations

import hashlib
import io
import shutil
import threading
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import select, update

from backend.db.extensions import db
from backend.media.imaging import ImageRejected
from backend.core.ingest import ingest_bytes
from backend.core.tags import rebuild_image_tags, sync_image_tags
from backend.db.models import Annotation, AnnotationRevision, Image, ImageTag

from ..support.images import (
    HTML,
    SVG,
    animated,
    blob_files,
    cmyk_jpeg,
    count,
    encode,
    exif_rotated_jpeg,
    image_rows,
    palette_alpha_png,
    png_header_only,
    sixteen_bit_png,
    two_tone,
    workspace,
)
from ..support.images import two_tone_jpeg as jpeg


# --- helpers --------------------------------------------------------------------------------------------------------

def uid(client) -> int:
    return client.get("/api/v1/auth/me").get_json()["user"]["id"]


def error(resp) -> dict:
    body = resp.get_json()
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def upload_one(client, data: bytes, name: str):
    resp = client.upload([(data, name)])
    return resp, resp.get_json()


def assert_nothing_stored(app):
    assert count(app, Image) == 0 and count(app, Annotation) == 0
    assert blob_files(app) == []


# --- accepted uploads -----------------------------------------------------------------------------------------------

ACCEPTED = [
    ("jpeg", lambda: encode(two_tone(64, 48), "JPEG"), (64, 48)),
    ("png", lambda: encode(two_tone(64, 48), "PNG"), (64, 48)),
    ("webp", lambda: encode(two_tone(64, 48), "WEBP"), (64, 48)),
    ("jpeg", cmyk_jpeg, (24, 24)),
    ("png", sixteen_bit_png, (4, 4)),
    ("png", palette_alpha_png, (16, 16)),
    ("webp", lambda: animated("WEBP"), (32, 24)),
]


def test_upload_accepted_formats(app, annotator):
    """JPEG, PNG, WebP; CMYK, 16-bit, palette+alpha, animated: each stored byte for byte with its row."""
    user_id = uid(annotator)
    for n, (fmt, make, size) in enumerate(ACCEPTED, start=1):
        data = make()
        resp, body = upload_one(annotator, data, f"photo.{fmt}")
        assert resp.status_code == 201, (n, body)
        (item,) = body["images"]
        assert body["rejected"] == []
        sha = hashlib.sha256(data).hexdigest()
        assert item["sha256"] == sha and (item["width"], item["height"]) == size and item["duplicate"] is False
        row = image_rows(app)[-1]
        assert (row.id, row.sha256, row.format, row.width, row.height) == (item["id"], sha, fmt, *size), n
        assert row.size_bytes == len(data) and row.source == "upload" and row.status == "new"
        assert row.uploaded_by == user_id and len(row.phash) == 16
        ext = {"jpeg": "jpg", "png": "png", "webp": "webp"}[fmt]
        original = workspace(app) / "blobs" / sha[:2] / sha[2:4] / f"{sha}.{ext}"
        assert original.read_bytes() == data  # byte for byte
        with app.app_context():
            annotation = db.session.get(Annotation, row.id)
            assert annotation.version == 0 and annotation.document["regions"] == []
    assert count(app, Image) == count(app, Annotation) == len(ACCEPTED)
    assert count(app, AnnotationRevision) == 0


def test_format_is_sniffed_not_taken_from_the_name(app, annotator):
    data = encode(two_tone(20, 10), "PNG")
    resp, body = upload_one(annotator, data, "holiday.jpg")
    assert resp.status_code == 201
    (row,) = image_rows(app)
    assert row.format == "png" and row.original_filename == "holiday.jpg"
    assert any(name.endswith(".png") for name in blob_files(app))
    original = annotator.get(f"/api/v1/images/{row.id}/file?size=original")
    assert original.headers["Content-Type"] == "image/png"
    assert 'filename=holiday.png' in original.headers["Content-Disposition"]


def test_exif_rotated_jpeg_is_stored_upright(app, annotator):
    data = exif_rotated_jpeg(300, 100)
    resp, body = upload_one(annotator, data, "rotated.jpg")
    assert resp.status_code == 201
    item = body["images"][0]
    assert (item["width"], item["height"]) == (100, 300)  # swapped: dimensions of the upright image
    (row,) = image_rows(app)
    assert (row.width, row.height) == (100, 300)
    thumb = annotator.get(f"/api/v1/images/{row.id}/file?size=thumb")
    assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/jpeg"
    img = PILImage.open(io.BytesIO(thumb.data)).convert("RGB")
    assert img.size == (85, 256)
    top, bottom = img.getpixel((42, 20)), img.getpixel((42, 236))
    assert top[0] > 200 and top[2] < 80, top  # the red half is on top once upright
    assert bottom[2] > 200 and bottom[0] < 80, bottom
    assert "exif" not in PILImage.open(io.BytesIO(thumb.data)).info  # nothing left for a viewer to rotate again


def test_duplicate_returns_the_existing_image(app, annotator, make_client):
    data = jpeg()
    first = upload_one(annotator, data, "a.jpg")[1]["images"][0]
    files_before = blob_files(app)
    other = make_client("annotator")
    resp, body = upload_one(other, data, "copy-of-a.jpg")
    assert resp.status_code == 201
    second = body["images"][0]
    assert second["duplicate"] is True and second["id"] == first["id"] and second["sha256"] == first["sha256"]
    (row,) = image_rows(app)
    assert row.original_filename == "a.jpg" and row.uploaded_by == uid(annotator)
    assert count(app, Annotation) == 1 and blob_files(app) == files_before


def test_traversal_name_is_display_only(app, annotator, tmp_path):
    before = sorted(str(p) for p in tmp_path.rglob("*") if "blobs" not in p.parts)
    resp, body = upload_one(annotator, jpeg(), "../../etc/passwd.jpg")
    assert resp.status_code == 201
    (row,) = image_rows(app)
    assert row.original_filename == "passwd.jpg"
    after = sorted(str(p) for p in tmp_path.rglob("*") if "blobs" not in p.parts)
    new_outside_blobs = set(after) - set(before)
    assert all(Path(p).name.startswith("inklabel.db") for p in new_outside_blobs), new_outside_blobs
    assert not (tmp_path / "etc").exists() and not (workspace(app) / "etc").exists()
    assert all(name.startswith(row.sha256[:2] + "/") for name in blob_files(app))


# --- refused uploads ------------------------------------------------------------------------------------------------

def _truncated_jpeg() -> bytes:
    data = encode(PILImage.effect_noise((256, 256), 60).convert("RGB"), "JPEG", quality=90)
    return data[: len(data) // 2]


REFUSED = [
    (b"", "empty.jpg", 400, "empty_file", "empty"),
    (HTML, "cat.jpg", 415, "unsupported_format", "HTML"),
    (SVG, "logo.svg", 415, "unsupported_format", "SVG"),
    (_truncated_jpeg(), "half.jpg", 422, "truncated_image", "truncated"),
    (png_header_only(50_000, 50_000), "bomb.png", 413, "too_many_pixels", "pixels"),
    (encode(PILImage.new("RGB", (8, 8)), "GIF"), "anim.gif", 415, "unsupported_format", "GIF"),
]


def test_refused_uploads_store_nothing(app, annotator):
    """Zero bytes, HTML named .jpg, SVG, truncated JPEG, a PNG declaring 50,000 x 50,000 pixels, GIF."""
    for data, name, status, code, words in REFUSED:
        resp, body = upload_one(annotator, data, name)
        assert resp.status_code == status, (name, body)
        err = error(resp)
        assert err["code"] == code and words in err["message"], (name, err)
        assert err["details"]["rejected"] == [{"filename": name, "code": code, "message": err["message"]}]
        assert_nothing_stored(app)


def test_file_over_the_upload_limit(app, annotator):
    app.config["MAX_UPLOAD_BYTES"] = 2_000
    data = encode(PILImage.effect_noise((128, 128), 60).convert("RGB"), "PNG")
    assert len(data) > 2_000
    resp, body = upload_one(annotator, data, "big.png")
    assert resp.status_code == 413
    assert error(resp)["code"] == "file_too_large" and "2,000 bytes" in error(resp)["message"]
    assert_nothing_stored(app)


def test_request_over_max_content_length_is_json_413(app, annotator):
    app.config["MAX_CONTENT_LENGTH"] = 10_000
    resp, _ = upload_one(annotator, b"\xff\xd8\xff" + b"\0" * 20_000, "huge.jpg")
    assert resp.status_code == 413 and error(resp)["code"] == "too_large"
    assert_nothing_stored(app)


def test_mixed_upload_keeps_good_files_and_lists_the_rest(app, annotator):
    good_a, good_b = jpeg(seed=1), encode(two_tone(30, 30), "WEBP")
    resp = annotator.upload([(good_a, "a.jpg"), (HTML, "b.jpg"), (good_b, "c.webp"), (b"", "d.png")])
    assert resp.status_code == 201
    body = resp.get_json()
    assert [i["sha256"] for i in body["images"]] == [hashlib.sha256(d).hexdigest() for d in (good_a, good_b)]
    assert [(r["filename"], r["code"]) for r in body["rejected"]] == [
        ("b.jpg", "unsupported_format"), ("d.png", "empty_file")]
    assert [r.original_filename for r in image_rows(app)] == ["a.jpg", "c.webp"]
    assert count(app, Annotation) == 2
    assert len([f for f in blob_files(app) if ".thumb" not in f and ".display" not in f]) == 2


def test_browser_upload_needs_the_csrf_header(app, make_client):
    make_client("annotator", username="alice")
    browser = app.test_client()
    csrf = browser.post("/api/v1/auth/login", json={"username": "alice", "password": "password123"}).get_json()["csrf_token"]

    def send(headers):
        return browser.post("/api/v1/images", data={"file": [(io.BytesIO(jpeg()), "a.jpg")]}, headers=headers,
                            content_type="multipart/form-data")

    refused = send({})
    assert refused.status_code == 403 and error(refused)["code"] == "csrf_failed"
    assert_nothing_stored(app)
    assert send({"X-CSRF-Token": csrf}).status_code == 201
    assert count(app, Image) == 1


def test_upload_without_file(app, annotator):
    resp = annotator.client.post("/api/v1/images", data={"other": "x"}, headers=annotator._headers(),
                                 content_type="multipart/form-data")
    assert resp.status_code == 400 and error(resp)["code"] == "no_file"
    resp = annotator.post("/api/v1/images", json={"file": "x"})
    assert resp.status_code == 415
    assert app.test_client().post("/api/v1/images").status_code == 401
    assert_nothing_stored(app)


def test_same_bytes_at_once_make_one_image(app, monkeypatch):
    """The race: another upload of the same bytes commits between our duplicate check and our insert."""
    import backend.core.ingest as ingest_module

    data = jpeg(seed=7)
    real_decode = ingest_module.decode_image
    raced = []

    def decode_while_another_upload_wins(raw, max_pixels, **options):
        if not raced:
            raced.append(True)

            def other():
                with app.app_context():
                    ingest_bytes(data, "other.jpg")

            thread = threading.Thread(target=other)
            thread.start()
            thread.join()
        return real_decode(raw, max_pixels, **options)

    monkeypatch.setattr(ingest_module, "decode_image", decode_while_another_upload_wins)
    with app.app_context():
        result = ingest_bytes(data, "mine.jpg")
        assert result.duplicate is True and result.image.original_filename == "other.jpg"
    assert [r.original_filename for r in image_rows(app)] == ["other.jpg"]
    assert count(app, Annotation) == 1


def test_parallel_uploads_of_the_same_bytes(app):
    data = jpeg(seed=9)
    results, errors = [], []

    def worker():
        try:
            with app.app_context():
                result = ingest_bytes(data, "same.jpg")
                results.append((result.image.id, result.duplicate))
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({image_id for image_id, _ in results}) == 1
    assert sorted(dup for _, dup in results) == [False, True, True, True]
    assert count(app, Image) == 1 and count(app, Annotation) == 1


def test_ingest_refuses_bad_source(app):
    with app.app_context(), pytest.raises(ValueError):
        ingest_bytes(jpeg(), "a.jpg", source="../x")
    with app.app_context(), pytest.raises(ImageRejected):
        ingest_bytes(b"", "a.jpg", source="synthetic")


# --- listing --------------------------------------------------------------------------------------------------------

def _seed(app, n=5):
    with app.app_context():
        ids = [ingest_bytes(jpeg(seed=i), f"img{i}.jpg", source="synthetic" if i % 2 else "upload").image.id
               for i in range(n)]
        images = {i.id: i for i in db.session.scalars(select(Image))}
        images[ids[0]].status = "submitted"
        images[ids[1]].flags = ["not_tattoo"]
        images[ids[1]].styles = ["tribal", "watercolor"]
        images[ids[2]].styles = ["tribal"]
        images[ids[3]].flags = ["store_front", "not_tattoo"]
        db.session.commit()
    return ids


def _ids(resp):
    assert resp.status_code == 200, resp.get_json()
    return [item["id"] for item in resp.get_json()["items"]]


def test_list_filters_and_paging(app, annotator):
    ids = _seed(app)
    resp = annotator.get("/api/v1/images")
    body = resp.get_json()
    assert body["total"] == 5 and _ids(resp) == ids
    first = body["items"][0]
    assert first["original_filename"] == "img0.jpg" and first["version"] == 0 and first["region_count"] == 0
    assert first["status"] == "submitted" and first["thumb_url"].endswith(f"/images/{ids[0]}/file?size=thumb")
    assert {"id", "sha256", "width", "height", "source", "status", "flags", "styles", "created_at"} <= set(first)

    assert _ids(annotator.get("/api/v1/images?status=submitted")) == [ids[0]]
    assert _ids(annotator.get("/api/v1/images?status=new")) == ids[1:]
    assert _ids(annotator.get("/api/v1/images?style=tribal")) == [ids[1], ids[2]]
    assert _ids(annotator.get("/api/v1/images?flag=not_tattoo")) == [ids[1], ids[3]]
    assert _ids(annotator.get("/api/v1/images?style=tribal&flag=not_tattoo")) == [ids[1]]
    assert _ids(annotator.get("/api/v1/images?source=synthetic")) == [ids[1], ids[3]]
    assert _ids(annotator.get("/api/v1/images?style=japanese")) == []

    page2 = annotator.get("/api/v1/images?page=2&per_page=2")
    assert _ids(page2) == ids[2:4] and page2.get_json()["total"] == 5
    assert _ids(annotator.get("/api/v1/images?page=9&per_page=2")) == []
    assert annotator.get("/api/v1/images?status=new&per_page=1").get_json()["total"] == 4


def test_tag_index_follows_changes(app, annotator):
    ids = _seed(app)
    with app.app_context():
        image = db.session.get(Image, ids[1])
        image.flags = []
        image.styles = ["japanese"]
        db.session.commit()
    assert _ids(annotator.get("/api/v1/images?flag=not_tattoo")) == [ids[3]]
    assert _ids(annotator.get("/api/v1/images?style=japanese")) == [ids[1]]
    assert _ids(annotator.get("/api/v1/images?style=tribal")) == [ids[2]]
    with app.app_context():
        def snapshot():
            return sorted(db.session.execute(select(ImageTag.image_id, ImageTag.kind, ImageTag.key)).all())

        expected = snapshot()
        assert rebuild_image_tags(db.session) == len(expected) == 4
        db.session.commit()
        assert snapshot() == expected

        # A Core UPDATE bypasses the ORM's flush hook: sync_image_tags brings the index up to date.
        db.session.execute(update(Image).where(Image.id == ids[4]).values(flags=["bad_example"]))
        image = db.session.get(Image, ids[4])
        db.session.refresh(image)
        sync_image_tags(db.session, image)
        db.session.commit()
    assert _ids(annotator.get("/api/v1/images?flag=bad_example")) == [ids[4]]


BAD_QUERIES = [
    "page=0", "per_page=0", "per_page=501", "page=abc", "page=1.5", "status=done", "style=Tribal!",
    "style=not_a_style", "flag=nope", "source=../x", "color=red", "status=new&status=submitted",
]


def test_list_refuses_bad_queries(app, annotator):
    for query in BAD_QUERIES:
        resp = annotator.get(f"/api/v1/images?{query}")
        assert resp.status_code == 422, (query, resp.get_json())
        assert error(resp)["code"] == "invalid_query", query


def test_list_needs_a_user(app):
    assert app.test_client().get("/api/v1/images").status_code == 401


# --- metadata and bytes ---------------------------------------------------------------------------------------------

def test_metadata(app, annotator):
    data = exif_rotated_jpeg(60, 30)
    item = upload_one(annotator, data, "ink.jpg")[1]["images"][0]
    resp = annotator.get(f"/api/v1/images/{item['id']}")
    assert resp.status_code == 200
    meta = resp.get_json()
    assert (meta["width"], meta["height"], meta["format"], meta["size_bytes"]) == (30, 60, "jpeg", len(data))
    assert meta["sha256"] == item["sha256"] and meta["uploaded_by"] == uid(annotator)
    assert meta["version"] == 0 and len(meta["phash"]) == 16 and meta["created_at"].endswith("+00:00")
    missing = annotator.get("/api/v1/images/999999")
    assert missing.status_code == 404 and error(missing)["code"] == "not_found"


def test_file_sizes_headers_and_caching(app, annotator):
    data = encode(two_tone(3000, 1000), "PNG")
    item = upload_one(annotator, data, "wide one.png")[1]["images"][0]
    base = f"/api/v1/images/{item['id']}/file"
    sha = item["sha256"]

    original = annotator.get(f"{base}?size=original")
    assert original.status_code == 200 and original.data == data
    assert original.headers["Content-Type"] == "image/png"
    assert original.headers["Content-Disposition"].startswith("attachment;")
    assert "filename=wide_one.png" in original.headers["Content-Disposition"]
    assert original.headers["ETag"] == f'"{sha}"'

    display = annotator.get(base)  # display is the default size
    assert display.status_code == 200 and display.headers["Content-Type"] == "image/jpeg"
    assert PILImage.open(io.BytesIO(display.data)).size == (2048, 683)
    thumb = annotator.get(f"{base}?size=thumb")
    assert PILImage.open(io.BytesIO(thumb.data)).size == (256, 85)
    for resp in (original, display, thumb):
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    assert display.headers["Content-Disposition"] == thumb.headers["Content-Disposition"] == "inline; filename=wide_one.jpg"

    stored = set(blob_files(app))
    assert f"{sha[:2]}/{sha[2:4]}/{sha}.display2048.jpg" in stored
    assert f"{sha[:2]}/{sha[2:4]}/{sha}.thumb256.jpg" in stored
    display_file = workspace(app) / "blobs" / sha[:2] / sha[2:4] / f"{sha}.display2048.jpg"
    made = display_file.stat().st_mtime_ns
    assert annotator.get(base).data == display.data and display_file.stat().st_mtime_ns == made  # cached

    etag = display.headers["ETag"]
    again = annotator.get(base, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    assert annotator.get(f"{base}?size=original", headers={"If-None-Match": f'"{sha}"'}).status_code == 304
    assert annotator.get(f"{base}?size=original", headers={"If-None-Match": '"other"'}).status_code == 200


def test_file_errors(app, annotator):
    item = upload_one(annotator, jpeg(), "a.jpg")[1]["images"][0]
    assert annotator.get(f"/api/v1/images/{item['id']}/file?size=huge").status_code == 422
    assert annotator.get(f"/api/v1/images/{item['id']}/file?size=thumb&x=1").status_code == 422
    missing = annotator.get("/api/v1/images/424242/file?size=thumb")
    assert missing.status_code == 404 and error(missing)["code"] == "not_found"
    assert app.test_client().get(f"/api/v1/images/{item['id']}/file").status_code == 401
    sha = item["sha256"]
    shutil.rmtree(workspace(app) / "blobs" / sha[:2])  # the store lost the file: a clear 404, not a 500
    gone = annotator.get(f"/api/v1/images/{item['id']}/file?size=display")
    assert gone.status_code == 404 and error(gone)["code"] == "file_missing"
    # Uploading the same bytes again restores the lost original (still a duplicate: no new row).
    again = upload_one(annotator, jpeg(), "a.jpg")[1]["images"][0]
    assert again["duplicate"] is True and again["id"] == item["id"] and count(app, Image) == 1
    assert annotator.get(f"/api/v1/images/{item['id']}/file?size=original").data == jpeg()
