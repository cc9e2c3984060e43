"""Gene profiles, embeddings and downstream tasks, end to end on small inputs."""

import functools
import json
import logging

import numpy as np
import pytest

from bft.bio import ggi, profiles
from bft.bio.embed import embed_file, load_embeddings, save_embeddings
from bft.bio.ggi import evaluate_ggi, read_pairs, unseen_gene_pairs
from bft.bio.represent import represented_genes
from bft.cli import main
from bft.errors import InputError
from tests.conftest import SHARED_DATA, build_tiny_model, needs_shared_data

GENES = ["TP53", "BRCA1", "EGFR", "MYC", "CDK1"]


def read_rows(path):
    return [json.loads(line) for line in path.read_text().split("\n") if line]


def test_profile_resumes_after_an_interruption(tiny_model, tmp_path, monkeypatch):
    genes = tmp_path / "genes.txt"
    genes.write_text("\n".join(GENES) + "\n")
    out = tmp_path / "profiles.jsonl"
    calls = []
    real = profiles.generate

    def dies_on_second_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the run is killed while the second batch is generating
        return real(*args, **kwargs)

    monkeypatch.setattr(profiles, "generate", dies_on_second_batch)
    with pytest.raises(KeyboardInterrupt):
        main(["profile", "--model", tiny_model, "--genes", str(genes), "--output", str(out), "--batch-size", "2",
              "--max-new-tokens", "8"])
    assert [r["id"] for r in read_rows(out)] == GENES[:2]
    with open(out, "a") as handle:
        handle.write('{"id": "EGFR", "te')  # and a torn line, as a kill in mid-write leaves

    generated = []
    monkeypatch.setattr(profiles, "generate", lambda m, t, prompts, *a, **k: generated.extend(prompts) or
                        real(m, t, prompts, *a, **k))
    assert main(["profile", "--model", tiny_model, "--genes", str(genes), "--output", str(out), "--batch-size", "2",
                 "--max-new-tokens", "8"]) == 0
    rows = read_rows(out)
    assert [r["id"] for r in rows] == GENES and all(isinstance(r["text"], str) for r in rows)
    assert len(generated) == 3 and all(g in p for g, p in zip(GENES[2:], generated))  # only the missing genes


def test_profiles_of_another_model_or_setting_are_not_mixed_into_one_file(tiny_model, tmp_path, capsys):
    genes = tmp_path / "genes.txt"
    genes.write_text("\n".join(GENES) + "\n")
    out = tmp_path / "profiles.jsonl"
    common = ["profile", "--genes", str(genes), "--output", str(out), "--max-new-tokens", "4"]
    genes.write_text("\n".join(GENES[:2]) + "\n")
    assert main([*common, "--model", tiny_model]) == 0
    written = out.read_text()
    assert read_rows(out)[0]["written_by"]["max_new_tokens"] == 4
    genes.write_text("\n".join(GENES) + "\n")  # more genes, asked of another model or with another length
    for other in (["--model", str(build_tiny_model(tmp_path / "other", seed=1))],
                  ["--model", tiny_model, "--max-new-tokens", "8"]):
        assert main([*common, *other]) == 2
        error = capsys.readouterr().err
        assert f"{out}:1: written by another model or setting" in error
        assert ("'model'" in error) != ("'max_new_tokens'" in error)
        assert out.read_text() == written
    assert main([*common, "--model", tiny_model]) == 0  # the same model and settings carry on
    assert [r["id"] for r in read_rows(out)] == GENES


def test_gene_list_formats_and_errors(tmp_path):
    csv = tmp_path / "genes.csv"
    csv.write_text("gene,score\nTP53,1\nEGFR,2\nTP53,3\n")
    assert profiles.read_gene_list(csv) == ["TP53", "EGFR"]
    bad = tmp_path / "bad.txt"
    bad.write_text("TP53\nBRCA1 EGFR\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: expected one gene symbol a line"):
        profiles.read_gene_list(bad)


