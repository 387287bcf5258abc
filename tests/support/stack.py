"""A local inklabel stack for soak runs and fault tests: gunicorn (`manage.py serve --prod`) on SQLite or PostgreSQL,
users with API tokens, uploaded images, a small keep-alive HTTP client that simulates an annotator (Http) and a
leaner one for load generation (RawClient).

Used by benchmarks (bench_soak, bench_attack, bench_api, fault_pg_restart) and tests/ops (faults, gunicorn, request
limits). Standard library plus the app itself; every process it starts is in its own process group and is stopped
by `Stack.stop()`.
"""
from __future__ import annotations

import http.client
import io
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
SECRET = "soak-secret-key-not-for-production-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- HTTP -----------------------------------------------------------------------------------------------------------

@dataclass
class Reply:
    status: int  # 0: no answer (connection refused/reset, timeout)
    body: object
    seconds: float
    error: str = ""
    headers: dict = field(default_factory=dict)

    @property
    def code(self) -> str:
        return self.body.get("error", {}).get("code", "") if isinstance(self.body, dict) else ""


class Http:
    """One keep-alive connection with a Bearer token; never raises on network errors (status 0 instead)."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 60):
        parts = urlsplit(base_url)
        self.host, self.port, self.token, self.timeout = parts.hostname, parts.port or 80, token, timeout
        self.conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method: str, path: str, body=None, headers: dict | None = None, raw: bytes | None = None,
                content_type: str | None = None) -> Reply:
        send_headers = {"Accept": "application/json"}
        if self.token:
            send_headers["Authorization"] = f"Bearer {self.token}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            content_type = "application/json"
        if content_type:
            send_headers["Content-Type"] = content_type
        send_headers.update(headers or {})
        started = time.perf_counter()
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self.conn.request(method, path, body=data, headers=send_headers)
            resp = self.conn.getresponse()
            payload = resp.read()
            seconds = time.perf_counter() - started
            if resp.getheader("Connection", "").lower() == "close":
                self.close()
        except (OSError, http.client.HTTPException) as err:
            self.close()
            return Reply(0, None, time.perf_counter() - started, f"{type(err).__name__}: {err}")
        ctype = resp.getheader("Content-Type", "")
        parsed: object = payload
        if ctype.startswith("application/json"):
            try:
                parsed = json.loads(payload)
            except ValueError:
                parsed = payload
        return Reply(resp.status, parsed, seconds, headers=dict(resp.getheaders()))

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def upload(self, files: list[tuple[bytes, str]], path: str = "/api/v1/images") -> Reply:
        boundary = uuid.uuid4().hex
        out = io.BytesIO()
        for content, name in files:
            out.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                      f"Content-Type: application/octet-stream\r\n\r\n".encode())
            out.write(content)
            out.write(b"\r\n")
        out.write(f"--{boundary}--\r\n".encode())
        return self.request("POST", path, raw=out.getvalue(), content_type=f"multipart/form-data; boundary={boundary}")


def wait_http(url: str, timeout: float = 60, proc: subprocess.Popen | None = None) -> None:
    client = Http(url, timeout=2)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        if client.get("/healthz").status == 200:
            client.close()
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer /healthz within {timeout}s")


# --- documents ------------------------------------------------------------------------------------------------------

def growing_document(image_w: int, image_h: int, step: int, marker: str, regions: int = 2) -> dict:
    """The annotation an annotator has after `step` edits: `regions` polygons (one with a hole) growing in size and
    vertex count. Every region's motifs carry `marker`, so a stored mix of two saves would show two markers."""
    out = []
    for r in range(regions):
        cx = image_w * (r + 1) / (regions + 1)
        cy = image_h / 2
        radius = min(image_w / (2 * regions + 2), image_h / 2) * min(0.95, 0.25 + 0.05 * step)
        n = 8 + 2 * step
        ring = [[round(cx + radius * math.cos(2 * math.pi * k / n), 2), round(cy + radius * math.sin(2 * math.pi * k / n), 2)]
                for k in range(n)]
        rings = [ring + [ring[0]]]
        if r == 0 and step >= 2:
            hole_r = radius * 0.3
            hole = [[round(cx + hole_r * math.cos(-2 * math.pi * k / 6), 2), round(cy + hole_r * math.sin(-2 * math.pi * k / 6), 2)]
                    for k in range(6)]
            rings.append(hole + [hole[0]])
        out.append({"id": f"r{r}", "geometry": {"type": "Polygon", "coordinates": rings}, "style": None,
                    "motifs": [marker]})
    return {"regions": out, "tags": {"styles": [], "flags": []}}


