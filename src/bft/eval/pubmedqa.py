"""`bft eval pubmedqa`: the model reads an abstract, reasons, and decides yes / no / maybe (official test split)."""

import re

from bft.data.pubmedqa import DECISIONS, pubmedqa_prompt, read_pubmedqa
from bft.data.splits import fixed_subset
from bft.eval.generate import generate
from bft.eval.output import write_evaluation
from bft.eval.stats import summarise

_FINAL = re.compile(r"final answer\W*(yes|no|maybe)\b", re.IGNORECASE)
_ANY = re.compile(r"\b(yes|no|maybe)\b", re.IGNORECASE)


def parse_decision(answer: str) -> str | None:
    """The decision after 'Final answer:', else the last yes/no/maybe in the text, else None."""
    found = _FINAL.findall(answer) or _ANY.findall(answer)
    return found[-1].lower() if found else None


def macro_f1(truth: list[str], predicted: list[str | None]) -> float:
    scores = []
    for label in DECISIONS:
        tp = sum(t == label and p == label for t, p in zip(truth, predicted))
        fp = sum(t != label and p == label for t, p in zip(truth, predicted))
        fn = sum(t == label and p != label for t, p in zip(truth, predicted))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


def evaluate_pubmedqa(model, tokenizer, pubmedqa_dir, output, *, limit=None, batch_size=8, max_new_tokens=128,
                      repetition_penalty=1.0) -> dict:
    items = fixed_subset(read_pubmedqa(pubmedqa_dir, "test"), limit, lambda item: item["id"])
    generated = generate(model, tokenizer, [pubmedqa_prompt(i["question"], i["contexts"]) for i in items],
                         max_new_tokens=max_new_tokens, batch_size=batch_size, repetition_penalty=repetition_penalty,
                         desc="pubmedqa")
    answers = generated.answers
    decisions = [parse_decision(answer) for answer in answers]
    correct = [d == i["decision"] for d, i in zip(decisions, items)]
    predictions = [{"id": i["id"], "prediction": d, "answer": a, "decision": i["decision"], "correct": c}
                   for i, d, a, c in zip(items, decisions, answers, correct)]
    results = {"task": "pubmedqa", "n": len(items), "max_new_tokens": max_new_tokens,
               "repetition_penalty": repetition_penalty,
               "accuracy": sum(correct) / max(len(items), 1),
               "macro_f1": macro_f1([i["decision"] for i in items], decisions),
               "unparsed": sum(d is None for d in decisions), "cut_at_max_new_tokens": sum(generated.cut),
               "prompts_over_context": generated.over_context, **summarise("accuracy", correct)}
    return write_evaluation(output, results, predictions)
