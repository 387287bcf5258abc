"""Safe decoding (backend.media.imaging), the blob store (backend.media.storage) and display names (backend.core.ingest)."""
from __future__ import annotations

import hashlib
import io
import threading
import time

import pytest
from PIL import Image

from backend.media.imaging import (
    ImageRejected,
    decode_image,
    encode_jpeg,
    load_rgb,
    resize_to_max_side,
    sniff_format,
)
from backend.core.ingest import display_name
from backend.media.storage import BlobStore

from ..support.images import (HTML, SVG, animated, cmyk_jpeg, encode, exif_rotated_jpeg, palette_alpha_png,
                              png_header_only, sixteen_bit_png, two_tone)

LIMIT = 10_000_000


# --- sniffing -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("data, code, status, words", [
    (b"", "empty_file", 400, "empty"),
    (HTML, "unsupported_format", 415, "HTML"),
    (b"\xef\xbb\xbf  \n<html><p>hi", "unsupported_format", 415, "HTML"),
    (SVG, "unsupported_format", 415, "SVG"),
    (b"<svg width='1'/>", "unsupported_format", 415, "SVG"),
    (b"GIF89a" + b"\x00" * 20, "unsupported_format", 415, "GIF"),
    (b"BM" + b"\x00" * 40, "unsupported_format", 415, "BMP"),
    (b"II*\x00" + b"\x00" * 40, "unsupported_format", 415, "TIFF"),
    (b"%PDF-1.7", "unsupported_format", 415, "PDF"),
    (b'{"not": "an image"}', "unsupported_format", 415, "text"),
    (b"\x00\x01\x02\x03garbage", "unsupported_format", 415, "Not a recognised image"),
])
def test_refused_formats_have_clear_messages(data, code, status, words):
    with pytest.raises(ImageRejected) as info:
        decode_image(data, LIMIT)
    assert (info.value.code, info.value.status) == (code, status)
    assert words in info.value.message


def test_format_comes_from_content():
    assert sniff_format(encode(Image.new("RGB", (4, 4)), "PNG")) == "png"
    assert sniff_format(encode(Image.new("RGB", (4, 4)), "JPEG")) == "jpeg"
    assert sniff_format(encode(Image.new("RGB", (4, 4)), "WEBP")) == "webp"


# --- decoding -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_decode_allowed_formats(fmt):
    decoded = decode_image(encode(two_tone(30, 20), fmt, quality=95), LIMIT)
    assert decoded.format == fmt.lower()
    assert (decoded.width, decoded.height) == (30, 20) == decoded.image.size
    assert decoded.image.mode == "RGB"
    r, g, b = decoded.image.getpixel((2, 10))
    assert r > 200 and b < 60


def test_exif_orientation_is_applied():
    decoded = decode_image(exif_rotated_jpeg(80, 40), LIMIT)
    assert (decoded.width, decoded.height) == (40, 80)  # portrait once upright
    top, bottom = decoded.image.getpixel((20, 5)), decoded.image.getpixel((20, 75))
    assert top[0] > 200 and top[2] < 60, top  # red on top
    assert bottom[2] > 200 and bottom[0] < 60, bottom  # blue at the bottom


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize("exif", [b"Exif\x00\x00II*\x00\xff\xff\xff\x7f", b"Exif\x00\x00garbage"])
def test_broken_exif_keeps_the_photo(exif):
    decoded = decode_image(encode(two_tone(30, 20), "JPEG", exif=exif), LIMIT)
    assert (decoded.width, decoded.height) == (30, 20)


def test_cmyk_becomes_rgb():
    decoded = decode_image(cmyk_jpeg(), LIMIT)
    assert decoded.image.mode == "RGB"
    r, g, b = decoded.image.getpixel((12, 12))
    assert r > 200 and g < 60 and b < 60


def test_sixteen_bit_is_scaled_not_clipped():
    decoded = decode_image(sixteen_bit_png(), LIMIT)
    row = [decoded.image.getpixel((x, 0))[0] for x in range(4)]
    assert row == [0, 1, 128, 255]


def test_palette_with_transparency_composited_on_white():
    decoded = decode_image(palette_alpha_png(), LIMIT)
    assert decoded.image.getpixel((2, 2)) == (255, 0, 0)
    assert decoded.image.getpixel((12, 2)) == (255, 255, 255)


def test_la_and_rgba_composited_on_white():
    la = Image.new("LA", (8, 8), (0, 0))  # black, fully transparent
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 255))
    assert decode_image(encode(la, "PNG"), LIMIT).image.getpixel((1, 1)) == (255, 255, 255)
    assert decode_image(encode(rgba, "PNG"), LIMIT).image.getpixel((1, 1)) == (0, 0, 0)


@pytest.mark.parametrize("fmt", ["WEBP", "PNG"])
def test_animated_takes_first_frame(fmt):
    decoded = decode_image(animated(fmt), LIMIT)
    assert decoded.image.getpixel((5, 5))[0] > 200 and decoded.image.getpixel((5, 5))[2] < 60


