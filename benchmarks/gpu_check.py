"""The GPU check: what the trainer computes on one CUDA GPU, and how fast, in one run of a few minutes.

(a) Every loss type on the GPU (float32) against the float64 CPU reference: the loss of one optimizer step and its
    SGD update (learning rate 1, so the update is minus the gradient), on the tiny randomly initialised test model.
(b) The same step through TRL's fused head (its Triton kernel on CUDA) and through the project's token head
    (`lm_head: trl` against `lm_head: token`), float32 and bf16 autocast, for nll, dft and bft.
(c) Training throughput and peak memory on a randomly initialised model of Qwen2.5-1.5B's shape (no weights needed),
    bf16 autocast, synthetic prompt/completion samples of random lengths: `BFTTrainer` bft (padding-free rows,
    SDPA; with each LM head; flash-attention too where `flash_attn` is installed) against TRL's `SFTTrainer` dft and
    nll (padding-free and padded) and against BFT computed as the authors' code computes it (full logits, a Python
    loop over samples, padded rows). Tokens are real (non-padding) tokens; each step is timed between CUDA
    synchronisations, after warm-up steps; peak memory is `torch.cuda.max_memory_allocated` over the run (weights,
    gradients, AdamW state and activations). Every configuration runs `--rounds` times, the order reversed each
    round, and the last round is reported: the first run of each batch shape pays for cuDNN's attention plans, which
    the first configuration of a round would otherwise pay alone.
(d) A table on standard output and JSON in `--out`.

    python benchmarks/gpu_check.py [--out benchmarks/results/gpu_check.json]   # on a machine with a GPU
    python benchmarks/gpu_check.py --smoke --out /tmp/gpu_check.json        # every part on CPU, tiny shapes

`--smoke` runs the same code on the CPU on tiny shapes in well under a minute (tests/test_gpu_check.py), so the
script cannot rot between GPU machines; its figures say nothing about a GPU.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

# tests/conftest.py asks for Triton's interpreter (its CPU tests run TRL's kernels on CPU tensors); here they run on
# the GPU, compiled
os.environ["TRITON_INTERPRET"] = "0"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bft.files import write_json_atomic  # noqa: E402
from bft.loss_types import LOSS_TYPES  # noqa: E402
from bft.upstream import trained_tokens  # noqa: E402
from tests.conftest import build_tiny_model  # noqa: E402
from tests.one_step import one_step  # noqa: E402

# Qwen2.5-1.5B's shape (its config.json), for a randomly initialised model
QWEN25_15B = dict(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                  num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1e6,
                  tie_word_embeddings=True)
TINY_QWEN = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True)
GROUP_SIZE = 256  # BFT's default window, for the throughput runs


def relative_difference(a, b) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def first_loss(trainer) -> float:
    return next(row["loss"] for row in trainer.state.log_history if "loss" in row)


# The updates are read as parameters after minus before, in the parameters' dtype: DFT's gradients at a random start
# are ~1/vocab of SFT's, and with a learning rate of 1 float32 rounding of the parameters (~1e-9) would be 1e-4 of
# such an update. A large learning rate keeps the measured update the gradient (one SGD step is linear in it).
LEARNING_RATE = 1e3


def check_losses(folder, device_settings) -> list[dict]:
    """(a): each loss type's first loss and SGD update on `device_settings` (float32) against float64 on the CPU."""
    rows = []
    for loss_type in LOSS_TYPES:
        reference, reference_trainer = one_step(folder, loss_type, 6, 1, dtype=torch.float64,
                                                learning_rate=LEARNING_RATE)
        update, trainer = one_step(folder, loss_type, 6, 1, learning_rate=LEARNING_RATE, **device_settings)
        rows.append({"loss_type": loss_type, "device": str(trainer.args.device),
                     "head": "token" if _token_head(trainer) else "trl",
                     "loss": first_loss(trainer), "loss_float64_cpu": first_loss(reference_trainer),
                     "update_relative_difference": relative_difference(update.cpu(), reference.cpu())})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def check_heads(folder, device_settings) -> list[dict]:
    """(b): one step through TRL's fused head and through the token head, float32 and bf16 autocast."""
    rows = []
    for loss_type in (name for name, loss in LOSS_TYPES.items() if not loss.needs_token_head):
        for bf16 in (False, True):
            trl, _ = one_step(folder, loss_type, 6, 1, lm_head="trl", bf16=bf16, learning_rate=LEARNING_RATE,
                              **device_settings)
            token, _ = one_step(folder, loss_type, 6, 1, lm_head="token", bf16=bf16, learning_rate=LEARNING_RATE,
                                **device_settings)
            rows.append({"loss_type": loss_type, "precision": "bf16 autocast" if bf16 else "float32",
                         "update_relative_difference": relative_difference(trl.cpu(), token.cpu())})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def _token_head(trainer) -> bool:
    with trainer.patched():  # train() restored the model's own forward
        return trainer.model.forward.__func__.__code__.co_qualname.startswith("install_token_head")


