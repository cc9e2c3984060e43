"""Training step time of every BFTTrainer loss against TRL's SFTTrainer(loss_type=dft) and (nll), float32.

Same model weights, same batches; the trainers are interleaved round by round in one process, so machine noise hits
them alike. A step is `training_step` (forward, loss, backward) plus zeroing the gradients; the optimizer update is
identical for all and left out. Prints and saves the median step times and their ratios to TRL's DFT. BFTTrainer's
`dft` isolates what each loss costs beyond DFT on the same (token) head.

    python benchmarks/step_time.py [--model smollm2-135m-instruct] [--batch 4] [--rounds 12] [--out FILE.json]
"""

import argparse
import copy
import json
import statistics
import tempfile
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

from bft.data.training import load_training_dataset
from bft.files import write_json_atomic
from bft.models import resolve
from bft.trainer import BFTConfig, BFTTrainer


def make_trainer(trainer_cls, config_cls, model, tokenizer, dataset, loss_type, batch):
    config = config_cls(output_dir=tempfile.mkdtemp(), loss_type=loss_type, per_device_train_batch_size=batch,
                        report_to="none", activation_checkpointing=False, bf16=False, use_cpu=True, disable_tqdm=True,
                        max_length=512, seed=0)
    return trainer_cls(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", default="benchmarks/results/step_time.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    folder = resolve(args.model)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    dataset = load_training_dataset("demo")
    trainers = {
        "trl_nll": make_trainer(SFTTrainer, SFTConfig, copy.deepcopy(base), tokenizer, dataset, "nll", args.batch),
        "trl_dft": make_trainer(SFTTrainer, SFTConfig, copy.deepcopy(base), tokenizer, dataset, "dft", args.batch),
        **{f"bft_{loss}": make_trainer(BFTTrainer, BFTConfig, copy.deepcopy(base), tokenizer, dataset, loss, args.batch)
           for loss in ("dft", "bft", "asft", "eaft")},
    }
    # The same batches for everyone: taken from one trainer's dataloader (same tokenization for all three)
    loader = iter(trainers["bft_bft"].get_train_dataloader())
    batches = [next(loader) for _ in range(args.rounds + 2)]
    tokens = [int(b["attention_mask"].sum()) for b in batches]

    times = {name: [] for name in trainers}
    for round_index, batch in enumerate(batches):
        for name, trainer in trainers.items():  # interleaved: each round runs the three on the same batch
            trainer.model.train()
            inputs = {k: v.clone() if torch.is_tensor(v) else v for k, v in batch.items()}
            num_items = trainer._get_num_items_in_batch([inputs], torch.device("cpu"))
            started = time.perf_counter()
            trainer.training_step(trainer.model, inputs, num_items)
            trainer.model.zero_grad(set_to_none=True)
            if round_index >= 2:  # the first two rounds warm up allocators and caches
                times[name].append(time.perf_counter() - started)

    median = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "command": "python benchmarks/step_time.py " + " ".join(f"--{k} {v}" for k, v in vars(args).items()),
        "model": args.model, "batch_size": args.batch, "timed_rounds": args.rounds, "threads": args.threads,
        "mean_tokens_per_batch": statistics.mean(tokens[2:]),
        "median_step_seconds": median,
        "ratio_to_trl_dft": {name: median[name] / median["trl_dft"] for name in median},
        "per_round_ratio_bft_to_trl_dft": [b / d for b, d in zip(times["bft_bft"], times["trl_dft"])],
    }
    write_json_atomic(args.out, result)
    print(json.dumps({k: result[k] for k in ("median_step_seconds", "ratio_to_trl_dft", "mean_tokens_per_batch")},
                     indent=2))


if __name__ == "__main__":
    main()
