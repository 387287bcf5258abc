"""The bad-input corpus (CASES): hostile uploads, geometry, JSON bodies, query strings, headers, archives and model
checkpoints, each with the statuses (and error code) it must be answered with. Run by
tests/security/test_bad_inputs.py and benchmarks/bench_security.py.
"""
from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from typing import Callable, Optional

from backend.db.extensions import db
from backend.db.models import ModelVersion

from . import hostile
from .world import jpeg_bytes, square


@dataclass
class Case:
    name: str
    area: str
    run: Callable  # (world) -> response
    status: tuple[int, ...]  # acceptable statuses (all 4xx)
    code: Optional[str] = None  # the expected error code, when one is stable
    setup: Optional[Callable] = None  # (world) -> None, runs before the first digest
    config: dict = field(default_factory=dict)  # app.config overrides while the case runs


CASES: list[Case] = []


def case(name, area, status, code=None, setup=None, config=None):
    def register(fn):
        CASES.append(Case(name, area, fn, tuple(status) if isinstance(status, (list, tuple)) else (status,), code,
                          setup, config or {}))
        return fn
    return register


def upload(w, data: bytes, name: str = "photo.jpg", who: str = "annotator"):
    return w.users[who].client.upload([(data, name)])


# --- uploads ------------------------------------------------------------------------------------------------------

UPLOADS = [
    ("empty file", b"", "empty.jpg", 400, "empty_file"),
    ("HTML named .jpg", b"<!doctype html><html><script>alert(1)</script></html>", "cat.jpg", 415, None),
    ("SVG with onload named .png", b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "x.png", 415, None),
    ("SVG behind an XML prolog", b"<?xml version='1.0'?>\n<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)"
     b"</script></svg>", "x.jpg", 415, None),
    ("JPEG + appended HTML (polyglot)", jpeg_bytes() + b"<html><script>alert(1)</script></html>", "p.jpg", 415,
     "polyglot"),
    ("JPEG with <script> in a COM segment", hostile.jpeg_with_comment(b"<script>alert(1)</script>"), "p.jpg", 415,
     "polyglot"),
    ("JPEG with <svg onload> in EXIF", hostile.jpeg_with_exif_text(b"<svg onload=alert(1)>"), "p.jpg", 415,
     "polyglot"),
    ("PNG with HTML in a tEXt chunk", hostile.png_with_text_chunk(b"Comment", b"<iframe src=javascript:alert(1)>"),
     "p.png", 415, "polyglot"),
    ("PNG + appended PHP", hostile.png_bytes() + b"<?php system($_GET['c']); ?>", "p.png", 415, "polyglot"),
    ("WebP + appended HTML", hostile.webp_bytes() + b"<body onload=alert(1)>", "p.webp", 415, "polyglot"),
    ("JPEG with HTML in an ICC APP2 segment", hostile.jpeg_with_icc_markup(), "p.jpg", 415, "polyglot"),
    ("JPEG + a fake second JPEG holding HTML", hostile.jpeg_with_fake_jpeg_appended(), "p.jpg", 415, "polyglot"),
    ("JPEG + 1 MiB padding + HTML", hostile.jpeg_with_padded_html(), "p.jpg", 415, "polyglot"),
    ("PNG with markup in uncompressed pixel data", hostile.png_with_markup_pixels(), "p.png", 415, "polyglot"),
    ("WebP with HTML in an unknown chunk", hostile.webp_with_chunk(), "p.webp", 415, "polyglot"),
    ("GIF", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "x.gif", 415, "unsupported_format"),
    ("PDF", b"%PDF-1.4\n1 0 obj<<>>endobj\n", "x.jpg", 415, "unsupported_format"),
    ("ZIP renamed .jpg", hostile.zip_of([("a.txt", b"x")]), "x.jpg", 415, "unsupported_format"),
    ("HEIC", b"\0\0\0\x18ftypheic\0\0\0\0mif1heic", "x.heic", 415, "unsupported_format"),
    ("random bytes", bytes(range(256)) * 8, "x.jpg", 415, "unsupported_format"),
    ("JSON named .png", b'{"a": 1}', "x.png", 415, "unsupported_format"),
    ("truncated JPEG", jpeg_bytes(400, 300)[:700], "t.jpg", 422, None),
    ("JPEG signature only", b"\xff\xd8\xff\xe0", "t.jpg", 422, None),
    ("PNG declaring 10^10 pixels", hostile.png_bomb_header(), "bomb.png", 413, "too_many_pixels"),
]
for _name, _data, _fname, _status, _code in UPLOADS:
    case(f"upload: {_name}", "uploads", _status, _code)(lambda w, d=_data, n=_fname: upload(w, d, n))


