"""Answers as small models write them: one parser per kind of answer (`bft.eval.answers`), shared by `bft eval`, the
GRPO rewards and `bft compare`; an answer that says nothing scores the floor of every metric and is counted."""

import json

import numpy as np
import pytest

from bft import rewards
from bft.eval.answers import parse_decision, parse_option_letter, parse_process_name

# (answer, the process name in it; "" where it names nothing)
NAMES = [
    ("DNA repair", "DNA repair"),
    ("Process: DNA repair.", "DNA repair"),
    ("Process:\nDNA repair", "DNA repair"),  # the label on a line of its own
    ("**Process name:**\n\n*glucose transmembrane transport*", "glucose transmembrane transport"),
    ("**Name:** cell cycle regulation\nThese genes ...", "cell cycle regulation"),
    ('\n  "apoptotic process"  \n', "apoptotic process"),
    ("Answer: 'glycolysis'", "glycolysis"),
    ("Biological process: “T cell activation”!", "T cell activation"),
    ("- positive regulation of T cell proliferation", "positive regulation of T cell proliferation"),
    ("1. DNA repair\n2. cell cycle", "DNA repair"),
    ("Process name: DNA repair (GO:0006281)", "DNA repair"),
    ("The most prominent biological process they perform is the regulation of iron transport.",
     "regulation of iron transport"),
    ("3'-UTR-mediated mRNA stabilization", "3'-UTR-mediated mRNA stabilization"),
    ("process utilizing autophagic mechanism", "process utilizing autophagic mechanism"),  # a GO name, not a label
    ("", ""), ("   ", ""), ("\n\n", ""), ("...", ""), ("???", ""), ("**", ""), ("Process:", ""), ("Unknown.", ""),
    ("N/A", ""), (None, ""),
]


@pytest.mark.parametrize("answer, name", NAMES)
def test_process_names_as_small_models_write_them(answer, name):
    assert parse_process_name(answer) == name
    # the format reward reads the same name
    assert rewards.go_naming_format([[{"role": "assistant", "content": answer or ""}]]) == [float(bool(name))]


# (answer, the option chosen among A-D; None where no option is written as one)
LETTERS = [
    ("C", "C"), ("C.", "C"), ("(C)", "C"), ("[C]", "C"), ("**C**", "C"), ("C) pancreas", "C"), ("C: insulin", "C"),
    ("C is correct.", "C"), ("Answer: C", "C"), ("**Answer:** C", "C"), ("Final answer: (C)", "C"),
    ("the answer is C", "C"), ("I think the answer is C.", "C"), ("The answer is C; B is wrong.", "C"),
    ("The correct option is C.", "C"), ("Option C", "C"), ("The answer is (D) insulin", "D"),
    ("The answer is A because the pancreas makes insulin", "A"), ("A", "A"), ("A.", "A"),
    ("Answer: A deficiency of insulin (C)", "C"),  # "A" is the article; the option is in brackets
    ("Answer: A because the patient is young", "A"), ("Correct answer: A because", "A"),
    ("Final answer: A with high confidence", "A"), ("Answer: A is correct", "A"),
    (r"so the result is \boxed{B}", "B"), (r"\boxed{\text{C}}", "C"), ("I would go with B.", "B"), ("I'd pick C.", "C"),
    ('The answer would be "C"', "C"), ("The answer is 'b'", "B"), ("The answer is 'C'.", "C"), ("I selected D", "D"),
    ("The answer is C's", None),
    ("I would pick a different approach", None), (r"\boxed{E}", None),
    ("I think", None), ("I think it is the pancreas", None), ("A deficiency of insulin", None),
    ("Answer: I think so", None), ("vitamin C deficiency", None), ("The answer is vitamin C", None),
    ("hepatitis B virus", None), ("The answer is B12", None),
    # a lower-case letter right after an explicit cue, ending its phrase; never "a" or "i" as a word, "e.g.", "i.e."
    ("Answer: c", "C"), ("answer: c", "C"), ("**Answer:** c.", "C"), ("Final answer: (d)", "D"),
    ("the answer is c", "C"), ("Answer: c) pancreas", "C"), ("My choice is b.", "B"), ("Answer:\nc\n", "C"),
    ("I would choose C.", "C"), ("I chose option B", "B"), ("I would choose (c), the pancreas", "C"),
    ("I would choose A because it makes insulin", "A"),
    ("Answer: a deficiency of insulin", None), ("I would choose a different drug", None),
    ("Answer: e.g. insulin", None), ("Answer: i.e. none of them", None), ("The answer is c because", None),
    ("c", None), ("c.", None), ("(c)", None), ("a cell makes it", None), ("i think so", None),
    ("E", None), ("The answer is E", None), ("(E)", None),  # not among the question's options A-D
    ("", None), ("   ", None), (None, None),
]


