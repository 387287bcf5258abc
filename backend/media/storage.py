"""Content-addressed image store under the workspace (no Flask here).

    blobs/ab/cd/<sha256>.<jpg|png|webp>      the original, byte for byte as uploaded
    blobs/ab/cd/<sha256>.display2048.jpg    derivatives: upright RGB JPEG, long side <= the size in the name
    blobs/ab/cd/<sha256>.thumb256.jpg

Paths are built only from a validated sha256 and a format from the allow-list, never from a user-supplied name.
Every file is written to a temporary file in the same folder and renamed into place, so a reader never sees half
a file and concurrent writers of the same derivative simply both produce the same bytes. The size is part of a
derivative's name, so changing DISPLAY_MAX_SIDE / THUMB_MAX_SIDE makes new files instead of serving stale ones.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from PIL import Image as PILImage

from backend.media.imaging import FORMATS, encode_jpeg, extension, load_rgb, resize_to_max_side

SHA256 = re.compile(r"^[0-9a-f]{64}$")
DERIVATIVES = ("display", "thumb")
DEFAULT_SIDES = {"display": 2048, "thumb": 256}
JPEG_QUALITY = {"display": 88, "thumb": 82}


def _check_sha(sha: str) -> str:
    if not isinstance(sha, str) or not SHA256.match(sha):
        raise ValueError(f"not a sha256 hex digest: {sha!r}")
    return sha


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return fmt


def atomic_write(path: Path, data: bytes, durable: bool = True) -> None:
    """Write `data` to `path` through a temporary file in the same folder and an atomic rename.

    durable: fsync before the rename (originals must survive a crash once their row is committed; derivatives are
    a cache that can be made again, so they skip it).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


class BlobStore:
    def __init__(self, workspace: str | os.PathLike, display_max_side: int | None = None,
                 thumb_max_side: int | None = None, max_pixels: int | None = None):
        self.root = Path(workspace).resolve() / "blobs"
        self.max_pixels = max_pixels  # the ingest limit: stored originals are within it
        self.sides = {
            "display": display_max_side or DEFAULT_SIDES["display"],
            "thumb": thumb_max_side or DEFAULT_SIDES["thumb"],
        }

    @classmethod
    def from_config(cls, config) -> "BlobStore":
        """The store of an app's config (WORKSPACE, DISPLAY_MAX_SIDE, THUMB_MAX_SIDE, MAX_IMAGE_PIXELS)."""
        return cls(config["WORKSPACE"], config.get("DISPLAY_MAX_SIDE"), config.get("THUMB_MAX_SIDE"),
                   config.get("MAX_IMAGE_PIXELS"))

    # --- paths ------------------------------------------------------------------------------------------------

    def _folder(self, sha: str) -> Path:
        _check_sha(sha)
        return self.root / sha[:2] / sha[2:4]

    def original_path(self, sha: str, fmt: str) -> Path:
        return self._folder(sha) / f"{sha}.{extension(_check_format(fmt))}"

    def derivative_name(self, sha: str, size: str) -> Path:
        if size not in DERIVATIVES:
            raise ValueError(f"size must be one of {', '.join(DERIVATIVES)}, not {size!r}")
        return self._folder(sha) / f"{sha}.{size}{self.sides[size]}.jpg"

    def exists(self, sha: str, fmt: str) -> bool:
        return self.original_path(sha, fmt).is_file()

    # --- writing ----------------------------------------------------------------------------------------------

    def put_original(self, sha: str, data: bytes, fmt: str) -> Path:
        """Store the uploaded bytes unchanged under their sha256 (checked). Idempotent."""
        if hashlib.sha256(data).hexdigest() != _check_sha(sha):
            raise ValueError("the data does not have the sha256 it is stored under")
        path = self.original_path(sha, fmt)
        if not (path.is_file() and path.stat().st_size == len(data)):
            atomic_write(path, data)
        return path

    def put_derivative(self, sha: str, size: str, image: PILImage.Image) -> Path:
        """Cache a derivative made from an already-decoded upright RGB image (ingest does this for thumbnails)."""
        path = self.derivative_name(sha, size)
        if not path.is_file():
            data = encode_jpeg(resize_to_max_side(image, self.sides[size]), JPEG_QUALITY[size])
            atomic_write(path, data, durable=False)
        return path

    def derivative_path(self, sha: str, fmt: str, size: str) -> Path:
        """The cached derivative's path, made from the original on first use (upright JPEG, long side bounded)."""
        path = self.derivative_name(sha, size)
        if path.is_file():
            return path
        original = self.original_path(sha, fmt)
        if not original.is_file():
            raise FileNotFoundError(f"the original of {sha} is missing from the blob store")
        side = self.sides[size]
        image = load_rgb(original, max_pixels=self.max_pixels, max_side=side)
        atomic_write(path, encode_jpeg(resize_to_max_side(image, side), JPEG_QUALITY[size]), durable=False)
        return path

    def delete(self, sha: str, fmt: str) -> None:
        """Remove an original and its derivatives (for cleaning up; content addressing makes this rare)."""
        for path in [self.original_path(sha, fmt), *(self.derivative_name(sha, s) for s in DERIVATIVES)]:
            try:
                path.unlink()
            except FileNotFoundError:
                pass

    # --- reading ----------------------------------------------------------------------------------------------

    def open_rgb(self, image_row, max_side: int | None = None) -> PILImage.Image:
        """An Image row's picture as upright RGB, full size; with `max_side`, a JPEG is decoded at a reduced scale
        where that still leaves its long side at least max_side (resizing to the exact size is the caller's)."""
        path = self.original_path(image_row.sha256, image_row.format)
        return load_rgb(path, max_pixels=self.max_pixels, max_side=max_side)
