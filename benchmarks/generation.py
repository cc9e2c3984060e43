"""Generation speed and what it keeps: `bft eval go-naming` and `bft profile` in float32 (as before) against bf16.

The default model names `--sets` GeneAgent gene sets and writes profiles of `--genes` genes, greedy, once per
setting, in one process: float32 in plain batches of 16 prompts sorted by length (what `bft eval` did before),
float32 and bf16 batched by rows and tokens (`bft.generation.length_batches`) with up to 16 and 64 rows (bf16,
64: today's default), and that with a static KV cache. Reports the seconds of each, the go-naming
scores with their 95% bootstrap intervals, and how many answers are identical to the float32 ones; for the
profiles, the mean cosine similarity of each profile's sentence embedding to its float32 counterpart.

    python benchmarks/generation.py [--sets 60] [--genes 64]
"""

import argparse
import json
import tempfile
import time

import numpy as np

from bft.bio.profiles import TEMPLATES
from bft.data import data_dir
from bft.data.gene_profiles import read_synopses
from bft.data.gene_sets import read_gene_sets
from bft.data.go_naming import naming_prompt
from bft.data.splits import fixed_subset
from bft.eval.go_naming import process_name_embeddings, score_names
from bft.files import write_json_atomic
from bft.generation import generate_answers
from bft.models import DEFAULT_ENCODER, embed, load_encoder, load_for_eval

PLAIN = {"max_batch_tokens": float("inf"), "max_length_ratio": float("inf")}  # batches of N sorted prompts
SETTINGS = {  # name -> (dtype, batch size, static KV cache, batching)
    "float32, plain batches of 16 (before)": ("float32", 16, False, PLAIN),
    "float32, batch 16": ("float32", 16, False, {}),
    "bf16, batch 16": ("bfloat16", 16, False, {}),
    "bf16, batch 64 (default)": ("bfloat16", 64, False, {}),
    "bf16, batch 64, static KV cache": ("bfloat16", 64, True, {}),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=60)
    parser.add_argument("--genes", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=96, help="length limit of each profile")
    parser.add_argument("--out", default="benchmarks/results/generation.json")
    args = parser.parse_args()
    folder = data_dir()
    genes = sorted(read_synopses(folder / "geneagent" / "gene_narrative_synopsis.txt"))[: args.genes]
    prompts = [TEMPLATES["describe"](gene) for gene in genes]
    gene_sets = fixed_subset(read_gene_sets(folder / "geneagent" / "GO_terms.csv"), args.sets, lambda gs: gs.id)
    encoder = load_encoder()
    process_name_embeddings(encoder, DEFAULT_ENCODER, folder / "go_bp")  # cached before any timing
    rows, answers, profiles = {}, {}, {}
    for name, (dtype, batch, static, batching) in SETTINGS.items():
        model, tokenizer = load_for_eval("smollm2-135m-instruct", dtype)
        if static:
            model.generation_config.cache_implementation = "static"
        generate_answers(model, tokenizer, prompts[:2], max_new_tokens=4, batch_size=2, desc=None)  # warm-up
        out = tempfile.mkdtemp()
        started = time.perf_counter()
        answers[name] = generate_answers(model, tokenizer, [naming_prompt(gs.genes) for gs in gene_sets],
                                         max_new_tokens=32, batch_size=batch, desc=None, **batching)
        scores = score_names(gene_sets, answers[name], out, go_dir=folder / "go_bp", encoder=DEFAULT_ENCODER,
                             results={})
        naming_seconds = time.perf_counter() - started
        started = time.perf_counter()
        profiles[name] = generate_answers(model, tokenizer, prompts, max_new_tokens=args.max_new_tokens,
                                          batch_size=batch, desc=None, **batching)
        profile_seconds = time.perf_counter() - started
        rows[name] = {"go_naming_seconds": naming_seconds, "profile_seconds": profile_seconds,
                      **{key: scores[key] for key in scores if key.startswith(("semantic_similarity", "percentile",
                                                                                "rougeL"))}}
        print(json.dumps({"setting": name, **rows[name]}), flush=True)
    reference = "float32, plain batches of 16 (before)"
    reference_embeddings = embed(encoder, profiles[reference])
    for name, row in rows.items():
        row["go_naming_speedup"] = rows[reference]["go_naming_seconds"] / row["go_naming_seconds"]
        row["profile_speedup"] = rows[reference]["profile_seconds"] / row["profile_seconds"]
        row["identical_names"] = sum(a == b for a, b in zip(answers[name], answers[reference]))
        row["identical_profiles"] = sum(a == b for a, b in zip(profiles[name], profiles[reference]))
        row["profile_cosine_to_float32"] = float(np.mean(
            (embed(encoder, profiles[name]) * reference_embeddings).sum(axis=1)))
    result = {"command": f"python benchmarks/generation.py --sets {args.sets} --genes {args.genes} "
                         f"--max-new-tokens {args.max_new_tokens}", "sets": args.sets, "genes": len(genes),
              "settings": rows}
    write_json_atomic(args.out, result)
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
