"""The ranges numeric settings must lie in, declared once and checked wherever a command line or a recipe gives a
value (and by `BFTConfig` and the GRPO config in Python too): a value outside is bad input, named with its option,
before any model loads or anything is written.
"""

import argparse
import math
import numbers
from dataclasses import dataclass

from bft.errors import InputError


@dataclass(frozen=True)
class Range:
    """Finite numbers from `low` to `high` (None: unbounded), each end included unless `low_open` / `high_open`;
    integers only where `integer` (8, not 8.0: a count or a seed is used as given)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def __contains__(self, value) -> bool:
        if not is_number(value) or (self.integer and not isinstance(value, numbers.Integral)):
            return False
        if not isinstance(value, numbers.Integral) and not math.isfinite(value):  # (ints of any size are finite)
            return False
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def __str__(self) -> str:
        kind = "a whole number" if self.integer else "a finite number"
        low, high = _shown(self.low), _shown(self.high)
        if self.low is None and self.high is None:
            return kind
        kind = "a whole number " if self.integer else ""
        if self.high is None:
            return f"{kind}{'above' if self.low_open else 'at least'} {low}"
        if self.low is None:
            return f"{kind}{'below' if self.high_open else 'at most'} {high}"
        return f"{kind}in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"

    def check(self, name: str, value, where: str = "") -> None:
        """`InputError` ("`where`: `name` must be ..., got `value`") for a value outside the range, or one that is no
        number of the right kind (a recipe's `limit: ten`, `limit: 1.5`, `true`)."""
        if value not in self:
            raise InputError(f"{where + ': ' if where else ''}{name} must be {self}, got {value!r}")

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


def _shown(bound) -> str | None:
    """A bound as a person writes it: 1, 0.5, 4294967295."""
    if bound is None:
        return None
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


def is_number(value) -> bool:
    """A real number (numpy's too), not a bool: YAML's `true` is no count."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


AT_LEAST_ONE = Range(1, integer=True)
NON_NEGATIVE = Range(0, integer=True)
POSITIVE = Range(0, low_open=True)
PROBABILITY = Range(0, 1)
FRACTION = Range(0, 1, high_open=True)  # a share of items, all but none or all
SEED = Range(0, 2**32 - 1, integer=True)  # what numpy, and so transformers' set_seed, accepts

# BFTConfig's fields of the losses (`bft inspect` takes the first two too)
LOSS_RANGES = {"bft_group_size": AT_LEAST_ONE, "bft_gamma": POSITIVE, "token_weight_floor": PROBABILITY,
               "asft_alpha": Range(0), "eaft_alpha": Range(0), "eaft_topk": Range(2, integer=True)}
# Fields of transformers' TrainingArguments (and TRL's configs) whose bad values transformers refuses only once
# training starts, or never (a negative learning rate, a run of 0 epochs)
TRAINING_RANGES = {
    "per_device_train_batch_size": AT_LEAST_ONE, "per_device_eval_batch_size": AT_LEAST_ONE,
    "gradient_accumulation_steps": AT_LEAST_ONE, "learning_rate": Range(0), "weight_decay": Range(0),
    "max_grad_norm": Range(0), "warmup_steps": Range(0), "num_train_epochs": Range(0), "max_length": AT_LEAST_ONE,
    "max_steps": Range(integer=True), "seed": SEED,
}
# Step intervals, checked where their strategy is "steps" (an int, or a float below 1: a share of the run's steps)
INTERVALS = {"logging_steps": "logging_strategy", "save_steps": "save_strategy", "eval_steps": "eval_strategy"}
# ModelConfig's LoRA fields, where `use_peft` is on
LORA_RANGES = {"lora_r": AT_LEAST_ONE, "lora_alpha": POSITIVE, "lora_dropout": FRACTION}


def check_training_arguments(args) -> None:
    """InputError for a training setting of `args` (a TrainingArguments) outside its range (`TRAINING_RANGES`,
    `INTERVALS`), or for a run that would train nothing (no epochs and no `max_steps`)."""
    for name, allowed in TRAINING_RANGES.items():
        if getattr(args, name, None) is not None:
            allowed.check(name, getattr(args, name))
    for name, strategy in INTERVALS.items():
        if getattr(args, strategy, None) == "steps" and getattr(args, name) is not None:
            POSITIVE.check(name, getattr(args, name))
    if args.max_steps <= 0 and args.num_train_epochs == 0:
        raise InputError("num_train_epochs is 0 and max_steps is not set: the run would train nothing")


def check_lora_arguments(model_args) -> None:
    """InputError for a LoRA setting of `model_args` (TRL's ModelConfig) outside its range, where it uses LoRA."""
    if model_args.use_peft:
        for name, allowed in LORA_RANGES.items():
            allowed.check(name, getattr(model_args, name))
