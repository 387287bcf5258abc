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
4. Batches: the pool path (`prefill_images`: decode, forward, regions traced and stored in this process; on CUDA
   the previous batch is stored while the device runs the next) against the model-only rate of the same batch
   size, as a share of it.

5. `--stub-forward` (instead of 3 and 4): the parent's own cost of the pool path, without the model. The
   segmenter's forward is replaced by a stand-in (StubForward) that copies the canvases as an upload would and
   hands back probability maps of procedural tattoo masks (so the tracing does real work) and fixed
   embeddings; `--stub-classifier` adds a classifier whose crops are cut and letterboxed as the real one's but
   whose "forward" is a constant. Reported per setting: the parent process's CPU ms per image
   (time.process_time: all its threads), split by stage (main thread's time.thread_time), and the wall rate. On a
   GPU the parent drives the model, so its CPU ms per image bounds the pipeline: 50 % of a 312 img/s model-only
   rate leaves 6.4 ms an image for everything else.

    python benchmarks/bench_prefill.py                          # CPU, defaults
    python benchmarks/bench_prefill.py --device cuda --batch-size 64 --images 512
    python benchmarks/bench_prefill.py --stub-forward --images 256 --batch-size 64 --rounds 3
                                                                # the process's cost, model stubbed
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


def untrained_model(workdir: Path, input_size: int) -> Path:
    """The default segmenter with random weights (for --stub-forward, where its forward never runs)."""
    from backend.ml.nets import IMAGENET_MEAN, IMAGENET_STD, build_segmenter
    from backend.ml.weights import save_bundle

    model, notes = build_segmenter()
    sidecar = {"kind": "segmenter", "architecture": notes["architecture"], "classes": ["tattoo"],
               "input_size": input_size, "normalization": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
               "training": {"threshold": 0.5}}
    weights, _ = save_bundle(model, sidecar, workdir / "untrained", "segmenter-untrained")
    return weights


class StageClock:
    """CPU seconds of the calling thread (time.thread_time) spent in named stages, and how often each ran."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def reset(self) -> None:
        self.seconds = {}

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def wrap(self, stage: str, fn):
        def timed(*args, **kwargs):
            t = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(stage, time.thread_time() - t)

        return timed


class _StubPending:
    def __init__(self, maps, pick, emb, clock):
        self._maps, self._pick, self._emb, self.clock = maps, pick, emb, clock

    def result(self):
        t = time.thread_time()
        prob = np.take(self._maps, self._pick, axis=0)  # a copy, as from the device
        self.clock.add("forward (stub: copies only)", time.thread_time() - t)
        return prob, self._emb


class StubForward:
    """Stands in for SegmenterRunner.start_forward with the model's cost taken out, the parent's kept: the canvases
    are copied into a staging buffer (a CUDA upload's copy into pinned memory), and the "outputs" are copied out of
    precomputed arrays (the copy back from the device): probability maps of procedural tattoo masks at the canvas
    size, blurred as a model's edges are (one of `variants`, picked by the canvas's content, so a given image
    always gets the same map), and unit embeddings of 512 values (resnet18's)."""

    def __init__(self, size: int, clock: StageClock, variants: int = 16):
        import cv2

        from backend.ml.synth import generate_image

        maps, self.clock = [], clock
        for seed in range(variants):
            mask = generate_image(900 + seed, width=size, height=size).mask > 0
            maps.append(cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 1.5) * 0.96 + 0.02)
        self.maps = np.stack(maps).astype(np.float32)
        emb = np.random.default_rng(0).normal(size=(variants, 512)).astype(np.float32)
        self.emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        self.staging = None
        self.batches = 0

    def __call__(self, canvases, embed: bool = False) -> _StubPending:
        t = time.thread_time()
        canvases = np.asarray(canvases)
        if self.staging is None or self.staging.size < canvases.size:
            self.staging = np.empty(canvases.size, np.uint8)
        np.copyto(self.staging[:canvases.size].reshape(canvases.shape), canvases)
        pick = [int(c[::37, ::37].sum()) % len(self.maps) for c in canvases]
        self.batches += 1
        self.clock.add("forward (stub: copies only)", time.thread_time() - t)
        return _StubPending(self.maps, pick, self.emb[pick] if embed else None, self.clock)


class StubClassifier:
    """A classifier without a network: the crops are letterboxed and stacked as ClassifierRunner.predict does on
    the host; the probabilities are a fixed function of each crop's mean colour."""

    classes = ["blackwork", "dotwork", "japanese", "traditional", "tribal", "watercolor"]
    input_size = 224

    def predict(self, crops):
        from backend.ml.transforms import letterbox

        if not crops:
            return np.zeros((0, len(self.classes)), np.float32)
        canvases = np.stack([letterbox(c, self.input_size)[0] for c in crops])
        logits = np.stack([np.roll(np.arange(len(self.classes), dtype=np.float32), int(c.mean()) % 6)
                           for c in canvases])
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def stub_run(args, ids: list[int], device, source: str) -> None:
    """5. in the module docstring: the pool path's parent process with the model stubbed."""
    import dataclasses
    import gc
    import os
    import signal
    import subprocess
    import threading

    import torch
    from sqlalchemy import delete

    import backend.jobs.prefill as tp
    from backend.db.extensions import db
    from backend.db.models import Prediction

    clock = StageClock()
    real_load, real_batches = tp.load_current, tp._batches

    def load_stubbed(device=None):
        models = real_load(device)
        if not isinstance(models.segmenter.__dict__.get("start_forward"), StubForward):
            models.segmenter.start_forward = StubForward(models.segmenter.input_size, clock)
        if args.stub_classifier:
            models = dataclasses.replace(models, classifier=StubClassifier())
        return models

    def timed_batches(*args):
        it = real_batches(*args)
        while True:
            t = time.thread_time()
            try:
                batch = next(it)
            except StopIteration:
                return
            finally:
                clock.add("decode + letterbox", time.thread_time() - t)
            yield batch

    stages = {"_trace_batch": "trace regions", "_finish_batch": "classify + finish",
              "_store_predictions": "store (DB)"}
    saved = {name: getattr(tp, name) for name in stages}
    tp.load_current, tp._batches = load_stubbed, timed_batches
    for name, fn in saved.items():
        setattr(tp, name, clock.wrap(stages[name], fn))
    gc_started: dict[int, float] = {}
    gc_seconds: dict[int, float] = {}

    def gc_clock(phase, info):  # CPU seconds of the collections, by the thread that ran them
        tid = threading.get_ident()
        if phase == "start":
            gc_started[tid] = time.thread_time()
        elif tid in gc_started:
            gc_seconds[tid] = gc_seconds.get(tid, 0.0) + time.thread_time() - gc_started.pop(tid)

    gc.callbacks.append(gc_clock)
    b = args.batch_size
    runs = []
    spy = None
    try:
        tp.prefill_images(ids[:b], batch_size=b, refresh=True, device=device)  # warm-up
        if args.py_spy:
            exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
            spy = subprocess.Popen([exe, "record", "--pid", str(os.getpid()), "--rate", "250", "--format",
                                    "raw" if args.py_spy.suffix in (".txt", ".folded") else "speedscope",
                                    "--output", str(args.py_spy)], stdout=subprocess.DEVNULL)
            time.sleep(1.0)
        for _ in range(args.rounds):
            db.session.execute(delete(Prediction))  # every run inserts, as a first pre-fill does
            db.session.commit()
            clock.reset()
            gc_seconds.clear()
            wall, cpu, main = time.perf_counter(), time.process_time(), time.thread_time()
            stats = tp.prefill_images(ids, batch_size=b, device=device)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            main = time.thread_time() - main
            n = max(1, stats["done"])
            split = {stage: round(1000 * s / n, 3) for stage, s in sorted(clock.seconds.items())}
            split["rest of the main thread"] = round(1000 * (main - sum(clock.seconds.values())) / n, 3)
            split["other threads"] = round(1000 * (cpu - main) / n, 3)
            split["(garbage collection, any thread, within the above)"] = round(
                1000 * sum(gc_seconds.values()) / n, 3)
            runs.append({"done": stats["done"], "failed": stats["failed"],
                         "parent_cpu_ms_per_image": round(1000 * cpu / n, 3),
                         "img_per_s": round(stats["done"] / wall, 2), "split_ms_per_image": split})
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        gc.callbacks.remove(gc_clock)
        tp.load_current, tp._batches = real_load, real_batches
        for name, fn in saved.items():
            setattr(tp, name, fn)
    print(f"pre-fill pool path, MODEL STUBBED (forward{' and classifier' if args.stub_classifier else ''} "
          f"replaced by copies of precomputed maps): {len(ids)} {source}, batch {b}, input {args.input_size}, "
          f"device {device}, {torch.get_num_threads()} torch threads")
    for run in runs:
        print(f"  CPU {run['parent_cpu_ms_per_image']:.2f} ms/image, {run['img_per_s']} img/s wall, "
              f"{run['failed']} failed; " + ", ".join(f"{k} {v:.2f}" for k, v in run["split_ms_per_image"].items()))
    mine = [r["parent_cpu_ms_per_image"] for r in runs]
    print(f"  CPU ms/image median {statistics.median(mine):.2f} (min {min(mine):.2f}, max {max(mine):.2f}, "
          f"{len(mine)} runs)")
    if args.json:
        print(json.dumps({"stub_forward": True, "stub_classifier": args.stub_classifier, "images": len(ids),
                          "batch_size": b, "runs": runs}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--input-size", type=int, default=512)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=1, help="passes over the images for the single-image timing")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: usable CPUs)")
    parser.add_argument("--model", type=Path, default=None, help="a segmenter .safetensors (with its sidecar)")
    parser.add_argument("--train-size", type=int, default=192)
    parser.add_argument("--train-epochs", type=int, default=4)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "real-tattoos")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    parser.add_argument("--stub-forward", action="store_true",
                        help="measure the pool path's parent process with the model stubbed (see 5. above); skips "
                             "the model timings and the training")
    parser.add_argument("--stub-classifier", action="store_true",
                        help="with --stub-forward: a stub classifier too (real crops and letterboxing, no network)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="with --stub-forward: how many times the pool path runs")
    parser.add_argument("--py-spy", type=Path, default=None,
                        help="with --stub-forward: record the parent with py-spy (if installed) into this file: "
                             "collapsed stacks if it ends in .txt or .folded, else speedscope JSON")
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
    from backend.db.migrate import init_db
    from backend.db.extensions import db
    from backend.core.ingest import ingest_bytes
    from backend.ml.device import resolve_device
    from backend.ml.synth import generate_image
    from backend.ml.transforms import letterbox
    from backend.db.models import ModelVersion
    from backend.media.storage import BlobStore
    from backend.jobs.prefill import prefill_images
    from backend.jobs.predictions import decode_work_image, load_current, prefill_image

    t0 = time.monotonic()
    if args.stub_forward:
        weights, train_note = untrained_model(workdir, args.input_size), "none (forward stubbed)"
    else:
        weights = args.model or quick_model(workdir, args.train_size, args.train_epochs, args.input_size,
                                            args.threads)
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
        if args.stub_forward:
            return stub_run(args, ids, device, source)
        current = load_current(device)
        runner = current.segmenter
        store = BlobStore.from_config(app.config)
        from backend.db.models import Image as ImageRow

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
        prefill_images(ids[:b], batch_size=b, refresh=True, device=device)  # warm-up
        stats = prefill_images(ids[:n_batches * b], batch_size=b, refresh=True, device=device)
        pipeline_rate = stats["done"] / stats["seconds"]
        pipeline_failed = stats["failed"]

    m50, e50 = statistics.median(model_ms), statistics.median(e2e_ms)
    out = {
        "device": str(device), "threads": torch.get_num_threads(), "input_size": runner.input_size,
        "images": len(ids), "source": source, "weights": train_note,
        "model_ms_p50": round(m50, 1), "model_ms_p90": round(percentile(model_ms, 90), 1),
        "e2e_ms_p50": round(e50, 1), "e2e_ms_p90": round(percentile(e2e_ms, 90), 1),
        "overhead_p50": round(e50 / m50 - 1, 3),
        "batch_size": b, "model_img_per_s": round(model_rate, 2), "pipeline_img_per_s": round(pipeline_rate, 2),
        "pipeline_share_of_model": round(pipeline_rate / model_rate, 3), "pipeline_failed": pipeline_failed,
    }
    print(f"pre-fill on {out['device']} ({out['threads']} threads), input {out['input_size']}, "
          f"{out['images']} {source}; weights: {train_note}")
    print(f"  single image: model {out['model_ms_p50']} ms p50 ({out['model_ms_p90']} p90), end to end "
          f"{out['e2e_ms_p50']} ms p50 ({out['e2e_ms_p90']} p90): overhead {out['overhead_p50']:.0%}")
    print(f"  batch {b}: model {out['model_img_per_s']} img/s, pipeline {out['pipeline_img_per_s']} img/s "
          f"({out['pipeline_share_of_model']:.0%} of the model-only rate), {pipeline_failed} failed")
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
