"""Job kinds for the operations tests only: loaded in-process by tests/ops/conftest.py and in worker subprocesses
through INKLABEL_TASK_MODULES=tests.ops.jobkinds."""
from __future__ import annotations

import os
import time
from pathlib import Path

from backend.jobs.runner import register_job


@register_job("ops_sleep", queue="cpu")
def ops_sleep(ctx, seconds: float = 0.5, steps: int = 5, fail: bool = False, marker: str | None = None) -> dict:
    """Sleeps in steps with progress; appends a line to `marker` at each start (to count starts)."""
    if marker:
        with open(marker, "a") as fh:
            fh.write(f"{os.getpid()}\n")
    for step in range(steps):
        ctx.progress(step, steps, f"step {step}", force=True)
        time.sleep(seconds / steps)
    if fail:
        raise RuntimeError("asked to fail")
    return {"pid": os.getpid(), "steps": steps}


@register_job("ops_gpu_echo", queue="gpu")
def ops_gpu_echo(ctx, value=None) -> dict:
    return {"value": value, "pid": os.getpid()}


@register_job("ops_quiet", queue="cpu")
def ops_quiet(ctx, seconds: float = 1.0) -> dict:
    """A long step without progress reports: only the heartbeat tells it is alive; stops on ctx.cancelled."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ctx.check_cancelled()
        time.sleep(0.02)
    return {"pid": os.getpid()}


@register_job("ops_once", queue="cpu", max_attempts=1)
def ops_once(ctx, marker: str | None = None) -> dict:
    if marker:
        Path(marker).write_text("started")
    return {}


@register_job("ops_items", queue="cpu")
def ops_items(ctx, image_ids: list, scale: int = 1) -> dict:
    return {"sum": sum(image_ids) * scale, "count": len(image_ids)}
