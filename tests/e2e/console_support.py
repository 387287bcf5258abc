"""Shared steps of the ML console's browser tests: an app whose jobs run in the background (so progress and live
curves can be watched), synthetic labelled data, and screenshots at the two sizes the console must read well at."""
from __future__ import annotations

import pytest

from ..support.app import build_app
from ..support.live import LiveServer
from .conftest import screenshot

SIZES = {"wide": (1400, 900), "narrow": (1024, 700)}


@pytest.fixture
def console(tmp_path):
    """A live server whose jobs run in the app's thread pool (not inline), with an admin, a reviewer and an
    annotator. Training is tiny: small synthetic images, CPU, one torch thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    app = build_app(tmp_path, "sqlite", JOBS_EAGER=False, JOB_WORKERS=1, DEVICE="cpu")
    server = LiveServer(app)
    server.user("ml", "admin")
    server.user("rev", "reviewer")
    server.user("ann", "annotator")
    yield server
    server.stop()
    torch.set_num_threads(threads)
    from backend.db.extensions import db

    with app.app_context():
        db.engine.dispose()


def labelled_data(live, n: int = 8, fraction: float = 0.75) -> dict:
    """n small synthetic photos, `fraction` of them labelled and accepted by the admin."""
    from sqlalchemy import select

    from backend.commands.ml import populate_synthetic
    from backend.db.extensions import db
    from backend.db.models import User

    from ..support.models import SMALL_IMAGES

    with live.app.app_context():
        admin = db.session.scalar(select(User).where(User.username == "ml"))
        out = populate_synthetic(n, fraction, admin, seed=100, **SMALL_IMAGES)
        db.session.commit()
        return out


def make_export(live, formats=("masks", "crops")) -> str:
    from sqlalchemy import select

    from backend.datasets.export import create_export
    from backend.db.extensions import db
    from backend.db.models import User

    with live.app.app_context():
        admin = db.session.scalar(select(User).where(User.username == "ml"))
        export = create_export({"formats": list(formats), "split": {"val": 0.3, "test": 0.0, "seed": 0},
                                "filter": {"status": ["accepted"]}}, user_id=admin.id)
        return export.id


def shoot(page, name: str) -> None:
    """Screenshots at 1400×900 and 1024×700 (test-artifacts/console-<name>-wide|narrow.png)."""
    original = page.viewport_size
    for label, (w, h) in SIZES.items():
        page.set_viewport_size({"width": w, "height": h})
        page.wait_for_timeout(250)  # charts follow their container's width
        screenshot(page, f"console-{name}-{label}")
    page.set_viewport_size(original)


