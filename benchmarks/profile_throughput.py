"""Generation throughput of `bft profile` (batched) against profiling one gene at a time, same model, same genes,
same greedy decoding, one run.

    python benchmarks/profile_throughput.py [--genes 32] [--batch 16] [--max-new-tokens 96]
"""

import argparse
import json
import time

from bft.bio.profiles import TEMPLATES
from bft.data import data_dir
from bft.data.gene_profiles import read_synopses
from bft.eval.generate import generate_answers
from bft.files import write_json_atomic
from bft.models import load_for_eval


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--out", default="benchmarks/results/profile_throughput.json")
    args = parser.parse_args()
    model, tokenizer = load_for_eval("smollm2-135m-instruct")
    genes = sorted(read_synopses(data_dir() / "geneagent" / "gene_narrative_synopsis.txt"))[: args.genes]
    prompts = [TEMPLATES["describe"](g) for g in genes]
    generate_answers(model, tokenizer, prompts[:2], max_new_tokens=4, batch_size=2, desc=None)  # warm-up
    timings = {}
    for label, batch in (("batched", args.batch), ("one_at_a_time", 1)):
        started = time.perf_counter()
        outputs = generate_answers(model, tokenizer, prompts, max_new_tokens=args.max_new_tokens, batch_size=batch,
                                   desc=None)
        timings[label] = time.perf_counter() - started
        timings[f"{label}_new_tokens"] = sum(len(tokenizer(o).input_ids) for o in outputs)
    result = {"command": f"python benchmarks/profile_throughput.py --genes {args.genes} --batch {args.batch} "
                         f"--max-new-tokens {args.max_new_tokens}",
              "genes": len(genes), "batched_genes_per_second": len(genes) / timings["batched"],
              "one_at_a_time_genes_per_second": len(genes) / timings["one_at_a_time"],
              "speedup": timings["one_at_a_time"] / timings["batched"], **timings}
    write_json_atomic(args.out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
