"""End-to-end fixtures: the real app on a loopback port (werkzeug, in a thread), Debian's Chromium driven by
Playwright, users and images made through the backend's own code.

Skips with a reason when Playwright or Chromium is missing. Chromium is INKLABEL_CHROMIUM or /usr/bin/chromium;
screenshots go to test-artifacts/ (git-ignored).
"""
from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest

from ..conftest import REAL_TATTOOS, build_app, make_user  # noqa: F401 (REAL_TATTOOS re-exported)

CHROMIUM = os.environ.get("INKLABEL_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
]
PASSWORD = "password123"


def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is not installed (pip install -r requirements-dev.txt)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set INKLABEL_CHROMIUM)")
    return sync_playwright


@pytest.fixture(scope="package")  # closed before other packages (tests/security) start their own Playwright
def browser():
    sync_playwright = _playwright()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


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
        from ..conftest import ApiClient

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


@pytest.fixture
def live(tmp_path):
    app = build_app(tmp_path, "sqlite")
    server = LiveServer(app)
    yield server
    server.stop()
    from backend.db.extensions import db

    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, device_scale_factor=1)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and "Failed to load resource" not in msg.text else None)
    page.js_errors = errors
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
