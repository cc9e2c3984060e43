"""`bft eval suite`: the standard evaluations on `../shared/data` (or `--data-dir`), one summary table."""

import time
from pathlib import Path

from bft.eval.go_naming import evaluate_go_naming
from bft.eval.mcq import evaluate_mcq
from bft.eval.pubmedqa import evaluate_pubmedqa
from bft.files import write_json_atomic, write_text_atomic
from bft.models import DEFAULT_ENCODER, load_for_eval

MCQ_SETS = ("medqa", "medmcqa", "mmlu", "pubmedqa")
# task -> (headline metric, second metric) for the summary table
HEADLINES = {"go-naming": ("semantic_similarity_mean", "percentile_mean"), "mcq": ("accuracy", "accuracy_norm"),
             "pubmedqa": ("accuracy", "macro_f1")}


def evaluate_suite(model_name, output, data_dir="../shared/data", limit=None, encoder=DEFAULT_ENCODER,
                   batch_size=16) -> dict:
    """go-naming on GeneAgent's sets, MCQ on MedQA, MedMCQA, medical MMLU and PubMedQA, PubMedQA by generation."""
    data_dir, output = Path(data_dir), Path(output)
    model, tokenizer = load_for_eval(model_name)
    tasks = {"go-naming": lambda out: evaluate_go_naming(model, tokenizer, data_dir / "geneagent" / "GO_terms.csv", out,
                                                         data_dir / "go_bp", encoder, limit, batch_size)}
    for name in MCQ_SETS:
        tasks[f"mcq-{name}"] = lambda out, name=name: evaluate_mcq(
            model, tokenizer, data_dir / "medqa_mcq" / name / "test.jsonl", out, limit, batch_size)
    tasks["pubmedqa-generation"] = lambda out: evaluate_pubmedqa(model, tokenizer, data_dir / "pubmedqa", out, limit,
                                                                 max(batch_size // 2, 1))
    rows = {}
    for task, run in tasks.items():
        started = time.perf_counter()
        results = run(output / task)
        rows[task] = {**results, "seconds": time.perf_counter() - started}
    summary = {"model": model_name, "limit": limit, "tasks": rows}
    write_json_atomic(output / "summary.json", summary)
    write_text_atomic(output / "summary.md", summary_table(summary))
    return summary


def summary_table(summary: dict) -> str:
    lines = [f"# Evaluation of `{summary['model']}`" + (f" ({summary['limit']} items per task, a fixed pseudo-random "
                                                         "subset)" if summary["limit"] else ""),
             "", "| task | n | metric | value (95% CI) | metric | value | seconds |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for task, row in summary["tasks"].items():
        first, second = HEADLINES[row["task"]]
        base = first.removesuffix("_mean")
        interval = f"{row[first]:.3f} ({row[base + '_ci_low']:.3f}-{row[base + '_ci_high']:.3f})"
        lines.append(f"| {task} | {row['n']} | {first} | {interval} | {second} | {row[second]:.3f} | {row['seconds']:.0f} |")
    return "\n".join(lines) + "\n"
