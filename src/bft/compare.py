"""`bft compare`: the same model trained on the same data with each loss type and seed, then evaluated alike.

A comparison recipe (YAML) has a `train` section (a `bft train` recipe shared by every run: same data, steps, data
order and learning rate), `loss_types` (default nll, dft, bft), optional `variants` (named extra settings, e.g.
`bft-g32: {loss_type: bft, bft_group_size: 32}`), `seeds`, and `evaluations` (go-naming, mcq, pubmedqa, represent).
Everything lands under `--output`: `runs/METHOD-seedS/` (training), `evals/METHOD-seedS/TASK/` (results),
`report.md`, `report.json` and plots. Finished runs and evaluations are reused, so a killed comparison restarted
with the same command goes on where it stopped.
"""

import logging
from pathlib import Path

import yaml

from bft.files import write_text_atomic
from bft.models import DEFAULT_ENCODER

logger = logging.getLogger(__name__)
DEFAULT_LOSS_TYPES = ("nll", "dft", "bft")
# task -> the metrics of its results that the report tabulates
TASK_METRICS = {
    "go-naming": ("semantic_similarity_mean", "percentile_mean", "rougeL_mean"),
    "mcq": ("accuracy", "accuracy_norm"),
    "pubmedqa": ("accuracy", "macro_f1"),
    "represent": ("ggi_auroc", "ggi_auprc", "profile_looping_share"),
}


def load_recipe(path) -> dict:
    recipe = yaml.safe_load(Path(path).read_text())
    if not isinstance(recipe, dict) or not isinstance(recipe.get("train"), dict):
        raise ValueError(f"{path}: expected a YAML mapping with a 'train' section (a bft train recipe)")
    for evaluation in recipe.get("evaluations", []):
        if evaluation.get("task") not in TASK_METRICS:
            raise ValueError(f"{path}: evaluation task {evaluation.get('task')!r} is not one of {', '.join(TASK_METRICS)}")
    return recipe


def methods(recipe) -> dict[str, dict]:
    """Method name -> the training fields that define it (loss types, then the recipe's variants)."""
    found = {loss_type: {"loss_type": loss_type} for loss_type in recipe.get("loss_types", DEFAULT_LOSS_TYPES)}
    found.update(recipe.get("variants") or {})
    return found


def run_comparison(config_path, output, seeds=None) -> dict:
    """Train every method x seed, evaluate each run, write the report; returns the report's data."""
    from bft.report import write_report

    recipe = load_recipe(config_path)
    output = Path(output)
    if "build" in recipe:
        _build_data(recipe["build"])
    seeds = list(seeds if seeds is not None else recipe.get("seeds", [0, 1, 2]))
    base_recipe = output / "train-recipe.yaml"
    write_text_atomic(base_recipe, yaml.safe_dump(recipe["train"], sort_keys=False))
    runs = {}
    for method, settings in methods(recipe).items():
        for seed in seeds:
            name = f"{method}-seed{seed}"
            run_dir = output / "runs" / name
            _train_once(base_recipe, run_dir, {**settings, "seed": seed})
            scores = {task_key(e): _evaluate_once(run_dir, output / "evals" / name / task_key(e), e)
                      for e in recipe.get("evaluations", [])}
            runs[name] = {"method": method, "seed": seed, "run_dir": str(run_dir), "scores": scores}
    return write_report(output, recipe, runs, seeds)


def _build_data(build: dict) -> None:
    """Build the recipe's training data once (`build: {builder: go-naming, output: DIR, ...builder options}`)."""
    options = dict(build)
    builder, out = options.pop("builder"), options.pop("output")
    if (Path(out) / "meta.json").exists():
        return
    if builder == "go-naming":
        from bft.data.go_naming import build_go_naming as build_fn
    elif builder == "gene-profiles":
        from bft.data.gene_profiles import build_gene_profiles as build_fn
    elif builder == "pubmedqa":
        from bft.data.pubmedqa import build_pubmedqa as build_fn
    else:
        raise ValueError(f"unknown builder {builder!r}: expected go-naming, gene-profiles or pubmedqa")
    build_fn(options.pop("data_dir", "../shared/data"), out, **options)


def task_key(evaluation: dict) -> str:
    """A stable name for an evaluation: its `name`, else the task plus the data file's folder."""
    if "name" in evaluation:
        return evaluation["name"]
    data = evaluation.get("data") or evaluation.get("sets")
    return evaluation["task"] + (f"-{Path(data).parent.name}" if evaluation["task"] == "mcq" and data else "")


def _train_once(base_recipe: Path, run_dir: Path, overrides: dict) -> None:
    from bft.train import parse_train_args, run_training

    if (run_dir / "metrics.json").exists():
        logger.info("reusing the finished run %s", run_dir)
        return
    argv = ["--config", str(base_recipe), "--output_dir", str(run_dir), "--overwrite", "true"]
    for key, value in overrides.items():
        argv += [f"--{key}", str(value)]
    run_training(*parse_train_args(argv))


def _evaluate_once(run_dir: Path, out: Path, evaluation: dict) -> dict:
    """Scores of one evaluation of one run (read back from results.json when it already exists)."""
    import json

    results_file = out / ("summary.json" if evaluation["task"] == "represent" else "results.json")
    if not results_file.exists():
        _evaluate(str(run_dir), out, evaluation)
    results = json.loads(results_file.read_text())
    if evaluation["task"] == "represent":
        profile = results["ggi"]["model profile"]
        return {"ggi_auroc": profile["auroc"], "ggi_auprc": profile["auprc"],
                "profile_looping_share": results["profile_quality"]["looping_share"]}
    return {metric: results[metric] for metric in TASK_METRICS[evaluation["task"]]}


def _evaluate(model: str, out: Path, evaluation: dict) -> None:
    task, limit = evaluation["task"], evaluation.get("limit")
    data_dir = Path(evaluation.get("data_dir", "../shared/data"))
    if task == "represent":
        from bft.bio.represent import represent

        represent(model, out, data_dir, evaluation.get("limit_genes"), evaluation.get("encoder", DEFAULT_ENCODER),
                  max_new_tokens=evaluation.get("max_new_tokens", 160))
        return
    from bft.models import load_for_eval

    loaded, tokenizer = load_for_eval(model)
    if task == "go-naming":
        from bft.eval.go_naming import evaluate_go_naming

        evaluate_go_naming(loaded, tokenizer, evaluation.get("sets", data_dir / "geneagent" / "GO_terms.csv"), out,
                           data_dir / "go_bp", evaluation.get("encoder", DEFAULT_ENCODER), limit)
    elif task == "mcq":
        from bft.eval.mcq import evaluate_mcq

        evaluate_mcq(loaded, tokenizer, evaluation["data"], out, limit)
    else:
        from bft.eval.pubmedqa import evaluate_pubmedqa

        evaluate_pubmedqa(loaded, tokenizer, data_dir / "pubmedqa", out, limit,
                          max_new_tokens=evaluation.get("max_new_tokens", 128))
