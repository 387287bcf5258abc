"""Content checks for hostile uploads: `find_markup` finds a polyglot (an image that a browser, a careless proxy or
viewer could also run as HTML, SVG or script). backend/media/imaging.py calls it on every upload, before decoding;
backend/media/sanitize.py then drops the bytes it scanned that the decoder does not need.
"""
from __future__ import annotations

import re

# Markup that makes a file a polyglot: an image that a browser (or a careless proxy or viewer) could also run as
# HTML, SVG or script. A tag name must be followed by a delimiter so that short byte runs rarely match by chance.
# Matched on lower-cased bytes.
_MARKUP = re.compile(
    rb"<\s*(?:script|html|body|head|iframe|frame|object|embed|svg|math|meta|link|style|form|base|img)[\s>/]"
    rb"|<!doctype\s+html|javascript\s*:|\bon(?:error|load|click|mouseover|focus)\s*=|<\?php",
)
# Every match starts at "<" followed by one of a few characters, at "javascript" or at "on". A pattern with a
# literal first character is searched at C speed, and bytes.find finds the words, so only those positions go
# through the full expression (which, tried at every byte, took 65 ms a MB; this takes ~5-10).
_CANDIDATE = re.compile(rb"<[\s!?sbhifoeml]")
_SPAN = 128  # the longest match looked for (whitespace runs included)


def _first(data: bytes) -> str | None:
    low = data.lower()
    starts = [m.start() for m in _CANDIDATE.finditer(low)]
    for word in (b"javascript", b"on"):
        at = low.find(word)
        while at >= 0:
            starts.append(at)
            at = low.find(word, at + 1)
    for at in sorted(starts):
        match = _MARKUP.match(low, at, at + _SPAN)
        if match:
            return data[match.start():match.end()][:40].decode("latin-1")
    return None


def _jpeg_parts(data: bytes) -> tuple[list[bytes], bytes]:
    """(header segments: COM and every APPn, ICC profiles included (EXIF up to its embedded thumbnail), the bytes
    after the image's EOI, or from where the segment structure breaks). Quantisation and Huffman tables and the
    entropy-coded pixel data are not text."""
    texts, i, n = [], 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return texts, data[i:]  # not a segment: whatever this is, it is scanned as a trailer
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        body = data[i + 4:i + 2 + length]
        if marker == 0xDA:  # start of scan: entropy-coded data follows until the EOI marker
            eoi = data.find(b"\xff\xd9", i)
            return texts, data[eoi + 2:] if eoi >= 0 else b""
        if body.startswith(b"Exif\0"):
            thumb = body.find(b"\xff\xd8")
            texts.append(body if thumb < 0 else body[:thumb])
        elif marker == 0xFE or 0xE0 <= marker <= 0xEF:
            texts.append(body)
        i += 2 + length
    return texts, data[i:]


def _png_parts(data: bytes) -> tuple[list[bytes], bytes]:
    """(every chunk, pixel data included: a PNG whose pixels are stored uncompressed carries them as plain bytes,
    and markup there would be served verbatim; bytes after IEND)."""
    texts, i, n = [], 8, len(data)
    while i + 12 <= n:
        length = int.from_bytes(data[i:i + 4], "big")
        kind = data[i + 4:i + 8]
        if kind == b"IEND":
            return texts, data[i + 12 + length:]
        texts.append(data[i + 8:i + 8 + length])
        i += 12 + length
    return texts, data[i:]


def _webp_parts(data: bytes) -> tuple[list[bytes], bytes]:
    """(every chunk but the coded bitstreams: XMP, EXIF, ICC and unknown chunks; bytes after the RIFF container)."""
    texts, n = [], len(data)
    end = min(n, int.from_bytes(data[4:8], "little") + 8)
    i = 12
    while i + 8 <= end:
        kind, length = data[i:i + 4], int.from_bytes(data[i + 4:i + 8], "little")
        if kind not in (b"VP8 ", b"VP8L", b"ALPH", b"ANMF"):
            texts.append(data[i + 8:i + 8 + length])
        i += 8 + length + (length & 1)
    return texts, data[end:]


def find_markup(data: bytes, fmt: str) -> str | None:
    """The first HTML/SVG/script marker found where a polyglot hides it, or None.

    Scanned: the metadata that can carry text (JPEG comments and every APPn segment, ICC profiles included; PNG
    chunks, pixel data included; WebP chunks other than the coded bitstreams) and ALL that follows the image's end
    (appended HTML, padding then HTML, a second "JPEG" appended). A JPEG's or WebP's coded pixel data is not
    scanned: random bytes match one of the short patterns about once in 10 MB (see docs/security.md). The bytes
    scanned here and not needed by the decoder are then dropped before storage (backend/media/sanitize.py).
    """
    parts = {"jpeg": _jpeg_parts, "png": _png_parts, "webp": _webp_parts}.get(fmt)
    if parts is None:
        return None
    texts, trailer = parts(data)
    for text in texts:
        found = _first(text)
        if found:
            return found
    return _first(trailer)
