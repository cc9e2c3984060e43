"""`bft data go-naming`: gene set -> the name of its biological process, from the GO graph and annotations.

Each GO biological-process term with 3 to 100 genes (propagated from its descendants) becomes one conversation:
the user lists the genes in a fixed shuffled order and asks for a short name of the most prominent process; the
assistant answers with the term's name. Evaluation terms never reach the output: the public GeneAgent set is
always excluded, with any file given by `--exclude`, both by GO id and by gene set (a term whose genes equal an
excluded term's genes is excluded too).
"""

import random
from pathlib import Path

from bft.data.gene_sets import go_process_gene_sets, read_gene_sets, read_go_terms
from bft.data.output import write_dataset
from bft.data.splits import stable_fraction

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
    `bft eval go-naming --sets`) and `meta.json` into `output`; returns the metadata."""
    data_dir = Path(data_dir)
    names, _ = read_go_terms(data_dir / "go_bp")
    gene_sets = go_process_gene_sets(data_dir / "go_bp")
    excluded = [gs for path in [data_dir / PUBLIC_EVAL_SET, *map(Path, exclude)] for gs in read_gene_sets(path)]
    excluded_ids = {gs.id for gs in excluded}
    excluded_sets = {frozenset(gs.genes) for gs in excluded}

    kept, counts = [], {"excluded_by_id": 0, "excluded_by_gene_set": 0, "outside_size_range": 0}
    for go_id, genes in sorted(gene_sets.items()):
        if go_id in excluded_ids:
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
        "excluded_files": [str(data_dir / PUBLIC_EVAL_SET), *map(str, exclude)],
        "min_genes": min_genes, "max_genes": max_genes, "valid_fraction": valid_fraction, "seed": seed,
        "limit": limit, "counts": {**counts, **{split: len(rows) for split, rows in splits.items()}},
    }
    # the validation terms again as a gene-set file, for `bft eval go-naming --sets` (choosing settings on them)
    valid_sets = [{"id": row["id"], "genes": sorted(gene_sets[row["id"]]), "name": names[row["id"]]}
                  for row in splits["valid"]]
    write_dataset(output, {**splits, "valid_sets": valid_sets}, meta)
    return meta
