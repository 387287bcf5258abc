#!/usr/bin/env python
"""Issue 18's hostile insider against `manage.py serve --prod` on 127.0.0.1, with honest annotators working through it.

8 honest clients each lease an image (POST /queue/next) and save a growing document in a loop; first alone
(baseline), then while attacker threads, logged in as ordinary annotators, send the worst inputs of the issue
over and over:
  brush       5,000-point stroke, radius 10,000, a client canvas of 10^6 x 10^6; and within the caps a 2,000-point
              random stroke with radius 1,000 on the stored 2,000 x 2,000 image
  zigzag      a PUT of one self-crossing 150-vertex polygon (2 KB) on the attacker's own image
  bombs       uploads of a 16-bit 10,000 x 10,000 PNG (194 KB), an RGBA 10,000 x 10,000 PNG, an RGBA 16,383 x 6,000
              PNG, and a 16-bit 8,900 x 8,900 PNG that fits the decode budget (so it is decoded), each changed by
              one byte per upload so it is decoded anew (--bomb-side scales them)
  polyglots   the five shapes of item 9
  writes      PUT/submit of an honest client's leased image, GET /queue/next
Reports the honest clients' save p50/p99 (baseline and under attack), the server's peak RSS (largest worker and
all processes), 5xx answers and dropped connections, and whether stored data is byte-identical after the refused
requests (the attacker's own document and every honest client's last acknowledged save; the originals on disk).

    python benchmarks/bench_attack.py --seconds 30 --baseline-seconds 15 --workers 4
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import struct
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.stack import Http, Stack, growing_document, markers_of, percentile  # noqa: E402


class FlatPng:
    """A PNG of zeros, width x height pixels decoded, a few hundred KB on disk; `salted(n)` changes its last row
    so every upload is new (no duplicate short-cut) without compressing the whole image again."""

    def __init__(self, width: int, height: int, bit_depth: int, color_type: int, bpp: int):
        self.width, self.bpp = width, bpp
        self.header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
        self.packer = zlib.compressobj(9)
        row = b"\0" * (1 + width * bpp)
        self.prefix = b"".join(self.packer.compress(row) for _ in range(height - 1))

    @staticmethod
    def _chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    def salted(self, salt: int) -> bytes:
        packer = self.packer.copy()
        data = self.prefix + packer.compress(b"\0" + bytes([salt % 256]) * (self.width * self.bpp)) + packer.flush()
        return (b"\x89PNG\r\n\x1a\n" + self._chunk(b"IHDR", self.header) + self._chunk(b"IDAT", data)
                + self._chunk(b"IEND", b""))


def zigzag(n: int = 150, side: float = 1000.0) -> dict:
    ring = [[(i * 37 % n) / n * side, (i * 53 % n) / n * side] for i in range(n)]
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.statuses: Counter = Counter()
        self.saves: dict[str, list[float]] = {"baseline": [], "attack": []}
        self.slowest: dict[str, float] = Counter()

    def note(self, what: str, reply) -> None:
        with self.lock:
            self.statuses[(what, reply.status)] += 1
            self.slowest[what] = max(self.slowest[what], reply.seconds)


def honest(stack: Stack, token: str, tally: Tally, phase: dict, stop: threading.Event, acked: dict,
           name: str) -> None:
    client = Http(stack.url, token)
    lease = client.post("/api/v1/queue/next?strategy=oldest")
    tally.note("honest lease", lease)
    image_id = lease.body["image_id"]
    meta = client.get(f"/api/v1/images/{image_id}").body
    version, step = 0, 0
    while not stop.is_set():
        step += 1
        document = growing_document(meta["width"], meta["height"], step % 12, f"{name}-{step}")
        reply = client.put(f"/api/v1/images/{image_id}/annotation", {"base_version": version, **document})
        tally.note("honest save", reply)
        if reply.status == 200:
            version = reply.body["version"]
            acked[image_id] = (version, markers_of(document))
            with tally.lock:
                tally.saves[phase["name"]].append(reply.seconds)
        if step % 10 == 0:
            tally.note("honest heartbeat", client.post("/api/v1/queue/heartbeat", {"image_id": image_id}))
        time.sleep(0.05)


def attacks(stack, token: str, big_image: int, own_image: int, victim: int, bomb_side: int) -> list:
    rng = random.Random(7)
    wild = [[rng.random() * 2000, rng.random() * 2000] for _ in range(5000)]
    from tests.support import hostile

    def upload(bomb: FlatPng):
        counter = {"n": 0}

        def run(client):
            counter["n"] += 1
            return client.upload([(bomb.salted(counter["n"]), f"bomb-{counter['n']}.png")])
        return run

    wide, short = max(1, int(bomb_side * 1.6383)), max(1, int(bomb_side * 0.6))
    fits = int(bomb_side * 0.89)  # 16-bit grey just under the default decode budget: decoded, in a slot
    return [
        ("brush 5000 pts r=10000 canvas 1e6", lambda c: c.post("/api/v1/geometry/union", {
            "stroke": {"type": "LineString", "coordinates": wild}, "radius": 10_000, "image_id": big_image,
            "width": 1_000_000, "height": 1_000_000})),
        ("brush 2000 pts r=1000", lambda c: c.post("/api/v1/geometry/union", {
            "stroke": {"type": "LineString", "coordinates": wild[:2000]}, "radius": 1000, "image_id": big_image})),
        ("zigzag 150 PUT", lambda c: c.put(f"/api/v1/images/{own_image}/annotation", {
            "base_version": 1, "regions": [{"id": "z", "geometry": zigzag()}], "tags": {"styles": [], "flags": []}})),
        ("zigzag 150 brush", lambda c: c.post("/api/v1/geometry/union", {
            "geometry": zigzag(), "stroke": {"type": "Point", "coordinates": [5, 5]}, "radius": 3,
            "image_id": big_image})),
        ("bomb 16-bit grey", upload(FlatPng(bomb_side, bomb_side, 16, 0, 2))),
        ("bomb RGBA", upload(FlatPng(bomb_side, bomb_side, 8, 6, 4))),
        ("bomb RGBA wide", upload(FlatPng(wide, short, 8, 6, 4))),
        ("polyglots", lambda c: c.upload([(hostile.jpeg_with_icc_markup(), "a.jpg"),
                                          (hostile.jpeg_with_fake_jpeg_appended(), "b.jpg"),
                                          (hostile.jpeg_with_padded_html(), "c.jpg"),
                                          (hostile.png_with_markup_pixels(), "d.png"),
                                          (hostile.webp_with_chunk(), "e.webp")])),
        ("write a leased image", lambda c: c.put(f"/api/v1/images/{victim}/annotation", {
            "base_version": 0, "regions": [], "tags": {"styles": [], "flags": []}})),
        ("submit a leased image", lambda c: c.post(f"/api/v1/images/{victim}/submit")),
        ("GET /queue/next", lambda c: c.get("/api/v1/queue/next")),
        ("bomb 16-bit grey decoded", upload(FlatPng(fits, fits, 16, 0, 2))),
    ]


def attacker(stack, token: str, menu: list, tally: Tally, stop: threading.Event, offset: int) -> None:
    client = Http(stack.url, token, timeout=120)
    k = offset
    while not stop.is_set():
        what, run = menu[k % len(menu)]
        k += 1
        reply = run(client)
        if reply.status == 0 and reply.seconds < 0.05:  # a kept-alive connection the server had closed: once more
            reply = run(client)
        tally.note(what, reply)


def rss_sampler(stack: Stack, stop: threading.Event, out: dict) -> None:
    def rss(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    while not stop.is_set():
        pids = stack.worker_pids()
        sizes = [rss(p) for p in pids]
        total = sum(sizes) + (rss(stack.server.pid) if stack.server else 0)
        out["worker_peak"] = max(out.get("worker_peak", 0), max(sizes, default=0))
        out["total_peak"] = max(out.get("total_peak", 0), total)
        out.setdefault("pids", set()).update(pids)
        time.sleep(0.1)


def blob_digest(workspace: Path) -> dict[str, str]:
    return {str(p.relative_to(workspace)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((workspace / "blobs").rglob("*")) if p.is_file()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30, help="attack phase length")
    parser.add_argument("--baseline-seconds", type=float, default=15)
    parser.add_argument("--honest", type=int, default=8)
    parser.add_argument("--attackers", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="GUNICORN_THREADS")
    parser.add_argument("--bomb-side", type=int, default=10_000, help="side of the square bombs (issue: 10,000)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    workspace = Path(tempfile.mkdtemp(prefix="inklabel-attack-"))
    stack = Stack(workspace, workers=args.workers, threads=args.threads)
    stack.init()
    stack.start()
    tally, stop, rss, acked = Tally(), threading.Event(), {}, {}
    try:
        tokens = stack.users(args.honest, prefix="honest")
        bad = stack.users(args.attackers, prefix="mallory")
        admin = Http(stack.url, stack.users(1, role="admin", prefix="admin")[0])
        stack.upload_images(tokens[0], args.honest + 2)
        from tests.support.stack import make_png

        big = Http(stack.url, bad[0]).upload([(make_png(99, (2000, 2000)), "big.png")]).body["images"][0]["id"]
        threading.Thread(target=rss_sampler, args=(stack, stop, rss), daemon=True).start()
        phase = {"name": "baseline"}
        workers = [threading.Thread(target=honest, args=(stack, t, tally, phase, stop, acked, f"h{i}"), daemon=True)
                   for i, t in enumerate(tokens)]
        for w in workers:
            w.start()
        time.sleep(2)
        mallory = Http(stack.url, bad[0])
        own = mallory.post("/api/v1/queue/next?strategy=oldest").body["image_id"]
        size = mallory.get(f"/api/v1/images/{own}").body
        saved = mallory.put(f"/api/v1/images/{own}/annotation",
                            {"base_version": 0, **growing_document(size["width"], size["height"], 3, "mallory")})
        assert saved.status == 200, saved
        victim = next(iter(acked))
        time.sleep(max(0.0, args.baseline_seconds - 2))
        before_docs, before_blobs = stack.stored_documents(), blob_digest(workspace)
        own_before = json.dumps(before_docs[own]["document"], sort_keys=True)

        phase["name"] = "attack"
        menu = attacks(stack, bad[0], big, own, victim, args.bomb_side)
        evil = [threading.Thread(target=attacker, args=(stack, bad[i % len(bad)], menu, tally, stop,
                                                        i * len(menu) // args.attackers),
                                 daemon=True) for i in range(args.attackers)]
        started = time.monotonic()
        for t in evil:
            t.start()
        time.sleep(args.seconds)
        stop.set()
        for t in workers + evil:
            t.join(180)
        attack_wall = time.monotonic() - started
        after_docs, after_blobs = stack.stored_documents(), blob_digest(workspace)
        alive = admin.get("/healthz").status
    finally:
        stop.set()
        stack.stop()

    own_after = json.dumps(after_docs[own]["document"], sort_keys=True)
    honest_ok = all(after_docs[i]["version"] == v and markers_of(after_docs[i]["document"]) == m
                    for i, (v, m) in acked.items())
    kept_blobs = all(after_blobs.get(k) == v for k, v in before_blobs.items())
    server_errors = sum(n for (_, status), n in tally.statuses.items() if status >= 500)
    dropped = sum(n for (_, status), n in tally.statuses.items() if status == 0)
    log = stack.log_path.read_text()
    result = {
        "honest_save_p50_ms": {k: round(percentile(v, 50) * 1000, 1) for k, v in tally.saves.items()},
        "honest_save_p99_ms": {k: round(percentile(v, 99) * 1000, 1) for k, v in tally.saves.items()},
        "honest_save_max_ms": {k: round(max(v, default=0) * 1000, 1) for k, v in tally.saves.items()},
        "honest_saves": {k: len(v) for k, v in tally.saves.items()},
        "workers_x_threads": f"{args.workers} x {args.threads}",
        "worker_peak_rss_mb": round(rss.get("worker_peak", 0) / 2**20),
        "server_peak_rss_mb": round(rss.get("total_peak", 0) / 2**20),
        "worker_processes_seen": len(rss.get("pids", ())),
        "watchdog_kills": log.count("request over its limit"),
        "5xx": server_errors,
        "dropped_connections": dropped,
        "attacker_own_document_identical": own_before == own_after,
        "honest_documents_as_acknowledged": honest_ok,
        "stored_originals_identical": kept_blobs,
        "server_alive_after": alive == 200,
        "attack_seconds": round(attack_wall, 1),
        "answers": {f"{what} -> {status}": n for (what, status), n in sorted(tally.statuses.items())},
        "slowest_answer_s": {k: round(v, 2) for k, v in sorted(tally.slowest.items())},
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
