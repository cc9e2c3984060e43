"""`bft represent`: model-written gene profiles -> embeddings -> gene-gene interaction, beside two references.

The genes are those that occur in the Gene2vec pairs and have an NCBI summary (`--limit-genes`: a fixed
pseudo-random subset, drawn pair by pair; one whose train or test pairs lack label 0 or 1 is refused before the model
loads, naming the smallest larger one that has both). The same pipeline runs on three texts per gene, over exactly the
same pairs: the model's profile, the true NCBI summary (a GenePT-style reference) and the bare gene symbol (the floor).
Pair and summary symbols are matched whatever their case (`bft.data.symbols`). `summary.json` counts the profiles
that stopped at `max_new_tokens` (`profile_quality.cut_at_max_new_tokens`), those that are empty or blank
(`profile_quality.empty`: they all embed to one vector, which says nothing of their genes; a warning names them)
and, per text, those the encoder's length limit cut (`cut_by_encoder`).
"""

import time
from pathlib import Path

from bft.bio.embed import blank_texts, embed_texts, save_embeddings
from bft.bio.ggi import evaluate_ggi, read_pairs
from bft.bio.profiles import profile_quality, read_done, write_profiles, writer
from bft.data import data_dir as data_folder_path
from bft.data.gene_profiles import read_synopses
from bft.data.splits import stable_fraction
from bft.data.symbols import match_symbols
from bft.errors import InputError
from bft.files import write_json_atomic, write_text_atomic
from bft.models import DEFAULT_ENCODER, load_encoder, load_for_eval

SPLIT_SHARES = {"train": 0.6, "valid": 0.1, "test": 0.3}  # of --limit-genes; Gene2vec's splits share no gene


def represented_genes(data_dir, limit_genes=None) -> list[str]:
    """Genes in the Gene2vec pairs that have an NCBI summary; with `limit_genes`, a fixed subset drawn pair by pair.

    Drawing whole pairs (in a fixed pseudo-random order, split by split) rather than single genes keeps the subset
    dense in pairs: N random genes keep only about an (N / all)^2 share of the pairs. Raises InputError where the
    train or test pairs among the genes lack a label (GGI needs 0 and 1 in both), naming the smallest larger
    `limit_genes` that has both; DataError for a missing or malformed pair or summary file. Both come before any
    model loads.
    """
    pairs = summarised_pairs(data_dir)
    ordered = {split: sorted(split_pairs, key=lambda p: stable_fraction(f"{p[0]} {p[1]}", 0, "represent-subset"))
               for split, split_pairs in pairs.items()}
    genes = _draw(ordered, limit_genes)
    if not _lacking_labels(pairs, genes):
        return sorted(genes)
    every_gene = _draw(ordered, None)
    if limit_genes is None or _lacking_labels(pairs, every_gene):
        raise InputError(f"the Gene2vec pairs in {Path(data_dir) / 'gene2vec_ggi'} whose genes have an NCBI summary "
                         "lack a label GGI needs (0 and 1 among the train and the test pairs): there are "
                         f"{_lacking_labels(pairs, every_gene)}")
    larger = next((n for n in range(limit_genes + 1, len(every_gene) + 1)
                   if not _lacking_labels(pairs, _draw(ordered, n))), None)
    raise InputError(f"--limit-genes {limit_genes} draws too few pairs for GGI, which needs labels 0 and 1 among the "
                     f"train and the test pairs (it draws {_lacking_labels(pairs, genes)}); "
                     + (f"the smallest larger --limit-genes that has both is {larger}" if larger else
                        "no larger --limit-genes has both: leave it out"))


def summarised_pairs(data_dir) -> dict[str, list[tuple[str, str, int]]]:
    """The Gene2vec pairs of each split (`SPLIT_SHARES`) whose two genes have an NCBI summary."""
    pairs_dir = Path(data_dir) / "gene2vec_ggi"
    pairs = {split: read_pairs(pairs_dir, split) for split in SPLIT_SHARES}
    summarised = summaries_of({gene for split in pairs.values() for a, b, _ in split for gene in (a, b)}, data_dir)
    return {split: [p for p in split_pairs if p[0] in summarised and p[1] in summarised]
            for split, split_pairs in pairs.items()}


def _draw(ordered: dict[str, list], limit_genes) -> set[str]:
    """All the genes of the pairs, or `limit_genes` of them drawn pair by pair from the pairs in the given order
    (`SPLIT_SHARES` of them from each split; the test split takes what the others left)."""
    if limit_genes is None:
        return {gene for split_pairs in ordered.values() for a, b, _ in split_pairs for gene in (a, b)}
    chosen = set()
    for split, share in SPLIT_SHARES.items():
        budget = limit_genes - len(chosen) if split == "test" else round(limit_genes * share)
        taken = set()
        for a, b, _ in ordered[split]:
            if len(taken) >= budget:
                break
            if len(taken | {a, b}) <= budget:
                taken |= {a, b}
        chosen |= taken
    return chosen


