"""Zip archives in and out: refusing dangerous archives before anything is extracted, and writing exports.

Reading (imports). `inspect_zip` looks only at the central directory and refuses, with a clear `ArchiveRefused`,
before a single byte is extracted:

- absolute names (`/etc/x`, `C:\\x`, `\\\\server\\x`) and names with a `..` component (zip slip),
- symbolic links (a link can point anywhere; the entries after it would then be written through it),
- encrypted entries, names with control characters, two entries that land on the same file,
- more entries than `max_entries`, more than `max_total_bytes` once extracted, any entry larger than
  `max_entry_bytes`, entries that expand more than `max_ratio` times (zip bombs), and archives that expand more
  than `max_archive_ratio` times their own size in all (many entries each just under the entry ratio: a 12.9 MB
  zip filled the temporary folder with 965 MB), beyond a floor of `archive_ratio_floor` bytes.

`extract_zip` then writes only the checked entries under the destination, counting bytes as it goes (zipfile stops
at the declared size and checks the CRC, so a lying header cannot write more than was checked).

Writing (exports). `ZipOut` writes entries one at a time (constant memory: each entry is handed over and
forgotten), with fixed timestamps and permissions so that the same content gives the same entries, and records the
sha256 and size of every entry in a temporary file for the manifest.
"""
from __future__ import annotations

import hashlib
import os
import re
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Iterable, Iterator

# Entries are dated 1980-01-01 (the zip epoch) so that two exports of the same data are identical entry by entry.
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
STORED_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")  # already compressed: deflating them costs time for nothing
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


