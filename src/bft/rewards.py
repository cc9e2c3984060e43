"""Rewards for `bft grpo`: plain functions in TRL's reward-function form, declared by their task's entry in
`bft.eval.tasks.TASKS` (`EvalTask.rewards`: name -> function, the first the default).

Each takes the sampled `completions` (strings, or chat messages whose last content is the answer) and the prompt
records' `answer` column (mcq also their `letters`, the question's option letters), and returns one float per
completion. Answers are read by the parsers `bft eval` uses (`bft.eval.answers`), and an answer that says nothing
scores the floor, as in `bft eval`, so what GRPO rewards is what `bft eval` scores:

- go-naming: `similarity` (cosine of the sentence embeddings of the proposed and the true process name, the default
  encoder), `percentile` (that similarity's rank among the similarities to every GO biological-process name);
- pubmedqa: `correct` (1 when the parsed yes/no/maybe decision is right);
- mcq: `correct` (1 when the chosen option letter is right);
- every task: `format` (1 when the answer can be parsed at all: a short name, a decision, a letter).
"""

import functools

from bft.data import data_dir
from bft.eval.answers import LETTERS, parse_decision, parse_option_letter, parse_process_name
from bft.models import DEFAULT_ENCODER, embed, load_encoder

MAX_NAME_WORDS = 12


def completion_text(completion) -> str:
    """The answer text of a completion: the string itself, or the content of its last chat message."""
    if isinstance(completion, str):
        return completion
    return completion[-1]["content"] if completion else ""


@functools.cache
def _encoder():
    return load_encoder(DEFAULT_ENCODER)


@functools.cache
def _process_names():
    from bft.eval.go_naming import process_name_embeddings

    return process_name_embeddings(_encoder(), DEFAULT_ENCODER, data_dir() / "go_bp")


def _name_scores(completions, answer, with_percentile):
    from bft.eval.go_naming import name_scores

    names = [parse_process_name(completion_text(c)) for c in completions]
    return name_scores(names, embed(_encoder(), names), embed(_encoder(), list(answer)),
                       _process_names() if with_percentile else None)


def go_naming_similarity(completions, answer, **_) -> list[float]:
    """Cosine similarity of the proposed process name to the true one (0 for an answer that names nothing)."""
    return _name_scores(completions, answer, with_percentile=False)[0].tolist()


def go_naming_percentile(completions, answer, **_) -> list[float]:
    """Fraction of GO process names less similar to the proposed name than the true name is (0 for an answer that
    names nothing)."""
    return _name_scores(completions, answer, with_percentile=True)[1].tolist()


def pubmedqa_correct(completions, answer, **_) -> list[float]:
    return [float(parse_decision(completion_text(c)) == truth) for c, truth in zip(completions, answer)]


def mcq_correct(completions, answer, letters=None, **_) -> list[float]:
    """1 where the option letter chosen, among the question's `letters` (default A-J), is the answer."""
    letters = letters or [LETTERS] * len(completions)
    return [float(parse_option_letter(completion_text(c), options) == truth)
            for c, truth, options in zip(completions, answer, letters)]


def go_naming_format(completions, **_) -> list[float]:
    """1 for a name of 1 to 12 words on the answer's first line."""
    names = [parse_process_name(completion_text(c)) for c in completions]
    return [float(0 < len(name.split()) <= MAX_NAME_WORDS) for name in names]


def pubmedqa_format(completions, **_) -> list[float]:
    return [float(parse_decision(completion_text(c)) is not None) for c in completions]


def mcq_format(completions, letters=None, **_) -> list[float]:
    letters = letters or [LETTERS] * len(completions)
    return [float(parse_option_letter(completion_text(c), options) is not None)
            for c, options in zip(completions, letters)]
