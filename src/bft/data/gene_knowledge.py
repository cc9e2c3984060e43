"""`bft data gene-knowledge`: does a model know which biological process a gene takes part in? Multiple-choice probes.

For each gene of `bft data gene-profiles`' splits (same seed, limit and fraction: the same genes), one question
"Which biological process is the human gene X involved in?" with four options: one GO biological-process term
annotated to X (after propagation up the GO graph; a term of `min_term_genes`-`max_term_genes` genes, chosen
pseudo-randomly) and three terms of similar size that are not annotated to X. `trained.jsonl` holds the genes of
the gene-profiles training split (what training on their NCBI summaries could teach), `untrained.jsonl` the others
(drift only); `--profiles DIR` checks that DIR, the gene-profiles data, was split alike. A summary's gene is found
in the GO annotations whatever the case of its symbol (`bft.data.symbols`; `meta.json`'s `symbols` counts them) and
keeps the summary's spelling in the question. Rows are in
`bft eval mcq`'s format: question, options, answer_idx, answer, plus the gene and term.
"""

import bisect
import json
import random
from pathlib import Path

from bft.data.gene_profiles import gene_split, read_synopses, synopsis_path
from bft.data.gene_sets import go_process_gene_sets, read_go_terms
from bft.data.output import write_dataset
from bft.data.records import DataError
from bft.data.splits import stable_fraction
from bft.data.symbols import match_symbols

LETTERS = "ABCD"
# Distractors are drawn among the terms closest in size to the answer (this many of them)
NEAREST_IN_SIZE = 20


def knowledge_question(symbol: str) -> str:
    return f"Which biological process is the human gene {symbol} involved in?"


def build_gene_knowledge(data_dir, output, *, min_term_genes=10, max_term_genes=500, valid_fraction=0.1, seed=0,
                         limit=None, profiles=None) -> dict:
    """Write `trained.jsonl`, `untrained.jsonl` and `meta.json` into `output`; returns the metadata. `profiles`, the
    folder `bft data gene-profiles` wrote, is checked to have been split with the same options. Raises DataError,
    writing nothing, for a `profiles` folder split otherwise, or where no trained gene has a probe."""
    data_dir = Path(data_dir)
    split_options = {"valid_fraction": valid_fraction, "seed": seed, "limit": limit}
    if profiles is not None:
        check_same_split(Path(profiles), split_options)
    names, _ = read_go_terms(data_dir / "go_bp")
    terms = {term: genes for term, genes in go_process_gene_sets(data_dir / "go_bp").items()
             if min_term_genes <= len(genes) <= max_term_genes and term in names}
    by_size = sorted(terms, key=lambda term: (len(terms[term]), term))
    sizes = [len(terms[term]) for term in by_size]
    terms_of = {}
    for term, genes in terms.items():
        for gene in genes:
            terms_of.setdefault(gene, []).append(term)
    genes = gene_split(read_synopses(synopsis_path(data_dir)), valid_fraction=valid_fraction, seed=seed,
                       limit=limit)
    symbols = match_symbols(genes["train"] + genes["valid"], terms_of)  # the summaries' spelling -> GO's
    symbols.warn("genes of the NCBI summaries", f"genes annotated to a GO process of {min_term_genes}-"
                                                f"{max_term_genes} genes")
    splits, skipped = {"trained": [], "untrained": []}, 0
    for split, name in (("train", "trained"), ("valid", "untrained")):
        for symbol in genes[split]:
            in_go = symbols.matched.get(symbol)
            row = _probe(symbol, in_go, sorted(terms_of.get(in_go, ())), terms, by_size, sizes, names, seed)
            if row is None:
                skipped += 1
            else:
                splits[name].append(row)
    meta = {"task": "gene-knowledge", "source": str(data_dir / "go_bp"), "min_term_genes": min_term_genes,
            "max_term_genes": max_term_genes, **split_options, "profiles": None if profiles is None else str(profiles),
            "counts": {"genes_without_a_term_in_range": skipped, **{k: len(v) for k, v in splits.items()}},
            "symbols": symbols.counts()}
    write_dataset(output, splits, meta, training="trained")
    return meta


def check_same_split(profiles: Path, split: dict) -> None:
    """Fail unless the gene-profiles data in `profiles` was split as `split` says: else genes it trains on would be
    probed as untrained, and the other way round."""
    meta_path = profiles / "meta.json"
    if not meta_path.is_file():
        raise DataError(meta_path, None, "file not found: expected the output folder of bft data gene-profiles")
    meta = json.loads(meta_path.read_text())
    if meta.get("task") != "gene-profiles":
        raise DataError(meta_path, None, f"built by {meta.get('task')!r}, not gene-profiles")
    different = [f"{key} {meta.get(key)!r} there, {value!r} here" for key, value in split.items()
                 if meta.get(key) != value]
    if different:
        raise DataError(meta_path, None, f"split otherwise than these probes ({', '.join(different)}): give the "
                                         "same --valid-fraction, --seed and --limit")


def _probe(symbol, in_go, own_terms, terms, by_size, sizes, names, seed):
    """One question about `symbol` (spelt `in_go` in the GO annotations), or None where no annotated term falls in
    the size range."""
    if not own_terms:
        return None
    answer = min(own_terms, key=lambda term: stable_fraction(f"{symbol}:{term}", seed, "knowledge-answer"))
    size = len(terms[answer])
    middle = bisect.bisect_left(sizes, size)
    window = by_size[max(0, middle - NEAREST_IN_SIZE): middle + NEAREST_IN_SIZE]
    candidates = [term for term in window if in_go not in terms[term] and names[term] != names[answer]]
    candidates.sort(key=lambda term: (abs(len(terms[term]) - size),
                                      stable_fraction(f"{symbol}:{term}", seed, "knowledge-distractor")))
    if len(candidates) < len(LETTERS) - 1:
        return None
    options = [answer, *candidates[: len(LETTERS) - 1]]
    random.Random(f"{seed}:{symbol}").shuffle(options)
    letter = LETTERS[options.index(answer)]
    return {"id": symbol, "gene": symbol, "term": answer, "question": knowledge_question(symbol),
            "options": {LETTERS[i]: names[term] for i, term in enumerate(options)}, "answer_idx": letter,
            "answer": names[answer]}