def full_logits_bft(outputs, labels, num_items_in_batch=None):
    """BFT as the authors' code computes it: the full logits in float32, their log-softmax, a loop over samples.

    `labels` `[B, T]` (-100 where untrained); the mean over the micro-batch's rows of `s_b L_b` (METHOD.md)."""
    logits = outputs.logits[:, :-1].float()
    labels = labels[:, 1:]
    log_probs = torch.log_softmax(logits, dim=-1).gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)
    losses = []
    for row_log_probs, row_mask in zip(log_probs, labels != -100):
        trained = row_log_probs[row_mask]
        confidence = trained.detach()
        window = min(GROUP_SIZE, len(trained))
        min_group = confidence.unfold(0, window, 1).mean(-1).min()
        sample_weight = 1 - min_group.exp().clamp(0, 1)
        losses.append(sample_weight * -(trained.detach().exp() * trained).sum() / (len(trained) + 1e-8))
    return torch.stack(losses).mean()


def synthetic_samples(vocab_size, count, prompt_lengths, completion_lengths, seed=0):
    """Pre-tokenized prompt/completion samples of random lengths and random tokens."""
    from datasets import Dataset

    generator = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(count):
        prompt = int(torch.randint(*prompt_lengths, (1,), generator=generator))
        completion = int(torch.randint(*completion_lengths, (1,), generator=generator))
        ids = torch.randint(0, vocab_size, (prompt + completion,), generator=generator).tolist()
        rows.append({"input_ids": ids, "completion_mask": [0] * prompt + [1] * completion})
    return Dataset.from_list(rows)


def throughput(name, model_config, tokenizer, dataset, shape, device, callbacks=()) -> dict:
    """(c): one configuration's tokens/s over the timed steps and its peak memory."""
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from bft.trainer import BFTConfig, BFTTrainer

    kind, settings = CONFIGURATIONS[name]
    settings = dict(settings)
    attention = settings.pop("attn_implementation", "sdpa")
    cuda = device == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(model_config, dtype=torch.float32, attn_implementation=attention)
    steps = shape["warmup_steps"] + shape["timed_steps"]
    common = dict(output_dir=tempfile.mkdtemp(), max_steps=steps, per_device_train_batch_size=shape["batch"],
                  learning_rate=1e-5, report_to="none", save_strategy="no", disable_tqdm=True, bf16=True,
                  logging_steps=steps, seed=0, max_length=None, use_cpu=not cuda, dataloader_num_workers=0,
                  activation_checkpointing=shape["activation_checkpointing"])

    timer = StepTimer(cuda, shape["warmup_steps"])
    if kind == "bft":
        config = BFTConfig(**common, **{"loss_type": "bft", "bft_group_size": GROUP_SIZE, **settings})
        trainer = BFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                             callbacks=[timer, *callbacks])
    else:
        loss = {"compute_loss_func": full_logits_bft} if kind == "full-logits" else {}
        trainer = SFTTrainer(model=model, args=SFTConfig(**common, **settings), train_dataset=dataset,
                             processing_class=tokenizer, callbacks=[timer, *callbacks], **loss)
    timer.trainer = trainer
    trainer.train()
    seconds, tokens = sum(timer.times), sum(timer.tokens)
    parameters = sum(p.numel() for p in model.parameters())
    row = {"configuration": name, "attention": attention, "timed_steps": len(timer.times),
           "tokens_per_step": tokens / len(timer.times), "tokens_per_second": tokens / seconds,
           "model_tflops_per_second": 6 * parameters * tokens / seconds / 1e12,
           "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
           "first_loss": first_loss(trainer)}
    del trainer, model
    return row


class StepTimer(TrainerCallback):
    """Each step's time between CUDA synchronisations and its real tokens, after `warmup_steps`."""

    def __init__(self, cuda: bool, warmup_steps: int):
        self.cuda, self.warmup_steps, self.trainer = cuda, warmup_steps, None
        self.times, self.tokens = [], []

    def on_step_begin(self, args, state, control, **kwargs):
        if self.cuda:
            torch.cuda.synchronize()
        self.started, self.tokens_before = time.perf_counter(), trained_tokens(self.trainer)

    def on_step_end(self, args, state, control, **kwargs):
        if self.cuda:
            torch.cuda.synchronize()
        if state.global_step > self.warmup_steps:
            self.times.append(time.perf_counter() - self.started)
            self.tokens.append(trained_tokens(self.trainer) - self.tokens_before)


