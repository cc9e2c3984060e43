"""The one table of evaluation tasks (`bft.eval.tasks.TASKS`) and of data builders (`bft.data.builders.BUILDERS`):
what the CLI (`bft eval TASK` and its --help), the suite, compare and GRPO's rewards know of a task comes from it."""

import argparse
import ast
import dataclasses
import functools
import inspect
import json
from pathlib import Path

import pytest
import yaml

import bft.bio
from bft import compare
from bft.cli import build_parser, main
from bft.compare import evaluations
from bft.data.builders import BUILDERS, INPUTS, builder_options
from bft.errors import InputError
from bft.eval import suite
from bft.eval.tasks import TASKS, EvalTask, Option, check_options, evaluate
from bft.grpo import task_rewards
from bft.ranges import AT_LEAST_ONE

# options of `bft eval` that are the command's own, not a task's
CLI_ONLY = {"help", "command", "task", "model", "output", "overwrite", "predictions", "tasks", "include_path"}


def _subcommands(parser):
    return next(action for action in parser._actions if action.dest in ("command", "task", "builder")).choices


def _options(parser) -> dict:
    return {action.dest: action.default for action in parser._actions if action.dest not in CLI_ONLY}


def _eval_commands():
    return _subcommands(_subcommands(build_parser())["eval"])


def test_an_option_of_another_task_is_refused(tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"train": {}, "evaluations": [{"task": "mcq", "data": "q.jsonl",
                                                                    "sets": "valid_sets.jsonl"}]}))
    assert main(["compare", "--config", str(recipe), "--output", str(tmp_path / "o"), "--plan"]) == 2
    error = capsys.readouterr().err
    assert ("evaluation 'mcq-q' (task mcq): unknown option 'sets'; the mcq task takes "
            + ", ".join(TASKS["mcq"].options)) in error
    with pytest.raises(InputError, match="'pubmedqa': unknown option 'limit_genes'"):
        evaluate("pubmedqa", "model", tmp_path, limit_genes=3)
    assert not (tmp_path / "o").exists()


def test_messages_name_a_recipes_evaluation_by_its_recipe_name_and_a_task_as_a_task(monkeypatch):
    """An evaluation is named as the recipe names it (`mcq-medqa`), never by its task's name (`mcq`)."""
    from bft.compare import evaluations
    from bft.eval.tasks import read_inputs

    with pytest.raises(InputError, match=r"^task 'mcq': limit must be a whole number at least 1, got 0$"):
        check_options("mcq", {"limit": 0})
    with pytest.raises(InputError, match=r"^evaluation 'mcq-medqa' \(task mcq\): unknown option 'sets'; the mcq"):
        check_options("mcq", {"sets": "s.tsv"}, evaluation="mcq-medqa")
    with pytest.raises(InputError, match="^the mcq task needs data"):
        read_inputs("mcq")
    with pytest.raises(InputError, match="^the represent task takes a model name or path"):
        evaluate("represent", ("model", "tokenizer"), "out")

    def bad_input(*args, **options):
        raise InputError("medqa/test.jsonl:3: missing 'answer_idx'")

    monkeypatch.setattr(evaluations, "evaluate", bad_input)  # bad input found only as the comparison evaluates
    with pytest.raises(InputError, match=r"^evaluation 'mcq-medqa': medqa/test.jsonl:3: missing 'answer_idx'$"):
        evaluations._evaluate("run", Path("out"), {"task": "mcq", "data": "medqa/test.jsonl"})


@pytest.mark.parametrize("name", list(TASKS))
def test_a_task_runs_with_the_options_of_its_entry(name, tmp_path, monkeypatch):
    given = []
    entry = dataclasses.replace(TASKS[name], run=lambda model, output, options: given.append(options) or {})
    monkeypatch.setitem(TASKS, name, entry)
    model = "a-model" if entry.loads_model else ("model", "tokenizer")
    folder = {"data_dir": tmp_path} if "data_dir" in entry.options else {}
    evaluate(name, model, tmp_path, **folder)
    assert given == [{**entry.options, **folder, "records": None}]


