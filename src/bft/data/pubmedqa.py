"""`bft data pubmedqa`: question + abstract -> reasoning (the long answer) and a final yes/no/maybe.

The official split: the 500 labelled items outside `test_ground_truth.json` are `train`, the 500 inside are `test`.
"""

import json
from pathlib import Path

from bft.data.output import write_dataset
from bft.data.records import DataError, read_text

DECISIONS = ("yes", "no", "maybe")
FIELDS = ("QUESTION", "CONTEXTS", "LONG_ANSWER", "final_decision")  # of each item of ori_pqal.json


def pubmedqa_prompt(question: str, contexts: list[str]) -> str:
    """The question asked of the model, for training and evaluation alike."""
    abstract = "\n".join(contexts)
    return (f"Abstract:\n{abstract}\n\nQuestion: {question}\n"
            "Reason briefly from the abstract, then end with 'Final answer: yes', 'Final answer: no' or "
            "'Final answer: maybe'.")


def read_pubmedqa(pubmedqa_dir, split: str) -> list[dict]:
    """Items of the official split: `test` (the 500 ids of test_ground_truth.json) or `train` (the other 500).
    Raises DataError for a missing file or one that is not PubMedQA's JSON, an item without one of `FIELDS` (named),
    a decision other than yes/no/maybe, or a split without items."""
    pubmedqa_dir = Path(pubmedqa_dir)
    for name in ("ori_pqal.json", "test_ground_truth.json"):
        if not (pubmedqa_dir / name).is_file():
            raise DataError(pubmedqa_dir / name, None, "file not found (PubMedQA's expert-labelled set)")
    source = pubmedqa_dir / "ori_pqal.json"
    items = _read_json(source, "{pmid: item}")
    test_ids = set(_read_json(pubmedqa_dir / "test_ground_truth.json", "{pmid: decision}"))
    rows = []
    for pmid, item in items.items():
        if (pmid in test_ids) != (split == "test"):
            continue
        missing = [key for key in FIELDS if not isinstance(item, dict) or key not in item]
        if missing:
            raise DataError(source, None, f"item {pmid}: missing {', '.join(map(repr, missing))} (an item holds "
                                          f"{', '.join(FIELDS)})")
        if item["final_decision"] not in DECISIONS:
            raise DataError(source, None, f"item {pmid}: final_decision must be yes/no/maybe")
        rows.append({"id": pmid, "question": item["QUESTION"], "contexts": item["CONTEXTS"],
                     "long_answer": item["LONG_ANSWER"], "decision": item["final_decision"]})
    if not rows:
        raise DataError(source, None, f"no item of the {split} split (the {split} ids are "
                        f"{'those' if split == 'test' else 'those not'} in test_ground_truth.json)")
    return rows


def _read_json(path, expected: str) -> dict:
    """The JSON object of `path`; DataError where it does not parse or is no object (`expected` says its shape)."""
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise DataError(path, error.lineno, f"not valid JSON ({error.msg}); expected {expected}") from None
    if not isinstance(data, dict):
        raise DataError(path, None, f"expected a JSON object {expected}, got a {type(data).__name__}")
    return data


def build_pubmedqa(data_dir, output) -> dict:
    """Write `train.jsonl`, `test.jsonl` and `meta.json` into `output`; returns the metadata. Raises DataError for
    missing or malformed PubMedQA files, or a split without items."""
    source = Path(data_dir) / "pubmedqa"
    splits = {}
    for split in ("train", "test"):
        splits[split] = [{"id": item["id"], "messages": [
            {"role": "user", "content": pubmedqa_prompt(item["question"], item["contexts"])},
            {"role": "assistant", "content": f"{item['long_answer']}\nFinal answer: {item['decision']}"},
        ]} for item in read_pubmedqa(source, split)]
    meta = {"task": "pubmedqa", "source": str(source), "counts": {split: len(rows) for split, rows in splits.items()}}
    write_dataset(output, splits, meta)
    return meta
