"""The import rules of .importlinter (layers, no cycles inside a package, no Flask below the web layer) hold."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _lint_imports(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(exe).exists():
        pytest.skip("import-linter is not installed (pip install -r requirements-dev.txt)")
    return subprocess.run([exe, "--no-cache", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_the_import_contracts_are_kept():
    result = _lint_imports()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_a_broken_layer_is_reported(tmp_path):
    """The contracts can fail: the same layers with web below core are broken by core's own imports."""
    config = (ROOT / ".importlinter").read_text().replace("    backend.web\n", "", 1) \
        .replace("    backend.core\n", "    backend.core\n    backend.web\n", 1)
    bad = tmp_path / "importlinter.ini"
    bad.write_text(config)
    result = _lint_imports(str(bad))
    assert result.returncode != 0
    assert "backend.web is not allowed to import backend.core" in result.stdout
