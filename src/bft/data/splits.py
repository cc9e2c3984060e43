"""Deterministic pseudo-random choices (splits, subsets, orders) that are the same on every machine."""

import hashlib


def stable_fraction(key: str, seed: int, purpose: str) -> float:
    """A number in [0, 1) for a key, fixed by the key, the seed and the purpose (sha256, not Python's hash)."""
    digest = hashlib.sha256(f"{purpose}:{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
