"""GRPO's scoring of a batch with TRL's fused head against the project's token head (`bft.grpo.use_token_head`).

What each GRPO step computes besides generation: the policy's per-token log-probabilities and entropies of the
completions (forward and backward) and the reference model's (forward). Off CUDA/XPU, TRL's head scores every
position of every row, prompts included; ours scores the completion tokens only. Two GRPOTrainers on the same
weights score the same batch (go-naming training prompts, left-padded, `--completion` tokens each), interleaved
round by round in one process; the script prints and saves the median times, their ratio and the largest
difference between the two heads' log-probabilities.

    python benchmarks/grpo_scoring.py [--data data/go-naming/train.jsonl] [--batch 16] [--completion 16] [--rounds 8]
"""

import argparse
import copy
import json
import statistics
import tempfile
import time

import torch
from trl import GRPOTrainer

from bft.files import write_json_atomic
from bft.grpo import BFTGRPOConfig, load_prompts, use_token_head
from bft.models import load_model
from bft.rewards import go_naming_format
from bft.upstream import grpo_token_logps


def make_trainer(model, tokenizer, prompts, batch, bf16):
    config = BFTGRPOConfig(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=batch, num_generations=4,
                           beta=0.04, bf16=bf16, activation_checkpointing=False, report_to="none", disable_tqdm=True)
    return GRPOTrainer(model=model, reward_funcs=[go_naming_format], args=config, train_dataset=prompts,
                       processing_class=tokenizer)


def score(trainer, input_ids, attention_mask, completion):
    """One step's scoring: the policy with gradients, then the reference; seconds and the policy's log-probs."""
    trainer.model.zero_grad()
    started = time.perf_counter()
    logps, entropies = grpo_token_logps(trainer, trainer.model, input_ids, attention_mask, completion,
                                        compute_entropy=True)
    (logps.sum() + entropies.sum()).backward()
    with torch.no_grad():
        grpo_token_logps(trainer, trainer.ref_model, input_ids, attention_mask, completion)
    return time.perf_counter() - started, logps.detach()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--data", default="data/go-naming/train.jsonl")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--completion", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--out", default="benchmarks/results/grpo_scoring.json")
    args = parser.parse_args()

    prompts = load_prompts(args.data, "go-naming")
    model, tokenizer = load_model(args.model)
    tokenizer.padding_side = "left"
    trainers = {"trl_head": make_trainer(copy.deepcopy(model), tokenizer, prompts, args.batch, None),
                "token_head": make_trainer(model, tokenizer, prompts, args.batch, None)}
    assert use_token_head(trainers["token_head"]), "the token head does not apply here (a Triton device?)"
    texts = [tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
             for row in prompts.select(range(args.batch))]
    encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    torch.manual_seed(0)
    completions = torch.randint(100, tokenizer.vocab_size, (args.batch, args.completion))
    input_ids = torch.cat([encoded["input_ids"], completions], dim=1)
    attention_mask = torch.cat([encoded["attention_mask"], torch.ones_like(completions)], dim=1)

    times = {name: [] for name in trainers}
    logps = {}
    for round_ in range(args.rounds + 1):  # GRPOTrainer applies its own autocast
        for name, trainer in trainers.items():
            seconds, logps[name] = score(trainer, input_ids, attention_mask, args.completion)
            if round_:  # the first round warms up
                times[name].append(seconds)
    medians = {name: statistics.median(values) for name, values in times.items()}
    result = {"command": f"python benchmarks/grpo_scoring.py --data {args.data} --batch {args.batch} --completion "
                         f"{args.completion} --rounds {args.rounds}",
              "precision": "bf16 autocast" if trainers["trl_head"].args.bf16 else "float32",
              "threads": torch.get_num_threads(), "rows": args.batch, "tokens_per_row": input_ids.shape[1],
              "completion_tokens": args.completion, "median_seconds": medians,
              "speedup": medians["trl_head"] / medians["token_head"],
              "per_round_speedups": [a / b for a, b in zip(times["trl_head"], times["token_head"])],
              "max_abs_logp_difference": float((logps["trl_head"] - logps["token_head"]).abs().max())}
    write_json_atomic(args.out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
