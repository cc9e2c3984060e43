"""The `bft` command line: each subcommand parses its arguments and calls one function of the library.

`bft train` and `bft grpo` take their options from TRL's config dataclasses (`bft.train`, `bft.grpo`); the others
are argparse subcommands, whose evaluation and generation defaults come from `bft.eval.tasks`. Commands with an
`--overwrite` option refuse to replace finished results in `--output` without it (the file written last marks them
finished: `FINISHED_MARKERS`). Bad input (`bft.errors.InputError`, a missing file) prints one line and exits with
code 2; `BFT_DEBUG=1` shows the traceback instead. A command's result, where it returns one, is printed as JSON.
"""

import argparse
import logging
import os
import sys
from pathlib import Path

from bft.data import data_dir
from bft.data.builders import RANGES as BUILDER_RANGES
from bft.errors import InputError
from bft.eval.suite import SUITE_OPTIONS, suite_default
from bft.eval.tasks import GENERATION, OPTIONS, TASKS
from bft.files import check_writable, to_json
from bft.models import DEFAULT_ENCODER
from bft.ranges import AT_LEAST_ONE, LOSS_RANGES, NON_NEGATIVE, PROBABILITY, SEED, Range

EXIT_BAD_INPUT = 2
DATA_DIR_HELP = OPTIONS["data_dir"].help
EMBEDDINGS_HELP = ("emb.npz from `bft embed`, a word2vec text file (.txt, as Gene2vec ships) or a pickled "
                   "{symbol: vector} dict (.pkl, as GenePT ships; trusted files only)")


