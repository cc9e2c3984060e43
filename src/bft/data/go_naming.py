"""`bft data go-naming`: gene set -> the name of its biological process, from the GO graph and annotations.

Each GO biological-process term with 3 to 100 genes (propagated from its descendants) becomes one conversation:
the user lists the genes in a fixed shuffled order and asks for a short name of the most prominent process; the
assistant answers with the term's name. Evaluation terms never reach the output: the public GeneAgent set is
always excluded, with any file given by `--exclude`, both by GO id and by gene set (a term whose genes equal an
excluded term's genes is excluded too), gene symbols compared whatever their case (`bft.data.symbols`).
`meta.json`'s `exclusions` counts, per file, the sets that matched a term by id, by gene set or not at all; sets of
an `--exclude` file that match nothing are also named in a warning.
"""

import logging
import random
from pathlib import Path

from bft.data.gene_sets import go_process_gene_sets, read_gene_sets, read_go_terms
from bft.data.output import write_dataset
from bft.data.splits import stable_fraction
from bft.data.symbols import examples, match_symbols

logger = logging.getLogger(__name__)
PUBLIC_EVAL_SET = Path("geneagent") / "GO_terms.csv"


def naming_prompt(genes) -> str:
    """The question asked of the model, for training and evaluation alike."""
    return (
        f"These human genes act together: {', '.join(genes)}. "
        "What is the most prominent biological process they perform? Reply with a short name for the process only."
    )


def build_go_naming(data_dir, output, *, exclude=(), min_genes=3, max_genes=100, valid_fraction=0.1, seed=0,
                    limit=None) -> dict:
    """Write `train.jsonl`, `valid.jsonl` (the same terms as `valid_sets.jsonl`: id, genes, name, for
    `bft eval go-naming --sets`) and `meta.json` into `output`; returns the metadata. Raises DataError, writing
    nothing, where the filters and `limit` leave no training term."""
    data_dir = Path(data_dir)
    names, _ = read_go_terms(data_dir / "go_bp")
    gene_sets = go_process_gene_sets(data_dir / "go_bp")
    excluded_ids, excluded_sets, exclusions = set(), set(), []
    for number, path in enumerate([data_dir / PUBLIC_EVAL_SET, *map(Path, exclude)]):
        ids, sets, report = _exclusions(path, gene_sets, warn=number > 0)
        excluded_ids |= ids
        excluded_sets |= sets
        exclusions.append(report)

    kept, counts = [], {"excluded_by_id": 0, "excluded_by_gene_set": 0, "outside_size_range": 0}
    for go_id, genes in sorted(gene_sets.items()):
        if go_id.upper() in excluded_ids:
            counts["excluded_by_id"] += 1
        elif genes in excluded_sets:
            counts["excluded_by_gene_set"] += 1
        elif not min_genes <= len(genes) <= max_genes:
            counts["outside_size_range"] += 1
        else:
            kept.append(go_id)
    if limit is not None:
        kept = sorted(kept, key=lambda go_id: stable_fraction(go_id, seed, "limit"))[:limit]

    splits = {"train": [], "valid": []}
    for go_id in kept:
        genes = sorted(gene_sets[go_id])
        random.Random(f"{seed}:{go_id}").shuffle(genes)
        split = "valid" if stable_fraction(go_id, seed, "split") < valid_fraction else "train"
        splits[split].append({
            "id": go_id,
            "messages": [
                {"role": "user", "content": naming_prompt(genes)},
                {"role": "assistant", "content": names[go_id]},
            ],
        })
    meta = {
        "task": "go-naming",
        "source": str(data_dir / "go_bp"),
        "excluded_files": [str(data_dir / PUBLIC_EVAL_SET), *map(str, exclude)], "exclusions": exclusions,
        "min_genes": min_genes, "max_genes": max_genes, "valid_fraction": valid_fraction, "seed": seed,
        "limit": limit, "counts": {**counts, **{split: len(rows) for split, rows in splits.items()}},
    }
    # the validation terms again as a gene-set file, for `bft eval go-naming --sets` (choosing settings on them)
    valid_sets = [{"id": row["id"], "genes": sorted(gene_sets[row["id"]]), "name": names[row["id"]]}
                  for row in splits["valid"]]
    write_dataset(output, {**splits, "valid_sets": valid_sets}, meta)
    return meta


def _exclusions(path, gene_sets: dict[str, frozenset[str]], warn: bool) -> tuple[set, set, dict]:
    """(GO ids, gene sets, report) of the gene-set file `path`, whose terms are to be excluded. Ids are compared
    upper-cased and symbols whatever their case (`bft.data.symbols`); the report counts the file's sets that match
    a term by id, by gene set, or nothing (those exclude nothing: with `warn`, a warning names them)."""
    sets = read_gene_sets(path)
    symbols = match_symbols((gene for gs in sets for gene in gs.genes), set().union(*gene_sets.values()))
    ids = {gs.id.strip().upper() for gs in sets}
    as_in_go = {gs.id: frozenset(symbols.matched.get(gene, gene) for gene in gs.genes) for gs in sets}
    known_ids, known_sets = {go_id.upper() for go_id in gene_sets}, set(gene_sets.values())
    by_id = {gs.id for gs in sets if gs.id.strip().upper() in known_ids}
    by_set = {gs.id for gs in sets if as_in_go[gs.id] in known_sets}
    matched = by_id | by_set
    nothing = [gs.id for gs in sets if gs.id not in matched]
    if warn:
        symbols.warn(f"gene symbols of {path}", "genes annotated to GO biological processes")
        if nothing:
            logger.warning("%d of %d sets of %s match no GO biological-process term by id or gene set, and exclude "
                           "nothing: %s", len(nothing), len(sets), path, examples(nothing))
    report = {"file": str(path), "sets": len(sets), "matched_by_id": len(by_id), "matched_by_gene_set": len(by_set),
              "matched_nothing": len(nothing), "symbols": symbols.counts()}
    return ids, set(as_in_go.values()), report