@case("upload: larger than MAX_UPLOAD_BYTES", "uploads", 413, "file_too_large", config={"MAX_UPLOAD_BYTES": 2000})
def _too_big(w):
    return upload(w, jpeg_bytes(400, 300))


@case("upload: HTML with a traversal file name", "uploads", 415)
def _traversal_name(w):
    return upload(w, b"<html><script>alert(1)</script>", "../../../annotations/secret_key")


@case("upload: JSON instead of multipart", "uploads", 415, "unsupported_media_type")
def _json_upload(w):
    return w.annotator.client.post("/api/v1/images", json={"file": "x"})


@case("upload: multipart without a file field", "uploads", 400, "no_file")
def _no_file(w):
    return w.annotator.client.client.post("/api/v1/images", data={"other": "x"}, content_type="multipart/form-data",
                                          headers={"Authorization": f"Bearer {w.annotator.token}"})


# --- geometry -----------------------------------------------------------------------------------------------------

def save(w, regions=None, raw: Optional[str] = None, **extra):
    body = {"base_version": 1, "regions": regions if regions is not None else [], "tags": {"styles": [], "flags": []},
            "time_spent_ms": 0}
    body.update(extra)
    url = f"/api/v1/images/{w.image_id}/annotation"
    if raw is not None:
        return w.annotator.client.put(url, data=raw, headers={"Content-Type": "application/json"})
    return w.annotator.client.put(url, json=body)


def region(geometry, **kw):
    return dict({"geometry": geometry, "style": None, "motifs": []}, **kw)


RAW_NAN = ('{"base_version": 1, "regions": [{"geometry": {"type": "Polygon", '
           '"coordinates": [[[NaN, 1], [5, 1], [5, 5], [1, 1]]]}}], "tags": {"styles": [], "flags": []}}')


def polygon(*rings):
    return {"type": "Polygon", "coordinates": [list(r) for r in rings]}


CIRCLE = [[20 + 10 * math.cos(i / 1000), 20 + 10 * math.sin(i / 1000)] for i in range(10_050)]
GEOMETRY = [
    ("NaN coordinate", dict(raw=RAW_NAN), 400, "malformed_json"),
    ("Infinity coordinate", dict(raw=RAW_NAN.replace("NaN", "Infinity")), 400, "malformed_json"),
    ("1e999 coordinate", dict(raw=RAW_NAN.replace("NaN", "1e999")), 422, None),
    ("string coordinates", dict(regions=[region(polygon([["1", "1"], ["9", "1"], ["9", "9"]]))]), 422, None),
    ("boolean coordinates", dict(regions=[region(polygon([[True, 1], [9, 1], [9, 9]]))]), 422, None),
    ("ring of two points", dict(regions=[region(polygon([[1, 1], [9, 9], [1, 1]]))]), 422, None),
    ("point geometry", dict(regions=[region({"type": "Point", "coordinates": [3, 3]})]), 422, None),
    ("polygon far outside the image", dict(regions=[region(square(10_000, 10_000, 50))]), 422, None),
    ("over the vertex limit", dict(regions=[region(polygon(CIRCLE))]), 422, None),
    ("unknown style carrying markup", dict(regions=[region(square(5, 5, 10), style=hostile.XSS_IMG)]), 422, None),
    ("motif longer than the limit", dict(regions=[region(square(5, 5, 10), motifs=["m" * 65])]), 422, None),
    ("duplicate region ids", dict(regions=[region(square(5, 5, 10), id="a"), region(square(20, 5, 10), id="a")]), 422,
     None),
    ("region id with path characters", dict(regions=[region(square(5, 5, 10), id="../../x")]), 422, None),
    ("unknown image flag", dict(regions=[], tags={"styles": [], "flags": ["drop table"]}), 422, None),
    ("negative time spent", dict(time_spent_ms=-5), 422, None),
    ("unknown field", dict(__proto__={"admin": True}), 422, None),
    ("stale base version", dict(base_version=0), 409, None),
]
for _name, _kw, _status, _code in GEOMETRY:
    case(f"geometry: {_name}", "geometry", _status, _code)(lambda w, kw=_kw: save(w, **kw))


@case("geometry: 100k-deep nested array", "geometry", (400, 422))
def _deep(w):
    return save(w, raw='{"base_version": 1, "regions": ' + "[" * 100_000 + "]" * 100_000 + "}")