def test_truncated_jpeg_refused():
    data = encode(Image.effect_noise((256, 256), 60).convert("RGB"), "JPEG", quality=90)
    with pytest.raises(ImageRejected) as info:
        decode_image(data[: len(data) // 2], LIMIT)
    assert info.value.code == "truncated_image" and info.value.status == 422


def test_truncated_png_refused():
    data = encode(Image.effect_noise((128, 128), 60).convert("RGB"), "PNG")
    with pytest.raises(ImageRejected) as info:
        decode_image(data[: len(data) // 2], LIMIT)
    assert info.value.status == 422


def test_garbage_after_valid_signature_refused():
    with pytest.raises(ImageRejected) as info:
        decode_image(b"\xff\xd8\xff" + b"\x13" * 100, LIMIT)
    assert info.value.code == "corrupt_image" and info.value.status == 422


def test_pixel_bomb_refused_from_header_before_decoding():
    data = png_header_only(50_000, 50_000)
    started = time.perf_counter()
    with pytest.raises(ImageRejected) as info:
        decode_image(data, 100_000_000)
    assert time.perf_counter() - started < 0.5
    assert info.value.code == "too_many_pixels" and info.value.status == 413
    assert "100,000,000 pixels" in info.value.message


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow warns; we refuse
def test_pixel_limit_names_the_size_when_within_pillows_guard():
    with pytest.raises(ImageRejected) as info:
        decode_image(png_header_only(12_000, 10_000), 100_000_000)
    assert info.value.code == "too_many_pixels" and "12000x10000" in info.value.message


def test_pixel_limit_is_an_error_below_pillows_own_guard():
    data = encode(Image.new("RGB", (200, 100)), "PNG")
    with pytest.raises(ImageRejected) as info:
        decode_image(data, 19_999)
    assert info.value.code == "too_many_pixels"
    assert decode_image(data, 20_000).width == 200


# --- helpers --------------------------------------------------------------------------------------------------------

def test_resize_to_max_side_keeps_aspect_and_never_enlarges():
    assert resize_to_max_side(Image.new("RGB", (3000, 1000)), 2048).size == (2048, 683)
    assert resize_to_max_side(Image.new("RGB", (100, 300)), 256).size == (85, 256)
    small = Image.new("RGB", (50, 40))
    assert resize_to_max_side(small, 256).size == (50, 40)


def test_encode_jpeg_round_trip():
    data = encode_jpeg(two_tone(64, 32), 90)
    assert data[:3] == b"\xff\xd8\xff"
    assert Image.open(io.BytesIO(data)).size == (64, 32)


def test_load_rgb_applies_exif(tmp_path):
    path = tmp_path / "rotated.jpg"
    path.write_bytes(exif_rotated_jpeg(80, 40))
    img = load_rgb(path)
    assert img.size == (40, 80) and img.mode == "RGB"


@pytest.mark.parametrize("raw, shown", [
    ("../../etc/passwd.jpg", "passwd.jpg"),
    ("C:\\Users\\me\\Desktop\\ink.png", "ink.png"),
    ("bad\x00na\x1bme\u202e.jpg", "badname.jpg"),
    ("..", ""),
    ("", ""),
    (None, ""),
    ("x" * 400 + ".jpg", "x" * 255),
    ("  tattoo  .webp ", "tattoo  .webp"),
])
def test_display_name(raw, shown):
    assert display_name(raw) == shown


# --- blob store -----------------------------------------------------------------------------------------------------

def test_blob_store_layout_and_checks(tmp_path):
    store = BlobStore(tmp_path)
    data = encode(two_tone(40, 20), "PNG")
    sha = hashlib.sha256(data).hexdigest()
    path = store.put_original(sha, data, "png")
    assert path == tmp_path.resolve() / "blobs" / sha[:2] / sha[2:4] / f"{sha}.png"
    assert path.read_bytes() == data
    assert store.put_original(sha, data, "png") == path  # idempotent
    with pytest.raises(ValueError):
        store.put_original("0" * 64, data, "png")  # wrong hash
    for bad in ("../../etc/passwd", "A" * 64, sha[:63]):
        with pytest.raises(ValueError):
            store.original_path(bad, "png")
    with pytest.raises(ValueError):
        store.original_path(sha, "gif")


def test_derivatives_made_once_upright_and_bounded(tmp_path):
    store = BlobStore(tmp_path, display_max_side=64, thumb_max_side=16)
    data = exif_rotated_jpeg(200, 100)
    sha = hashlib.sha256(data).hexdigest()
    store.put_original(sha, data, "jpeg")
    display = store.derivative_path(sha, "jpeg", "display")
    thumb = store.derivative_path(sha, "jpeg", "thumb")
    assert display.name == f"{sha}.display64.jpg" and thumb.name == f"{sha}.thumb16.jpg"
    assert Image.open(display).size == (32, 64)
    assert Image.open(thumb).size == (8, 16)
    upright = Image.open(display).convert("RGB")
    assert upright.getpixel((16, 4))[0] > 200 and upright.getpixel((16, 60))[2] > 200
    mtime = display.stat().st_mtime_ns
    assert store.derivative_path(sha, "jpeg", "display").stat().st_mtime_ns == mtime  # cached, not remade
    with pytest.raises(ValueError):
        store.derivative_path(sha, "jpeg", "huge")


def test_derivative_under_concurrent_requests(tmp_path):
    store = BlobStore(tmp_path, display_max_side=300)
    data = encode(Image.effect_noise((800, 600), 40).convert("RGB"), "JPEG")
    sha = hashlib.sha256(data).hexdigest()
    store.put_original(sha, data, "jpeg")
    results, errors = [], []

    def fetch():
        try:
            results.append(store.derivative_path(sha, "jpeg", "display"))
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1
    assert Image.open(results[0]).size == (300, 225)
    leftovers = [p.name for p in results[0].parent.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers == []
