"""A comparison's evaluations: each model's results under `evals/METHOD-seedS/TASK/`, reused while their record
(`bft.compare.reuse`) matches the model and options the recipe asks for, made anew otherwise; the scores and
per-item scores the report is made of."""

import json
import logging
import shutil
from pathlib import Path

from bft import run_folder
from bft.compare import reuse
from bft.compare.recipe import task_key
from bft.errors import InputError
from bft.eval.tasks import TASKS, evaluate

logger = logging.getLogger(__name__)
# `bft represent`'s embeddings that no model wrote, scored on the same genes and pairs as each model's profiles
REFERENCE_EMBEDDINGS = ("NCBI summary", "gene symbol")


def evaluate_model(state, model: Path | str, evals: Path, recipe: dict) -> tuple[dict, dict]:
    """(scores, item scores) of every evaluation of one model (a run's folder or a model name), computed on the main
    process only."""
    scores, items = {}, {}
    if state.is_main_process:
        for evaluation in recipe.get("evaluations", []):
            key = task_key(evaluation)
            record = reuse.evaluation_record(made_by(model), evaluation)
            scores[key] = _evaluate_once(model, evals / key, evaluation, record)
            items[key] = _item_scores(evals / key, evaluation["task"])
    state.wait_for_everyone()
    return scores, items


def made_by(model: Path | str) -> dict:
    """The model of an evaluation's record: a run (its folder) by name and fingerprint, else the model's name."""
    return {"model": model.name, "run": run_folder.fingerprint(model)} if isinstance(model, Path) else {"model": model}


def reusable_results(out: Path, evaluation: dict, record: dict) -> dict | None:
    """An evaluation's results if they hold every metric the report tabulates (results written before a metric
    existed are evaluated again) and their record is `record` (none: written before records were kept)."""
    results_file = _results_file(out, evaluation)
    if not results_file.exists() or reuse.read_evaluation_record(out) not in (None, record):
        return None
    results = json.loads(results_file.read_text())
    return results if TASKS[evaluation["task"]].scores(results) is not None else None


def reference_scores(evals: Path, recipe: dict) -> dict:
    """{evaluation: {reference: {metric: interval}}}: the GGI scores of the NCBI summaries and the bare symbols, which
    stand beside the models' profiles in the report. Every run embeds them for the same genes and pairs, so they
    are read from the first run's summary."""
    references = {}
    for evaluation in recipe.get("evaluations", []):
        key = task_key(evaluation)
        summaries = sorted(evals.glob(f"*/{key}/summary.json")) if evaluation["task"] == "represent" else []
        if summaries:
            ggi = json.loads(summaries[0].read_text())["ggi"]
            references[key] = {
                label: {f"ggi_{metric}": {"mean": ggi[label][metric], "ci_low": ggi[label][f"{metric}_ci_low"],
                                          "ci_high": ggi[label][f"{metric}_ci_high"]} for metric in ("auroc", "auprc")}
                for label in REFERENCE_EMBEDDINGS if label in ggi}
    return references


def _item_scores(out: Path, task: str) -> dict:
    """{metric: {item id: score}} from an evaluation's predictions (none for tasks scored as a whole)."""
    if not TASKS[task].item_scores:
        return {}
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines() if line]
    return {metric: {str(row["id"]): score(row) for row in rows} for metric, score in TASKS[task].item_scores.items()}


def _evaluate_once(model: Path | str, out: Path, evaluation: dict, record: dict) -> dict:
    """Scores of one evaluation of one model: its results when they can stand for `record` (`reusable_results`),
    else a new evaluation, the results made otherwise (another training of the run, other options) removed first."""
    results = reusable_results(out, evaluation, record)
    recorded = reuse.read_evaluation_record(out)
    if results is None:
        if out.exists() and recorded != record:  # made otherwise, or a partial one of unknown origin
            logger.info("evaluating %s again: it was made otherwise (%s)", out,
                        run_folder.differences(recorded or {}, record))
            shutil.rmtree(out)
        reuse.write_evaluation_record(out, record)  # first: a killed evaluation is resumed only by the same model
        _evaluate(str(model), out, evaluation)
        results = json.loads(_results_file(out, evaluation).read_text())
    elif recorded is None:  # written before records were kept: taken as the recipe's
        reuse.write_evaluation_record(out, record)
    return TASKS[evaluation["task"]].scores(results)


def _results_file(out: Path, evaluation: dict) -> Path:
    return out / TASKS[evaluation["task"]].results_file


def _evaluate(model: str, out: Path, evaluation: dict) -> None:
    """Evaluate `model` into `out`; InputError (bad input found only now) names the evaluation as the recipe does."""
    options = {key: value for key, value in evaluation.items() if key not in ("task", "name")}
    try:
        evaluate(evaluation["task"], model, out, **options)
    except InputError as error:
        raise InputError(f"evaluation {task_key(evaluation)!r}: {error}") from None
