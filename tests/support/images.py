"""Small images for the ingest tests: formats, EXIF orientation, bit depths, palettes, animations, pixel-bomb
headers, and files that are not images at all; and what an app's store holds afterwards."""
from __future__ import annotations

import io
import secrets
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import func, select

from backend.db.extensions import db
from backend.db.models import Annotation, empty_document
from backend.db.models import Image as ImageRow


def encode(img: Image.Image, fmt: str = "JPEG", **params) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def two_tone(width: int, height: int, first=(255, 0, 0), second=(0, 0, 255)) -> Image.Image:
    """Left half `first`, right half `second`."""
    img = Image.new("RGB", (width, height), second)
    img.paste(first, (0, 0, width // 2, height))
    return img


def exif_rotated_jpeg(width: int = 80, height: int = 40) -> bytes:
    """A landscape JPEG (left red, right blue) whose EXIF orientation 6 says: turn 90° clockwise to view.
    Upright it is portrait, red on top and blue at the bottom."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(two_tone(width, height), "JPEG", quality=95, exif=exif.tobytes())


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height pixels but carries almost no data (a decompression-bomb probe)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (32, 24), colour) for colour in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, lossless=True)


def sixteen_bit_png() -> bytes:
    ramp = np.array([[0, 256, 32768, 65535]] * 4, dtype=np.uint16)
    return encode(Image.fromarray(ramp), "PNG")


def palette_alpha_png() -> bytes:
    img = Image.new("P", (16, 16), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.paste(1, (8, 0, 16, 16))  # right half: index 1 (blue), transparent
    return encode(img, "PNG", transparency=1)


def cmyk_jpeg() -> bytes:
    return encode(Image.new("CMYK", (24, 24), (0, 255, 255, 0)), "JPEG", quality=95)


HTML = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def two_tone_jpeg(width=64, height=48, seed=0) -> bytes:
    """A small JPEG, distinct per seed."""
    img = two_tone(width, height, first=(200, (seed * 37) % 256, (seed * 91) % 256))
    return encode(img, "JPEG", quality=90)


# --- rows, and what the store holds -----------------------------------------------------------------------------------------

def make_image(app, width: int = 200, height: int = 100, status: str = "new") -> int:
    """An Image row with its empty Annotation (version 0), without pixels: these tests do not need ingest."""
    with app.app_context():
        image = ImageRow(sha256=secrets.token_hex(32), width=width, height=height, format="jpeg", status=status)
        db.session.add(image)
        db.session.flush()
        db.session.add(Annotation(image_id=image.id, version=0, document=empty_document()))
        db.session.commit()
        return image.id


def workspace(app) -> Path:
    return Path(app.config["WORKSPACE"])


def blob_files(app) -> list[str]:
    root = workspace(app) / "blobs"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def image_rows(app) -> list[ImageRow]:
    with app.app_context():
        rows = db.session.scalars(select(ImageRow).order_by(ImageRow.id)).all()
        db.session.expunge_all()
        return rows


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))