def test_embed_profiles_and_synopses(tmp_path):
    jsonl = tmp_path / "profiles.jsonl"
    jsonl.write_text('{"id": "TP53", "text": "tumour suppressor"}\n{"id": "MYC", "text": "transcription factor"}\n')
    synopsis = tmp_path / "syn.txt"
    synopsis.write_text("TP53: A tumour suppressor.\nMYC: A transcription factor.\n")
    for source in (jsonl, synopsis):
        result = embed_file(source, tmp_path / f"{source.stem}.npz")
        embeddings = load_embeddings(tmp_path / f"{source.stem}.npz")
        assert result["genes"] == 2 and list(embeddings) == ["TP53", "MYC"]
        assert all(v.dtype == np.float32 and v.shape == (384,) and abs(np.linalg.norm(v) - 1) < 1e-5
                   for v in embeddings.values())


def test_embed_counts_and_names_empty_texts(tmp_path, caplog):
    jsonl = tmp_path / "profiles.jsonl"
    jsonl.write_text("".join(json.dumps({"id": gene, "text": text}) + "\n" for gene, text in
                             (("TP53", "tumour suppressor"), ("MYC", ""), ("EGFR", " \n "))))
    with caplog.at_level(logging.WARNING, logger="bft.bio.embed"):
        result = embed_file(jsonl, tmp_path / "emb.npz")
    assert result["empty_texts"] == 2 and result["genes"] == 3  # embedded all the same, and counted
    assert f"2 of 3 texts of {jsonl} are empty or blank (MYC, EGFR)" in caplog.text


@pytest.mark.parametrize("name, content", [("empty.jsonl", ""), ("blank.jsonl", "\n\n"), ("empty.txt", "\n")])
def test_embed_refuses_input_of_no_genes_naming_the_file(tmp_path, monkeypatch, capsys, name, content):
    from bft.bio import embed

    monkeypatch.setattr(embed, "load_encoder", lambda name: pytest.fail("the encoder loaded"))
    (tmp_path / name).write_text(content)
    assert main(["embed", "--input", str(tmp_path / name), "--output", str(tmp_path / "x.npz")]) == 2
    error = capsys.readouterr().err
    assert f"error: {tmp_path / name}: no genes: expected" in error and len(error.strip().splitlines()) == 1
    assert [path.name for path in tmp_path.iterdir()] == [name]  # nothing written


def test_embed_writes_only_an_npz_file_it_names(tmp_path, monkeypatch):
    from bft.bio import embed

    synopsis = tmp_path / "syn.txt"
    synopsis.write_text("TP53: A tumour suppressor.\n")
    monkeypatch.setattr(embed, "load_encoder", lambda name: pytest.fail("the encoder loaded"))
    for output in (f"{tmp_path}/emb", f"{tmp_path}/emb.txt", f"{tmp_path}/dir.npz/"):
        with pytest.raises(InputError, match="expected the name of a file ending in .npz|names a folder"):
            embed_file(synopsis, output)
    assert [path.name for path in tmp_path.iterdir()] == ["syn.txt"]


@needs_shared_data("gene2vec_ggi")
def test_ggi_with_random_embeddings_and_a_truly_disjoint_split(tmp_path):
    pairs_dir = SHARED_DATA / "gene2vec_ggi"
    some_pairs = [p for split in ("train", "valid", "test") for p in read_pairs(pairs_dir, split)[:3000]]
    genes = sorted({g for a, b, _ in some_pairs for g in (a, b)})
    rng = np.random.default_rng(0)
    save_embeddings(tmp_path / "random.npz", np.array(genes), rng.normal(size=(len(genes), 16)).astype(np.float32))
    results = evaluate_ggi(tmp_path / "random.npz", pairs_dir, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "results.json").read_text())["n_test"] == results["n_test"] > 100
    assert 0 < results["positive_rate"] < 1 and results["auroc_ci_low"] <= results["auroc"] <= results["auroc_ci_high"]
    # random vectors carry no biology: on unseen genes they cannot beat chance
    disjoint = results["gene_disjoint"]
    assert abs(disjoint["auroc"] - 0.5) < 0.1

    keep = set(genes)
    train, test = ([p for p in read_pairs(pairs_dir, s) if p[0] in keep and p[1] in keep] for s in ("train", "test"))
    unseen = unseen_gene_pairs(train, test + [("A1", train[0][0], 1)])  # one planted pair with a training gene
    assert unseen == test and disjoint["n_test"] == len(test)  # Gene2vec's split is already gene-disjoint
    assert not {g for p in train for g in p[:2]} & {g for p in unseen for g in p[:2]}


