"""The taxonomy: styles (with colour, shortcut, trainable), motif vocabulary and image flags.

The workspace's taxonomy.json wins; a new workspace gets a copy of the checked-in annotations/taxonomy.json.
"""
from __future__ import annotations

import json
import shutil
from functools import lru_cache
from pathlib import Path

from backend.config import SetupError

DEFAULT_TAXONOMY = Path(__file__).resolve().parents[2] / "annotations" / "taxonomy.json"


def taxonomy_path(workspace: str | Path) -> Path:
    path = Path(workspace) / "taxonomy.json"
    return path if path.exists() else DEFAULT_TAXONOMY


def ensure_taxonomy(workspace: str | Path) -> None:
    """Give a new workspace its copy of the default taxonomy. Deleting the default workspace folder to start over
    also deletes the checked-in default, which every workspace needs: that is said here, with the way back, rather
    than failing on the first document saved."""
    path = Path(workspace) / "taxonomy.json"
    if path.exists():
        return
    if not DEFAULT_TAXONOMY.exists():
        raise SetupError(
            f"the default taxonomy {DEFAULT_TAXONOMY} is missing (it is part of the project; deleting the annotations/ "
            "folder deletes it too): restore it with `git checkout -- annotations/taxonomy.json`. To start the demo "
            "over, delete everything in annotations/ but taxonomy.json, or use another workspace "
            "(INKLABEL_WORKSPACE=/tmp/inklabel-demo).")
    if path.resolve() != DEFAULT_TAXONOMY:
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
