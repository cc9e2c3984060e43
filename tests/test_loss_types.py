"""The table of loss types: every entry is complete and consistent with BFTConfig, and each loss's table entry is
what the trainer acts on (the updates themselves are checked in tests/test_trainer.py)."""

import dataclasses

import pytest

from bft.loss_types import LOSS_TYPES, diagnostics, loss_type
from bft.trainer import BFTConfig, BFTTrainer


def test_every_entry_names_real_settings_and_a_source():
    config_fields = {f.name for f in dataclasses.fields(BFTConfig)}
    for name, loss in LOSS_TYPES.items():
        assert loss.name == name and loss.source
        assert set(loss.fields) <= config_fields, name
        for field_name in filter(None, (loss.topk_field,)):
            assert field_name in loss.fields
    # every loss setting of BFTConfig belongs to some loss
    own = {f.name for f in dataclasses.fields(BFTConfig) if f.name.split("_")[0] in LOSS_TYPES}
    assert own <= {field_name for loss in LOSS_TYPES.values() for field_name in loss.fields}
    assert set(diagnostics()) == {n for loss in LOSS_TYPES.values() for n in loss.diagnostics}


def test_an_unknown_loss_type_names_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="nll, dft, bft, asft, eaft"):
        loss_type("focal")
    with pytest.raises(ValueError, match="nll, dft, bft, asft, eaft"):
        BFTConfig(output_dir=str(tmp_path), loss_type="focal")


@pytest.mark.parametrize("name", list(LOSS_TYPES))
def test_the_trainer_follows_the_table(tiny_model, tmp_path, name):
    """What the trainer asks of the head and how it counts a step come from the loss's entry."""
    from bft.data.training import load_training_dataset

    loss = LOSS_TYPES[name]
    config = BFTConfig(output_dir=str(tmp_path), loss_type=name, report_to="none", bf16=False, use_cpu=True,
                       per_device_train_batch_size=3)
    data = load_training_dataset("demo").select(range(3))
    trainer = BFTTrainer(model=tiny_model, args=config, train_dataset=data)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(3)])
    count = int(trainer._get_num_items_in_batch([batch], trainer.args.device))
    trained_tokens = int((batch["labels"][:, 1:] != -100).sum())
    assert count == (3 if loss.per_sample else trained_tokens)
    assert (trainer.ref_model is not None) == loss.needs_reference  # full fine-tuning: a frozen copy
    loss_value = trainer.compute_loss(trainer.model, dict(batch), num_items_in_batch=count)
    assert loss_value.requires_grad
