"""Progress of long CLI phases: a tqdm bar on a terminal, plain log lines elsewhere (CI logs, nohup, docker logs)."""
from __future__ import annotations

import sys
import time


class Progress:
    """A `progress(done, total, message)` callback for one phase of a command.

    On a terminal (or with `enabled=True`) it draws a tqdm bar on stderr. When stderr is not a terminal and
    progress was not switched off, it prints a line when the phase starts, one every `interval` seconds while it
    runs, and one when it ends, so a log shows where a long run is. `enabled=False` prints nothing.
    """

    def __init__(self, desc: str, unit: str, enabled: bool | None = None, interval: float = 15.0):
        self.desc, self.unit, self.interval = desc, unit, interval
        self.started = self.last_line = time.monotonic()
        self.done, self.total, self.message = 0, None, ""
        interactive = sys.stderr.isatty() if enabled is None else enabled
        self.bar = None
        if interactive:
            from tqdm import tqdm  # only on a terminal (it is a noticeable part of a command's start-up)

            self.bar = tqdm(total=0, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)
        self.lines = enabled is None and not interactive
        if self.lines:
            self._line("started")

    def __call__(self, done: int, total: int | None = None, message: str = "", **_) -> None:
        self.done = max(self.done, done)
        if total is not None:
            self.total = total
        if message:
            self.message = message
        if self.bar is not None:
            if total is not None and self.bar.total != total:
                self.bar.total = total
            self.bar.update(max(0, done - self.bar.n))
            if message:
                self.bar.set_postfix_str(message, refresh=False)
        elif self.lines and time.monotonic() - self.last_line >= self.interval:
            self._line(self._position())

    def write(self, line: str) -> None:
        """A message line (a rejected file, a warning) that leaves the bar intact."""
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.lines:
            self._line(f"done, {self._position()}")

    def _position(self) -> str:
        text = f"{self.done}/{self.total} {self.unit}" if self.total else f"{self.done} {self.unit}"
        if self.total:
            text += f" ({100 * self.done // self.total}%)"
        return text + (f", {self.message}" if self.message else "")

    def _line(self, what: str) -> None:
        self.last_line = time.monotonic()
        print(f"[{self.desc}] {what} ({self.last_line - self.started:.0f}s)", file=sys.stderr, flush=True)
