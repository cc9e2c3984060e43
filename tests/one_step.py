"""One SGD optimizer step of BFTTrainer on the first 6 demo examples; saves the parameter update.

Used by the tests in-process and under `accelerate launch` (DDP or FSDP on CPU), so that both run the very same code:
    python -m tests.one_step MODEL OUT.pt LOSS_TYPE PER_DEVICE_BATCH GRAD_ACCUM [FIELD=VALUE ...]
"""

import sys
import tempfile

import torch


def one_step(model_folder, loss_type, batch_size, grad_accum, packing=False, dtype=torch.float32, bf16=False,
             peft_config=None, trainer_class=None, **settings):
    """The parameter update (trained parameters only, in order, in their dtype) and the trainer; `settings` go to
    the config."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bft.data.training import load_training_dataset
    from bft.trainer import BFTConfig, BFTTrainer

    model = AutoModelForCausalLM.from_pretrained(model_folder, dtype=dtype)
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
    trainer = trainer_class(model=model, args=config, train_dataset=load_training_dataset("demo").select(range(6)),
                            processing_class=AutoTokenizer.from_pretrained(model_folder), peft_config=peft_config)
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    # read the parameters again: FSDP replaces them by sharded ones
    after = dict(trainer.accelerator.unwrap_model(trainer.model).named_parameters())
    update = torch.cat([(_whole(after[name]).detach() - before[name]).flatten() for name in before])
    return update, trainer


def _whole(parameter):
    return parameter.full_tensor() if hasattr(parameter, "full_tensor") else parameter


if __name__ == "__main__":
    import yaml

    folder, out, loss_type, batch, accum = sys.argv[1:6]
    settings = {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in sys.argv[6:])}
    update, trainer = one_step(folder, loss_type, int(batch), int(accum), **settings)
    if trainer.is_world_process_zero():
        torch.save(update, out)
    trainer.accelerator.wait_for_everyone()
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()  # else gloo's threads may abort the process at exit