@case("brush: negative radius", "geometry", 422, "invalid_body")
def _radius(w):
    return w.annotator.client.post("/api/v1/geometry/union", json={
        "stroke": {"type": "Point", "coordinates": [5, 5]}, "radius": -3, "image_id": w.image_id})


@case("brush: a canvas size from the client (the stored image's size is used)", "geometry", 422, "invalid_body")
def _canvas(w):
    return w.annotator.client.post("/api/v1/geometry/union", json={
        "stroke": {"type": "Point", "coordinates": [5, 5]}, "radius": 3, "image_id": w.image_id,
        "width": 10**6, "height": 10**6})


@case("brush: an image that does not exist", "geometry", 404, "not_found")
def _no_image(w):
    return w.annotator.client.post("/api/v1/geometry/union", json={
        "stroke": {"type": "Point", "coordinates": [5, 5]}, "radius": 3, "image_id": 2**31 - 1})


@case("assist: points outside the image", "geometry", 422)
def _assist(w):
    return w.annotator.client.post(f"/api/v1/images/{w.image_id}/assist", json={"tool": "wand", "points": [[-5, 1e9]]})


# --- JSON bodies --------------------------------------------------------------------------------------------------

def put_raw(w, data: bytes, content_type="application/json"):
    return w.annotator.client.put(f"/api/v1/images/{w.image_id}/annotation", data=data,
                                  headers={"Content-Type": content_type})


case("json: not JSON", "json", 400, "malformed_json")(lambda w: put_raw(w, b"{base_version: 1"))
case("json: invalid UTF-8", "json", 400, "malformed_json")(lambda w: put_raw(w, b'{"a": "\xff\xfe"}'))
case("json: text/plain body", "json", 415, "unsupported_media_type")(lambda w: put_raw(w, b"{}", "text/plain"))
case("json: top-level array", "json", 422, "invalid_body")(lambda w: put_raw(w, b"[1, 2, 3]"))
case("json: over MAX_JSON_BYTES", "json", 413, "too_large", config={"MAX_JSON_BYTES": 4096})(
    lambda w: put_raw(w, json.dumps({"regions": ["x" * 10_000]}).encode()))
case("review: a decision that does not exist", "json", 422, "invalid_body")(
    lambda w: w.reviewer.client.post(f"/api/v1/images/{w.image_id}/review", json={"decision": "delete", "comment": ""}))
case("export: formats with a path", "json", 422, "invalid_body")(
    lambda w: w.admin.client.post("/api/v1/exports", json={"formats": ["../../etc"]}))
case("train: architecture name as code", "json", 422)(
    lambda w: w.admin.client.post("/api/v1/models/train", json={"kind": "segmenter", "export_id": w.export_id,
                                                                 "arch": "__import__('os').system('id')"}))
case("token: a 10k-character name", "json", 422, "invalid_body")(
    lambda w: w.annotator.client.post("/api/v1/auth/tokens", json={"name": "n" * 10_000}))
case("users: a user name with markup", "json", 422, "invalid_body")(
    lambda w: w.admin.client.post("/api/v1/users", json={"username": hostile.XSS_SVG, "password": "long-password"}))
case("users: role escalation by an annotator (users are hidden: 404)", "json", 404, "not_found")(
    lambda w: w.annotator.client.put(f"/api/v1/users/{w.annotator.id}", json={"role": "admin"}))
case("login: username as an object", "json", 422, "invalid_body")(
    lambda w: w.app.test_client().post("/api/v1/auth/login", json={"username": {"$ne": ""}, "password": "x"}))
case("queue: lease of an id beyond 32 bits", "json", 422, "invalid_body")(
    lambda w: w.annotator.client.post("/api/v1/queue/heartbeat", json={"image_id": 2**70}))
case("annotation: model version beyond 32 bits", "json", 422, "invalid_body")(
    lambda w: save(w, regions=[region(square(5, 5, 10), model_version=2**40)]))
case("path: image id beyond 32 bits", "query", 404, "not_found")(
    lambda w: w.annotator.client.get("/api/v1/images/99999999999999999999/annotation"))
case("path: negative model id", "query", 404, "not_found")(
    lambda w: w.annotator.client.get("/api/v1/models/-1"))
case("path: DELETE on a negative token id", "query", (404, 405))(
    lambda w: w.annotator.client.delete("/api/v1/auth/tokens/-1"))
case("query: user id beyond 32 bits", "query", 422, "invalid_query")(
    lambda w: w.annotator.client.get("/api/v1/auth/tokens?user_id=99999999999999999999"))
