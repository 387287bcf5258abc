#!/usr/bin/env bash
# The GPU figures, in one lease of a GPU machine (the `device` tool of this workplace; any CUDA box works):
#   1. bench_prefill.py first (the open goal): single-image and batch pre-fill on CUDA, the pool path with 4, 8 and 15
#                          tracing processes next to the model-only rate of the same run (goal: >= 50 % of it), then
#                          --stub-forward: the parent's own CPU an image on this machine's cores
#   2. bench_annotator.py: the simulated annotator's model trained to convergence on the GPU (measured on the CPU)
#   3. bench_learning.py:  export → train → held-out figures, segmenter at its default 512 px, 80 epochs, on CUDA
#   4. bench_real.py:      the real-photo setting (issue 21) at 512 px on CUDA: import → export → train on 90 real
#                          photos' boxes + procedural + composites on their skin, figures on the 30 held-out photos
# About 12 minutes on an H200 (step 4 about 5 of them), estimated from its steps as run on 2026-11-27 (not yet run as one script). Wheels in .whl/ (packages the machine lacks: see benchmarks/README.md)
# are installed first; the real photos are read from .gpu_data/real-tattoos (a copy of ../shared/data/real-tattoos).
#   OUT=/tmp/out bash benchmarks/device_run.sh
set -u
OUT=${OUT:-/tmp/device-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
log="$OUT/device.log"
date -u >"$log"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >>"$log" 2>&1
# The one goal still open (issue 4) first: the batch pipeline against model-only, then the parent's own CPU an image
# on this machine's cores with the model stubbed (the budget is 1 / (half the model-only rate)).
timeout 170 python3 benchmarks/bench_prefill.py --device cuda --batch-size 64 --images 512 \
  --data .gpu_data/real-tattoos --json >"$OUT/prefill.txt" 2>&1
echo "== prefill rc=$?" >>"$log"; date -u >>"$log"
timeout 90 python3 benchmarks/bench_prefill.py --stub-forward --images 256 --batch-size 64 --rounds 2 \
  --data .gpu_data/real-tattoos --json >"$OUT/prefill-stub.txt" 2>&1
echo "== prefill stub rc=$?" >>"$log"; date -u >>"$log"
{
  date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc
  python3 -c "import torch, segmentation_models_pytorch as smp, timm, flask, shapely; print(torch.__version__, timm.__version__, smp.__version__, torch.cuda.get_device_name())"
  echo "== annotator model"
  timeout 150 python3 benchmarks/bench_annotator.py --train-only --device cuda --steps "${ANNOT_STEPS:-4000}" \
    --model-cache /tmp/annot.safetensors && split -b 16000000 -d /tmp/annot.safetensors "$OUT/annot.part"
  echo "== annotator done rc=$?"; date -u
} >>"$log" 2>&1
timeout 220 python3 benchmarks/bench_learning.py --device cuda --seg-input 512 --seg-epochs 80 --json >"$OUT/learning.txt" 2>&1
echo "== learning rc=$?" >>"$log"; date -u >>"$log"
timeout 300 python3 benchmarks/bench_real.py --preset full --device cuda --seg-input 512 --threads 8 \
  --data .gpu_data/real-tattoos --json >"$OUT/real.txt" 2>&1
echo "== real rc=$?" >>"$log"; date -u >>"$log"
