"""Runs the front end's pure-module tests (tests/js/*.test.mjs: store, undo, viewport, geometry, merge, brush
raster, autosave) with Node's built-in test runner; skipped with a reason where Node is absent."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JS_TESTS = ROOT / "tests" / "js"


def _node() -> str:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("Node.js is not installed: the front end's unit tests (node --test tests/js) need it")
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    match = re.match(r"v(\d+)", version)
    if not match or int(match.group(1)) < 18:
        pytest.skip(f"node --test needs Node.js 18 or newer (found {version or 'unknown'})")
    return node


def test_frontend_unit_tests_pass():
    node = _node()
    files = sorted(str(p) for p in JS_TESTS.glob("*.test.mjs"))
    assert files, "no tests in tests/js"
    result = subprocess.run([node, "--test", *files], cwd=ROOT, capture_output=True, text=True, timeout=120)
    summary = "\n".join(line for line in result.stdout.splitlines() if line.startswith(("# ", "not ok")))
    assert result.returncode == 0, f"node --test failed:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
    assert re.search(r"^# fail 0$", result.stdout, re.M), summary
