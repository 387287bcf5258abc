"""Archive safety (refusals before extraction) and the deterministic export zip writer."""
import hashlib
import os
import stat
import zipfile

import pytest

from backend.datasets.archive import (
    ArchiveLimits,
    ArchiveRefused,
    ZipOut,
    extract_zip,
    inspect_zip,
    safe_relative_name,
)

from ..support.datasets import make_zip


def _refusal(path, limits=None) -> ArchiveRefused:
    with pytest.raises(ArchiveRefused) as info:
        inspect_zip(path, limits)
    return info.value


@pytest.mark.parametrize("name, code", [
    ("../evil.txt", "path_traversal"),
    ("a/../../evil.txt", "path_traversal"),
    ("images/..\\..\\evil.txt", "path_traversal"),
    ("/etc/passwd", "absolute_path"),
    ("\\\\server\\share\\x.jpg", "absolute_path"),
    ("C:\\Windows\\x.jpg", "absolute_path"),
    ("c:/x.jpg", "absolute_path"),
    ("line\nbreak.jpg", "bad_name"),
])
def test_dangerous_names_are_refused_before_extraction(tmp_path, name, code):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.txt", b"fine")
        zf.writestr(zipfile.ZipInfo(name), b"payload")
    err = _refusal(archive)
    assert err.code == code
    assert err.details["entry"] == name
    dest = tmp_path / "out"
    with pytest.raises(ArchiveRefused):
        extract_zip(archive, dest)
    # Nothing at all was extracted, not even the harmless entry before the bad one.
    assert not dest.exists() or not any(dest.rglob("*"))
    assert not (tmp_path / "evil.txt").exists()


def test_symlink_entries_are_refused(tmp_path):
    archive = tmp_path / "link.zip"
    info = zipfile.ZipInfo("images/link.jpg")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(info, "/etc/passwd")
    assert _refusal(archive).code == "symlink"


def test_too_many_entries(tmp_path):
    archive = make_zip(tmp_path / "many.zip", {f"f{i}.txt": b"x" for i in range(11)})
    err = _refusal(archive, ArchiveLimits(max_entries=10))
    assert err.code == "too_many_entries" and err.details == {"entries": 11, "limit": 10}
    assert len(inspect_zip(archive, ArchiveLimits(max_entries=11))) == 11


def test_zip_bomb_ratio_is_refused(tmp_path):
    archive = make_zip(tmp_path / "bomb.zip", {"zeros.bin": bytes(8 * 1024 * 1024)})
    err = _refusal(archive)
    assert err.code == "compression_ratio" and err.details["ratio"] > 100


def test_many_entries_just_under_the_entry_ratio_are_refused_together(tmp_path):
    """Issue 18 item 11: each entry below the per-entry ratio check; the archive as a whole a zip bomb."""
    entries = {f"part{i}.json": bytes(1024 * 1024 - 1) for i in range(8)}
    archive = make_zip(tmp_path / "spread.zip", entries)
    err = _refusal(archive, ArchiveLimits(archive_ratio_floor=4 * 1024 * 1024))
    assert err.code == "compression_ratio" and err.details["archive_bytes"] == archive.stat().st_size
    photos = make_zip(tmp_path / "photos.zip", {f"p{i}.jpg": os.urandom(1024 * 1024) for i in range(8)})
    assert len(inspect_zip(photos, ArchiveLimits(archive_ratio_floor=4 * 1024 * 1024))) == 8  # within 20x


def test_total_and_entry_size_limits(tmp_path):
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.bin", bytes(3000))
        zf.writestr("b.bin", bytes(3000))
    assert _refusal(archive, ArchiveLimits(max_total_bytes=5000)).code == "too_large"
    assert _refusal(archive, ArchiveLimits(max_entry_bytes=2000)).code == "entry_too_large"


def test_encrypted_entries_are_refused(tmp_path):
    archive = make_zip(tmp_path / "enc.zip", {"secret.txt": b"data"})
    raw = bytearray(archive.read_bytes())
    central = raw.index(b"PK\x01\x02")
    raw[central + 8] |= 0x1  # general purpose flag bit 0: encrypted
    archive.write_bytes(bytes(raw))
    assert _refusal(archive).code == "encrypted"


def test_duplicate_names_are_refused(tmp_path):
    archive = tmp_path / "dup.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("Images/a.jpg", b"1")
        zf.writestr("images/A.jpg", b"2")
    assert _refusal(archive).code == "duplicate_entry"


def test_not_a_zip(tmp_path):
    path = tmp_path / "x.zip"
    path.write_bytes(b"this is not an archive")
    assert _refusal(path).code == "bad_archive"


def test_extract_writes_only_inside(tmp_path):
    archive = make_zip(tmp_path / "ok.zip", {"a/b.txt": b"hello", "./c.txt": b"c", "d/": b""})
    dest = extract_zip(archive, tmp_path / "out")
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert files == ["a/b.txt", "c.txt"]
    assert (dest / "a" / "b.txt").read_bytes() == b"hello"


def test_safe_relative_name():
    assert str(safe_relative_name("a/./b//c.jpg")) == "a/b/c.jpg"
    assert str(safe_relative_name("a\\b.jpg")) == "a/b.jpg"
    with pytest.raises(ArchiveRefused):
        safe_relative_name("")


def _write_export(path):
    out = ZipOut(path)
    out.write_bytes("images/train/a.jpg", b"\xff\xd8jpeg")
    out.write_bytes("coco/train.json", b'{"images": []}')
    out.write_chunks("big.csv", (b"row,%d\n" % i for i in range(1000)))
    entries = list(out.entries())
    out.close()
    return entries


def test_zipout_is_deterministic_and_records_hashes(tmp_path):
    first = _write_export(tmp_path / "1.zip")
    second = _write_export(tmp_path / "2.zip")
    assert (tmp_path / "1.zip").read_bytes() == (tmp_path / "2.zip").read_bytes()
    assert first == second
    with zipfile.ZipFile(tmp_path / "1.zip") as zf:
        for name, digest, size in first:
            data = zf.read(name)
            assert hashlib.sha256(data).hexdigest() == digest and len(data) == size
        assert zf.getinfo("images/train/a.jpg").compress_type == zipfile.ZIP_STORED
        assert zf.getinfo("big.csv").compress_type == zipfile.ZIP_DEFLATED
        assert zf.getinfo("coco/train.json").date_time == (1980, 1, 1, 0, 0, 0)


def test_zipout_refuses_unsafe_and_duplicate_names(tmp_path):
    out = ZipOut(tmp_path / "x.zip")
    with pytest.raises(ArchiveRefused):
        out.write_bytes("../x", b"")
    out.write_bytes("a.txt", b"")
    with pytest.raises(ValueError):
        out.write_bytes("a.txt", b"")
    out.abort()
    assert not (tmp_path / "x.zip").exists()
