"""Running the app in production: the WSGI entry point, gunicorn settings and worker, per-request limits, warm-up."""

# Environment of the gunicorn processes (`serve --prod` sets each one unless it is already set; the Dockerfile sets
# the same). glibc serves allocations under its mmap threshold from per-thread arenas, and the threshold rises
# after large blocks are freed (up to 32 MB), so Pillow's 16 MB image blocks ended up in arenas that keep freed
# memory: a 6 x 4 worker that decoded one 80-MP image at a time still grew to 1.35-1.6 GB. A fixed 1 MiB threshold
# maps such blocks and returns them on free: 989-1,041 MB largest worker, honest save p99 51.4-51.5 ms under attack
# (benchmarks/bench_attack.py, issue 18 in benchmarks/README.md).
PROCESS_ENV = {"MALLOC_MMAP_THRESHOLD_": "1048576"}
