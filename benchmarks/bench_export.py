#!/usr/bin/env python
"""Export figures: COCO + masks time, the full export, and peak memory at 1,000 vs 10,000 images.

The workspace is generated cheaply and honestly labelled as such:
- N images of 1024 px on the long side (1024x768 landscape, 768x1024 portrait) with 3 polygons each (64-vertex
  blobs of radius 40-260 px; one in three images has a region with a hole), styles from the taxonomy (some
  untrainable, some none), 2 % flagged out of training and a near-duplicate planted every 50 images;
- rows are bulk-inserted (images, annotations, revisions at version 1) instead of going through the API;
- the pixels come from 8 distinct 1024 px JPEGs: each image's blob is a hard link to one of them under its own
  sha256 name, so the export reads, copies and crops real JPEG files, but only 8 distinct pictures.

Each export runs in a fresh subprocess (`run`), so its peak RSS (ru_maxrss) is the export's own: the larger of the
exporting process's and its largest render process's (exports of 500 images or more render in forked processes);
its CPU seconds include the render processes'.

    python benchmarks/bench_export.py                       # 1,000 and 10,000 images, SQLite
    python benchmarks/bench_export.py --sizes 2000 --keep   # one size, keep the workspace
    python benchmarks/bench_export.py --sizes 2000 --per-format --api --no-full
        # each format alone (images off, so the format's own cost shows), and a COCO-only export through the
        # HTTP API: POST /api/v1/exports until GET /api/v1/jobs/<id> says succeeded (the request included)
    git worktree add /tmp/base 56d9e25      # or any checkout of other code
    python benchmarks/bench_export.py --sizes 2000 --keep --compare /tmp/base --rounds 3 --no-coco-masks --no-full
        # A/B: the same COCO-only (and COCO + masks) export with the other checkout's code, interleaved
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STYLES = ["watercolor", "japanese", "tribal", "trash_polka", "fineline", "traditional", "realism", None]
MOTIFS = ["rose", "skull", "koi", "wave", "dragon"]
DISTINCT_PICTURES = 8


def make_app(workspace: Path):
    from backend import create_app
    from backend.db.extensions import db

    app = create_app({
        "TESTING": True,
        "WORKSPACE": str(workspace),
        "SECRET_KEY": "benchmark-secret-key-0123456789",
        "SCHEMA_CREATE_ALL": True,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workspace / 'inklabel.db'}",
    })
    with app.app_context():
        db.create_all()
    return app


def _blob(rng: random.Random, cx: float, cy: float, r: float, width: int, height: int, n: int = 64) -> list:
    phase = rng.random() * math.tau
    pts = []
    for k in range(n):
        angle = math.tau * k / n
        radius = r * (1 + 0.18 * math.sin(3 * angle + phase))
        x = min(max(cx + radius * math.cos(angle), 0.0), float(width))
        y = min(max(cy + radius * math.sin(angle), 0.0), float(height))
        pts.append([round(x, 2), round(y, 2)])
    return pts + [pts[0]]


def _document(rng: random.Random, width: int, height: int, with_hole: bool, flagged: bool) -> dict:
    regions = []
    for k in range(3):
        r = rng.uniform(40, 260)
        cx, cy = rng.uniform(r, width - r), rng.uniform(r, height - r)
        outer = _blob(rng, cx, cy, r, width, height)
        coords = [outer]
        if with_hole and k == 0:
            hole = _blob(rng, cx, cy, r * 0.35, width, height)[::-1]
            coords.append(hole)
        regions.append({"id": f"r{rng.getrandbits(64):016x}", "geometry": {"type": "Polygon", "coordinates": coords},
                        "style": rng.choice(STYLES), "motifs": rng.sample(MOTIFS, rng.randint(0, 2)),
                        "source": "human", "model_version": None, "confidence": None})
    return {"regions": regions, "tags": {"styles": [], "flags": ["bad_example"] if flagged else []}}


def _pictures(folder: Path) -> list[tuple[Path, int, int]]:
    import numpy as np
    from PIL import Image

    out = []
    for k in range(DISTINCT_PICTURES):
        rng = np.random.default_rng(k)
        width, height = (1024, 768) if k % 2 == 0 else (768, 1024)
        small = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
        base = np.asarray(small.resize((width, height), Image.Resampling.BICUBIC)).astype(np.int16)
        noisy = np.clip(base + rng.integers(-12, 13, base.shape), 0, 255).astype(np.uint8)
        path = folder / f"picture{k}.jpg"
        Image.fromarray(noisy).save(path, "JPEG", quality=88)
        out.append((path, width, height))
    return out


def populate(workspace: Path, n: int, seed: int = 0) -> dict:
    from sqlalchemy import insert

    from backend.db.extensions import db
    from backend.db.models import Annotation, AnnotationRevision, Image
    from backend.media.storage import BlobStore

    started = time.perf_counter()
    app = make_app(workspace)
    rng = random.Random(seed)
    pictures = _pictures(Path(tempfile.mkdtemp(dir=workspace)))
    store = BlobStore(workspace)
    with app.app_context():
        batch_images, batch_docs = [], []
        last_phash = None
        for i in range(1, n + 1):
            sha = hashlib.sha256(f"bench-{seed}-{i}".encode()).hexdigest()
            picture, width, height = pictures[i % DISTINCT_PICTURES]
            target = store.original_path(sha, "jpeg")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(picture, target)
            phash = f"{rng.getrandbits(64):016x}"
            if i % 50 == 0 and last_phash:  # a near-duplicate of the previous image (2 bits apart)
                phash = f"{int(last_phash, 16) ^ 0b101:016x}"
            last_phash = phash
            document = _document(rng, width, height, with_hole=i % 3 == 0, flagged=i % 50 == 7)
            batch_images.append({"id": i, "sha256": sha, "width": width, "height": height, "format": "jpeg",
                                 "size_bytes": picture.stat().st_size, "original_filename": f"img{i}.jpg",
                                 "source": "bench", "status": "accepted", "phash": phash,
                                 "flags": document["tags"]["flags"], "styles": []})
            batch_docs.append({"image_id": i, "version": 1, "document": document})
            if len(batch_images) == 1000 or i == n:
                db.session.execute(insert(Image), batch_images)
                db.session.execute(insert(Annotation), batch_docs)
                db.session.execute(insert(AnnotationRevision), batch_docs)
                db.session.commit()
                batch_images, batch_docs = [], []
    return {"images": n, "polygons": 3 * n, "seconds": round(time.perf_counter() - started, 1)}


def _cpu() -> float:
    """CPU seconds of this process's threads and of its finished children (large exports render in processes)."""
    return sum(u.ru_utime + u.ru_stime for u in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))


