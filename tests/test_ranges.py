"""Ranges of numeric options: which ends are in, what the message says."""

import argparse
import re

import pytest

from bft.errors import InputError
from bft.ranges import AT_LEAST_ONE, FRACTION, POSITIVE, PROBABILITY, Range


@pytest.mark.parametrize("allowed, inside, outside, said", [
    (AT_LEAST_ONE, [1, 7], [0, -1, 1.5, True, "ten", float("inf")], "a whole number at least 1"),
    (POSITIVE, [1e-9, 3.5], [0, -0.1, float("inf"), float("nan")], "above 0"),
    (PROBABILITY, [0, 0.5, 1], [-0.01, 1.01], "in [0, 1]"),
    (FRACTION, [0, 0.99], [1, 1.5, -0.1], "in [0, 1)"),
    (Range(0, 1, low_open=True, high_open=True), [0.25], [0, 1], "in (0, 1)"),
    (Range(high=4), [4, -3], [4.5], "at most 4"),
])
def test_ends_and_message(allowed, inside, outside, said):
    assert str(allowed) == said
    assert all(value in allowed for value in inside) and not any(value in allowed for value in outside)
    allowed.check("x", inside[0])
    for value in outside:
        with pytest.raises(InputError, match="^" + re.escape(f"where: x must be {said}, got {value!r}") + "$"):
            allowed.check("x", value, "where")
    parse = allowed.argument(int if allowed.integer else float)
    assert parse(str(inside[0])) == inside[0]
    with pytest.raises(argparse.ArgumentTypeError, match=f"got {outside[0]}"):
        parse(str(outside[0]))


def test_kinds_of_numbers():
    """A count is an integer of any kind (numpy's too) and of any size, never 8.0 or a bool; a rate any finite real."""
    import numpy as np

    from bft.ranges import SEED

    assert np.int64(4) in AT_LEAST_ONE and 10**400 in AT_LEAST_ONE and 10**400 not in SEED
    assert 8.0 not in AT_LEAST_ONE and np.float64(8.0) not in AT_LEAST_ONE and True not in AT_LEAST_ONE
    assert np.float32(1e-4) in POSITIVE and np.int64(3) in POSITIVE and 10**400 in POSITIVE
    assert float("inf") not in Range() and "1" not in Range() and str(Range()) == "a finite number"
    with pytest.raises(InputError, match=r"seed must be a whole number in \[0, 4294967295\], got 8.0"):
        SEED.check("seed", 8.0)
    parse = AT_LEAST_ONE.argument(int)
    assert parse("3") == 3
    with pytest.raises(ValueError):  # argparse: "invalid int value"
        parse("1.5")