def synthetic_adata(path, shuffle_embeddings=False, seed=0):
    import anndata

    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(80)]
    embedding = {g: rng.normal(size=8).astype(np.float32) for g in genes}
    W = rng.normal(size=(30, 8))
    conditions, rows = [], []
    for _ in range(40):
        conditions.append("ctrl")
        rows.append(rng.normal(0, 0.1, 30))
    for g in genes:
        shift = W @ embedding[g]
        for _ in range(5):
            conditions.append(f"{g}+ctrl")
            rows.append(shift + rng.normal(0, 0.1, 30))
    adata = anndata.AnnData(X=np.array(rows, dtype=np.float32))
    adata.obs["condition"] = conditions
    adata.write_h5ad(path)
    vectors = list(embedding.values())
    if shuffle_embeddings:
        vectors = [vectors[i] for i in rng.permutation(len(vectors))]
    return np.array(genes), np.stack(vectors)


@pytest.mark.parametrize("shuffled", [False, True])
def test_perturbation_recovers_a_planted_signal_and_fails_on_shuffled(tmp_path, shuffled):
    ids, X = synthetic_adata(tmp_path / "cells.h5ad", shuffle_embeddings=shuffled)
    save_embeddings(tmp_path / "emb.npz", ids, X)
    assert main(["downstream", "perturb", "--embeddings", str(tmp_path / "emb.npz"), "--adata",
                 str(tmp_path / "cells.h5ad"), "--output", str(tmp_path / "out")]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["n_test"] >= 10 and results["n_train"] + results["n_test"] == 80
    if shuffled:
        assert abs(results["pearson_all_mean"]) < 0.25
    else:
        assert results["pearson_all_mean"] > 0.9 and results["pearson_top_de_mean"] > 0.9
        assert results["pearson_all_mean"] > results["baseline_pearson_all_mean"] + 0.5


def test_profile_quality_counts_looping_and_repeated_profiles():
    looping = "The gene encodes a member of the family of the family of the family of the family of proteins."
    fine = "This gene encodes a kinase that phosphorylates the family of receptors in the family of T cells."
    quality = profiles.profile_quality([looping, looping, fine, fine + " It is expressed in liver."])
    assert quality == {"looping_share": 0.5, "distinct_share": 0.75}
    assert profiles.profile_quality([]) == {"looping_share": 0.0, "distinct_share": 0.0}


@needs_shared_data("gene2vec_ggi")
def test_gene_subset_is_fixed_sized_by_split_and_dense_in_pairs():
    genes = represented_genes(SHARED_DATA, 300)
    assert len(genes) == 300 and genes == represented_genes(SHARED_DATA, 300)
    chosen = set(genes)
    for split, share in (("train", 0.6), ("valid", 0.1), ("test", 0.3)):
        pairs = [(a, b) for a, b, _ in read_pairs(SHARED_DATA / "gene2vec_ggi", split) if a in chosen and b in chosen]
        in_pairs = {gene for pair in pairs for gene in pair}
        assert len(in_pairs) == round(300 * share)  # every chosen gene of the split sits in a chosen pair
        assert len(pairs) >= len(in_pairs) / 2
    all_genes = represented_genes(SHARED_DATA)
    assert chosen < set(all_genes) and len(all_genes) > 3000


def represent_data(data_dir, negative_test_pair=4, test_negatives=True):
    """A data folder for `bft represent`: Gene2vec-layout pairs with labels 0 and 1 in train and valid, ten disjoint
    test pairs all labelled 1 but `negative_test_pair` (none where not `test_negatives`), and a summary per gene."""
    genes = [f"G{i}" for i in range(60)]
    data_dir.mkdir()
    synthetic_pairs(data_dir / "gene2vec_ggi", genes[:40])
    test = [(genes[i], genes[i + 1]) for i in range(40, 60, 2)]
    labels = [int(not test_negatives or i != negative_test_pair) for i in range(len(test))]
    (data_dir / "gene2vec_ggi" / "test_text.txt").write_text("".join(f"{a} {b}\n" for a, b in test))
    (data_dir / "gene2vec_ggi" / "test_label.txt").write_text("".join(f"{label}\n" for label in labels))
    (data_dir / "geneagent").mkdir()
    (data_dir / "geneagent" / "gene_narrative_synopsis.txt").write_text("".join(f"{g}: Gene {g}.\n" for g in genes))


def test_represent_refuses_too_few_genes_for_both_labels_before_the_model_loads(tmp_path, monkeypatch, capsys):
    from bft.bio import represent

    represent_data(tmp_path / "data")
    monkeypatch.setattr(represent, "load_for_eval", lambda *args: pytest.fail("the model loaded"))
    monkeypatch.setattr(represent, "load_encoder", lambda *args: pytest.fail("the encoder loaded"))
    out = tmp_path / "represent"
    command = ["represent", "--model", "runs/demo", "--output", str(out), "--data-dir", str(tmp_path / "data")]
    assert main([*command, "--limit-genes", "12"]) == 2
    error = capsys.readouterr().err
    assert ("--limit-genes 12 draws too few pairs for GGI, which needs labels 0 and 1 among the train and the test "
            "pairs (it draws 2 test pairs, all labelled 1); the smallest larger --limit-genes that has both is "
            in error)
    assert len(error.strip().splitlines()) == 1 and not out.exists()
    smallest = int(error.split()[-1])  # it has both labels, and no value between does
    for limit in range(13, smallest):
        with pytest.raises(InputError, match=f"--limit-genes {limit} draws too few pairs"):
            represented_genes(tmp_path / "data", limit)
    chosen = set(represented_genes(tmp_path / "data", smallest))
    for split in ("train", "test"):
        pairs = read_pairs(tmp_path / "data" / "gene2vec_ggi", split)
        assert {label for a, b, label in pairs if a in chosen and b in chosen} == {0, 1}

    # pairs of one label whatever the number of genes: said for the data, with or without --limit-genes
    represent_data(tmp_path / "one-label", test_negatives=False)
    for limit in ([], ["--limit-genes", "12"]):
        assert main([*command[:-1], str(tmp_path / "one-label"), *limit]) == 2
        assert ("whose genes have an NCBI summary lack a label GGI needs (0 and 1 among the train and the test "
                "pairs): there are 10 test pairs, all labelled 1") in capsys.readouterr().err


def test_represent_refuses_another_models_profiles_and_an_unknown_encoder_before_the_model_loads(tmp_path,
                                                                                                 monkeypatch, capsys):
    from bft.bio import represent

    represent_data(tmp_path / "data")
    monkeypatch.setattr(represent, "load_for_eval", lambda *args: pytest.fail("the model loaded"))
    out = tmp_path / "represent"
    out.mkdir()
    (out / "profiles.jsonl").write_text(json.dumps({"id": "G0", "text": "a gene", "written_by": {"model": "other"}})
                                        + "\n")
    command = ["represent", "--model", "runs/demo", "--output", str(out), "--data-dir", str(tmp_path / "data")]
    assert main(command) == 2
    assert f"{out / 'profiles.jsonl'}:1: written by another model or setting" in capsys.readouterr().err
    (out / "profiles.jsonl").unlink()
    assert main([*command, "--encoder", str(tmp_path / "no-such-encoder")]) == 2
    assert "no-such-encoder" in capsys.readouterr().err


@needs_shared_data("gene2vec_ggi")
def test_represent_end_to_end(tiny_model, tmp_path, monkeypatch):
    out = tmp_path / "represent"
    assert main(["represent", "--model", tiny_model, "--output", str(out), "--data-dir", str(SHARED_DATA),
                 "--limit-genes", "700", "--max-new-tokens", "6", "--batch-size", "32"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["genes"] == 700 and set(summary["ggi"]) == {"model profile", "NCBI summary", "gene symbol"}
    n_tests = {row["n_test"] for row in summary["ggi"].values()}
    assert len(n_tests) == 1 and n_tests.pop() > 20  # exactly the same pairs for the three texts
    assert "| NCBI summary |" in (out / "summary.md").read_text()
    assert 0 <= summary["profile_quality"]["looping_share"] <= 1
    # what was cut is counted: profiles stopped at --max-new-tokens, texts past the encoder's 256 word pieces
    cut = sum(row["cut"] for row in read_rows(out / "profiles.jsonl"))
    assert summary["profile_quality"]["cut_at_max_new_tokens"] == cut == summary["profiling"]["cut_at_max_new_tokens"]
    assert summary["cut_by_encoder"]["gene symbol"] == 0 and summary["encoder_max_seq_length"] == 256
    assert f"{cut} stopped at --max-new-tokens" in (out / "summary.md").read_text()
    # --overwrite replaces the results and the profiles: none is reused from the earlier model or setting. Checked on
    # 150 of the 700 genes (subsets are drawn in one fixed order) and fewer bootstrap resamples: the profiles count
    profiled = {row["id"] for row in read_rows(out / "profiles.jsonl")}
    monkeypatch.setattr(ggi, "_scores", functools.partial(ggi._scores, resamples=20))
    assert main(["represent", "--model", tiny_model, "--output", str(out), "--data-dir", str(SHARED_DATA),
                 "--limit-genes", "150", "--max-new-tokens", "4", "--batch-size", "32", "--overwrite"]) == 0
    profiling = json.loads((out / "summary.json").read_text())["profiling"]
    assert profiling["already_done"] == 0 and profiling["written"] == 150
    assert {row["id"] for row in read_rows(out / "profiles.jsonl")} < profiled


@needs_shared_data("gene2vec_ggi")
def test_represent_counts_and_names_empty_profiles(tiny_model, tmp_path, monkeypatch, caplog):
    out = tmp_path / "represent"
    genes = represented_genes(SHARED_DATA, 150)
    written_by = profiles.writer(tiny_model, "describe", 4, 1.0)
    texts = ["", " ", "", *(f"{gene} encodes a protein." for gene in genes[3:])]  # three profiles say nothing
    out.mkdir()
    (out / "profiles.jsonl").write_text("".join(json.dumps({"id": gene, "text": text, "cut": False,
                                                            "written_by": written_by}) + "\n"
                                                for gene, text in zip(genes, texts)))
    monkeypatch.setattr(ggi, "_scores", functools.partial(ggi._scores, resamples=20))
    with caplog.at_level(logging.WARNING, logger="bft.bio.embed"):
        assert main(["represent", "--model", tiny_model, "--output", str(out), "--data-dir", str(SHARED_DATA),
                     "--limit-genes", "150", "--max-new-tokens", "4"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["profiling"]["written"] == 0 and summary["profile_quality"]["empty"] == 3
    assert f"3 of 150 texts of {out / 'profiles.jsonl'} are empty or blank ({', '.join(genes[:3])})" in caplog.text
    assert "3 empty (all embedded as one vector)" in (out / "summary.md").read_text()


def test_external_embeddings_load_like_bft_embed(tmp_path):
    import pickle

    from bft.data.records import DataError

    vectors = {"TP53": np.array([1.0, 0.0, 2.0]), "EGFR": np.array([0.5, 0.5, 0.5])}
    with_header = tmp_path / "gene2vec.txt"
    with_header.write_text("2 3\nTP53 1 0 2\nEGFR 0.5 0.5 0.5\n")
    without_header = tmp_path / "plain.txt"
    without_header.write_text("TP53 1 0 2\nEGFR 0.5 0.5 0.5\n")
    pickled = tmp_path / "genept.pkl"
    pickled.write_bytes(pickle.dumps({k: list(v) for k, v in vectors.items()}))
    for path in (with_header, without_header, pickled):
        loaded = load_embeddings(path)
        assert sorted(loaded) == ["EGFR", "TP53"]
        np.testing.assert_allclose(loaded["TP53"], vectors["TP53"])
    ragged = tmp_path / "ragged.txt"
    ragged.write_text("TP53 1 0 2\nEGFR 0.5 0.5\n")
    with pytest.raises(DataError, match="ragged.txt:2: expected 3 numbers"):
        load_embeddings(ragged)


def test_embedding_files_that_hold_something_else_are_refused_naming_the_file(tmp_path):
    import pickle

    from bft.data.records import DataError

    bad = {"text.pkl": b"garbage\n", "list.pkl": pickle.dumps([1.0, 2.0]),
           "words.pkl": pickle.dumps({"TP53": ["a", "b"]}), "array.npz": None, "objects.npz": None, "flat.npz": None,
           "numbered.npz": None}
    np.save(tmp_path / "array.npy", np.zeros((2, 3)))  # an .npy file under an .npz name
    (tmp_path / "array.npy").rename(tmp_path / "array.npz")
    np.savez(tmp_path / "objects.npz", ids=np.array(["TP53", 1], dtype=object), X=np.zeros((2, 3)))
    np.savez(tmp_path / "flat.npz", ids=np.array(["TP53", "EGFR"]), X=np.zeros(2))
    np.savez(tmp_path / "numbered.npz", ids=np.arange(2), X=np.zeros((2, 3)))
    for name, content in bad.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
        with pytest.raises(DataError, match=f"{name}: .*expected"):
            load_embeddings(tmp_path / name)


def test_inputs_of_nothing_are_refused_naming_the_file(tmp_path):
    import pickle

    import anndata

    from bft.bio.perturb import evaluate_perturbation
    from bft.data.records import DataError

    np.savez(tmp_path / "none.npz", ids=np.array([], dtype=str), X=np.zeros((0, 3)))
    np.savez(tmp_path / "narrow.npz", ids=np.array(["TP53", "EGFR"]), X=np.zeros((2, 0)))
    (tmp_path / "narrow.pkl").write_bytes(pickle.dumps({"TP53": [], "EGFR": []}))
    for name in ("none.npz", "narrow.npz", "narrow.pkl"):
        with pytest.raises(DataError, match=f"{name}: (no vectors|vectors of no numbers): expected"):
            load_embeddings(tmp_path / name)
    (tmp_path / "narrow.txt").write_text("2 0\nTP53\nEGFR\n")
    with pytest.raises(DataError, match="narrow.txt:2: expected 'SYMBOL v1 v2 ... vd', got a symbol and no numbers"):
        load_embeddings(tmp_path / "narrow.txt")

    genes = [f"G{i}" for i in range(40)]
    synthetic_pairs(tmp_path / "pairs", genes)
    save_embeddings(tmp_path / "emb.npz", np.array(genes), np.eye(40, dtype=np.float32))
    (tmp_path / "pairs" / "valid_text.txt").write_text("")
    (tmp_path / "pairs" / "valid_label.txt").write_text("")
    with pytest.raises(DataError, match="valid_text.txt: no pairs: expected 'GENE1 GENE2' lines"):
        evaluate_ggi(tmp_path / "emb.npz", tmp_path / "pairs")

    save_embeddings(tmp_path / "emb.npz", np.array(["A", "B"]), np.eye(2, dtype=np.float32))
    for name, X, conditions, message in (
            ("controls.h5ad", np.ones((3, 4)), ["ctrl"] * 3, "no perturbed cells: expected some obs"),
            ("no-genes.h5ad", np.ones((3, 0)), ["ctrl", "A", "B"], "no genes measured: expected expression values")):
        cells = anndata.AnnData(X=X.astype(np.float32))
        cells.obs["condition"] = conditions
        cells.write_h5ad(tmp_path / name)
        with pytest.raises(DataError, match=f"{name}: {message}"):
            evaluate_perturbation(tmp_path / "emb.npz", tmp_path / name)


def test_embedding_files_that_give_a_symbol_twice_are_refused(tmp_path):
    import pickle

    from bft.data.records import DataError

    (tmp_path / "twice.txt").write_text("2 2\nTP53 1 0\nEGFR 0 1\nTP53 1 1\n")
    with pytest.raises(DataError, match=r"twice.txt:4: id 'TP53' again \(first on line 2\)"):
        load_embeddings(tmp_path / "twice.txt")
    save_embeddings(tmp_path / "twice.npz", np.array(["TP53", "EGFR", "TP53"]), np.eye(3))
    with pytest.raises(DataError, match=r"twice.npz: id 'TP53' again at ids\[2\] \(first at ids\[0\]\)"):
        load_embeddings(tmp_path / "twice.npz")
    (tmp_path / "twice.pkl").write_bytes(pickle.dumps({1: [1.0, 0.0], "1": [0.0, 1.0]}))  # both read as symbol "1"
    with pytest.raises(DataError, match=r"twice.pkl: keys 1 and '1' are both symbol '1'"):
        load_embeddings(tmp_path / "twice.pkl")


def test_embeddings_and_expression_holding_nan_or_infinity_are_refused(tmp_path):
    import pickle

    import anndata
    import scipy.sparse

    from bft.bio.perturb import evaluate_perturbation
    from bft.data.records import DataError

    (tmp_path / "nan.txt").write_text("TP53 1 0\nEGFR nan 1\nMYC inf 0\n")
    save_embeddings(tmp_path / "nan.npz", np.array(["TP53", "EGFR", "MYC"]), np.array([[1, 0], [np.nan, 1], [0, 1]]))
    (tmp_path / "nan.pkl").write_bytes(pickle.dumps({"TP53": [1.0, 0.0], "EGFR": [-np.inf, 1.0]}))
    for name, count in (("nan.txt", "2 of 3"), ("nan.npz", "1 of 3"), ("nan.pkl", "1 of 2")):
        with pytest.raises(DataError, match=f"{name}: {count} vectors hold NaN or infinity .the first: 'EGFR'"):
            load_embeddings(tmp_path / name)
    ids, X = synthetic_adata(tmp_path / "cells.h5ad")
    save_embeddings(tmp_path / "emb.npz", ids, X)
    cells = anndata.read_h5ad(tmp_path / "cells.h5ad")
    cells.X[3, 0], cells.X[50, 7] = np.nan, np.inf
    for layout in (np.asarray, scipy.sparse.csr_matrix):
        anndata.AnnData(X=layout(cells.X), obs=cells.obs).write_h5ad(tmp_path / "bad.h5ad")
        with pytest.raises(DataError, match=f"bad.h5ad: 2 of {len(cells)} cells hold NaN or infinity in X .the first: "
                                            f"'{cells.obs_names[3]}'"):
            evaluate_perturbation(tmp_path / "emb.npz", tmp_path / "bad.h5ad")


def synthetic_pairs(pairs_dir, genes, seed=0):
    """Gene2vec-layout pairs among `genes`, gene-disjoint splits, labels from a planted rule (both in every split)."""
    rng = np.random.default_rng(seed)
    pairs_dir.mkdir()
    for split, chunk in zip(("train", "valid", "test"), np.array_split(np.array(genes), [24, 32])):
        rows = [(a, b) for i, a in enumerate(chunk) for b in chunk[i + 1:]]
        labels = [int((int(a[1:]) + int(b[1:])) % 2 == 0) for a, b in rows]
        order = rng.permutation(len(rows))
        (pairs_dir / f"{split}_text.txt").write_text("".join(f"{rows[i][0]} {rows[i][1]}\n" for i in order))
        (pairs_dir / f"{split}_label.txt").write_text("".join(f"{labels[i]}\n" for i in order))


def test_ggi_finds_embedding_genes_whatever_the_case_of_their_symbols(tmp_path, caplog, monkeypatch):
    from sklearn.metrics import roc_auc_score

    monkeypatch.setattr(ggi, "_scores", lambda y, scores: {"auroc": roc_auc_score(y, scores)})  # no bootstrap
    genes = [f"G{i}" for i in range(40)]
    synthetic_pairs(tmp_path / "pairs", genes)
    X = np.random.default_rng(1).normal(size=(40, 8)).astype(np.float32)
    save_embeddings(tmp_path / "upper.npz", np.array(genes), X)
    upper = evaluate_ggi(tmp_path / "upper.npz", tmp_path / "pairs")
    # the same vectors under lower-cased symbols (as some tools write them), with one gene of no pair
    save_embeddings(tmp_path / "lower.npz", np.array([g.lower() for g in genes] + ["notapairgene"]),
                    np.vstack([X, X[:1]]))
    with caplog.at_level(logging.INFO, logger="bft.data.symbols"):
        lower = evaluate_ggi(tmp_path / "lower.npz", tmp_path / "pairs")
    assert lower["auroc"] == upper["auroc"] and lower["n_test"] == upper["n_test"] > 20
    assert lower["symbols"] == {"matched": 40, "matched_by_case": 40, "unmatched": 1, "case_collisions": 0}
    lower_npz, pairs_dir = tmp_path / "lower.npz", tmp_path / "pairs"
    assert (f"1 of 41 genes of {lower_npz} are not among the genes of the pairs in {pairs_dir} (they are not used): "
            "notapairgene") in caplog.messages
    assert (f"40 genes of {lower_npz} match one of the genes of the pairs in {pairs_dir} only when case is ignored "
            "(their vectors are used for the pair genes they match): g0 as G0, g1 as G1, g2 as G2, g3 as G3, g4 as G4 "
            "and 35 more") in caplog.messages
    # a file holding two spellings of one symbol: each is taken as written, never merged
    save_embeddings(tmp_path / "both.npz", np.array(genes + ["g0"]), np.vstack([X, -X[:1]]))
    both = evaluate_ggi(tmp_path / "both.npz", tmp_path / "pairs")
    assert both["symbols"]["case_collisions"] == 1 and both["auroc"] == upper["auroc"]


def test_perturbations_find_their_genes_whatever_the_case(tmp_path, caplog):
    ids, X = synthetic_adata(tmp_path / "cells.h5ad")
    save_embeddings(tmp_path / "upper.npz", ids, X)
    save_embeddings(tmp_path / "lower.npz", np.array([g.lower() for g in ids[:-1]]), X[:-1])  # and one gene missing
    from bft.bio.perturb import evaluate_perturbation

    upper = evaluate_perturbation(tmp_path / "upper.npz", tmp_path / "cells.h5ad")
    with caplog.at_level(logging.INFO, logger="bft.data.symbols"):
        lower = evaluate_perturbation(tmp_path / "lower.npz", tmp_path / "cells.h5ad")
    assert upper["n_with_embeddings"] == 80 and lower["n_with_embeddings"] == 79
    assert upper["pearson_all_mean"] > 0.9 and lower["pearson_all_mean"] > 0.9
    assert lower["symbols"]["matched_by_case"] == 79 and upper["symbols"]["matched_by_case"] == 0
    # each log line says what becomes of its genes: those found by case are used, the one not found is left out
    cells, lower_npz = tmp_path / "cells.h5ad", tmp_path / "lower.npz"
    assert (f"79 perturbed genes of {cells} match one of the genes of {lower_npz} only when case is ignored (the "
            "vectors of the genes they match are used for them): G0 as g0, G1 as g1, G10 as g10, G11 as g11, "
            "G12 as g12 and 74 more") in caplog.messages
    assert (f"1 of 80 perturbed genes of {cells} are not among the genes of {lower_npz} (their perturbations are "
            "left out): G79") in caplog.messages


def test_a_profiled_gene_is_not_profiled_again_under_another_case(tiny_model, tmp_path, caplog):
    out = tmp_path / "profiles.jsonl"
    genes = tmp_path / "genes.txt"
    genes.write_text("TP53\nC14orf39\n")
    assert main(["profile", "--model", tiny_model, "--genes", str(genes), "--output", str(out),
                 "--max-new-tokens", "3"]) == 0
    genes.write_text("TP53\nC14ORF39\nEGFR\nSept4\nSEPT4\n")  # upper-cased by a spreadsheet, and two more genes
    assert main(["profile", "--model", tiny_model, "--genes", str(genes), "--output", str(out),
                 "--max-new-tokens", "3"]) == 0
    assert [row["id"] for row in read_rows(out)] == ["TP53", "C14orf39", "EGFR", "Sept4", "SEPT4"]
    assert "differ only by case (SEPT4/Sept4); each is profiled as a gene of its own" in caplog.text


def test_profiles_of_a_run_folder_carry_on_after_it_is_moved(tiny_model, tmp_path):
    import shutil

    run = shutil.copytree(tiny_model, tmp_path / "machine-a" / "runs" / "bft-seed0")
    (run / "metrics.json").write_text('{"train_loss": 1.0}')  # a finished bft train run
    written_by = profiles.writer(str(run), "describe", 160, 1.0)
    assert written_by["model"] == "bft-seed0" and written_by["run"] == profiles.run_fingerprint(run)
    moved = shutil.move(str(tmp_path / "machine-a"), tmp_path / "machine-b")
    assert profiles.writer(f"{moved}/runs/bft-seed0", "describe", 160, 1.0) == written_by
    (tmp_path / "machine-b" / "runs" / "bft-seed0" / "metrics.json").write_text('{"train_loss": 0.5}')  # retrained
    assert profiles.writer(f"{moved}/runs/bft-seed0", "describe", 160, 1.0)["run"] != written_by["run"]
