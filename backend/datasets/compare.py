"""Read an export's full manifest back from its zip, and compare two exports image by image.

    diff = compare_manifests(read_manifest(old_zip), read_manifest(new_zip))
    # {"added": [...], "removed": [...], "relabelled": [...], "moved": [...], "unchanged": n, "counts": {...}}

An image is identified by its id (its sha256 is shown too). "relabelled": in both exports with a different pinned
annotation version; "moved": the same version in another split (a changed seed or split ratio).
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

MAX_MANIFEST_BYTES = 256 * 1024 * 1024  # manifests of very large exports are big, but never this big


class ManifestUnreadable(Exception):
    pass


def read_manifest(zip_path: Path) -> dict:
    """manifest.json of an export zip, with its `images` and `files` lists."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            info = zf.getinfo("manifest.json")
            if info.file_size > MAX_MANIFEST_BYTES:
                raise ManifestUnreadable(f"manifest.json is {info.file_size} bytes, over the limit")
            with zf.open(info) as fh:
                return json.load(fh)
    except (KeyError, zipfile.BadZipFile, json.JSONDecodeError, OSError) as err:
        raise ManifestUnreadable(f"the export's manifest.json cannot be read: {err}") from None


def _by_id(manifest: dict) -> dict[int, dict]:
    return {int(item["id"]): item for item in manifest.get("images") or [] if "id" in item}


def _brief(item: dict) -> dict:
    return {"id": item.get("id"), "sha256": item.get("sha256"), "split": item.get("split"),
            "version": item.get("version")}


def compare_manifests(old: dict, new: dict, limit: int = 500) -> dict:
    """Images added, removed, relabelled and moved between splits from `old` to `new`; each list holds at most
    `limit` entries (the counts are always complete)."""
    a, b = _by_id(old), _by_id(new)
    added = [_brief(b[i]) for i in sorted(b.keys() - a.keys())]
    removed = [_brief(a[i]) for i in sorted(a.keys() - b.keys())]
    relabelled, moved, unchanged = [], [], 0
    for i in sorted(a.keys() & b.keys()):
        before, after = a[i], b[i]
        if before.get("version") != after.get("version"):
            relabelled.append({**_brief(after), "old_version": before.get("version"), "old_split": before.get("split")})
        elif before.get("split") != after.get("split"):
            moved.append({**_brief(after), "old_split": before.get("split")})
        else:
            unchanged += 1
    return {
        "old_export_id": old.get("export_id"),
        "new_export_id": new.get("export_id"),
        "counts": {"added": len(added), "removed": len(removed), "relabelled": len(relabelled),
                   "moved": len(moved), "unchanged": unchanged},
        "added": added[:limit],
        "removed": removed[:limit],
        "relabelled": relabelled[:limit],
        "moved": moved[:limit],
        "truncated": any(len(x) > limit for x in (added, removed, relabelled, moved)),
    }
