"""A simulated annotator: how many polygon edits does a pre-fill save compared with drawing from scratch?

    python benchmarks/bench_annotator.py --smoke      # a few images, a briefly trained model: a minute or two
    python benchmarks/bench_annotator.py --train-only --model-cache M.safetensors   # train and cache the model
    python benchmarks/bench_annotator.py --model-cache M.safetensors --out r.json   # 40 test images at 192 px

Ground truth: procedural photos (backend/ml/synth.py) with exact masks, traced to polygons (exact outlines, with
holes); the target is mask IoU ≥ 0.9 with those polygons' raster.
- From scratch the annotator clicks every vertex of the polygons (holes included) they draw. We let them draw the
  truth's outlines simplified as much as possible (Douglas-Peucker, tolerance searched from coarse to fine, the
  largest parts first) while still reaching the target: edits = clicks, the cheapest way there.
- With the pre-fill: the model's probability map goes through the tool's own pre-fill path
  (backend.ml.prefill.build_prefill: threshold, speck removal, grouping into tattoos, mask_geometry tracing and
  simplification, as POST /images/<id>/prefill does); each connected polygon part of its regions is an editable
  shape. The pre-fill never sees the truth. The annotator corrects it one edit at a time, greedily taking the edit
  with the best IoU gain per click: delete a part (1), move a vertex onto the true outline (1), insert a vertex on
  the true outline in an edge (1), delete a vertex that lies off the outline (1), draw a missed true part (its
  clicks as from scratch), paint a missed piece onto the drawing or erase a spurious piece from it (a lasso
  stroke: the clicks of that piece's outline, simplified as coarsely as still helps), or redraw a part (1 + the
  clicks of the true parts under it). Should correcting cost more than deleting everything and drawing from
  scratch, they do that instead.
Reported: edits per image both ways (mean, median, per style of the image's tattoos) and the ratio of the totals
scratch / pre-fill. The goal (issue 6): ≥ 3× fewer edits.

The segmenter is the ML factory's Unet-resnet18 (light decoder, random init) trained on random crops of
procedural images of the benchmark's size; being fully convolutional it then runs on the whole images. It is
trained for 4,000 steps by default: 450 left it finding fine lines only in pieces (pixel IoU 0.74 against 0.87).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import shapely
import torch
from shapely.geometry import MultiPolygon, Polygon
from shapely.ops import nearest_points

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_active_learning import DECODER, fresh_training, predict, to_tensor, train_step  # noqa: E402

from backend.core.geometry import mask_to_polygons, to_geojson, to_shape
from backend.core.geometry_raster import rasterize  # noqa: E402
from backend.ml.device import configure_cpu_threads  # noqa: E402
from backend.ml.nets import build_segmenter  # noqa: E402
from backend.ml.prefill import PrefillSettings, build_prefill  # noqa: E402
from backend.ml.synth import generate_image  # noqa: E402

TARGET = 0.9
TOLERANCES = (12.0, 8.0, 6.0, 4.0, 3.0, 2.0, 1.5, 1.0, 0.7, 0.5, 0.3, 0.0)  # 0: the exact outline


# --- data, model, pre-fill ----------------------------------------------------------------------------------------


def make_samples(n: int, first_seed: int, size: int) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    """n procedural photos (size×size RGB), their exact masks and the styles of their tattoos."""
    images = np.empty((n, size, size, 3), np.uint8)
    masks = np.empty((n, size, size), bool)
    styles = []
    for i in range(n):
        sample = generate_image(first_seed + i, width=size, height=size)
        images[i], masks[i] = sample.image, sample.mask > 0
        styles.append(sorted({t.style for t in sample.tattoos}))
    return images, masks, styles


def train_on_crops(images: np.ndarray, masks: np.ndarray, steps: int, crop: int, seed: int = 0, batch: int = 16,
                   lr: float = 2e-3, log=print, device: str = "cpu") -> torch.nn.Module:
    """A fresh Unet-resnet18 (the active-learning benchmark's light decoder) trained for `steps` steps (BCE + Dice,
    flips) on random crop×crop windows of the images: the ink at the benchmark's scale, at a fraction of the cost
    of whole images per step. On `device` (the model comes back on the CPU)."""
    model, opt, sched, rng = fresh_training(seed, lr, steps)
    model.to(device)
    size = images.shape[1]
    crop = min(crop, size)
    t0 = time.perf_counter()
    for step in range(steps):
        idx = rng.integers(0, len(images), size=batch)
        ys = rng.integers(0, size - crop + 1, size=batch)
        xs = rng.integers(0, size - crop + 1, size=batch)
        xb = np.stack([images[i, y:y + crop, x:x + crop] for i, y, x in zip(idx, ys, xs)])
        yb = np.stack([masks[i, y:y + crop, x:x + crop] for i, y, x in zip(idx, ys, xs)])
        x, y = to_tensor(xb).to(device), torch.from_numpy(yb).float().unsqueeze(1).to(device)
        loss = train_step(model, opt, sched, x, y, rng)
        if (step + 1) % 100 == 0:
            log(f"  step {step + 1}/{steps}: loss {loss.item():.3f} ({time.perf_counter() - t0:.0f} s)")
    model.to("cpu").eval()
    return model


def prefill_polygons(rgb: np.ndarray, prob: np.ndarray) -> list[Polygon]:
    """The tool's pre-fill regions (backend.ml.prefill.build_prefill with its default settings, no classifier),
    split into their connected polygon parts: what the editor shows, each part selectable."""
    h, w = prob.shape
    result = build_prefill(rgb, prob, None, PrefillSettings(), scale=1.0, image_size=(w, h))
    parts = []
    for region in result["regions"]:
        geom = to_shape(region["geometry"])
        parts += [g for g in getattr(geom, "geoms", [geom]) if isinstance(g, Polygon) and not g.is_empty]
    return parts


# --- rasterising and measuring ---------------------------------------------------------------------------------------


def raster(polys: list[Polygon], shape: tuple[int, int]) -> np.ndarray:
    """Union mask of polygons with holes, by backend.core.geometry_raster.rasterize (pixel-centre rule, as everywhere)."""
    geoms = [to_geojson(p) for p in polys if p is not None and not p.is_empty]
    return rasterize(geoms, shape[1], shape[0]) > 0


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def clicks(poly: Polygon) -> int:
    """Vertices an annotator clicks to draw a polygon: every ring's points, the closing point not repeated."""
    return sum(len(r.coords) - 1 for part in getattr(poly, "geoms", [poly])
               for r in [part.exterior] + list(part.interiors))


