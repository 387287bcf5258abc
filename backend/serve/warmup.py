"""Load the current models once per process, in the background, as a server starts.

Without it the first pre-fill of every process paid for reading the weights and building the networks (9.8 s
measured in issue 19) while an annotator waited. The loaded runners land in the same per-process cache
(tasks/prefill.py `_MODELS`) that requests use, so a request arriving during the warm-up waits for that one load
instead of starting a second. No model yet is not an error: the warm-up just ends.
"""
from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)


def warm_models(app) -> bool:
    """Load the promoted segmenter (and classifier); True when they are now in the cache."""
    from backend.core.errors import DomainError
    from backend.db.extensions import db
    from backend.jobs.predictions import load_current

    started = time.perf_counter()
    with app.app_context():
        try:
            load_current()
        except DomainError as err:
            log.info("model warm-up skipped: %s", err.message)
            return False
        except Exception:  # a broken model must not stop the server; the request that needs it explains
            log.exception("model warm-up failed")
            return False
        finally:
            db.session.remove()
    log.info("current models loaded in %.1f s", time.perf_counter() - started)
    return True


def start_model_warmup(app) -> threading.Thread | None:
    if not app.config.get("WARM_MODELS", True):
        return None
    thread = threading.Thread(target=warm_models, args=(app,), name="inklabel-model-warmup", daemon=True)
    thread.start()
    return thread
