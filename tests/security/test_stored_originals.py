"""Issue 18 item 9: uploaded originals carry no foreign bytes into storage or exports (backend/media/sanitize.py): the five
polyglot shapes are valid images (refused: test_bad_inputs.py), and harmless metadata and trailers are stripped
losslessly before the original is stored."""
from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

from backend.media.imaging import decode_image
from backend.media.sanitize import strip_foreign

from ..support import hostile
from ..support.world import jpeg_bytes, png_bytes

FIVE_SHAPES = [hostile.jpeg_with_icc_markup, hostile.jpeg_with_fake_jpeg_appended, hostile.jpeg_with_padded_html,
               hostile.png_with_markup_pixels, hostile.webp_with_chunk]


@pytest.mark.parametrize("build", FIVE_SHAPES, ids=lambda f: f.__name__)
def test_the_five_shapes_are_valid_images(build):
    with Image.open(io.BytesIO(build())) as img:
        img.load()  # what made them dangerous: a decoder accepts them


def _segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


def _oriented_jpeg() -> bytes:
    img = Image.new("RGB", (40, 20), (200, 100, 50))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: upright it is 20 x 40
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes(), quality=90)
    return out.getvalue()


def test_jpeg_keeps_pixels_and_orientation_drops_the_rest():
    original = _oriented_jpeg()
    noisy = (original[:2] + _segment(0xFE, b"shot on a phone") + _segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0x")
             + _segment(0xEB, b"private") + original[2:] + b"\xff\xd8 trailing preview" + b"\0" * 500)
    clean = strip_foreign(noisy, "jpeg")
    assert clean == original  # exactly what a clean encoder wrote: pixels, tables, EXIF
    assert decode_image(clean, None).width == 20  # the orientation survived
    assert strip_foreign(original, "jpeg") == original  # a clean file is not touched


def test_progressive_jpeg_keeps_every_scan():
    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(
        out, "JPEG", progressive=True, quality=80)
    data = out.getvalue()
    assert strip_foreign(data + b"junk", "jpeg") == data
    assert np.array_equal(np.asarray(decode_image(strip_foreign(data, "jpeg"), None).image),
                          np.asarray(decode_image(data, None).image))


def test_png_and_webp_lose_text_and_unknown_chunks():
    text = hostile.png_with_text_chunk(b"Comment", b"just a note") + b"trailer"
    assert strip_foreign(text, "png") == png_bytes()
    webp = hostile.webp_with_chunk(b"XTRA", b"harmless words") + b"after"
    clean = strip_foreign(webp, "webp")
    assert clean == hostile.webp_bytes()
    assert decode_image(clean, None).width == 24


def test_upload_stores_and_exports_the_stripped_original(app, make_client):
    annotator = make_client("annotator")
    noisy = jpeg_bytes()[:2] + _segment(0xFE, b"camera serial 1234") + jpeg_bytes()[2:] + b"\0" * 64 + b"tail"
    resp = annotator.upload([(noisy, "noisy.jpg")])
    assert resp.status_code == 201, resp.get_json()
    image_id = resp.get_json()["images"][0]["id"]
    served = annotator.get(f"/api/v1/images/{image_id}/file?size=original").get_data()
    assert served == jpeg_bytes()  # what is served (and exported: the same blob) is the picture only
    again = annotator.upload([(jpeg_bytes(), "clean.jpg")]).get_json()["images"][0]
    assert again["id"] == image_id  # the same picture is a duplicate, whatever metadata it came with
