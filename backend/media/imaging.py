"""Safe image decoding: a format allow-list sniffed from the bytes, a pixel limit checked before decoding, EXIF
orientation applied and every colour mode normalised to 8-bit RGB. No Flask here: the API, the CLI, the dataset
code and the ML code all decode through this module.

    decoded = decode_image(data, max_pixels=100_000_000)   # raises ImageRejected with a 4xx status and a message
    decoded.format, decoded.width, decoded.height, decoded.image   # "jpeg"|"png"|"webp", upright size, PIL RGB

Width, height and every geometry in the project refer to the EXIF-transposed ("upright") image.
"""
from __future__ import annotations

import io
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from backend import media as _media
from backend.media.decode_slots import DecodeBusy, DecodeSlots
from backend.media.upload_checks import find_markup

# format name (stored in Image.format) -> Pillow plugin name, file extension, MIME type
FORMATS = {
    "jpeg": ("JPEG", "jpg", "image/jpeg"),
    "png": ("PNG", "png", "image/png"),
    "webp": ("WEBP", "webp", "image/webp"),
}
ALLOWED = "JPEG, PNG or WebP"
log = logging.getLogger(__name__)

# Signatures of things people upload by mistake, for a clear message (they are refused either way).
_OTHER_SIGNATURES = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%PDF", "PDF"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"8BPS", "Photoshop PSD"),
)
_TEXT_PREFIX = re.compile(rb"^(?:\xef\xbb\xbf)?\s*", re.S)


class ImageRejected(Exception):
    """An input that is not an acceptable image. `status` is the HTTP status (4xx) the API answers with."""

    def __init__(self, code: str, message: str, status: int = 422):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def __repr__(self) -> str:
        return f"ImageRejected({self.code!r}, {self.message!r}, status={self.status})"


@dataclass
class Decoded:
    format: str  # jpeg | png | webp (sniffed from the content)
    width: int  # of the upright (EXIF-transposed) image
    height: int
    image: Image.Image  # RGB, upright, fully loaded

    @property
    def mime(self) -> str:
        return FORMATS[self.format][2]


def extension(fmt: str) -> str:
    return FORMATS[fmt][1]


def mime_type(fmt: str) -> str:
    return FORMATS[fmt][2]


def sniff_format(data: bytes) -> str:
    """The format from the first bytes (never from a file name or a client's Content-Type), or ImageRejected."""
    if not data:
        raise ImageRejected("empty_file", "The file is empty (0 bytes).", 400)
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    head = data[:512]
    for signature, name in _OTHER_SIGNATURES:
        if head.startswith(signature):
            raise ImageRejected("unsupported_format", f"{name} files are not accepted; upload {ALLOWED}.", 415)
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif", b"ftyphevc"):
        raise ImageRejected("unsupported_format", f"HEIC/AVIF files are not accepted; upload {ALLOWED}.", 415)
    text = _TEXT_PREFIX.sub(b"", head[:1024]).lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in data[:4096].lower()):
        raise ImageRejected(
            "unsupported_format", f"SVG (vector) images are not accepted: they can carry scripts; upload {ALLOWED}.", 415
        )
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script")):
        raise ImageRejected(
            "unsupported_format", f"This is an HTML document, not an image (whatever its name says); upload {ALLOWED}.", 415
        )
    if text.startswith((b"<", b"{", b"[")):
        raise ImageRejected("unsupported_format", f"This is a text document, not an image; upload {ALLOWED}.", 415)
    raise ImageRejected("unsupported_format", f"Not a recognised image; upload {ALLOWED}.", 415)


def _check_pixels(width: int, height: int, max_pixels: int | None) -> None:
    if width <= 0 or height <= 0:
        raise ImageRejected("corrupt_image", f"The image declares an empty size ({width}x{height}).", 422)
    if max_pixels is not None and width * height > max_pixels:
        raise ImageRejected(
            "too_many_pixels",
            f"The image is {width}x{height} = {width * height:,} pixels; the limit is {max_pixels:,} pixels.",
            413,
        )


# Peak bytes a decode holds per pixel, by the mode Pillow decodes into: the decoded source plus the RGB result
# (plus the alpha band on the way). 16-bit greyscale used to go through an int64 copy (10 bytes per pixel more).
DECODE_BYTES_PER_PIXEL = {"1": 4, "L": 4, "P": 8, "RGB": 3, "RGBA": 8, "LA": 6, "PA": 8, "CMYK": 7, "YCbCr": 6,
                          "I;16": 6, "I;16B": 6, "I;16L": 6, "I;16N": 6, "I": 8, "F": 8, "La": 6, "RGBa": 8,
                          "RGBX": 7, "LAB": 6, "HSV": 6}
MAX_DECODE_BYTES = 512 * 2**20  # per decode; set_decode_limits() changes it (config INKLABEL_MAX_DECODE_MB)
DECODE_SLOTS = DecodeSlots()


