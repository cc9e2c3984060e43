"""Writing a built data set: one JSONL file per split and a `meta.json`, each atomically."""

from pathlib import Path

from bft.data.records import DataError
from bft.files import write_json_atomic, write_jsonl_atomic


def write_dataset(output, splits: dict[str, list[dict]], meta: dict) -> None:
    """Raises DataError, writing nothing, when every split is empty (the builder's filters or limit left no item)."""
    output = Path(output)
    if not any(splits.values()):
        counts = meta.get("counts", {})
        raise DataError(output, None, "the builder's filters and limit leave no item to write"
                                      + (f" ({', '.join(f'{key}: {value}' for key, value in counts.items())})"
                                         if counts else ""))
    for split, rows in splits.items():
        write_jsonl_atomic(output / f"{split}.jsonl", rows)
    write_json_atomic(output / "meta.json", meta)
