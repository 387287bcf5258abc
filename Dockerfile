# syntax=docker/dockerfile:1.7
# inklabel: one image for the web app (gunicorn) and the Celery workers.
#
#   docker build -t inklabel .                                   # CPU PyTorch: web app and `cpu` queue workers
#   docker build -t inklabel-gpu --build-arg VARIANT=gpu .       # CUDA PyTorch: `gpu` queue workers (training, pre-fill)
#
#   docker run -p 8000:8000 -v inklabel-data:/data -e INKLABEL_SECRET_KEY=... inklabel     # embedded: SQLite in /data
#   docker compose up                                            # web + cpu worker + PostgreSQL + Redis (docs/operations.md)
#
# The workspace (/data: blobs, exports, models, SQLite when no DATABASE_URL) is a volume; web and workers must
# share it. Run `python manage.py init` once per deploy before starting web or workers (compose does it).

ARG VARIANT=cpu

# --- operating system + Python, per variant --------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS os-cpu
ENV TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN apt-get update \
 && apt-get install -y --no-install-recommends libglib2.0-0 libgomp1 \
 && rm -rf /var/lib/apt/lists/*

FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 AS os-gpu
ENV TORCH_INDEX=https://download.pytorch.org/whl/cu128
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv libglib2.0-0 libgomp1 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && ln -sf /usr/bin/python3 /usr/local/bin/python

# --- the application ----------------------------------------------------------------------------------------------
FROM os-${VARIANT} AS app
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /app
COPY requirements.txt ./
# torch/torchvision from the index of this variant (CPU or CUDA wheels), at the versions requirements.txt pins,
# then the rest (pip sees the pins satisfied by the +cpu / +cu128 builds).
RUN pip install --index-url "$TORCH_INDEX" $(grep -E '^(torch|torchvision)[=<>~ ]' requirements.txt) \
 && pip install -r requirements.txt

RUN groupadd --system --gid 10001 inklabel \
 && useradd --system --uid 10001 --gid inklabel --home-dir /app --no-create-home --shell /usr/sbin/nologin inklabel \
 && mkdir -p /data \
 && chown inklabel:inklabel /data
COPY --chown=root:root . .

# MALLOC_MMAP_THRESHOLD_: as `serve --prod` sets it (backend/serve/__init__.py PROCESS_ENV: large image blocks are
# returned to the system when freed instead of staying in per-thread arenas).
ENV INKLABEL_WORKSPACE=/data \
    INKLABEL_LOG_FORMAT=json \
    MALLOC_MMAP_THRESHOLD_=1048576 \
    GUNICORN_BIND=0.0.0.0:8000 \
    HOME=/tmp
VOLUME ["/data"]
USER inklabel:inklabel
EXPOSE 8000

# Process up (the web app); workers override this with `python manage.py ready` (database + broker reachable).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]

# gunicorn with backend/serve/gunicorn_conf.py (GUNICORN_WORKERS, GUNICORN_THREADS, GUNICORN_TIMEOUT, ...).
# A worker: `python manage.py worker --queues cpu` (or `--queues gpu --concurrency 1` on the gpu image).
CMD ["gunicorn", "-c", "python:backend.serve.gunicorn_conf", "backend.serve.wsgi:app"]