def test_the_cli_takes_each_tasks_options_with_the_tables_defaults():
    commands = _eval_commands()
    assert set(commands) == {name for name, entry in TASKS.items() if not entry.loads_model} | {"suite"}
    for name, parser in commands.items():
        options = _options(parser)
        accepted = TASKS[name].options if name != "suite" else {
            option: default for entry in TASKS.values() for option, default in entry.options.items()}
        assert set(options) == set(accepted) if name != "suite" else set(options) <= set(accepted), name
        assert all(options[option] == accepted[option] for option in options), name
        assert {"model", "output", "overwrite"} <= {action.dest for action in parser._actions}, name
    represent = _options(_subcommands(build_parser())["represent"])
    represent["generation_batch_size"] = represent.pop("batch_size")
    assert represent == TASKS["represent"].options


def test_bft_eval_suite_passes_the_model_and_its_options(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(suite, "evaluate_suite", lambda *args, **options: calls.append((args, options)) or {})
    assert main(["eval", "suite", "--model", "m", "--output", str(tmp_path / "o"), "--limit", "3"]) == 0
    (model, output, folder, dtype), options = calls[0]
    assert (model, output, folder, dtype) == ("m", str(tmp_path / "o"), None, "auto")
    assert options["limit"] == 3 and options["encoder"] == TASKS["go-naming"].options["encoder"]
    with pytest.raises(SystemExit) as stopped:  # argparse's message names the missing option: exit 2
        main(["eval", "suite", "--output", str(tmp_path / "o")])
    assert stopped.value.code == 2 and "--model" in capsys.readouterr().err


def test_the_suites_defaults_are_its_tasks_shared_defaults(monkeypatch):
    assert suite.suite_default("limit") is None
    monkeypatch.setitem(TASKS, "mcq", dataclasses.replace(TASKS["mcq"], options={**TASKS["mcq"].options,
                                                                                 "limit": 5}))
    with pytest.raises(ValueError, match="disagree on the default of limit"):
        suite.suite_default("limit")


def test_the_suite_gives_each_task_its_options_and_heads_its_table_with_their_headlines(tmp_path, monkeypatch):
    calls = []

    def run(name, model, output, **options):
        check_options(name, options)  # the suite's options, given to every task, would fail here
        calls.append(name)
        headline = TASKS[name].headline
        base = headline[0].removesuffix("_mean")
        return {"task": name, "n": 2, headline[0]: 0.5, f"{base}_ci_low": 0.25, f"{base}_ci_high": 0.75,
                headline[1]: 0.125}

    monkeypatch.setattr(suite, "load_for_eval", lambda name, dtype: ("model", "tokenizer"))
    monkeypatch.setattr(suite, "evaluate", run)
    suite.evaluate_suite("m", tmp_path, tmp_path, limit=2, encoder="e", batch_size=4, generation_batch_size=8,
                         repetition_penalty=1.0)
    assert set(calls) == {"go-naming", "mcq", "pubmedqa"} and len(calls) == 1 + len(suite.MCQ_SETS) + 1
    table = (tmp_path / "summary.md").read_text()
    for name in ("go-naming", "mcq", "pubmedqa"):
        first, second = TASKS[name].headline
        assert f"| {first} | 0.500 (0.250-0.750) | {second} | 0.125 |" in table


def test_a_new_task_is_one_entry(tmp_path, monkeypatch):
    def run(model, output, options):
        output.mkdir(parents=True, exist_ok=True)
        (output / "predictions.jsonl").write_text("".join(json.dumps({"id": i, "hit": i % 2}) + "\n"
                                                          for i in range(options["items"])))
        results = {"hits": options["items"] // 2, "items": options["items"]}
        (output / "outcome.json").write_text(json.dumps(results))
        return results

    monkeypatch.setitem(TASKS, "count", EvalTask(run=run, options={"dtype": "auto", "items": 4},
                                                 option_help={"items": Option("items to count")},
                                                 metrics=("hits", "items"), results_file="outcome.json",
                                                 item_scores={"hits": lambda row: float(row["hit"])}))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"train": {"model_name_or_path": "m"}, "evaluations": [
        {"task": "count", "items": 6}]}))
    evaluation = compare.load_recipe(recipe)["evaluations"][0]
    monkeypatch.setattr("bft.models.load_for_eval", lambda name, dtype="auto": ("model", "tokenizer"))
    out = tmp_path / "evals" / "count"
    scores = evaluations._evaluate_once("m", out, evaluation, {"model": "m"})
    assert scores == {"hits": 3, "items": 6}
    assert evaluations._item_scores(out, "count") == {"hits": {str(i): float(i % 2) for i in range(6)}}
    recipe.write_text(yaml.safe_dump({"train": {}, "evaluations": [{"task": "count", "limit": 6}]}))
    with pytest.raises(InputError, match=r"'count' \(task count\): unknown option 'limit'; the count task takes "
                                         "dtype, items"):
        compare.load_recipe(recipe)


