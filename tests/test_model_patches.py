"""BFTTrainer patches the model it trains (forward, attention, PEFT's adapter input casts) and gives it back as it
came: after `train()`, after `bft inspect`'s scoring, and when building the trainer fails."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from bft import upstream
from bft.data.training import load_training_dataset
from bft.trainer import BFTConfig, BFTTrainer, NoTrainedTokens
from tests.one_step import one_step, tiny_lora
from tests.test_empty_data import all_cut


def assert_unpatched(model, attention="sdpa"):
    """The forward is the class's (no instance attribute over it) and the attention is what the model had."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    assert "forward" not in vars(base), f"a patched forward is left on the model: {base.forward}"
    assert base.forward.__func__ is type(base).forward
    assert upstream.attention_implementation(base) == attention


def token_head_serves(model) -> bool:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.forward.__func__.__code__.co_qualname.startswith("install_token_head")


def test_train_restores_the_model_and_evaluate_after_it_patches_it_again(tiny_model):
    """Trained on CPU through the token head and segment attention; then the model's own forward and sdpa. An
    evaluation afterwards computes the loss through the patches again, and gives the model back unpatched."""
    _, trainer = one_step(tiny_model, "bft", 2, 1, padding_free=True)
    assert_unpatched(trainer.model)
    with trainer.patched():  # what training ran with
        assert token_head_serves(trainer.model)
        assert upstream.attention_implementation(trainer.model) == "bft_sdpa"
    assert_unpatched(trainer.model)
    metrics = trainer.evaluate(load_training_dataset("demo").select(range(3)))
    assert metrics["eval_loss"] > 0
    assert_unpatched(trainer.model)


def test_lora_under_bf16_gets_its_adapter_input_casts_back(tiny_model):
    _, trainer = one_step(tiny_model, "dft", 2, 1, bf16=True, peft_config=tiny_lora())
    layers = [m for m in trainer.model.modules() if hasattr(m, "cast_input_dtype_enabled")]
    assert layers and all(m.cast_input_dtype_enabled for m in layers)
    with trainer.patched():
        assert not any(m.cast_input_dtype_enabled for m in layers)
    assert_unpatched(trainer.model)


def test_a_with_block_restores_the_model(tiny_model, tmp_path):
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    config = BFTConfig(output_dir=str(tmp_path), loss_type="bft", report_to="none", bf16=False)
    with BFTTrainer(model=model, args=config, train_dataset=load_training_dataset("demo").select(range(2)),
                    processing_class=AutoTokenizer.from_pretrained(tiny_model)):
        assert token_head_serves(model) and upstream.attention_implementation(model) == "bft_sdpa"
    assert_unpatched(model)


def test_a_trainer_that_cannot_be_built_leaves_the_model_as_it_was(tiny_model, tmp_path):
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    config = BFTConfig(output_dir=str(tmp_path), loss_type="bft", report_to="none", bf16=False, max_length=64)
    with pytest.raises(NoTrainedTokens):
        BFTTrainer(model=model, args=config, train_dataset=all_cut(),
                   processing_class=AutoTokenizer.from_pretrained(tiny_model))
    assert_unpatched(model)


def test_inspect_gives_the_model_back_unpatched(tiny_model, tmp_path, demo_records):
    """`bft inspect` builds a trainer per data set to tokenize and score: the model comes back unpatched each time,
    and scores the second set as the first (not through a head stacked on a head)."""
    from bft import inspection
    from bft.models import load_model

    data = tmp_path / "demo.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in demo_records[:3]))
    model, tokenizer = load_model(tiny_model)
    attention = upstream.attention_implementation(model)
    first = inspection.score_dataset(model, tokenizer, str(data))
    assert_unpatched(model, attention)
    second = inspection.score_dataset(model, tokenizer, str(data))
    assert_unpatched(model, attention)
    for a, b in zip(first, second):
        torch.testing.assert_close(torch.tensor(a["logprobs"]), torch.tensor(b["logprobs"]))


def test_grpo_gives_the_model_back_unpatched(tiny_model, tmp_path, demo_records):
    """`bft grpo`'s trainer scores through TRL's fused head and, on CPU, the token head over it; after `train()` the
    model has its own forward again, and `patched()` puts the heads back for a while."""
    from datasets import Dataset

    from bft import rewards
    from bft.grpo import BFTGRPOConfig, BFTGRPOTrainer
    from bft.models import load_model

    model, tokenizer = load_model(tiny_model)
    tokenizer.padding_side = "left"
    prompts = Dataset.from_list([{"prompt": r["messages"][:1], "answer": "x"} for r in demo_records[:2]])
    config = BFTGRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, num_generations=2, max_steps=1,
                           max_completion_length=3, bf16=False, report_to="none", save_strategy="no",
                           disable_tqdm=True)
    trainer = BFTGRPOTrainer(model=model, reward_funcs=[rewards.go_naming_format], args=config,
                             train_dataset=prompts, processing_class=tokenizer)
    assert token_head_serves(model)
    trainer.train()
    assert trainer.state.global_step == 1
    assert_unpatched(model)
    with trainer.patched():
        assert token_head_serves(model)
    assert_unpatched(model)
