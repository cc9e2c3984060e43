"""One SGD optimizer step of BFTTrainer on the first 6 demo examples; saves the parameter update.

Used by the tests in-process and under `accelerate launch` (DDP, FSDP or DeepSpeed on CPU), so that both run the
very same code. Several runs train one after another in the same processes (one launch, one start-up):
    python -m tests.one_step MODEL OUT.pt RUNS
RUNS is a JSON object {name: one_step's keyword arguments (loss_type, batch_size, grad_accum, config fields),
"lora": true for `tiny_lora()`, "tracked": true for every sample's P_b after the step (`SampleWeightTracker`)}; OUT.pt
then holds {name: {"update": the update, "log_history": the trainer's log, "tracked": the P_b}}.
"""

import copy
import functools
import json
import os
import subprocess
import sys
import tempfile
from contextlib import nullcontext
from pathlib import Path

import torch


def one_step(model_folder, loss_type, batch_size, grad_accum, packing=False, dtype=torch.float32, bf16=False,
             peft_config=None, trainer_class=None, train_dataset=None, **settings):
    """The parameter update (trained parameters only, in order, in their dtype) and the trainer; `settings` go to
    the config; `train_dataset` replaces the first 6 demo examples."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bft.data.training import load_training_dataset
    from bft.trainer import BFTConfig, BFTTrainer

    fields = dict(
        output_dir=tempfile.mkdtemp(), loss_type=loss_type, per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=grad_accum, max_steps=1, learning_rate=1.0, optim="sgd",
        lr_scheduler_type="constant", weight_decay=0.0, max_grad_norm=0.0, report_to="none", save_strategy="no",
        logging_steps=1, bft_group_size=4, disable_tqdm=True, packing=packing, max_length=2048, seed=0,
        bf16=bf16, use_cpu=True,
    )
    fields.update(settings)
    if trainer_class is None:
        trainer_class, config = BFTTrainer, BFTConfig(**fields)
    else:  # TRL's own SFTTrainer, for parity
        from trl import SFTConfig

        config = SFTConfig(**{k: v for k, v in fields.items() if not k.startswith("bft_")})
    # after the config: under DeepSpeed ZeRO-3 the model is then loaded in shards, as `bft train` loads it
    model = AutoModelForCausalLM.from_pretrained(model_folder, dtype=dtype)
    if train_dataset is None:
        train_dataset = load_training_dataset("demo").select(range(6))
    trainer = trainer_class(model=model, args=config, train_dataset=train_dataset,
                            processing_class=AutoTokenizer.from_pretrained(model_folder), peft_config=peft_config)
    before = _whole_parameters(trainer.model)
    trainer.train()
    # read the parameters again: FSDP and DeepSpeed replace them by sharded ones
    after = _whole_parameters(trainer.accelerator.unwrap_model(trainer.model))
    update = torch.cat([(after[name] - before[name]).flatten() for name in before])
    return update, trainer


def stored_step(model_folder, loss_type, batch_size, grad_accum, **settings):
    """`run`'s (update, log history), computed once per test process for each distinct run: the baseline that
    several tests compare against. Every call returns copies of its own. The first call's result is every later
    call's, so never call it under a patch; a test that inspects the trainer calls `one_step` itself."""
    update, log_history = _stored_step(model_folder, loss_type, batch_size, grad_accum, tuple(sorted(settings.items())))
    return update.clone(), copy.deepcopy(log_history)


@functools.cache
def _stored_step(model_folder, loss_type, batch_size, grad_accum, settings):
    arguments = dict(settings, loss_type=loss_type, batch_size=batch_size, grad_accum=grad_accum)
    update, trainer = run(model_folder, arguments)
    return update, trainer.state.log_history


def _whole_parameters(model) -> dict:
    """A copy of every trained parameter (in its dtype), whole: FSDP2's and DeepSpeed ZeRO-3's shards are gathered."""
    trained = {name: p for name, p in model.named_parameters() if p.requires_grad}
    with _zero3_gathered(list(trained.values())):
        return {name: (p.full_tensor() if hasattr(p, "full_tensor") else p).detach().clone()
                for name, p in trained.items()}


def _zero3_gathered(parameters):
    if not any(hasattr(p, "ds_id") for p in parameters):
        return nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters(parameters)


def launch(model_folder, out_folder, runs, *launch_args, env=None) -> dict:
    """`runs` ({name: `run`'s arguments}) on 2 CPU processes through `accelerate launch`, one after another in the
    same processes; returns {name: {"update": ..., "log_history": ...}} as the main process saw them."""
    out = Path(out_folder) / "updates.pt"
    run_launched(*launch_args, "-m", "tests.one_step", str(model_folder), str(out), json.dumps(runs), env=env)
    return torch.load(out)


def run_launched(*arguments, env=None) -> subprocess.CompletedProcess:
    """`accelerate launch` on 2 processes in float32 with `arguments` (a config file, the module and its arguments),
    from the repository root with this checkout's code first on the path and `env` added to the environment; a
    failure shows the end of its errors."""
    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", *arguments]
    env = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def run(model_folder, arguments: dict):
    """`one_step` with JSON-able arguments: one_step's own, and `"lora": true` for `tiny_lora()`."""
    arguments = dict(arguments)
    peft_config = tiny_lora() if arguments.pop("lora", False) else None
    return one_step(model_folder, **arguments, peft_config=peft_config)


def relative_difference(a, b) -> float:
    return ((a - b).norm() / b.norm()).item()


def tiny_lora():
    from peft import LoraConfig

    return LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")


if __name__ == "__main__":
    folder, out, runs = sys.argv[1:4]
    results = {}
    for name, arguments in json.loads(runs).items():
        tracked = arguments.pop("tracked", False)
        update, trainer = run(folder, arguments)
        results[name] = {"update": update, "log_history": trainer.state.log_history}
        if tracked:  # every sample's P_b after the step, each process scoring its share
            from bft.weight_tracking import SampleWeightTracker

            results[name]["tracked"] = SampleWeightTracker(trainer, Path(out).parent / "weights.json",
                                                           batch_size=2).min_group_confidences()
    if trainer.is_world_process_zero():
        torch.save(results, out)
    trainer.accelerator.wait_for_everyone()
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()  # else gloo's threads may abort the process at exit