@pytest.mark.parametrize("answer, letter", LETTERS)
def test_option_letters_only_where_written_as_options(answer, letter):
    assert parse_option_letter(answer, "ABCD") == letter
    completion = [{"role": "assistant", "content": answer or ""}]
    # the GRPO rewards read the same letter, among the question's options
    assert rewards.mcq_correct([completion], ["C"], letters=["ABCD"]) == [float(letter == "C")]
    assert rewards.mcq_format([completion], letters=["ABCD"]) == [float(letter is not None)]


def test_option_letters_default_to_a_to_j():
    assert parse_option_letter("The answer is E") == "E" and parse_option_letter("I") == "I"
    assert parse_option_letter("I think the answer is C.") == "C"
    assert rewards.mcq_correct(["E", "E"], ["E", "E"], letters=["ABCDE", "ABCD"]) == [1.0, 0.0]


# (answer, the PubMedQA decision; None where it states none)
DECISIONS = [
    ("The data support it.\nFinal answer: yes", "yes"), ("Final answer: maybe", "maybe"),
    ("It is unclear... Final answer: Maybe", "maybe"), ("**Final answer:** No", "no"),
    ("No evidence of benefit was found. Final answer: yes", "yes"), ("The answer is yes.", "yes"),
    ("Based on the abstract, the answer to the question is maybe.", "maybe"), ("Answer: Yes", "yes"),
    ("no", "no"), ("Yes.", "yes"), ("No, the data show a benefit.", "no"), ("Reasoning ...\nNo.", "no"),
    ("There is no evidence of benefit.", None),  # an English "no", not a decision
    ("Yes-associated protein 1 is expressed.", None), ("Nobody knows", None), ("I cannot tell", None),
    ("", None), ("   ", None), (None, None),
]


@pytest.mark.parametrize("answer, decision", DECISIONS)
def test_pubmedqa_decisions(answer, decision):
    assert parse_decision(answer) == decision
    assert rewards.pubmedqa_correct([answer or ""], ["yes"]) == [float(decision == "yes")]
    assert rewards.pubmedqa_format([answer or ""]) == [float(decision is not None)]


def tiny_go_dir(tmp_path):
    go_dir = tmp_path / "go_bp"
    go_dir.mkdir()
    names = ["DNA repair", "cell cycle", "apoptotic process", "glucose transmembrane transport", "lipid storage"]
    (go_dir / "goID_2_name.tab").write_text("\t0\n" + "".join(f"GO:{i}\t{n}\n" for i, n in enumerate(names)))
    (go_dir / "goID_2_namespace.tab").write_text("\t0\n" + "".join(f"GO:{i}\tbiological_process\n"
                                                                   for i in range(len(names))))
    return go_dir


def test_names_that_say_nothing_score_the_floor_and_are_counted(tmp_path):
    """Empty, blank, unparseable and null names: similarity, percentile and ROUGE-L 0, and `answered_share` says how
    many sets were named; a real name is scored as before."""
    from bft.eval.go_naming import evaluate_given_names

    sets = tmp_path / "sets.tsv"
    sets.write_text("id\tgenes\tname\n" + "".join(f"S{i}\tTP53 BAX\tDNA repair\n" for i in range(5)))
    names = tmp_path / "names.jsonl"
    given = ["", "   ", "???", None, "Process:\nDNA repair"]
    names.write_text("".join(json.dumps({"id": f"S{i}", "name": name}) + "\n" for i, name in enumerate(given)))
    results = evaluate_given_names(sets, names, tmp_path / "out", go_dir=tiny_go_dir(tmp_path))
    rows = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    for row in rows[:4]:
        assert (row["answered"], row["similarity"], row["percentile"], row["rougeL"]) == (False, 0.0, 0.0, 0.0)
    assert rows[4]["answered"] and rows[4]["similarity"] == pytest.approx(1.0, abs=1e-5) and rows[4]["rougeL"] == 1
    assert results["n"] == 5 and results["answered"] == 1 and results["answered_share"] == pytest.approx(0.2)
    assert results["semantic_similarity_mean"] == pytest.approx(np.mean([r["similarity"] for r in rows]))
    assert results["percentile_mean"] == pytest.approx(rows[4]["percentile"] / 5)


