#!/usr/bin/env python
"""Box assist on real photos: how much of each human-drawn box the `box` (and `grabcut`) assist covers with ink,
and how much of the resulting mask falls outside the box.

Data: the 64 real tattoo photos in ../shared/data/real-tattoos/images with their YOLO boxes (human work; there are
no true masks, so this measures coverage and spill, not accuracy). The images are scaled as the API does (long
side ≤ 1600 px) before the tool runs. A procedural check with true masks runs too, for the IoU the tests state.

    python benchmarks/bench_assist.py [--data ../shared/data/real-tattoos] [--sheet /tmp/assist.png]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.ml.assist import box_ink, grabcut  # noqa: E402
from backend.ml.synth import SYNTH_STYLES, generate_image  # noqa: E402

MAX_SIDE = 1600


def yolo_boxes(label: Path, width: int, height: int) -> list[list[float]]:
    boxes = []
    for line in label.read_text().splitlines():
        parts = line.split()
        if len(parts) != 5:
            continue
        _, cx, cy, w, h = (float(p) for p in parts)
        boxes.append([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height])
    return boxes


def pct(values, q):
    return float(np.percentile(values, q)) if values else float("nan")


def real_photos(data: Path, sheet: Path | None, tools: tuple[str, ...]) -> dict:
    rows = {t: [] for t in tools}
    times = {t: [] for t in tools}
    tiles = []
    images = sorted((data / "images").glob("*.jpg"))
    for path in images:
        label = path.with_suffix(".txt")
        if not label.is_file():
            continue
        pil = Image.open(path).convert("RGB")
        scale = min(1.0, MAX_SIDE / max(pil.size))
        if scale < 1:
            pil = pil.resize((round(pil.width * scale), round(pil.height * scale)), Image.BILINEAR)
        rgb = np.asarray(pil)
        h, w = rgb.shape[:2]
        for box in yolo_boxes(label, w, h):
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
            if x1 - x0 < 4 or y1 - y0 < 4:
                continue
            inside = np.zeros((h, w), bool)
            inside[y0:y1, x0:x1] = True
            for tool, fn in (("box", box_ink), ("grabcut", grabcut)):
                if tool not in tools:
                    continue
                t = time.perf_counter()
                mask = fn(rgb, [x0, y0, x1, y1])
                times[tool].append(time.perf_counter() - t)
                area = mask.sum()
                rows[tool].append({"coverage": float((mask & inside).sum() / inside.sum()),
                                   "outside": float((mask & ~inside).sum() / area) if area else 0.0,
                                   "empty": bool(area == 0)})
                if tool == "box" and sheet is not None and len(tiles) < 24:
                    tiles.append(_tile(rgb, mask, (x0, y0, x1, y1)))
    if sheet is not None and tiles:
        cols = 6
        grid = Image.new("RGB", (cols * 200, ((len(tiles) + cols - 1) // cols) * 200))
        for i, tile in enumerate(tiles):
            grid.paste(tile, ((i % cols) * 200, (i // cols) * 200))
        grid.save(sheet)
    out = {"images": len(images), "boxes": len(rows["box"])}
    for tool, items in rows.items():
        cov = [r["coverage"] for r in items]
        outside = [r["outside"] for r in items if not r["empty"]]
        out[tool] = {
            "coverage_median": pct(cov, 50), "coverage_p10": pct(cov, 10), "coverage_p90": pct(cov, 90),
            "outside_median": pct(outside, 50), "outside_p90": pct(outside, 90), "outside_max": max(outside or [0]),
            "empty_share": float(np.mean([r["empty"] for r in items])) if items else float("nan"),
            "ms_median": pct([t * 1000 for t in times[tool]], 50),
        }
    return out


def _tile(rgb, mask, box):
    x0, y0, x1, y1 = box
    pad = int(0.15 * max(x1 - x0, y1 - y0))
    a, b = max(0, x0 - pad), max(0, y0 - pad)
    c, d = min(rgb.shape[1], x1 + pad), min(rgb.shape[0], y1 + pad)
    view = rgb[b:d, a:c].astype(np.float32)
    m = mask[b:d, a:c]
    view[m] = view[m] * 0.4 + np.array([0, 255, 0]) * 0.6
    view[y0 - b:y1 - b, [x0 - a, x1 - a - 1]] = (255, 0, 0)
    view[[y0 - b, y1 - b - 1], x0 - a:x1 - a] = (255, 0, 0)
    tile = Image.fromarray(view.astype(np.uint8))
    tile.thumbnail((200, 200))
    canvas = Image.new("RGB", (200, 200))
    canvas.paste(tile, (0, 0))
    return canvas


def procedural(tools: tuple[str, ...], n_per_style: int = 10) -> dict:
    out = {}
    for tool, fn in (("box", box_ink), ("grabcut", grabcut)):
        if tool not in tools:
            continue
        per = {}
        for style in SYNTH_STYLES:
            ious = []
            for seed in range(n_per_style):
                sample = generate_image(1000 + seed, width=320, height=320, styles=[style])
                if not sample.tattoos:
                    continue
                t = sample.tattoos[0]
                x0, y0, x1, y1 = t.bbox
                m = max(3, int(0.05 * max(x1 - x0, y1 - y0)))
                pred = fn(sample.image, [x0 - m, y0 - m, x1 + m, y1 + m])
                ious.append((pred & t.mask).sum() / max(1, (pred | t.mask).sum()))
            per[style] = float(np.mean(ious))
        out[tool] = per
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "real-tattoos")
    parser.add_argument("--sheet", type=Path, default=None, help="write a contact sheet of box-assist masks here")
    parser.add_argument("--tools", default="box,grabcut", help="comma-separated: box, grabcut")
    args = parser.parse_args()
    tools = tuple(t.strip() for t in args.tools.split(",") if t.strip())
    if (args.data / "images").is_dir():
        real = real_photos(args.data, args.sheet, tools)
        print(f"real photos: {real['images']} images, {real['boxes']} human boxes (scaled to ≤{MAX_SIDE} px)")
        for tool in tools:
            r = real[tool]
            print(f"  {tool:8s} covers {r['coverage_median']:.0%} of a box (median; p10 {r['coverage_p10']:.0%}, "
                  f"p90 {r['coverage_p90']:.0%}); mask outside the box {r['outside_median']:.1%} median, "
                  f"{r['outside_p90']:.1%} p90, {r['outside_max']:.1%} max; empty {r['empty_share']:.0%}; "
                  f"{r['ms_median']:.0f} ms/box")
    else:
        print(f"real photos not found under {args.data}: skipped")
    proc = procedural(tools)
    print("procedural tattoos (IoU with the true mask, 5 %-padded true box, 10 images per style):")
    for tool, per in proc.items():
        print(f"  {tool:8s} mean {np.mean(list(per.values())):.3f}  " + ", ".join(f"{k} {v:.2f}" for k, v in per.items()))


if __name__ == "__main__":
    main()
