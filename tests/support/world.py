"""The world the security tests act in: users of every role with their tokens and objects of each kind
(build_world), and a digest of everything the server stores (database rows + workspace files) to prove that
refused input changed nothing (state_digest, diff_digest)."""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy import select

from backend.db.extensions import db
from backend.db.models import ApiToken, Assignment, Base, Export, Job, LoginFailure, ModelVersion

from .app import ApiClient, make_user

ROLES = ("annotator", "reviewer", "admin")


def jpeg_bytes(width: int = 64, height: int = 48, color=(200, 150, 120)) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), color)
    ImageDraw.Draw(img).ellipse([width // 4, height // 4, width * 3 // 4, height * 3 // 4], fill=(30, 30, 40))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


def png_bytes(width: int = 32, height: int = 32) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(out, "PNG")
    return out.getvalue()


def square(x0: float, y0: float, side: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side],
                                                [x0, y0]]]}


def _tiny_zip() -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("manifest.json", "{}")
    return out.getvalue()


def _user(app, name: str, role: str) -> SimpleNamespace:
    from backend.web.auth import issue_token
    from backend.db.models import User

    user, token = make_user(app, name, role)
    with app.app_context():
        row = db.session.scalar(select(User).where(User.username == name))
        user_id = row.id
        spare, _raw = issue_token(row, "spare")  # a token the tests may revoke
        spare_id = spare.id
        token_id = db.session.scalar(select(ApiToken.id).where(ApiToken.user_id == user_id, ApiToken.name == ""))
    return SimpleNamespace(id=user_id, name=name, role=role, token=token, token_id=token_id, spare_token_id=spare_id,
                           client=ApiClient(app, None, token))


def build_world(app) -> SimpleNamespace:
    """Users of every role plus a second annotator ("other"); three images (image 1 annotated); for every user a
    job and a spare token; agreement copies of image 2 for everyone but "other", whose copy is of image 3 (image 1
    has none: an open copy hides the primary document from its holder); an export and a model version."""
    from backend.core.ingest import ingest_bytes

    w = SimpleNamespace(app=app)
    w.admin = _user(app, "admin1", "admin")
    w.reviewer = _user(app, "reviewer1", "reviewer")
    w.annotator = _user(app, "annotator1", "annotator")
    w.other = _user(app, "other1", "annotator")
    w.users = {"admin": w.admin, "reviewer": w.reviewer, "annotator": w.annotator, "other": w.other}
    with app.app_context():
        w.image_id = ingest_bytes(jpeg_bytes(), "one.jpg", source="upload").image.id
        w.image2_id = ingest_bytes(jpeg_bytes(color=(90, 160, 200)), "two.jpg", source="upload").image.id
        w.image3_id = ingest_bytes(jpeg_bytes(color=(60, 200, 90)), "three.jpg", source="upload").image.id
        w.jobs = {}
        empty = {"version": 0, "regions": [], "tags": {"styles": [], "flags": []}}
        for key, user in w.users.items():
            job = Job(kind="export", status="succeeded", created_by=user.id, progress=1, total=1, result={})
            db.session.add(job)
            if key != "other":
                db.session.add(Assignment(image_id=w.image2_id, user_id=user.id, kind="agreement", document=empty))
            db.session.flush()
            w.jobs[key] = job.id
        # The other annotator's agreement copy is of image 3; image 1 has none: both must look the same to others.
        db.session.add(Assignment(image_id=w.image3_id, user_id=w.other.id, kind="agreement", document=empty))
        export = Export(status="succeeded", options={}, created_by=w.admin.id, path="planted-export.zip")
        (Path(app.config["WORKSPACE"]) / "exports").mkdir(exist_ok=True)
        (Path(app.config["WORKSPACE"]) / "exports" / "planted-export.zip").write_bytes(_tiny_zip())
        model = ModelVersion(kind="segmenter", name="planted", weights_path="missing.safetensors", metrics={},
                             architecture={"kind": "segmenter", "arch": "Unet", "encoder": "resnet18"})
        db.session.add_all([export, model])
        db.session.commit()
        w.export_id, w.model_id = export.id, model.id
    resp = w.admin.client.put(f"/api/v1/images/{w.image_id}/annotation", json={
        "base_version": 0, "regions": [{"geometry": square(8, 8, 20), "style": "tribal", "motifs": ["rose"]}],
        "tags": {"styles": [], "flags": []}, "time_spent_ms": 1000})
    assert resp.status_code == 200, resp.get_json()
    return w


# --- digest of the stored state ----------------------------------------------------------------------------------

VOLATILE_TABLES = {LoginFailure.__tablename__}  # a failed login is meant to be recorded
DB_FILES = ("inklabel.db", "inklabel.db-wal", "inklabel.db-shm", "inklabel.db-journal")


def _rows_digest(app) -> dict[str, str]:
    out = {}
    with app.app_context():
        db.session.remove()
        with db.engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                if table.name in VOLATILE_TABLES:
                    continue
                order = list(table.primary_key.columns) or list(table.columns)
                rows = conn.execute(table.select().order_by(*order)).mappings().all()
                text = json.dumps([dict(r) for r in rows], default=str, sort_keys=True)
                out[table.name] = hashlib.sha256(text.encode()).hexdigest()
    return out


def _files_digest(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name not in DB_FILES:
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def state_digest(app) -> dict:
    """Every table's rows (SQLite and PostgreSQL alike) and every file under the workspace (blob store, exports,
    models, uploads in progress), each as a sha256."""
    return {"db": _rows_digest(app), "files": _files_digest(Path(app.config["WORKSPACE"]))}


def diff_digest(before: dict, after: dict) -> list[str]:
    changes = []
    for part in ("db", "files"):
        for key in sorted(set(before[part]) | set(after[part])):
            if before[part].get(key) != after[part].get(key):
                changes.append(f"{part}:{key}")
    return changes
