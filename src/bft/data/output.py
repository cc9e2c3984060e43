"""Writing a built data set: one JSONL file per split and a `meta.json`, each atomically."""

from pathlib import Path

from bft.data.records import DataError
from bft.files import write_json_atomic, write_jsonl_atomic


def write_dataset(output, splits: dict[str, list[dict]], meta: dict, training: str = "train") -> None:
    """Write `splits` and `meta` into `output`. Raises DataError, writing nothing, when the split `training` (what
    is trained on; gene-knowledge's `trained`, the probes of the trained genes) is empty: the builder's filters or
    limit left it no item, and a data set with nothing to train on, or to measure training by, is no data set."""
    output = Path(output)
    if not splits[training]:
        counts = meta.get("counts", {})
        raise DataError(output, None, f"the builder's filters and limit leave no item in {training}.jsonl"
                                      + (f" ({', '.join(f'{key}: {value}' for key, value in counts.items())})"
                                         if counts else ""))
    for split, rows in splits.items():
        write_jsonl_atomic(output / f"{split}.jsonl", rows)
    write_json_atomic(output / "meta.json", meta)
