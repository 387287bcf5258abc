"""The taxonomy: styles (with colour, shortcut, trainable), motif vocabulary and image flags.

The workspace's taxonomy.json wins; a new workspace gets a copy of the checked-in annotations/taxonomy.json.
"""
from __future__ import annotations

import json
import shutil
from functools import lru_cache
from pathlib import Path

DEFAULT_TAXONOMY = Path(__file__).resolve().parents[2] / "annotations" / "taxonomy.json"


def taxonomy_path(workspace: str | Path) -> Path:
    path = Path(workspace) / "taxonomy.json"
    return path if path.exists() else DEFAULT_TAXONOMY


def ensure_taxonomy(workspace: str | Path) -> None:
    path = Path(workspace) / "taxonomy.json"
    if not path.exists() and path.resolve() != DEFAULT_TAXONOMY:
        shutil.copyfile(DEFAULT_TAXONOMY, path)


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def load_taxonomy(workspace: str | Path) -> dict:
    path = taxonomy_path(workspace)
    return _load(str(path), path.stat().st_mtime)


def style_keys(taxonomy: dict) -> set[str]:
    return {s["key"] for s in taxonomy["styles"]}


def trainable_styles(taxonomy: dict) -> list[str]:
    return [s["key"] for s in taxonomy["styles"] if s.get("trainable", True)]


def flag_keys(taxonomy: dict) -> set[str]:
    return {f["key"] for f in taxonomy["flags"]}


def excluded_flags(taxonomy: dict) -> set[str]:
    return {f["key"] for f in taxonomy["flags"] if f.get("excluded_from_training", True)}
