#!/usr/bin/env python
"""Pre-fill speed, in one run: the model alone vs the whole path (file → decode → model → polygons → DB).

1. Model: the default segmenter (Unet, resnet18 encoder, light decoder) with weights from a quick procedural
   training (`--train-size`, a few epochs), or `--model` a trained .safetensors (e.g. the segmenter of
   `bench_learning.py --keep DIR`). The network is fully convolutional: it is registered with the letterbox side of
   `--input-size` (default 512, the default of `manage.py train`) whatever size it was trained at.
2. A throwaway workspace (SQLite) gets `--images` photos: the real tattoo photos of ../shared/data/real-tattoos
   (JPEG, 500-1080 px) when present, else procedural ones.
3. Single image, interleaved so both see the same machine load: model-only forward of the letterboxed image
   (SegmenterRunner.forward_canvases) and `prefill_image(id, refresh=True)` — the API's code: read the row, decode
   the stored file, letterbox, forward, probability back to the image, regions (OpenCV contours + shapely),
   uncertainty, Prediction row written. p50 / p90 and the overhead over the forward pass.
4. Batches: the pool path (`prefill_images`: DataLoader decode workers on CUDA, regions traced in
   `--trace-processes` worker processes) against the model-only rate of the same batch size, each setting as a
   share of it.

    python benchmarks/bench_prefill.py                          # CPU, defaults
    python benchmarks/bench_prefill.py --device cuda --batch-size 64 --images 512 --trace-processes 4,8,15
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def percentile(values, q):
    return float(np.percentile(values, q)) if values else float("nan")


def quick_model(workdir: Path, train_size: int, epochs: int, input_size: int, threads: int | None) -> Path:
    """Train the default architecture briefly on procedural data; save it with `input_size` as its letterbox."""
    from backend.ml.data import open_export
    from backend.ml.synth import write_export_folder
    from backend.ml.train import TrainOptions, train_model
    from backend.ml.weights import save_bundle

    export = workdir / "export"
    write_export_folder(export, 60, seed=7)
    with open_export(export) as data:
        result = train_model(data, TrainOptions(kind="segmenter", epochs=epochs, input_size=train_size,
                                                batch_size=8, device="cpu"))
    sidecar = dict(result.sidecar, input_size=input_size)
    sidecar["training"] = dict(sidecar["training"], trained_at_input_size=train_size)
    weights, _ = save_bundle(result.model, sidecar, workdir / "quick", "segmenter-quick")
    return weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--input-size", type=int, default=512)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=1, help="passes over the images for the single-image timing")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--trace-processes", default="",
                        help="comma-separated tracing process counts to run the pool path with, e.g. 0,1 or 4,8,15 "
                             "(0: traced in the pre-fill's own process) [prefill_images' default: up to 8 on CUDA, "
                             "none on the CPU]")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: usable CPUs)")
    parser.add_argument("--model", type=Path, default=None, help="a segmenter .safetensors (with its sidecar)")
    parser.add_argument("--train-size", type=int, default=192)
    parser.add_argument("--train-epochs", type=int, default=4)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "real-tattoos")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    parser.add_argument("--profile", type=Path, default=None,
                        help="write a cProfile of the end-to-end single-image calls here (pstats format)")
    args = parser.parse_args()

    import torch

    from backend.ml.device import configure_cpu_threads

    configure_cpu_threads(args.threads)
    workdir = Path(tempfile.mkdtemp(prefix="inklabel-bench-prefill-"))
    try:
        run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    del torch


def run(args, workdir: Path) -> None:
    import torch

    from backend import create_app
    from backend.db import init_db
    from backend.extensions import db
    from backend.ingest import ingest_bytes
    from backend.ml.device import resolve_device
    from backend.ml.synth import generate_image
    from backend.ml.transforms import letterbox
    from backend.models import ModelVersion
    from backend.storage import BlobStore
    from backend.tasks.prefill import decode_work_image, load_current, prefill_image, prefill_images

    t0 = time.monotonic()
    weights = args.model or quick_model(workdir, args.train_size, args.train_epochs, args.input_size, args.threads)
    train_note = "given" if args.model else f"quick procedural training, {time.monotonic() - t0:.0f}s"
    workspace = workdir / "workspace"
    app = create_app({"WORKSPACE": str(workspace), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workspace / 'db.sqlite'}",
                      "SECRET_KEY": "bench", "SCHEMA_CREATE_ALL": True, "DEVICE": args.device, "TESTING": True})
    init_db(app)
    models = workspace / "models"
    models.mkdir(parents=True, exist_ok=True)
    for suffix in (".safetensors", ".json"):
        shutil.copy(weights.with_suffix(suffix), models / f"seg{suffix}")
    import json as _json

    side = _json.loads((models / "seg.json").read_text())
    side["name"], side["weights_file"] = "seg", "seg.safetensors"
    if side["input_size"] != args.input_size:  # fully convolutional: the same weights run at the asked size
        train_note += f", trained at {side['input_size']} px, run at {args.input_size}"
        side["input_size"] = args.input_size
    (models / "seg.json").write_text(_json.dumps(side))

    with app.app_context():
        db.session.add(ModelVersion(kind="segmenter", name="seg", weights_path="seg.safetensors",
                                    architecture=side["architecture"], is_current=True))
        db.session.commit()
        files = sorted((args.data / "images").glob("*.jpg")) if (args.data / "images").is_dir() else []
        ids = []
        for i in range(args.images):
            if files:
                data, name = files[i % len(files)].read_bytes(), files[i % len(files)].name
                if i >= len(files):  # the same photo again would be a duplicate: shift one pixel row
                    from PIL import Image
                    import io

                    im = Image.open(io.BytesIO(data)).convert("RGB")
                    im = im.crop((0, i // len(files), im.width, im.height))
                    buf = io.BytesIO()
                    im.save(buf, "JPEG", quality=92)
                    data = buf.getvalue()
            else:
                data, name = generate_image(500 + i, width=800, height=600).jpeg_bytes(), f"synthetic-{i}.jpg"
            ids.append(ingest_bytes(data, name, source="bench").image.id)
        source = "real photos" if files else "procedural 800x600"

        device = resolve_device(args.device)
        current = load_current(device)
        runner = current.segmenter
        store = BlobStore.from_config(app.config)
        from backend.models import Image as ImageRow

        rows = {i: db.session.get(ImageRow, i) for i in ids}
        canvases = {}
        for i, row in rows.items():
            rgb, _ = decode_work_image(store, row.sha256, row.format, row.width, row.height, 1024)
            canvases[i] = letterbox(rgb, runner.input_size)[0][None]
        db.session.commit()

        def sync():
            if device.type == "cuda":
                torch.cuda.synchronize()

        # warm-up
        for i in ids[:3]:
            runner.forward_canvases(canvases[i], embed=True)
            prefill_image(i, refresh=True)
        model_ms, e2e_ms = [], []
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
        for _ in range(args.repeats):
            for i in ids:
                sync()
                t = time.perf_counter()
                runner.forward_canvases(canvases[i], embed=True)
                sync()
                model_ms.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                if profiler is not None:
                    profiler.enable()
                prefill_image(i, refresh=True)
                sync()
                if profiler is not None:
                    profiler.disable()
                e2e_ms.append((time.perf_counter() - t) * 1000)

        if profiler is not None:
            profiler.dump_stats(str(args.profile))
        # batches: the pool path against the model alone at the same batch size
        b = args.batch_size
        stack = np.concatenate([canvases[i] for i in ids])
        n_batches = max(1, len(ids) // b)
        runner.forward_canvases(stack[:b], embed=True)  # warm-up at this batch size (cuDNN picks its kernels)
        sync()
        t = time.perf_counter()
        for k in range(n_batches):
            runner.forward_canvases(stack[k * b:(k + 1) * b], embed=True)
        sync()
        model_rate = n_batches * b / (time.perf_counter() - t)
        # warm-up: a process's first pool run with tracing processes also starts their forkserver (~0.5 s)
        prefill_images(ids[:b], batch_size=b, refresh=True, device=device, trace_processes=1)
        pipeline = []
        for processes in [int(p) for p in args.trace_processes.split(",") if p.strip()] or [None]:
            stats = prefill_images(ids[:n_batches * b], batch_size=b, refresh=True, device=device,
                                   trace_processes=processes)
            rate = stats["done"] / stats["seconds"]
            pipeline.append({"trace_processes": "default" if processes is None else processes,
                             "img_per_s": round(rate, 2), "share_of_model": round(rate / model_rate, 3),
                             "failed": stats["failed"]})
        pipeline_rate = max(p["img_per_s"] for p in pipeline)

    m50, e50 = statistics.median(model_ms), statistics.median(e2e_ms)
    out = {
        "device": str(device), "threads": torch.get_num_threads(), "input_size": runner.input_size,
        "images": len(ids), "source": source, "weights": train_note,
        "model_ms_p50": round(m50, 1), "model_ms_p90": round(percentile(model_ms, 90), 1),
        "e2e_ms_p50": round(e50, 1), "e2e_ms_p90": round(percentile(e2e_ms, 90), 1),
        "overhead_p50": round(e50 / m50 - 1, 3),
        "batch_size": b, "model_img_per_s": round(model_rate, 2), "pipeline_img_per_s": round(pipeline_rate, 2),
        "pipeline_share_of_model": round(pipeline_rate / model_rate, 3), "pipeline_runs": pipeline,
    }
    print(f"pre-fill on {out['device']} ({out['threads']} threads), input {out['input_size']}, "
          f"{out['images']} {source}; weights: {train_note}")
    print(f"  single image: model {out['model_ms_p50']} ms p50 ({out['model_ms_p90']} p90), end to end "
          f"{out['e2e_ms_p50']} ms p50 ({out['e2e_ms_p90']} p90): overhead {out['overhead_p50']:.0%}")
    print(f"  batch {b}: model {out['model_img_per_s']} img/s, best pipeline {out['pipeline_img_per_s']} img/s "
          f"({out['pipeline_share_of_model']:.0%} of the model-only rate)")
    print("  pipeline by tracing processes: " + ", ".join(
        f"{p['trace_processes']}: {p['img_per_s']} img/s ({p['share_of_model']:.0%})" for p in pipeline))
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
