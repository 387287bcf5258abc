"""The app served on a loopback port from a thread (werkzeug), with users and images made through the backend's own
code: what the browser tests and the editor benchmarks drive."""
from __future__ import annotations

import io
import threading
from pathlib import Path

from .app import ApiClient, make_user

PASSWORD = "password123"


class LiveServer:
    """The app served on 127.0.0.1:<free port> from a background thread."""

    def __init__(self, app):
        from werkzeug.serving import make_server

        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.thread.join(5)

    # --- data, through the backend's own code -----------------------------------------------------------------

    def user(self, username: str, role: str = "annotator"):
        user, token = make_user(self.app, username, role, PASSWORD)
        return user, token

    def image(self, width: int = 640, height: int = 480, name: str = "photo.jpg", seed: int = 0) -> int:
        from backend.core.ingest import ingest_bytes

        with self.app.app_context():
            return ingest_bytes(jpeg_bytes(width, height, seed), name, source="upload").image.id

    def image_from_file(self, path: Path) -> int:
        from backend.core.ingest import ingest_bytes

        with self.app.app_context():
            return ingest_bytes(path.read_bytes(), path.name, source="import").image.id

    def set_image(self, image_id: int, **fields) -> None:
        """Put an image straight into a state (status, assignee (a user name), lock_expires_at, …) for a browser
        test."""
        from sqlalchemy import select

        from backend.db.extensions import db
        from backend.db.models import Image, User

        with self.app.app_context():
            image = db.session.get(Image, image_id)
            if "assignee" in fields:
                fields["assignee_id"] = db.session.scalar(select(User.id).where(User.username == fields.pop("assignee")))
            for key, value in fields.items():
                setattr(image, key, value)
            db.session.commit()

    def cached_prediction(self, image_id: int, regions: list[dict], concentration: float = 0.4) -> None:
        """A stored pre-fill of the image by a current (registered, never loaded) segmenter: what a pool
        pre-fill leaves behind. `regions`: [{"geometry", "style"?, "confidence"?}]."""
        import uuid

        from sqlalchemy import select

        from backend.db.extensions import db
        from backend.db.models import ModelVersion, Prediction

        with self.app.app_context():
            seg = db.session.scalar(select(ModelVersion).where(ModelVersion.kind == "segmenter",
                                                               ModelVersion.is_current.is_(True)))
            if seg is None:
                seg = ModelVersion(kind="segmenter", name="e2e-seg", weights_path="e2e-seg.safetensors",
                                   is_current=True)
                db.session.add(seg)
                db.session.flush()
            stored = [{"id": uuid.uuid4().hex, "geometry": r["geometry"], "style": r.get("style"), "motifs": [],
                       "source": "model", "model_version": seg.id, "confidence": r.get("confidence", 0.8)}
                      for r in regions]
            db.session.add(Prediction(image_id=image_id, segmenter_id=seg.id, regions=stored,
                                      concentration=concentration, uncertainty={"score": 0.3}))
            db.session.commit()

    def client(self, token: str):
        return ApiClient(self.app, None, token)


def jpeg_bytes(width: int, height: int, seed: int = 0) -> bytes:
    """A skin-toned photo with a dark, tattoo-like swirl (distinct per seed), as JPEG."""
    from PIL import Image, ImageDraw, ImageFilter

    img = Image.new("RGB", (width, height), (224 - seed * 7 % 40, 178 - seed * 5 % 30, 150))
    draw = ImageDraw.Draw(img)
    for i in range(0, height, 6):  # soft shading
        draw.line([(0, i), (width, i)], fill=(210 - i * 40 // max(height, 1), 165 - i * 30 // max(height, 1), 138), width=6)
    cx, cy, r = width * (0.4 + 0.05 * (seed % 3)), height * 0.5, min(width, height) * 0.28
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=(25, 25, 35), width=max(3, width // 120))
    draw.ellipse([cx - r / 2, cy - r / 2, cx + r / 2, cy + r / 2], fill=(40, 40, 60))
    draw.line([(cx - r, cy + r), (cx + r * 1.4, cy - r * 0.6)], fill=(150, 30, 40), width=max(4, width // 80))
    img = img.filter(ImageFilter.GaussianBlur(0.8))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=88)
    return out.getvalue()
