"""Writing a built data set: one JSONL file per split and a `meta.json`, each atomically."""

from pathlib import Path

from bft.files import write_json_atomic, write_jsonl_atomic


def write_dataset(output, splits: dict[str, list[dict]], meta: dict) -> None:
    output = Path(output)
    for split, rows in splits.items():
        write_jsonl_atomic(output / f"{split}.jsonl", rows)
    write_json_atomic(output / "meta.json", meta)
