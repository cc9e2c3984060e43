"""`bft compare`: the same model trained on the same data with each loss type and seed, then evaluated alike.

A comparison recipe (YAML) may start with `extends: FILE` (a recipe it builds on, its path relative to this one's
folder: its keys are taken, this recipe's replace them, and its `train` fields are overridden one by one), and has
an optional `build` (one `bft data` builder's options, or a list of them, run once),
a `train` section (a `bft train` recipe shared by every run: same data, steps, data order and learning rate),
`loss_types` (default nll, dft, bft), optional `variants` (named settings that include their `loss_type`, e.g.
`bft-g32: {loss_type: bft, bft_group_size: 32}`; any field, lists and mappings included; `init_from: METHOD` starts
each seed's run from that method's run of the same seed, e.g. BFT after SFT), `seeds` (`--seeds` overrides them;
`--methods` runs and reports some methods only), `evaluations` (a task of `bft.eval.tasks.TASKS`, each with that
task's options; a misspelt one, or another task's, fails), optional
`baselines` (the methods every BFT method is paired with; default nll, dft, asft, eaft), `evaluate_base: true`
(the untrained model evaluated alike, as method `base`) and an optional `grpo` section (a `bft grpo` recipe: a
second stage run on every first-stage run with identical settings, method `M+grpo`, evaluated alike; the report
then adds each method's change by GRPO and the paired differences of those changes). Everything lands under
`--output`: `runs/METHOD-seedS/` (training: a finished run keeps its final model, and its checkpoints only with
`keep_checkpoints: true`), `evals/METHOD-seedS/TASK/` (results), `report.md`, `report.json`, plots. A `represent`
evaluation's table also shows the NCBI summaries' and bare symbols' GGI scores on the same genes.

Each run's configuration is built in memory from the recipe (no round trip through command-line strings), and
every method's is parsed before the first run starts. Finished runs and evaluations are reused, and a run killed
after a checkpoint continues from it, so a killed comparison restarted with the same command goes on where it
stopped; what was made otherwise than the recipe now asks is not reused (`bft.reuse`). `--plan` checks the same
and lists what is done and what is left, running nothing. Runs restored from an archive (`bft.archive`: the results
without the models) are reused alike, as long as no evaluation or run still needs their model.
Under `accelerate launch` every process trains; the main process evaluates and writes the report.
"""

import json
import logging
import shutil
from pathlib import Path

import yaml

from bft import reuse, run_folder
from bft.errors import InputError
from bft.eval.tasks import TASKS, check_options, evaluate
from bft.files import write_text_atomic
from bft.report import GRPO_SUFFIX, write_report

logger = logging.getLogger(__name__)
DEFAULT_LOSS_TYPES = ("nll", "dft", "bft")
BASE = "base"  # the method name of the untrained model (`evaluate_base: true`)
RECIPE_KEYS = ("name", "build", "train", "loss_types", "variants", "seeds", "evaluations", "baselines",
               "evaluate_base", "grpo", "keep_checkpoints")
# `bft represent`'s embeddings that no model wrote, scored on the same genes and pairs as each model's profiles
REFERENCE_EMBEDDINGS = ("NCBI summary", "gene symbol")


def load_recipe(path) -> dict:
    """The recipe of `path` (with what it `extends`), checked: keys, evaluations' options, methods."""
    recipe = _read_recipe(Path(path))
    if not isinstance(recipe.get("train"), dict):
        raise InputError(f"{path}: expected a YAML mapping with a 'train' section (a bft train recipe)")
    unknown = [key for key in recipe if key not in RECIPE_KEYS]
    if unknown:
        raise InputError(f"{path}: unknown keys {', '.join(map(repr, unknown))}; a comparison recipe has "
                         f"{', '.join(RECIPE_KEYS)}")
    for evaluation in recipe.get("evaluations", []):
        try:
            check_options(evaluation.get("task"), [key for key in evaluation if key not in ("task", "name")])
        except InputError as error:
            raise InputError(f"{path}: {error}") from error
    keys = [task_key(evaluation) for evaluation in recipe.get("evaluations", [])]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise InputError(f"{path}: two evaluations would share the results folder and table "
                         f"{', '.join(map(repr, repeated))}: give each a distinct `name`")
    methods(recipe, path)
    return recipe


