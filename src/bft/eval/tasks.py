"""The one table of evaluation tasks (`TASKS`), read by `bft eval`, `bft eval suite`, `bft compare` and `bft grpo`.

Each entry (`EvalTask`) says what a task is: the options it takes with their defaults (an option of another task is
an error naming the task and its options), the metrics the report tabulates (the first two head the suite's table),
how one prediction scores for the bootstrap over items, the file its results go to, and whether it loads the model
itself. `evaluate(task, model, output, **options)` runs any of them. A new evaluation is one module with its run
function and one entry here.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bft.data import data_dir
from bft.errors import InputError
from bft.models import DEFAULT_ENCODER

# Scoring batches (log-likelihood of options) and generation batches (bf16 decoding is bound by reading the
# weights, so more rows a step cost little: 64 is 1.7x faster than 16 on 2 CPU cores, docs/benchmarks.md)
SCORING_BATCH_SIZE, GENERATION_BATCH_SIZE = 16, 64
# Options of every task that generates answers (greedy decoding; `max_new_tokens` is each task's own)
GENERATION = {"generation_batch_size": GENERATION_BATCH_SIZE, "repetition_penalty": 1.0}


@dataclass(frozen=True)
class EvalTask:
    """One evaluation task.

    `run(model, output, options)`: `model` is a loaded `(model, tokenizer)` pair, or its name or path when
    `loads_model` (the task loads it itself); `options` holds every option resolved (`data_dir` a Path) and
    `records` (the input records read beforehand, or None); returns the results written to `output/results_file`.
    `options`: option name -> default (None: not given); a task that does not load the model itself takes `dtype`
    (the weights' dtype, as `bft.models.load_for_eval` takes it). `metrics`: what `bft compare`'s report tabulates,
    read from the results by `read_scores` when given. `item_scores`: metric -> score of one row of
    `predictions.jsonl`, for the bootstrap over items (none: scored as a whole).
    """

    run: Callable
    options: dict
    metrics: tuple[str, ...]
    item_scores: dict[str, Callable] = field(default_factory=dict)
    results_file: str = "results.json"
    loads_model: bool = False
    read_scores: Callable | None = None

    @property
    def headline(self) -> tuple[str, str]:
        """The two metrics of the suite's summary table."""
        return self.metrics[0], self.metrics[1]

    def scores(self, results: dict) -> dict | None:
        """{metric: value} of `metrics` from the task's results; None when one is missing (results written before
        that metric existed)."""
        if self.read_scores is not None:
            return self.read_scores(results)
        if any(metric not in results for metric in self.metrics):
            return None
        return {metric: results[metric] for metric in self.metrics}


def _go_naming(model, output, options):
    from bft.eval.go_naming import evaluate_go_naming

    sets = options["sets"] or options["data_dir"] / "geneagent" / "GO_terms.csv"
    go_dir = options["go_dir"] or options["data_dir"] / "go_bp"
    return evaluate_go_naming(*model, sets, output, go_dir=go_dir, encoder=options["encoder"],
                              limit=options["limit"], batch_size=options["generation_batch_size"],
                              max_new_tokens=options["max_new_tokens"],
                              repetition_penalty=options["repetition_penalty"], gene_sets=options["records"])


def _mcq(model, output, options):
    from bft.eval.mcq import evaluate_mcq

    if not options["data"]:
        raise InputError("the mcq evaluation needs data: a JSONL of question, options, answer_idx")
    return evaluate_mcq(*model, options["data"], output, limit=options["limit"], batch_size=options["batch_size"],
                        questions=options["records"])


def _pubmedqa(model, output, options):
    from bft.eval.pubmedqa import evaluate_pubmedqa

    return evaluate_pubmedqa(*model, options["pubmedqa_dir"] or options["data_dir"] / "pubmedqa", output,
                             limit=options["limit"], batch_size=options["generation_batch_size"],
                             max_new_tokens=options["max_new_tokens"], repetition_penalty=options["repetition_penalty"])


def _represent(model_name, output, options):
    from bft.bio.represent import represent

    return represent(str(model_name), output, data_folder=options["data_dir"], limit_genes=options["limit_genes"],
                     encoder=options["encoder"], batch_size=options["generation_batch_size"],
                     max_new_tokens=options["max_new_tokens"], repetition_penalty=options["repetition_penalty"],
                     dtype=options["dtype"])


def _represent_scores(summary: dict) -> dict:
    profile = summary["ggi"]["model profile"]
    return {"ggi_auroc": profile["auroc"], "ggi_auprc": profile["auprc"],
            "profile_looping_share": summary["profile_quality"]["looping_share"]}


# `answered_share`: answers that say something, the others scored as failures (results without it, scored before
# such answers were, are evaluated again by `bft compare`)
TASKS = {
    "go-naming": EvalTask(
        run=_go_naming,
        options={"data_dir": None, "dtype": "auto", "limit": None, "sets": None, "go_dir": None,
                 "encoder": DEFAULT_ENCODER, **GENERATION, "max_new_tokens": 32},
        metrics=("semantic_similarity_mean", "percentile_mean", "rougeL_mean", "distinct_name_share",
                 "answered_share"),
        item_scores={"semantic_similarity_mean": lambda row: row["similarity"],
                     "percentile_mean": lambda row: row["percentile"], "rougeL_mean": lambda row: row["rougeL"]}),
    "mcq": EvalTask(
        run=_mcq,
        options={"dtype": "auto", "limit": None, "data": None, "batch_size": SCORING_BATCH_SIZE},
        metrics=("accuracy", "accuracy_norm"),
        item_scores={"accuracy": lambda row: float(row["correct"]),
                     "accuracy_norm": lambda row: float(row["prediction_norm"] == row["answer_idx"])}),
    "pubmedqa": EvalTask(
        run=_pubmedqa,
        options={"data_dir": None, "dtype": "auto", "limit": None, "pubmedqa_dir": None, **GENERATION,
                 "max_new_tokens": 128},
        metrics=("accuracy", "macro_f1", "answered_share"),
        item_scores={"accuracy": lambda row: float(row["correct"])}),
    "represent": EvalTask(
        run=_represent,
        options={"data_dir": None, "dtype": "auto", "limit_genes": None, "encoder": DEFAULT_ENCODER, **GENERATION,
                 "max_new_tokens": 160},
        metrics=("ggi_auroc", "ggi_auprc", "profile_looping_share"),
        results_file="summary.json", loads_model=True, read_scores=_represent_scores),
}


def task(name: str) -> EvalTask:
    """The table's entry for `name`; raises InputError for a task not in the table."""
    if name not in TASKS:
        raise InputError(f"unknown evaluation task {name!r}: expected one of {', '.join(TASKS)}")
    return TASKS[name]


def check_options(name: str, options) -> None:
    """Fail on an unknown task, or on an option the task does not take (another task's included), naming the task
    and the options it takes."""
    accepted = task(name).options
    unknown = [key for key in options if key not in accepted]
    if unknown:
        raise InputError(f"evaluation {name!r}: unknown option {', '.join(map(repr, unknown))}; the {name} task "
                         f"takes {', '.join(accepted)}")


def resolve_options(name: str, options: dict) -> dict:
    """The task's options with the defaults filled in (None counts as not given); `data_dir` resolved to a Path."""
    check_options(name, options)
    given = {key: value for key, value in options.items() if value is not None}
    if given.get("limit", 1) < 1:
        raise InputError(f"evaluation {name!r}: limit must be at least 1, got {given['limit']}: an evaluation of no "
                         "items has no score")
    resolved = {**TASKS[name].options, **given}
    if "data_dir" in resolved:
        resolved["data_dir"] = data_dir(resolved["data_dir"])
    return resolved


def evaluate(name: str, model, output, records=None, **options) -> dict:
    """Run task `name` on `model` (a name or path, or a loaded `(model, tokenizer)` pair); results go to `output`.
    `records`: the task's input records read and checked beforehand (None: read from the data). Raises InputError
    for an unknown task or option, or a loaded model given to a task that loads its own."""
    entry, options = task(name), resolve_options(name, options)
    if entry.loads_model and not isinstance(model, (str, Path)):
        raise InputError(f"the {name} evaluation takes a model name or path")
    if not entry.loads_model and isinstance(model, (str, Path)):
        from bft.models import load_for_eval

        model = load_for_eval(str(model), options["dtype"])
    return entry.run(model, Path(output), {**options, "records": records})
