"""Training throughput: TRL's DFT as a user runs it today against BFTTrainer's fast paths, side by side in one run.

Each configuration trains the default model (SmolLM2-135M-Instruct) on the packaged demo data with
`trainer.train()`: one warm-up optimizer step, then `--steps` timed ones (forward, loss, backward, clipping,
optimizer, scheduler: the whole step, timed by a callback). Configurations take turns, `--rounds` times, each
time in a fresh trainer, so machine noise falls on all of them alike; ratios to the baseline are taken within each
round and their median is reported. Tokens are real (non-padding) tokens. MFU is model FLOPs per second (6 x
parameters per token for full fine-tuning, 4 x for LoRA, whose frozen base needs no weight gradients) over the
bf16 matrix-multiply peak measured in the same run (square 2048 matrices, between rounds). The optimizer's share is
the time of `optimizer.step()` (AdamW, fused where torch has it) over the whole step.

    python benchmarks/throughput.py [--steps 4] [--rounds 3] [--batch 8] [--only NAME ...]
"""

import argparse
import json
import statistics
import tempfile
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import SFTConfig, SFTTrainer

from bft.data.training import load_training_dataset
from bft.files import write_json_atomic
from bft.models import resolve
from bft.trainer import BFTConfig, BFTTrainer
from bft.upstream import trained_tokens

BASELINE = "TRL SFTTrainer dft, fp32, padded, full"
# name -> (trainer, LoRA?, settings); every BFTTrainer configuration runs loss_type=bft
CONFIGURATIONS = {
    BASELINE: ("trl", False, {"loss_type": "dft", "bf16": False}),
    "BFTTrainer bft, fp32, padded, full": ("bft", False, {"bf16": False}),
    "BFTTrainer bft, bf16, padded, full": ("bft", False, {"bf16": True}),
    "BFTTrainer bft, bf16, padding-free, full": ("bft", False, {"bf16": True, "padding_free": True}),
    "BFTTrainer bft, bf16, padding-free, LoRA r16 all-linear, bf16 base": (
        "bft", True, {"bf16": True, "padding_free": True}),
}


class StepTimer(TrainerCallback):
    """Wall time and real tokens of each optimizer step after the first, and the time of its `optimizer.step()`."""

    def __init__(self):
        self.trainer, self.times, self.tokens, self.optimizer_times = None, [], [], []

    def on_step_begin(self, args, state, control, **kwargs):
        self.started, self.tokens_before = time.perf_counter(), trained_tokens(self.trainer)

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.optimizer_started = time.perf_counter()

    def on_optimizer_step(self, args, state, control, **kwargs):
        if state.global_step >= 1:
            self.optimizer_times.append(time.perf_counter() - self.optimizer_started)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step > 1:
            self.times.append(time.perf_counter() - self.started)
            self.tokens.append(trained_tokens(self.trainer) - self.tokens_before)


def matmul_peak(dtype, size=2048, repeats=8) -> float:
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)
    started = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * size**3 * repeats / (time.perf_counter() - started)


def run(name, folder, tokenizer, dataset, steps, batch) -> dict:
    kind, lora, settings = CONFIGURATIONS[name]
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16 if lora else torch.float32)
    common = dict(output_dir=tempfile.mkdtemp(), max_steps=steps + 1, per_device_train_batch_size=batch,
                  learning_rate=1e-4 if lora else 5e-5, report_to="none", save_strategy="no", disable_tqdm=True,
                  activation_checkpointing=False, logging_steps=1000, seed=0, use_cpu=True, max_length=256)
    timer = StepTimer()
    if kind == "trl":
        trainer = SFTTrainer(model=model, args=SFTConfig(**common, **settings), train_dataset=dataset,
                             processing_class=tokenizer, callbacks=[timer])
    else:
        peft_config = None
        if lora:
            from peft import LoraConfig

            peft_config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear",
                                     task_type="CAUSAL_LM")
        config = BFTConfig(**common, **settings, loss_type="bft", bft_group_size=8)
        trainer = BFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                             callbacks=[timer], peft_config=peft_config)
    timer.trainer = trainer
    trainer.train()
    seconds, tokens = sum(timer.times), sum(timer.tokens)
    parameters = sum(p.numel() for name, p in trainer.model.named_parameters() if "lora_" not in name)
    return {"configuration": name, "lora": lora, "timed_steps": len(timer.times),
            "seconds_per_step": seconds / len(timer.times),
            "tokens_per_step": tokens / len(timer.times), "tokens_per_second": tokens / seconds,
            "optimizer_seconds_per_step": statistics.median(timer.optimizer_times),
            "flops_per_token": (4 if lora else 6) * parameters}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--only", action="append", help="run only this configuration (the baseline always runs)")
    parser.add_argument("--out", default="benchmarks/results/throughput.json")
    args = parser.parse_args()
    folder = resolve("smollm2-135m-instruct")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    dataset = load_training_dataset("demo")
    names = [n for n in CONFIGURATIONS if n == BASELINE or not args.only or n in args.only]
    rounds, peaks = [], {"bf16": [], "fp32": []}
    for round_index in range(args.rounds):
        peaks["bf16"].append(matmul_peak(torch.bfloat16))
        peaks["fp32"].append(matmul_peak(torch.float32))
        rows = {}
        for name in names:
            rows[name] = run(name, folder, tokenizer, dataset, args.steps, args.batch)
            print(json.dumps({"round": round_index, **rows[name]}), flush=True)
        rounds.append(rows)
    peak = statistics.median(peaks["bf16"])
    summary = []
    for name in names:
        per_round = [r[name] for r in rounds]
        tokens_per_second = statistics.median(r["tokens_per_second"] for r in per_round)
        summary.append({
            "configuration": name,
            "tokens_per_second": tokens_per_second,
            "seconds_per_step": statistics.median(r["seconds_per_step"] for r in per_round),
            "tokens_per_step": statistics.median(r["tokens_per_step"] for r in per_round),
            "ratio_to_baseline": statistics.median(
                r[name]["tokens_per_second"] / r[BASELINE]["tokens_per_second"] for r in rounds),
            "mfu_vs_bf16_peak": per_round[0]["flops_per_token"] * tokens_per_second / peak,
            "optimizer_share": statistics.median(r["optimizer_seconds_per_step"] / r["seconds_per_step"]
                                                 for r in per_round),
        })
    only = "".join(f' --only "{name}"' for name in args.only or [])
    result = {"command": f"python benchmarks/throughput.py --steps {args.steps} --rounds {args.rounds} "
                         f"--batch {args.batch}{only}",
              "threads": torch.get_num_threads(), "cpu": dict(torch.cpu.get_capabilities()).get("cpu_name"),
              "matmul_peak_tflops": {k: statistics.median(v) / 1e12 for k, v in peaks.items()},
              "summary": summary, "rounds": rounds}
    write_json_atomic(args.out, result)
    for row in summary:
        print(f"{row['configuration']:70s} {row['tokens_per_second']:7.1f} tok/s  x{row['ratio_to_baseline']:.2f}  "
              f"MFU {100 * row['mfu_vs_bf16_peak']:.1f}%  optimizer {100 * row['optimizer_share']:.1f}%")
    print(json.dumps({"matmul_peak_tflops": result["matmul_peak_tflops"]}))


if __name__ == "__main__":
    main()