def markers_of(document: dict) -> set[str]:
    return {m for region in document.get("regions", []) for m in region.get("motifs", [])}


def make_png(seed: int, size: tuple[int, int] = (160, 120)) -> bytes:
    from PIL import Image, ImageDraw

    rnd = random.Random(seed)
    image = Image.new("RGB", size, (rnd.randrange(150, 230), rnd.randrange(110, 180), rnd.randrange(90, 150)))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = rnd.randrange(size[0]), rnd.randrange(size[1])
        draw.ellipse([x, y, x + rnd.randrange(8, 40), y + rnd.randrange(8, 40)], outline=(20, 20, 20), width=3)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


# --- the stack ------------------------------------------------------------------------------------------------------

def _killpg(proc: subprocess.Popen, sig) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


class Stack:
    """gunicorn + database (+ optional broker) in a workspace folder; `stop()` ends everything it started."""

    def __init__(self, workspace: Path, database_url: str | None = None, workers: int = 2, threads: int = 8,
                 broker_url: str | None = None, env: dict | None = None, log_path: Path | None = None):
        self.workspace = Path(workspace)
        self.workspace.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url or f"sqlite:///{self.workspace / 'inklabel.db'}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path or self.workspace / "server.log"
        self.env = dict(os.environ)
        for key in ("DATABASE_URL", "INKLABEL_BROKER_URL", "PROMETHEUS_MULTIPROC_DIR", "INKLABEL_WORKSPACE"):
            self.env.pop(key, None)
        self.env.update({
            "INKLABEL_WORKSPACE": str(self.workspace),
            "DATABASE_URL": self.database_url,
            "INKLABEL_SECRET_KEY": SECRET,
            "GUNICORN_WORKERS": str(workers),
            "GUNICORN_THREADS": str(threads),
            "INKLABEL_AGREEMENT_SHARE": "0",
            "PYTHONPATH": str(ROOT),
        })
        if broker_url:
            self.env["INKLABEL_BROKER_URL"] = broker_url
        self.env.update(env or {})
        self.server: subprocess.Popen | None = None
        self._app = None

    def manage(self, *args, timeout: float = 300) -> str:
        out = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=self.env,
                             capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed: {out.stderr[-2000:]}")
        return out.stdout

    def init(self) -> None:
        self.manage("init")

    def start(self, timeout: float = 90) -> None:
        log = open(self.log_path, "ab")
        self.server = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "serve", "--prod", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_http(self.url, timeout, self.server)

    def worker_pids(self) -> list[int]:
        """pids of the gunicorn worker processes (children of the master)."""
        if self.server is None:
            return []
        out = subprocess.run(["pgrep", "-P", str(self.server.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            _killpg(self.server, signal.SIGTERM)
            try:
                self.server.wait(20)
            except subprocess.TimeoutExpired:
                _killpg(self.server, signal.SIGKILL)
                self.server.wait(5)
        if self._app is not None:
            from backend.db.extensions import db

            with self._app.app_context():
                db.engine.dispose()

    # Direct database access (users, tokens, checks), through the app's own models.
    @property
    def app(self):
        if self._app is None:
            from backend import create_app

            self._app = create_app({
                "WORKSPACE": str(self.workspace), "SQLALCHEMY_DATABASE_URI": self.database_url,
                "SECRET_KEY": SECRET, "BROKER_URL": self.env.get("INKLABEL_BROKER_URL"),
            })
        return self._app

    def users(self, count: int, role: str = "annotator", prefix: str = "annotator") -> list[str]:
        """Create `count` users and return one API token each."""
        from backend.web.auth import create_token, create_user

        tokens = []
        with self.app.app_context():
            for i in range(count):
                user = create_user(f"{prefix}{i}-{uuid.uuid4().hex[:6]}", "password-" + uuid.uuid4().hex, role)
                tokens.append(create_token(user, "soak"))
        return tokens

    def upload_images(self, token: str, count: int, seed: int = 0, batch: int = 10) -> list[dict]:
        client, out = Http(self.url, token), []
        for start in range(0, count, batch):
            files = [(make_png(seed * 1_000_003 + i), f"soak-{seed}-{i}.png") for i in range(start, min(count, start + batch))]
            reply = client.upload(files)
            if reply.status != 201:
                raise RuntimeError(f"upload failed: {reply.status} {reply.body!r}"[:500])
            out.extend(reply.body["images"])
        client.close()
        return out

    def stored_documents(self) -> dict[int, dict]:
        """image id → {"version", "document", "revisions": [versions], "region_markers": set} from the database."""
        from sqlalchemy import select

        from backend.db.extensions import db
        from backend.db.models import Annotation, AnnotationRevision, Region

        out: dict[int, dict] = {}
        with self.app.app_context():
            for row in db.session.scalars(select(Annotation)):
                out[row.image_id] = {"version": row.version, "document": row.document, "revisions": [],
                                     "region_markers": set(), "region_ids": set()}
            for image_id, version in db.session.execute(select(AnnotationRevision.image_id, AnnotationRevision.version)):
                out.setdefault(image_id, {"revisions": []})["revisions"].append(version)
            for image_id, region_id, motifs in db.session.execute(select(Region.image_id, Region.id, Region.motifs)):
                entry = out.setdefault(image_id, {"region_markers": set(), "region_ids": set()})
                entry["region_markers"].update(motifs or [])
                entry["region_ids"].add(region_id)
            revisions = {(r.image_id, r.version): r.document for r in db.session.scalars(
                select(AnnotationRevision).join(Annotation, (Annotation.image_id == AnnotationRevision.image_id)
                                                & (Annotation.version == AnnotationRevision.version)))}
            db.session.rollback()
        for image_id, entry in out.items():
            entry["revision_document"] = revisions.get((image_id, entry.get("version")))
        return out


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


class RawClient:
    """A keep-alive HTTP/1.1 client on a plain socket: the request bytes are built by hand and only the status line,
    Content-Length and Connection are read from the answer. The load generator shares the cores with the server it
    measures, and http.client (header objects, email parsing) cost about 0.25 ms of client CPU a request, an eighth
    of the server's; this costs about 0.14 ms (0.13-0.14 cores at 960-990 requests/s). Responses must carry
    Content-Length (every API answer does)."""

    def __init__(self, port: int, token: str, timeout: float = 30):
        self.port, self.timeout = port, timeout
        self.headers = (f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
                        "Content-Type: application/json\r\n").encode()
        self.sock: socket.socket | None = None
        self.buf = b""

    def _connect(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def call(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.sock is None:
            self._connect()
        self.sock.sendall(b"%s %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s"
                          % (method.encode(), path.encode(), self.headers, len(body), body))
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            self._receive()
        head, self.buf = self.buf[:end].decode("latin-1"), self.buf[end + 4:]
        status = int(head[9:12])
        length, close = 0, False
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection":
                close = value.strip().lower() == "close"
        while len(self.buf) < length:
            self._receive()
        data, self.buf = self.buf[:length], self.buf[length:]
        if close:
            self.sock.close()
            self.sock = None
        return status, data

    def _receive(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buf += chunk