case("queue: lease with a string id", "json", 422, "invalid_body")(
    lambda w: w.annotator.client.post("/api/v1/queue/heartbeat", json={"image_id": "1 OR 1=1"}))

# --- query strings ------------------------------------------------------------------------------------------------

QUERIES = [
    ("status with SQL", "/api/v1/images?status=new'%20OR%20'1'='1"),
    ("style naming a Python attribute", "/api/v1/images?style=__class__"),
    ("sort by the password hash", "/api/v1/images?sort=password_hash"),
    ("ORM-style filter key", "/api/v1/images?uploaded_by__password_hash__startswith=pbkdf2"),
    ("bracketed operator", "/api/v1/images?style[$ne]=x"),
    ("negative page", "/api/v1/images?page=-1"),
    ("huge per_page", "/api/v1/images?per_page=100000000"),
    ("float overflow page", "/api/v1/images?page=1e309"),
    ("repeated status", "/api/v1/images?status=new&status=accepted"),
    ("NUL byte in a flag", "/api/v1/images?flag=%00"),
    ("file size as a path", "/api/v1/images/1/file?size=../../secret_key"),
    ("job status injection", "/api/v1/jobs?status=queued;DROP%20TABLE%20jobs"),
    ("stats window overflow", "/api/v1/stats/me?tz_offset_minutes=99999999999999999999"),
]
for _name, _url in QUERIES:
    case(f"query: {_name}", "query", 422, "invalid_query")(lambda w, u=_url: w.annotator.client.get(
        u.replace("/images/1/", f"/images/{w.image_id}/")))
case("query: queue strategy not on the list", "query", 422, "invalid_query")(
    lambda w: w.annotator.client.post("/api/v1/queue/next?strategy=__import__"))
case("query: admin list of users with SQL in role", "query", 422, "invalid_query")(
    lambda w: w.admin.client.get("/api/v1/users?role=admin'--"))

# --- headers ------------------------------------------------------------------------------------------------------


def anon(w, url="/api/v1/images", method="GET", **kw):
    return w.app.test_client().open(url, method=method, **kw)


case("header: 10 kB garbage bearer token", "headers", 401, "invalid_token")(
    lambda w: anon(w, headers={"Authorization": "Bearer " + "A" * 10_000}))
case("header: SQL in the bearer token", "headers", 401, "invalid_token")(
    lambda w: anon(w, headers={"Authorization": "Bearer ' OR '1'='1' --"}))
case("header: Basic credentials", "headers", 401, "unauthorized")(
    lambda w: anon(w, headers={"Authorization": "Basic YWRtaW46YWRtaW4="}))
case("header: forged session cookie", "headers", 401, "unauthorized")(
    lambda w: anon(w, headers={"Cookie": "inklabel_session=eyJzaWQiOiJ4In0.forged.signature"}))


def _browser_session(w):
    client = w.app.test_client()
    resp = client.post("/api/v1/auth/login", json={"username": w.annotator.name, "password": "password123"})
    assert resp.status_code == 200
    w.browser, w.csrf = client, resp.get_json()["csrf_token"]


case("header: session write without the CSRF header", "headers", 403, "csrf_failed", setup=_browser_session)(
    lambda w: w.browser.put(f"/api/v1/images/{w.image_id}/annotation", json={}))
case("header: session write with a wrong CSRF token", "headers", 403, "csrf_failed", setup=_browser_session)(
    lambda w: w.browser.post("/api/v1/auth/tokens", json={}, headers={"X-CSRF-Token": w.csrf[::-1]}))
case("header: Content-Length beyond the request limit", "headers", 413, "too_large",
     config={"MAX_CONTENT_LENGTH": 1024})(
    lambda w: w.annotator.client.put(f"/api/v1/images/{w.image_id}/annotation", data=b"{" + b" " * 4096 + b"}",
                                     headers={"Content-Type": "application/json"}))
case("header: method not allowed", "headers", 405, "method_not_allowed")(
    lambda w: w.annotator.client.delete(f"/api/v1/images/{w.image_id}"))

# --- archives -----------------------------------------------------------------------------------------------------


def import_file(w, data: bytes, name="dataset.zip", fmt="coco"):
    return w.admin.client.client.post(f"/api/v1/imports?format={fmt}", data={"file": (io.BytesIO(data), name)},
                                      content_type="multipart/form-data",
                                      headers={"Authorization": f"Bearer {w.admin.token}"})


