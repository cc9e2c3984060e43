"""One entry point for every evaluation, used by `bft eval`, `bft eval suite` and `bft compare` alike.

`EVALUATIONS` maps a task name to the function that runs it on a loaded model; each takes the same options, with
one set of defaults (`DEFAULTS`). `evaluate(task, model, output, **options)` loads the model when given a name.
"""

from pathlib import Path

from bft.data import data_dir
from bft.errors import InputError
from bft.models import DEFAULT_ENCODER

# Scoring batches (log-likelihood of options) and generation batches (bf16 decoding is bound by reading the
# weights, so more rows a step cost little: 64 is 1.7x faster than 16 on 2 CPU cores, docs/benchmarks.md)
DEFAULTS = {"limit": None, "batch_size": 16, "generation_batch_size": 64, "encoder": DEFAULT_ENCODER,
            "max_new_tokens": {"go-naming": 32, "pubmedqa": 128, "represent": 160}, "repetition_penalty": 1.0}
# Every option an evaluation takes (a recipe's misspelt option fails instead of silently keeping its default)
OPTIONS = (*DEFAULTS, "data_dir", "dtype", "data", "records", "sets", "go_dir", "pubmedqa_dir", "limit_genes")


def _go_naming(model, tokenizer, output, options):
    from bft.eval.go_naming import evaluate_go_naming

    sets = options.get("sets") or options["data_dir"] / "geneagent" / "GO_terms.csv"
    go_dir = options.get("go_dir") or options["data_dir"] / "go_bp"
    return evaluate_go_naming(model, tokenizer, sets, output, go_dir=go_dir,
                              encoder=options["encoder"], limit=options["limit"],
                              batch_size=options["generation_batch_size"], max_new_tokens=options["max_new_tokens"],
                              repetition_penalty=options["repetition_penalty"], gene_sets=options.get("records"))


def _mcq(model, tokenizer, output, options):
    from bft.eval.mcq import evaluate_mcq

    if not options.get("data"):
        raise InputError("the mcq evaluation needs data: a JSONL of question, options, answer_idx")
    return evaluate_mcq(model, tokenizer, options["data"], output, limit=options["limit"],
                        batch_size=options["batch_size"], questions=options.get("records"))


def _pubmedqa(model, tokenizer, output, options):
    from bft.eval.pubmedqa import evaluate_pubmedqa

    return evaluate_pubmedqa(model, tokenizer, options.get("pubmedqa_dir") or options["data_dir"] / "pubmedqa",
                             output, limit=options["limit"], batch_size=options["generation_batch_size"],
                             max_new_tokens=options["max_new_tokens"], repetition_penalty=options["repetition_penalty"])


EVALUATIONS = {"go-naming": _go_naming, "mcq": _mcq, "pubmedqa": _pubmedqa}
# Tasks that load the model themselves (they also embed and fit classifiers)
MODEL_NAME_TASKS = ("represent",)
TASKS = (*EVALUATIONS, *MODEL_NAME_TASKS)


def check_options(task: str, options) -> None:
    """Fail on an unknown task or option name."""
    if task not in TASKS:
        raise InputError(f"unknown evaluation task {task!r}: expected one of {', '.join(TASKS)}")
    unknown = [key for key in options if key not in OPTIONS]
    if unknown:
        raise InputError(f"evaluation {task!r}: unknown option {', '.join(map(repr, unknown))}; the options are "
                         f"{', '.join(OPTIONS)}")


def resolve_options(task: str, options: dict) -> dict:
    """The task's options with the defaults filled in (None counts as not given)."""
    check_options(task, options)
    given = {key: value for key, value in options.items() if value is not None}
    if given.get("limit", 1) < 1:
        raise InputError(f"evaluation {task!r}: limit must be at least 1, got {given['limit']}: an evaluation of no "
                         "items has no score")
    resolved = {**DEFAULTS, **given}
    if "max_new_tokens" not in given:
        resolved["max_new_tokens"] = DEFAULTS["max_new_tokens"].get(task)
    resolved["data_dir"] = data_dir(given.get("data_dir"))
    return resolved


def evaluate(task: str, model, output, **options) -> dict:
    """Run `task` on `model` (a name or path, or a loaded `(model, tokenizer)` pair); results go to `output`."""
    options = resolve_options(task, options)
    if task == "represent":
        from bft.bio.represent import represent

        if not isinstance(model, (str, Path)):
            raise InputError("the represent evaluation takes a model name or path")
        return represent(str(model), output, data_folder=options["data_dir"], limit_genes=options.get("limit_genes"),
                         encoder=options["encoder"], batch_size=options["generation_batch_size"],
                         max_new_tokens=options["max_new_tokens"], repetition_penalty=options["repetition_penalty"],
                         dtype=options.get("dtype", "auto"))
    if isinstance(model, (str, Path)):
        from bft.models import load_for_eval

        model = load_for_eval(str(model), options.get("dtype", "auto"))
    loaded, tokenizer = model
    return EVALUATIONS[task](loaded, tokenizer, Path(output), options)