@pytest.mark.parametrize("name", [name for name, entry in TASKS.items() if not entry.loads_model])
def test_each_tasks_options_are_in_its_help_with_their_meaning_type_and_default(name, capsys):
    entry = TASKS[name]
    with pytest.raises(SystemExit):
        main(["eval", name, "--help"])
    help = capsys.readouterr().out

    def unwrapped(text):  # argparse wraps lines, at spaces and hyphens: compared without any white space
        return "".join(text.split())

    for option, default in entry.options.items():
        meaning = entry.option(option)
        assert f"--{option.replace('_', '-')} " in help, option
        described = meaning.help if default is None else f"{meaning.help} (default: {default})"
        assert unwrapped(described) in unwrapped(help), option
        if meaning.choices:
            assert "{" + ",".join(meaning.choices) + "}" in help, option
    parser = _eval_commands()[name]
    types = {action.dest: action.type for action in parser._actions}
    assert types["limit"]("3") == 3
    for option, default in entry.options.items():
        if default is not None:  # the command line's text becomes a value of the default's type
            converted = types[option](str(default))
            assert type(converted) is type(default) and converted == default, option
        allowed = entry.option(option).range
        if allowed is not None:  # and a number out of range is refused as it is parsed
            with pytest.raises(argparse.ArgumentTypeError, match=f"must be {allowed}"):
                types[option](str(allowed.low - 1))


def _toy_task(calls, read):
    """A task that records what it is given: options `items` (int), `scale` (float) and `label` (required)."""
    def run(model, output, options):
        calls.append((model, output, options))
        return {"hits": options["items"]}

    return EvalTask(run=run, options={"dtype": "auto", "limit": None, "items": 4, "scale": 0.5, "label": None},
                    help="count things", metrics=("hits", "hits"), results_file="counts.json",
                    read_inputs=lambda options: read.append(options) or ["record"],
                    option_help={"items": Option("items to count", range=AT_LEAST_ONE), "scale": Option("a weight"),
                                 "label": Option("what is counted", required=True)})


def test_a_task_added_to_the_table_is_a_bft_eval_command(tmp_path, monkeypatch, capsys):
    calls, read = [], []
    monkeypatch.setitem(TASKS, "count", _toy_task(calls, read))
    monkeypatch.setattr("bft.models.load_for_eval", lambda name, dtype="auto": (f"loaded {name}", dtype))
    out = tmp_path / "out"
    argv = ["eval", "count", "--model", "m", "--output", str(out), "--label", "genes"]
    assert main(argv + ["--items", "6", "--scale", "2", "--dtype", "float32"]) == 0
    options = {"dtype": "float32", "limit": None, "items": 6, "scale": 2.0, "label": "genes"}
    assert read == [options]  # read and checked before the model loads, every option resolved
    assert calls == [(("loaded m", "float32"), out, {**options, "records": ["record"]})]
    assert json.loads(capsys.readouterr().out) == {"hits": 6}
    assert main(argv) == 0  # the table's defaults
    assert calls[-1][2] == {"dtype": "auto", "limit": None, "items": 4, "scale": 0.5, "label": "genes",
                            "records": ["record"]}
    capsys.readouterr()
    # bad input exits 2 with the message, before the task runs
    for bad, message in [(["--items", "six"], "argument --items: invalid int value: 'six'"),
                         (["--dtype", "int3"], "argument --dtype: invalid choice: 'int3'"),
                         # its declared range
                         (["--items", "0"], "argument --items: must be a whole number at least 1, got 0"),
                         (["--limit", "0"], "argument --limit: must be a whole number at least 1, got 0"),
                         (["--sets", "s.tsv"], "unrecognized arguments: --sets s.tsv")]:
        with pytest.raises(SystemExit) as exit:
            main(argv + bad)
        assert exit.value.code == 2 and message in capsys.readouterr().err, bad
    with pytest.raises(SystemExit):
        main(argv[:-2])
    assert "the following arguments are required: --label" in capsys.readouterr().err
    (out / "counts.json").parent.mkdir()
    (out / "counts.json").write_text("{}")  # the task's results file marks its output finished
    assert main(argv) == 2 and "pass --overwrite" in capsys.readouterr().err
    assert len(calls) == 2