class ArchiveRefused(Exception):
    """An archive (or a file name inside a dataset) that is refused, with a stable `code` for the API."""

    def __init__(self, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


@dataclass(frozen=True)
class ArchiveLimits:
    max_entries: int = 100_000
    max_total_bytes: int = 20 * 1024**3
    max_entry_bytes: int = 1024**3
    max_ratio: float = 100.0  # uncompressed / compressed, checked for entries larger than ratio_min_bytes
    ratio_min_bytes: int = 1024 * 1024
    max_archive_ratio: float = 20.0  # all entries together / the archive's size (photos barely compress)
    archive_ratio_floor: int = 256 * 1024**2  # an archive may always expand to this much

    @classmethod
    def from_config(cls, config) -> "ArchiveLimits":
        """Limits from an app config (INKLABEL_* settings when the app defines them), defaults otherwise."""
        default = cls()
        return cls(
            max_entries=int(config.get("MAX_IMPORT_ENTRIES", default.max_entries)),
            max_total_bytes=int(config.get("MAX_IMPORT_BYTES", default.max_total_bytes)),
            max_entry_bytes=int(config.get("MAX_IMPORT_ENTRY_BYTES", default.max_entry_bytes)),
            max_ratio=float(config.get("MAX_IMPORT_RATIO", default.max_ratio)),
            max_archive_ratio=float(config.get("MAX_IMPORT_ARCHIVE_RATIO", default.max_archive_ratio)),
        )


def safe_relative_name(name: str, what: str = "entry") -> PurePosixPath:
    """A relative POSIX path without `..`, or ArchiveRefused. Backslashes count as separators (Windows zips)."""
    if not name or _CONTROL.search(name):
        raise ArchiveRefused("bad_name", f"The {what} name {name!r} is empty or has control characters.", {"entry": name})
    text = name.replace("\\", "/")
    if text.startswith("/") or _DRIVE.match(text):
        raise ArchiveRefused(
            "absolute_path", f"The {what} {name!r} has an absolute path; only relative names are accepted.", {"entry": name}
        )
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ArchiveRefused(
            "path_traversal", f"The {what} {name!r} climbs out of its folder with '..' (zip slip); refused.", {"entry": name}
        )
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return info.create_system == 3 and stat.S_ISLNK(mode)


def inspect_zip(path: str | os.PathLike, limits: ArchiveLimits | None = None) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """Check every entry of the archive before extraction. Returns the files (not folders) with their safe names."""
    limits = limits or ArchiveLimits()
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as err:
        raise ArchiveRefused("bad_archive", f"This is not a readable zip archive: {err}") from None
    if len(infos) > limits.max_entries:
        raise ArchiveRefused(
            "too_many_entries",
            f"The archive has {len(infos):,} entries; at most {limits.max_entries:,} are accepted.",
            {"entries": len(infos), "limit": limits.max_entries},
        )
    files: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
    seen: dict[str, str] = {}
    total = 0
    archive_size = os.path.getsize(path)
    expand_limit = max(limits.archive_ratio_floor, int(archive_size * limits.max_archive_ratio))
    for info in infos:
        name = safe_relative_name(info.filename)
        if _is_symlink(info):
            raise ArchiveRefused("symlink", f"The entry {info.filename!r} is a symbolic link; links are refused.",
                                 {"entry": info.filename})
        if info.flag_bits & 0x1:
            raise ArchiveRefused("encrypted", f"The entry {info.filename!r} is encrypted; encrypted archives are refused.",
                                 {"entry": info.filename})
        if info.is_dir():
            continue
        if str(name) == ".":
            raise ArchiveRefused("bad_name", f"The entry {info.filename!r} has no file name.", {"entry": info.filename})
        key = str(name).lower()  # case-insensitive file systems would merge these
        if key in seen:
            raise ArchiveRefused("duplicate_entry", f"The entries {seen[key]!r} and {info.filename!r} name the same file.",
                                 {"entry": info.filename})
        seen[key] = info.filename
        if info.file_size > limits.max_entry_bytes:
            raise ArchiveRefused(
                "entry_too_large",
                f"The entry {info.filename!r} expands to {info.file_size:,} bytes; the limit is {limits.max_entry_bytes:,}.",
                {"entry": info.filename, "size": info.file_size},
            )
        if info.file_size > limits.ratio_min_bytes:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.max_ratio:
                raise ArchiveRefused(
                    "compression_ratio",
                    f"The entry {info.filename!r} expands {ratio:,.0f} times (limit {limits.max_ratio:g}); "
                    "this looks like a zip bomb.",
                    {"entry": info.filename, "ratio": round(ratio, 1)},
                )
        total += info.file_size
        if total > limits.max_total_bytes:
            raise ArchiveRefused(
                "too_large",
                f"The archive expands to more than {limits.max_total_bytes:,} bytes.",
                {"limit": limits.max_total_bytes},
            )
        if total > expand_limit:
            raise ArchiveRefused(
                "compression_ratio",
                f"The archive ({archive_size:,} bytes) expands to more than {expand_limit:,} bytes, over "
                f"{limits.max_archive_ratio:g} times its size; this looks like a zip bomb.",
                {"limit": expand_limit, "archive_bytes": archive_size},
            )
        files.append((info, name))
    return files


def extract_zip(path: str | os.PathLike, dest: str | os.PathLike, limits: ArchiveLimits | None = None) -> Path:
    """Check the archive (`inspect_zip`), then extract its files under `dest`. Returns `dest`."""
    limits = limits or ArchiveLimits()
    members = inspect_zip(path, limits)
    root = Path(dest).resolve()
    root.mkdir(parents=True, exist_ok=True)
    written = 0
    with zipfile.ZipFile(path) as zf:
        for info, name in members:
            target = (root / Path(*name.parts)).resolve()
            if root not in target.parents:  # defence in depth: the name check already ruled this out
                raise ArchiveRefused("path_traversal", f"The entry {info.filename!r} leaves the folder.", {"entry": info.filename})
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, open(target, "xb") as dst:
                    while chunk := src.read(1024 * 1024):
                        written += len(chunk)
                        if written > limits.max_total_bytes:
                            raise ArchiveRefused("too_large", "The archive expands beyond the size limit.")
                        dst.write(chunk)
            except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as err:
                if isinstance(err, FileExistsError):
                    raise ArchiveRefused("duplicate_entry", f"The entry {info.filename!r} is in the archive twice.") from None
                raise ArchiveRefused("bad_archive", f"The entry {info.filename!r} could not be extracted: {err}",
                                     {"entry": info.filename}) from None
    return root


class ZipOut:
    """An export archive written entry by entry, with the sha256 and size of each entry recorded on disk."""

    def __init__(self, path: str | os.PathLike, compresslevel: int = 1):
        self.path = Path(path)
        self.compresslevel = compresslevel
        self._zip = zipfile.ZipFile(self.path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)
        self._index = tempfile.TemporaryFile("w+", encoding="utf-8")  # "sha256 size name" per line
        self.count = 0

    def __contains__(self, name: str) -> bool:
        return name in self._zip.NameToInfo  # zipfile's own index (it keeps one ZipInfo per entry anyway)

    def _info(self, name: str) -> zipfile.ZipInfo:
        safe_relative_name(name)
        if name in self:
            raise ValueError(f"duplicate entry {name!r} in export")
        info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
        info.external_attr = 0o100644 << 16
        info.create_system = 3
        if name.lower().endswith(STORED_SUFFIXES):
            info.compress_type = zipfile.ZIP_STORED
        else:
            info.compress_type = zipfile.ZIP_DEFLATED
            info._compresslevel = self.compresslevel  # zipfile's way to set a per-entry level
        return info

    def _record(self, name: str, digest: str, size: int) -> None:
        self._index.write(f"{digest} {size} {name}\n")
        self.count += 1

    def write_bytes(self, name: str, data: bytes) -> None:
        info = self._info(name)
        self._zip.writestr(info, data)
        self._record(name, hashlib.sha256(data).hexdigest(), len(data))

    def write_chunks(self, name: str, chunks: Iterable[bytes]) -> None:
        """Write one (possibly large) entry from an iterable of byte chunks without holding it in memory."""
        info = self._info(name)
        digest, size = hashlib.sha256(), 0
        with self._zip.open(info, "w", force_zip64=True) as dst:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                dst.write(chunk)
        self._record(name, digest.hexdigest(), size)

    def entries(self) -> Iterator[tuple[str, str, int]]:
        """(name, sha256, size) of every entry written so far, in writing order."""
        self._index.flush()
        self._index.seek(0)
        for line in self._index:
            digest, size, name = line.rstrip("\n").split(" ", 2)
            yield name, digest, int(size)
        self._index.seek(0, os.SEEK_END)

    def close(self) -> None:
        self._zip.close()
        self._index.close()

    def abort(self) -> None:
        try:
            self._zip.close()
        except Exception:  # a half-written archive is deleted anyway
            pass
        self._index.close()
        self.path.unlink(missing_ok=True)


def copy_limited(src: IO[bytes], dst: IO[bytes], limit: int) -> int:
    """Copy at most `limit` bytes; raise ArchiveRefused when there is more."""
    copied = 0
    while chunk := src.read(1024 * 1024):
        copied += len(chunk)
        if copied > limit:
            raise ArchiveRefused("too_large", f"The upload is larger than {limit:,} bytes.")
        dst.write(chunk)
    return copied


__all__ = ["ArchiveLimits", "ArchiveRefused", "ZipOut", "copy_limited", "extract_zip", "inspect_zip", "safe_relative_name"]
