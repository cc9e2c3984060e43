"""Reading users' files: a byte-order mark at the start of a text file is no part of what the file holds."""

import json

import numpy as np

from bft.bio.embed import load_embeddings, read_gene_texts
from bft.bio.ggi import read_pairs
from bft.bio.profiles import read_done, read_gene_list
from bft.data.gene_sets import read_gene_sets, read_go_terms
from bft.data.pubmedqa import read_pubmedqa
from bft.data.records import read_records

BOM = "\ufeff"


def with_bom(path, text):
    path.write_bytes((BOM + text).encode("utf-8"))  # as Excel and Notepad save UTF-8
    return path


def test_a_byte_order_mark_is_no_part_of_a_files_first_symbol_header_or_record(tmp_path):
    row = {"id": "TP53", "text": "tumour suppressor"}
    tables = {"rows.jsonl": json.dumps(row) + "\n", "rows.json": json.dumps([row]),
              "rows.csv": "id,text\nTP53,tumour suppressor\n", "rows.tsv": "id\ttext\nTP53\ttumour suppressor\n"}
    for name, text in tables.items():
        assert read_records(with_bom(tmp_path / name, text)) == [(2 if name.endswith("sv") else 1, row)], name
    assert read_gene_list(with_bom(tmp_path / "genes.txt", "TP53\nEGFR\n")) == ["TP53", "EGFR"]
    assert read_gene_list(with_bom(tmp_path / "genes.csv", "gene\nTP53\n")) == ["TP53"]
    assert list(read_gene_texts(with_bom(tmp_path / "synopsis.txt", "TP53: A tumour suppressor.\n"))) == ["TP53"]
    assert list(read_gene_texts(with_bom(tmp_path / "profiles.jsonl", json.dumps(row) + "\n"))) == ["TP53"]
    assert read_done(tmp_path / "profiles.jsonl") == {"TP53": row}  # a profiles file to carry on
    for header in ("", "1 2\n"):
        vectors = load_embeddings(with_bom(tmp_path / "gene2vec.txt", header + "TP53 1 0\n"))
        assert list(vectors) == ["TP53"] and np.array_equal(vectors["TP53"], [1, 0])
    for sets in ("id\tgenes\tname\nGO:1\tTP53 BAX\tapoptosis\n", "GO,Genes,Gene_Count,Term_Description\n"
                                                                   "GO:1,TP53 BAX,2,apoptosis\n"):
        assert [gs.id for gs in read_gene_sets(with_bom(tmp_path / "sets.csv", sets.replace("\t", ",")))] == ["GO:1"]
    (tmp_path / "pairs").mkdir()
    with_bom(tmp_path / "pairs" / "train_text.txt", "TP53 EGFR\n")
    with_bom(tmp_path / "pairs" / "train_label.txt", "1\n")
    assert read_pairs(tmp_path / "pairs", "train") == [("TP53", "EGFR", 1)]
    go = tmp_path / "go_bp"
    go.mkdir()
    with_bom(go / "goID_2_name.tab", "GO:1\tapoptosis\n")
    with_bom(go / "goID_2_namespace.tab", "GO:1\tbiological_process\n")
    assert read_go_terms(go) == ({"GO:1": "apoptosis"}, {"GO:1"})
    (tmp_path / "pubmedqa").mkdir()
    item = {"QUESTION": "q", "CONTEXTS": ["c"], "LONG_ANSWER": "a", "final_decision": "yes"}
    with_bom(tmp_path / "pubmedqa" / "ori_pqal.json", json.dumps({"1": item}))
    with_bom(tmp_path / "pubmedqa" / "test_ground_truth.json", json.dumps({"1": "yes"}))
    assert [row["id"] for row in read_pubmedqa(tmp_path / "pubmedqa", "test")] == ["1"]
