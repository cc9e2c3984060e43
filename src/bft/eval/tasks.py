"""The one table of evaluation tasks (`TASKS`), read by `bft eval`, `bft eval suite`, `bft compare` and `bft grpo`.

Each entry (`EvalTask`) says what a task is: the options it takes with their defaults and meanings (an option of
another task is an error naming the task and its options; `bft eval TASK` and its --help are made from them), the
input it reads and checks before a model loads, the metrics the report tabulates (the first two head the suite's
table), how one prediction scores for the bootstrap over items, the file its results go to, whether it loads the
model itself, and its GRPO rewards. `evaluate(task, model, output, **options)` runs any of them. A new evaluation is
one module with its run function and one entry here.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bft import rewards
from bft.data import data_dir
from bft.errors import InputError
from bft.models import DEFAULT_ENCODER
from bft.ranges import AT_LEAST_ONE, POSITIVE, Range

# Scoring batches (log-likelihood of options) and generation batches (bf16 decoding is bound by reading the
# weights, so more rows a step cost little: 64 is 1.7x faster than 16 on 2 CPU cores, docs/benchmarks.md)
SCORING_BATCH_SIZE, GENERATION_BATCH_SIZE = 16, 64
# Options of every task that generates answers (greedy decoding; `max_new_tokens` is each task's own)
GENERATION = {"generation_batch_size": GENERATION_BATCH_SIZE, "repetition_penalty": 1.0}


@dataclass(frozen=True)
class Option:
    """What an option means, for `bft eval TASK --help` (which adds the default, when the option has one).

    `type`: converts the command line's text (None: the type of the option's default, `str` when it has none).
    `required`: the command line requires it (recipes and the suite take the table's default). `range`: the values
    allowed (`bft.ranges`), checked on the command line and in `resolve_options`.
    """

    help: str
    type: Callable | None = None
    choices: tuple[str, ...] | None = None
    required: bool = False
    range: Range | None = None


# The meanings of options several tasks take; a task declares its own options (and other meanings) in its entry
OPTIONS = {
    "data_dir": Option("the biomedical data folder (default: $BFT_DATA_DIR, else ../shared/data)"),
    "dtype": Option("weights and compute: auto = bf16 where the hardware multiplies it natively (scores agree with "
                    "float32 within their intervals, docs/benchmarks.md), float32 elsewhere",
                    choices=("auto", "float32", "bfloat16", "float16")),
    "limit": Option("only N items, a fixed pseudo-random subset (a quick pass)", int, range=AT_LEAST_ONE),
    "encoder": Option("sentence encoder: an embedded name or a sentence-transformers model"),
    "batch_size": Option("options scored at once", range=AT_LEAST_ONE),
    "generation_batch_size": Option("prompts generated at once", range=AT_LEAST_ONE),
    "repetition_penalty": Option("above 1 penalises tokens already in the prompt or answer during greedy "
                                 "generation (a common remedy for looping text); 1: plain greedy", range=POSITIVE),
    "max_new_tokens": Option("length limit of each answer, in tokens", range=AT_LEAST_ONE),
}


@dataclass(frozen=True)
class EvalTask:
    """One evaluation task.

    `run(model, output, options)`: `model` is a loaded `(model, tokenizer)` pair, or its name or path when
    `loads_model` (the task loads it itself); `options` holds every option resolved (`data_dir` a Path) and
    `records` (the input records read beforehand, or None); returns the results written to `output/results_file`.
    `options`: option name -> default (None: not given); a task that does not load the model itself takes `dtype`
    (the weights' dtype, as `bft.models.load_for_eval` takes it). `help`: what the task does, in a line.
    `option_help`: option name -> `Option`, for the options `OPTIONS` does not declare or the task means otherwise;
    every option must be declared in one of the two (else ValueError). `read_inputs(options)`: the input records,
    read and checked before a model loads (raises InputError on bad input). `metrics`: what `bft compare`'s report
    tabulates, read from the results by `read_scores` when given. `item_scores`: metric -> score of one row of
    `predictions.jsonl`, for the bootstrap over items (none: scored as a whole). `rewards`: reward name -> function
    (`bft.rewards`) for `bft grpo`, the first the default (none: no GRPO for the task).
    """

    run: Callable
    options: dict
    metrics: tuple[str, ...]
    help: str = ""
    option_help: dict[str, Option] = field(default_factory=dict)
    read_inputs: Callable | None = None
    item_scores: dict[str, Callable] = field(default_factory=dict)
    results_file: str = "results.json"
    loads_model: bool = False
    read_scores: Callable | None = None
    rewards: dict[str, Callable] = field(default_factory=dict)

    def __post_init__(self):
        undeclared = [name for name in self.options if name not in {**OPTIONS, **self.option_help}]
        if undeclared:
            raise ValueError(f"option(s) {', '.join(undeclared)} have no meaning: declare them in option_help")
        untyped = [name for name, default in self.options.items() if isinstance(default, bool)
                   and self.option(name).type is None]
        if untyped:  # bool("false") is True: the command line needs a parser of its own
            raise ValueError(f"option(s) {', '.join(untyped)} default to a bool: declare their Option's type")

    def option(self, name: str) -> Option:
        """What option `name` means for this task."""
        return self.option_help.get(name) or OPTIONS[name]

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


def _gene_sets_file(options):
    return options["sets"] or options["data_dir"] / "geneagent" / "GO_terms.csv"


def _go_dir(options):
    return options["go_dir"] or options["data_dir"] / "go_bp"


def _read_gene_sets(options):
    """The gene sets, read and checked; the GO names that the percentile reads after generation are checked too."""
    from bft.data.gene_sets import read_go_terms
    from bft.eval.go_naming import read_evaluation_sets

    gene_sets = read_evaluation_sets(_gene_sets_file(options))
    read_go_terms(_go_dir(options))
    return gene_sets


def _go_naming(model, output, options):
    from bft.eval.go_naming import evaluate_go_naming

    return evaluate_go_naming(*model, _gene_sets_file(options), output, go_dir=_go_dir(options),
                              encoder=options["encoder"], limit=options["limit"],
                              batch_size=options["generation_batch_size"], max_new_tokens=options["max_new_tokens"],
                              repetition_penalty=options["repetition_penalty"], gene_sets=options["records"])


def _mcq_data(options):
    if not options["data"]:
        raise InputError("the mcq task needs data: a JSONL of question, options, answer_idx")
    return options["data"]


def _read_questions(options):
    from bft.eval.mcq import read_mcq

    return read_mcq(_mcq_data(options))


def _mcq(model, output, options):
    from bft.eval.mcq import evaluate_mcq

    return evaluate_mcq(*model, _mcq_data(options), output, limit=options["limit"], batch_size=options["batch_size"],
                        questions=options["records"])


def _pubmedqa_dir(options):
    return options["pubmedqa_dir"] or options["data_dir"] / "pubmedqa"


def _check_pubmedqa(options):
    """Check that the test split is there and well-formed (no records: the task reads that fixed split itself)."""
    from bft.data.pubmedqa import read_pubmedqa

    read_pubmedqa(_pubmedqa_dir(options), "test")


def _pubmedqa(model, output, options):
    from bft.eval.pubmedqa import evaluate_pubmedqa

    return evaluate_pubmedqa(*model, _pubmedqa_dir(options), output,
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
        help="name the biological process of gene sets (or score given names)",
        option_help={"sets": Option("gene-set file: CSV/TSV/JSONL with id, genes, name (or GeneAgent's GO_terms.csv)",
                                    required=True),
                     "go_dir": Option("GO names for the percentile (default: DATA_DIR/go_bp)"),
                     "max_new_tokens": Option("length limit of each name, in tokens", range=AT_LEAST_ONE)},
        read_inputs=_read_gene_sets,
        metrics=("semantic_similarity_mean", "percentile_mean", "rougeL_mean", "distinct_name_share",
                 "answered_share"),
        item_scores={"semantic_similarity_mean": lambda row: row["similarity"],
                     "percentile_mean": lambda row: row["percentile"], "rougeL_mean": lambda row: row["rougeL"]},
        rewards={"similarity": rewards.go_naming_similarity, "percentile": rewards.go_naming_percentile,
                 "format": rewards.go_naming_format}),
    "mcq": EvalTask(
        run=_mcq,
        options={"dtype": "auto", "limit": None, "data": None, "batch_size": SCORING_BATCH_SIZE},
        help="multiple choice scored by log-likelihood (lm-evaluation-harness style)",
        option_help={"data": Option("JSONL with question, options {letter: text}, answer_idx")},
        read_inputs=_read_questions,
        metrics=("accuracy", "accuracy_norm"),
        item_scores={"accuracy": lambda row: float(row["correct"]),
                     "accuracy_norm": lambda row: float(row["prediction_norm"] == row["answer_idx"])},
        rewards={"correct": rewards.mcq_correct, "format": rewards.mcq_format}),
    "pubmedqa": EvalTask(
        run=_pubmedqa,
        options={"data_dir": None, "dtype": "auto", "limit": None, "pubmedqa_dir": None, **GENERATION,
                 "max_new_tokens": 128},
        help="PubMedQA test set by generation: accuracy and macro-F1",
        option_help={"pubmedqa_dir": Option("PubMedQA's ori_pqal.json and test_ground_truth.json (default: "
                                            "DATA_DIR/pubmedqa)"),
                     "max_new_tokens": Option("length limit of each reasoning + answer, in tokens",
                                               range=AT_LEAST_ONE)},
        read_inputs=_check_pubmedqa,
        metrics=("accuracy", "macro_f1", "answered_share"),
        item_scores={"accuracy": lambda row: float(row["correct"])},
        rewards={"correct": rewards.pubmedqa_correct, "format": rewards.pubmedqa_format}),
    "represent": EvalTask(
        run=_represent,
        options={"data_dir": None, "dtype": "auto", "limit_genes": None, "encoder": DEFAULT_ENCODER, **GENERATION,
                 "max_new_tokens": 160},
        help="profile -> embed -> GGI, beside NCBI summaries and symbols",
        option_help={"limit_genes": Option("a fixed subset of N genes, drawn pair by pair (60/10/30% from "
                                           "Gene2vec's train/valid/test genes) so that it keeps many pairs", int,
                                           range=AT_LEAST_ONE),
                     "max_new_tokens": Option("length limit of each profile, in tokens", range=AT_LEAST_ONE)},
        metrics=("ggi_auroc", "ggi_auprc", "profile_looping_share"),
        results_file="summary.json", loads_model=True, read_scores=_represent_scores),
}


def task(name: str) -> EvalTask:
    """The table's entry for `name`; raises InputError for a task not in the table."""
    if name not in TASKS:
        raise InputError(f"unknown evaluation task {name!r}: expected one of {', '.join(TASKS)}")
    return TASKS[name]


def check_options(name: str, options: dict, evaluation: str | None = None) -> None:
    """Fail (InputError) on an unknown task, on an option the task does not take (another task's included), naming
    the task and the options it takes, or on a value outside the option's range (None counts as not given).
    Messages start with `evaluation`, the recipe's name of the evaluation (`bft.compare.recipe.task_key`), where
    given, else with the task ("task 'mcq'"): a task's name is never given as an evaluation's."""
    entry = task(name)
    where = f"evaluation {evaluation!r} (task {name})" if evaluation else f"task {name!r}"
    unknown = [key for key in options if key not in entry.options]
    if unknown:
        raise InputError(f"{where}: unknown option {', '.join(map(repr, unknown))}; the {name} task takes "
                         f"{', '.join(entry.options)}")
    for key, value in options.items():
        if value is not None and entry.option(key).range is not None:
            entry.option(key).range.check(key, value, where)


def resolve_options(name: str, options: dict) -> dict:
    """The task's options with the defaults filled in (None counts as not given); `data_dir` resolved to a Path.
    Raises InputError for an option the task does not take or a value outside its declared range."""
    check_options(name, options)
    given = {key: value for key, value in options.items() if value is not None}
    resolved = {**TASKS[name].options, **given}
    if "data_dir" in resolved:
        resolved["data_dir"] = data_dir(resolved["data_dir"])
    return resolved


def read_inputs(name: str, **options):
    """Task `name`'s input records, read and checked (None where it has none to read beforehand), so that bad input
    fails before a model loads; `options` as `evaluate` takes them. Raises InputError on bad input."""
    entry = task(name)
    return None if entry.read_inputs is None else entry.read_inputs(resolve_options(name, options))


def with_rewards() -> list[str]:
    """The tasks that have GRPO rewards."""
    return [name for name, entry in TASKS.items() if entry.rewards]


def evaluate(name: str, model, output, records=None, **options) -> dict:
    """Run task `name` on `model` (a name or path, or a loaded `(model, tokenizer)` pair); results go to `output`.
    `records`: the task's input records read and checked beforehand (None: read from the data). Raises InputError
    for an unknown task or option, or a loaded model given to a task that loads its own."""
    entry, options = task(name), resolve_options(name, options)
    if entry.loads_model and not isinstance(model, (str, Path)):
        raise InputError(f"the {name} task takes a model name or path")
    if not entry.loads_model and isinstance(model, (str, Path)):
        from bft.models import load_for_eval

        model = load_for_eval(str(model), options["dtype"])
    return entry.run(model, Path(output), {**options, "records": records})
