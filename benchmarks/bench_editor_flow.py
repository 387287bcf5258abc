#!/usr/bin/env python
"""A new annotator's session in Chromium, scripted (issue 19): 20 real photos, open → accept or draw → style →
submit, with and without the pre-fill drawn when an image opens.

    python benchmarks/bench_editor_flow.py                  # about a minute on 2 CPU cores
    python benchmarks/bench_editor_flow.py --images 10 --json out.json

1. Starts the app on loopback (werkzeug in a thread, SQLite in a temporary workspace), ingests --images real
   photos from ../shared/data/real-tattoos (sorted by name) and stores a cached pre-fill for each, made from the
   photo's human YOLO boxes (at most 3, as rectangles) under a registered segmenter: what a pool pre-fill leaves
   behind. The model itself is not run: this measures the editor, not the network.
2. Runs the same scripted user twice in one browser (a fresh user and pool each time):
   - prefill: the suggestions are on the canvas when the image opens; Shift+A accepts them, Tab + "2" styles
     each, Ctrl+Enter submits and opens the next;
   - manual: pre-fill on open turned off; per box, P + 4 clicks + Enter + "2"; Ctrl+Enter.
   Counts keys and clicks, and wall time for all images.
3. From the editor's performance marks per image (inklabel:open, first-paint = the thumbnail on screen, photo =
   the display derivative on screen, suggestions = the pre-fill drawn): first paint and photo after open,
   suggestions after the photo, and the image switch (Ctrl+Enter pressed → the next photo's first paint and
   its display picture).
4. A person's time for the same actions, by the keystroke-level model (Card, Moran & Newell): 0.28 s a key,
   1.1 s to point plus 0.2 s to click, 1.35 s to think per image and per region placed by hand — scripted
   input takes no human time, so the wall time alone flatters drawing by hand.
Goals (issue 19): suggestions ≤ 150 ms after the photo on a cached pre-fill; image switch ≤ 300 ms.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PHOTOS = ROOT.parent / "shared" / "data" / "real-tattoos" / "images"

from tests.support.browser import CHROMIUM_ARGS  # noqa: E402


def yolo_boxes(label: Path, width: int, height: int, limit: int = 3) -> list[list[float]]:
    boxes = []
    for line in label.read_text().splitlines()[:limit]:
        parts = line.split()
        if len(parts) != 5:
            continue
        cx, cy, w, h = (float(v) for v in parts[1:])
        x0, y0 = max(1.0, (cx - w / 2) * width), max(1.0, (cy - h / 2) * height)
        x1, y1 = min(width - 1.0, (cx + w / 2) * width), min(height - 1.0, (cy + h / 2) * height)
        if x1 - x0 > 8 and y1 - y0 > 8:
            boxes.append([round(x0, 2), round(y0, 2), round(x1, 2), round(y1, 2)])
    return boxes


def rectangle(box: list[float]) -> dict:
    x0, y0, x1, y1 = box
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def seed_pool(app, photos: list[Path]) -> dict[int, list[list[float]]]:
    """Ingest the photos and store a cached pre-fill of each; returns image id → boxes."""
    from backend.db.extensions import db
    from backend.core.ingest import ingest_bytes
    from backend.db.models import ModelVersion, Prediction

    out = {}
    with app.app_context():
        seg = ModelVersion(kind="segmenter", name="bench-seg", weights_path="bench-seg.safetensors", is_current=True)
        db.session.add(seg)
        db.session.commit()
        for path in photos:
            image = ingest_bytes(path.read_bytes(), path.name, source="import").image
            boxes = yolo_boxes(path.with_suffix(".txt"), image.width, image.height) or \
                [[image.width * 0.3, image.height * 0.3, image.width * 0.7, image.height * 0.7]]
            regions = [{"id": uuid.uuid4().hex, "geometry": rectangle(b), "style": "japanese", "motifs": [],
                        "source": "model", "model_version": seg.id, "confidence": 0.8} for b in boxes]
            db.session.add(Prediction(image_id=image.id, segmenter_id=seg.id, regions=regions, concentration=0.3,
                                      uncertainty={"score": 0.5}))
            out[image.id] = boxes
        db.session.commit()
    return out


MARKS_JS = """() => {
  const t = (n) => { const e = performance.getEntriesByName(n); return e.length ? e[e.length - 1].startTime : null; };
  return {open: t('inklabel:open'), first_paint: t('inklabel:first-paint'), photo: t('inklabel:photo'),
          suggestions: t('inklabel:suggestions'), id: window.inklabel && window.inklabel.imageId};
}"""


def run_session(page, live, boxes_by_id: dict, prefill: bool) -> dict:
    from tests.support.browser import click_image

    actions = 0
    keys = clicks = thinks = 0
    page.goto(live.url + "/#/")
    page.evaluate("(on) => { localStorage.setItem('inklabel.autoPrefill', on ? '1' : '0');"
                  " localStorage.setItem('inklabel.strategy', 'oldest'); }", prefill)
    page.wait_for_selector("[data-testid=next-image]")
    started = time.perf_counter()
    page.click("[data-testid=next-image]")
    actions += 1
    per_image = []
    press_at = None
    for _ in range(len(boxes_by_id)):
        page.wait_for_function("() => window.inklabel && performance.getEntriesByName('inklabel:photo').length > 0")
        image_id = page.evaluate("window.inklabel.imageId")
        boxes = boxes_by_id[image_id]
        thinks += 1
        if prefill:
            page.wait_for_function("(n) => document.querySelectorAll('g.region.suggested').length === n", arg=len(boxes))
            page.keyboard.press("Shift+A")
            actions += 1
            keys += 1
            for _box in boxes:
                page.keyboard.press("Tab")
                page.keyboard.press("2")
                actions += 2
                keys += 2
        else:
            page.wait_for_timeout(50)
            page.focus(".stage")
            for x0, y0, x1, y1 in boxes:
                page.keyboard.press("p")
                for x, y in [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]:
                    click_image(page, x, y)
                page.keyboard.press("Enter")
                page.keyboard.press("2")
                actions += 7
                keys += 3
                clicks += 4
                thinks += 1
        marks = page.evaluate(MARKS_JS)
        if press_at is not None:
            marks["switch_first_paint"] = marks["first_paint"] - press_at if marks["first_paint"] else None
            marks["switch_photo"] = marks["photo"] - press_at
        per_image.append(marks)
        press_at = page.evaluate("performance.now()")
        page.keyboard.press("Control+Enter")
        actions += 1
        keys += 1
        page.wait_for_function("(id) => !window.inklabel || window.inklabel.imageId !== id", arg=image_id)
    total = time.perf_counter() - started
    klm = keys * 0.28 + clicks * (1.1 + 0.2) + thinks * 1.35
    return {"total_s": round(total, 2), "per_image_s": round(total / len(boxes_by_id), 2), "actions": actions,
            "keys": keys, "clicks": clicks + 1, "person_estimate_s": round(klm, 1),
            "actions_per_image": round(actions / len(boxes_by_id), 2), "marks": per_image}


def summarise(marks: list[dict]) -> dict:
    def stat(values):
        values = [v for v in values if v is not None]
        if not values:
            return None
        values.sort()
        return {"p50": round(statistics.median(values), 1), "max": round(values[-1], 1), "n": len(values)}

    return {
        "first_paint_after_open_ms": stat([m["first_paint"] - m["open"] for m in marks if m["first_paint"]]),
        "photo_after_open_ms": stat([m["photo"] - m["open"] for m in marks]),
        "suggestions_after_photo_ms": stat([max(0.0, m["suggestions"] - m["photo"]) for m in marks if m["suggestions"]]),
        "suggestions_after_open_ms": stat([m["suggestions"] - m["open"] for m in marks if m["suggestions"]]),
        "switch_to_first_paint_ms": stat([m.get("switch_first_paint") for m in marks]),
        "switch_to_photo_ms": stat([m.get("switch_photo") for m in marks]),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--chromium", default=os.environ.get("INKLABEL_CHROMIUM", "/usr/bin/chromium"))
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    if not PHOTOS.is_dir():
        print(f"no real photos at {PHOTOS}", file=sys.stderr)
        return 2
    photos = sorted(PHOTOS.glob("*.jpg"))[:args.images]

    from playwright.sync_api import sync_playwright

    from tests.support.app import build_app, make_user
    from tests.support.live import LiveServer

    logging.disable(logging.WARNING)
    out: dict = {"images": len(photos), "load_average_before": [round(x, 2) for x in os.getloadavg()],
                 "cpus": os.cpu_count()}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS)
        out["chromium"] = browser.version
        for mode in ("prefill", "manual"):
            tmp = Path(tempfile.mkdtemp(prefix=f"inklabel-bench-flow-{mode}-"))
            app = build_app(tmp, "sqlite", WARM_MODELS=False)
            live = LiveServer(app)
            make_user(app, "annie", "annotator", "password123")
            boxes = seed_pool(app, photos)
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.on("pageerror", lambda e: print("page error:", e, file=sys.stderr))
            page.request.post(live.url + "/api/v1/auth/login", data={"username": "annie", "password": "password123"})
            result = run_session(page, live, boxes, prefill=mode == "prefill")
            result["summary"] = summarise(result.pop("marks"))
            out[mode] = result
            context.close()
            live.stop()
        browser.close()
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    out["time_ratio_manual_over_prefill"] = round(out["manual"]["total_s"] / out["prefill"]["total_s"], 2)
    out["person_time_ratio_manual_over_prefill"] = round(out["manual"]["person_estimate_s"] / out["prefill"]["person_estimate_s"], 2)
    out["actions_ratio_manual_over_prefill"] = round(out["manual"]["actions"] / out["prefill"]["actions"], 2)
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