COCO_JSON = json.dumps(hostile.COCO).encode()
ARCHIVES = [
    ("zip slip", hostile.zip_of([("../../evil.json", COCO_JSON)]), "path_traversal"),
    ("absolute path", hostile.raw_zip_with_name("/tmp/evil.json"), "absolute_path"),
    ("Windows drive path", hostile.raw_zip_with_name("C:\\evil.json"), "absolute_path"),
    ("backslash traversal", hostile.raw_zip_with_name("..\\..\\evil.json"), "path_traversal"),
    ("symbolic link", hostile.zip_with_symlink(), "symlink"),
    ("encrypted entry", hostile.zip_encrypted_flag(), "encrypted"),
    ("zip bomb (compression ratio)", hostile.zip_bomb(), "compression_ratio"),
    ("too many entries", hostile.zip_many(60), "too_many_entries"),
    ("zip header then garbage", b"PK\x03\x04" + b"\x00" * 200, "bad_archive"),
]
for _name, _data, _code in ARCHIVES:
    case(f"archive: {_name}", "archives", 422, _code, config={"MAX_IMPORT_ENTRIES": 50})(
        lambda w, d=_data: import_file(w, d))
case("archive: tar.gz", "archives", 415, "unsupported_media_type")(
    lambda w: import_file(w, b"\x1f\x8b\x08\x00" + b"\x00" * 100, "dataset.tar.gz"))
case("archive: unknown import format", "archives", 422, "invalid_query")(
    lambda w: import_file(w, hostile.zip_of([("a.json", COCO_JSON)]), fmt="pickle"))

# --- model checkpoints --------------------------------------------------------------------------------------------


def plant_model(name: str, data: bytes, sidecar: Optional[dict] = None):
    def setup(w):
        from pathlib import Path

        models = Path(w.app.config["WORKSPACE"]) / "models"
        models.mkdir(exist_ok=True)
        w.marker = Path(w.app.config["WORKSPACE"]) / "tmp" / "PWNED"
        payload = data.replace(b"@MARKER@", str(w.marker).encode()) if b"@MARKER@" in data else data
        if name.startswith("../"):
            pass  # a row pointing outside the models folder: nothing to write
        else:
            (models / name).write_bytes(payload)
            if sidecar is not None:
                (models / name).with_suffix(".json").write_text(json.dumps(sidecar))
        with w.app.app_context():
            for mv in db.session.query(ModelVersion).all():
                mv.is_current = False
            db.session.add(ModelVersion(kind="segmenter", name="planted", weights_path=name, is_current=True,
                                        architecture={"kind": "segmenter", "arch": "Unet", "encoder": "resnet18"}))
            db.session.commit()
    return setup


def _pickled(factory) -> bytes:
    from pathlib import Path

    return factory(Path("@MARKER@"))


def safetensors_with_sidecar(architecture: dict) -> tuple[bytes, dict]:
    import hashlib
    import tempfile

    import torch
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/w.safetensors"
        save_file({"w": torch.zeros(2)}, path)
        data = open(path, "rb").read()
    sidecar = {"format": "inklabel-model", "format_version": 1, "kind": "segmenter", "name": "evil",
               "architecture": architecture, "classes": ["tattoo"], "input_size": 64,
               "normalization": {"mean": [0, 0, 0], "std": [1, 1, 1]}, "weights_file": "evil.safetensors",
               "weights_sha256": hashlib.sha256(data).hexdigest(), "created_at": "2024-01-01T00:00:00+00:00"}
    return data, sidecar


_ST, _ST_SIDECAR = safetensors_with_sidecar({"kind": "segmenter", "arch": "__import__('os')", "encoder": "x"})
CHECKPOINTS = [
    ("pickle with __reduce__ named .safetensors", "p1.safetensors", _pickled(hostile.pickle_payload), None),
    ("torch.save zip named .safetensors", "p2.safetensors", _pickled(hostile.torch_zip_payload), None),
    ("protocol-0 pickle named .safetensors", "p3.safetensors", _pickled(hostile.protocol0_payload), None),
    ("pickle named .pt", "p4.pt", _pickled(hostile.pickle_payload), None),
    ("weights outside the models folder", "../secret_key", b"", None),
    ("safetensors whose sidecar names code", "evil.safetensors", _ST, _ST_SIDECAR),
    ("safetensors without a sidecar", "lonely.safetensors", _ST, None),
]
for _name, _file, _data, _side in CHECKPOINTS:
    case(f"checkpoint: {_name}", "checkpoints", 409, "model_unavailable", setup=plant_model(_file, _data, _side))(
        lambda w: w.annotator.client.post(f"/api/v1/images/{w.image_id}/prefill"))