class _Parser(argparse.ArgumentParser):
    """argparse, its errors in the one line of every other bad input (`bft COMMAND: error: ...`, exit code 2)."""

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (`{self.prog} --help` lists the options)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bft",
        description="Balanced Fine-Tuning (BFT) of language models on biomedical knowledge.",
        epilog="Run `bft COMMAND --help` for a command's options. Bad input exits with code 2 and one line naming "
               "the file and line; set BFT_DEBUG=1 for the full traceback.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("train", add_help=False, help="fine-tune a causal LM with SFT (nll), DFT, BFT, ASFT or "
                                                      "EAFT: bft train --config FILE.yaml [--field value ...]")
    commands.add_parser("grpo", add_help=False, help="reinforcement learning with biomedical rewards after bft train: "
                                                     "bft grpo --config FILE.yaml [--model RUN]")

    data = commands.add_parser("data", help="build training sets (JSONL + meta.json) from biomedical sources")
    builders = data.add_subparsers(dest="builder", metavar="BUILDER", required=True)
    go = builders.add_parser("go-naming", help="gene set -> name of its GO biological process")
    _data_io(go)
    go.add_argument("--exclude", action="append", default=[], metavar="FILE",
                    help="gene-set file whose terms must not reach training (repeatable); the public GeneAgent set "
                         "is always excluded")
    _builder_option(go, "min_genes", int, 3)
    _builder_option(go, "max_genes", int, 100)
    _builder_option(go, "valid_fraction", float, 0.1)
    _builder_option(go, "seed", int, 0)
    _builder_option(go, "limit", int, None, "keep this many terms (a fixed pseudo-random subset)")
    profiles = builders.add_parser("gene-profiles", help="'describe gene X' -> its NCBI summary, split by gene")
    _data_io(profiles)
    _builder_option(profiles, "valid_fraction", float, 0.1)
    _builder_option(profiles, "seed", int, 0)
    _builder_option(profiles, "limit", int, None, "keep this many genes (a fixed pseudo-random subset)")
    _data_io(builders.add_parser("pubmedqa", help="abstract + question -> reasoning and yes/no/maybe (500/500 split)"))
    knowledge = builders.add_parser("gene-knowledge", help="MCQ probes: which GO process is gene X involved in? "
                                                           "(gene-profiles' trained and untrained genes)")
    _data_io(knowledge)
    _builder_option(knowledge, "valid_fraction", float, 0.1, "as given to gene-profiles")
    _builder_option(knowledge, "seed", int, 0, "as given to gene-profiles")
    _builder_option(knowledge, "limit", int, None, "as given to gene-profiles")
    knowledge.add_argument("--profiles", metavar="DIR", help="the gene-profiles output these probes go with: checked "
                                                             "to be split with the same three options")
    _builder_option(knowledge, "min_term_genes", int, 10)
    _builder_option(knowledge, "max_term_genes", int, 500)
    facts = builders.add_parser("gene-facts", help="templated facts 'gene X takes part in P' for gene-knowledge's "
                                                   "trained genes, with question and cloze probes")
    _data_io(facts)
    facts.add_argument("--knowledge", required=True, metavar="DIR",
                       help="the output of bft data gene-knowledge: its probes choose each gene's fact")
    _builder_option(facts, "templates", int, 4, "paraphrase templates per fact (1-4)")
    facts.add_argument("--exclude", action="append", default=[], metavar="FILE",
                       help="gene-set file whose terms no fact may name (repeatable); the public GeneAgent set is "
                            "always excluded")

    evaluate = commands.add_parser("eval", help="evaluate a model; writes results.json and predictions.jsonl")
    tasks = evaluate.add_subparsers(dest="task", metavar="TASK", required=True)
    for name, entry in TASKS.items():
        if not entry.loads_model:  # (those that do have a command of their own: bft represent)
            _eval_task(tasks, name, entry)
    suite = tasks.add_parser("suite", help="go-naming, MedQA, MedMCQA, MMLU, PubMedQA: one summary table")
    _eval_io(suite, "summary.json, summary.md and each task's folder")
    for option in SUITE_OPTIONS:
        _add_task_option(suite, option, OPTIONS[option], suite_default(option))

    inspect = commands.add_parser("inspect", help="show where a model's knowledge gaps are, token by token")
    inspect.add_argument("--model", required=True, help="embedded name, local folder, run folder or hub id")
    inspect.add_argument("--data", required=True,
                         help="training-format data, as bft train's --data (JSONL/JSON/Parquet/CSV/TSV or 'demo')")
    inspect.add_argument("--compare", help="a second data set shown side by side (e.g. general text)")
    inspect.add_argument("--output", required=True, help="folder for report.html, samples.jsonl, summary.json")
    _overwrite(inspect)
    inspect.add_argument("--group-size", type=LOSS_RANGES["bft_group_size"].argument(int), default=256,
                         help="BFT window g, in trained tokens")
    inspect.add_argument("--gamma", type=LOSS_RANGES["bft_gamma"].argument(float), default=1.0,
                         help="BFT sample weight exponent")
    inspect.add_argument("--threshold", type=PROBABILITY.argument(float), default=0.1,
                         help="a token is low-confidence when p < this")
    inspect.add_argument("--limit", type=AT_LEAST_ONE.argument(int), help="only the first N samples of each data set")
    inspect.add_argument("--batch-size", type=AT_LEAST_ONE.argument(int), default=8)
    inspect.add_argument("--top-k", type=NON_NEGATIVE.argument(int), default=10,
                         help="samples shown with the highest and lowest weight")

    profile = commands.add_parser("profile", help="the model writes a profile of each gene (resumable)")
    profile.add_argument("--model", required=True, help="embedded name, local folder, run folder or hub id")
    profile.add_argument("--genes", required=True,
                         help="text file of symbols (one a line) or a file with a 'gene' column")
    profile.add_argument("--output", required=True, help="profiles.jsonl: appended; genes already there are skipped")
    profile.add_argument("--template", default="describe", help="prompt: 'describe' (default) or 'summary'")
    _generation_options(profile)
    _repetition_penalty(profile)
    _dtype(profile)

    embed = commands.add_parser("embed", help="embed gene texts with a sentence encoder -> emb.npz (ids, X)")
    embed.add_argument("--input", required=True, help="profiles.jsonl, or a 'SYMBOL: text' synopsis file")
    embed.add_argument("--output", required=True, help="the .npz file to write")
    _overwrite(embed)
    embed.add_argument("--encoder", default=DEFAULT_ENCODER, help="sentence encoder (default: the bundled one)")

    downstream = commands.add_parser("downstream", help="tasks on gene embeddings")
    downstream_tasks = downstream.add_subparsers(dest="task", metavar="TASK", required=True)
    ggi = downstream_tasks.add_parser("ggi", help="gene-gene interaction (logistic regression, AUROC/AUPRC)")
    ggi.add_argument("--embeddings", required=True, help=EMBEDDINGS_HELP)
    ggi.add_argument("--pairs-dir", help="{train,valid,test}_{text,label}.txt (default: DATA_DIR/gene2vec_ggi)")
    ggi.add_argument("--data-dir", help=DATA_DIR_HELP)
    ggi.add_argument("--output", required=True)
    _overwrite(ggi)
    perturb = downstream_tasks.add_parser("perturb", help="single-cell perturbation response (ridge, Pearson)")
    perturb.add_argument("--embeddings", required=True, help=EMBEDDINGS_HELP)
    perturb.add_argument("--adata", required=True, help=".h5ad with obs['condition'] ('ctrl' for control cells)")
    perturb.add_argument("--output", required=True)
    _overwrite(perturb)
    perturb.add_argument("--test-fraction", type=Range(0, 1, low_open=True, high_open=True).argument(float),
                         default=0.25, help="share of the perturbations held out for testing")

    represent = commands.add_parser("represent", help="profile -> embed -> GGI, beside NCBI summaries and symbols")
    represent.add_argument("--model", required=True, help="embedded name, local folder, run folder or hub id")
    represent.add_argument("--output", required=True)
    _overwrite(represent)
    represent.add_argument("--data-dir", help=DATA_DIR_HELP)
    _add_task_option(represent, "limit_genes", TASKS["represent"].option("limit_genes"), None)
    represent.add_argument("--encoder", default=DEFAULT_ENCODER)
    _generation_options(represent)
    _repetition_penalty(represent)
    _dtype(represent)

    compare = commands.add_parser(
        "compare", help="train every loss type and variant alike over seeds, evaluate, report")
    compare.add_argument("--config", help="comparison recipe (configs/compare-*.yaml); required unless --archive")
    compare.add_argument("--output", required=True, help="folder for runs/, evals/, report.md, report.json, plots")
    compare.add_argument("--seeds", type=_seed_list, help="comma-separated seeds, overriding the recipe's (e.g. 0,1,2)")
    compare.add_argument("--methods", help="comma-separated methods to run (loss types or variant names; those they "
                         "start from run too) and report, e.g. nll,bft-after-sft; default: all of the recipe's")
    compare.add_argument("--plan", action="store_true", help="run nothing: check the recipe and what would be "
                         "reused, and list each data set, run and evaluation as done or still to do")
    compare.add_argument("--archive", metavar="DIR", help="run nothing: copy what the report of --output is made of "
                         "(each run's settings, metrics and logs, each evaluation's results; no models: a few MB) to "
                         "DIR, to keep in version control or move; copied back into --output, its runs and "
                         "evaluations are reused and only what is left is trained")
    return parser


