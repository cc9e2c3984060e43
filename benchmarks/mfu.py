"""Model FLOPs utilisation of a BFT training step on the default model, and what limits it.

MFU = 6 x parameters x trained-sequence tokens per second / the machine's bf16 matrix-multiply peak, the peak
measured in the same run (square bf16 matmuls). Each configuration trains `--steps` optimizer steps of BFTTrainer
(loss_type=bft) on the packaged demo data; configurations are run one after the other in this process:
fp32 and bf16 autocast, padded and packed (padding-free) batches.

    python benchmarks/mfu.py [--steps 6] [--batch 8] [--out benchmarks/results/mfu.json]
"""

import argparse
import json
import tempfile
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from bft.data.training import load_training_dataset
from bft.files import write_json_atomic
from bft.models import resolve
from bft.trainer import BFTConfig, BFTTrainer


def matmul_peak(dtype, size=2048, repeats=10) -> float:
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)
    started = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * size**3 * repeats / (time.perf_counter() - started)


class StepTimer(TrainerCallback):
    """Wall time of each optimizer step after the first (which warms up)."""

    def __init__(self):
        self.times, self.started = [], None

    def on_step_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step > 1:
            self.times.append(time.perf_counter() - self.started)


def run(folder, tokenizer, dataset, steps, batch, bf16, packing):
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    config = BFTConfig(output_dir=tempfile.mkdtemp(), loss_type="bft", bft_group_size=8, max_steps=steps + 1,
                       per_device_train_batch_size=batch, report_to="none", save_strategy="no", disable_tqdm=True,
                       gradient_checkpointing=False, bf16=bf16, use_cpu=True, packing=packing, max_length=1024,
                       logging_steps=1000, seed=0)
    timer = StepTimer()
    trainer = BFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer, callbacks=[timer])
    tokens_before = []
    trainer.add_callback(type("Tokens", (TrainerCallback,), {
        "on_step_end": lambda self, a, s, c, **k: tokens_before.append(trainer._total_train_tokens)})())
    trainer.train()
    step_tokens = [b - a for a, b in zip(tokens_before[:-1], tokens_before[1:])]
    parameters = sum(p.numel() for p in model.parameters())
    seconds = sum(timer.times)
    return {"bf16_autocast": bf16, "packing": packing, "parameters": parameters, "timed_steps": len(timer.times),
            "tokens_per_second": sum(step_tokens) / seconds, "seconds_per_step": seconds / len(timer.times)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--out", default="benchmarks/results/mfu.json")
    args = parser.parse_args()
    folder = resolve("smollm2-135m-instruct")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    dataset = load_training_dataset("demo")
    peaks = {"bf16": matmul_peak(torch.bfloat16), "fp32": matmul_peak(torch.float32)}
    rows = []
    for bf16, packing in ((False, False), (True, False), (False, True), (True, True)):
        row = run(folder, tokenizer, dataset, args.steps, args.batch, bf16, packing)
        row["mfu_vs_bf16_peak"] = 6 * row["parameters"] * row["tokens_per_second"] / peaks["bf16"]
        row["mfu_vs_fp32_peak"] = 6 * row["parameters"] * row["tokens_per_second"] / peaks["fp32"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {"command": f"python benchmarks/mfu.py --steps {args.steps} --batch {args.batch}",
              "threads": torch.get_num_threads(), "matmul_peak_flops": peaks, "configurations": rows}
    write_json_atomic(args.out, result)
    print(json.dumps({"matmul_peak_tflops": {k: v / 1e12 for k, v in peaks.items()}}))


if __name__ == "__main__":
    main()