def polygons_of(mask: np.ndarray, tolerance: float = 0.0) -> list[Polygon]:
    return [to_shape(g) for g in mask_to_polygons(mask, simplify_tolerance=tolerance, min_area=1.0)]


def simplified(poly: Polygon, tolerance: float) -> Polygon | None:
    s = poly.simplify(tolerance, preserve_topology=False)
    if not s.is_valid:
        s = s.buffer(0)
    if s.is_empty or s.area < 1:
        return None
    if isinstance(s, MultiPolygon):
        s = max(s.geoms, key=lambda p: p.area)
    return s if isinstance(s, Polygon) else None


# --- from scratch ----------------------------------------------------------------------------------------------------


def scratch_cost(truth: list[Polygon], gt_mask: np.ndarray, base: np.ndarray | None = None,
                 target: float = TARGET) -> tuple[int, float]:
    """Fewest clicks to reach `target` IoU by drawing simplified truth outlines (largest parts first) on top of
    `base` (what is already drawn). Returns (clicks, IoU reached)."""
    shape = gt_mask.shape
    base = np.zeros(shape, bool) if base is None else base
    if iou(base, gt_mask) >= target:
        return 0, iou(base, gt_mask)
    order = sorted(truth, key=lambda p: -p.area)
    best: tuple[int, float] | None = None
    fallback = (0, iou(base, gt_mask))
    for tol in TOLERANCES:
        drawn, cost = base.copy(), 0
        for poly in order:
            s = simplified(poly, tol)
            if s is None:
                continue
            drawn |= raster([s], shape)
            cost += clicks(s)
            score = iou(drawn, gt_mask)
            if score >= target:
                if best is None or cost < best[0]:
                    best = (cost, score)
                break
            if best is not None and cost >= best[0]:
                break
        else:
            score = iou(drawn, gt_mask)
            if score > fallback[1]:
                fallback = (cost, score)
    return best if best is not None else fallback


# --- correcting a pre-fill -----------------------------------------------------------------------------------------


def _with_ring(poly: Polygon, ring_index: int, coords: np.ndarray) -> Polygon | None:
    rings = [np.asarray(poly.exterior.coords)[:-1]] + [np.asarray(r.coords)[:-1] for r in poly.interiors]
    rings[ring_index] = coords
    if len(rings[0]) < 3:
        return None
    holes = [r for r in rings[1:] if len(r) >= 3]
    out = Polygon(rings[0], holes)
    return out if out.is_valid else _as_polygon(out.buffer(0))


