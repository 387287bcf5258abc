"""Lossless stripping of everything but the picture from uploaded originals, before they are stored.

An upload is stored (and later exported) as these bytes, not as it came: segments, chunks and trailers that do
not describe pixels are dropped; the coded pixel data is copied bit for bit (no re-encoding, no quality loss).
What stays: what a decoder needs, the colour profile and the EXIF block (its orientation defines the upright
image every geometry refers to). backend.media.upload_checks.find_markup has checked the upload (all of it) before.

- JPEG: SOI, APP0 JFIF, APP1 Exif (the first), APP2 ICC_PROFILE, APP14 Adobe (colour transform of CMYK/YCCK),
  quantisation/Huffman/arithmetic tables, frame and scan headers with their entropy-coded data (every scan of a
  progressive file), restart intervals, EOI. Dropped: comments, XMP and every other APPn (MPF previews
  included), and anything after EOI.
- PNG: IHDR, PLTE, tRNS, IDAT, IEND and the colour chunks gAMA, cHRM, sRGB, iCCP, sBIT, plus pHYs and eXIf.
  Dropped: text chunks (tEXt, zTXt, iTXt), animation chunks (the default image is kept), private chunks, trailer.
- WebP: the bitstream chunks (VP8, VP8L, ALPH, ANIM, ANMF), VP8X, ICCP and EXIF; dropped: XMP, unknown chunks
  and bytes after the RIFF container (the VP8X flags and the RIFF size are rewritten to match).
A file already clean comes back unchanged (same bytes, same sha256). Structures this parser does not understand
are left as the decoder accepted them (the decode that follows is the authority on validity).
"""
from __future__ import annotations

import struct

_JPEG_KEEP_APP = {0xE0: b"JFIF\0", 0xE1: b"Exif\0", 0xE2: b"ICC_PROFILE\0", 0xEE: b"Adobe"}
_PNG_KEEP = {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"pHYs",
             b"eXIf"}
_WEBP_KEEP = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF", b"ICCP", b"EXIF"}
_VP8X_XMP_FLAG = 0x04


def _entropy_end(data: bytes, start: int) -> int:
    """Where the entropy-coded data that starts at `start` ends: the next marker other than a stuffed 0xFF00 or a
    restart marker (RST0-7)."""
    i, n = start, len(data)
    while True:
        i = data.find(b"\xff", i)
        if i < 0 or i + 1 >= n:
            return n
        nxt = data[i + 1]
        if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
            i += 1 if nxt == 0xFF else 2
            continue
        return i


def strip_jpeg(data: bytes) -> bytes:
    out, i, n, exif_seen = [b"\xff\xd8"], 2, len(data), False
    while i + 4 <= n:
        if data[i] != 0xFF:
            return data  # not a structure we understand: leave it to the decoder
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xD9:  # EOI: the image ends here, whatever follows goes
            out.append(b"\xff\xd9")
            return b"".join(out)
        if marker in (0x01,) or 0xD0 <= marker <= 0xD7:
            out.append(data[i:i + 2])
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        end = i + 2 + length
        if length < 2 or end > n:
            return data
        body = data[i + 4:end]
        if marker == 0xDA:  # start of scan: header, then entropy-coded data up to the next marker
            end = _entropy_end(data, end)
            out.append(data[i:end])
        elif 0xE0 <= marker <= 0xEF:
            prefix = _JPEG_KEEP_APP.get(marker)
            keep = prefix is not None and body.startswith(prefix)
            if marker == 0xE1 and keep:
                keep, exif_seen = not exif_seen, True
            if keep:
                out.append(data[i:end])
        elif marker != 0xFE:  # tables, frame headers, DRI, DNL...: keep; COM: drop
            out.append(data[i:end])
        i = end
    return data  # no EOI: truncated; the decoder refuses it


def strip_png(data: bytes) -> bytes:
    out, i, n = [data[:8]], 8, len(data)
    while i + 12 <= n:
        length = int.from_bytes(data[i:i + 4], "big")
        kind = data[i + 4:i + 8]
        end = i + 12 + length
        if end > n:
            return data
        if kind in _PNG_KEEP:
            out.append(data[i:end])
        if kind == b"IEND":
            return b"".join(out)
        i = end
    return data


def strip_webp(data: bytes) -> bytes:
    end = min(len(data), int.from_bytes(data[4:8], "little") + 8)
    chunks, i = [], 12
    while i + 8 <= end:
        kind, length = data[i:i + 4], int.from_bytes(data[i + 4:i + 8], "little")
        stop = i + 8 + length + (length & 1)
        if stop > end + (length & 1):
            return data
        if kind in _WEBP_KEEP:
            chunk = data[i:min(stop, end)]
            if kind == b"VP8X" and length >= 4:
                chunk = chunk[:8] + bytes([chunk[8] & ~_VP8X_XMP_FLAG & 0xFF]) + chunk[9:]
            chunks.append(chunk)
        i = stop
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def strip_foreign(data: bytes, fmt: str) -> bytes:
    """The upload with its non-pixel segments and trailers removed (see the module docstring)."""
    strip = {"jpeg": strip_jpeg, "png": strip_png, "webp": strip_webp}.get(fmt)
    return strip(data) if strip is not None else data
