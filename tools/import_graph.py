"""Draw the backend's package-level import graph (grimp) as a Mermaid block in docs/architecture.md.

    python tools/import_graph.py           rewrite the block between the markers
    python tools/import_graph.py --check   exit 1 when the committed block differs from the code

An arrow A --> B means some module of backend.A imports one of backend.B. Packages are drawn in the order of the
layers contract in .importlinter (top to bottom); an arrow that goes up, against the layers, is dotted: those are
the contract's listed exceptions.
"""
from __future__ import annotations

import argparse
import configparser
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
CONFIG = ROOT / ".importlinter"
START, END = "<!-- import-graph:start (tools/import_graph.py) -->", "<!-- import-graph:end -->"


def layer_order() -> list[list[str]]:
    """The layers of the .importlinter layers contract, top first, each a list of package names."""
    config = configparser.ConfigParser()
    config.read(CONFIG)
    layers = config["importlinter:contract:layers"]["layers"]
    return [[name.strip().removeprefix("backend.") for name in line.split("|")]
            for line in layers.strip().splitlines() if line.strip()]


def package_edges() -> list[tuple[str, str]]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph("backend", exclude_type_checking_imports=True, cache_dir=None)
    packages = sorted(graph.find_children("backend"))
    return sorted((a.removeprefix("backend."), b.removeprefix("backend."))
                  for a in packages for b in packages
                  if a != b and graph.direct_import_exists(importer=a, imported=b, as_packages=True))


def render() -> str:
    layers = layer_order()
    rank = {name: i for i, layer in enumerate(layers) for name in layer}
    lines = ["```mermaid", "flowchart TD"]
    for i, layer in enumerate(layers):  # a layer of independent packages side by side in a box
        nodes = [f"{name}[{name}]" for name in layer]
        lines += [f"    subgraph L{i} [\" \"]", *(f"        {n}" for n in nodes), "    end"] if len(layer) > 1 \
            else [f"    {nodes[0]}"]
    for a, b in package_edges():
        upward = rank.get(a, len(layers)) >= rank.get(b, len(layers))
        lines.append(f"    {a} {'-.->' if upward else '-->'} {b}")
    lines.append("```")
    return "\n".join(lines)


def updated(text: str) -> str:
    head, sep, rest = text.partition(START)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise SystemExit(f"{DOC} lacks the markers {START} ... {END}")
    return f"{head}{START}\n{render()}\n{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the committed graph is current")
    args = parser.parse_args()
    text = DOC.read_text()
    new = updated(text)
    if args.check:
        if new != text:
            print(f"{DOC.relative_to(ROOT)} is out of date: run python tools/import_graph.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
