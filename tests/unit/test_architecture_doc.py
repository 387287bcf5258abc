"""docs/architecture.md's import graph is the code's (tools/import_graph.py redraws it)."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def import_graph():
    pytest.importorskip("grimp", reason="grimp comes with import-linter (requirements-dev.txt)")
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "tools" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_graph_is_current(import_graph):
    text = import_graph.DOC.read_text()
    assert import_graph.updated(text) == text, "docs/architecture.md is out of date: run python tools/import_graph.py"


def test_the_graph_draws_imports_against_the_layers_dotted(import_graph, monkeypatch):
    monkeypatch.setattr(import_graph, "package_edges", lambda: [("core", "web"), ("media", "db"), ("web", "core")])
    graph = import_graph.render()
    assert "    web --> core\n" in graph  # down the layers
    assert "    core -.-> web\n" in graph  # up: an exception the layers contract lists
    assert "    media -.-> db\n" in graph  # between independent packages of one layer
    assert graph.index("web[web]") < graph.index("core[core]") < graph.index("db[db]")  # drawn top-down


def test_the_drawn_graph_has_every_package(import_graph):
    edges = [line.split() for line in import_graph.render().splitlines() if "->" in line]
    drawn = {name for importer, _, imported in edges for name in (importer, imported)}
    assert {"commands", "serve", "web", "jobs", "ml", "datasets", "core", "media", "db"} <= drawn
