"""Data builders on the real files (skipped where ../shared/data is absent) and gene-set file reading."""

import json

import pytest

from bft.data.gene_knowledge import build_gene_knowledge
from bft.data.gene_profiles import build_gene_profiles, read_synopses
from bft.data.gene_sets import go_process_gene_sets, read_gene_sets, read_go_terms
from bft.data.go_naming import build_go_naming
from bft.data.pubmedqa import build_pubmedqa
from bft.data.records import DataError
from bft.data.training import demo_data_path, validated_records
from tests.conftest import SHARED_DATA, needs_shared_data


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().split("\n") if line]


@needs_shared_data("go_bp")
def test_go_naming_never_contains_an_evaluation_term(tmp_path):
    extra = tmp_path / "extra.tsv"  # a user's own evaluation set, in the plain id/genes/name layout
    extra.write_text("id\tgenes\tname\nGO:0006915\tTP53,BAX\tapoptotic process\n")
    meta = build_go_naming(SHARED_DATA, tmp_path / "out", exclude=[str(extra)])
    rows = read_jsonl(tmp_path / "out" / "train.jsonl") + read_jsonl(tmp_path / "out" / "valid.jsonl")
    assert len(rows) == meta["counts"]["train"] + meta["counts"]["valid"] > 5000
    public = read_gene_sets(SHARED_DATA / "geneagent" / "GO_terms.csv")
    excluded_ids = {gs.id for gs in public} | {"GO:0006915"}
    excluded_sets = {frozenset(gs.genes) for gs in public}
    all_sets = go_process_gene_sets(SHARED_DATA / "go_bp")
    assert meta["counts"]["excluded_by_id"] > 900 and meta["counts"]["excluded_by_gene_set"] > 0
    for row in rows:
        assert row["id"] not in excluded_ids
        assert all_sets[row["id"]] not in excluded_sets
        genes = row["messages"][0]["content"].split(": ", 1)[1].split(". ", 1)[0].split(", ")
        assert set(genes) == all_sets[row["id"]] and 3 <= len(genes) <= 100
    assert not {r["id"] for r in read_jsonl(tmp_path / "out" / "train.jsonl")} & {
        r["id"] for r in read_jsonl(tmp_path / "out" / "valid.jsonl")}
    # the validation terms as a gene-set file for `bft eval go-naming --sets`
    valid_sets = read_gene_sets(tmp_path / "out" / "valid_sets.jsonl")
    assert [gs.id for gs in valid_sets] == [r["id"] for r in read_jsonl(tmp_path / "out" / "valid.jsonl")]
    assert all(frozenset(gs.genes) == all_sets[gs.id] for gs in valid_sets)


@needs_shared_data("go_bp")
def test_go_naming_is_deterministic_and_rebuilds_the_packaged_demo(tmp_path):
    for name in ("a", "b"):
        build_go_naming(SHARED_DATA, tmp_path / name, max_genes=12, limit=330)
    assert (tmp_path / "a" / "train.jsonl").read_bytes() == (tmp_path / "b" / "train.jsonl").read_bytes()
    assert (tmp_path / "a" / "train.jsonl").read_bytes() == demo_data_path().read_bytes()
    validated_records(demo_data_path())


@needs_shared_data("geneagent", "gene_narrative_synopsis.txt")
def test_gene_profiles_split_by_gene(tmp_path):
    meta = build_gene_profiles(SHARED_DATA, tmp_path)
    train, valid = read_jsonl(tmp_path / "train.jsonl"), read_jsonl(tmp_path / "valid.jsonl")
    assert meta["counts"]["train"] + meta["counts"]["valid"] == 4039
    assert not {r["id"] for r in train} & {r["id"] for r in valid}
    assert 0.07 < len(valid) / 4039 < 0.13
    assert train[0]["id"] in train[0]["messages"][0]["content"]


@needs_shared_data("pubmedqa")
def test_pubmedqa_official_split(tmp_path):
    assert build_pubmedqa(SHARED_DATA, tmp_path)["counts"] == {"train": 500, "test": 500}
    test_ids = set(json.loads((SHARED_DATA / "pubmedqa" / "test_ground_truth.json").read_text()))
    assert {r["id"] for r in read_jsonl(tmp_path / "test.jsonl")} == test_ids
    answer = read_jsonl(tmp_path / "train.jsonl")[0]["messages"][1]["content"]
    assert answer.rsplit("\n", 1)[1] in ("Final answer: yes", "Final answer: no", "Final answer: maybe")


@needs_shared_data("go_bp")
@pytest.mark.parametrize("build, options, split", [
    (build_go_naming, {"limit": 1}, "train"),  # its one term is drawn into valid
    (build_gene_profiles, {"limit": 1, "valid_fraction": 0.9}, "train"),
    (build_gene_knowledge, {"limit": 1, "valid_fraction": 0.9}, "trained")], ids=["go-naming", "profiles", "knowledge"])
def test_builders_whose_filters_leave_no_training_item_fail(tmp_path, build, options, split):
    with pytest.raises(DataError, match=f"leave no item in {split}.jsonl .*{split}: 0, "):
        build(SHARED_DATA, tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()


def test_gene_set_layouts_and_errors(tmp_path):
    jsonl = tmp_path / "sets.jsonl"
    jsonl.write_text('{"id": "s1", "genes": ["A", "B"], "name": "x"}\n{"id": "s2", "genes": "C D,E", "name": "y"}\n')
    assert [gs.genes for gs in read_gene_sets(jsonl)] == [("A", "B"), ("C", "D", "E")]
    geneagent = tmp_path / "GO_terms.csv"
    geneagent.write_text("GO,Genes,Gene_Count,Term_Description\nGO:1,A B C,3,some process\n")
    assert read_gene_sets(geneagent)[0].name == "some process"
    geneagent.write_text("GO,Genes,Gene_Count,Term_Description\nGO:1,A B C,3,some process\nGO:2,D E,2,\n")
    with pytest.raises(DataError, match=r"GO_terms.csv:3: empty Term_Description"):  # a true name to score against
        read_gene_sets(geneagent)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,genes,name\ns1,A B,x\ns2,A B\n")
    with pytest.raises(DataError, match=r"bad.csv:3: expected 3 columns"):
        read_gene_sets(bad)
    missing = tmp_path / "missing.tsv"
    missing.write_text("id\tsymbols\nx\tA\n")
    with pytest.raises(DataError, match=r"missing.tsv:2: missing column\(s\) genes, name"):
        read_gene_sets(missing)


def test_synopsis_layout_errors(tmp_path):
    path = tmp_path / "syn.txt"
    path.write_text("TP53: tumour suppressor\nno colon on this line\n")
    with pytest.raises(DataError, match=r"syn.txt:2: expected 'SYMBOL: text'"):
        read_synopses(path)


@needs_shared_data("go_bp")
def test_gene_knowledge_probes(tmp_path):
    from bft.data.gene_knowledge import build_gene_knowledge
    from bft.data.gene_sets import read_go_terms
    from bft.eval.mcq import read_mcq

    build_gene_profiles(SHARED_DATA, tmp_path / "profiles", limit=300, seed=3)
    # probes split otherwise than the profiles would call trained genes untrained: they fail, nothing written
    with pytest.raises(DataError, match=r"profiles/meta.json: split otherwise than these probes \(seed 3 there, 4 "
                                        r"here\): give the same --valid-fraction, --seed and --limit"):
        build_gene_knowledge(SHARED_DATA, tmp_path / "probes", limit=300, seed=4, profiles=tmp_path / "profiles")
    assert not (tmp_path / "probes").exists()
    meta = build_gene_knowledge(SHARED_DATA, tmp_path / "probes", limit=300, seed=3, profiles=tmp_path / "profiles")
    assert meta["profiles"] == str(tmp_path / "profiles")
    trained, untrained = read_jsonl(tmp_path / "probes" / "trained.jsonl"), read_jsonl(tmp_path / "probes" /
                                                                                       "untrained.jsonl")
    assert meta["counts"]["trained"] == len(trained) > 150 and len(untrained) > 10
    # the probes name exactly the genes gene-profiles trains on, or holds out
    profile_genes = {r["id"] for r in read_jsonl(tmp_path / "profiles" / "train.jsonl")}
    assert {r["gene"] for r in trained} <= profile_genes and not {r["gene"] for r in untrained} & profile_genes
    sets, (names, _) = go_process_gene_sets(SHARED_DATA / "go_bp"), read_go_terms(SHARED_DATA / "go_bp")
    by_name = {}
    for term, genes in sets.items():
        by_name.setdefault(names.get(term), []).append(genes)
    for row in trained + untrained:
        assert row["gene"] in sets[row["term"]] and 10 <= len(sets[row["term"]]) <= 500
        assert row["options"][row["answer_idx"]] == row["answer"] == names[row["term"]]
        for letter, name in row["options"].items():
            if letter != row["answer_idx"]:  # a distractor: a process the gene is not annotated to
                assert all(row["gene"] not in genes for genes in by_name[name])
    assert len(read_mcq(tmp_path / "probes" / "trained.jsonl")) == len(trained)  # bft eval mcq reads them


def small_go_folder(root, terms: dict[str, tuple[str, list[str]]], public="GO,Genes,Gene_Count,Term_Description\n"):
    """A data folder in the layout of ../shared/data: GO terms {id: (name, directly annotated genes)} (all
    biological processes, no term-term edges), a public evaluation set (GeneAgent's layout) and no summaries."""
    go = root / "go_bp"
    go.mkdir(parents=True)
    (go / "goID_2_name.tab").write_text("\t0\n" + "".join(f"{t}\t{name}\n" for t, (name, _) in terms.items()))
    (go / "goID_2_namespace.tab").write_text("\t0\n" + "".join(f"{t}\tbiological_process\n" for t in terms))
    (go / "collapsed_go.symbol").write_text("".join(f"{t}\t{g}\tgene\n" for t, (_, genes) in terms.items()
                                                    for g in genes))
    (root / "geneagent").mkdir()
    (root / "geneagent" / "GO_terms.csv").write_text(public)
    return root


def test_go_naming_excludes_a_set_whatever_the_case_of_its_symbols(tmp_path, caplog):
    data = small_go_folder(tmp_path / "data", {
        "GO:0000706": ("meiotic DNA double-strand break processing", ["BRIP1", "C14orf39", "SPO11"]),
        "GO:0000001": ("apoptotic process", ["TP53", "BAX", "BAK1"]),
        "GO:0000002": ("growth factor signalling", ["EGFR", "ERBB2", "GRB2"]),
        "GO:0000003": ("membrane trafficking", ["Sept4", "SEPT4", "RAB5A"]),  # two genes differing by case only
        "GO:0000004": ("cell cycle arrest", ["CDKN1A", "CDKN2A", "RB1"]),
    }, public="GO,Genes,Gene_Count,Term_Description\nGO:0000009,ZZZ1 ZZZ2,2,a withheld term\n")
    spreadsheet = tmp_path / "eval_sets.tsv"  # a user's evaluation sets, upper-cased by a spreadsheet
    spreadsheet.write_text("id\tgenes\tname\nmy-set-2\tBRIP1 C14ORF39 SPO11\tmeiotic DSB processing\n"
                           "go:0000001\tX1\tby its id, lower-cased\n"
                           "mine\tsept4 SEPT4 RAB5A\tcannot be told apart from GO:0000003\n"
                           "typo\tEGRF ERBB2 GRB2\tmatches nothing\n")
    meta = build_go_naming(data, tmp_path / "out", exclude=[str(spreadsheet)], valid_fraction=0.0)
    kept = {row["id"] for row in read_jsonl(tmp_path / "out" / "train.jsonl")}
    assert kept == {"GO:0000002", "GO:0000003", "GO:0000004"}
    assert meta["counts"]["excluded_by_id"] == 1 and meta["counts"]["excluded_by_gene_set"] == 1
    public, mine = meta["exclusions"]
    assert public["matched_nothing"] == 1  # GeneAgent's withheld terms are counted, but not warned about
    assert mine == {"file": str(spreadsheet), "sets": 4, "matched_by_id": 1, "matched_by_gene_set": 1,
                    "matched_nothing": 2, "symbols": {"matched": 7, "matched_by_case": 1, "unmatched": 3,
                                                      "case_collisions": 1}}
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("2 of 4 sets of" in w and "exclude nothing: mine, typo" in w for w in warnings)
    assert any("Sept4/sept4" in w or "SEPT4/Sept4/sept4" in w for w in warnings)
    assert not any("GO_terms.csv" in w for w in warnings)
    # the output keeps GO's own spelling of every symbol
    rows = read_jsonl(tmp_path / "out" / "train.jsonl")
    assert "Sept4" in next(r for r in rows if r["id"] == "GO:0000003")["messages"][0]["content"]


def test_gene_knowledge_finds_a_summary_gene_in_go_whatever_its_case(tmp_path):
    from bft.data.gene_knowledge import build_gene_knowledge

    data = small_go_folder(tmp_path / "data", {
        "GO:0000706": ("meiotic DNA double-strand break processing", ["BRIP1", "C14orf39", "SPO11"]),
        "GO:0000001": ("apoptotic process", ["TP53", "BAX", "BAK1"]),
        "GO:0000002": ("growth factor signalling", ["EGFR", "ERBB2", "GRB2"]),
        "GO:0000003": ("membrane trafficking", ["RAB5A", "RAB7A", "C14orf39"]),
        "GO:0000004": ("cell cycle arrest", ["CDKN1A", "CDKN2A", "RB1"]),
        "GO:0000005": ("DNA repair", ["XRCC1", "LIG3", "POLB"]),
    })
    (data / "geneagent" / "gene_narrative_synopsis.txt").write_text(
        "C14ORF39: A meiotic protein.\nTP53: A tumour suppressor.\nNOTINGO: An unannotated gene.\n")
    meta = build_gene_knowledge(data, tmp_path / "probes", min_term_genes=3, max_term_genes=3, valid_fraction=0.0)
    rows = {row["gene"]: row for row in read_jsonl(tmp_path / "probes" / "trained.jsonl")}
    assert set(rows) == {"C14ORF39", "TP53"} and meta["counts"]["genes_without_a_term_in_range"] == 1
    assert meta["symbols"] == {"matched": 2, "matched_by_case": 1, "unmatched": 1, "case_collisions": 0}
    probe = rows["C14ORF39"]  # asked with the summaries' spelling, answered with a term of GO's C14orf39
    assert "gene C14ORF39 involved" in probe["question"] and probe["term"] in ("GO:0000706", "GO:0000003")
    distractors = {name for letter, name in probe["options"].items() if letter != probe["answer_idx"]}
    assert not distractors & {"meiotic DNA double-strand break processing", "membrane trafficking"}


def test_gene_profiles_keeps_and_reports_symbols_that_differ_only_by_case(tmp_path, caplog):
    (tmp_path / "geneagent").mkdir()
    (tmp_path / "geneagent" / "gene_narrative_synopsis.txt").write_text(
        "SEPT4: A septin (human).\nSept4: A septin (mouse).\nTP53: A tumour suppressor.\n")
    meta = build_gene_profiles(tmp_path, tmp_path / "out", valid_fraction=0.0)
    assert meta["counts"] == {"train": 3, "valid": 0, "case_collisions": 1}
    assert {row["id"] for row in read_jsonl(tmp_path / "out" / "train.jsonl")} == {"SEPT4", "Sept4", "TP53"}
    assert "1 groups of symbols differ only by case (SEPT4/Sept4)" in caplog.text


@pytest.mark.parametrize("name, first, what", [
    ("go-naming", "go_bp/goID_2_name.tab", "GO term names"),
    ("gene-profiles", "geneagent/gene_narrative_synopsis.txt", "NCBI gene summaries"),
    ("pubmedqa", "pubmedqa/ori_pqal.json", "PubMedQA's expert-labelled set"),
    ("gene-knowledge", "go_bp/goID_2_name.tab", "GO term names"),
    ("gene-facts", "go_bp/goID_2_name.tab", "GO term names")])
def test_every_builder_names_its_missing_input_and_where_it_comes_from(name, first, what, tmp_path, capsys):
    """A data folder without a builder's input: one line, exit 2, naming the file, what it is, and --data-dir /
    $BFT_DATA_DIR; nothing written."""
    from bft.cli import main
    from bft.data.builders import BUILDERS

    knowledge = ["--knowledge", str(tmp_path / "knowledge")] if name == "gene-facts" else []
    argv = ["data", name, "--data-dir", str(tmp_path / "empty"), "--output", str(tmp_path / "out"), *knowledge]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert error == (f"bft data {name}: error: {tmp_path / 'empty' / first}: file not found: bft data {name} reads "
                     f"{first} ({what}) from the data folder, given by --data-dir (a recipe build's data_dir) or "
                     f"$BFT_DATA_DIR (here {tmp_path / 'empty'})")
    assert not (tmp_path / "out").exists() and name in BUILDERS


def test_go_files_missing_from_a_go_folder_are_named(tmp_path):
    go = small_go_folder(tmp_path / "data", {"GO:0000001": ("apoptotic process", ["TP53", "BAX", "BAK1"])}) / "go_bp"
    (go / "collapsed_go.symbol").unlink()
    with pytest.raises(DataError, match=r"collapsed_go.symbol: file not found \(GO graph and gene annotations, of "
                                        r"the GO folder .*go_bp\)$"):
        go_process_gene_sets(go)
    (go / "goID_2_namespace.tab").unlink()
    with pytest.raises(DataError, match=r"goID_2_namespace.tab: file not found \(GO term namespaces"):
        read_go_terms(go)


@pytest.mark.parametrize("change, message", [
    ({"LONG_ANSWER": None}, "item 2: missing 'LONG_ANSWER' (an item holds QUESTION, CONTEXTS, LONG_ANSWER, "
                            "final_decision)"),
    ({"QUESTION": None, "CONTEXTS": None}, "item 2: missing 'QUESTION', 'CONTEXTS'"),
    ({"final_decision": "perhaps"}, "item 2: final_decision must be yes/no/maybe"),
])
def test_pubmedqa_items_without_a_field_say_which(tmp_path, change, message):
    from bft.data.pubmedqa import read_pubmedqa

    item = {"QUESTION": "q?", "CONTEXTS": ["c"], "LONG_ANSWER": "l", "final_decision": "yes"}
    bad = {key: value for key, value in {**item, **change}.items() if value is not None}
    (tmp_path / "ori_pqal.json").write_text(json.dumps({"1": item, "2": bad}))
    (tmp_path / "test_ground_truth.json").write_text(json.dumps({"1": "yes"}))
    with pytest.raises(DataError) as error:
        read_pubmedqa(tmp_path, "train")
    assert str(error.value).startswith(f"{tmp_path / 'ori_pqal.json'}: {message}")
    (tmp_path / "test_ground_truth.json").write_text('{"1": "yes",')
    with pytest.raises(DataError, match=r"test_ground_truth.json:1: not valid JSON .*; expected \{pmid: decision\}"):
        read_pubmedqa(tmp_path, "test")


def test_a_process_without_a_name_is_left_out_with_a_warning(tmp_path, caplog):
    data = small_go_folder(tmp_path / "data", {
        "GO:0000001": ("apoptotic process", ["TP53", "BAX", "BAK1"]),
        "GO:0000002": ("growth factor signalling", ["EGFR", "ERBB2", "GRB2"])})
    names = data / "go_bp" / "goID_2_name.tab"
    names.write_text("".join(line for line in names.read_text().splitlines(keepends=True) if "0000002" not in line))
    meta = build_go_naming(data, tmp_path / "out", valid_fraction=0.0)
    assert [row["id"] for row in read_jsonl(tmp_path / "out" / "train.jsonl")] == ["GO:0000001"]
    assert meta["counts"]["train"] == 1
    assert any("1 biological-process terms of" in r.getMessage() and "GO:0000002" in r.getMessage()
               for r in caplog.records if r.levelname == "WARNING")
