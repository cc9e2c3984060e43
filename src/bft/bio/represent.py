"""`bft represent`: model-written gene profiles -> embeddings -> gene-gene interaction, beside two references.

The genes are those that occur in the Gene2vec pairs and have an NCBI summary (`--limit-genes`: a fixed
pseudo-random subset, drawn pair by pair). The same pipeline runs on three texts per gene, over exactly the same
pairs: the model's profile, the true NCBI summary (a GenePT-style reference) and the bare gene symbol (the floor).
Pair and summary symbols are matched whatever their case (`bft.data.symbols`). `summary.json` counts the profiles
that stopped at `max_new_tokens` (`profile_quality.cut_at_max_new_tokens`), those that are empty or blank
(`profile_quality.empty`: they all embed to one vector, which says nothing of their genes; a warning names them)
and, per text, those the encoder's length limit cut (`cut_by_encoder`).
"""

import time
from pathlib import Path

from bft.bio.embed import blank_texts, embed_texts, save_embeddings
from bft.bio.ggi import evaluate_ggi, read_pairs
from bft.bio.profiles import profile_quality, read_done, write_profiles
from bft.data import data_dir as data_folder_path
from bft.data.gene_profiles import read_synopses
from bft.data.splits import stable_fraction
from bft.data.symbols import match_symbols
from bft.files import write_json_atomic, write_text_atomic
from bft.models import DEFAULT_ENCODER, load_encoder, load_for_eval

SPLIT_SHARES = {"train": 0.6, "valid": 0.1, "test": 0.3}  # of --limit-genes; Gene2vec's splits share no gene


def represented_genes(data_dir, limit_genes=None) -> list[str]:
    """Genes in the Gene2vec pairs that have an NCBI summary; with `limit_genes`, a fixed subset drawn pair by pair.

    Drawing whole pairs (in a fixed pseudo-random order, split by split) rather than single genes keeps the subset
    dense in pairs: N random genes keep only about an (N / all)^2 share of the pairs.
    """
    pairs_dir = Path(data_dir) / "gene2vec_ggi"
    pairs = {split: [(a, b) for a, b, _ in read_pairs(pairs_dir, split)] for split in SPLIT_SHARES}
    summarised = summaries_of({gene for split in pairs.values() for pair in split for gene in pair}, data_dir)
    pairs = {split: [(a, b) for a, b in split_pairs if a in summarised and b in summarised]
             for split, split_pairs in pairs.items()}
    if limit_genes is None:
        return sorted({gene for split_pairs in pairs.values() for pair in split_pairs for gene in pair})
    chosen = set()
    for split, share in SPLIT_SHARES.items():
        budget = limit_genes - len(chosen) if split == "test" else round(limit_genes * share)
        taken = set()
        for pair in sorted(pairs[split], key=lambda p: stable_fraction(" ".join(p), 0, "represent-subset")):
            if len(taken) >= budget:
                break
            if len(taken | set(pair)) <= budget:
                taken |= set(pair)
        chosen |= taken
    return sorted(chosen)


def summaries_of(genes, data_dir) -> dict[str, str]:
    """{gene: its NCBI summary} for the `genes` (the pairs' spelling) that have one, found whatever the case of
    either file's symbols (`bft.data.symbols`)."""
    summaries = read_synopses(Path(data_dir) / "geneagent" / "gene_narrative_synopsis.txt")
    found = match_symbols(genes, summaries).matched
    return {gene: summaries[spelt] for gene, spelt in found.items()}


def represent(model_name, output, *, data_folder=None, limit_genes=None, encoder=DEFAULT_ENCODER,
              batch_size=64, template="describe", max_new_tokens=160, repetition_penalty=1.0, dtype="auto") -> dict:
    output, data_dir = Path(output), data_folder_path(data_folder)
    genes = represented_genes(data_dir, limit_genes)
    started = time.perf_counter()
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
    sentence_encoder = load_encoder(encoder)  # loaded once for the three texts
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
