"""`bft eval suite`: the standard evaluations on the data folder (`--data-dir`, `$BFT_DATA_DIR`), one table."""

import time
from pathlib import Path

from bft.data import data_dir
from bft.eval.tasks import TASKS, evaluate
from bft.files import write_json_atomic, write_text_atomic
from bft.models import load_for_eval

MCQ_SETS = ("medqa", "medmcqa", "mmlu", "pubmedqa")
# The options of `bft eval suite` (options of its tasks: each task is given those it takes)
SUITE_OPTIONS = ("data_dir", "dtype", "limit", "encoder", "batch_size", "generation_batch_size", "repetition_penalty")


def suite_default(option: str):
    """The default of a suite option: the one its tasks share. Raises ValueError where they differ (the suite gives
    every task the same value)."""
    defaults = {entry.options[option] for entry in TASKS.values() if option in entry.options}
    if len(defaults) != 1:
        raise ValueError(f"the tasks of the suite disagree on the default of {option}: {sorted(map(str, defaults))}")
    return defaults.pop()


def evaluate_suite(model_name, output, data_folder=None, dtype="auto", **options) -> dict:
    """go-naming on GeneAgent's sets, MCQ on MedQA, MedMCQA, medical MMLU and PubMedQA, PubMedQA by generation;
    `options` (limit, batch sizes, encoder) as `bft.eval.tasks.evaluate` takes them, each task given those it
    takes (`bft.eval.tasks.TASKS`)."""
    folder, output = data_dir(data_folder), Path(output)
    loaded = load_for_eval(model_name, dtype)
    tasks = {"go-naming": ("go-naming", {})}
    tasks.update({f"mcq-{name}": ("mcq", {"data": folder / "medqa_mcq" / name / "test.jsonl"}) for name in MCQ_SETS})
    tasks["pubmedqa-generation"] = ("pubmedqa", {})
    rows = {}
    for name, (task, extra) in tasks.items():
        started = time.perf_counter()
        given = {key: value for key, value in {"data_dir": folder, **options}.items() if key in TASKS[task].options}
        results = evaluate(task, loaded, output / name, **given, **extra)
        rows[name] = {**results, "seconds": time.perf_counter() - started}
    summary = {"model": model_name, "limit": options.get("limit"), "tasks": rows}
    write_json_atomic(output / "summary.json", summary)
    write_text_atomic(output / "summary.md", summary_table(summary))
    return summary


def summary_table(summary: dict) -> str:
    lines = [f"# Evaluation of `{summary['model']}`" + (f" ({summary['limit']} items per task, a fixed pseudo-random "
                                                         "subset)" if summary["limit"] else ""),
             "", "| task | n | metric | value (95% CI) | metric | value | cut to fit | seconds |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for task, row in summary["tasks"].items():
        first, second = TASKS[row["task"]].headline
        base = first.removesuffix("_mean")
        interval = f"{row[first]:.3f} ({row[base + '_ci_low']:.3f}-{row[base + '_ci_high']:.3f})"
        lines.append(f"| {task} | {row['n']} | {first} | {interval} | {second} | {row[second]:.3f} "
                     f"| {cut_note(row)} | {row['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def cut_note(results: dict) -> str:
    """What a task's results say was cut to fit the model or the encoder, in words ('none' when nothing was)."""
    notes = {"options_cut": "options past the context", "cut_at_max_new_tokens": "answers at max_new_tokens",
             "prompts_over_context": "prompts past the context", "names_cut_by_encoder": "names past the encoder"}
    return ", ".join(f"{results[key]} {words}" for key, words in notes.items() if results.get(key)) or "none"