def _lacking_labels(pairs: dict[str, list], genes: set[str]) -> str:
    """Where the train or the test pairs among `genes` lack label 0 or 1 ("2 test pairs, all labelled 1"), or ""."""
    lacking = []
    for split in ("train", "test"):
        labels = [label for a, b, label in pairs[split] if a in genes and b in genes]
        if set(labels) != {0, 1}:
            lacking.append(f"{len(labels)} {split} pair{'' if len(labels) == 1 else 's'}"
                           + (f", {'all ' if len(labels) > 1 else ''}labelled {labels[0]}" if labels else ""))
    return ", and ".join(lacking)


def summaries_of(genes, data_dir) -> dict[str, str]:
    """{gene: its NCBI summary} for the `genes` (the pairs' spelling) that have one, found whatever the case of
    either file's symbols (`bft.data.symbols`)."""
    summaries = read_synopses(Path(data_dir) / "geneagent" / "gene_narrative_synopsis.txt")
    found = match_symbols(genes, summaries).matched
    return {gene: summaries[spelt] for gene, spelt in found.items()}


def represent(model_name, output, *, data_folder=None, limit_genes=None, encoder=DEFAULT_ENCODER,
              batch_size=64, template="describe", max_new_tokens=160, repetition_penalty=1.0, dtype="auto") -> dict:
    """The whole command (module docstring). Raises InputError, before the model loads, for `limit_genes` that draw
    too few pairs (`represented_genes`), an unknown template, an encoder not found, or a profiles file
    written by another model or setting; DataError for bad data files."""
    output, data_dir = Path(output), data_folder_path(data_folder)
    started = time.perf_counter()
    genes = represented_genes(data_dir, limit_genes)
    read_done(output / "profiles.jsonl", writer(model_name, template, max_new_tokens, repetition_penalty))
    sentence_encoder = load_encoder(encoder)  # loaded once for the three texts, and before the model
    model, tokenizer = load_for_eval(model_name, dtype)
    profiling = write_profiles(model, tokenizer, genes, output / "profiles.jsonl", model_name=model_name,
                               template=template, batch_size=batch_size, max_new_tokens=max_new_tokens,
                               repetition_penalty=repetition_penalty)
    written = read_done(output / "profiles.jsonl")
    profiles = {gene: written[spelt] for gene, spelt in match_symbols(genes, written).matched.items()}
    summaries = summaries_of(genes, data_dir)
    texts = {"model profile": {g: profiles[g]["text"] for g in genes},
             "NCBI summary": {g: summaries[g] for g in genes},
             "gene symbol": {g: g for g in genes}}
    empty_profiles = blank_texts(texts["model profile"], output / "profiles.jsonl")
    rows, cut_by_encoder = {}, {}
    for name, by_gene in texts.items():
        slug = name.replace(" ", "-").lower()
        ids, X, cut_by_encoder[name] = embed_texts(by_gene, sentence_encoder)
        save_embeddings(output / f"emb-{slug}.npz", ids, X)
        rows[name] = evaluate_ggi(output / f"emb-{slug}.npz", data_dir / "gene2vec_ggi", output / f"ggi-{slug}", genes)
    quality = profile_quality([profiles[g]["text"] for g in genes])
    quality["cut_at_max_new_tokens"] = sum(bool(profiles[g].get("cut")) for g in genes)
    quality["empty"] = len(empty_profiles)
    summary = {"model": model_name, "genes": len(genes), "limit_genes": limit_genes, "encoder": encoder,
               "encoder_max_seq_length": sentence_encoder.max_seq_length, "cut_by_encoder": cut_by_encoder,
               "profiling": profiling, "profile_quality": quality, "seconds": time.perf_counter() - started,
               "ggi": rows}
    write_json_atomic(output / "summary.json", summary)
    write_text_atomic(output / "summary.md", summary_table(summary))
    return summary


def summary_table(summary: dict) -> str:
    lines = [f"# Gene representations from `{summary['model']}` ({summary['genes']} genes, encoder "
             f"{summary['encoder']})", "",
             "| text per gene | GGI AUROC (95% CI) | AUPRC | gene-disjoint AUROC | gene-frequency baseline AUROC "
             "| test pairs |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, r in summary["ggi"].items():
        disjoint = r["gene_disjoint"].get("auroc")
        lines.append(f"| {name} | {r['auroc']:.3f} ({r['auroc_ci_low']:.3f}-{r['auroc_ci_high']:.3f}) "
                     f"| {r['auprc']:.3f} "
                     f"| {'n/a' if disjoint is None else f'{disjoint:.3f}'} | {r['gene_frequency_baseline_auroc']:.3f} "
                     f"| {r['n_test']} |")
    quality = summary["profile_quality"]
    cut = ", ".join(f"{name} {count}" for name, count in summary["cut_by_encoder"].items())
    lines += ["", f"Model profiles: {quality['looping_share']:.0%} loop (a word 3-gram 4+ times), "
                  f"{quality['distinct_share']:.0%} distinct, {quality['empty']} empty (all embedded as one "
                  f"vector), {quality['cut_at_max_new_tokens']} stopped at --max-new-tokens. Texts cut to the "
                  f"encoder's {summary['encoder_max_seq_length']} word pieces: {cut}."]
    return "\n".join(lines) + "\n"