def _as_polygon(geom) -> Polygon | None:
    if geom is None or geom.is_empty:
        return None
    if isinstance(geom, MultiPolygon):
        geom = max(geom.geoms, key=lambda p: p.area)
    return geom if isinstance(geom, Polygon) else None


def cheapest_drawing(poly: Polygon, shape: tuple[int, int], target: float = TARGET) -> Polygon:
    """The coarsest simplification of one true part that still covers it with IoU ≥ target (what a careful
    annotator would click)."""
    part = raster([poly], shape)
    for tol in TOLERANCES:
        s = simplified(poly, tol)
        if s is not None and iou(raster([s], shape), part) >= target:
            return s
    return poly


PATCH_TOLERANCES = (6.0, 3.0, 1.5, 0.7, 0.0)  # how coarsely a lasso stroke may follow a missed / spurious piece
MIN_PATCH = 4  # pixels: smaller pieces are not worth a stroke
MAX_PATCHES = 8  # the largest pieces per kind the annotator considers at each step


def _fast_raster(poly: Polygon, shape: tuple[int, int]) -> np.ndarray:
    """raster([poly]) without the GeoJSON round trip (the same pixel-centre rule: backend.core.geometry's filler)."""
    from backend.core.geometry_raster import _fill_polygon

    out = np.zeros(shape, bool)
    _fill_polygon(out, [np.asarray(poly.exterior.coords)] + [np.asarray(r.coords) for r in poly.interiors])
    return out