def _peak_rss_mb() -> float:
    """The larger of this process's peak RSS and its largest finished child's (a render process)."""
    return round(max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
                 / 1024, 1)


def run_export(workspace: Path, options: dict) -> dict:
    """One export in this process; returns seconds, zip size, CPU and peak RSS (render processes included)."""
    from backend.datasets.export import create_export

    app = make_app(workspace)
    with app.app_context():
        cpu_before = _cpu()
        started = time.perf_counter()
        export = create_export(options)
        seconds = time.perf_counter() - started
        cpu_after = _cpu()
        counts = export.manifest["counts"]
    zip_path = workspace / "exports" / export.path
    result = {
        "seconds": round(seconds, 2),
        "zip_mb": round(zip_path.stat().st_size / 1e6, 1),
        "files": counts["files"],
        "images": sum(counts["images"].values()),
        "regions": sum(counts["regions"].values()),
        "crops": sum(counts["crops"].values()) if counts["crops"] else 0,
        "cpu_seconds": round(cpu_after - cpu_before, 1),
        "peak_rss_mb": _peak_rss_mb(),
    }
    zip_path.unlink()
    return result


# The console polls a job every second; polling every 5 ms (as before) spent ~1.5 s of CPU on 2,000-image
# exports in the polls themselves (each a full authenticated request), competing with the job for the GIL.
POLL_SECONDS = 0.05


def run_api_export(workspace: Path, options: dict) -> dict:
    """A COCO-only export through the API in this process: the POST, the job and the polling until it is done."""
    from backend.web.auth import create_token, create_user

    app = make_app(workspace)
    with app.app_context():
        from backend.db.extensions import db
        from backend.db.models import User

        user = db.session.query(User).filter_by(username="bench-admin").one_or_none() or \
            create_user("bench-admin", "bench-password-0123456789", "admin")
        token = create_token(user, "bench")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    cpu_before = _cpu()
    started = time.perf_counter()
    resp = client.post("/api/v1/exports", json=options, headers=headers)
    assert resp.status_code == 202, resp.get_json()
    job_id = resp.get_json()["job_id"]
    while True:
        job = client.get(f"/api/v1/jobs/{job_id}", headers=headers).get_json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(POLL_SECONDS)
    seconds = time.perf_counter() - started
    assert job["status"] == "succeeded", job
    return {"seconds": round(seconds, 2), "cpu_seconds": round(_cpu() - cpu_before, 1), "zip_mb": None, "files": None,
            "images": None, "regions": None, "crops": 0,
            "peak_rss_mb": _peak_rss_mb()}


