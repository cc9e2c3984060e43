"""Text cut to fit a model is counted and reported, never silent: answers stopped by max_new_tokens, prompts and
multiple-choice contexts longer than the model's context, texts longer than the sentence encoder's limit."""

import json
import logging

import pytest

from bft.cli import main
from bft.generation import generate
from bft.models import embed_with_cut, load_encoder, load_for_eval

LONG_TEXT = "This gene encodes a member of a conserved protein family expressed in many tissues. " * 30


@pytest.fixture(scope="module")
def tiny(tiny_model):
    return load_for_eval(tiny_model, dtype="float32")


def test_answers_stopped_by_max_new_tokens_are_counted(tiny, caplog):
    model, tokenizer = tiny
    eos = model.generation_config.eos_token_id
    try:
        model.generation_config.eos_token_id = [len(tokenizer) + 10]  # nothing ends an answer: every one is cut
        with caplog.at_level(logging.WARNING, logger="bft.generation"):
            generated = generate(model, tokenizer, ["TP53", "EGFR", "MYC"], max_new_tokens=3, desc=None)
        assert generated.cut == [True, True, True] and len(generated.answers) == 3
        assert "3 of 3 answers reached max_new_tokens (3) before the model ended them" in caplog.text
        caplog.clear()
        model.generation_config.eos_token_id = list(range(len(tokenizer)))  # every token ends it: none is cut
        with caplog.at_level(logging.WARNING, logger="bft.generation"):
            assert generate(model, tokenizer, ["TP53", "EGFR"], max_new_tokens=3, desc=None).cut == [False, False]
        assert "max_new_tokens" not in caplog.text
    finally:
        model.generation_config.eos_token_id = eos


def test_prompts_longer_than_the_models_context_are_counted(tiny, caplog):
    model, tokenizer = tiny  # the tiny model has 512 positions
    with caplog.at_level(logging.WARNING, logger="bft.generation"):
        generated = generate(model, tokenizer, ["TP53", LONG_TEXT, "EGFR " * 505], max_new_tokens=2, desc=None)
    assert generated.over_context == 2
    assert "2 of 3 prompts, with max_new_tokens (2), are longer than the model's context of 512 tokens" in caplog.text


def test_texts_longer_than_the_encoder_limit_are_counted(caplog):
    encoder = load_encoder()
    with caplog.at_level(logging.WARNING, logger="bft.models"):
        vectors, cut = embed_with_cut(encoder, ["DNA repair", LONG_TEXT, LONG_TEXT + " Kidney disease."])
    assert cut == 2 and vectors.shape == (3, 384)
    assert "2 of 3 texts are longer than the encoder's limit of 256 word pieces" in caplog.text
    # what is past the limit does not reach the embedding: the two long texts embed alike
    assert float(vectors[1] @ vectors[2]) == pytest.approx(1.0, abs=1e-5)
    assert embed_with_cut(encoder, ["DNA repair", "cell cycle"])[1] == 0


def test_bft_embed_reports_the_texts_the_encoder_cut(tmp_path, capsys):
    synopses = tmp_path / "synopses.txt"
    synopses.write_text(f"GENEA: {LONG_TEXT}\nGENEB: A short summary.\n")
    assert main(["embed", "--input", str(synopses), "--output", str(tmp_path / "emb.npz")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["cut_by_encoder"] == 1 and summary["encoder_max_seq_length"] == 256


def test_mcq_questions_longer_than_the_models_context_are_cut_and_counted(tiny_model, tmp_path, caplog):
    questions = [{"question": "Which gene?", "options": {"A": "TP53", "B": "EGFR"}, "answer_idx": "A"},
                 {"question": "Which gene? " + LONG_TEXT, "options": {"A": "TP53", "B": "EGFR"}, "answer_idx": "B"}]
    data = tmp_path / "test.jsonl"
    data.write_text("".join(json.dumps(q) + "\n" for q in questions))
    with caplog.at_level(logging.WARNING, logger="bft.eval.mcq"):
        assert main(["eval", "mcq", "--model", tiny_model, "--data", str(data), "--output", str(tmp_path / "o")]) == 0
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    assert results["max_length"] == 512 and results["options_cut"] == 2  # the model's context, not 2048
    assert "2 of 4 options, with their question, are longer than 512 tokens" in caplog.text


@pytest.fixture
def endless_model(tiny_model, tmp_path):
    """The tiny model with an end-of-sequence token it can never write: every answer runs to max_new_tokens."""
    import shutil

    folder = shutil.copytree(tiny_model, tmp_path / "endless")
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": [10_000], "pad_token_id": 0}))
    return str(folder)


def test_generating_evaluations_and_profiles_record_what_was_cut(endless_model, tmp_path, capsys, caplog):
    go_dir = tmp_path / "go_bp"
    go_dir.mkdir()
    (go_dir / "goID_2_name.tab").write_text("\t0\nGO:1\tDNA repair\nGO:2\tcell cycle\n")
    (go_dir / "goID_2_namespace.tab").write_text("\t0\nGO:1\tbiological_process\nGO:2\tbiological_process\n")
    sets = tmp_path / "sets.tsv"
    sets.write_text("id\tgenes\tname\nGO:1\tBRCA1 RAD51 XRCC1\tDNA repair\nGO:2\tCDK1 CCNB1 CDC20\tcell cycle\n")
    assert main(["eval", "go-naming", "--model", endless_model, "--sets", str(sets), "--go-dir", str(go_dir),
                 "--output", str(tmp_path / "go"), "--max-new-tokens", "3"]) == 0
    results = json.loads((tmp_path / "go" / "results.json").read_text())
    assert results["cut_at_max_new_tokens"] == 2 and results["prompts_over_context"] == 0
    assert results["names_cut_by_encoder"] == 0

    genes = tmp_path / "genes.txt"
    genes.write_text("TP53\nEGFR\nMYC\n")
    capsys.readouterr()
    caplog.clear()
    assert main(["profile", "--model", endless_model, "--genes", str(genes), "--output", str(tmp_path / "p.jsonl"),
                 "--max-new-tokens", "3", "--batch-size", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["cut_at_max_new_tokens"] == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["3 of 3 profiles reached --max-new-tokens (3) before the model ended them, and are cut there"]
    profiles = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [row["cut"] for row in profiles] == [True, True, True]


def test_the_suite_table_says_what_each_task_cut():
    from bft.eval.suite import summary_table

    row = {"n": 4, "seconds": 1.0, "accuracy_norm": 0.5, "accuracy": 0.5, "accuracy_ci_low": 0.1,
           "accuracy_ci_high": 0.9}
    table = summary_table({"model": "m", "limit": None, "tasks": {
        "mcq-medqa": {**row, "task": "mcq", "options_cut": 3},
        "mcq-mmlu": {**row, "task": "mcq", "options_cut": 0},
        "pubmedqa-generation": {**row, "task": "pubmedqa", "macro_f1": 0.4, "cut_at_max_new_tokens": 2,
                                "prompts_over_context": 1}}})
    assert "| 3 options past the context |" in table and "| none |" in table
    assert "| 2 answers at max_new_tokens, 1 prompts past the context |" in table