def test_go_naming_rewards_floor_answers_that_say_nothing(monkeypatch, tmp_path):
    """The rewards score the names exactly as the evaluation does: the same parser, the same floor."""
    from bft.eval.go_naming import process_name_embeddings
    from bft.models import DEFAULT_ENCODER

    go_dir = tiny_go_dir(tmp_path)
    monkeypatch.setattr(rewards, "_process_names",
                        lambda: process_name_embeddings(rewards._encoder(), DEFAULT_ENCODER, go_dir))
    answers = ["", "  \n ", "...", "Process:\nDNA repair", "cell cycle"]
    truth = ["DNA repair"] * 5
    similarity = rewards.go_naming_similarity(answers, truth)
    percentile = rewards.go_naming_percentile(answers, truth)
    assert similarity[:3] == [0.0] * 3 and percentile[:3] == [0.0] * 3
    assert similarity[3] == pytest.approx(1.0, abs=1e-5) and percentile[3] >= 0.8
    assert 0 < similarity[4] < 0.9


def test_pubmedqa_counts_answers_without_a_decision(tmp_path, monkeypatch):
    from bft.eval import pubmedqa
    from bft.generation import Generated

    items = {str(i): {"QUESTION": f"q{i}", "CONTEXTS": ["c"], "LONG_ANSWER": "a", "final_decision": "yes"}
             for i in range(4)}
    (tmp_path / "ori_pqal.json").write_text(json.dumps(items))
    (tmp_path / "test_ground_truth.json").write_text(json.dumps({i: "yes" for i in items}))
    answers = ["Final answer: yes", "", "There is no clear answer.", "Yes, it does."]
    monkeypatch.setattr(pubmedqa, "generate",
                        lambda model, tokenizer, prompts, **_: Generated(answers, [False] * len(answers), 0))
    results = pubmedqa.evaluate_pubmedqa(None, None, tmp_path, tmp_path / "out")
    assert results["accuracy"] == 0.5 and results["unparsed"] == 2 and results["answered_share"] == 0.5
    rows = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert [row["answered"] for row in rows] == [True, False, False, True]


def test_compare_tabulates_the_answered_share(tmp_path, monkeypatch):
    """`bft compare` reads the answered share of each evaluation into its tables, beside the scores."""
    from bft.compare import evaluations, reuse
    from bft.compare.report import markdown, tables
    from bft.eval.go_naming import evaluate_given_names

    sets = tmp_path / "sets.tsv"
    sets.write_text("id\tgenes\tname\nS1\tTP53 BAX\tDNA repair\nS2\tEGFR KRAS\tcell cycle\n")
    go_dir = tiny_go_dir(tmp_path)

    def evaluate(model, out, evaluation):  # method "nll" names one set of two, "bft" both
        names = tmp_path / f"{model}.jsonl"
        names.write_text(json.dumps({"id": "S1", "name": "DNA repair"}) + "\n"
                         + json.dumps({"id": "S2", "name": "cell cycle" if model == "bft" else " "}) + "\n")
        evaluate_given_names(sets, names, out, go_dir=go_dir)

    monkeypatch.setattr(evaluations, "_evaluate", evaluate)
    evaluation = {"task": "go-naming", "name": "go"}
    runs = {}
    for method in ("nll", "bft"):
        out = tmp_path / method
        record = reuse.evaluation_record({"model": method}, evaluation)
        scores = evaluations._evaluate_once(method, out, evaluation, record)
        runs[method] = {"method": method, "loss_type": method, "seed": 0, "scores": {"go": scores}}
    assert runs["nll"]["scores"]["go"]["answered_share"] == 0.5 and runs["bft"]["scores"]["go"]["answered_share"] == 1
    table = tables(runs)["go"]["answered_share"]
    assert table["differences"]["bft - nll"]["mean"] == pytest.approx(0.5)
    report = markdown({"config": "c", "seeds": [0], "tables": tables(runs)})
    assert "answered_share" in report.split("## go")[1].splitlines()[2]
