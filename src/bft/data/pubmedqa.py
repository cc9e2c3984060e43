"""`bft data pubmedqa`: question + abstract -> reasoning (the long answer) and a final yes/no/maybe.

The official split: the 500 labelled items outside `test_ground_truth.json` are `train`, the 500 inside are `test`.
"""

import json
from pathlib import Path

from bft.data.output import write_dataset
from bft.data.records import DataError, read_text

DECISIONS = ("yes", "no", "maybe")


def pubmedqa_prompt(question: str, contexts: list[str]) -> str:
    """The question asked of the model, for training and evaluation alike."""
    abstract = "\n".join(contexts)
    return (f"Abstract:\n{abstract}\n\nQuestion: {question}\n"
            "Reason briefly from the abstract, then end with 'Final answer: yes', 'Final answer: no' or "
            "'Final answer: maybe'.")


def read_pubmedqa(pubmedqa_dir, split: str) -> list[dict]:
    """Items of the official split: `test` (the 500 ids of test_ground_truth.json) or `train` (the other 500)."""
    pubmedqa_dir = Path(pubmedqa_dir)
    for name in ("ori_pqal.json", "test_ground_truth.json"):
        if not (pubmedqa_dir / name).is_file():
            raise DataError(pubmedqa_dir / name, None, "file not found (PubMedQA's expert-labelled set)")
    items = json.loads(read_text(pubmedqa_dir / "ori_pqal.json"))
    test_ids = set(json.loads(read_text(pubmedqa_dir / "test_ground_truth.json")))
    rows = []
    for pmid, item in items.items():
        if (pmid in test_ids) != (split == "test"):
            continue
        if item.get("final_decision") not in DECISIONS:
            raise DataError(pubmedqa_dir / "ori_pqal.json", None, f"item {pmid}: final_decision must be yes/no/maybe")
        rows.append({"id": pmid, "question": item["QUESTION"], "contexts": item["CONTEXTS"],
                     "long_answer": item["LONG_ANSWER"], "decision": item["final_decision"]})
    if not rows:
        raise DataError(pubmedqa_dir / "ori_pqal.json", None, f"no item of the {split} split (the {split} ids are "
                        f"{'those' if split == 'test' else 'those not'} in test_ground_truth.json)")
    return rows




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
