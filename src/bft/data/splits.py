"""Deterministic pseudo-random choices (splits, subsets, orders) that are the same on every machine."""

import hashlib

from bft.ranges import AT_LEAST_ONE


def stable_fraction(key: str, seed: int, purpose: str) -> float:
    """A number in [0, 1) for a key, fixed by the key, the seed and the purpose (sha256, not Python's hash)."""
    digest = hashlib.sha256(f"{purpose}:{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def fixed_subset(items: list, limit: int | None, key) -> list:
    """`limit` items chosen by a fixed hash of `key(item)` (not the first ones: files are often sorted), in order.
    Raises InputError for a `limit` under 1 (a subset of nothing)."""
    if limit is not None:
        AT_LEAST_ONE.check("limit", limit)
    if limit is None or limit >= len(items):
        return list(items)
    chosen = set(sorted(range(len(items)), key=lambda i: stable_fraction(str(key(items[i])), 0, "subset"))[:limit])
    return [item for i, item in enumerate(items) if i in chosen]
