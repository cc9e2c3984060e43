"""Bad input to every command: one line naming the file, line or field, exit code 2, and nothing that looks finished.

The cases are a table: (name, command line, what the message must say, files that must not exist afterwards).
"""

import itertools
import json

import h5py
import numpy as np
import pytest

from bft.cli import main


def files(tmp_path):
    """The inputs the cases point at, good and bad."""
    messages = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    paths = {
        "empty": tmp_path / "empty.jsonl",
        "truncated": tmp_path / "truncated.jsonl",
        "no_field": tmp_path / "no_field.jsonl",
        "wrong_format": tmp_path / "data.docx",
        "good_train": tmp_path / "train.jsonl",
        "sets_no_column": tmp_path / "sets.tsv",
        "mcq_no_answer": tmp_path / "mcq.jsonl",
        "sets_good": tmp_path / "good_sets.tsv",
        "mcq_good": tmp_path / "good_mcq.jsonl",
        "sets_repeated": tmp_path / "repeated_sets.tsv",
        "sets_unnamed": tmp_path / "unnamed_sets.tsv",
        "sets_unnamed_jsonl": tmp_path / "unnamed_sets.jsonl",
        "mcq_repeated": tmp_path / "repeated_mcq.jsonl",
        "genes_empty": tmp_path / "genes.txt",
        "genes_good": tmp_path / "good_genes.txt",
        "yaml_bad": tmp_path / "bad.yaml",
        "synopsis_bad": tmp_path / "synopsis.txt",
        "synopsis_repeated": tmp_path / "repeated.txt",
        "synopsis_good": tmp_path / "good_synopsis.txt",
        "embeddings_bad": tmp_path / "emb.npz",
        "embeddings_good": tmp_path / "good_emb.npz",
        "pickle_bad": tmp_path / "garbage.pkl",
        "word2vec_repeated": tmp_path / "repeated.w2v",
        "word2vec_nan": tmp_path / "nan.txt",
        "adata_not_hdf5": tmp_path / "cells.h5ad",
        "adata_other_hdf5": tmp_path / "other.h5ad",
        "recipe_no_loss": tmp_path / "recipe.yaml",
        "recipe_bad_option": tmp_path / "recipe_bad_option.yaml",
        "recipe_misspelt": tmp_path / "misspelt.yaml",
        "finished": tmp_path / "finished",
        "test_split": tmp_path / "test.jsonl",
        "all_cut": tmp_path / "all_cut.jsonl",
        "sets_header_only": tmp_path / "no_sets.tsv",
        "data_no_summaries": tmp_path / "data",
    }
    paths["empty"].write_text("")
    paths["truncated"].write_text(json.dumps(messages) + "\n" + '{"messages": [{"role": "user", "con\n')
    paths["no_field"].write_text(json.dumps({"question": "q", "answer": "a"}) + "\n")
    paths["wrong_format"].write_text("not data")
    paths["good_train"].write_text(json.dumps(messages) + "\n")
    paths["test_split"].write_text(json.dumps(messages) + "\n")
    genes = ", ".join(f"GENE{i}" for i in range(60))  # every completion begins past max_length=64
    paths["all_cut"].write_text("".join(json.dumps({"prompt": f"These genes act together: {genes}. Name the process.",
                                                    "completion": f" process {i}"}) + "\n" for i in range(3)))
    paths["sets_header_only"].write_text("id\tgenes\tname\n")
    paths["sets_no_column"].write_text("id\tgenes\nGO:1\tTP53 EGFR\n")
    paths["mcq_no_answer"].write_text(json.dumps({"question": "q", "options": {"A": "x", "B": "y"}}) + "\n")
    paths["sets_good"].write_text("id\tgenes\tname\nGO:1\tTP53 EGFR\tapoptosis\n")
    question = {"question": "q", "options": {"A": "x", "B": "y"}, "answer_idx": "A"}
    paths["mcq_good"].write_text(json.dumps(question) + "\n")
    paths["sets_unnamed"].write_text("id\tgenes\tname\nGO:1\tTP53 EGFR\tapoptosis\nGO:2\tINS\t  \n")
    paths["sets_unnamed_jsonl"].write_text(json.dumps({"id": "GO:1", "genes": ["TP53"], "name": None}) + "\n")
    paths["sets_repeated"].write_text("id\tgenes\tname\nGO:1\tTP53 EGFR\tapoptosis\nGO:1\tINS\tsecretion\n")
    paths["mcq_repeated"].write_text("".join(json.dumps({**question, "realidx": "q7"}) + "\n" for _ in range(2)))
    paths["genes_empty"].write_text("\n\n")
    paths["genes_good"].write_text("TP53\nEGFR\n")
    np.savez(paths["embeddings_good"], ids=np.array(["TP53", "EGFR"]), X=np.eye(2, dtype=np.float32))
    paths["yaml_bad"].write_text("train: {learning_rate: [1,\n")
    paths["synopsis_bad"].write_text("TP53 without a colon\n")
    paths["synopsis_repeated"].write_text("TP53: A tumour suppressor.\nEGFR: A receptor.\nTP53: Another text.\n")
    paths["synopsis_good"].write_text("TP53: A tumour suppressor.\n")
    paths["embeddings_bad"].write_text("not an npz")
    paths["pickle_bad"].write_text("garbage\n")
    paths["word2vec_repeated"].write_text("TP53 1 0\nEGFR 0 1\nTP53 1 1\n")
    paths["word2vec_nan"].write_text("TP53 1 0\nEGFR nan 1\n")
    paths["adata_not_hdf5"].write_text("not HDF5")
    with h5py.File(paths["adata_other_hdf5"], "w") as other:
        other["a"] = [1.0, 2.0]
    paths["recipe_no_loss"].write_text("train: {max_steps: 1}\nvariants: {fast: {learning_rate: 0.1}}\n")
    paths["recipe_bad_option"].write_text(f"train: {{max_steps: 1, data: {paths['good_train']}}}\nloss_types: [nll]\n"
                                          f"evaluations: [{{task: mcq, data: {paths['mcq_good']}, batch_size: 0}}]\n")
    paths["recipe_misspelt"].write_text("learning_rte: 1.0e-4\nmodel: runs/demo\nmax_steps: 1\nzzz: 1\n")
    (paths["data_no_summaries"] / "geneagent").mkdir(parents=True)
    (paths["data_no_summaries"] / "geneagent" / "gene_narrative_synopsis.txt").write_text("\n")
    paths["finished"].mkdir()
    for marker in ("results.json", "meta.json", "summary.json", "metrics.json"):
        (paths["finished"] / marker).write_text("{}")
    return {name: str(path) for name, path in paths.items()}


