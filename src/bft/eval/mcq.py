"""`bft eval mcq`: medical multiple choice, each option scored by its log-likelihood given the question.

As the lm-evaluation-harness does for multiple-choice tasks: the context is `Question: ...\\nAnswer:`, each option's
text is a continuation; `accuracy` takes the option with the highest summed log-likelihood, `accuracy_norm` the
highest log-likelihood per character of the option's text (the harness's `acc` and `acc_norm`). A question and
option longer than the model's context (or `max_length`) keep their end; `results.json`'s `options_cut` counts them.
"""

import logging
from pathlib import Path

from bft.data.records import DataError, read_records, require_new_id
from bft.data.splits import fixed_subset
from bft.eval.output import write_evaluation
from bft.loglik import continuation_logprobs, count_cut
from bft.stats import summarise

logger = logging.getLogger(__name__)


def read_mcq(path, limit=None) -> list[dict]:
    """Questions from the `medqa_mcq/*/test.jsonl` layout, validated; `id` is `realidx` or the line number. Raises
    DataError on a bad record (a missing field is named as missing; a row with `answer` but no `answer_idx` is told
    so) or a file without questions.

    `limit`: a fixed pseudo-random subset (these files can be sorted by answer)."""
    questions, first_lines = [], {}
    for line, record in read_records(path):
        for key in ("question", "options"):
            if record.get(key) is None:
                raise DataError(path, line, f"missing {key!r}: expected question, options {{letter: text}}, "
                                            "answer_idx (the correct option's letter)")
        if not isinstance(record["question"], str) or not record["question"].strip():
            raise DataError(path, line, "expected a non-empty string 'question'")
        options = record["options"]
        if not isinstance(options, dict) or len(options) < 2 or not all(isinstance(v, str) for v in options.values()):
            raise DataError(path, line, "expected 'options', an object of at least two letter -> text entries")
        if record.get("answer_idx") is None:
            raise DataError(path, line, _missing_answer_idx(record.get("answer"), options))
        if record["answer_idx"] not in options:
            raise DataError(path, line, f"'answer_idx' must be one of the option letters {sorted(options)}, "
                                        f"got {record['answer_idx']!r}")
        require_new_id(path, line, str(record.get("realidx", line)), first_lines)
        questions.append({"id": str(record.get("realidx", line)), "question": record["question"],
                          "options": options, "answer_idx": record["answer_idx"]})
    if not questions:
        raise DataError(path, None, "no questions: expected one JSON object a line with question, options, answer_idx")
    return fixed_subset(questions, limit, lambda q: q["id"])


def _missing_answer_idx(answer, options: dict) -> str:
    """What to say of a question without `answer_idx`: that it is missing, and what its `answer` (if any) holds."""
    letters = f"one of {sorted(options)}"
    if answer is None:
        return f"missing 'answer_idx': expected the correct option's letter, {letters}"
    texts = {text.strip(): letter for letter, text in options.items()}
    if isinstance(answer, str) and answer in options:
        held = f"the option letter {answer!r}"
    elif isinstance(answer, str) and answer.strip() in texts:
        held = f"the text of option {texts[answer.strip()]!r}"
    else:
        held = "neither an option letter nor an option's text"
    return (f"has 'answer' but no 'answer_idx' (its 'answer' holds {held}): give the correct option's letter, "
            f"{letters}, as answer_idx")


def mcq_context(question: str) -> str:
    return f"Question: {question.strip()}\nAnswer:"


def evaluate_mcq(model, tokenizer, data, output, *, limit=None, batch_size=16, max_length=2048, questions=None) -> dict:
    """Score every option of every question of the file `data`; write `results.json` and `predictions.jsonl` into
    `output`. `questions`: those `read_mcq` already read from that file (it is then not read again)."""
    questions = read_mcq(data, limit) if questions is None else fixed_subset(questions, limit, lambda q: q["id"])
    pairs = [(mcq_context(q["question"]), " " + text) for q in questions for text in q["options"].values()]
    max_length = min(max_length, getattr(model.config, "max_position_embeddings", None) or max_length)
    cut = count_cut(tokenizer, pairs, max_length)
    if cut:
        logger.warning("%d of %d options, with their question, are longer than %d tokens (the model's context or "
                       "max_length): the questions lose their beginnings", cut, len(pairs), max_length)
    scores = iter(continuation_logprobs(model, tokenizer, pairs, batch_size=batch_size, max_length=max_length,
                                        desc=f"mcq {Path(data).parent.name}"))
    predictions, correct, correct_norm = [], [], []
    for q in questions:
        letters = list(q["options"])
        summed = {letter: next(scores) for letter in letters}
        per_char = {letter: summed[letter] / max(len(q["options"][letter]), 1) for letter in letters}
        choice, choice_norm = max(letters, key=summed.get), max(letters, key=per_char.get)
        correct.append(choice == q["answer_idx"])
        correct_norm.append(choice_norm == q["answer_idx"])
        predictions.append({"id": q["id"], "prediction": choice, "prediction_norm": choice_norm,
                            "answer_idx": q["answer_idx"], "correct": correct[-1], "scores": summed})
    results = {"task": "mcq", "data": str(data), "n": len(questions), "max_length": max_length, "options_cut": cut,
               "accuracy": sum(correct) / max(len(correct), 1),
               "accuracy_norm": sum(correct_norm) / max(len(correct), 1),
               **summarise("accuracy", correct), **summarise("accuracy_norm", correct_norm)}
    return write_evaluation(output, results, predictions)
