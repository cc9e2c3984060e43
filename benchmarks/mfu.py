"""Model FLOPs utilisation of a BFT training step on the default model, and what limits it.

MFU = 6 x parameters x trained tokens per second / the machine's bf16 matrix-multiply peak, the peaks measured in
the same run (square matmuls). Each configuration trains `--steps` timed optimizer steps (after one warm-up step)
of BFTTrainer(loss_type=bft) on the packaged demo data, one configuration after the other in this process:

- fp32, padded batches of `--batch` examples (the baseline), on all threads and on one thread;
- bf16 autocast (what TRL turns on by default), and a model held in bf16 (the dtype's ceiling, not a recipe);
- packed, padding-free rows of about the same real tokens (one row of `--batch` x the mean example length);
- torch.compile of the model (compile time is excluded: it falls in the warm-up step).

Then one fp32 padded step runs under torch.profiler to show where the time goes (matrix multiplies vs the rest).

    python benchmarks/mfu.py [--steps 3] [--batch 8] [--only "fp32, packed" ...] [--out benchmarks/results/mfu.json]
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

MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear",
              "aten::_scaled_dot_product_flash_attention_for_cpu",
              "aten::_scaled_dot_product_flash_attention_for_cpu_backward")


def matmul_peak(dtype, size=2048, repeats=10) -> float:
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)
    started = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * size**3 * repeats / (time.perf_counter() - started)


class StepTimer(TrainerCallback):
    """Wall time and trained tokens of each optimizer step after the first (which warms up and compiles)."""

    def __init__(self):
        self.times, self.tokens, self.started, self.tokens_before = [], [], None, 0
        self.trainer = None

    def on_step_begin(self, args, state, control, **kwargs):
        self.started, self.tokens_before = time.perf_counter(), self.trainer._total_train_tokens

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step > 1:
            self.times.append(time.perf_counter() - self.started)
            self.tokens.append(self.trainer._total_train_tokens - self.tokens_before)


def make_trainer(folder, tokenizer, dataset, steps, batch, *, dtype=torch.float32, bf16=False, packing=False,
                 max_length=1024, compile_model=False):
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    config = BFTConfig(output_dir=tempfile.mkdtemp(), loss_type="bft", bft_group_size=8, max_steps=steps + 1,
                       per_device_train_batch_size=batch, report_to="none", save_strategy="no", disable_tqdm=True,
                       gradient_checkpointing=False, bf16=bf16, use_cpu=True, packing=packing,
                       max_length=max_length, torch_compile=compile_model, logging_steps=1000, seed=0)
    timer = StepTimer()
    trainer = BFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                         callbacks=[timer])
    timer.trainer = trainer
    return trainer, timer


def run(name, folder, tokenizer, dataset, steps, batch, threads, **settings) -> dict:
    torch.set_num_threads(threads)
    trainer, timer = make_trainer(folder, tokenizer, dataset, steps, batch, **settings)
    trainer.train()
    parameters = sum(p.numel() for p in trainer.model.parameters())
    seconds = sum(timer.times)
    return {"configuration": name, "threads": threads, "parameters": parameters, "timed_steps": len(timer.times),
            "tokens_per_step": sum(timer.tokens) / len(timer.tokens), "tokens_per_second": sum(timer.tokens) / seconds,
            "seconds_per_step": seconds / len(timer.times)}


def time_breakdown(folder, tokenizer, dataset, batch, threads) -> dict:
    """Self CPU time of one fp32 padded step, split into matrix multiplies (incl. attention) and everything else."""
    torch.set_num_threads(threads)
    trainer, _ = make_trainer(folder, tokenizer, dataset, 1, batch)
    trainer.args.max_steps = 1
    trainer.train()  # warm-up step outside the profiler
    trainer, _ = make_trainer(folder, tokenizer, dataset, 0, batch)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        trainer.train()
    by_op = {}
    for event in profiler.key_averages():
        by_op[event.key] = by_op.get(event.key, 0.0) + event.self_cpu_time_total / 1e6
    total = sum(by_op.values())
    matmul = sum(seconds for op, seconds in by_op.items() if op in MATMUL_OPS)
    top = sorted(by_op.items(), key=lambda item: -item[1])[:12]
    return {"self_cpu_seconds": total, "matmul_share": matmul / total,
            "top_ops": [{"op": op, "seconds": seconds, "share": seconds / total} for op, seconds in top]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--only", action="append", help="run only the configuration of this name")
    parser.add_argument("--out", default="benchmarks/results/mfu.json")
    args = parser.parse_args()
    threads = torch.get_num_threads()
    folder = resolve("smollm2-135m-instruct")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    dataset = load_training_dataset("demo")
    texts = [tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=False) for row in dataset]
    mean_length = sum(len(tokenizer(text).input_ids) for text in texts) / len(texts)
    packed_length = int(args.batch * mean_length)
    peaks = {"bf16": matmul_peak(torch.bfloat16), "fp32": matmul_peak(torch.float32)}
    configurations = [
        ("fp32, padded", threads, {}),
        ("fp32, padded, 1 thread", 1, {}),
        ("bf16 autocast, padded", threads, {"bf16": True}),
        ("bf16 weights, padded", threads, {"dtype": torch.bfloat16}),
        ("fp32, packed", threads,
         {"packing": True, "max_length": packed_length, "batch": 1}),
        ("fp32, padded, torch.compile", threads, {"compile_model": True}),
    ]
    if args.only:
        configurations = [c for c in configurations if c[0] in args.only]
    rows = []
    for name, n_threads, settings in configurations:
        batch = settings.pop("batch", args.batch)
        try:
            row = run(name, folder, tokenizer, dataset, args.steps, batch, n_threads, **settings)
        except Exception as error:  # a configuration this machine cannot run (e.g. no compiler) is reported
            row = {"configuration": name, "error": f"{type(error).__name__}: {error}"[:300]}
        else:
            row["mfu_vs_bf16_peak"] = 6 * row["parameters"] * row["tokens_per_second"] / peaks["bf16"]
            row["mfu_vs_fp32_peak"] = 6 * row["parameters"] * row["tokens_per_second"] / peaks["fp32"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    breakdown = time_breakdown(folder, tokenizer, dataset, args.batch, threads)
    print(json.dumps(breakdown), flush=True)
    only = "".join(f' --only "{prefix}"' for prefix in args.only or [])
    result = {"command": f"python benchmarks/mfu.py --steps {args.steps} --batch {args.batch}{only}", "threads": threads,
              "mean_example_tokens": mean_length,
              "packed_row_tokens": packed_length, "matmul_peak_flops": peaks, "configurations": rows,
              "fp32_step_breakdown": breakdown}
    write_json_atomic(args.out, result)
    print(json.dumps({"matmul_peak_tflops": {k: v / 1e12 for k, v in peaks.items()}}))


if __name__ == "__main__":
    main()
