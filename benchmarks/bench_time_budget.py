#!/usr/bin/env python
"""Training stopped by its time budget: the step-based one-cycle schedule (what training used before) against the
budgeted one (backend/ml/train.py BudgetSchedule), on the demo's setting.

The demo trains its segmenter with a time limit so that it is ready in about 3 minutes; on a busy machine the limit
stops it after a few of its 12 planned epochs. A step-based one-cycle stopped there is at its peak learning rate,
never annealed; the budgeted one anneals by the time the budget is spent. Both train the demo's segmenter
(192 px, batch 8, lr 3e-3, 12 epochs planned) on the same procedural export with the same seed and time limit,
and are measured on held-out procedural images (IoU at the model's threshold).

    python benchmarks/bench_time_budget.py                  # 30 s budget (about 4 of 12 epochs on 2 cores)
    python benchmarks/bench_time_budget.py --seconds 60 --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="the time budget of each training run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--images", type=int, default=120, help="procedural images in the export (the demo's 120)")
    parser.add_argument("--holdout", type=int, default=40)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    from backend.ml import train as training
    from backend.ml.data import open_export
    from backend.ml.device import configure_cpu_threads
    from backend.ml.synth import write_export_folder

    threads = configure_cpu_threads(args.threads)

    class StoppedStepSchedule(training.StepSchedule):
        """The schedule before: one-cycle by steps, the run stopped when the budget is spent."""

        def __init__(self, optimizer, lr, total_steps, time_limit):
            super().__init__(optimizer, lr, total_steps)
            self.started, self.time_limit = time.monotonic(), time_limit

        @property
        def out_of_time(self) -> bool:
            return time.monotonic() - self.started >= self.time_limit

    schedules = {"step one-cycle (before)": lambda opt, lr, steps, limit=None: StoppedStepSchedule(opt, lr, steps, limit),
                 "budgeted (now)": training._schedule}
    rows = []
    with tempfile.TemporaryDirectory(prefix="inklabel-bench-budget-") as tmp:
        write_export_folder(tmp, args.images, seed=0)
        for seed in args.seeds:
            for name, schedule in schedules.items():
                original = training._schedule
                training._schedule = schedule
                try:
                    with open_export(tmp) as data:
                        result = training.train_model(data, training.TrainOptions(
                            kind="segmenter", epochs=12, input_size=192, batch_size=8, lr=3e-3, device="cpu",
                            seed=seed, time_limit=args.seconds))
                finally:
                    training._schedule = original
                history = result.metrics["history"]
                row = {"schedule": name, "seed": seed, "epochs_run": len(history),
                       "train_seconds": history[-1]["seconds"], "val_iou_by_epoch": [h["val_iou"] for h in history],
                       "holdout_iou": holdout_iou(result, args.holdout, torch)}
                rows.append(row)
                print(f"{name:24s} seed {seed}: {row['epochs_run']} epochs in {row['train_seconds']:.0f}s, "
                      f"val IoU by epoch {row['val_iou_by_epoch']}, held-out procedural IoU {row['holdout_iou']:.3f}",
                      flush=True)
    for name in schedules:
        mine = [r["holdout_iou"] for r in rows if r["schedule"] == name]
        print(f"{name}: mean held-out IoU {sum(mine) / len(mine):.3f} over {len(mine)} run(s)")
    if args.json:
        print(json.dumps({"seconds": args.seconds, "threads": threads, "rows": rows}))


def holdout_iou(result, n: int, torch) -> float:
    from backend.ml.infer import SegmenterRunner
    from backend.ml.metrics import MaskCounts
    from backend.ml.synth import generate_image

    side = result.sidecar
    runner = SegmenterRunner(result.model.eval(), side["input_size"], side["normalization"]["mean"],
                             side["normalization"]["std"], torch.device("cpu"), side["training"].get("threshold", 0.5))
    counts = MaskCounts()
    for k in range(n):
        sample = generate_image(10_000_000 + k)
        with torch.inference_mode():
            (prob,), _ = runner.predict([sample.image])
        counts.add(prob >= runner.threshold, sample.mask > 0)
    return float(counts.summary()["iou"])


if __name__ == "__main__":
    main()
