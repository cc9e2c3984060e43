"""Does `torch_compile: true` pay for itself on this machine? BFT, full fine-tuning, the demo's fast settings.

Trains `--steps` optimizer steps of the default model on the demo data twice in one process, eager and with
`torch_compile=True` (inductor; shapes that change from batch to batch are made dynamic after the first recompile,
so the number of compilations stays small), and reports each step's wall time: the first steps carry the
compilation, the later ones show the steady state. Break-even = compilation time / steady-state saving per step.

    python benchmarks/compile.py [--steps 12] [--padding-free]
"""

import argparse
import json
import statistics
import tempfile
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from bft.data.training import load_training_dataset
from bft.files import write_json_atomic
from bft.models import resolve
from bft.trainer import BFTConfig, BFTTrainer


class StepTimes(TrainerCallback):
    def __init__(self):
        self.times = []

    def on_step_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self.started)


def run(compiled: bool, steps: int, padding_free: bool) -> list[float]:
    folder = resolve("smollm2-135m-instruct")
    timer = StepTimes()
    config = BFTConfig(output_dir=tempfile.mkdtemp(), loss_type="bft", bft_group_size=8, max_steps=steps,
                       per_device_train_batch_size=8, padding_free=padding_free, max_length=256, report_to="none",
                       save_strategy="no", disable_tqdm=True, logging_steps=1000, seed=0, torch_compile=compiled)
    trainer = BFTTrainer(model=AutoModelForCausalLM.from_pretrained(folder), args=config,
                         train_dataset=load_training_dataset("demo"), callbacks=[timer],
                         processing_class=AutoTokenizer.from_pretrained(folder))
    trainer.train()
    return timer.times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--padding-free", action="store_true", help="padding-free rows (the recipes' default)")
    parser.add_argument("--out", default="benchmarks/results/compile.json")
    args = parser.parse_args()
    result = {"command": f"python benchmarks/compile.py --steps {args.steps}"
                         + (" --padding-free" if args.padding_free else ""), "torch": torch.__version__}
    for name, compiled in (("eager", False), ("torch.compile", True)):
        try:
            times = run(compiled, args.steps, args.padding_free)
        except Exception as error:  # a compiler this machine lacks is a result too
            result[name] = {"error": f"{type(error).__name__}: {error}"[:400]}
        else:
            steady = statistics.median(times[len(times) // 2:])
            result[name] = {"step_seconds": times, "first_step_seconds": times[0], "steady_step_seconds": steady,
                            "total_seconds": sum(times)}
        print(json.dumps({name: result[name]}), flush=True)
    if "steady_step_seconds" in result["eager"] and "steady_step_seconds" in result["torch.compile"]:
        eager, compiled = result["eager"], result["torch.compile"]
        # time beyond the steady state (compilation, warm-up), and what each steady step saves
        warm_up = {name: r["total_seconds"] - r["steady_step_seconds"] * args.steps for name, r in
                   (("eager", eager), ("compiled", compiled))}
        saving = eager["steady_step_seconds"] - compiled["steady_step_seconds"]
        result["steady_speedup"] = eager["steady_step_seconds"] / compiled["steady_step_seconds"]
        result["compile_seconds"] = warm_up["compiled"] - warm_up["eager"]
        result["break_even_steps"] = result["compile_seconds"] / saving if saving > 0 else None
    write_json_atomic(args.out, result)
    print(json.dumps({k: result.get(k) for k in ("steady_speedup", "compile_seconds", "break_even_steps")}))


if __name__ == "__main__":
    main()