def _read_recipe(path: Path, extended_by: tuple = ()) -> dict:
    """The YAML mapping of `path`, on top of the recipe it `extends` (recursively): its keys replace the base's, and
    its `train` fields override the base's `train` one by one."""
    try:
        recipe = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise InputError(f"{path}: cannot read the recipe ({error})") from error
    if not isinstance(recipe, dict):
        raise InputError(f"{path}: expected a YAML mapping with a 'train' section (a bft train recipe)")
    if "extends" not in recipe:
        return recipe
    base_path = path.parent / str(recipe.pop("extends"))
    if base_path.resolve() in extended_by:
        raise InputError(f"{path}: extends {base_path}, which extends it in turn")
    base = _read_recipe(base_path, (*extended_by, path.resolve()))
    train = {**(base.get("train") or {}), **(recipe.get("train") or {})}
    return {**base, **recipe, "train": train}


def methods(recipe, path="the recipe") -> dict[str, dict]:
    """Method name -> the training fields that define it, `loss_type` included (loss types, then variants)."""
    found = {loss_type: {"loss_type": loss_type} for loss_type in recipe.get("loss_types", DEFAULT_LOSS_TYPES)}
    for name, settings in (recipe.get("variants") or {}).items():
        if not isinstance(settings, dict) or "loss_type" not in settings:
            raise InputError(f"{path}: variant {name!r} must be a mapping that sets loss_type")
        if "init_from" in settings and settings["init_from"] not in found:
            raise InputError(f"{path}: variant {name!r} starts from {settings['init_from']!r}, which must be a loss "
                             "type or an earlier variant")
        found[name] = dict(settings)
    if recipe.get("evaluate_base") and BASE in found:
        raise InputError(f"{path}: a method named {BASE!r} clashes with the untrained model (evaluate_base)")
    return found


def select_methods(found: dict[str, dict], names, path="the recipe") -> dict[str, dict]:
    """The named methods and those they start from (`init_from`), in the recipe's order."""
    unknown = [name for name in names if name not in found]
    if unknown:
        raise InputError(f"{path}: no method named {', '.join(map(repr, unknown))}; its methods are "
                         f"{', '.join(found)}")
    wanted = set()
    for name in names:
        while name is not None and name not in wanted:
            wanted.add(name)
            name = found[name].get("init_from")
    return {name: settings for name, settings in found.items() if name in wanted}


def run_comparison(config_path, output, seeds=None, only=None) -> dict | None:
    """Train every method x seed (or only the methods named in `only`, with those they start from), evaluate each
    run, write the report; returns the report's data (main process)."""
    from accelerate import PartialState

    recipe, output, seeds, plan = _prepare(config_path, output, seeds, only)
    state = PartialState()
    if state.is_main_process:
        for build in _builds(recipe):
            _build_data(build)
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
        _train_once(run_dir, _training_fields(recipe, output, settings, seed))
        _drop_checkpoints(state, run_dir, recipe)
        scores, items = _evaluations(state, run_dir, output / "evals" / name, recipe)
        runs[name] = {"method": method, "loss_type": settings["loss_type"], "seed": seed,
                      "run_dir": str(run_dir), "scores": scores, "item_scores": items}
        if "grpo" in recipe:
            second = run_name(method + GRPO_SUFFIX, seed)
            second_dir = output / "runs" / second
            if state.is_main_process:
                reuse.record_start(second_dir, run_dir)
            _grpo_once(second_dir, _grpo_fields(recipe, run_dir, seed))
            _drop_checkpoints(state, second_dir, recipe)
            scores, items = _evaluations(state, second_dir, output / "evals" / second, recipe)
            runs[second] = {"method": method + GRPO_SUFFIX, "loss_type": settings["loss_type"], "seed": seed,
                            "stage": 2, "first_stage": name, "run_dir": str(second_dir), "scores": scores,
                            "item_scores": items}
    if not state.is_main_process:
        return None
    return write_report(output, recipe, runs, seeds, references=_reference_scores(output / "evals", recipe))


