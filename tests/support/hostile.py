"""Builders of hostile files: polyglot images, dangerous archives, poisoned model checkpoints."""
from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile
import zlib
from pathlib import Path

from .world import jpeg_bytes, png_bytes

XSS_IMG = "<img src=x onerror=\"window.__xss=(window.__xss||0)+1\">"
XSS_SVG = "<svg onload=\"window.__xss=(window.__xss||0)+1\"></svg>"


# --- images -------------------------------------------------------------------------------------------------------

def jpeg_with_comment(text: bytes) -> bytes:
    """A valid JPEG with a COM segment (what a polyglot uses to hide HTML in the sniffed head)."""
    data = jpeg_bytes()
    segment = b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text
    return data[:2] + segment + data[2:]


def jpeg_with_exif_text(text: bytes) -> bytes:
    from PIL import Image

    img = Image.new("RGB", (40, 30), (120, 90, 60))
    exif = Image.Exif()
    exif[0x010E] = text.decode("latin-1")  # ImageDescription
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def png_with_text_chunk(keyword: bytes, text: bytes) -> bytes:
    data = png_bytes()
    body = keyword + b"\0" + text
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    iend = data.rfind(b"\0\0\0\0IEND")
    return data[:iend] + chunk + data[iend:]


def webp_bytes() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (24, 24), (50, 60, 200)).save(out, "WEBP")
    return out.getvalue()


# The five shapes of issue 18 item 9 (accepted and served back byte for byte before).

def jpeg_with_icc_markup(markup: bytes = b"<html><script>alert(1)</script></html>") -> bytes:
    """HTML in an APP2 segment labelled as an ICC profile (ICC segments were not scanned)."""
    body = b"ICC_PROFILE\0\x01\x01" + markup
    data = jpeg_bytes()
    return data[:2] + b"\xff\xe2" + struct.pack(">H", len(body) + 2) + body + data[2:]


def jpeg_with_fake_jpeg_appended() -> bytes:
    """A second "JPEG" after the first: a scan header, then HTML where its coded data would be."""
    return jpeg_bytes() + b"\xff\xd8\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + \
        b"<html><body onload=alert(1)></body></html>\xff\xd9"


def jpeg_with_padded_html(padding: int = 1024 * 1024 + 16) -> bytes:
    """1 MiB of padding after the image, then HTML (only the first MiB of a trailer was scanned)."""
    return jpeg_bytes() + b"\0" * padding + b"<html><script>alert(1)</script></html>"


def png_with_markup_pixels(markup: bytes = b"<script>alert(1)</script>") -> bytes:
    """A PNG whose pixel data is stored uncompressed (deflate level 0), one row spelling out the markup."""
    width = len(markup)
    rows = b"".join(b"\0" + (markup if y == 3 else b"\x80" * width) for y in range(8))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, 8, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows, 0)) + chunk(b"IEND", b"")


def webp_with_chunk(kind: bytes = b"HTML", body: bytes = b"<html><script>alert(1)</script></html>") -> bytes:
    """A WebP with an extra chunk of a kind no decoder knows (only XMP and EXIF were scanned)."""
    data = webp_bytes()
    extra = kind + struct.pack("<I", len(body)) + body + (b"\0" if len(body) & 1 else b"")
    payload = data[8:] + extra
    return b"RIFF" + struct.pack("<I", len(payload)) + payload


def png_bomb_header(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG whose header declares 10^10 pixels (the data is tiny)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


# --- archives -----------------------------------------------------------------------------------------------------

COCO = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "tattoo"}]}


def zip_of(entries: list[tuple[str, bytes]], compression=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = compression
            zf.writestr(info, data)
    return out.getvalue()


def zip_with_symlink() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("annotations.json", json.dumps(COCO))
        link = zipfile.ZipInfo("images", date_time=(2020, 1, 1, 0, 0, 0))
        link.create_system = 3
        link.external_attr = 0o120777 << 16
        zf.writestr(link, "/etc")
    return out.getvalue()


def zip_encrypted_flag() -> bytes:
    data = bytearray(zip_of([("annotations.json", json.dumps(COCO).encode())]))
    central = data.find(b"PK\x01\x02")
    data[central + 8] |= 0x01  # general purpose flag: encrypted
    return bytes(data)


def zip_bomb() -> bytes:
    return zip_of([("annotations.json", json.dumps(COCO).encode()), ("images/big.jpg", b"\0" * (4 * 1024 * 1024))])


def zip_many(count: int) -> bytes:
    return zip_of([(f"images/{i}.txt", b"x") for i in range(count)])


def raw_zip_with_name(name: str) -> bytes:
    """zipfile normalises some names on write; patch the bytes so the archive carries `name` exactly."""
    placeholder = "p" * len(name.encode())
    data = zip_of([(placeholder, b"{}")], compression=zipfile.ZIP_STORED)
    return data.replace(placeholder.encode(), name.encode())


# --- model checkpoints --------------------------------------------------------------------------------------------

class Payload:
    """Unpickling this runs `open(marker, 'w')`: the proof that a loader executed attacker code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def pickle_payload(marker: Path) -> bytes:
    return pickle.dumps({"state_dict": Payload(marker)}, protocol=2)


def torch_zip_payload(marker: Path) -> bytes:
    """A torch.save-style zip checkpoint whose data.pkl carries the payload."""
    return zip_of([("archive/data.pkl", pickle_payload(marker)), ("archive/version", b"3\n")],
                  compression=zipfile.ZIP_STORED)


def protocol0_payload(marker: Path) -> bytes:
    return pickle.dumps(Payload(marker), protocol=0)
