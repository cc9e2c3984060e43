"""`bft downstream ggi`: gene-gene interaction from gene embeddings (Gene2vec pairs), by logistic regression.

Pairs are kept where both genes have an embedding, symbols matched whatever their case (`bft.data.symbols`);
`results.json`'s `symbols` counts the embedding file's genes that match a pair gene (`matched`, `matched_by_case`)
or none (`unmatched`, also named in a warning). A pair's features do not depend on its order: the elementwise
product and absolute difference of the two vectors. The regularisation strength is chosen on `valid` (AUROC) and
the model is scored on `test`. A classifier can score well by recognising genes it saw in training pairs alone,
so two controls are reported: a gene-frequency baseline (each gene's positive rate in training pairs, no
embedding at all) and the scores on the gene-disjoint part of the test set (pairs whose genes never occur in a
training pair; in Gene2vec's own split train, valid and test genes are already disjoint, so it is all of it).
"""

from pathlib import Path

import numpy as np

from bft.bio.embed import load_embeddings
from bft.data.records import DataError, read_text
from bft.data.symbols import match_symbols
from bft.errors import InputError
from bft.files import write_json_atomic

C_GRID = (0.01, 0.1, 1.0, 10.0)


def read_pairs(pairs_dir, split: str) -> list[tuple[str, str, int]]:
    """(gene a, gene b, label) from `{split}_text.txt` and the aligned `{split}_label.txt`. Raises DataError, naming
    the file, for a missing or malformed file, labels that do not align, or no pairs at all."""
    pairs_dir = Path(pairs_dir)
    text_path, label_path = pairs_dir / f"{split}_text.txt", pairs_dir / f"{split}_label.txt"
    for path in (text_path, label_path):
        if not path.is_file():
            raise DataError(path, None, "file not found")
    texts = read_text(text_path).split("\n")
    labels = read_text(label_path).split("\n")
    texts, labels = texts[: len(texts) - (texts[-1] == "")], labels[: len(labels) - (labels[-1] == "")]
    if len(texts) != len(labels):
        raise DataError(label_path, None, f"{len(labels)} labels for {len(texts)} pairs in {text_path.name}")
    if not texts:
        raise DataError(text_path, None, "no pairs: expected 'GENE1 GENE2' lines")
    pairs = []
    for number, (text, label) in enumerate(zip(texts, labels), start=1):
        genes = text.split()
        if len(genes) != 2:
            raise DataError(text_path, number, "expected 'GENE1 GENE2'")
        if label.strip() not in ("0", "1"):
            raise DataError(label_path, number, "expected 0 or 1")
        pairs.append((genes[0], genes[1], int(label)))
    return pairs


def pair_features(embeddings: dict, pairs) -> np.ndarray:
    a = np.stack([embeddings[p[0]] for p in pairs])
    b = np.stack([embeddings[p[1]] for p in pairs])
    return np.hstack([a * b, np.abs(a - b)])


def _scores(y, scores, resamples=500) -> dict:
    from sklearn.metrics import average_precision_score, roc_auc_score

    y, scores = np.asarray(y), np.asarray(scores)
    rng = np.random.default_rng(0)
    aurocs, auprcs = [], []
    for _ in range(resamples):
        idx = rng.integers(0, len(y), len(y))
        if 0 < y[idx].sum() < len(idx):
            aurocs.append(roc_auc_score(y[idx], scores[idx]))
            auprcs.append(average_precision_score(y[idx], scores[idx]))
    result = {"auroc": float(roc_auc_score(y, scores)), "auprc": float(average_precision_score(y, scores))}
    for name, values in (("auroc", aurocs), ("auprc", auprcs)):
        result[f"{name}_ci_low"], result[f"{name}_ci_high"] = (float(v) for v in np.percentile(values, [2.5, 97.5]))
    return result


