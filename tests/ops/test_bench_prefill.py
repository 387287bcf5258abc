"""The pre-fill benchmark's stubbed-model mode (benchmarks/bench_prefill.py --stub-forward), run as a program: the
pool path end to end on a workspace of its own."""
import json
import subprocess
import sys

import pytest

from .conftest import ROOT


@pytest.mark.timeout(300)
def test_bench_prefill_stub_forward_runs(tmp_path):
    """The stubbed-model mode of the pre-fill benchmark: the pool path runs end to end (decode, trace, classify,
    store) and reports the process's CPU per image, clearly labelled as stubbed."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_prefill.py"), "--stub-forward", "--stub-classifier",
         "--images", "6", "--batch-size", "4", "--threads", "1",
         "--input-size", "128", "--data", str(tmp_path / "none"), "--json"],
        capture_output=True, text=True, timeout=280, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "MODEL STUBBED" in out.stdout
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["stub_forward"] and report["images"] == 6
    (run,) = report["runs"]
    assert run["done"] == 6 and run["failed"] == 0 and run["parent_cpu_ms_per_image"] > 0
    assert "store (DB)" in run["split_ms_per_image"]