def plan_comparison(config_path, output, seeds=None, only=None) -> dict:
    """What `run_comparison` would do, doing none of it: the recipe, built data and the runs to reuse are checked as
    before a comparison, and each data set, run and evaluation is listed with what is left to do."""
    recipe, output, seeds, plan = _prepare(config_path, output, seeds, only)
    data = {}
    for build in _builds(recipe):
        _, out, _, _ = _resolve_build(build)
        data[str(out)] = "built" if (out / "meta.json").exists() else "to build"
    models = {BASE: recipe["train"]["model_name_or_path"]} if recipe.get("evaluate_base") else {}
    for method, _, seed in plan:
        for stage in (method, method + GRPO_SUFFIX) if "grpo" in recipe else (method,):
            models[run_name(stage, seed)] = output / "runs" / run_name(stage, seed)
    runs = {}
    for name, model in models.items():
        training = "untrained model" if name == BASE else _training_state(model)
        evaluations = {task_key(evaluation): _evaluation_state(model, output / "evals" / name / task_key(evaluation),
                                                               evaluation)
                       for evaluation in recipe.get("evaluations", [])}
        runs[name] = {"training": training, "evaluations": evaluations}
    trainings = [run["training"].split(" from ")[0] for name, run in runs.items() if name != BASE]
    states = [state for run in runs.values() for state in run["evaluations"].values()]
    left = {"runs": {state: trainings.count(state) for state in dict.fromkeys(trainings)},
            "evaluations": {state: states.count(state) for state in dict.fromkeys(states)}}
    return {"output": str(output), "data": data, "runs": runs, "in all": left}


def _training_state(run_dir: Path) -> str:
    if run_folder.is_finished(run_dir):
        return "finished" if run_folder.has_model(run_dir) else "finished (results only: no model)"
    checkpoint = run_folder.latest_checkpoint(run_dir)
    return f"to resume from {checkpoint.name}" if checkpoint else "to train"


def _evaluation_state(model: Path | str, out: Path, evaluation: dict) -> str:
    if isinstance(model, Path) and not run_folder.is_finished(model):
        return "to evaluate"
    record = reuse.evaluation_record(_made_by(model), evaluation)
    return "to evaluate" if _reusable_results(out, evaluation, record) is None else "done"


def _prepare(config_path, output, seeds, only) -> tuple[dict, Path, list, list]:
    """(recipe, output, seeds, plan of (method, its settings, seed)), checked: every method's settings parse and
    nothing made otherwise than the recipe asks would be reused."""
    recipe = load_recipe(config_path)
    output = Path(output)
    found = methods(recipe)
    _check_settings(recipe, found, config_path, output)
    chosen = found if only is None else select_methods(found, only, config_path)
    seeds = list(seeds if seeds is not None else recipe.get("seeds", [0, 1, 2]))
    plan = [(method, settings, seed) for method, settings in chosen.items() for seed in seeds]
    _check_what_is_reused(recipe, output, plan)
    _check_models_at_hand(recipe, output, plan)
    return recipe, output, seeds, plan


def _check_what_is_reused(recipe: dict, output: Path, plan) -> None:
    """Fail, before anything runs, when a run that this comparison would reuse or resume was made otherwise than the
    recipe asks (`bft.reuse`)."""
    from bft.grpo import grpo_arguments
    from bft.train import resolved_recipe, train_arguments

    for method, settings, seed in plan:
        run_dir = output / "runs" / run_name(method, seed)
        start = output / "runs" / run_name(settings["init_from"], seed) if "init_from" in settings else None
        fields = _training_fields(recipe, output, settings, seed)
        reuse.check_run(run_dir, resolved_recipe(*train_arguments(fields)), start)
        if "grpo" in recipe:
            second_dir = output / "runs" / run_name(method + GRPO_SUFFIX, seed)
            reuse.check_run(second_dir, resolved_recipe(*grpo_arguments(_grpo_fields(recipe, run_dir, seed))), run_dir)


