#!/usr/bin/env python
"""Box assist and click latency on the real photos, quickly: no workspace, no training (bench_real.py does those).

Box assist as the API answers it (`model_assist.box_assist`) on every human box of the chosen split of
../shared/data/real-tattoos (the split of bench_real.py: every 4th photo by sorted file name held out), model-free
unless `--model` names a segmenter file: tightness (IoU of the mask's bounding box with the human box; an empty
answer counts 0), the share of boxes with tightness ≥ 0.5, the share of mask area outside its box, empty answers.
Click latency: one positive click at each box's centre, then a second request adding a negative click 60 % of the way to
the box's corner, as an annotator refines (reported together and apart: the second may reuse the first's probability map); with `--model`, or with `--random-model` (an untrained segmenter of the default
architecture and input size: the same work as a trained one, for timing only).

    python benchmarks/bench_real_assist.py                        # held-out photos, model-free
    python benchmarks/bench_real_assist.py --split train --worst 10
    python benchmarks/bench_real_assist.py --random-model --threads 2
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "real-tattoos"

from benchmarks.bench_real import _box_iou, _mask_box  # noqa: E402


def photos(data: Path, split: str) -> list[Path]:
    from backend.commands.real_photos import labelled_photos, real_photo_split

    train, held = real_photo_split(data)
    wanted = set({"train": train, "held": held, "all": train + held}[split])
    return [p for p in labelled_photos(data) if p.name in wanted]


def load_runner(model: Path | None, random_model: bool, input_size: int):
    if model is not None:
        from backend.ml.infer import SegmenterRunner
        from backend.ml.weights import load_bundle

        return SegmenterRunner.from_bundle(load_bundle(model, model.parent), "cpu")
    if random_model:
        import torch

        from backend.ml.infer import SegmenterRunner, fold_batchnorm
        from backend.ml.nets import DEFAULT_SEGMENTER, IMAGENET_MEAN, IMAGENET_STD, build_from_architecture

        torch.manual_seed(0)
        net = build_from_architecture(DEFAULT_SEGMENTER)
        fold_batchnorm(net)
        return SegmenterRunner(net, input_size, IMAGENET_MEAN, IMAGENET_STD, "cpu")
    return None


def measure(paths: list[Path], runner, clicks: bool) -> dict:
    from backend.ml.model_assist import box_area, box_assist, click_segment
    from backend.ml.synth_real import yolo_boxes

    rows, click_ms = [], []
    for path in paths:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        h, w = rgb.shape[:2]
        for box in yolo_boxes(path.with_suffix(".txt"), w, h):
            t = time.perf_counter()
            try:
                mask, answered = box_assist(rgb, box, runner)
            except ValueError:
                mask, answered = np.zeros((h, w), bool), "classical"
            ms = (time.perf_counter() - t) * 1000
            mb = _mask_box(mask)
            rows.append({"photo": path.name, "box": [round(v) for v in box], "ms": ms, "answered": answered,
                         "tightness": _box_iou(mb, box) if mb else 0.0, "area": int(mask.sum()),
                         "outside": int((mask & ~box_area(mask.shape, box)).sum())})
            if clicks:
                cx, cy = min((box[0] + box[2]) / 2, w - 1), min((box[1] + box[3]) / 2, h - 1)
                corner = [cx + 0.6 * (box[0] - cx), cy + 0.6 * (box[1] - cy)]  # towards the top left corner
                for k, negatives in enumerate(([], [corner])):
                    t = time.perf_counter()
                    click_segment(rgb, [[cx, cy]], negatives, runner)
                    click_ms.append(((time.perf_counter() - t) * 1000, k))
    tight = [r["tightness"] for r in rows]
    fill = [r["area"] / max(1.0, (r["box"][2] - r["box"][0]) * (r["box"][3] - r["box"][1])) for r in rows]
    out = {"boxes": len(rows), "photos": len(paths), "median_tightness": float(np.median(tight)),
           "median_fill": float(np.median(fill)), "share_fill_70": float(np.mean([f > 0.7 for f in fill])),
           "share_ge_50": float(np.mean([v >= 0.5 for v in tight])),
           "outside_share": sum(r["outside"] for r in rows) / max(1, sum(r["area"] for r in rows)),
           "empty": float(np.mean([r["area"] == 0 for r in rows])),
           "box_ms_median": float(np.median([r["ms"] for r in rows])), "rows": rows}
    for name, which in (("click", (0, 1)), ("first_click", (0,)), ("second_click", (1,))):
        ms = [v for v, k in click_ms if k in which]
        if ms:
            out[name] = {"n": len(ms), "ms_median": float(np.median(ms)), "ms_p95": float(np.percentile(ms, 95))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--split", choices=("held", "train", "all"), default="held")
    parser.add_argument("--model", type=Path, default=None, help="a segmenter .safetensors (with its sidecar)")
    parser.add_argument("--random-model", action="store_true", help="an untrained segmenter, for click timing")
    parser.add_argument("--input-size", type=int, default=192, help="--random-model's input size [192]")
    parser.add_argument("--no-clicks", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads [usable CPUs]")
    parser.add_argument("--worst", type=int, default=0, help="list the N boxes with the lowest tightness")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not (args.data / "images").is_dir():
        sys.exit(f"no real photos at {args.data} (see its README): nothing to measure")
    from backend.ml.device import configure_cpu_threads

    threads = configure_cpu_threads(args.threads)
    runner = load_runner(args.model, args.random_model, args.input_size)
    out = measure(photos(args.data, args.split), runner, not args.no_clicks)
    mode = "model " + str(args.model or "random") if runner is not None else "model-free"
    print(f"{args.split}: {out['photos']} photos, {out['boxes']} boxes, {mode}, {threads} thread(s)")
    print(f"  box assist: median tightness {out['median_tightness']:.3f}, ≥0.5 for {out['share_ge_50']:.3f}, "
          f"area outside box {out['outside_share']:.4f}, empty {out['empty']:.3f}, {out['box_ms_median']:.0f} ms median; "
          f"mask/box area median {out['median_fill']:.2f}, > 0.7 for {out['share_fill_70']:.3f}")
    for name in ("click", "first_click", "second_click"):
        if name in out:
            c = out[name]
            print(f"  {name.replace('_', ' ')}: median {c['ms_median']:.0f} ms, p95 {c['ms_p95']:.0f} ms over {c['n']}")
    for r in sorted(out["rows"], key=lambda r: r["tightness"])[:args.worst]:
        print(f"    {r['tightness']:.3f} {r['photo']} {r['box']} area {r['area']} outside {r['outside']}")
    if args.json:
        print(json.dumps({k: v for k, v in out.items() if k != "rows"}))


if __name__ == "__main__":
    main()
