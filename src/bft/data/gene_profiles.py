"""`bft data gene-profiles`: "describe gene X" -> the gene's NCBI summary, split by gene."""

import logging
from pathlib import Path

from bft.data.output import write_dataset
from bft.data.records import DataError, open_text, require_new_id
from bft.data.splits import stable_fraction
from bft.data.symbols import case_collisions, examples

logger = logging.getLogger(__name__)


def profile_prompt(symbol: str) -> str:
    """The request for a gene profile, for training and for `bft profile` alike."""
    return (f"Describe the human gene {symbol}: its molecular function, the biological processes and pathways it "
            "takes part in, and the diseases linked to it.")


def read_synopses(path) -> dict[str, str]:
    """`SYMBOL: text` lines (the `geneagent/*_synopsis.txt` layout) -> {symbol: text}. Raises DataError (file and
    line) for a line of another layout or a repeated symbol, and for a file without any such line."""
    synopses, first_lines = {}, {}
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            symbol, sep, text = line.partition(":")
            if not sep or not symbol.strip() or " " in symbol.strip() or not text.strip():
                raise DataError(path, number, "expected 'SYMBOL: text'")
            require_new_id(path, number, symbol.strip(), first_lines)
            synopses[symbol.strip()] = text.strip()
    if not synopses:
        raise DataError(path, None, "no genes: expected 'SYMBOL: text' lines")
    return synopses


def synopsis_path(data_dir) -> Path:
    return Path(data_dir) / "geneagent" / "gene_narrative_synopsis.txt"


def gene_split(symbols, *, valid_fraction=0.1, seed=0, limit=None) -> dict[str, list[str]]:
    """{"train": [...], "valid": [...]}: the genes `bft data gene-profiles` puts in each split (also used by
    `bft data gene-knowledge`, so that its probes name trained and untrained genes alike)."""
    symbols = sorted(symbols)
    if limit is not None:
        symbols = sorted(symbols, key=lambda s: stable_fraction(s, seed, "limit"))[:limit]
    split = {"train": [], "valid": []}
    for symbol in symbols:
        split["valid" if stable_fraction(symbol, seed, "split") < valid_fraction else "train"].append(symbol)
    return split


def build_gene_profiles(data_dir, output, *, valid_fraction=0.1, seed=0, limit=None) -> dict:
    """Write `train.jsonl`, `valid.jsonl` and `meta.json` into `output`; returns the metadata. Raises DataError,
    writing nothing, where `limit` and `valid_fraction` leave no training gene."""
    source = synopsis_path(data_dir)
    synopses = read_synopses(source)
    genes = gene_split(synopses, valid_fraction=valid_fraction, seed=seed, limit=limit)
    splits = {split: [{"id": symbol, "messages": [{"role": "user", "content": profile_prompt(symbol)},
                                                  {"role": "assistant", "content": synopses[symbol]}]}
                      for symbol in symbols] for split, symbols in genes.items()}
    collisions = case_collisions(synopses)  # kept apart, as two genes; a case-insensitive join would merge them
    if collisions:
        logger.warning("%s: %d groups of symbols differ only by case (%s); each is kept as a gene of its own",
                       source, len(collisions), examples(["/".join(group) for group in collisions]))
    meta = {"task": "gene-profiles", "source": str(source), "valid_fraction": valid_fraction, "seed": seed,
            "limit": limit, "counts": {**{split: len(rows) for split, rows in splits.items()},
                                       "case_collisions": len(collisions)}}
    write_dataset(output, splits, meta)
    return meta