def _check_models_at_hand(recipe: dict, output: Path, plan) -> None:
    """Fail, before anything runs, when a finished run without its model (restored from `bft compare --archive`)
    is still needed: to evaluate it, or to start another run from it."""
    runs, needed = output / "runs", []
    for method, settings, seed in plan:
        run_dir = runs / run_name(method, seed)
        stages = [run_dir]
        if "init_from" in settings and not run_folder.is_finished(run_dir):
            needed.append((runs / run_name(settings["init_from"], seed), f"{run_dir.name} is to be trained from it"))
        if "grpo" in recipe:
            stages.append(runs / run_name(method + GRPO_SUFFIX, seed))
            if not run_folder.is_finished(stages[1]):
                needed.append((run_dir, f"{stages[1].name} is to be trained from it"))
        for stage in stages:
            for evaluation in recipe.get("evaluations", []):
                key = task_key(evaluation)
                if _evaluation_state(stage, output / "evals" / stage.name / key, evaluation) == "to evaluate":
                    needed.append((stage, f"its {key} evaluation is to be made"))
    missing = [f"{run_dir} ({why})" for run_dir, why in needed
               if run_folder.is_finished(run_dir) and not run_folder.has_model(run_dir)]
    if missing:
        raise InputError(f"finished runs without their model are still needed: {'; '.join(missing)}. Delete such a "
                         "run to train it again, or copy its model back into its folder")


def _base_runs(state, recipe: dict, output: Path, seeds) -> dict:
    """The untrained model evaluated once, as method `base` with the same scores at every seed: where every loss
    starts from, so the report shows what each one gained and what it forgot."""
    scores, items = _evaluations(state, recipe["train"]["model_name_or_path"], output / "evals" / BASE, recipe)
    return {run_name(BASE, seed): {"method": BASE, "loss_type": BASE, "seed": seed, "run_dir": None,
                                    "scores": scores, "item_scores": items} for seed in seeds}


def _check_settings(recipe: dict, found: dict[str, dict], path, output: Path) -> None:
    """Parse every method's training settings (and the GRPO stage's) before the first run, so a misspelt field in
    the last variant fails now, not hours into the comparison."""
    from bft.grpo import grpo_arguments
    from bft.train import train_arguments

    for method, settings in found.items():
        fields = {key: value for key, value in settings.items() if key != "init_from"}
        try:
            train_arguments({**recipe["train"], **fields, "output_dir": str(output / "runs" / method)})
        except InputError as error:
            raise InputError(f"{path}: method {method!r}: {error}") from None
    if "grpo" in recipe:
        try:
            grpo_arguments({**recipe["grpo"], "output_dir": str(output / "runs" / "grpo")})
        except InputError as error:
            raise InputError(f"{path}: grpo: {error}") from None


def _evaluations(state, model: Path | str, evals: Path, recipe: dict) -> tuple[dict, dict]:
    """(scores, item scores) of every evaluation of one model (a run's folder or a model name), computed on the main
    process only."""
    scores, items = {}, {}
    if state.is_main_process:
        for evaluation in recipe.get("evaluations", []):
            key = task_key(evaluation)
            record = reuse.evaluation_record(_made_by(model), evaluation)
            scores[key] = _evaluate_once(model, evals / key, evaluation, record)
            items[key] = _item_scores(evals / key, evaluation["task"])
    state.wait_for_everyone()
    return scores, items


def _made_by(model: Path | str) -> dict:
    """The model of an evaluation's record: a run (its folder) by name and fingerprint, else the model's name."""
    return {"model": model.name, "run": run_folder.fingerprint(model)} if isinstance(model, Path) else {"model": model}


def _item_scores(out: Path, task: str) -> dict:
    """{metric: {item id: score}} from an evaluation's predictions (none for tasks scored as a whole)."""
    if not TASKS[task].item_scores:
        return {}
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines() if line]
    return {metric: {str(row["id"]): score(row) for row in rows} for metric, score in TASKS[task].item_scores.items()}


def _builds(recipe: dict) -> list[dict]:
    """The recipe's `build`: none, one builder's options, or a list of them."""
    build = recipe.get("build") or []
    return build if isinstance(build, list) else [build]


