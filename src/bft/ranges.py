"""The ranges numeric options must lie in, declared once beside each option and checked wherever a value arrives
(the command line, a recipe, a Python call): a value outside is bad input, named with its option, before any model
loads or anything is written.
"""

import argparse
from dataclasses import dataclass

from bft.errors import InputError


@dataclass(frozen=True)
class Range:
    """Values from `low` to `high` (None: unbounded), each end included unless `low_open` / `high_open`."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value) -> bool:
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def __str__(self) -> str:
        if self.high is None:
            return f"{'above' if self.low_open else 'at least'} {self.low:g}"
        if self.low is None:
            return f"{'below' if self.high_open else 'at most'} {self.high:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"

    def check(self, name: str, value, where: str = "") -> None:
        """`InputError` ("`where`: `name` must be ..., got `value`") for a value outside the range."""
        if value not in self:
            raise InputError(f"{where + ': ' if where else ''}{name} must be {self}, got {value}")

    def argument(self, kind):
        """An argparse `type`: converts with `kind` (int, float) and refuses a value outside the range, so that the
        command exits with code 2 and names the option."""
        def parse(text: str):
            value = kind(text)
            if value not in self:
                raise argparse.ArgumentTypeError(f"must be {self}, got {text}")
            return value

        parse.__name__ = kind.__name__  # argparse's message for text that is no number: "invalid int value"
        return parse


AT_LEAST_ONE = Range(1)
NON_NEGATIVE = Range(0)
POSITIVE = Range(0, low_open=True)
PROBABILITY = Range(0, 1)
FRACTION = Range(0, 1, high_open=True)  # a share of items, all but none or all
