"""The `bft` command line: each subcommand parses its arguments and calls one function of the library."""

import argparse
import logging
import sys

EXIT_BAD_INPUT = 2


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="bft",
        description="Balanced Fine-Tuning (BFT) of language models on biomedical knowledge.",
        epilog="Run `bft COMMAND --help` for a command's options.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("train", add_help=False,
                        help="fine-tune a causal LM with SFT (nll), DFT or BFT: bft train --config FILE.yaml [...]")
    data = commands.add_parser("data", help="build training sets from biomedical sources")
    data_commands = data.add_subparsers(dest="builder", metavar="BUILDER", required=True)
    go = data_commands.add_parser("go-naming", help="gene set -> name of its GO biological process")
    go.add_argument("--data-dir", default="../shared/data", help="folder holding go_bp/ and geneagent/")
    go.add_argument("--output", required=True, help="folder to write train.jsonl, valid.jsonl, meta.json")
    go.add_argument("--exclude", action="append", default=[],
                    help="gene-set file whose terms must not reach training (repeatable); the public GeneAgent set "
                         "is always excluded")
    go.add_argument("--min-genes", type=int, default=3)
    go.add_argument("--max-genes", type=int, default=100)
    go.add_argument("--valid-fraction", type=float, default=0.1)
    go.add_argument("--seed", type=int, default=0)
    go.add_argument("--limit", type=int, help="keep this many terms (a fixed pseudo-random subset)")

    known, rest = parser.parse_known_args(argv[:1]) if argv[:1] == ["train"] else (parser.parse_args(argv), [])
    if known.command is None:
        parser.print_help()
        return EXIT_BAD_INPUT
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if known.command == "train":
            return _train(argv[1:])
        if known.command == "data":
            return _data(known)
    except Exception as error:  # noqa: BLE001: user errors become one line and exit code 2
        from bft.data.records import DataError
        from bft.train import RunExistsError

        if isinstance(error, (DataError, RunExistsError, ValueError, FileNotFoundError)):
            print(f"bft {known.command}: error: {error}", file=sys.stderr)
            return EXIT_BAD_INPUT
        raise
    return 0


def _train(argv) -> int:
    from bft.train import parse_train_args, run_training

    run_dir = run_training(*parse_train_args(argv))
    print(f"finished: {run_dir}/metrics.json")
    return 0


def _data(args) -> int:
    import json

    from bft.data.go_naming import build_go_naming

    meta = build_go_naming(args.data_dir, args.output, args.exclude, args.min_genes, args.max_genes,
                           args.valid_fraction, args.seed, args.limit)
    print(json.dumps(meta["counts"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