BASELINE = "TRL SFTTrainer dft, padding-free"
# name -> (trainer, settings)
CONFIGURATIONS = {
    "BFTTrainer bft, padding-free, lm_head auto": ("bft", {"padding_free": True}),
    "BFTTrainer bft, padding-free, lm_head token": ("bft", {"padding_free": True, "lm_head": "token"}),
    "BFTTrainer bft, padded": ("bft", {}),
    BASELINE: ("trl", {"padding_free": True, "loss_type": "dft"}),
    "TRL SFTTrainer dft, padded": ("trl", {"loss_type": "dft"}),
    "TRL SFTTrainer nll, padding-free": ("trl", {"padding_free": True, "loss_type": "nll"}),
    "full-logits BFT (authors' computation), padded": ("full-logits", {}),
    "BFTTrainer bft, padding-free, flash-attention 2": (
        "bft", {"padding_free": True, "attn_implementation": "flash_attention_2"}),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="every part on CPU on tiny shapes (< 1 min)")
    parser.add_argument("--out", default="benchmarks/results/gpu_check.json")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of the throughput runs (default 2; 1 with "
                                                                   "--smoke)")
    args = parser.parse_args()
    from transformers import AutoTokenizer, Qwen2Config
    from transformers.utils import is_flash_attn_2_available

    cuda = torch.cuda.is_available() and not args.smoke
    if not cuda and not args.smoke:
        raise SystemExit("no CUDA device: run on a machine with a GPU, or pass --smoke")
    device = "cuda" if cuda else "cpu"
    folder = str(build_tiny_model(Path(tempfile.mkdtemp())))
    device_settings = {"use_cpu": not cuda}
    result = {"command": "python benchmarks/gpu_check.py" + (" --smoke" if args.smoke else "")
                         + (f" --rounds {args.rounds}" if args.rounds else ""),
              "device": torch.cuda.get_device_name() if cuda else "cpu (smoke)",
              "torch": torch.__version__, "losses": check_losses(folder, device_settings),
              "heads": check_heads(folder, device_settings)}
    shape = (dict(samples=64, batch=8, prompt_lengths=(64, 257), completion_lengths=(256, 1025), warmup_steps=2,
                  timed_steps=6, activation_checkpointing=False, model=QWEN25_15B)
             if cuda else dict(samples=8, batch=2, prompt_lengths=(4, 9), completion_lengths=(8, 33),
                               warmup_steps=1, timed_steps=2, activation_checkpointing=False, model=TINY_QWEN))
    model_config = Qwen2Config(**shape["model"])
    tokenizer = AutoTokenizer.from_pretrained(folder)
    dataset = synthetic_samples(model_config.vocab_size, shape["samples"], shape["prompt_lengths"],
                                shape["completion_lengths"])
    names = [n for n in CONFIGURATIONS if "flash" not in n or (cuda and is_flash_attn_2_available())]
    rounds = []
    for round_index in range(args.rounds or (1 if args.smoke else 2)):
        rows = []
        for name in names if round_index % 2 == 0 else names[::-1]:
            rows.append(throughput(name, model_config, tokenizer, dataset, shape, device))
            print(json.dumps({"round": round_index, **rows[-1]}), flush=True)
        baseline = next(r["tokens_per_second"] for r in rows if r["configuration"] == BASELINE)
        for row in rows:
            row["ratio_to_trl_dft"] = row["tokens_per_second"] / baseline
        rounds.append(sorted(rows, key=lambda row: names.index(row["configuration"])))
    result["throughput"] = {"shape": {k: v for k, v in shape.items() if k != "model"}, "model": shape["model"],
                            "flash_attention_installed": is_flash_attn_2_available(), "runs": rounds[-1],
                            "earlier_rounds": rounds[:-1]}
    write_json_atomic(args.out, result)
    print_tables(result)


def print_tables(result):
    print(f"\n{result['device']}, torch {result['torch']}\n")
    print("| loss | head on the device | loss, device | loss, float64 CPU | update vs float64 CPU (relative) |")
    print("| --- | --- | --- | --- | --- |")
    for r in result["losses"]:
        print(f"| {r['loss_type']} | {r['head']} | {r['loss']:.6f} | {r['loss_float64_cpu']:.6f} | "
              f"{r['update_relative_difference']:.1e} |")
    print("\n| loss | precision | update, TRL's head vs token head (relative) |\n| --- | --- | --- |")
    for r in result["heads"]:
        print(f"| {r['loss_type']} | {r['precision']} | {r['update_relative_difference']:.1e} |")
    print("\n| configuration | tokens/s | x TRL dft | model TFLOP/s | peak memory GiB |")
    print("| --- | --- | --- | --- | --- |")
    for r in result["throughput"]["runs"]:
        memory = "-" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.1f}"
        print(f"| {r['configuration']} | {r['tokens_per_second']:.0f} | {r['ratio_to_trl_dft']:.2f} | "
              f"{r['model_tflops_per_second']:.0f} | {memory} |")


if __name__ == "__main__":
    main()
