"""What a comparison is to do, checked before anything runs: the runs of every method x seed, what of an earlier
invocation into the same folder they reuse (`bft.compare.reuse`), and the state of each run and evaluation
(`--plan`)."""

from pathlib import Path

from bft import run_folder
from bft.compare import reuse
from bft.compare.builds import builds, check_builds, resolve_build
from bft.compare.evaluations import made_by, reusable_results
from bft.compare.recipe import (
    BASE,
    check_settings,
    grpo_fields,
    load_recipe,
    methods,
    run_name,
    select_methods,
    task_key,
    training_fields,
)
from bft.compare.report import GRPO_SUFFIX
from bft.errors import InputError


def plan_comparison(config_path, output, seeds=None, only=None) -> dict:
    """What `run_comparison` would do, doing none of it: the recipe, built data and the runs to reuse are checked as
    before a comparison, and each data set, run and evaluation is listed with what is left to do."""
    recipe, output, seeds, plan = prepare(config_path, output, seeds, only)
    data = {}
    for build in builds(recipe):
        _, out, _, _ = resolve_build(build)
        data[str(out)] = "built" if (out / "meta.json").exists() else "to build"
    models = _evaluated_models(recipe, output, plan)
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


def prepare(config_path, output, seeds, only) -> tuple[dict, Path, list, list]:
    """(recipe, output, seeds, plan of (method, its settings, seed)), checked: every method's settings parse and
    nothing made otherwise than the recipe asks would be reused."""
    recipe = load_recipe(config_path)
    check_builds(recipe, config_path)
    output = Path(output)
    found = methods(recipe)
    check_settings(recipe, found, config_path, output)
    chosen = found if only is None else select_methods(found, only, config_path)
    seeds = list(seeds if seeds is not None else recipe.get("seeds", [0, 1, 2]))
    plan = [(method, settings, seed) for method, settings in chosen.items() for seed in seeds]
    _check_what_is_reused(recipe, output, plan)
    _check_models_at_hand(recipe, output, plan)
    _check_inputs(recipe, output, plan, config_path)
    return recipe, output, seeds, plan


def _check_inputs(recipe: dict, output: Path, plan, path) -> None:
    """Fail, before anything runs, on an input that a run or evaluation still to do would refuse: a method's
    training data and model, the GRPO stage's prompts, an evaluation's input files. Inputs of finished work are not
    read (a comparison restored from its archive reports without them); those the recipe's `build` makes are checked
    as they are built."""
    built = [_resolved(build["output"]) for build in builds(recipe)]

    def made_by_build(value) -> bool:
        return isinstance(value, str) and any(folder in (_resolved(value), *_resolved(value).parents)
                                              for folder in built)

    try:
        _check_training_inputs(recipe, output, plan, made_by_build)
        _check_evaluation_inputs(recipe, output, plan, made_by_build)
    except InputError as error:
        raise InputError(f"{path}: {error}") from None


def _check_training_inputs(recipe: dict, output: Path, plan, made_by_build) -> None:
    from bft.data.training import check_training_data
    from bft.models import DEFAULT_MODEL, check_model

    checked = set()
    for method, settings, seed in plan:
        fields = {**recipe["train"], **settings}
        inputs = []
        if not run_folder.is_finished(output / "runs" / run_name(method, seed)):
            inputs += [(check_training_data, fields.get(key)) for key in ("data", "eval_data")]
            if "init_from" not in settings:
                inputs.append((check_model, fields.get("model_name_or_path") or DEFAULT_MODEL))
        if "grpo" in recipe and not run_folder.is_finished(output / "runs" / run_name(method + GRPO_SUFFIX, seed)):
            inputs.append((check_training_data, recipe["grpo"].get("data")))
        for check, value in inputs:
            if value is not None and not made_by_build(value) and (check, str(value)) not in checked:
                checked.add((check, str(value)))
                try:
                    check(str(value))
                except InputError as error:
                    raise InputError(f"method {method!r}: {error}") from None


def _check_evaluation_inputs(recipe: dict, output: Path, plan, made_by_build) -> None:
    from bft.eval.tasks import read_inputs

    models = _evaluated_models(recipe, output, plan)
    for evaluation in recipe.get("evaluations", []):
        options = {key: value for key, value in evaluation.items() if key not in ("task", "name")}
        key = task_key(evaluation)
        to_do = any(_evaluation_state(model, output / "evals" / name / key, evaluation) == "to evaluate"
                    for name, model in models.items())
        if to_do and not any(made_by_build(value) for value in options.values()):
            try:
                read_inputs(evaluation["task"], **options)
            except InputError as error:
                raise InputError(f"evaluation {key!r}: {error}") from None


def _evaluated_models(recipe: dict, output: Path, plan) -> dict:
    """{name: model} of everything the comparison evaluates: the untrained model (`base`, by its name) and each
    run's folder (and its GRPO stage's)."""
    models = {BASE: recipe["train"]["model_name_or_path"]} if recipe.get("evaluate_base") else {}
    for method, _, seed in plan:
        for stage in (method, method + GRPO_SUFFIX) if "grpo" in recipe else (method,):
            models[run_name(stage, seed)] = output / "runs" / run_name(stage, seed)
    return models


def _resolved(path) -> Path:
    return Path(path).expanduser().resolve()


def _training_state(run_dir: Path) -> str:
    if run_folder.is_finished(run_dir):
        return "finished" if run_folder.has_model(run_dir) else "finished (results only: no model)"
    checkpoint = run_folder.latest_checkpoint(run_dir)
    return f"to resume from {checkpoint.name}" if checkpoint else "to train"


def _evaluation_state(model: Path | str, out: Path, evaluation: dict) -> str:
    if isinstance(model, Path) and not run_folder.is_finished(model):
        return "to evaluate"
    record = reuse.evaluation_record(made_by(model), evaluation)
    return "to evaluate" if reusable_results(out, evaluation, record) is None else "done"


def _check_what_is_reused(recipe: dict, output: Path, plan) -> None:
    """Fail, before anything runs, when a run that this comparison would reuse or resume was made otherwise than the
    recipe asks (`bft.compare.reuse`)."""
    from bft.grpo import grpo_arguments
    from bft.train import resolved_recipe, train_arguments

    for method, settings, seed in plan:
        run_dir = output / "runs" / run_name(method, seed)
        start = output / "runs" / run_name(settings["init_from"], seed) if "init_from" in settings else None
        fields = training_fields(recipe, output, settings, seed)
        reuse.check_run(run_dir, resolved_recipe(*train_arguments(fields)), start)
        if "grpo" in recipe:
            second_dir = output / "runs" / run_name(method + GRPO_SUFFIX, seed)
            reuse.check_run(second_dir, resolved_recipe(*grpo_arguments(grpo_fields(recipe, run_dir, seed))), run_dir)


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
