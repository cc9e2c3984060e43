"""Evaluation metrics against hand-computed values, and `bft eval` end to end on a tiny model."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bft.cli import main
from bft.errors import InputError
from bft.eval.go_naming import percentiles, rouge_l
from bft.eval.pubmedqa import macro_f1
from bft.loglik import continuation_logprobs, encode_pair, shared_prefixes
from bft.models import load_for_eval
from bft.stats import mean_with_interval
from tests.conftest import SHARED_DATA, needs_shared_data


def test_metrics_hand_computed():
    # ROUGE-L of "cell cycle" against "regulation of cell cycle": LCS 2, precision 1, recall 1/2 -> F1 2/3
    assert rouge_l(["cell cycle"], ["regulation of cell cycle"]) == [pytest.approx(2 / 3)]
    # the true name's similarity 0.5 beats 2 of the 4 GO names (0.1, 0.4; not 0.5 itself nor 0.9)
    assert percentiles(np.array([0.5]), np.array([[0.1, 0.4, 0.5, 0.9]])).tolist() == [0.5]
    # macro-F1: yes F1 = 2/3 (tp 1, fn 1), no F1 = 2/3 (tp 1, fp 1), maybe F1 = 0
    assert macro_f1(["yes", "yes", "no", "maybe"], ["yes", "no", "no", None]) == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    constant = mean_with_interval([1.0] * 10)
    assert constant == {"mean": 1.0, "ci_low": 1.0, "ci_high": 1.0}
    spread = mean_with_interval([0, 1] * 50)
    assert spread["mean"] == 0.5 and 0.38 < spread["ci_low"] < 0.45 and 0.55 < spread["ci_high"] < 0.62


@pytest.mark.parametrize("max_length", [None, 7])
def test_batched_loglik_matches_one_pair_at_a_time(tiny_model, max_length):
    """Left-padded, batched scoring, with the context shared by a question's options run once, == a plain unpadded
    full-logits computation of each pair alone (cut to its last `max_length` tokens, which splits shared contexts)."""
    model, tokenizer = load_for_eval(tiny_model, dtype="float32")
    question = "Question: which gene is mutated most often in human cancers?\nAnswer:"
    pairs = [(question, " TP53"), (question, " BRCA1 and BRCA2 genes"), (question, "EGFR"), (question, " KRAS"),
             ("Q: a much longer question about genes?\nA: ", "BRCA1 and 2"), ("Q: a much longer question about "
             "genes?\nA: ", "MYC"), ("Short", " continuation of several words here"), ("Question: x\nAnswer:", " y")]
    batched = continuation_logprobs(model, tokenizer, pairs, batch_size=3, max_length=max_length)
    for (context, continuation), score in zip(pairs, batched):
        ids, n = encode_pair(tokenizer, context, continuation)
        if max_length:
            ids, n = ids[-max_length:], min(n, max_length - 1)
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
        reference = sum(torch.log_softmax(logits[t - 1], -1)[ids[t]].item() for t in range(len(ids) - n, len(ids)))
        assert score == pytest.approx(reference, abs=1e-4)


def test_a_questions_options_share_its_context():
    encoded = [([5, 6, 7, 1], 1), ([5, 6, 7, 2, 3], 2), ([5, 6, 8, 4], 2), ([9, 1], 1), ([5, 6, 7, 1], 1)]
    contexts = ["q", "q", "q", "other", "q2"]
    # "q": the shared prefix stops at the first token that differs ([5, 6]) and before the first scored one
    assert shared_prefixes(encoded, contexts) == [(2, [0, 1, 2]), (1, [3]), (3, [4])]
    # nothing in common: each pair alone, after its own context
    assert shared_prefixes([([1, 2, 3], 1), ([4, 5], 1)], ["q", "q"]) == [(2, [0]), (1, [1])]
    with pytest.raises(ValueError, match="needs a context token"):
        shared_prefixes([([1, 2], 2)], ["q"])


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_eval_mcq_end_to_end(tiny_model, tmp_path):
    questions = [{"question": f"Which gene number {i}?", "options": {"A": "TP53", "B": "BRCA1 gene", "C": "EGFR"},
                  "answer_idx": "ABC"[i % 3]} for i in range(5)]
    data = write_jsonl(tmp_path / "test.jsonl", questions)
    out = tmp_path / "out"
    assert main(["eval", "mcq", "--model", tiny_model, "--data", str(data), "--output", str(out), "--limit", "4"]) == 0
    results = json.loads((out / "results.json").read_text())
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert results["n"] == len(predictions) == 4
    assert results["accuracy"] == sum(p["correct"] for p in predictions) / 4
    assert results["accuracy_ci_low"] <= results["accuracy"] <= results["accuracy_ci_high"]
    for p in predictions:
        assert p["prediction"] == max(p["scores"], key=p["scores"].get)
        assert p["correct"] == (p["prediction"] == p["answer_idx"])


def test_eval_go_naming_end_to_end(tiny_model, tmp_path):
    go_dir = tmp_path / "go_bp"
    go_dir.mkdir()
    (go_dir / "goID_2_name.tab").write_text("\t0\nGO:1\tDNA repair\nGO:2\tcell cycle\nGO:3\tapoptotic process\n")
    (go_dir / "goID_2_namespace.tab").write_text("\t0\nGO:1\tbiological_process\nGO:2\tbiological_process\n"
                                                 "GO:3\tbiological_process\n")
    sets = tmp_path / "sets.tsv"
    sets.write_text("id\tgenes\tname\nGO:1\tBRCA1 RAD51 XRCC1\tDNA repair\nGO:2\tCDK1 CCNB1 CDC20\tcell cycle\n")
    out = tmp_path / "out"
    assert main(["eval", "go-naming", "--model", tiny_model, "--sets", str(sets), "--go-dir", str(go_dir),
                 "--output", str(out), "--repetition-penalty", "1.2"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["repetition_penalty"] == 1.2
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert results["n"] == 2 and [r["id"] for r in rows] == ["GO:1", "GO:2"]
    for key in ("semantic_similarity", "percentile", "rougeL"):
        assert results[f"{key}_mean"] == pytest.approx(np.mean([r[key if key != "semantic_similarity" else "similarity"]
                                                                for r in rows]), abs=1e-6)
    assert set(rows[0]) >= {"id", "genes", "name", "prediction", "similarity", "percentile", "rougeL"}


def test_eval_bad_input_is_reported_before_loading_a_model(tmp_path, capsys):
    data = write_jsonl(tmp_path / "bad.jsonl", [{"question": "q", "options": {"A": "x", "B": "y"}, "answer_idx": "C"}])
    assert main(["eval", "mcq", "--model", "no-such-model", "--data", str(data), "--output", str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err
    assert f"{data}:1: 'answer_idx' must be one of the option letters ['A', 'B'], got 'C'" in error
    assert not (tmp_path / "o").exists()


# (a row of questions without answer_idx, what the error says)
MCQ_ROWS_WITHOUT_A_FIELD = [
    ({"options": {"A": "x", "B": "y"}, "answer_idx": "A"}, "missing 'question'"),
    ({"question": "q", "answer_idx": "A"}, "missing 'options'"),
    ({"question": "q", "options": {"A": "x", "B": "y"}}, "missing 'answer_idx': expected the correct option's letter"),
    ({"question": "q", "options": {"A": "x", "B": "y"}, "answer_idx": None}, "missing 'answer_idx'"),
    ({"question": "q", "options": {"A": "x", "B": "y"}, "answer": "B"},
     "has 'answer' but no 'answer_idx' (its 'answer' holds the option letter 'B')"),
    ({"question": "q", "options": {"A": "x", "B": "insulin"}, "answer": "insulin"},
     "has 'answer' but no 'answer_idx' (its 'answer' holds the text of option 'B')"),
    ({"question": "q", "options": {"A": "x", "B": "y"}, "answer": "z"},
     "has 'answer' but no 'answer_idx' (its 'answer' holds neither an option letter nor an option's text)"),
    ({"question": "q", "options": {"A": "x", "B": "y"}, "answer_idx": "b"}, "must be one of the option letters "
     "['A', 'B'], got 'b'"),
]


@pytest.mark.parametrize("row, message", MCQ_ROWS_WITHOUT_A_FIELD)
def test_mcq_rows_without_a_field_say_which_is_missing(tmp_path, row, message):
    from bft.eval.mcq import read_mcq

    data = write_jsonl(tmp_path / "q.jsonl", [row])
    with pytest.raises(InputError) as error:
        read_mcq(data)
    assert str(error.value).startswith(f"{data}:1: ") and message in str(error.value)


@needs_shared_data("go_bp")
def test_given_names_match_go_ids_whatever_their_case_and_sets_left_out_are_warned_of(tmp_path, caplog):
    """`go:0015757` names the set GO:0015757; the sets without a name and the names of no set are logged as
    warnings (counted and shown), not only listed in results.json."""
    sets = {f"GO:{i:07d}": ("TP53 BAX", "apoptotic process") for i in range(1, 6)}
    names = tmp_path / "names.tsv"
    names.write_text("id\tname\ngo:0000001\tapoptosis\nGO:0000009\tcell cycle\n")
    results, rows = score_given_names(tmp_path, sets, names)
    assert list(rows) == ["GO:0000001"] and results["n"] == 1 and results["answered"] == 1
    assert results["missing"] == [f"GO:{i:07d}" for i in range(2, 6)] and results["unknown"] == ["GO:0000009"]
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert any(w.startswith("4 of 5 sets of") and "GO:0000002, GO:0000003" in w for w in warnings), warnings
    assert any(w.startswith("1 of 2 names of") and "GO:0000009" in w for w in warnings), warnings


@needs_shared_data("go_bp")
def test_an_empty_name_is_unanswered_and_never_the_top_name(tmp_path):
    from bft.eval.go_naming import name_diversity

    assert name_diversity(["", "DNA repair", "", "dna repair"]) == {
        "distinct_name_share": 0.25, "top_name": "dna repair", "top_name_share": 0.5}
    sets = {"GO:0015757": ("SLC2A1 SLC2A3", "galactose transmembrane transport")}
    names = tmp_path / "names.tsv"
    names.write_text("id\tname\nGO:0015757\t\n")  # a set named nothing
    results, _ = score_given_names(tmp_path, sets, names)
    assert (results["n"], results["answered"], results["top_name"]) == (1, 0, None)
    assert results["distinct_name_share"] == 0 and results["top_name_share"] == 0


def test_limit_takes_a_fixed_spread_subset(tmp_path):
    from bft.eval.mcq import read_mcq

    rows = [{"question": f"q{i}", "options": {"A": "x", "B": "y"}, "answer_idx": "A" if i < 50 else "B"}
            for i in range(100)]  # sorted by answer, as some benchmark files are
    data = write_jsonl(tmp_path / "sorted.jsonl", rows)
    first, second = read_mcq(data, 20), read_mcq(data, 20)
    assert first == second and len(first) == 20
    assert 3 < sum(q["answer_idx"] == "B" for q in first) < 17  # not the first 20, all "A"
    assert [int(q["id"]) for q in first] == sorted(int(q["id"]) for q in first)  # file order kept


def test_harness_bridge_scores_like_bft_eval_mcq(tiny_model, tmp_path):
    """The lm-evaluation-harness, through the bridge, on a local task over the same questions: same answers."""
    pytest.importorskip("lm_eval")
    from bft.eval.harness import local_mcq_task

    questions = [{"question": f"Which gene is number {i}?", "options": {"A": "TP53", "B": "BRCA1 gene", "C": "EGFR"},
                  "answer_idx": "ABC"[i % 3]} for i in range(6)]
    data = write_jsonl(tmp_path / "test.jsonl", questions)
    task = local_mcq_task(data, tmp_path / "tasks")
    assert main(["eval", "mcq", "--model", tiny_model, "--dtype", "float32", "--tasks", task,
                 "--include-path", str(tmp_path / "tasks"),
                 "--output", str(tmp_path / "harness")]) == 0
    assert main(["eval", "mcq", "--model", tiny_model, "--dtype", "float32", "--data", str(data),
                 "--output", str(tmp_path / "bft")]) == 0
    harness = json.loads((tmp_path / "harness" / "results.json").read_text())["tasks"][task]
    ours = json.loads((tmp_path / "bft" / "results.json").read_text())
    assert harness["n"] == ours["n"] == 6
    assert harness["accuracy"] == pytest.approx(ours["accuracy"])
    assert harness["accuracy_norm"] == pytest.approx(ours["accuracy_norm"])
    harness_text = (tmp_path / "harness" / "predictions.jsonl").read_text()
    harness_rows = [json.loads(line) for line in harness_text.split("\n") if line]
    our_rows = [json.loads(line) for line in (tmp_path / "bft" / "predictions.jsonl").read_text().split("\n") if line]
    for h, o in zip(sorted(harness_rows, key=lambda r: r["doc_id"]), our_rows):
        assert h["scores"] == pytest.approx(list(o["scores"].values()), abs=1e-3)


@needs_shared_data("pubmedqa")
def test_pubmedqa_generation_cli_limits_items_and_answer_length(tiny_model, tmp_path):
    from transformers import AutoTokenizer

    out = tmp_path / "pubmedqa"
    assert main(["eval", "pubmedqa", "--model", tiny_model, "--data-dir", str(SHARED_DATA),
                 "--output", str(out), "--limit", "3", "--max-new-tokens", "5"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["n"] == 3 and results["max_new_tokens"] == 5 and 0 <= results["accuracy"] <= 1
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    answers = [json.loads(line)["answer"] for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(answers) == 3 and all(len(tokenizer(a, add_special_tokens=False).input_ids) <= 6 for a in answers)


def test_generation_batches_by_rows_and_tokens():
    from bft.generation import length_batches

    lengths = [40, 1300, 45, 100, 42, 700, 41, 90]
    batches = length_batches(lengths, batch_size=3, max_tokens=1500)
    # longest first; 1300 alone (2 x 1300 > 1500); 700 alone (100 < 700 / 2); 45 not with 100; at most 3 rows
    assert batches == [[1], [5], [3, 7], [2, 4, 6], [0]]
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    assert all(len(b) * max(lengths[i] for i in b) <= 1500 or len(b) == 1 for b in batches)


def test_repetition_penalty_reaches_the_model_and_changes_the_profiles(tiny_model, tmp_path, monkeypatch):
    from transformers.generation.utils import GenerationMixin

    penalties, real = [], GenerationMixin.generate
    monkeypatch.setattr(GenerationMixin, "generate", lambda model, *a, **k: penalties.append(k["repetition_penalty"])
                        or real(model, *a, **k))
    genes = tmp_path / "genes.txt"
    genes.write_text("TP53\nEGFR\n")
    texts = {}
    for penalty in ("1", "50"):
        out = tmp_path / f"profiles-{penalty}.jsonl"
        assert main(["profile", "--model", tiny_model, "--genes", str(genes), "--output", str(out),
                     "--max-new-tokens", "12", "--repetition-penalty", penalty]) == 0
        texts[penalty] = [json.loads(line)["text"] for line in out.read_text().splitlines()]
    assert penalties == [1.0, 50.0]
    assert texts["1"] != texts["50"]


def score_given_names(tmp_path, sets: dict, names, output="out") -> tuple[dict, dict]:
    """`bft eval go-naming --predictions`: sets {id: (genes, true name)}, names a JSONL file or its rows; returns
    results.json and the predictions by set id."""
    sets_file = tmp_path / "sets.tsv"
    sets_file.write_text("id\tgenes\tname\n" + "".join(f"{i}\t{genes}\t{name}\n" for i, (genes, name) in sets.items()))
    if not isinstance(names, Path):
        names = write_jsonl(tmp_path / f"{output}-names.jsonl", names)
    out = tmp_path / output
    assert main(["eval", "go-naming", "--sets", str(sets_file), "--predictions", str(names), "--output", str(out),
                 "--go-dir", str(SHARED_DATA / "go_bp")]) == 0
    rows = {r["id"]: r for r in map(json.loads, (out / "predictions.jsonl").read_text().splitlines())}
    return json.loads((out / "results.json").read_text()), rows


@needs_shared_data("go_bp")
def test_names_from_another_system_are_scored_alike(tmp_path, capsys):
    sets = {"S1": ("TP53 BAX", "apoptotic process"), "S2": ("EGFR KRAS", "cell proliferation"),
            "S3": ("INS GCG", "glucose homeostasis")}
    results, rows = score_given_names(tmp_path, sets, [{"id": "S1", "name": "Apoptotic process."},
                                                       {"id": "S2", "name": "lipid storage"},
                                                       {"id": "S9", "name": "a set the file does not hold"}])
    assert results["n"] == 2 and results["sets_total"] == 3
    assert results["missing"] == ["S3"] and results["unknown"] == ["S9"]  # reported, not silently dropped
    assert rows["S1"]["similarity"] == pytest.approx(1.0, abs=1e-5) and rows["S2"]["similarity"] < 0.6
    assert main(["eval", "go-naming", "--sets", str(tmp_path / "sets.tsv"), "--output", str(tmp_path / "o2")]) == 2
    # a set named twice (say several samples of one system in one file): which name counts would be a silent choice
    names = write_jsonl(tmp_path / "twice.jsonl", [{"id": "S1", "name": "apoptosis"}, {"id": "S2", "name": "growth"},
                                                   {"id": "S1", "name": "cell death"}])
    assert main(["eval", "go-naming", "--sets", str(tmp_path / "sets.tsv"), "--predictions", str(names), "--output",
                 str(tmp_path / "o3"), "--go-dir", str(SHARED_DATA / "go_bp")]) == 2
    assert "twice.jsonl:3: set 'S1' is named again (first on line 1): give one name a set" in capsys.readouterr().err
    assert not (tmp_path / "o3").exists()


@needs_shared_data("go_bp")
def test_a_predictions_file_of_bft_scores_the_same_when_scored_again(tmp_path):
    """Our own predictions.jsonl holds the true `name` beside the `prediction`: scoring it again must score the
    prediction (reading `name` would score the truth against itself and report perfect names)."""
    sets = {"S1": ("TP53 BAX", "apoptotic process"), "S2": ("EGFR KRAS", "cell proliferation")}
    first, _ = score_given_names(tmp_path, sets, [{"id": "S1", "name": "lipid storage"},
                                                  {"id": "S2", "name": "lipid storage"}], output="a")
    again, _ = score_given_names(tmp_path, sets, tmp_path / "a" / "predictions.jsonl", output="b")
    assert first["semantic_similarity_mean"] < 0.6
    assert again["semantic_similarity_mean"] == pytest.approx(first["semantic_similarity_mean"], abs=1e-6)


@needs_shared_data("go_bp")
def test_go_naming_reports_how_many_different_names_the_model_gives(tmp_path):
    """A model that gives one name to most sets (a collapse seen after DFT) shows in distinct_name_share."""
    sets = {f"S{i}": ("TP53 BAX", "apoptotic process") for i in range(4)}
    results, _ = score_given_names(tmp_path, sets, [{"id": "S0", "name": "Cell adhesion."},
                                                    {"id": "S1", "name": "cell adhesion"},
                                                    {"id": "S2", "name": "cell adhesion"},
                                                    {"id": "S3", "name": "DNA repair"}])
    assert results["distinct_name_share"] == pytest.approx(2 / 4)
    assert results["top_name"] == "cell adhesion" and results["top_name_share"] == pytest.approx(3 / 4)


def test_unknown_harness_tasks_are_named_with_near_ones_before_a_model_loads():
    from bft.eval.harness import check_harness_tasks

    with pytest.raises(InputError, match=r"unknown harness task\(s\) medqa_4option \(near: medqa_4options"):
        check_harness_tasks("medqa_4option")
