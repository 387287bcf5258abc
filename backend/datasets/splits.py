"""Deterministic, leak-free train/val/test splits.

1. Near-duplicates are grouped: two images whose perceptual hashes (64-bit pHash, 16 hex digits on Image.phash)
   differ in at most `max_distance` bits are in the same group, and groups are closed transitively (union-find).
   Images without a pHash are groups of their own.
2. Every group goes to one split, chosen by a hash of the seed and the group's key (the smallest sha256 in it):
   score = sha256(f"{seed}:{key}") as a number in [0, 1); val when score < val, test when score < val + test,
   train otherwise. The choice depends only on the seed and the group, so an image keeps its split when other
   images are added to later exports (a model's test images do not leak into the next export's training set),
   and the fractions are met on average.
3. With few groups the hash may leave a requested split empty: then the train group whose score lies closest to
   that split's range moves there (deterministically), as long as train keeps at least one group.

No database or Flask here: the export calls `assign_splits` with plain records.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

SPLITS = ("train", "val", "test")
DEFAULT_MAX_DISTANCE = 8
_CHUNK = 512


@dataclass(frozen=True)
class SplitItem:
    key: int  # the image id
    sha256: str
    phash: str | None = None


@dataclass
class SplitResult:
    assignment: dict[int, str]  # image id -> split
    groups: list[list[str]] = field(default_factory=list)  # near-duplicate groups (sha256s), only those of size > 1
    counts: dict[str, int] = field(default_factory=dict)
    missing_phash: int = 0


def parse_phash(value: str | None) -> int | None:
    if not value:
        return None
    try:
        number = int(value, 16)
    except (TypeError, ValueError):
        return None
    return number if 0 <= number < 1 << 64 else None


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:
            self.parent[i], i = root, self.parent[i]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(x)
    out = np.zeros(x.shape, dtype=np.uint8)
    for shift in range(0, 64, 8):
        out += _BYTE_POPCOUNT[((x >> np.uint64(shift)) & np.uint64(0xFF)).astype(np.intp)]
    return out


_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def near_duplicate_groups(hashes: list[int | None], max_distance: int) -> list[int]:
    """Group label (the smallest index in the group) for every position; None hashes are singletons.

    All pairs are compared in chunks with numpy (XOR + popcount): 10,000 images are about 10^8 comparisons, well
    under a second, in memory bounded by the chunk size.
    """
    n = len(hashes)
    uf = _UnionFind(n)
    known = [i for i, h in enumerate(hashes) if h is not None]
    if max_distance >= 0 and len(known) > 1:
        values = np.array([hashes[i] for i in known], dtype=np.uint64)
        index = np.array(known)
        for start in range(0, len(values), _CHUNK):
            block = values[start:start + _CHUNK]
            # Compare each row only with the rows after it (the upper triangle).
            rest = values[start:]
            close = _popcount(block[:, None] ^ rest[None, :]) <= max_distance
            rows, cols = np.nonzero(close)
            for r, c in zip(rows.tolist(), cols.tolist()):
                if c > r:
                    uf.union(int(index[start + r]), int(index[start + c]))
    return [uf.find(i) for i in range(n)]


def _score(seed: int, key: str) -> float:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_splits(items: list[SplitItem], val: float = 0.1, test: float = 0.1, seed: int = 0,
                  max_distance: int = DEFAULT_MAX_DISTANCE) -> SplitResult:
    if val < 0 or test < 0 or val + test >= 1:
        raise ValueError("val and test must be >= 0 with val + test < 1")
    hashes = [parse_phash(item.phash) for item in items]
    labels = near_duplicate_groups(hashes, max_distance)
    members: dict[int, list[int]] = {}
    for pos, label in enumerate(labels):
        members.setdefault(label, []).append(pos)

    groups = []  # (key sha256, score, positions)
    for positions in members.values():
        key = min(items[p].sha256 for p in positions)
        groups.append((key, _score(seed, key), positions))
    groups.sort(key=lambda g: g[0])

    split_of: dict[str, str] = {}
    for key, score, _ in groups:
        split_of[key] = "val" if score < val else "test" if score < val + test else "train"

    # A requested split left empty by chance takes the train group whose score is nearest to its range.
    for name, low, high, wanted in (("val", 0.0, val, val), ("test", val, val + test, test)):
        if wanted <= 0 or any(s == name for s in split_of.values()):
            continue
        train = [(key, score) for key, score, _ in groups if split_of[key] == "train"]
        if len(train) < 2:
            continue
        key, _ = min(train, key=lambda ks: (min(abs(ks[1] - low), abs(ks[1] - high)), ks[0]))
        split_of[key] = name

    assignment: dict[int, str] = {}
    dup_groups: list[list[str]] = []
    for key, _, positions in groups:
        for p in positions:
            assignment[items[p].key] = split_of[key]
        if len(positions) > 1:
            dup_groups.append(sorted(items[p].sha256 for p in positions))
    counts = {name: 0 for name in SPLITS}
    for split in assignment.values():
        counts[split] += 1
    return SplitResult(assignment=assignment, groups=dup_groups, counts=counts,
                       missing_phash=sum(1 for h in hashes if h is None))
