"""Active learning on procedural tattoos: how many labels does each queue strategy need to reach the test IoU
that random sampling reaches with its whole budget?

    python benchmarks/bench_active_learning.py --smoke        # 2 rounds, 1 seed, small pool: a minute or two
    python benchmarks/bench_active_learning.py                # the full run: tens of minutes on 2 CPU cores
    python benchmarks/bench_active_learning.py --out results.json --rounds 6 --seeds 3

The loop (issue 6): a pool of procedural images (backend/ml/synth.py) and a fixed test set; every strategy starts
from the same 50 random labels (per seed) and adds 50 per round; after each round a small segmenter (the ML
factory's Unet-resnet18 with a light decoder, random init, a fixed number of steps) is retrained from scratch and
its test IoU measured. Strategies, exactly as the queue ranks images:
- random;
- uncertainty: the highest backend.ml.uncertainty score (segmentation_uncertainty of the model's probability map);
- diversity: k-center greedy (backend.ml.uncertainty.k_center_greedy) over the encoder's pooled embeddings among
  the 4 × batch most uncertain, seeded with the labelled images' embeddings (what the scores job does).
Reported: each strategy's learning curve (mean over seeds) and the labels it needs to reach random's final mean
test IoU (linear interpolation between rounds), as a share of random's labels. The goal: ≤ 50 %.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.ml.device import configure_cpu_threads  # noqa: E402
from backend.ml.nets import IMAGENET_MEAN, IMAGENET_STD, build_segmenter  # noqa: E402
from backend.ml.synth import generate_image  # noqa: E402
from backend.ml.uncertainty import k_center_greedy, segmentation_uncertainty  # noqa: E402

STRATEGIES = ("random", "uncertainty", "diversity")
DECODER = (64, 32, 16, 16, 8)
MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def make_data(n: int, first_seed: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """n procedural photos (size×size RGB uint8) and their exact masks (bool)."""
    images = np.empty((n, size, size, 3), np.uint8)
    masks = np.empty((n, size, size), bool)
    for i in range(n):
        sample = generate_image(first_seed + i, width=size, height=size)
        images[i], masks[i] = sample.image, sample.mask > 0
    return images, masks


def to_tensor(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    return (x - MEAN) / STD


def fresh_training(seed: int, lr: float, steps: int):
    """A fresh small Unet (resnet18, light decoder) in training mode, its AdamW + one-cycle schedule over `steps`,
    and the numpy generator of the run, all from `seed`."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model, _notes = build_segmenter("Unet", "resnet18", None, DECODER)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(1, steps), pct_start=0.15)
    return model, opt, sched, rng


def train_step(model, opt, sched, x: torch.Tensor, y: torch.Tensor, rng) -> torch.Tensor:
    """One step on a batch, randomly flipped: BCE + soft Dice (as backend.ml.train); returns the loss."""
    if rng.random() < 0.5:
        x, y = x.flip(3), y.flip(3)
    if rng.random() < 0.5:
        x, y = x.flip(2), y.flip(2)
    logits = model(x)
    prob = torch.sigmoid(logits)
    dice = 1 - (2 * (prob * y).sum((1, 2, 3)) + 1) / (prob.sum((1, 2, 3)) + y.sum((1, 2, 3)) + 1)
    loss = F.binary_cross_entropy_with_logits(logits, y) + dice.mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    return loss


def train_segmenter(images: np.ndarray, masks: np.ndarray, steps: int, seed: int, batch: int = 16,
                    lr: float = 2e-3) -> torch.nn.Module:
    """A fresh small Unet trained for `steps` steps (BCE + Dice, flips) on the given labelled images."""
    model, opt, sched, rng = fresh_training(seed, lr, steps)
    x_all, y_all = to_tensor(images), torch.from_numpy(masks).float().unsqueeze(1)
    for _ in range(steps):
        idx = rng.integers(0, len(images), size=min(batch, len(images)))
        x, y = x_all[idx], y_all[idx]
        train_step(model, opt, sched, x, y, rng)
    model.eval()
    return model


