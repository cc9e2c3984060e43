"""Writing an evaluation's `results.json` and `predictions.jsonl`, each atomically."""

from pathlib import Path

from bft.files import write_json_atomic, write_jsonl_atomic


def write_evaluation(output, results: dict, predictions: list[dict]) -> dict:
    output = Path(output)
    write_jsonl_atomic(output / "predictions.jsonl", predictions)
    write_json_atomic(output / "results.json", results)
    return results
