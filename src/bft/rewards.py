"""Rewards for `bft grpo`: plain functions in TRL's reward-function form, one set per task.

Each takes the sampled `completions` (strings, or chat messages whose last content is the answer) and the prompt
records' `answer` column, and returns one float per completion. The answers are parsed exactly as the evaluations
parse them (`bft.eval`), so what GRPO rewards is what `bft eval` scores:

- go-naming: `similarity` (cosine of the sentence embeddings of the proposed and the true process name, the default
  encoder), `percentile` (that similarity's rank among the similarities to every GO biological-process name);
- pubmedqa: `correct` (1 when the parsed yes/no/maybe decision is right);
- mcq: `correct` (1 when the chosen option letter is right);
- every task: `format` (1 when the answer can be parsed at all: a short name, a decision, a letter).
"""

import functools
import re

import numpy as np

from bft.data import data_dir
from bft.eval.go_naming import parse_process_name, process_name_embeddings
from bft.eval.pubmedqa import parse_decision
from bft.models import DEFAULT_ENCODER, embed, load_encoder

MAX_NAME_WORDS = 12
_LETTER = re.compile(r"\b([A-J])\b")


def completion_text(completion) -> str:
    """The answer text of a completion: the string itself, or the content of its last chat message."""
    if isinstance(completion, str):
        return completion
    return completion[-1]["content"] if completion else ""


def parse_option_letter(answer: str, letters="ABCDEFGHIJ") -> str | None:
    """The first standalone option letter of the answer ("B", "(B)", "B. text", "Answer: B"), else None."""
    for match in _LETTER.finditer(answer.strip()):
        if match.group(1) in letters:
            return match.group(1)
    return None


@functools.cache
def _encoder():
    return load_encoder(DEFAULT_ENCODER)


def go_naming_similarity(completions, answer, **_) -> list[float]:
    """Cosine similarity of the proposed process name to the true one (0 for an empty name)."""
    names = [parse_process_name(completion_text(c)) for c in completions]
    predicted, truth = embed(_encoder(), names), embed(_encoder(), list(answer))
    similarity = (predicted * truth).sum(axis=1)
    return [float(s) if name else 0.0 for s, name in zip(similarity, names)]


@functools.cache
def _process_names():
    return process_name_embeddings(_encoder(), DEFAULT_ENCODER, data_dir() / "go_bp")


def go_naming_percentile(completions, answer, **_) -> list[float]:
    """Fraction of GO process names less similar to the proposed name than the true name is (0 for an empty name)."""
    names = [parse_process_name(completion_text(c)) for c in completions]
    predicted, truth = embed(_encoder(), names), embed(_encoder(), list(answer))
    similarity = (predicted * truth).sum(axis=1)
    percentile = (predicted @ _process_names().T < similarity[:, None]).mean(axis=1)
    return [float(p) if name else 0.0 for p, name in zip(np.asarray(percentile), names)]


def pubmedqa_correct(completions, answer, **_) -> list[float]:
    return [float(parse_decision(completion_text(c)) == truth) for c, truth in zip(completions, answer)]


def mcq_correct(completions, answer, **_) -> list[float]:
    return [float(parse_option_letter(completion_text(c)) == truth) for c, truth in zip(completions, answer)]


def go_naming_format(completions, **_) -> list[float]:
    """1 for a name of 1 to 12 words on the answer's first line."""
    names = [parse_process_name(completion_text(c)) for c in completions]
    return [float(0 < len(name.split()) <= MAX_NAME_WORDS) for name in names]


def pubmedqa_format(completions, **_) -> list[float]:
    return [float(parse_decision(completion_text(c)) is not None) for c in completions]


def mcq_format(completions, **_) -> list[float]:
    return [float(parse_option_letter(completion_text(c)) is not None) for c in completions]


# task -> reward name -> function; the first name of each task is its default reward
REWARDS = {
    "go-naming": {"similarity": go_naming_similarity, "percentile": go_naming_percentile,
                  "format": go_naming_format},
    "pubmedqa": {"correct": pubmedqa_correct, "format": pubmedqa_format},
    "mcq": {"correct": mcq_correct, "format": mcq_format},
}
