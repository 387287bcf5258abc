"""A hard per-request limit for the production server: a request that burns more CPU (or memory, or, when set,
wall time) than allowed ends with its worker process, whatever it is doing.

Python cannot interrupt a thread that is inside C code (GEOS repairing a polygon, Pillow decoding, numpy), and
gunicorn's own `timeout` only watches the worker's heartbeat, which gthread keeps sending while a request runs. So
each worker runs a `RequestWatchdog` thread (started from gunicorn_conf.py's `post_worker_init`;
`pre_request`/`post_request` mark requests in and out): every ``interval`` seconds it reads the CPU clock of each
thread that is handling a request, the process's resident memory and the elapsed time, and past a limit it logs
the request and kills the process (SIGKILL: no handler can delay it). The arbiter starts a new worker at once; the
killed request's database transaction rolls back; its client sees the connection close.

The bounds in the code (geometry_bounds, decode limits) are meant to keep every honest and hostile request far
below these limits: this is the backstop for what they miss.

Settings (environment; 0 turns one off):
    INKLABEL_REQUEST_CPU_SECONDS   CPU seconds of the handling thread per request (default 10)
    INKLABEL_REQUEST_MAX_RSS_MB    resident memory a request may add to its worker (default 1024; with several
                                   requests in flight in one process, that many times this for the process)
    INKLABEL_REQUEST_WALL_SECONDS  wall time per request (default 0: off; a large download to a slow client is
                                   legitimately slow, and CPU and memory are what a runaway request consumes)
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

log = logging.getLogger("inklabel.request_limits")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class Limits:
    cpu_seconds: float = 10.0
    max_rss_mb: float = 1024.0
    wall_seconds: float = 0.0

    @classmethod
    def from_env(cls, env=os.environ) -> "Limits":
        def number(name: str, default: float) -> float:
            raw = env.get(name, "").strip()
            try:
                value = float(raw) if raw else default
            except ValueError:
                raise SystemExit(f"{name}={raw!r} is not a number of seconds/megabytes") from None
            return max(value, 0.0)

        return cls(number("INKLABEL_REQUEST_CPU_SECONDS", cls.cpu_seconds),
                   number("INKLABEL_REQUEST_MAX_RSS_MB", cls.max_rss_mb),
                   number("INKLABEL_REQUEST_WALL_SECONDS", cls.wall_seconds))


def rss_bytes() -> int:
    """Resident memory of this process (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def _thread_cpu(clock: Optional[int]) -> float:
    if clock is None:
        return 0.0
    try:
        return time.clock_gettime(clock)
    except OSError:  # the thread ended
        return 0.0


@dataclass
class _InFlight:
    what: str
    started: float
    clock: Optional[int]
    cpu_start: float
    rss_start: int


def _kill_self(reason: str) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class RequestWatchdog:
    def __init__(self, limits: Limits, interval: float = 0.1, on_exceeded: Callable[[str], None] = _kill_self):
        self.limits = limits
        self.interval = interval
        self.on_exceeded = on_exceeded
        self._requests: dict[int, _InFlight] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    @property
    def enabled(self) -> bool:
        return bool(self.limits.cpu_seconds or self.limits.max_rss_mb or self.limits.wall_seconds)

    def start(self) -> "RequestWatchdog":
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="inklabel-request-watchdog", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def begin(self, what: str) -> None:
        """Called in the thread that handles the request, before the app runs."""
        ident = threading.get_ident()
        try:
            clock = time.pthread_getcpuclockid(ident)
        except (AttributeError, OSError):
            clock = None
        entry = _InFlight(what[:200], time.monotonic(), clock, _thread_cpu(clock), rss_bytes())
        with self._lock:
            self._requests[ident] = entry

    def end(self) -> None:
        with self._lock:
            self._requests.pop(threading.get_ident(), None)

    def check(self) -> Optional[str]:
        """The reason a running request is over a limit, or None (one pass of the watchdog's loop)."""
        with self._lock:
            entries = list(self._requests.values())
        if not entries:
            return None
        limits, now = self.limits, time.monotonic()
        rss = rss_bytes() if limits.max_rss_mb else 0
        # Memory is the process's: with several threads in flight each may add its share before one is blamed.
        rss_budget = limits.max_rss_mb * len(entries)
        for entry in entries:
            cpu = _thread_cpu(entry.clock) - entry.cpu_start
            if limits.cpu_seconds and cpu > limits.cpu_seconds:
                return f"{entry.what}: {cpu:.1f} s of CPU (the limit is {limits.cpu_seconds:g} s)"
            grown = (rss - entry.rss_start) / 2**20
            if limits.max_rss_mb and grown > rss_budget:
                return f"{entry.what}: +{grown:.0f} MB resident (the limit is {limits.max_rss_mb:g} MB a request)"
            elapsed = now - entry.started
            if limits.wall_seconds and elapsed > limits.wall_seconds:
                return f"{entry.what}: {elapsed:.0f} s (the limit is {limits.wall_seconds:g} s)"
        return None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            reason = self.check()
            if reason is not None:
                log.error("request over its limit, ending worker %s: %s", os.getpid(), reason)
                for handler in logging.getLogger().handlers + log.handlers:
                    handler.flush()
                self.on_exceeded(reason)
                return
