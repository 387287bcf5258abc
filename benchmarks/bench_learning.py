#!/usr/bin/env python
"""What the model loop learns, trained only through the tool: procedural images → ingest → labelled through
save_document → reviewed and accepted → export (backend.datasets) → `run_training` (what `manage.py train` and the
train job run) → judged on held-out procedural images the workspace never saw.

Figures: segmenter IoU (dataset level: all intersections over all unions, at each image's own resolution) and
Dice on the held-out images; style accuracy of the classifier on the held-out tattoos' crops (cut as the export cuts
them); per-style numbers; wall time of each step on this machine.

    python benchmarks/bench_learning.py                       # defaults below
    python benchmarks/bench_learning.py --images 400 --seg-epochs 30 --threads 2 --keep /tmp/ws
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=300, help="procedural images labelled and exported")
    parser.add_argument("--holdout", type=int, default=100, help="held-out procedural images for the figures")
    parser.add_argument("--seg-epochs", type=int, default=36)
    parser.add_argument("--seg-input", type=int, default=256)
    parser.add_argument("--seg-batch", type=int, default=8)
    parser.add_argument("--encoder", default="resnet18")
    parser.add_argument("--cls-epochs", type=int, default=25)
    parser.add_argument("--cls-input", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads [usable CPUs]")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None, help="build the workspace here and keep it")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from backend.ml.device import configure_cpu_threads

    threads = configure_cpu_threads(args.threads)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="inklabel-bench-learning-"))
    try:
        out = run(args, workdir)
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    out["threads"] = threads
    print(f"trained through the tool on {out['labelled']} procedural images ({out['export_counts']}), "
          f"judged on {args.holdout} held-out ones; {threads} CPU thread(s), device {args.device}")
    seg, cls = out["segmenter"], out["classifier"]
    print(f"  segmenter {args.encoder} @ {args.seg_input}px, {args.seg_epochs} epochs: held-out IoU {seg['iou']:.3f}, "
          f"Dice {seg['dice']:.3f} at threshold {seg['threshold']} (val IoU {seg['val_iou']:.3f}); training "
          f"{seg['train_seconds']:.0f}s")
    print("    recall per style: " + ", ".join(f"{k} {v:.2f}" for k, v in seg["recall_per_style"].items()))
    print(f"  classifier @ {args.cls_input}px, {args.cls_epochs} epochs: held-out style accuracy "
          f"{cls['accuracy']:.3f}, macro F1 {cls['macro_f1']:.3f} on {cls['samples']} tattoos; training "
          f"{cls['train_seconds']:.0f}s")
    print("  steps: " + ", ".join(f"{k} {v:.0f}s" for k, v in out["seconds"].items()))
    if args.json:
        print(json.dumps(out))


def run(args, workdir: Path) -> dict:
    import torch

    from backend import create_app
    from backend.web.auth import create_user
    from backend.commands.ml import populate_synthetic
    from backend.datasets.export import create_export
    from backend.db.migrate import init_db
    from backend.db.extensions import db
    from backend.ml.device import resolve_device
    from backend.ml.crops import crop_box
    from backend.ml.infer import ClassifierRunner, SegmenterRunner
    from backend.ml.metrics import MaskCounts, classification_report
    from backend.ml.synth import generate_image
    from backend.ml.weights import load_bundle
    from backend.db.models import ModelVersion
    from backend.jobs.training import run_training

    seconds: dict[str, float] = {}
    workspace = workdir / "workspace"
    app = create_app({"WORKSPACE": str(workspace), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workspace / 'db.sqlite'}",
                      "SECRET_KEY": "bench-learning", "SCHEMA_CREATE_ALL": True, "TESTING": True})
    init_db(app)
    with app.app_context():
        user = create_user("bench", "bench-password", "admin")
        t = time.monotonic()
        pool = populate_synthetic(args.images, 1.0, user, seed=args.seed)
        seconds["generate+ingest+label+accept"] = time.monotonic() - t
        t = time.monotonic()
        export = create_export({"formats": ["masks", "crops"], "split": {"val": 0.1, "test": 0.0, "seed": 0},
                                "filter": {"status": ["accepted"]}}, user_id=user.id)
        seconds["export"] = time.monotonic() - t
        counts = {k: v for k, v in ((export.manifest or {}).get("counts", {}).get("images") or {}).items() if v}
        t = time.monotonic()
        seg = run_training("segmenter", export.id, {"epochs": args.seg_epochs, "input_size": args.seg_input,
                                                     "batch_size": args.seg_batch, "encoder": args.encoder,
                                                     "device": args.device, "seed": args.seed}, "always")
        seconds["train segmenter"] = time.monotonic() - t
        t = time.monotonic()
        cls = run_training("classifier", export.id, {"epochs": args.cls_epochs, "input_size": args.cls_input,
                                                      "device": args.device, "seed": args.seed}, "always")
        seconds["train classifier"] = time.monotonic() - t
        models = workspace / "models"
        seg_row = db.session.get(ModelVersion, seg["model_version_id"])
        cls_row = db.session.get(ModelVersion, cls["model_version_id"])
        device = resolve_device(args.device)
        seg_runner = SegmenterRunner.from_bundle(load_bundle(seg_row.weights_path, root=models), device)
        cls_bundle = load_bundle(cls_row.weights_path, root=models)
        cls_runner = ClassifierRunner.from_bundle(cls_bundle, device)
        margin = float(cls_bundle.sidecar.training.get("crop_margin", 0.1))

    t = time.monotonic()
    counts_all = MaskCounts()
    recall: dict[str, list[int]] = {}
    y_true, crops = [], []
    index = {c: i for i, c in enumerate(cls_runner.classes)}
    for k in range(args.holdout):
        sample = generate_image(10_000_000 + args.seed * 100_000 + k)
        with torch.inference_mode():
            probs, _ = seg_runner.predict([sample.image])
        pred = probs[0] >= seg_runner.threshold
        counts_all.add(pred, sample.mask > 0)
        for tattoo in sample.tattoos:
            hit = recall.setdefault(tattoo.style, [0, 0])
            hit[0] += int((pred & tattoo.mask).sum())
            hit[1] += int(tattoo.mask.sum())
            if tattoo.style in index:
                crops.append(crop_box(sample.image, tattoo.bbox, margin))
                y_true.append(index[tattoo.style])
    probs = cls_runner.predict(crops)
    report = classification_report(y_true, probs.argmax(axis=1), cls_runner.classes)
    seconds["evaluate held-out"] = time.monotonic() - t
    summary = counts_all.summary()
    return {
        "labelled": len(pool["labelled"]),
        "export_counts": counts,
        "segmenter": {**summary, "val_iou": seg["headline"], "train_seconds": seg["train_seconds"],
                      "threshold": seg_runner.threshold,
                      "recall_per_style": {k: v[0] / max(1, v[1]) for k, v in sorted(recall.items())}},
        "classifier": {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "samples": report["samples"],
                       "per_style_f1": {k: v["f1"] for k, v in report["per_style"].items()},
                       "val_accuracy": cls["headline"], "train_seconds": cls["train_seconds"]},
        "seconds": seconds,
        "pid": os.getpid(),
    }


if __name__ == "__main__":
    main()
