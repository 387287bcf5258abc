#!/usr/bin/env python
"""Pre-fill and assist on real photos, trained through the tool and measured on held-out real photos.

Data: ../shared/data/real-tattoos (120 photos with human YOLO boxes, no masks). Fixed split by sorted file name
(backend/commands/real_photos.py): every 4th photo (30) is held out, never imported for training nor used as skin.

Training, through the tool: the 90 training photos imported with the tool's YOLO importer (their boxes become box
regions, accepted) + procedural images (exact masks) + procedural tattoos composited on the training photos' skin
outside their boxes (exact masks) → export (masks, crops, boxes/labels.csv) → `run_training` (what `manage.py
train` runs): the segmenter learns from masks and boxes together (backend/ml/boxsup.py), the classifier from the
procedural crops. Both are promoted.

Figures on the 30 held-out photos:
- pre-fill (the tool's own pre-fill: `prefill_images`, regions as the editor gets them): box AP50 and recall at
  IoU 0.5 by pycocotools (each predicted region's bounding box, scored by its mask confidence, against the human
  boxes), and the share of predicted tattoo area inside any human box;
- box assist on every human box as the API answers it (`model_assist.box_assist`: the model's or the model-free
  mask, whichever fits the box best; the model-free one alone in the same run): tightness = IoU of the mask's bounding box with the human box
  (an empty answer counts 0), share of boxes ≥ 0.5, share of the mask outside its box, empty answers;
- click-to-segment latency: one positive click at the centre of each human box, model-backed, at the API's scale;
- procedural held-out segmenter IoU and style accuracy (as bench_learning.py measures them), and CPU training time.

    python benchmarks/bench_real.py --preset quick      # the reduced setting (about 10 minutes on 2 busy cores)
    python benchmarks/bench_real.py --preset full       # the issue's setting: 30 min CPU training budget
    python benchmarks/bench_real.py --preset full --keep /tmp/real    # ... and keep the workspace, then
    python benchmarks/bench_real.py --measure /tmp/real [--no-body-gate]  # measure its models again, no training
    python benchmarks/bench_real.py --measure annotations     # the models of a tool workspace (e.g. the demo's)

Pre-fill keeps its regions on the body by default (PrefillSettings.on_body, INKLABEL_PREFILL_ON_BODY);
--no-body-gate measures it without.
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
DATA = ROOT.parent / "shared" / "data" / "real-tattoos"

PRESETS = {
    # on 2 busy cores (load 8-13): about 10 minutes in all, 4 of them training (measured 2026-12-07)
    "quick": {"procedural": 60, "composites": 60, "seg_input": 128, "seg_epochs": 4, "seg_time": 240,
              "cls_epochs": 4, "cls_input": 64, "holdout": 20, "boxes_per_photo": 99},
    # the budget: 30 minutes of CPU training in all
    "full": {"procedural": 300, "composites": 300, "seg_input": 320, "seg_epochs": 30, "seg_time": 1500,
             "cls_epochs": 20, "cls_input": 128, "holdout": 100, "boxes_per_photo": 99},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    for key in PRESETS["quick"]:
        parser.add_argument("--" + key.replace("_", "-"), type=int, default=None, help=f"overrides the preset's {key}")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads [usable CPUs]")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--encoder", default=None, help="the segmenter's encoder [training's default, "
                        "backend/ml/defaults.py: tu-tf_efficientnet_lite0]")
    parser.add_argument("--backbone", default=None, help="the classifier's timm backbone [training's default: resnet18]")
    parser.add_argument("--encoder-weights", choices=["imagenet", "none"], default=None,
                        help="imagenet or random weights for both networks [training's default: imagenet where the "
                             "weights come installed (backend/ml/packaged_weights.py), else none]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None, help="build the workspace here and keep it")
    parser.add_argument("--measure", type=Path, default=None,
                        help="a workspace kept by --keep, or a tool workspace such as the demo's: measure its current "
                             "models again on the held-out photos (no import of the training photos, no training)")
    parser.add_argument("--no-body-gate", action="store_true", help="pre-fill without its on-body gate")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    settings = dict(PRESETS[args.preset])
    settings.update({k: getattr(args, k) for k in settings if getattr(args, k) is not None})
    if not (args.data / "images").is_dir() and not any(args.data.glob("*.jpg")):
        sys.exit(f"no real photos at {args.data} (see its README): nothing to measure")

    from backend.ml.device import configure_cpu_threads

    threads = configure_cpu_threads(args.threads)
    if args.measure is not None:
        out = measure_again(args, settings)
    else:
        workdir = args.keep or Path(tempfile.mkdtemp(prefix="inklabel-bench-real-"))
        try:
            out = run(args, settings, workdir)
        finally:
            if args.keep is None:
                shutil.rmtree(workdir, ignore_errors=True)
    out.update(threads=threads, preset=args.preset, settings=settings, device=args.device)
    report(out)
    if args.json:
        print(json.dumps(out))


def report(out: dict) -> None:
    s, p, a, c = out["settings"], out["prefill"], out["assist"], out["click"]
    print(f"preset {out['preset']} {s}; {out['threads']} thread(s), device {out['device']}")
    if "measured_again" in out:
        print(f"models of {out['measured_again']} measured again; held out {out['held_out_photos']} photos "
              f"({p['gt_boxes']} boxes)")
    else:
        print(f"trained on {out['train_photos']} real photos ({out['train_boxes']} boxes) + {out['procedural']} "
              f"procedural + {out['composites']} composites; held out {out['held_out_photos']} photos "
              f"({p['gt_boxes']} boxes)")
        print(f"  segmenter training {out['seg_train_seconds']:.0f}s ({out['seg_epochs_run']} epochs), classifier "
              f"{out['cls_train_seconds']:.0f}s")
        if "networks" in out:
            start = {True: "ImageNet weights", False: "random weights", None: "?"}
            print(f"  segmenter {out['networks'][0]} from {start[out['seg_pretrained']]}, classifier "
                  f"{out['networks'][1]} from {start[out['cls_pretrained']]}")
    print(f"  pre-fill on-body gate: {'on' if out.get('body_gate', True) else 'off'}")
    print(f"  pre-fill: box AP50 {p['ap50']:.3f}, recall@0.5 {p['recall50']:.3f}, predicted area inside human boxes "
          f"{p['area_inside']:.3f} ({p['regions']} regions)")
    for name in ("model", "classical"):
        r = a[name]
        print(f"  box assist ({name}): median tightness {r['median_tightness']:.3f}, ≥0.5 for {r['share_ge_50']:.3f}, "
              f"area outside box {r['outside_share']:.4f}, empty {r['empty']:.3f}, {r['ms_median']:.0f} ms median"
              + (f", model answered {r['model_answered']:.3f}" if "model_answered" in r else ""))
    print(f"  click (model): median {c['ms_median']:.0f} ms, p95 {c['ms_p95']:.0f} ms over {c['n']} clicks")
    print(f"  procedural held-out: IoU {out['procedural_holdout']['iou']:.3f}, style accuracy "
          f"{out['procedural_holdout']['style_accuracy']:.3f}")
    if "seconds" in out:
        print("  steps: " + ", ".join(f"{k} {v:.0f}s" for k, v in out["seconds"].items()))


def _app(workspace: Path, device: str, body_gate: bool, database: str = "db.sqlite"):
    from backend import create_app

    return create_app({"WORKSPACE": str(workspace), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workspace / database}",
                       "SECRET_KEY": "bench-real", "SCHEMA_CREATE_ALL": True, "TESTING": True, "DEVICE": device,
                       "PREFILL_ON_BODY": body_gate})


def measure_again(args, settings: dict) -> dict:
    """The held-out figures of the models a --keep run promoted, pre-filled afresh (e.g. after a change to pre-fill),
    or of a tool workspace's current models (e.g. the demo's: `--measure annotations`; the held-out photos are
    added to it)."""
    from backend.commands.real_photos import real_photo_split

    workspace, database = args.measure / "workspace", "db.sqlite"
    if not (workspace / database).is_file():
        workspace, database = args.measure, "inklabel.db"
    if not (workspace / database).is_file():
        sys.exit(f"{args.measure} holds neither a workspace kept by --keep nor a tool workspace (inklabel.db)")
    app = _app(workspace, args.device, not args.no_body_gate, database)
    _, held_names = real_photo_split(args.data)
    with app.app_context():
        held = held_out(args.data, held_names, settings["boxes_per_photo"], refresh=True)
        procedural = procedural_holdout(settings["holdout"], args.seed)
    return {"measured_again": str(args.measure), "held_out_photos": len(held_names), **held,
            "procedural_holdout": procedural, "body_gate": not args.no_body_gate}


def run(args, settings: dict, workdir: Path) -> dict:
    from backend.web.auth import create_user
    from backend.commands.ml import populate_synthetic
    from backend.commands.real_photos import import_real_photos, populate_composites, real_photo_split
    from backend.datasets.export import create_export
    from backend.db.migrate import init_db
    from backend.db.extensions import db
    from backend.ml.synth_real import RealBackgrounds
    from backend.db.models import ModelVersion
    from backend.jobs.training import run_training

    seconds: dict[str, float] = {}
    workspace = workdir / "workspace"
    app = _app(workspace, args.device, not args.no_body_gate)
    init_db(app)
    train_names, held_names = real_photo_split(args.data)
    with app.app_context():
        user = create_user("bench", "bench-password", "admin")
        t = time.monotonic()
        imported = import_real_photos(args.data, train_names, user.id).to_dict()
        seconds["import real"] = time.monotonic() - t
        t = time.monotonic()
        populate_synthetic(settings["procedural"], 1.0, user, seed=args.seed)
        seconds["procedural"] = time.monotonic() - t
        t = time.monotonic()
        source = RealBackgrounds.from_folder(args.data, train_names)
        populate_composites(source, settings["composites"], user, seed=args.seed + 500_000)
        seconds["composites"] = time.monotonic() - t
        t = time.monotonic()
        export = create_export({"formats": ["masks", "crops"], "split": {"val": 0.1, "test": 0.0, "seed": 0},
                                "filter": {"status": ["accepted"]}}, user_id=user.id)
        seconds["export"] = time.monotonic() - t
        t = time.monotonic()
        seg = run_training("segmenter", export.id, {"epochs": settings["seg_epochs"], "input_size": settings["seg_input"],
                                                     "batch_size": 8, "device": args.device, "seed": args.seed,
                                                     "time_limit": settings["seg_time"],
                                                     **_given(encoder=args.encoder,
                                                              encoder_weights=args.encoder_weights)}, "always")
        seconds["train segmenter"] = time.monotonic() - t
        seg_version = db.session.get(ModelVersion, seg["model_version_id"])
        seg_metrics = seg_version.metrics
        t = time.monotonic()
        cls = run_training("classifier", export.id, {"epochs": settings["cls_epochs"], "input_size": settings["cls_input"],
                                                      "device": args.device, "seed": args.seed,
                                                      **_given(backbone=args.backbone,
                                                               encoder_weights=args.encoder_weights)}, "always")
        seconds["train classifier"] = time.monotonic() - t
        cls_version = db.session.get(ModelVersion, cls["model_version_id"])
        cls_metrics = cls_version.metrics
        networks = (seg_version.architecture["encoder"], cls_version.architecture["backbone"])
        t = time.monotonic()
        held = held_out(args.data, held_names, settings["boxes_per_photo"])
        seconds["held-out real"] = time.monotonic() - t
        t = time.monotonic()
        procedural = procedural_holdout(settings["holdout"], args.seed)
        seconds["held-out procedural"] = time.monotonic() - t
    boxes = imported.get("regions_added", imported.get("regions", 0))
    return {
        "train_photos": len(train_names), "held_out_photos": len(held_names), "train_boxes": boxes,
        "import": {k: v for k, v in imported.items() if not isinstance(v, list)},
        "procedural": settings["procedural"], "composites": settings["composites"],
        "seg_train_seconds": seg["train_seconds"], "seg_epochs_run": seg_metrics.get("epochs_run"),
        "seg_train_box_images": seg_metrics.get("train_box_images"),
        "seg_val": seg["headline"], "cls_train_seconds": cls["train_seconds"], "cls_val": cls["headline"],
        **held, "procedural_holdout": procedural, "seconds": seconds, "pid": os.getpid(),
        "body_gate": not args.no_body_gate, "networks": networks,
        "seg_pretrained": seg_metrics.get("pretrained"), "cls_pretrained": cls_metrics.get("pretrained"),
    }


def _given(**options) -> dict:
    """The options given on the command line; the others keep training's defaults."""
    return {k: v for k, v in options.items() if v is not None}