@torch.inference_mode()
def predict(model: torch.nn.Module, images: np.ndarray, batch: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Tattoo probabilities (N×H×W) and L2-normalised pooled encoder embeddings (N×D)."""
    probs, embs = [], []
    for start in range(0, len(images), batch):
        x = to_tensor(images[start:start + batch])
        features = model.encoder(x)
        logits = model.segmentation_head(model.decoder(features))
        probs.append(torch.sigmoid(logits)[:, 0].numpy())
        embs.append(F.normalize(features[-1].mean(dim=(2, 3)), dim=1).numpy())
    return np.concatenate(probs), np.concatenate(embs)


def dataset_iou(probs: np.ndarray, masks: np.ndarray) -> float:
    pred = probs >= 0.5
    union = np.logical_or(pred, masks).sum()
    return float(np.logical_and(pred, masks).sum() / union) if union else 1.0


def select(strategy: str, model, pool_images, labelled: list[int], unlabelled: list[int], k: int,
           rng: np.random.Generator) -> list[int]:
    if strategy == "random":
        return [int(i) for i in rng.choice(unlabelled, size=k, replace=False)]
    probs, embs = predict(model, pool_images[unlabelled])
    scores = np.array([segmentation_uncertainty(p)["score"] for p in probs])
    order = np.argsort(-scores, kind="stable")
    if strategy == "uncertainty":
        return [unlabelled[i] for i in order[:k]]
    top = order[:4 * k]
    _p, labelled_embs = predict(model, pool_images[labelled])
    matrix = np.concatenate([embs[top], labelled_embs])
    picks = k_center_greedy(matrix, k, already_selected=range(len(top), len(matrix)))
    return [unlabelled[top[i]] for i in picks]


def run_strategy(strategy: str, seed: int, pool, test, start: int, step: int, rounds: int, steps: int,
                 log) -> list[tuple[int, float]]:
    pool_images, pool_masks = pool
    test_images, test_masks = test
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pool_images))
    labelled = [int(i) for i in order[:start]]  # the same start set for every strategy of this seed
    curve = []
    for r in range(rounds + 1):
        t0 = time.perf_counter()
        model = train_segmenter(pool_images[labelled], pool_masks[labelled], steps, seed=seed * 100 + r)
        iou = dataset_iou(predict(model, test_images)[0], test_masks)
        curve.append((len(labelled), iou))
        log(f"  seed {seed} {strategy:<11} labels {len(labelled):>4}  test IoU {iou:.4f}  "
            f"({time.perf_counter() - t0:.0f} s)")
        if r == rounds:
            break
        chosen = set(labelled)
        unlabelled = [i for i in range(len(pool_images)) if i not in chosen]
        labelled += select(strategy, model, pool_images, labelled, unlabelled, step,
                           np.random.default_rng(seed * 1000 + r))
    return curve


def labels_to_reach(curve: list[tuple[int, float]], target: float) -> float | None:
    """Labels at which a (labels, IoU) curve first reaches `target`, interpolating linearly; None if never."""
    for (n0, v0), (n1, v1) in zip([(0, -1.0)] + curve[:-1], curve):
        if v1 >= target:
            if v0 < 0 or v1 == v0:
                return float(n1)
            return n0 + (target - v0) / (v1 - v0) * (n1 - n0)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="2 rounds, 1 seed, small pool and few steps")
    parser.add_argument("--pool", type=int, default=2000)
    parser.add_argument("--test", type=int, default=300)
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--start", type=int, default=50)
    parser.add_argument("--step", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200, help="training steps per round (batch 16)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: on a shared "
                        "2-core machine, 2 OpenMP threads competing with other processes ran 20× slower per step)")
    parser.add_argument("--out", help="write the curves and the summary as JSON here")
    args = parser.parse_args()
    if args.smoke:
        args.pool, args.test, args.rounds, args.seeds, args.steps = 300, 60, 2, 1, 40
    strategies = [s for s in args.strategies.split(",") if s]
    threads = configure_cpu_threads(args.threads)
    log = lambda message: print(message, flush=True)  # noqa: E731
    t_start = time.perf_counter()
    pool = make_data(args.pool, 1_000_000, args.size)
    test = make_data(args.test, 2_000_000, args.size)
    log(f"pool {args.pool}, test {args.test}, {args.size}×{args.size} px, start {args.start} +{args.step} × "
        f"{args.rounds} rounds, {args.seeds} seed(s), {args.steps} steps/round, {threads} torch threads "
        f"(data made in {time.perf_counter() - t_start:.0f} s)")
    curves: dict[str, list[list[tuple[int, float]]]] = {s: [] for s in strategies}
    for seed in range(args.seeds):
        for strategy in strategies:
            curves[strategy].append(run_strategy(strategy, seed, pool, test, args.start, args.step, args.rounds,
                                                 args.steps, log))
    mean = {s: [(c[0][r][0], float(np.mean([cc[r][1] for cc in c]))) for r in range(args.rounds + 1)]
            for s, c in curves.items()}
    summary = {}
    if "random" in mean:
        labels_random, target = mean["random"][-1]
        for s in strategies:
            need = labels_to_reach(mean[s], target)
            summary[s] = {"labels_to_reach_random_final": need,
                          "share_of_random_labels": round(need / labels_random, 3) if need is not None else None}
    log("\nlabels  " + "  ".join(f"{s:>11}" for s in strategies))
    for r in range(args.rounds + 1):
        log(f"{mean[strategies[0]][r][0]:>6}  " + "  ".join(f"{mean[s][r][1]:>11.4f}" for s in strategies))
    if summary:
        log(f"\nrandom's final mean test IoU {target:.4f} with {labels_random} labels; labels needed to reach it:")
        for s, row in summary.items():
            need = row["labels_to_reach_random_final"]
            log(f"  {s:<11} " + (f"{need:6.0f} ({row['share_of_random_labels']:.0%} of random's)" if need is not None
                                else f"not reached within {mean[s][-1][0]} labels"))
    log(f"total time {time.perf_counter() - t_start:.0f} s")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "curves": curves, "mean": mean,
                                              "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
