"""What BFTTrainer relies on in TRL and transformers beyond their documented API. An upgrade that changes any of
it fails here, with a message that says what `bft` reads and where, instead of training something else quietly."""

import inspect

import pytest
import trl
from transformers import AutoTokenizer, Trainer
from trl import SFTConfig, SFTTrainer

from bft.data.training import load_training_dataset
from bft.trainer import BFTConfig, BFTTrainer


@pytest.fixture(scope="module")
def trainer(tiny_model, tmp_path_factory):
    config = BFTConfig(output_dir=str(tmp_path_factory.mktemp("contract")), loss_type="bft", report_to="none",
                       bf16=False, padding_free=True)
    return BFTTrainer(model=tiny_model, args=config, train_dataset=load_training_dataset("demo").select(range(4)),
                      processing_class=AutoTokenizer.from_pretrained(tiny_model))


def test_trl_is_the_pinned_minor_version():
    assert trl.__version__.startswith("1.16."), f"TRL {trl.__version__}: bft is written against 1.16 (pyproject.toml)"


@pytest.mark.parametrize("name, reader", [
    ("_metrics", "BFTTrainer._record appends entropy/accuracy/num_tokens to it"),
    ("_total_train_tokens", "BFTTrainer._record counts the trained tokens"),
    ("_tp_size", "BFTTrainer._record divides the token count by it"),
    ("aux_loss_enabled", "BFTTrainer._check_loss_path refuses MoE router losses for its own losses"),
    ("label_smoother", "BFTTrainer._check_loss_path leaves label smoothing to TRL"),
    ("compute_loss_func", "BFTTrainer._check_loss_path leaves custom losses to TRL"),
    ("loss_is_scaled_for_ga", "BFTTrainer sets it: its losses divide by the whole step's count"),
])
def test_trainer_attributes(trainer, name, reader):
    assert hasattr(trainer, name), f"TRL/transformers no longer set `{name}` ({reader})"


def test_padding_free_collator(trainer):
    assert getattr(trainer.data_collator, "padding_free", None) is True, (
        "TRL's DataCollatorForLanguageModeling lost `padding_free`: BFTTrainer switches it on for padding-free "
        "batches without packing")
    batch = trainer.data_collator([trainer.train_dataset[0], trainer.train_dataset[1]])
    assert "attention_mask" not in batch and batch["position_ids"].shape[0] == 1, (
        "padding-free batches changed shape: bft.trainer._count_samples and _segment_ids read position_ids")


def test_overridden_methods_keep_their_signatures():
    assert list(inspect.signature(Trainer._get_num_items_in_batch).parameters) == ["self", "batch_samples", "device"]
    assert list(inspect.signature(Trainer.evaluation_loop).parameters)[1:6] == [
        "dataloader", "description", "prediction_loss_only", "ignore_keys", "metric_key_prefix"]
    assert "num_items_in_batch" in inspect.signature(SFTTrainer.compute_loss).parameters


def test_sft_trainer_still_refuses_other_loss_types(tiny_model, tmp_path):
    """BFTTrainer hides its loss type from SFTTrainer's check during __init__; if TRL drops the check, so can we."""
    config = SFTConfig(output_dir=str(tmp_path), loss_type="bft", report_to="none", bf16=False, use_cpu=True)
    with pytest.raises(ValueError, match="loss_type"):
        SFTTrainer(model=tiny_model, args=config, train_dataset=load_training_dataset("demo").select(range(2)),
                   processing_class=AutoTokenizer.from_pretrained(tiny_model))


def test_fused_head_outputs_and_zero3_gather():
    from trl.trainer.utils import FusedCausalLMOutput, add_fused_lm_head, maybe_gather_lm_head_ctx

    fields = set(FusedCausalLMOutput.__dataclass_fields__)
    assert {"log_probs", "entropy", "is_top1", "label_mask", "aux_loss"} <= fields, (
        "TRL's fused head outputs changed: on GPUs BFTTrainer reads log_probs, entropy, is_top1, label_mask")
    assert callable(add_fused_lm_head) and callable(maybe_gather_lm_head_ctx)
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling  # bft.weight_tracking pads rows with it

    assert "padding_free" in DataCollatorForLanguageModeling.__dataclass_fields__
