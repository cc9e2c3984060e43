"""A comparison recipe: read (with what it `extends`), checked, and turned into methods and each run's settings."""

from pathlib import Path

import yaml

from bft.errors import InputError, yaml_error
from bft.eval.tasks import check_options
from bft.loss_types import LOSS_TYPES
from bft.ranges import SEED

DEFAULT_LOSS_TYPES = ("nll", "dft", "bft")
BASE = "base"  # the method name of the untrained model (`evaluate_base: true`)
RECIPE_KEYS = ("name", "build", "train", "loss_types", "variants", "seeds", "evaluations", "baselines",
               "evaluate_base", "grpo", "keep_checkpoints")


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
            check_options(evaluation.get("task"),
                          {key: value for key, value in evaluation.items() if key not in ("task", "name")},
                          evaluation=task_key(evaluation) if "task" in evaluation else None)
        except InputError as error:
            raise InputError(f"{path}: {error}") from error
    keys = [task_key(evaluation) for evaluation in recipe.get("evaluations", [])]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise InputError(f"{path}: two evaluations would share the results folder and table "
                         f"{', '.join(map(repr, repeated))}: give each a distinct `name`")
    found = methods(recipe, path)
    for seed in recipe.get("seeds", []):
        SEED.check("each of seeds", seed, str(path))
    known = [*found, *([BASE] if recipe.get("evaluate_base") else [])]
    unknown = [name for name in recipe.get("baselines", []) if name not in known]
    if unknown:
        raise InputError(f"{path}: baselines {', '.join(map(repr, unknown))} are no method of the recipe; its methods "
                         f"are {', '.join(known)}")
    return recipe


def _read_recipe(path: Path, extended_by: tuple = ()) -> dict:
    """The YAML mapping of `path`, on top of the recipe it `extends` (recursively): its keys replace the base's, and
    its `train` fields override the base's `train` one by one."""
    try:
        recipe = yaml.safe_load(path.read_text())
    except OSError as error:
        raise InputError(f"{path}: cannot read the recipe ({error})") from error
    except yaml.YAMLError as error:
        raise yaml_error(path, error) from None
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
        if name in LOSS_TYPES:
            raise InputError(f"{path}: variant {name!r} has a loss type's name, so the report would show it as that "
                             f"loss: name it by what it changes (e.g. {name}-lr2e-4)")
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


def check_settings(recipe: dict, found: dict[str, dict], path, output: Path) -> None:
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


def run_name(method: str, seed: int) -> str:
    return f"{method}-seed{seed}"


def task_key(evaluation: dict) -> str:
    """A stable name for an evaluation: its `name`, else the task plus, for mcq, the data file's folder (the file's
    own name for a file in the current folder)."""
    if "name" in evaluation:
        return evaluation["name"]
    data = evaluation.get("data") or evaluation.get("sets")
    if evaluation["task"] != "mcq" or not data:
        return evaluation["task"]
    return f"{evaluation['task']}-{Path(data).parent.name or Path(data).stem}"


def training_fields(recipe: dict, output: Path, settings: dict, seed: int) -> dict:
    """One run's training settings: the recipe's, the method's and the seed."""
    fields = {**recipe["train"], **settings, "seed": seed}
    if "init_from" in fields:  # continue from another method's run of the same seed (e.g. after SFT)
        fields["model_name_or_path"] = str(output / "runs" / run_name(fields.pop("init_from"), seed))
    return fields


def grpo_fields(recipe: dict, first_stage: Path, seed: int) -> dict:
    return {**recipe["grpo"], "model_name_or_path": str(first_stage), "seed": seed}