def _box_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _mask_box(mask: np.ndarray):
    ys, xs = np.nonzero(mask)
    return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)) if len(xs) else None


def held_out(data: Path, names: list[str], boxes_per_photo: int = 99, refresh: bool = False) -> dict:
    """Ingest the held-out photos unlabelled, pre-fill them with the promoted models, and measure (module doc)."""
    from backend.commands.real_photos import labelled_photos
    from backend.db.extensions import db
    from backend.core.geometry import area_bbox
    from backend.core.geometry_raster import rasterize
    from backend.core.ingest import ingest_bytes
    from backend.ml.metrics import box_ap50
    from backend.ml.model_assist import box_area, box_assist, click_segment
    from backend.ml.synth_real import yolo_boxes
    from backend.db.models import Prediction
    from backend.jobs.prefill import prefill_images
    from backend.jobs.predictions import load_current

    wanted = set(names)
    photos = [p for p in labelled_photos(data) if p.name in wanted]
    ids, held = [], {}
    for photo in photos:
        result = ingest_bytes(photo.read_bytes(), photo.name, source="upload")
        image = result.image
        held[image.id] = (photo, yolo_boxes(photo.with_suffix(".txt"), image.width, image.height),
                           image.width, image.height)
        ids.append(image.id)
    db.session.commit()
    t = time.monotonic()
    prefill_images(ids, batch_size=8, refresh=refresh)
    prefill_seconds = time.monotonic() - t
    models = load_current()
    runner = models.segmenter
    predicted = {p.image_id: list(p.regions or []) for p in
                 db.session.query(Prediction).filter_by(segmenter_id=models.segmenter_id)}
    db.session.commit()  # no transaction open during the slow part
    truth, found, inside, total_area, n_regions = {}, {}, 0, 0, 0
    assist = {"model": [], "classical": []}
    clicks = []
    for image_id in ids:
        photo, boxes, width, height = held[image_id]
        regions = predicted.get(image_id, [])
        n_regions += len(regions)
        truth[image_id] = boxes
        found[image_id] = [(area_bbox(region["geometry"])[1], _score(region)) for region in regions]
        if regions:
            pmask = rasterize([r["geometry"] for r in regions], width, height) > 0
            bmask = np.zeros((height, width), bool)
            for x0, y0, x1, y1 in boxes:
                bmask[max(0, int(y0)):int(np.ceil(y1)), max(0, int(x0)):int(np.ceil(x1))] = True
            inside += int((pmask & bmask).sum())
            total_area += int(pmask.sum())
        from PIL import Image

        rgb = np.asarray(Image.open(photo).convert("RGB"))
        if rgb.shape[:2] != (height, width):  # (EXIF-rotated originals: the stored size is upright)
            continue
        for box in boxes[:boxes_per_photo]:
            for name in ("model", "classical"):
                t = time.perf_counter()
                try:  # as the API answers (model_assist.box_assist), with and without the model
                    mask, answered = box_assist(rgb, box, runner if name == "model" else None)
                except ValueError:
                    mask, answered = np.zeros((height, width), bool), "classical"
                used_model = answered == "model"
                ms = (time.perf_counter() - t) * 1000
                mb = _mask_box(mask)
                inner = box_area(mask.shape, box)
                area = int(mask.sum())
                assist[name].append({"tightness": _box_iou(mb, box) if mb else 0.0, "empty": mb is None, "ms": ms,
                                     "outside": int((mask & ~inner).sum()), "area": area, "model": used_model})
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            t = time.perf_counter()
            click_segment(rgb, [[min(cx, width - 1), min(cy, height - 1)]], [], runner)
            clicks.append((time.perf_counter() - t) * 1000)
    ap50, recall50 = box_ap50(truth, found)
    summary = {}
    for name, rows in assist.items():
        tight = [r["tightness"] for r in rows]
        summary[name] = {
            "boxes": len(rows), "median_tightness": float(np.median(tight)) if tight else 0.0,
            "share_ge_50": float(np.mean([v >= 0.5 for v in tight])) if tight else 0.0,
            "outside_share": sum(r["outside"] for r in rows) / max(1, sum(r["area"] for r in rows)),
            "empty": float(np.mean([r["empty"] for r in rows])) if rows else 0.0,
            "ms_median": float(np.median([r["ms"] for r in rows])) if rows else 0.0,
        }
        if name == "model":
            summary[name]["model_answered"] = float(np.mean([r["model"] for r in rows])) if rows else 0.0
    return {
        "prefill": {"ap50": ap50, "recall50": recall50, "area_inside": inside / total_area if total_area else 0.0,
                    "regions": n_regions, "gt_boxes": sum(len(b) for b in truth.values()), "seconds": prefill_seconds},
        "assist": summary,
        "click": {"n": len(clicks), "ms_median": float(np.median(clicks)) if clicks else 0.0,
                  "ms_p95": float(np.percentile(clicks, 95)) if clicks else 0.0},
    }