def set_decode_limits(max_mb: int, concurrent: int, slot_folder: str | os.PathLike | None = None) -> None:
    """The memory one decode may need and how many large decodes run at once (across processes when
    `slot_folder` is given: the app passes its workspace's tmp/)."""
    global MAX_DECODE_BYTES
    MAX_DECODE_BYTES = int(max_mb) * 2**20
    DECODE_SLOTS.configure(Path(slot_folder) / "decode-slots" if slot_folder else None, concurrent)


if _media.DECODE_LIMITS is not None:
    set_decode_limits(*_media.DECODE_LIMITS)


def _check_decode_memory(img: Image.Image) -> None:
    need = img.width * img.height * DECODE_BYTES_PER_PIXEL.get(img.mode, 8)
    if need > MAX_DECODE_BYTES:
        raise ImageRejected(
            "too_much_memory",
            f"Decoding this {img.width}x{img.height} {img.mode} image needs about {need / 2**20:,.0f} MB; the limit "
            f"is {MAX_DECODE_BYTES / 2**20:,.0f} MB. Save it as an 8-bit RGB JPEG or PNG, or scale it down.",
            413,
        )


def _raise_pillow_guard(max_pixels: int | None) -> None:
    """Pillow's own decompression-bomb guard (a warning above Image.MAX_IMAGE_PIXELS, an error above twice that)
    must not refuse or warn about images our configured limit allows: lift it to that limit, never lower it."""
    if max_pixels is not None and Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels


def _open(fp, fmt: str, max_pixels: int | None) -> Image.Image:
    """Open lazily (header only) and check the pixel limit before any pixel is decoded.

    Pillow's decompression-bomb error (raised inside Image.open) becomes the same rejection as our limit, which is
    checked here as an error, not a warning.
    """
    _raise_pillow_guard(max_pixels)
    try:
        img = Image.open(fp, formats=[FORMATS[fmt][0]])
    except Image.DecompressionBombError as err:
        limit = f"the limit is {max_pixels:,} pixels" if max_pixels else "over Pillow's safety limit"
        raise ImageRejected("too_many_pixels", f"The image declares too many pixels ({limit}): {err}", 413) from None
    except MemoryError:
        raise ImageRejected("too_many_pixels", "The image needs more memory to read than allowed.", 413) from None
    except Exception as err:  # untrusted bytes: any decoder failure means a bad file (UnidentifiedImageError, ...)
        raise ImageRejected("corrupt_image", f"The {fmt.upper()} file could not be read: {_reason(err)}", 422) from None
    _check_pixels(img.width, img.height, max_pixels)
    return img


def _reason(err: Exception) -> str:
    text = str(err) or type(err).__name__
    return text[:200]


BAND_ROWS = 512  # rows converted at a time: the intermediate arrays stay a few MB whatever the image size


def _bands_to_l(img: Image.Image, to_uint8) -> Image.Image:
    """An 8-bit greyscale copy of a one-channel image, `to_uint8(array)` applied band by band (no full-size
    intermediate array: a 10000 x 10000 16-bit PNG took 2.2 GB through one int64 copy)."""
    out = Image.new("L", img.size)
    for top in range(0, img.height, BAND_ROWS):
        box = (0, top, img.width, min(img.height, top + BAND_ROWS))
        out.paste(Image.fromarray(to_uint8(np.asarray(img.crop(box))), "L"), box)
    return out


def _sixteen_to_8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind == "u":  # I;16 / I;16B: the high byte
        return (arr >> 8).astype(np.uint8)
    return (np.clip(arr, 0, 65535) >> 8).astype(np.uint8)  # "I" (int32): older Pillow's 16-bit greyscale


def _float_to_8(arr: np.ndarray) -> np.ndarray:
    arr = np.nan_to_num(arr.astype(np.float32, copy=False), nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(arr, 0, 255).astype(np.uint8)


def _to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB from any mode: 16-bit scaled (not clipped), alpha composited on white, palettes expanded.
    Memory: the source plus the RGB result plus a band (see DECODE_BYTES_PER_PIXEL)."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I;16") or mode == "I":
        return _bands_to_l(img, _sixteen_to_8).convert("RGB")
    if mode == "F":
        return _bands_to_l(img, _float_to_8).convert("RGB")
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    elif mode in ("PA", "La", "RGBa"):
        img = img.convert("RGBA")
        mode = img.mode
    if mode in ("RGBA", "LA"):
        # On white: out = colour * alpha + white * (1 - alpha), written into the RGB result (no RGBA copies).
        out = Image.new("RGB", img.size, (255, 255, 255))
        out.paste(img.convert("RGB") if mode == "LA" else img, (0, 0), img.getchannel("A"))
        return out
    if mode == "1":
        img = img.convert("L")
    return img.convert("RGB")  # L, CMYK, YCbCr, LAB, HSV, RGBX