def _builder_option(parser, option, kind, default, help=None):
    """`--option-name` of a `bft data` builder: a number in the option's range (`bft.data.builders.RANGES`)."""
    parser.add_argument("--" + option.replace("_", "-"), type=BUILDER_RANGES[option].argument(kind), default=default,
                        help=help)


def _data_io(parser):
    parser.add_argument("--data-dir", help=DATA_DIR_HELP)
    parser.add_argument("--output", required=True, help="folder to write the JSONL splits and meta.json into")
    _overwrite(parser)


def _generation_options(parser):
    """`--batch-size` and `--max-new-tokens` of `bft profile` and `bft represent` (the represent task's)."""
    parser.add_argument("--batch-size", type=AT_LEAST_ONE.argument(int), default=GENERATION["generation_batch_size"],
                        help=f"{OPTIONS['generation_batch_size'].help} (default: %(default)s)")
    parser.add_argument("--max-new-tokens", type=AT_LEAST_ONE.argument(int),
                        default=TASKS["represent"].options["max_new_tokens"],
                        help=f"{TASKS['represent'].option('max_new_tokens').help} (default: %(default)s)")


def _seed_list(text: str) -> list[int]:
    """`--seeds 0,1,2`: whole numbers that numpy seeds with."""
    try:
        return [SEED.argument(int)(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(f"each seed {error}") from None


def _overwrite(parser):
    parser.add_argument("--overwrite", action="store_true", help="replace finished results already in --output")


def _eval_task(tasks, name, entry):
    """`bft eval NAME`: --model, --output, --overwrite, then each option of the task's table entry (`--limit` for
    `limit`), with its meaning, type and default; and the task's other inputs, where it has some."""
    parser = tasks.add_parser(name, help=entry.help)
    _eval_io(parser, f"{entry.results_file} and predictions.jsonl", model_required=name != "go-naming")
    for option, default in entry.options.items():
        _add_task_option(parser, option, entry.option(option), default)
    if name in EVAL_INPUTS:
        EVAL_INPUTS[name](parser)


def _eval_io(parser, written, model_required=True):
    """--model (go-naming may take --predictions instead), --output, --overwrite."""
    parser.add_argument("--model", required=model_required, help="embedded name, local folder, run folder or hub id")
    parser.add_argument("--output", required=True, help=f"folder for {written}")
    _overwrite(parser)


def _add_task_option(parser, option, meaning, default):
    """`--option-name` from a task's option (`bft.eval.tasks.Option`) and its default."""
    help = meaning.help if default is None else f"{meaning.help} (default: {default})"
    kind = meaning.type or (str if default is None else type(default))
    parser.add_argument("--" + option.replace("_", "-"), required=meaning.required, choices=meaning.choices,
                        type=kind if meaning.range is None else meaning.range.argument(kind), default=default,
                        help=help.replace("%", "%%"))


def _given_names(parser):
    parser.add_argument("--predictions", help="instead of --model: names another system proposed (TSV/CSV/JSONL of "
                                              "set id and name), scored the same way; missing sets are reported")


def _harness_tasks(parser):
    parser.add_argument("--tasks", help="instead of --data: comma-separated lm-evaluation-harness tasks (e.g. "
                                        "medqa_4options,medmcqa; their data must be reachable)")
    parser.add_argument("--include-path", help="folder of extra harness task YAML files (with --tasks)")


# `bft eval TASK`'s inputs other than the table's: names given instead of a model's, the lm-evaluation-harness's
# data sets
EVAL_INPUTS = {"go-naming": _given_names, "mcq": _harness_tasks}


def _repetition_penalty(parser):
    _add_task_option(parser, "repetition_penalty", OPTIONS["repetition_penalty"], GENERATION["repetition_penalty"])


def _dtype(parser):
    _add_task_option(parser, "dtype", OPTIONS["dtype"], "auto")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv[:1] in (["train"], ["grpo"]):  # their options are the TRL config dataclasses' fields
        command, args = argv[0], argv[1:]
    else:
        args, unknown = parser.parse_known_args(argv)
        command = args.command
        if unknown:  # named by the command they were given to, as a subcommand's own errors are
            name = _command_name(command, args)
            parser.exit(EXIT_BAD_INPUT, f"{name}: error: unrecognized arguments: {' '.join(unknown)} (`{name} --help` "
                                        "lists the options)\n")
    if command is None:
        parser.print_help()
        return EXIT_BAD_INPUT
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        _refuse_finished_output(command, args)
        result = COMMANDS[command](args)
    except (InputError, FileNotFoundError) as error:  # bad input: one line, exit code 2; other errors: traceback
        if os.environ.get("BFT_DEBUG"):
            raise
        print(f"{_command_name(command, args)}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        _end_distributed()
    if result is not None:
        print(to_json(result, indent=2))
    return 0


def _command_name(command, args) -> str:
    """`bft eval mcq`, `bft data go-naming`, `bft train`: the command as typed, for messages."""
    if command in ("train", "grpo"):  # (their args are the command line's words)
        return f"bft {command}"
    sub = getattr(args, "builder", None) or getattr(args, "task", None)
    return " ".join(word for word in ("bft", command, sub) if word)


def _refuse_finished_output(command, args):
    """An --output that cannot be written fails before any work; a finished one is not replaced unless --overwrite is
    given (the file that marks it finished is written last, so a killed run never looks finished)."""
    if command == "compare":  # --plan writes nothing, --archive writes DIR and only reads --output
        if args.archive:
            check_writable(args.archive, folder=True)
        elif not args.plan:
            check_writable(args.output, folder=True)
    elif getattr(args, "output", None) is not None and command not in ("train", "grpo"):
        check_writable(args.output, folder=command not in FILE_OUTPUTS)
    if not getattr(args, "overwrite", True):
        marker = FINISHED_MARKERS.get(command)
        if command == "eval":
            marker = "summary.json" if args.task == "suite" else TASKS[args.task].results_file
        path = Path(args.output) if marker is None else Path(args.output) / marker
        if path.is_file():
            raise InputError(f"{path} exists: {args.output} holds finished results; pass --overwrite or another "
                             "--output")


# commands whose --output is a file, not a folder
FILE_OUTPUTS = ("embed", "profile")
# command -> the file written last into --output (None: --output is itself that file); bft eval: its task's
# `results_file`, the suite's summary.json
FINISHED_MARKERS = {"data": "meta.json", "inspect": "summary.json", "embed": None,
                    "downstream": "results.json", "represent": "summary.json"}


def _end_distributed():
    """Under `accelerate launch`, the process group is torn down once, at the end (else gloo may abort at exit)."""
    import torch.distributed

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _train(argv):
    from accelerate import PartialState

    from bft.run_folder import read_metrics
    from bft.train import parse_train_args, run_training

    run_dir = run_training(*parse_train_args(argv))
    if not PartialState().is_main_process:
        return None
    return {"run": str(run_dir), "metrics": read_metrics(run_dir)}


def _grpo(argv):
    from accelerate import PartialState

    from bft.grpo import parse_grpo_args, run_grpo
    from bft.run_folder import read_metrics

    run_dir = run_grpo(*parse_grpo_args(argv))
    if not PartialState().is_main_process:
        return None
    return {"run": str(run_dir), "metrics": read_metrics(run_dir)}


def _data(args):
    from bft.data.builders import build, builder_options, check_builder_options

    options = {option: getattr(args, option) for option in builder_options(args.builder)}
    check_builder_options(args.builder, options)
    return build(args.builder, data_dir(args.data_dir), args.output, **options)


def _eval(args):
    from bft.eval.tasks import evaluate, read_inputs

    if args.task == "suite":
        from bft.eval.suite import evaluate_suite

        options = {key: getattr(args, key) for key in SUITE_OPTIONS if key not in ("data_dir", "dtype")}
        return evaluate_suite(args.model, args.output, args.data_dir, args.dtype, **options)
    if args.task == "mcq" and args.tasks:
        from bft.eval.harness import check_harness_tasks, run_harness
        from bft.models import load_for_eval

        if args.data:
            raise InputError("give --data (questions of your own) or --tasks (the lm-evaluation-harness's), not both")
        tasks = check_harness_tasks(args.tasks, args.include_path)  # before the model loads
        model, tokenizer = load_for_eval(args.model, args.dtype)
        return run_harness(model, tokenizer, tasks, args.output, include_path=args.include_path,
                           limit=args.limit, batch_size=args.batch_size)
    if args.task == "mcq" and args.include_path:
        raise InputError("--include-path holds lm-evaluation-harness tasks: it goes with --tasks")
    if args.task == "mcq" and not args.data:
        raise InputError("bft eval mcq needs --data FILE.jsonl (or --tasks for the lm-evaluation-harness)")
    if args.task == "go-naming" and (args.predictions is None) == (args.model is None):
        raise InputError("bft eval go-naming needs --model (to generate names) or --predictions (given names), "
                         "one of the two")
    if args.task == "go-naming" and args.predictions:
        from bft.eval.go_naming import evaluate_given_names

        return evaluate_given_names(args.sets, args.predictions, args.output, limit=args.limit, encoder=args.encoder,
                                    go_dir=args.go_dir or data_dir(args.data_dir) / "go_bp")
    options = {key: value for key, value in vars(args).items() if key in TASKS[args.task].options}
    records = read_inputs(args.task, **options)  # bad input fails in a second, before a model loads
    return evaluate(args.task, args.model, args.output, records, **options)


def _inspect(args):
    from bft.data.training import demo_data_path, validated_records
    from bft.inspection import inspect_model

    for path in filter(None, [args.data, args.compare]):  # bad input fails before the model loads
        validated_records(demo_data_path() if path == "demo" else path)
    return inspect_model(args.model, args.data, args.output, compare=args.compare, group_size=args.group_size,
                         gamma=args.gamma, threshold=args.threshold, limit=args.limit, batch_size=args.batch_size,
                         top_k=args.top_k)


def _profile(args):
    from bft.bio.profiles import read_done, read_gene_list, write_profiles, writer
    from bft.models import load_for_eval

    genes = read_gene_list(args.genes)
    # a wrong --output file, or one written by another model or setting, fails now, not after the model loads
    read_done(args.output, writer(args.model, args.template, args.max_new_tokens, args.repetition_penalty))
    model, tokenizer = load_for_eval(args.model, args.dtype)
    return write_profiles(model, tokenizer, genes, args.output, model_name=args.model, template=args.template,
                          batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                          repetition_penalty=args.repetition_penalty)


def _embed(args):
    from bft.bio.embed import embed_file

    return embed_file(args.input, args.output, args.encoder)


def _downstream(args):
    if args.task == "ggi":
        from bft.bio.ggi import evaluate_ggi

        return evaluate_ggi(args.embeddings, args.pairs_dir or data_dir(args.data_dir) / "gene2vec_ggi", args.output)
    from bft.bio.perturb import evaluate_perturbation

    return evaluate_perturbation(args.embeddings, args.adata, args.output, test_fraction=args.test_fraction)


def _represent(args):
    from bft.bio.represent import represent

    if args.overwrite:  # the results are replaced, and so are the profiles they were made from
        (Path(args.output) / "profiles.jsonl").unlink(missing_ok=True)
    return represent(args.model, args.output, data_folder=data_dir(args.data_dir), limit_genes=args.limit_genes,
                     encoder=args.encoder, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                     repetition_penalty=args.repetition_penalty, dtype=args.dtype)


def _compare(args):
    from bft.compare import archive_comparison, plan_comparison, run_comparison

    if args.archive:
        return archive_comparison(args.output, args.archive)
    if not args.config:
        raise InputError("--config is required (only --archive does without it)")
    only = args.methods.split(",") if args.methods else None
    if args.plan:
        return plan_comparison(args.config, args.output, args.seeds, only)
    report = run_comparison(args.config, args.output, args.seeds, only)
    return None if report is None else {"report": f"{args.output}/report.md", "tables": report["tables"]}


COMMANDS = {"train": _train, "grpo": _grpo, "data": _data, "eval": _eval, "inspect": _inspect, "profile": _profile,
            "embed": _embed, "downstream": _downstream, "represent": _represent, "compare": _compare}

if __name__ == "__main__":
    sys.exit(main())