def _build_data(build: dict) -> None:
    """Build the recipe's training data once (`build: {builder: go-naming, output: DIR, ...builder options}`); data
    already built there is reused only if built with the same options (its meta.json says which)."""
    build_fn, out, source, options = _resolve_build(build)
    if not (out / "meta.json").exists():
        build_fn(source, out, **options)


def _resolve_build(build: dict):
    """(builder function, output folder, data folder, options) of a recipe's build, checked: every option is the
    builder's, and data already built in the output folder was built with these options."""
    from bft.data import data_dir
    from bft.data.builders import BUILDERS, builder_options

    options = dict(build)
    builder, out = options.pop("builder"), Path(options.pop("output"))
    accepted = builder_options(builder)
    build_fn, source = BUILDERS[builder], data_dir(options.pop("data_dir", None))
    unknown = [key for key in options if key not in accepted]
    if unknown:
        raise InputError(f"build {builder!r}: unknown option {', '.join(map(repr, unknown))}; its options are "
                         f"{', '.join(accepted) or 'none'}")
    if (out / "meta.json").exists():
        reuse.check_data(out, builder, {**accepted, **options})
    return build_fn, out, source, options


def run_name(method: str, seed: int) -> str:
    return f"{method}-seed{seed}"


def task_key(evaluation: dict) -> str:
    """A stable name for an evaluation: its `name`, else the task plus the data file's folder."""
    if "name" in evaluation:
        return evaluation["name"]
    data = evaluation.get("data") or evaluation.get("sets")
    return evaluation["task"] + (f"-{Path(data).parent.name}" if evaluation["task"] == "mcq" and data else "")


def _training_fields(recipe: dict, output: Path, settings: dict, seed: int) -> dict:
    """One run's training settings: the recipe's, the method's and the seed."""
    fields = {**recipe["train"], **settings, "seed": seed}
    if "init_from" in fields:  # continue from another method's run of the same seed (e.g. after SFT)
        fields["model_name_or_path"] = str(output / "runs" / run_name(fields.pop("init_from"), seed))
    return fields


def _grpo_fields(recipe: dict, first_stage: Path, seed: int) -> dict:
    return {**recipe["grpo"], "model_name_or_path": str(first_stage), "seed": seed}


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


def _evaluate_once(model: Path | str, out: Path, evaluation: dict, record: dict) -> dict:
    """Scores of one evaluation of one model: its results when they can stand for `record` (`_reusable_results`),
    else a new evaluation, the results made otherwise (another training of the run, other options) removed first."""
    results = _reusable_results(out, evaluation, record)
    recorded = reuse.read_evaluation_record(out)
    if results is None:
        if out.exists() and recorded != record:  # made otherwise, or a partial one of unknown origin
            logger.info("evaluating %s again: it was made otherwise (%s)", out,
                        reuse.differences(recorded or {}, record))
            shutil.rmtree(out)
        reuse.write_evaluation_record(out, record)  # first: a killed evaluation is resumed only by the same model
        _evaluate(str(model), out, evaluation)
        results = json.loads(_results_file(out, evaluation).read_text())
    elif recorded is None:  # written before records were kept: taken as the recipe's
        reuse.write_evaluation_record(out, record)
    return TASKS[evaluation["task"]].scores(results)


def _reference_scores(evals: Path, recipe: dict) -> dict:
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


def _reusable_results(out: Path, evaluation: dict, record: dict) -> dict | None:
    """An evaluation's results if they hold every metric the report tabulates (results written before a metric
    existed are evaluated again) and their record is `record` (none: written before records were kept)."""
    results_file = _results_file(out, evaluation)
    if not results_file.exists() or reuse.read_evaluation_record(out) not in (None, record):
        return None
    results = json.loads(results_file.read_text())
    return results if TASKS[evaluation["task"]].scores(results) is not None else None


def _results_file(out: Path, evaluation: dict) -> Path:
    return out / TASKS[evaluation["task"]].results_file


def _evaluate(model: str, out: Path, evaluation: dict) -> None:
    options = {key: value for key, value in evaluation.items() if key not in ("task", "name")}
    evaluate(evaluation["task"], model, out, **options)