TRAIN = "train --model_name_or_path {model} --output_dir {out} --max_steps 1 --report_to none --bf16 false"
# (name, command line ({name} = a file of `files`, {model} = the tiny model, {out} = the output), expected in the
# message, files that must not be written into {out})
CASES = [
    ("train: missing file", TRAIN + " --data absent.jsonl", "absent.jsonl: file not found", ["metrics.json"]),
    ("train: empty file", TRAIN + " --data {empty}", "empty.jsonl: no records", ["metrics.json"]),
    ("train: truncated JSON", TRAIN + " --data {truncated}", "truncated.jsonl:2: not valid JSON", ["metrics.json"]),
    ("train: missing field", TRAIN + " --data {no_field}", "no_field.jsonl:1: expected a 'messages'",
     ["metrics.json"]),
    ("train: wrong format", TRAIN + " --data {wrong_format}", "unknown file type '.docx'", ["metrics.json"]),
    ("train: unknown model", TRAIN.replace("{model}", "no-such/model") + " --data {good_train}",
     "model no-such/model not found (nor in the hub's cache, and the hub is offline", ["metrics.json"]),
    ("train: mistyped data folder", TRAIN + " --data data/go-namng", "data/go-namng: file or dataset not found",
     ["config.yaml"]),
    ("train: recipe not found", "train --config absent.yaml", "absent.yaml: recipe file not found", []),
    ("train: misspelt recipe key", "train --config {recipe_misspelt}",
     "misspelt.yaml: unknown setting(s) learning_rte (did you mean learning_rate?), model (did you mean "
     "model_name_or_path?), zzz (`bft train --help` lists them)", []),
    ("train: --config=FILE is read", "train --config={recipe_misspelt}",
     "misspelt.yaml: unknown setting(s) learning_rte", []),
    ("train: --config twice", "train --config {recipe_misspelt} --config {yaml_bad}",
     "--config is given 2 times: give one recipe", []),
    ("train: --config without a file", "train --max_steps 1 --config", "--config needs a file: --config FILE.yaml", []),
    ("grpo: --config a folder", "grpo --config {finished}", "finished: cannot read the recipe (Is a directory)", []),
    ("train: --config abbreviated", "train --conf {recipe_misspelt}", "write the recipe option in full", []),
    ("grpo: misspelt recipe key", "grpo --config {recipe_misspelt}", "misspelt.yaml: unknown setting(s) learning_rte",
     []),
    ("train: output on a file system that takes no files", TRAIN.replace("{out}", "/proc/bft-run") +
     " --data {good_train}", "/proc/bft-run cannot be written: /proc takes no new files", []),
    ("grpo: reward weights not one per reward", "grpo --model {model} --data {good_train} --reward_weights 1 2 "
     "--output_dir {out}", "reward_weights has 2 weight(s) for 1 reward(s) (similarity)", ["config.yaml"]),
    ("train: unknown loss", TRAIN + " --data {good_train} --loss_type focal", "loss_type must be one of",
     ["metrics.json"]),
    ("train: bad setting", TRAIN + " --data {good_train} --loss_type bft --bft_gamma 0",
     "bft_gamma must be above 0, got 0.0", ["metrics.json"]),
    ("train: recipe not YAML", "train --config {yaml_bad}", "bad.yaml:2: not valid YAML (expected", []),
    ("grpo: recipe not YAML", "grpo --config {yaml_bad}", "bad.yaml:2: not valid YAML (expected", []),
    ("compare: recipe not YAML", "compare --config {yaml_bad} --output {out}", "bad.yaml:2: not valid YAML",
     ["report.json"]),
    ("grpo: setting out of range", "grpo --model {model} --data {good_train} --output_dir {out} --learning_rate -1",
     "learning_rate must be at least 0, got -1.0", ["config.yaml"]),
    ("train: finished output", TRAIN.replace("{out}", "{finished}") + " --data {good_train}",
     "already holds a finished run", []),
    ("train: data emptied by truncation", TRAIN + " --data {all_cut} --max_length 64",
     "all_cut.jsonl: no training token is left: all 3 training samples lose every trained token to truncation at "
     "max_length=64", ["config.yaml", "metrics.json"]),
    ("train: evaluation data emptied by truncation", TRAIN + " --data {good_train} --eval_data {all_cut} "
     "--max_length 64 --eval_strategy steps --eval_steps 1", "all_cut.jsonl: no evaluation token is left",
     ["config.yaml", "metrics.json"]),
    ("train: quantisation", TRAIN + " --data {good_train} --use_peft true --load_in_4bit true",
     "load_in_4bit/load_in_8bit", ["metrics.json"]),
    ("grpo: missing prompts", "grpo --model {model} --data absent.jsonl --output_dir {out}",
     "absent.jsonl: file not found", ["metrics.json"]),
    ("grpo: an evaluation set", "grpo --model {model} --data {test_split} --output_dir {out}",
     "an evaluation set: GRPO prompts come from training splits only", ["metrics.json"]),
    ("grpo: unknown reward", "grpo --model {model} --data {good_train} --rewards accuracy --output_dir {out}",
     "unknown reward(s) accuracy for task go-naming", ["metrics.json"]),
    ("grpo: no questions", "grpo --model {model} --task mcq --data {empty} --output_dir {out}",
     "empty.jsonl: no questions", ["config.yaml", "metrics.json"]),
    ("grpo: finished output", "grpo --model {model} --data {good_train} --output_dir {finished}",
     "already holds a finished run", []),
    ("data go-naming: missing data folder", "data go-naming --data-dir absent-dir --output {out}", "absent-dir",
     ["meta.json"]),
    ("data gene-profiles: missing data folder", "data gene-profiles --data-dir absent-dir --output {out}",
     "absent-dir", ["meta.json"]),
    ("data pubmedqa: missing data folder", "data pubmedqa --data-dir absent-dir --output {out}", "absent-dir",
     ["meta.json"]),
    ("data: finished output", "data pubmedqa --output {finished}", "--overwrite", []),
    ("data gene-knowledge: minimum above maximum", "data gene-knowledge --min-term-genes 20 --max-term-genes 10 "
     "--output {out}", "min_term_genes (20) is above max_term_genes (10)", ["meta.json"]),
    ("eval go-naming: missing column", "eval go-naming --model {model} --sets {sets_no_column} --output {out}",
     "sets.tsv:2: missing column(s) name", ["results.json"]),
    ("eval go-naming: no sets", "eval go-naming --model {model} --sets {sets_header_only} --output {out}",
     "no_sets.tsv: no gene sets", ["results.json"]),
    ("eval go-naming: no sets to score", "eval go-naming --predictions {sets_good} --sets {sets_header_only} "
     "--output {out}", "no_sets.tsv: no gene sets", ["results.json"]),
    ("eval go-naming: unknown model", "eval go-naming --model ./no-such-folder --sets {sets_good} --output {out}",
     "model ./no-such-folder not found: expected a model folder", ["results.json"]),
    ("eval go-naming: missing GO folder", "eval go-naming --model ./no-such-folder --sets {sets_good} --go-dir "
     "absent-go --output {out}", "absent-go/goID_2_name.tab: file not found (GO term names", ["results.json"]),
    ("eval go-naming: a set without a name", "eval go-naming --model {model} --sets {sets_unnamed} --output {out}",
     "unnamed_sets.tsv:3: empty name", ["results.json"]),
    ("eval go-naming: given names for a set with a null name", "eval go-naming --predictions {sets_good} --sets "
     "{sets_unnamed_jsonl} --output {out}", "unnamed_sets.jsonl:1: empty name", ["results.json"]),
    ("eval go-naming: repeated set id", "eval go-naming --model {model} --sets {sets_repeated} --output {out}",
     "repeated_sets.tsv:3: id 'GO:1' again (first on line 2): ids must be unique", ["results.json"]),
    ("eval mcq: repeated question id", "eval mcq --model {model} --data {mcq_repeated} --output {out}",
     "repeated_mcq.jsonl:2: id 'q7' again (first on line 1)", ["results.json"]),
    ("eval mcq: missing field", "eval mcq --model {model} --data {mcq_no_answer} --output {out}",
     "mcq.jsonl:1: missing 'answer_idx': expected the correct option's letter", ["results.json"]),
    ("eval mcq: truncated JSON", "eval mcq --model {model} --data {truncated} --output {out}",
     "truncated.jsonl:2: not valid JSON", ["results.json"]),
    ("eval mcq: no questions", "eval mcq --model {model} --data {empty} --output {out}", "empty.jsonl: no questions",
     ["results.json"]),
    ("eval mcq: unknown model", "eval mcq --model ./no-such-folder --data {mcq_good} --output {out}",
     "model ./no-such-folder not found: expected a model folder", ["results.json"]),
    ("eval pubmedqa: missing data folder", "eval pubmedqa --model {model} --data-dir absent-dir --output {out}",
     "absent-dir", ["results.json"]),
    ("eval: finished output", "eval mcq --model {model} --data {mcq_good} --output {finished}", "--overwrite", []),
    ("profile: empty gene list", "profile --model {model} --genes {genes_empty} --output {out}.jsonl",
     "genes.txt: no genes", []),
    ("profile: unknown template", "profile --model ./no-such-model --genes {genes_good} --template foo "
     "--output {out}.jsonl", "unknown template 'foo'; choose one of describe, summary", []),  # before the model
    ("embed: bad synopsis line", "embed --input {synopsis_bad} --output {out}.npz", "synopsis.txt:1", []),
    ("embed: repeated gene", "embed --input {synopsis_repeated} --output {out}.npz",
     "repeated.txt:3: id 'TP53' again (first on line 1)", []),
    ("embed: missing input", "embed --input absent.jsonl --output {out}.npz", "absent.jsonl", []),
    ("embed: output not an .npz", "embed --input {synopsis_good} --output {out}",
     "out: expected the name of a file ending in .npz", []),
    ("embed: output a folder", "embed --input {synopsis_good} --output {out}.npz/", "out.npz/: names a folder", []),
    ("profile: output not a .jsonl", "profile --model {model} --genes {genes_good} --output {out}.txt",
     "out.txt: expected the name of a file ending in .jsonl", []),
    ("profile: output a folder", "profile --model {model} --genes {genes_good} --output {out}.jsonl/",
     "out.jsonl/: names a folder", []),
    ("downstream ggi: bad embeddings", "downstream ggi --embeddings {embeddings_bad} --output {out}", "emb.npz",
     ["results.json"]),
    ("downstream ggi: repeated gene", "downstream ggi --embeddings {word2vec_repeated} --output {out}",
     "repeated.w2v:3: id 'TP53' again (first on line 1): ids must be unique", ["results.json"]),
    ("downstream ggi: NaN in a vector", "downstream ggi --embeddings {word2vec_nan} --output {out}",
     "nan.txt: 1 of 2 vectors hold NaN or infinity (the first: 'EGFR'): expected finite numbers", ["results.json"]),
    ("downstream ggi: not a pickle", "downstream ggi --embeddings {pickle_bad} --output {out}",
     "garbage.pkl: not a pickle (ValueError): expected a pickled, non-empty {symbol: vector} dict", ["results.json"]),
    ("downstream perturb: not HDF5", "downstream perturb --embeddings {embeddings_good} --adata {adata_not_hdf5} "
     "--output {out}", "cells.h5ad: not an HDF5 file: expected an .h5ad AnnData file", ["results.json"]),
    ("downstream perturb: HDF5 but not AnnData", "downstream perturb --embeddings {embeddings_good} --adata "
     "{adata_other_hdf5} --output {out}", "other.h5ad: an HDF5 file without AnnData's layout", ["results.json"]),
    ("downstream perturb: missing AnnData",
     "downstream perturb --embeddings {embeddings_good} --adata absent.h5ad --output {out}", "absent.h5ad",
     ["results.json"]),
    ("represent: unknown model", "represent --model ./no-such-folder --output {out}", "no-such-folder",
     ["summary.json"]),
    ("inspect: missing data", "inspect --model {model} --data absent.jsonl --output {out}",
     "absent.jsonl: file not found", ["summary.json"]),
    ("compare: variant without a loss type", "compare --config {recipe_no_loss} --output {out}",
     "variant 'fast' must", ["report.json"]),
    ("compare: missing recipe", "compare --config absent.yaml --output {out}", "absent.yaml", ["report.json"]),
    ("eval mcq: output below a file", "eval mcq --model {model} --data {mcq_good} --output {good_train}/out",
     "train.jsonl/out cannot be written: ", []),
    ("inspect: output is a file", "inspect --model {model} --data {good_train} --output {mcq_good}",
     "good_mcq.jsonl is a file: expected a folder", []),
    ("embed: output is a folder", "embed --input {synopsis_repeated} --output {finished}", "is a folder: expected a "
     "file name", []),
    ("train: output below a file", TRAIN.replace("{out}", "{good_train}/run") + " --data {good_train}",
     "train.jsonl/run cannot be written: ", []),
    ("eval mcq: both --data and --tasks", "eval mcq --model {model} --data {mcq_good} --tasks medqa_4options "
     "--output {out}", "give --data (questions of your own) or --tasks", ["results.json"]),
    ("eval mcq: --include-path without --tasks", "eval mcq --model {model} --data {mcq_good} --include-path . "
     "--output {out}", "--include-path holds lm-evaluation-harness tasks: it goes with --tasks", ["results.json"]),
    ("eval mcq: missing --include-path", "eval mcq --model {model} --tasks my_task --include-path absent-dir "
     "--output {out}", "--include-path absent-dir: no such folder", ["results.json"]),
    ("compare: evaluation option out of range", "compare --config {recipe_bad_option} --output {out}",
     "(task mcq): batch_size must be a whole number at least 1, got 0", ["report.json", "runs"]),
    ("data gene-profiles: no summaries", "data gene-profiles --data-dir {data_no_summaries} --output {out}",
     "gene_narrative_synopsis.txt: no genes: expected 'SYMBOL: text' lines", ["train.jsonl"]),
    ("data: data folder is a file", "data go-naming --data-dir {good_train} --output {out}",
     "train.jsonl is a file, not a folder: --data-dir", ["train.jsonl"]),
    ("eval: data folder is a file", "eval pubmedqa --model {model} --data-dir {good_train} --output {out}",
     "train.jsonl is a file, not a folder: --data-dir", ["results.json"]),
]