def test_an_option_without_a_meaning_is_refused(monkeypatch):
    with pytest.raises(ValueError, match=r"option\(s\) items have no meaning"):
        EvalTask(run=print, options={"dtype": "auto", "items": 4}, metrics=("a", "b"))
    with pytest.raises(ValueError, match=r"option\(s\) shuffle default to a bool: declare their Option's type"):
        EvalTask(run=print, options={"shuffle": False}, option_help={"shuffle": Option("shuffle the items")},
                 metrics=("a", "b"))
    EvalTask(run=print, options={"shuffle": False}, metrics=("a", "b"),
             option_help={"shuffle": Option("shuffle the items", type=lambda text: text == "true")})


def test_grpo_rewards_are_the_tables():
    assert {name: list(task_rewards(name)) for name, entry in TASKS.items() if entry.rewards} == {
        "go-naming": ["similarity", "percentile", "format"], "mcq": ["correct", "format"],
        "pubmedqa": ["correct", "format"]}
    with pytest.raises(InputError, match="task 'represent' has no GRPO reward: the tasks with rewards are "
                                         "go-naming, mcq, pubmedqa"):
        task_rewards("represent")
    with pytest.raises(InputError, match="task 'chess' is not an evaluation task: the tasks with rewards are"):
        task_rewards("chess")


def test_the_data_builders_are_one_table():
    commands = _subcommands(_subcommands(build_parser())["data"])
    assert set(commands) == set(BUILDERS)
    for name, parser in commands.items():
        options = {key: value for key, value in _options(parser).items() if key != "data_dir"}
        accepted = builder_options(name)
        assert set(options) == set(accepted), name
        for option, default in options.items():  # argparse writes a missing default as None, a repeatable one []
            assert default == accepted[option] or (default in (None, []) and accepted[option] in
                                                   (inspect.Parameter.empty, None, ())), (name, option)
    with pytest.raises(InputError, match="unknown builder 'chess': expected one of go-naming"):
        builder_options("chess")


@pytest.mark.parametrize("name", list(BUILDERS))
def test_bft_data_calls_the_tables_builder_with_its_defaults(name, tmp_path, monkeypatch):
    calls, options = [], builder_options(name)

    @functools.wraps(BUILDERS[name])  # the recorder has the builder's signature
    def record(source, output, **given):
        calls.append((source, output, given))
        return {}

    monkeypatch.setitem(BUILDERS, name, record)
    for relative in INPUTS[name]:  # the files `build` checks for before it calls the builder
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).touch()
    required = {"knowledge": str(tmp_path / "knowledge")} if name == "gene-facts" else {}
    argv = ["data", name, "--data-dir", str(tmp_path), "--output", str(tmp_path / "out")]
    assert main(argv + [item for option, value in required.items() for item in (f"--{option}", value)]) == 0
    # the builder's own defaults (a repeatable option's empty tuple arrives as argparse's empty list)
    expected = {option: [] if default == () else default for option, default in options.items()} | required
    assert calls == [(tmp_path, str(tmp_path / "out"), expected)]


def test_gene_representations_do_not_import_the_evaluations():
    bio = Path(bft.bio.__file__).parent
    for module in bio.glob("*.py"):
        imported = [node.module for node in ast.walk(ast.parse(module.read_text()))
                    if isinstance(node, ast.ImportFrom) and node.module]
        assert not [name for name in imported if name.startswith("bft.eval")], module.name
