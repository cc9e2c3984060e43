"""Peak memory of computing the BFT loss and its gradient: the token head and TRL's fused head against full logits.

Each measurement runs in a fresh process: a one-layer Llama with SmolLM2-135M's width (576) and vocabulary
(49,152) takes a batch of B x T tokens (the first eighth a prompt), computes the BFT loss and back-propagates.
`token`: `bft.lm_head` (what BFTTrainer uses on CPUs): trained positions only, tiles of 8 M logits, the forward's
probabilities kept for the backward up to 256 MB, recomputed beyond. `fused`: TRL's fused LM head (BFTTrainer on
GPUs), whose CPU fallback makes temporaries of one 4096-token x 32768-vocab tile. `materialised`: the full
(B, T, vocab) logits, log-softmax and gather, as a straightforward implementation does (the authors' code builds
the logits twice, so it needs more still). Reported: the increase of the process's peak resident memory over its
level just before the forward pass, for B = 1, 4, 8; the per-sample slope between the two largest gives the largest
batch that fits a memory budget.

    python benchmarks/loss_memory.py [--length 2048] [--budget-gb 16] [--out benchmarks/results/loss_memory.json]
"""

import argparse
import json
import resource
import subprocess
import sys

VOCAB, HIDDEN = 49152, 576
VARIANTS = ("token", "fused", "materialised")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(variant: str, batch: int, length: int) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl.trainer import add_fused_lm_head

    from bft.losses import bft_loss

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=1536, num_hidden_layers=1,
                         num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=length,
                         tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    input_ids = torch.randint(0, VOCAB, (batch, length))
    labels = input_ids.clone()
    labels[:, : length // 8] = -100  # a prompt
    if variant in ("fused", "token"):
        add_fused_lm_head(model)
    if variant == "token":
        from bft.lm_head import install_token_head

        install_token_head(model)
    before = peak_mb()
    if variant in ("fused", "token"):
        out = model(input_ids=input_ids, labels=labels, fused_lm_head=True)
        logprobs, mask = out.log_probs, out.label_mask
    else:
        logits = model(input_ids=input_ids).logits[:, :-1]
        targets = labels[:, 1:]
        mask = targets != -100
        logprobs = torch.log_softmax(logits.float(), -1).gather(-1, targets.clamp(min=0)[..., None])[..., 0]
    bft_loss(logprobs, mask, group_size=256).backward()
    print(json.dumps({"variant": variant, "batch": batch, "length": length, "peak_increase_mb": peak_mb() - before}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=2048)
    parser.add_argument("--budget-gb", type=float, default=16.0)
    parser.add_argument("--out", default="benchmarks/results/loss_memory.json")
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.length)
        return
    from bft.files import write_json_atomic

    rows = []
    for variant in VARIANTS:
        for batch in (1, 4, 8):
            result = subprocess.run([sys.executable, __file__, "--length", str(args.length), "--child", variant,
                                     str(batch)], capture_output=True, text=True, check=True)
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    summary = {}
    for variant in VARIANTS:
        points = [(r["batch"], r["peak_increase_mb"]) for r in rows if r["variant"] == variant]
        slope = (points[-1][1] - points[-2][1]) / (points[-1][0] - points[-2][0])
        intercept = points[-1][1] - slope * points[-1][0]
        summary[variant] = {"mb_at_batch_4": points[-2][1], "mb_at_batch_8": points[-1][1], "mb_per_sample": slope,
                            "largest_batch_in_budget": int((args.budget_gb * 1024 - intercept) // slope)}
    for batch in (4, 8):
        for variant in ("fused", "token"):
            summary[f"ratio_materialised_to_{variant}_at_batch_{batch}"] = (
                summary["materialised"][f"mb_at_batch_{batch}"] / summary[variant][f"mb_at_batch_{batch}"])
    result = {"command": f"python benchmarks/loss_memory.py --length {args.length} --budget-gb {args.budget_gb}",
              "vocab": VOCAB, "hidden": HIDDEN, "length": args.length, "budget_gb": args.budget_gb,
              "measurements": rows, "summary": summary}
    write_json_atomic(args.out, result)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
