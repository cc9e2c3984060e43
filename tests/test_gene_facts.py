"""`bft data gene-facts`: facts of trained genes only, probes in other words, no evaluation term named."""

import json

import pytest

from bft.data.gene_facts import CLOZE_TEMPLATE, TRAIN_TEMPLATES, build_gene_facts
from bft.data.gene_knowledge import build_gene_knowledge
from bft.data.gene_sets import go_process_gene_sets, read_gene_sets
from bft.data.records import DataError
from bft.errors import InputError
from tests.conftest import SHARED_DATA, needs_shared_data


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line]


@pytest.fixture(scope="module")
def knowledge(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gene-knowledge")
    build_gene_knowledge(SHARED_DATA, folder, limit=80, valid_fraction=0.5)
    return folder


@needs_shared_data("go_bp")
def test_facts_of_trained_genes_with_probes_in_other_words(knowledge, tmp_path):
    meta = build_gene_facts(SHARED_DATA, tmp_path, knowledge=knowledge)
    train = read_jsonl(tmp_path / "train.jsonl")
    probes = {split: read_jsonl(tmp_path / f"question_{split}.jsonl") for split in ("trained", "untrained")}
    assert len(train) == len(TRAIN_TEMPLATES) * len(probes["trained"]) == meta["counts"]["train"] > 0
    facts = {}
    for row in train:
        gene = row["id"].split(":")[0]
        user, assistant = (message["content"] for message in row["messages"])
        assert gene in user and gene in assistant
        facts.setdefault(gene, set()).add(assistant)
    for words in ("biological process", "involved in", "participant"):  # the probes' wording
        assert all(words not in user + assistant for user, assistant in TRAIN_TEMPLATES)
    trained = {probe["gene"]: probe for probe in probes["trained"]}
    assert set(facts) == set(trained) and not set(facts) & {p["gene"] for p in probes["untrained"]}
    for gene, sentences in facts.items():  # every paraphrase states the probe's answer
        assert len(sentences) == len(TRAIN_TEMPLATES)
        assert all(trained[gene]["answer"] in sentence for sentence in sentences)
    for split in ("trained", "untrained"):
        cloze = read_jsonl(tmp_path / f"cloze_{split}.jsonl")
        assert [c["question"] for c in cloze] == [CLOZE_TEMPLATE.format(gene=p["gene"]) for p in probes[split]]
        assert [(c["options"], c["answer_idx"]) for c in cloze] == [(p["options"], p["answer_idx"])
                                                                    for p in probes[split]]


@needs_shared_data("go_bp")
def test_no_fact_names_an_evaluation_term(knowledge, tmp_path):
    gene_sets = go_process_gene_sets(SHARED_DATA / "go_bp")
    public = read_gene_sets(SHARED_DATA / "geneagent" / "GO_terms.csv")
    public_ids, public_sets = {gs.id for gs in public}, {frozenset(gs.genes) for gs in public}
    every = read_jsonl(knowledge / "trained.jsonl") + read_jsonl(knowledge / "untrained.jsonl")
    meta = build_gene_facts(SHARED_DATA, tmp_path / "plain", knowledge=knowledge)
    kept = read_jsonl(tmp_path / "plain" / "question_trained.jsonl")
    kept += read_jsonl(tmp_path / "plain" / "question_untrained.jsonl")
    assert all(p["term"] not in public_ids and gene_sets[p["term"]] not in public_sets for p in kept)
    assert len(every) - len(kept) == meta["counts"]["probes_naming_an_evaluation_term"]
    # a user's evaluation set, its symbols upper-cased by a spreadsheet, excludes the term it names
    target = kept[0]
    extra = tmp_path / "mine.tsv"
    extra.write_text(f"id\tgenes\tname\nmine-1\t{','.join(g.upper() for g in gene_sets[target['term']])}\tx\n")
    meta_mine = build_gene_facts(SHARED_DATA, tmp_path / "mine", knowledge=knowledge, exclude=[str(extra)],
                                 templates=1)
    assert target not in read_jsonl(tmp_path / "mine" / "question_trained.jsonl")
    assert target["gene"] not in {row["id"].split(":")[0] for row in read_jsonl(tmp_path / "mine" / "train.jsonl")}
    assert meta_mine["counts"]["probes_naming_an_evaluation_term"] > meta["counts"]["probes_naming_an_evaluation_term"]
    assert meta_mine["counts"]["train"] == meta_mine["counts"]["genes_trained"]  # one template a fact


def test_bad_knowledge_folder_and_templates(tmp_path):
    with pytest.raises(DataError, match="gene-knowledge"):
        build_gene_facts(tmp_path, tmp_path / "out", knowledge=tmp_path)
    (tmp_path / "trained.jsonl").write_text('{"gene": "TP53"}\n')
    (tmp_path / "untrained.jsonl").write_text("")
    with pytest.raises(DataError, match=r"trained.jsonl:1: missing term"):
        build_gene_facts(tmp_path, tmp_path / "out", knowledge=tmp_path)
    with pytest.raises(InputError, match=r"templates must be a whole number in \[1, 4\], got 9"):
        build_gene_facts(tmp_path, tmp_path / "out", knowledge=tmp_path, templates=9)
    assert not (tmp_path / "out").exists()


@needs_shared_data("go_bp")
def test_probes_that_leave_no_fact_to_train_on_fail(knowledge, tmp_path):
    """A knowledge folder without trained genes (or whose trained genes' facts all name evaluation terms) would build
    an empty train.jsonl."""
    (tmp_path / "knowledge").mkdir()
    (tmp_path / "knowledge" / "trained.jsonl").write_text("")
    (tmp_path / "knowledge" / "untrained.jsonl").write_text((knowledge / "untrained.jsonl").read_text())
    with pytest.raises(DataError, match=r"leave no item in train.jsonl .*train: 0"):
        build_gene_facts(SHARED_DATA, tmp_path / "out", knowledge=tmp_path / "knowledge")
    assert not (tmp_path / "out").exists()