@pytest.mark.parametrize("name, argv, expected, not_written", CASES, ids=[case[0] for case in CASES])
def test_bad_input(tiny_model, tmp_path, capsys, name, argv, expected, not_written):
    out = tmp_path / "out"
    values = {**files(tmp_path), "model": tiny_model, "out": str(out)}
    assert main([part.format(**values) for part in argv.split()]) == 2, name
    stderr = capsys.readouterr().err.strip()
    error = stderr.splitlines()[-1]  # after any progress bars of the work done before the fault showed
    assert expected in error, stderr
    assert error.startswith(f"{command_name(argv)}: error: ") and "Traceback" not in stderr
    for marker in not_written:
        assert not (out / marker).exists()


def command_name(argv: str) -> str:
    """`bft eval mcq` of "eval mcq --model ...": the words before the first option."""
    return " ".join(["bft", *itertools.takewhile(lambda word: not word.startswith("-"), argv.split())])


# (command line as in CASES, the option and what argparse must say of its value)
INSPECT = "inspect --model {model} --data {good_train} --output {out}"
WHOLE = "must be a whole number at least"
OUT_OF_RANGE = [
    (INSPECT + " --limit 0", f"--limit: {WHOLE} 1, got 0"),
    ("eval mcq --model {model} --data {mcq_good} --output {out} --limit -2", f"--limit: {WHOLE} 1, got -2"),
    (INSPECT + " --group-size 0", f"--group-size: {WHOLE} 1"),
    (INSPECT + " --gamma 0", "--gamma: must be above 0, got 0"),
    (INSPECT + " --threshold 2", "--threshold: must be in [0, 1]"),
    (INSPECT + " --batch-size 0", f"--batch-size: {WHOLE} 1"),
    (INSPECT + " --top-k -1", f"--top-k: {WHOLE} 0"),
    (INSPECT + " --gamma x", "--gamma: invalid float value: 'x'"),
    ("eval mcq --model {model} --data {mcq_good} --output {out} --batch-size 0", f"--batch-size: {WHOLE} 1"),
    ("eval go-naming --model {model} --sets {sets_good} --output {out} --max-new-tokens 0",
     f"--max-new-tokens: {WHOLE} 1"),
    ("eval pubmedqa --model {model} --output {out} --repetition-penalty 0", "--repetition-penalty: must be above 0"),
    ("eval go-naming --model {model} --sets {sets_good} --output {out} --repetition-penalty inf",
     "--repetition-penalty: must be above 0, got inf"),
    ("eval suite --model {model} --output {out} --generation-batch-size 0", f"--generation-batch-size: {WHOLE} 1"),
    ("profile --model {model} --genes {genes_empty} --output {out}.jsonl --max-new-tokens 0",
     f"--max-new-tokens: {WHOLE} 1"),
    ("represent --model {model} --output {out} --limit-genes 0", f"--limit-genes: {WHOLE} 1"),
    ("downstream perturb --embeddings {embeddings_bad} --adata a.h5ad --output {out} --test-fraction 1",
     "--test-fraction: must be in (0, 1), got 1"),
    ("data go-naming --valid-fraction 1.5 --output {out}", "--valid-fraction: must be in [0, 1), got 1.5"),
    ("data gene-facts --knowledge {finished} --templates 9 --output {out}",
     "--templates: must be a whole number in [1, 4], got 9"),
    ("compare --config {recipe_no_loss} --output {out} --seeds 0,a", "--seeds: expected comma-separated whole numbers"),
    ("compare --config {recipe_no_loss} --output {out} --seeds -1", "--seeds: each seed must be a whole number in"),
]


@pytest.mark.parametrize("argv, expected", OUT_OF_RANGE, ids=[case[1].split(":")[0] for case in OUT_OF_RANGE])
def test_numbers_out_of_range_are_refused_as_they_are_parsed(tiny_model, tmp_path, capsys, argv, expected):
    """As the command line is parsed, before any work: the option named, exit code 2."""
    out = tmp_path / "out"
    values = {**files(tmp_path), "model": tiny_model, "out": str(out)}
    with pytest.raises(SystemExit) as exit_:
        main([part.format(**values) for part in argv.split()])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"{command_name(argv)}: error: argument ") and expected in error, error


@pytest.mark.parametrize("argv, name, unknown", [
    (["data", "pubmedqa", "--output", "o", "--limit", "20"], "bft data pubmedqa", "--limit 20"),
    (["eval", "mcq", "--model", "m", "--output", "o", "--sets", "s.tsv"], "bft eval mcq", "--sets s.tsv"),
    (["--bogus"], "bft", "--bogus")])
def test_an_unknown_option_is_named_by_the_command_it_was_given_to(capsys, argv, name, unknown):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (f"{name}: error: unrecognized arguments: {unknown} (`{name} --help` lists the "
                                       "options)\n")