def _upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation. A photo whose EXIF block is broken is kept as stored rather than refused."""
    try:
        if img.getexif().get(0x0112, 1) in (1, None):
            return img  # upright already (exif_transpose would return a full copy)
        upright = ImageOps.exif_transpose(img)
    except Exception as err:  # malformed EXIF: the pixels are fine
        log.warning("ignoring unreadable EXIF orientation: %s", _reason(err))
        return img
    return img if upright is None else upright


def _finish(img: Image.Image, fmt: str, draft_side: int | None = None) -> Image.Image:
    """Decode every pixel (a truncated file is an error), apply the EXIF orientation, return upright RGB.

    Truncated data raises here because Pillow's ImageFile.LOAD_TRUNCATED_IMAGES is False (its default; nothing in
    this project may turn it on).
    """
    rgb = None
    try:
        if draft_side and fmt == "jpeg":
            img.draft("RGB", (draft_side, draft_side))  # JPEG DCT scaling: decode at 1/2..1/8 when enough
        _check_decode_memory(img)
        frames = getattr(img, "n_frames", 1)
        if frames > 1:
            img.seek(0)  # animated: the first frame
        with DECODE_SLOTS.slot(img.width * img.height):
            img.load()
            rgb = _to_rgb(_upright(img))
            if rgb is img and frames > 1:
                rgb = img.copy()  # let the file go (a single frame's is closed by load())
            rgb.load()
    except ImageRejected:
        raise
    except DecodeBusy as err:
        raise ImageRejected("busy", f"The server is decoding other large images ({err}); try again in a minute.",
                            429) from None
    except Image.DecompressionBombError as err:
        raise ImageRejected("too_many_pixels", f"The image has too many pixels: {err}", 413) from None
    except MemoryError:
        raise ImageRejected("too_many_pixels", "The image needs more memory to decode than allowed.", 413) from None
    except Exception as err:  # untrusted bytes: any decoder failure means a bad file
        reason = _reason(err)
        if "truncated" in reason.lower():
            raise ImageRejected("truncated_image", f"The {fmt.upper()} file is truncated (incomplete upload?).",
                                422) from None
        raise ImageRejected("corrupt_image", f"The {fmt.upper()} file could not be decoded: {reason}", 422) from None
    finally:
        if rgb is not img:
            img.close()
    return rgb


def refuse_polyglot(data: bytes, fmt: str) -> None:
    """ImageRejected 415 when the file also carries markup: a polyglot, a valid image that also carries
    HTML/SVG/script (backend/media/upload_checks.py)."""
    marker = find_markup(data, fmt)
    if marker is not None:
        raise ImageRejected("polyglot", f"The {fmt.upper()} file also carries markup ({marker!r}) in its metadata, "
                            "its pixel data or after the image; such polyglot files are refused.", 415)


def decode_image(data: bytes, max_pixels: int | None, check_markup: bool = True) -> Decoded:
    """Check and fully decode uploaded bytes, or raise ImageRejected (4xx status, code, message).

    Order matters: the format is sniffed from the content, then only the header is parsed and the pixel count
    checked, and only then are the pixels decoded (truncated data is an error, never padded with grey).
    `check_markup` False: the caller ran `refuse_polyglot` on these bytes already.
    """
    fmt = sniff_format(data)
    img = _open(io.BytesIO(data), fmt, max_pixels)
    rgb = _finish(img, fmt)
    if check_markup:
        refuse_polyglot(data, fmt)
    return Decoded(format=fmt, width=rgb.width, height=rgb.height, image=rgb)


def load_rgb(path: str | os.PathLike, max_pixels: int | None = None, max_side: int | None = None) -> Image.Image:
    """An image file as upright RGB (for ML, exports and derivatives). Raises ImageRejected on bad files.

    `max_side` lets JPEG decode at a reduced scale first (the result is at least that large on its long side
    when the image is; call `resize_to_max_side` for the exact size).
    """
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(4096)
    fmt = sniff_format(head)
    img = _open(path, fmt, max_pixels)
    return _finish(img, fmt, draft_side=max_side)


def resize_to_max_side(img: Image.Image, max_side: int) -> Image.Image:
    """A copy whose long side is at most `max_side` (aspect kept; never enlarged)."""
    if max_side <= 0:
        raise ValueError("max_side must be positive")
    width, height = img.size
    long_side = max(width, height)
    if long_side <= max_side:
        return img.copy()
    scale = max_side / long_side
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def encode_jpeg(img: Image.Image, quality: int = 88) -> bytes:
    """JPEG bytes of an RGB image (no EXIF: the pixels are already upright)."""
    if img.mode != "RGB":
        img = _to_rgb(img)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality, optimize=True, progressive=img.width * img.height > 512 * 512)
    return out.getvalue()