def _score(region: dict) -> float:
    """A pre-filled region's detection score (prefill.region_score; older predictions: its mask confidence)."""
    return float(region.get("score") or region.get("mask_confidence") or region.get("confidence") or 0.5)


def procedural_holdout(n: int, seed: int) -> dict:
    """Segmenter IoU and style accuracy of the promoted models on held-out procedural images (bench_learning's)."""
    import torch

    from backend.ml.crops import crop_box
    from backend.ml.metrics import MaskCounts, classification_report
    from backend.ml.synth import generate_image
    from backend.jobs.predictions import load_current

    models = load_current()
    seg, cls = models.segmenter, models.classifier
    counts = MaskCounts()
    crops, y_true = [], []
    index = {c: i for i, c in enumerate(cls.classes)} if cls else {}
    margin = float(cls.sidecar.training.get("crop_margin", 0.1)) if cls else 0.1
    for k in range(n):
        sample = generate_image(10_000_000 + seed * 100_000 + k)
        with torch.inference_mode():
            probs, _ = seg.predict([sample.image])
        counts.add(probs[0] >= seg.threshold, sample.mask > 0)
        for tattoo in sample.tattoos:
            if tattoo.style in index:
                crops.append(crop_box(sample.image, tattoo.bbox, margin))
                y_true.append(index[tattoo.style])
    accuracy = None
    if cls is not None and crops:
        accuracy = classification_report(y_true, cls.predict(crops).argmax(axis=1), cls.classes)["accuracy"]
    return {**counts.summary(), "style_accuracy": accuracy or 0.0, "images": n}


if __name__ == "__main__":
    main()
