"""`bft eval pubmedqa`: the model reads an abstract, reasons, and decides yes / no / maybe (official test split).

The decision is read by `bft.eval.answers.parse_decision`; an answer without one is wrong and counted
(`answered_share`, `unparsed`)."""

from bft.data.pubmedqa import DECISIONS, pubmedqa_prompt, read_pubmedqa
from bft.data.splits import fixed_subset
from bft.eval.answers import parse_decision
from bft.eval.output import write_evaluation
from bft.generation import generate
from bft.stats import summarise


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
    predictions = [{"id": i["id"], "prediction": d, "answer": a, "answered": d is not None, "decision": i["decision"],
                    "correct": c} for i, d, a, c in zip(items, decisions, answers, correct)]
    unparsed = sum(d is None for d in decisions)
    results = {"task": "pubmedqa", "n": len(items), "max_new_tokens": max_new_tokens,
               "repetition_penalty": repetition_penalty,
               "accuracy": sum(correct) / len(items),
               "macro_f1": macro_f1([i["decision"] for i in items], decisions),
               "unparsed": unparsed, "answered_share": 1 - unparsed / len(items),
               "cut_at_max_new_tokens": sum(generated.cut), "prompts_over_context": generated.over_context,
               **summarise("accuracy", correct)}
    return write_evaluation(output, results, predictions)
