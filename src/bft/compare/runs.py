"""A comparison run: the data built, every planned run trained (and its GRPO stage) unless finished, each evaluated,
the report written."""

import logging
import shutil
from pathlib import Path

import yaml

from bft import run_folder
from bft.compare import reuse
from bft.compare.builds import build_data, builds
from bft.compare.evaluations import evaluate_model, reference_scores
from bft.compare.plan import prepare
from bft.compare.recipe import BASE, grpo_fields, run_name, training_fields
from bft.compare.report import GRPO_SUFFIX, write_report
from bft.files import write_text_atomic

logger = logging.getLogger(__name__)


def run_comparison(config_path, output, seeds=None, only=None) -> dict | None:
    """Train every method x seed (or only the methods named in `only`, with those they start from), evaluate each
    run, write the report; returns the report's data (main process)."""
    from accelerate import PartialState

    recipe, output, seeds, plan = prepare(config_path, output, seeds, only)
    state = PartialState()
    if state.is_main_process:
        for build in builds(recipe):
            build_data(build)
    state.wait_for_everyone()
    if state.is_main_process:
        write_text_atomic(output / "train-recipe.yaml", yaml.safe_dump(recipe["train"], sort_keys=False))
    runs = _base_runs(state, recipe, output, seeds) if recipe.get("evaluate_base") else {}
    for number, (method, settings, seed) in enumerate(plan, 1):
        name = run_name(method, seed)
        logger.info("run %d of %d: %s", number, len(plan), name)
        run_dir = output / "runs" / name
        if "init_from" in settings and state.is_main_process:
            reuse.record_start(run_dir, output / "runs" / run_name(settings["init_from"], seed))
        _train_once(run_dir, training_fields(recipe, output, settings, seed))
        _drop_checkpoints(state, run_dir, recipe)
        scores, items = evaluate_model(state, run_dir, output / "evals" / name, recipe)
        runs[name] = {"method": method, "loss_type": settings["loss_type"], "seed": seed,
                      "run_dir": str(run_dir), "scores": scores, "item_scores": items}
        if "grpo" in recipe:
            second = run_name(method + GRPO_SUFFIX, seed)
            second_dir = output / "runs" / second
            if state.is_main_process:
                reuse.record_start(second_dir, run_dir)
            _grpo_once(second_dir, grpo_fields(recipe, run_dir, seed))
            _drop_checkpoints(state, second_dir, recipe)
            scores, items = evaluate_model(state, second_dir, output / "evals" / second, recipe)
            runs[second] = {"method": method + GRPO_SUFFIX, "loss_type": settings["loss_type"], "seed": seed,
                            "stage": 2, "first_stage": name, "run_dir": str(second_dir), "scores": scores,
                            "item_scores": items}
    if not state.is_main_process:
        return None
    return write_report(output, recipe, runs, seeds, references=reference_scores(output / "evals", recipe))


def _base_runs(state, recipe: dict, output: Path, seeds) -> dict:
    """The untrained model evaluated once, as method `base` with the same scores at every seed: where every loss
    starts from, so the report shows what each one gained and what it forgot."""
    scores, items = evaluate_model(state, recipe["train"]["model_name_or_path"], output / "evals" / BASE, recipe)
    return {run_name(BASE, seed): {"method": BASE, "loss_type": BASE, "seed": seed, "run_dir": None,
                                    "scores": scores, "item_scores": items} for seed in seeds}


def _train_once(run_dir: Path, fields: dict) -> None:
    from bft.train import run_training, train_arguments

    _run_once(run_dir, fields, lambda fields: run_training(*train_arguments(fields)))


def _grpo_once(run_dir: Path, fields: dict) -> None:
    from bft.grpo import grpo_arguments, run_grpo

    _run_once(run_dir, fields, lambda fields: run_grpo(*grpo_arguments(fields)))


def _run_once(run_dir: Path, fields: dict, run) -> None:
    """Run (train or GRPO) unless finished; a run killed after a checkpoint continues from its last one."""
    if run_folder.is_finished(run_dir):
        logger.info("reusing the finished run %s", run_dir)
        return
    fields = {**fields, "output_dir": str(run_dir), "overwrite": True}
    if run_folder.is_resumable(run_dir):
        logger.info("resuming %s from its last checkpoint", run_dir)
        fields["resume_from_checkpoint"] = True
    run(fields)


def _drop_checkpoints(state, run_dir: Path, recipe: dict) -> None:
    """Delete a finished run's checkpoints unless the recipe says `keep_checkpoints: true`: they serve only to resume
    it, and each holds the model and its optimizer state (about 12 bytes a parameter), which across a comparison's
    runs can fill a disk."""
    state.wait_for_everyone()
    if recipe.get("keep_checkpoints") or not state.is_main_process:
        return
    for checkpoint in run_folder.checkpoints(run_dir):
        shutil.rmtree(checkpoint)
        logger.info("removed %s (the run is finished; keep_checkpoints: true keeps them)", checkpoint)
