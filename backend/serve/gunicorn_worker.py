"""A gthread worker that, with one thread, handles each request on its event-loop thread.

gunicorn's gthread worker hands every request from its event loop to a thread pool and the result back through a
pipe: two thread switches, a pipe write and a wake-up of the loop per request. With one thread per process (our
default, see gunicorn_conf.py) the pool cannot run two requests at once anyway, so this worker calls the same
`handle` and `finish_request` in the loop itself: keep-alive, the HTTP parser, timeouts and graceful shutdown
are gthread's own. Measured with benchmarks/bench_api.py --served-cpu: see benchmarks/results/api.md.

What changes: a connection that opened without sending anything holds the process for at most gthread's data
timeout (5 s) before it is parked in the poller, as it held gthread's one pool thread. The loop does not tick while
a request runs, so a heartbeat thread tells the arbiter the process is alive, as gthread's loop does while its
pool works: a long request (a large download to a slow client) is not killed by `timeout`, as under gthread.
What bounds a runaway request is the per-request CPU/memory limit of backend/serve/request_limits.py, which
gunicorn_conf.py installs for every worker class (this one, gthread, sync).
With GUNICORN_THREADS > 1, or a gunicorn whose gthread worker lacks the hooks used here, it is plain gthread.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future

from gunicorn.workers import gthread

# How long a process that already serves connections waits before it takes a new one, per connection it has.
ACCEPT_YIELD_S = 0.001
HEARTBEAT_S = 1.0  # gthread's loop notifies the arbiter at least this often


def _inline_capable() -> bool:
    # gunicorn 27's gthread (its method queue came with finish_request(conn, future), which enqueue_req uses);
    # older ones have other signatures and stay plain gthread.
    return hasattr(gthread, "PollableMethodQueue")


class InlineThreadWorker(gthread.ThreadWorker):
    inline = False

    def init_process(self):
        self.inline = self.cfg.threads == 1 and _inline_capable()
        super().init_process()

    def run(self):
        if self.inline:
            threading.Thread(target=self._heartbeat, name="inklabel-heartbeat", daemon=True).start()
        super().run()

    def _heartbeat(self) -> None:
        while self.alive:
            self.notify()
            time.sleep(HEARTBEAT_S)

    def murder_keepalived(self, *args, **kwargs):  # (force=False since gunicorn 27)
        # The loop closes kept-alive connections idle past their keep-alive time right after it dispatched events.
        # Here a request can run for longer than that inside the dispatch, and a connection whose next request
        # arrived meanwhile must be answered, not closed: serve whatever became ready first.
        if self.inline and not kwargs.get("force", args[0] if args else False):
            while events := self.poller.select(0):
                for key, _ in events:
                    key.data(key.fileobj)
        super().murder_keepalived(*args, **kwargs)

    def accept(self, *args):  # (listener) since gunicorn 27, (server, listener) before
        # Every process sleeping in its poller wakes when a client connects, and the first to call accept() gets
        # the connection, which stays with it while it is kept alive. With one thread a process answers its
        # connections one request at a time, so a process already holding some lets idle ones go first (the
        # loser's accept() finds nothing and returns): 8 clients on 8 processes got 5 of them, 3 with two
        # connections each, before this.
        if self.inline and self.nr_conns:
            time.sleep(min(self.nr_conns, 20) * ACCEPT_YIELD_S)
        return super().accept(*args)

    def enqueue_req(self, conn):
        if not self.inline:
            return super().enqueue_req(conn)
        done: Future = Future()
        try:
            done.set_result(self.handle(conn))
        except BaseException as err:  # handle() catches what a request raises; this is its last resort
            done.set_exception(err)
        self.finish_request(conn, done)
