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
        for k, box in enumerate(yolo_boxes(label, w, h)):
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
                ms = (time.perf_counter() - t) * 1000
                area = int(mask.sum())
                rows[tool].append({"photo": path.stem[:10], "box": k, "size": f"{x1 - x0}x{y1 - y0}",
                                   "box_share": (x1 - x0) * (y1 - y0) / (w * h),
                                   "coverage": float((mask & inside).sum() / inside.sum()),
                                   "outside": float((mask & ~inside).sum() / area) if area else 0.0,
                                   "empty": area == 0, "ms": ms})
                if tool == "box" and sheet is not None and len(tiles) < 24:
                    tiles.append(_tile(rgb, mask, (x0, y0, x1, y1)))
    if sheet is not None and tiles:
        cols = 6
        grid = Image.new("RGB", (cols * 200, ((len(tiles) + cols - 1) // cols) * 200))
        for i, tile in enumerate(tiles):
            grid.paste(tile, ((i % cols) * 200, (i // cols) * 200))
        grid.save(sheet)
    out = {"images": len(images), "boxes": len(rows[tools[0]]) if tools else 0, "rows": rows}
    for tool, items in rows.items():
        cov = [r["coverage"] for r in items]
        outside = [r["outside"] for r in items if not r["empty"]]
        out[tool] = {
            "coverage": distribution(cov), "outside": distribution(outside),
            "empty_share": float(np.mean([r["empty"] for r in items])) if items else float("nan"),
            "ms": distribution([r["ms"] for r in items]),
        }
    return out


QUANTILES = (10, 25, 50, 75, 90)


def distribution(values) -> dict:
    """mean, min, max and the QUANTILES of a list (NaN when empty)."""
    if not values:
        return {"n": 0, "mean": float("nan"), "min": float("nan"), "max": float("nan"),
                **{f"p{q}": float("nan") for q in QUANTILES}}
    return {"n": len(values), "mean": float(np.mean(values)), "min": float(np.min(values)),
            "max": float(np.max(values)), **{f"p{q}": pct(values, q) for q in QUANTILES}}


def _dist_row(name: str, d: dict, percent: bool = True) -> str:
    f = (lambda v: f"{v:.1%}") if percent else (lambda v: f"{v:.0f}")
    return (f"| {name} | {d['n']} | {f(d['mean'])} | {f(d['min'])} | " + " | ".join(f(d[f"p{q}"]) for q in QUANTILES)
            + f" | {f(d['max'])} |")


def print_real(real: dict, tools: tuple[str, ...], worst: int, table: bool) -> None:
    print(f"real photos: {real['images']} images, {real['boxes']} human boxes (scaled to ≤{MAX_SIDE} px)\n")
    print("| tool: figure | boxes | mean | min | " + " | ".join(f"p{q}" for q in QUANTILES) + " | max |")
    print("|---|---:|---:|---:|" + "---:|" * len(QUANTILES) + "---:|")
    for tool in tools:
        r = real[tool]
        print(_dist_row(f"{tool}: box covered by its mask", r["coverage"]))
        print(_dist_row(f"{tool}: mask outside the box (non-empty masks)", r["outside"]))
        print(_dist_row(f"{tool}: ms per box", r["ms"], percent=False))
    print()
    for tool in tools:
        print(f"{tool}: empty masks {real[tool]['empty_share']:.1%} of the boxes")
    for tool in tools:
        items = real["rows"][tool]
        header = "| photo | box | size (px) | box / photo | covered | outside | ms |\n|---|---:|---:|---:|---:|---:|---:|"

        def line(r):
            return (f"| {r['photo']} | {r['box']} | {r['size']} | {r['box_share']:.0%} | {r['coverage']:.1%} | "
                    f"{r['outside']:.1%} | {r['ms']:.0f} |")

        if table:
            print(f"\n{tool}: every box\n\n{header}")
            for r in items:
                print(line(r))
        else:
            print(f"\n{tool}: the {worst} boxes it covers least\n\n{header}")
            for r in sorted(items, key=lambda r: r["coverage"])[:worst]:
                print(line(r))
            spill = sorted((r for r in items if r["outside"] > 0), key=lambda r: -r["outside"])[:worst]
            if not spill:
                print(f"\n{tool}: no mask reaches outside its box")
                continue
            print(f"\n{tool}: the {len(spill)} masks with most ink outside the box\n\n{header}")
            for r in spill:
                print(line(r))


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
    parser.add_argument("--worst", type=int, default=8, help="worst boxes listed per tool and figure")
    parser.add_argument("--table", action="store_true", help="list every box instead of the worst ones")
    args = parser.parse_args()
    tools = tuple(t.strip() for t in args.tools.split(",") if t.strip())
    if (args.data / "images").is_dir():
        real = real_photos(args.data, args.sheet, tools)
        print_real(real, tools, args.worst, args.table)
    else:
        print(f"real photos not found under {args.data}: skipped")
    proc = procedural(tools)
    print("\nprocedural tattoos (IoU with the true mask, 5 %-padded true box, 10 images per style):")
    for tool, per in proc.items():
        print(f"  {tool:8s} mean {np.mean(list(per.values())):.3f}  " + ", ".join(f"{k} {v:.2f}" for k, v in per.items()))


if __name__ == "__main__":
    main()
