"""Splits: deterministic by seed, near-duplicates (pHash) together, stable when data grows."""
import io
import random

import imagehash
import numpy as np
import pytest
from PIL import Image

from backend.datasets import splits
from backend.datasets.splits import SplitItem, assign_splits, near_duplicate_groups

from ..support.datasets import jpeg, near_duplicate, smooth_image


def _random_items(n, seed=1):
    rng = random.Random(seed)
    return [SplitItem(i, f"{rng.getrandbits(256):064x}", f"{rng.getrandbits(64):016x}") for i in range(n)]


def _phash(data: bytes) -> str:
    return str(imagehash.phash(Image.open(io.BytesIO(data)).convert("RGB")))


def test_same_seed_same_split_other_seed_other_split():
    items = _random_items(500)
    a = assign_splits(items, 0.1, 0.1, seed=0)
    b = assign_splits(list(reversed(items)), 0.1, 0.1, seed=0)  # input order does not matter
    c = assign_splits(items, 0.1, 0.1, seed=1)
    assert a.assignment == b.assignment
    assert a.assignment != c.assignment


def test_fractions_are_met_on_average():
    result = assign_splits(_random_items(3000), val=0.1, test=0.2, seed=7)
    assert abs(result.counts["val"] / 3000 - 0.1) < 0.03
    assert abs(result.counts["test"] / 3000 - 0.2) < 0.03
    assert sum(result.counts.values()) == 3000


def test_planted_near_duplicates_land_in_one_split():
    items, pairs = [], []
    for k in range(40):
        picture = smooth_image(k)
        original, copy = jpeg(picture), near_duplicate(picture)
        a, b = 2 * k, 2 * k + 1
        items.append(SplitItem(a, f"{a:064x}", _phash(original)))
        items.append(SplitItem(b, f"{b:064x}", _phash(copy)))
        pairs.append((a, b))
    for seed in range(5):
        result = assign_splits(items, val=0.3, test=0.3, seed=seed)
        for a, b in pairs:
            assert result.assignment[a] == result.assignment[b]
        assert len(result.groups) == 40 and all(len(g) == 2 for g in result.groups)
        assert result.counts["val"] > 0 and result.counts["test"] > 0


def test_groups_are_transitive_and_threshold_respected():
    base = 0x0F0F0F0F0F0F0F0F
    hashes = [base, base ^ 0b111, base ^ 0b111 ^ (0b111 << 8), base ^ (2**64 - 1), None]
    labels = near_duplicate_groups(hashes, max_distance=3)
    assert labels[0] == labels[1] == labels[2]  # 0-1 and 1-2 are close; 0-2 (6 bits) joins through 1
    assert labels[3] != labels[0] and labels[4] == 4
    assert near_duplicate_groups(hashes, max_distance=0) == [0, 1, 2, 3, 4]


def test_popcount_fallback_matches_numpy(monkeypatch):
    values = np.array([0, 1, 2**63, 2**64 - 1, 0x123456789ABCDEF0], dtype=np.uint64)
    expected = [bin(int(v)).count("1") for v in values]
    assert splits._popcount(values).tolist() == expected
    monkeypatch.delattr(np, "bitwise_count", raising=False)  # numpy < 2.0 has none
    assert splits._popcount(values).tolist() == expected


def test_images_keep_their_split_when_data_grows():
    items = _random_items(400, seed=3)
    before = assign_splits(items[:200], 0.1, 0.1, seed=0).assignment
    after = assign_splits(items, 0.1, 0.1, seed=0).assignment
    assert all(after[key] == split for key, split in before.items())


def test_small_sets_still_get_val_and_test():
    result = assign_splits(_random_items(5, seed=9), val=0.1, test=0.1, seed=0)
    assert result.counts["val"] == 1 and result.counts["test"] == 1 and result.counts["train"] == 3
    only_train = assign_splits(_random_items(5), val=0.0, test=0.0, seed=0)
    assert only_train.counts == {"train": 5, "val": 0, "test": 0}


def test_missing_phash_counts_as_its_own_group():
    items = [SplitItem(i, f"{i:064x}", None) for i in range(10)]
    result = assign_splits(items, seed=0)
    assert result.missing_phash == 10 and result.groups == []


def test_invalid_fractions():
    with pytest.raises(ValueError):
        assign_splits([], val=0.5, test=0.5)
    assert splits.parse_phash("zz") is None and splits.parse_phash("ffffffffffffffff") == 2**64 - 1
