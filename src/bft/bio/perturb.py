"""`bft downstream perturb`: predict a perturbation's mean expression shift from the perturbed gene's embedding.

Single-cell data in scanpy/GEARS conventions: `obs["condition"]` names the perturbation (`GENE`, `GENE+ctrl`, or
`A+B` for a combination) and `ctrl` marks control cells. Each perturbation's target is its cells' mean expression
minus the control cells' mean; its feature is the sum of its genes' embeddings. Perturbations (not cells) are split
into train and test, GEARS-style, so every test perturbation is unseen. Ridge regression (strength chosen by
cross-validation on train) predicts the test shifts; the score is the Pearson correlation of predicted and true
shifts, over all genes and over the 20 genes most changed by that perturbation, next to the mean training shift
as a baseline. Perturbed genes are found among the embeddings whatever the case of their symbols
(`bft.data.symbols`); `results.json`'s `symbols` counts those found (`matched`, `matched_by_case`) and not
(`unmatched`, also named in a warning).
"""

from pathlib import Path

import numpy as np

from bft.bio.embed import load_embeddings
from bft.data.records import DataError
from bft.data.splits import stable_fraction
from bft.data.symbols import match_symbols
from bft.errors import InputError
from bft.files import write_json_atomic, write_jsonl_atomic
from bft.stats import summarise

ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)


def perturbation_genes(condition: str) -> list[str]:
    return [part for part in condition.split("+") if part and part != "ctrl"]


def mean_shifts(adata, path) -> dict[str, np.ndarray]:
    """{perturbation: mean expression of its cells minus the control mean}. Raises DataError, naming `path` (the
    AnnData's file), for an AnnData without obs['condition'], measured genes, control or perturbed cells, or with NaN
    or infinite expression."""
    if "condition" not in adata.obs:
        raise DataError(path, None, "expected obs['condition'] naming each cell's perturbation ('ctrl' = control)")
    if not adata.n_vars:
        raise DataError(path, None, "no genes measured: expected expression values, a column of X per gene")
    _require_finite_expression(adata, path)
    conditions = adata.obs["condition"].astype(str).to_numpy()
    X = adata.X
    dense = lambda rows: np.asarray(X[rows].mean(axis=0)).ravel()  # noqa: E731 (works for sparse and dense)
    control = conditions == "ctrl"
    if not control.any():
        raise DataError(path, None, "no control cells: expected some obs['condition'] == 'ctrl'")
    if control.all():
        raise DataError(path, None, "no perturbed cells: expected some obs['condition'] other than 'ctrl'")
    baseline = dense(control)
    return {c: dense(conditions == c) - baseline for c in sorted(set(conditions)) if c != "ctrl"}


def _require_finite_expression(adata, path) -> None:
    """DataError, naming `path`, where a cell's expression holds NaN or infinity (its sum is then NaN or infinite,
    for dense and sparse X alike)."""
    sums = np.asarray(adata.X.sum(axis=1, dtype=np.float64)).ravel()
    not_finite = np.flatnonzero(~np.isfinite(sums))
    if len(not_finite):
        raise DataError(path, None, f"{len(not_finite)} of {len(sums)} cells hold NaN or infinity in X (the first: "
                                    f"{adata.obs_names[not_finite[0]]!r}): expected finite expression values")


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


def read_adata(path):
    """The AnnData of an .h5ad file; DataError for a missing file or one that is not an AnnData file (not HDF5, or
    HDF5 without AnnData's layout)."""
    import anndata
    import h5py

    if not Path(path).is_file():
        raise DataError(path, None, "file not found (an .h5ad AnnData file)")
    if not h5py.is_hdf5(path):
        raise DataError(path, None, "not an HDF5 file: expected an .h5ad AnnData file (scanpy's, or GEARS')")
    try:
        return anndata.read_h5ad(path)
    except (KeyError, TypeError, ValueError, OSError) as error:
        raise DataError(path, None, f"an HDF5 file without AnnData's layout ({type(error).__name__}): expected an "
                                    ".h5ad AnnData file") from error


def evaluate_perturbation(embeddings_path, adata_path, output=None, *, test_fraction=0.25, seed=0, top_de=20) -> dict:
    """Fit and score the task (module docstring); raises DataError for a bad embeddings or AnnData file, InputError
    for too few perturbations with embeddings."""
    from sklearn.linear_model import RidgeCV

    loaded = load_embeddings(embeddings_path)  # first: it is small, the AnnData may be gigabytes
    shifts = mean_shifts(read_adata(adata_path), adata_path)
    # the perturbed genes in the embeddings' spelling, whatever the case of either (bft.data.symbols)
    symbols = match_symbols((g for c in shifts for g in perturbation_genes(c)), loaded)
    symbols.warn(f"perturbed genes of {adata_path}", f"genes of {embeddings_path}",
                 unmatched_then="their perturbations are left out",
                 by_case_then="the vectors of the genes they match are used for them")
    embeddings = {gene: loaded[known] for gene, known in symbols.matched.items()}
    usable = [c for c in shifts if perturbation_genes(c) and all(g in embeddings for g in perturbation_genes(c))]
    test = [c for c in usable if stable_fraction(c, seed, "perturbation-split") < test_fraction]
    train = [c for c in usable if c not in set(test)]
    if len(train) < 3 or not test:
        raise InputError(f"too few perturbations with embeddings: {len(train)} to train on, {len(test)} to test")
    features = lambda conds: np.stack([sum(embeddings[g] for g in perturbation_genes(c)) for c in conds])  # noqa: E731
    targets = lambda conds: np.stack([shifts[c] for c in conds])  # noqa: E731
    model = RidgeCV(alphas=ALPHAS).fit(features(train), targets(train))
    predicted = model.predict(features(test))
    mean_shift = targets(train).mean(axis=0)

    rows = []
    for condition, prediction in zip(test, predicted):
        truth = shifts[condition]
        top = np.argsort(-np.abs(truth))[:top_de]
        rows.append({"condition": condition, "pearson_all": pearson(prediction, truth),
                     "pearson_top_de": pearson(prediction[top], truth[top]),
                     "baseline_pearson_all": pearson(mean_shift, truth),
                     "baseline_pearson_top_de": pearson(mean_shift[top], truth[top])})
    results = {"embeddings": str(embeddings_path), "adata": str(adata_path), "n_perturbations": len(shifts),
               "symbols": symbols.counts(), "n_with_embeddings": len(usable), "n_train": len(train),
               "n_test": len(test), "top_de": top_de, "ridge_alpha": float(model.alpha_)}
    for key in ("pearson_all", "pearson_top_de", "baseline_pearson_all", "baseline_pearson_top_de"):
        results.update(summarise(key, [row[key] for row in rows]))
    if output is not None:
        write_jsonl_atomic(Path(output) / "predictions.jsonl", rows)
        write_json_atomic(Path(output) / "results.json", results)
    return results