def _child(workspace: Path, options: dict, mode: str = "run", code: Path = ROOT) -> dict:
    """One export in a fresh process, with the code of the checkout `code` (its own copy of this script)."""
    script = code / "benchmarks" / Path(__file__).name
    out = subprocess.run([sys.executable, str(script), mode, str(workspace), json.dumps(options)],
                         check=True, capture_output=True, text=True, cwd=code)
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(workspace: Path, n: int, other: Path, rounds: int) -> list:
    """COCO-only and COCO + masks, this checkout's code against `other`'s, interleaved `rounds` times."""
    rows = []
    for name, options in (("coco only", COCO_ONLY), ("coco + masks", COCO_MASKS)):
        runs: dict = {"this": [], "other": []}
        for _ in range(rounds):
            for label, code in (("other", other), ("this", ROOT)):
                runs[label].append(_child(workspace, options, code=code))
                print(f"{name} {label} {n}: {runs[label][-1]}", file=sys.stderr)
        for label in ("other", "this"):
            median = sorted(runs[label], key=lambda r: r["cpu_seconds"])[rounds // 2]
            rows.append((f"{name}, {label} code ({other if label == 'other' else 'this checkout'}), median CPU",
                         n, median))
    return rows


COCO_MASKS = {"formats": ["coco", "masks"], "images": False}
COCO_ONLY = {"formats": ["coco"], "images": False}
FULL = {"formats": ["coco", "masks", "crops", "yolo", "labelme", "cvat", "labelstudio"], "images": True}
PER_FORMAT = ("coco", "masks", "crops", "yolo", "labelme", "cvat", "labelstudio")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated image counts")
    parser.add_argument("--no-full", action="store_true", help="skip the full export (images, crops, yolo, labelme)")
    parser.add_argument("--keep", action="store_true", help="keep the generated workspaces")
    parser.add_argument("--per-format", action="store_true", help="also time each format alone (images off)")
    parser.add_argument("--api", action="store_true", help="also time a COCO-only export through the HTTP API")
    parser.add_argument("--no-coco-masks", action="store_true", help="skip the COCO + masks export")
    parser.add_argument("--compare", type=Path, help="A/B against the code of this checkout (e.g. a git worktree)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds for --compare")
    args = parser.parse_args()
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        workspace = Path(tempfile.mkdtemp(prefix=f"inklabel-bench-export-{n}-"))
        try:
            made = populate(workspace, n)
            print(f"# {n} images, {made['polygons']} polygons generated in {made['seconds']} s", file=sys.stderr)
            if not args.no_coco_masks:
                coco = _child(workspace, COCO_MASKS)
                print(f"coco+masks {n}: {coco}", file=sys.stderr)
                rows.append(("coco + masks", n, coco))
            if args.api:
                api = _child(workspace, COCO_ONLY, "api")
                print(f"coco via API {n}: {api}", file=sys.stderr)
                rows.append(("coco only, through the API (POST to job done)", n, api))
            if args.compare:
                rows += compare(workspace, n, args.compare.resolve(), args.rounds)
            for fmt in PER_FORMAT if args.per_format else ():
                alone = _child(workspace, {"formats": [fmt], "images": False})
                print(f"{fmt} alone {n}: {alone}", file=sys.stderr)
                rows.append((f"{fmt} alone", n, alone))
            if not args.no_full:
                full = _child(workspace, FULL)
                print(f"full {n}: {full}", file=sys.stderr)
                rows.append(("all formats + images", n, full))
        finally:
            if not args.keep:
                shutil.rmtree(workspace, ignore_errors=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("| export | images | regions | wall s | CPU s | images/s | zip MB | files | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, n, r in rows:
        regions = f"{r['regions']:,}" if r["regions"] is not None else "-"
        files = f"{r['files']:,}" if r["files"] is not None else "-"
        print(f"| {name} | {n:,} | {regions} | {r['seconds']} | {r['cpu_seconds']} | "
              f"{n / r['seconds']:.0f} | {r['zip_mb'] or '-'} | {files} | {r['peak_rss_mb']} |")
    by = {(name, n): r for name, n, r in rows}
    sizes = sorted({n for _, n, _ in rows})
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        for name in ("coco + masks", "all formats + images"):
            if (name, small) in by and (name, large) in by:
                ratio = by[(name, large)]["peak_rss_mb"] / by[(name, small)]["peak_rss_mb"]
                print(f"\npeak RSS {name}: {large:,} vs {small:,} images = {ratio:.2f}x")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] in ("run", "api"):
        runner = run_export if sys.argv[1] == "run" else run_api_export
        print(json.dumps(runner(Path(sys.argv[2]), json.loads(sys.argv[3]))))
    else:
        main()