def fit(embeddings, train, valid):
    """Logistic regression on train pairs, the strength C chosen by AUROC on valid pairs."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    _require_both_labels("train", train)
    X_train, y_train = pair_features(embeddings, train), [p[2] for p in train]
    can_choose = len({p[2] for p in valid}) == 2
    best = None
    for C in C_GRID if can_choose else (1.0,):
        model = LogisticRegression(C=C, max_iter=2000).fit(X_train, y_train)
        score = roc_auc_score([p[2] for p in valid], model.predict_proba(pair_features(embeddings, valid))[:, 1]) \
            if can_choose else 0.0
        if best is None or score > best[0]:
            best = (score, model)
    return best[1]


def score(model, embeddings, pairs) -> dict:
    _require_both_labels("test", pairs)
    labels = [p[2] for p in pairs]
    return {"n_test": len(pairs), "positive_rate": float(np.mean(labels)),
            **_scores(labels, model.predict_proba(pair_features(embeddings, pairs))[:, 1])}


def _require_both_labels(name, pairs):
    labels = {p[2] for p in pairs}
    if labels != {0, 1}:
        raise InputError(f"the {name} pairs need both labels after filtering to genes with embeddings; got "
                         f"{sorted(labels)} from {len(pairs)} pairs")


def gene_frequency_baseline(train, test) -> float:
    """AUROC of scoring a test pair by its genes' positive rates in training pairs: memorisation, no embedding."""
    from sklearn.metrics import roc_auc_score

    positives, counts = {}, {}
    for a, b, label in train:
        for gene in (a, b):
            positives[gene] = positives.get(gene, 0) + label
            counts[gene] = counts.get(gene, 0) + 1
    prior = np.mean([p[2] for p in train])
    rate = lambda g: positives[g] / counts[g] if g in counts else prior  # noqa: E731
    return float(roc_auc_score([p[2] for p in test], [(rate(a) + rate(b)) / 2 for a, b, _ in test]))


def unseen_gene_pairs(train, test):
    """Test pairs whose two genes never occur in a training pair."""
    seen = {gene for a, b, _ in train for gene in (a, b)}
    return [p for p in test if p[0] not in seen and p[1] not in seen]


def evaluate_ggi(embeddings_path, pairs_dir, output=None, genes=None) -> dict:
    """The whole task; `genes` restricts the pairs further (to compare several embeddings on the same pairs)."""
    loaded = load_embeddings(embeddings_path)
    pairs = {split: read_pairs(pairs_dir, split) for split in ("train", "valid", "test")}
    # the embeddings' genes in the pairs' spelling, whatever the case of either (bft.data.symbols)
    symbols = match_symbols(loaded, {gene for split in pairs.values() for a, b, _ in split for gene in (a, b)})
    symbols.warn(f"genes of {embeddings_path}", f"genes of the pairs in {pairs_dir}",
                 unmatched_then="they are not used",
                 by_case_then="their vectors are used for the pair genes they match")
    embeddings = {symbols.matched[gene]: vector for gene, vector in loaded.items() if gene in symbols.matched}
    keep = set(embeddings) if genes is None else set(match_symbols(genes, embeddings).matched.values())
    splits = {split: [p for p in split_pairs if p[0] in keep and p[1] in keep] for split, split_pairs in pairs.items()}
    model = fit(embeddings, splits["train"], splits["valid"])
    results = {"embeddings": str(embeddings_path), "embedding_genes": len(loaded), "symbols": symbols.counts(),
               "genes": len(keep), "n_train": len(splits["train"]),
               "n_valid": len(splits["valid"]), "C": float(model.C), **score(model, embeddings, splits["test"]),
               "gene_frequency_baseline_auroc": gene_frequency_baseline(splits["train"], splits["test"])}
    try:
        results["gene_disjoint"] = score(model, embeddings, unseen_gene_pairs(splits["train"], splits["test"]))
    except ValueError as error:  # no unseen-gene pairs of both labels: say so rather than fail the task
        results["gene_disjoint"] = {"skipped": str(error)}
    if output is not None:
        write_json_atomic(Path(output) / "results.json", results)
    return results