def _pieces(mask: np.ndarray) -> list[Polygon]:
    """Outlines of the largest connected pieces of a mask (what a missed stroke or a spill looks like)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    order = sorted(range(1, n), key=lambda lab: -stats[lab, cv2.CC_STAT_AREA])
    out: list[Polygon] = []
    for lab in order[:MAX_PATCHES]:
        if stats[lab, cv2.CC_STAT_AREA] < MIN_PATCH:
            break
        out += polygons_of(labels == lab)
    return out


def _parts(geom) -> list[Polygon]:
    if geom is None or geom.is_empty:
        return []
    if not geom.is_valid:
        geom = geom.buffer(0)
    return [g for g in getattr(geom, "geoms", [geom]) if isinstance(g, Polygon) and g.area >= 0.5]


def correct_cost(pred: list[Polygon], truth: list[Polygon], gt_mask: np.ndarray, max_edits: int) -> tuple[int, float]:
    """Greedy correction of the pre-filled polygon parts toward the truth; (edits, IoU reached).

    Each step takes the edit with the best IoU gain per click (see the module docstring for the edits and their
    prices)."""
    shape = gt_mask.shape
    boundary = shapely.union_all([p.boundary for p in truth]) if truth else None
    drawings = [cheapest_drawing(p, shape) for p in truth]
    drawing_masks = [raster([d], shape) for d in drawings]
    part_masks = [raster([p], shape) for p in truth]
    regions = list(pred)
    masks = [_fast_raster(p, shape) for p in regions]
    edits = 0

    def union_except(skip: int = -1) -> np.ndarray:
        out = np.zeros(shape, bool)
        for j, m in enumerate(masks):
            if j != skip:
                out |= m
        return out

    current = iou(union_except(), gt_mask)
    while current < TARGET and edits < max_edits:
        best: tuple[float, int, str, object] | None = None  # (gain per click, clicks, kind, data)

        def offer(gain: float, cost: int, kind: str, data) -> None:
            nonlocal best
            if gain > 1e-9 and cost > 0 and (best is None or gain / cost > best[0]):
                best = (gain / cost, cost, kind, data)

        drawn = union_except()
        for k, region in enumerate(regions):
            others = union_except(k)
            offer(iou(others, gt_mask) - current, 1, "delete", k)
            under = [j for j, m in enumerate(part_masks) if (m & masks[k]).any()]
            if under:
                redrawn = others.copy()
                for j in under:
                    redrawn |= drawing_masks[j]
                offer(iou(redrawn, gt_mask) - current, 1 + sum(clicks(drawings[j]) for j in under), "redraw",
                      (k, under))
            if boundary is None:
                continue
            rings = [np.asarray(region.exterior.coords)[:-1]] + [np.asarray(r.coords)[:-1] for r in region.interiors]
            for ri, ring in enumerate(rings):
                n = len(ring)
                if n < 3:
                    continue
                off = shapely.distance(shapely.points(ring), boundary)
                mids = (ring + np.roll(ring, -1, axis=0)) / 2
                mid_off = shapely.distance(shapely.points(mids), boundary)
                for v in range(n):
                    candidates = []
                    if off[v] > 0.75:  # a vertex off the true outline: move it onto it, or delete it
                        snap = nearest_points(boundary, shapely.Point(ring[v]))[0]
                        moved = ring.copy()
                        moved[v] = (snap.x, snap.y)
                        candidates.append(moved)
                        if n > 3:
                            candidates.append(np.delete(ring, v, axis=0))
                    if mid_off[v] > 1.0:  # an edge that cuts across: a new vertex on the outline
                        snap = nearest_points(boundary, shapely.Point(mids[v]))[0]
                        candidates.append(np.insert(ring, v + 1, (snap.x, snap.y), axis=0))
                    for coords in candidates:
                        cand = _with_ring(region, ri, coords)
                        if cand is not None:
                            offer(iou(others | _fast_raster(cand, shape), gt_mask) - current, 1, "replace",
                                  (k, cand))
        for j, part in enumerate(part_masks):  # a true part nothing covers yet: draw it
            if (part & drawn).sum() <= 0.2 * part.sum():
                offer(iou(drawn | drawing_masks[j], gt_mask) - current, clicks(drawings[j]), "add", j)
        # paint a missed piece on, or erase a spill: a lasso stroke around it
        for kind, pieces, apply in (("paint", gt_mask & ~drawn, lambda stroke_mask: drawn | stroke_mask),
                                    ("erase", drawn & ~gt_mask, lambda stroke_mask: drawn & ~stroke_mask)):
            for piece in _pieces(pieces):
                seen = set()
                for tol in PATCH_TOLERANCES:
                    stroke = simplified(piece, tol)
                    if stroke is None or (key := clicks(stroke)) in seen:
                        continue
                    seen.add(key)
                    offer(iou(apply(_fast_raster(stroke, shape)), gt_mask) - current, clicks(stroke), kind, stroke)
        if best is None:
            break
        _ratio, cost, kind, data = best
        if kind == "delete":
            del regions[data], masks[data]
        elif kind == "replace":
            k, cand = data
            regions[k], masks[k] = cand, _fast_raster(cand, shape)
        elif kind == "add":
            regions.append(drawings[data])
            masks.append(drawing_masks[data])
        elif kind == "paint":
            regions.append(data)
            masks.append(_fast_raster(data, shape))
        elif kind == "erase":
            kept: list[Polygon] = []
            for region, m in zip(regions, masks):
                kept += _parts(region.difference(data)) if region.intersects(data) else [region]
            regions = kept
            masks = [_fast_raster(r, shape) for r in regions]
        else:  # redraw
            k, under = data
            del regions[k], masks[k]
            for j in under:
                regions.append(drawings[j])
                masks.append(drawing_masks[j])
        edits += cost
        current = iou(union_except(), gt_mask)
    return edits, current


def summarise(rows: list[dict], key: str) -> dict:
    values = [r[key] for r in rows]
    return {"mean": round(float(np.mean(values)), 2) if values else None,
            "median": float(np.median(values)) if values else None, "total": int(sum(values))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="6 images, a model trained for 80 steps")
    parser.add_argument("--images", type=int, default=40, help="test images")
    parser.add_argument("--train", type=int, default=600, help="procedural training images for the model")
    parser.add_argument("--steps", type=int, default=4000,
                        help="training steps (batch 16 of crop×crop windows); 4,000 took 22 min with --threads 2 "
                             "on 2 quiet CPU cores, 80 s on an H200 (--device cuda)")
    parser.add_argument("--crop", type=int, default=96, help="training window side in pixels")
    parser.add_argument("--size", type=int, default=192, help="image side in pixels (train and test)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: on a shared "
                        "2-core machine, 2 OpenMP threads competing with other processes ran 20× slower per step)")
    parser.add_argument("--out", help="write per-image results as JSON here")
    parser.add_argument("--model-cache", help="safetensors file: load the model from it if present, else train "
                        "and save it there (reruns skip the training)")
    parser.add_argument("--device", default="cpu", help="where to train the model (cpu, cuda); measuring runs on the "
                        "CPU")
    parser.add_argument("--train-only", action="store_true", help="train (or find) the cached model and stop")
    args = parser.parse_args()
    if args.smoke:
        args.images, args.train, args.steps = 6, 150, 80
    configure_cpu_threads(args.threads)
    t0 = time.perf_counter()
    loaded = bool(args.model_cache and Path(args.model_cache).exists())
    if loaded:
        from safetensors.torch import load_file

        model, _notes = build_segmenter("Unet", "resnet18", None, DECODER)
        model.load_state_dict(load_file(args.model_cache))
        model.eval()
        print(f"model loaded from {args.model_cache}", flush=True)
    else:
        train_x, train_y, _styles = make_samples(args.train, 3_000_000, args.size)
        print(f"training on {args.train} images at {args.size} px, {args.steps} steps of 16 × {args.crop} px crops",
              flush=True)
        model = train_on_crops(train_x, train_y, args.steps, args.crop, seed=0,
                               log=lambda m: print(m, flush=True), device=args.device)
        del train_x, train_y
        if args.model_cache:
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, args.model_cache)
        print(f"trained in {time.perf_counter() - t0:.0f} s", flush=True)
    if args.train_only:
        return
    t1 = time.perf_counter()
    test_x, test_y, test_styles = make_samples(args.images, 4_000_000, args.size)
    probs, _ = predict(model, test_x, batch=8)
    trained = f"cached in {args.model_cache}" if loaded else f"{args.train} images, {args.steps} steps"
    print(f"model: {trained}; test pixel IoU {iou(probs >= 0.5, test_y):.3f}",
          flush=True)
    rows = []
    for i in range(args.images):
        # The reference is the truth as polygons (its exact outlines rasterised): a polygon tool cannot beat that,
        # and hair-thin ink that no polygon can trace would otherwise make the target unreachable.
        truth = polygons_of(test_y[i])
        gt = raster(truth, test_y[i].shape)
        scratch, scratch_iou = scratch_cost(truth, gt)
        pred = prefill_polygons(test_x[i], probs[i])
        start_iou = iou(raster(pred, gt.shape), gt)
        fixed, fixed_iou = correct_cost(pred, truth, gt, max_edits=max(1, scratch))
        redraw = len(pred) + scratch
        if fixed_iou < TARGET or fixed > redraw:  # correcting did not get there, or cost more: start over
            fixed, fixed_iou, how = redraw, scratch_iou, "redrawn"
        else:
            how = "corrected"
        rows.append({"image": i, "styles": test_styles[i], "truth_parts": len(truth), "scratch_edits": scratch,
                     "scratch_iou": round(scratch_iou, 3), "prefill_parts": len(pred),
                     "prefill_iou": round(start_iou, 3), "prefill_edits": fixed, "final_iou": round(fixed_iou, 3),
                     "how": how})
        print(f"  image {i:>3} {'+'.join(test_styles[i]) or 'no tattoo':<28} truth parts {len(truth):>2}  scratch "
              f"{scratch:>4} clicks (IoU {scratch_iou:.3f}) | pre-fill IoU {start_iou:.3f} → {fixed_iou:.3f} with "
              f"{fixed:>3} edits ({how})", flush=True)
    scratch_s, prefill_s = summarise(rows, "scratch_edits"), summarise(rows, "prefill_edits")
    ratio = scratch_s["total"] / max(1, prefill_s["total"])
    print(f"\nedits per image (mean / median): from scratch {scratch_s['mean']:.1f} / {scratch_s['median']:.1f}, "
          f"with pre-fill {prefill_s['mean']:.1f} / {prefill_s['median']:.1f}; ratio of totals {ratio:.2f}× fewer "
          f"with pre-fill; {sum(r['prefill_edits'] == 0 for r in rows)} of {len(rows)} needed no edit, "
          f"{sum(r['how'] == 'redrawn' for r in rows)} redrawn; measuring {time.perf_counter() - t1:.0f} s, "
          f"total {time.perf_counter() - t0:.0f} s")
    per_style = {}
    for style in sorted({s for r in rows for s in r["styles"]}) + ["(no tattoo)"]:
        sel = [r for r in rows if (style in r["styles"]) or (style == "(no tattoo)" and not r["styles"])]
        if not sel:
            continue
        sc, pf = summarise(sel, "scratch_edits"), summarise(sel, "prefill_edits")
        per_style[style] = {"images": len(sel), "scratch": sc, "prefill": pf,
                            "ratio": round(sc["total"] / pf["total"], 2) if pf["total"] else None}
        print(f"  {style:<12} {len(sel):>3} images: scratch mean {sc['mean']:>6.1f} median {sc['median']:>5.1f} | "
              f"pre-fill mean {pf['mean']:>5.1f} median {pf['median']:>4.1f} | ratio "
              f"{(sc['total'] / pf['total']) if pf['total'] else float('inf'):.1f}×")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "scratch": scratch_s, "prefill": prefill_s,
                                              "ratio": round(ratio, 3), "per_style": per_style, "images": rows},
                                             indent=2))


if __name__ == "__main__":
    main()
