"""What `bft` relies on in TRL, transformers and DeepSpeed beyond their documented API (`bft.upstream`), one test
per name. An upgrade that moves or reshapes any of it fails here, with a message that says what `bft` reads and
where, instead of training something else quietly."""

import importlib
import inspect

import pytest
import torch
import trl
from transformers import AttentionMaskInterface, AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

from bft import upstream
from bft.data.training import load_training_dataset
from bft.trainer import BFTConfig, BFTTrainer


@pytest.fixture(scope="module")
def trainer(tiny_model, tmp_path_factory):
    config = BFTConfig(output_dir=str(tmp_path_factory.mktemp("contract")), loss_type="bft", report_to="none",
                       bf16=False, padding_free=True, lm_head="trl")
    with BFTTrainer(model=tiny_model, args=config, train_dataset=load_training_dataset("demo").select(range(4)),
                    processing_class=AutoTokenizer.from_pretrained(tiny_model)) as trainer:
        yield trainer


def test_trl_is_the_pinned_minor_version():
    assert trl.__version__.startswith("1.16."), f"TRL {trl.__version__}: bft is written against 1.16 (pyproject.toml)"


@pytest.mark.parametrize("name", upstream.TRAINER_ATTRIBUTES)
def test_trainer_attributes(trainer, name):
    assert hasattr(trainer, name), f"TRL/transformers no longer set `{name}` ({upstream.TRAINER_ATTRIBUTES[name]})"


@pytest.mark.parametrize("owner, name", upstream.OVERRIDDEN_METHODS)
def test_overridden_and_called_methods_keep_their_parameters(owner, name):
    module, cls = owner.rsplit(".", 1)
    method = getattr(getattr(importlib.import_module(module), cls), name, None)
    parameters, why = upstream.OVERRIDDEN_METHODS[owner, name]
    assert method is not None, f"{owner}.{name} is gone ({why})"
    found = tuple(inspect.signature(method).parameters)[1:len(parameters) + 1]
    assert found == parameters, f"{owner}.{name} now takes {found}, not {parameters} ({why})"


def test_sft_trainer_logs_the_metrics_and_tokens_we_add(trainer):
    """`log_metric`, `add_trained_tokens` and `set_logged_tokens` write SFTTrainer's `_metrics` and
    `_total_train_tokens`; SFTTrainer must still average and log them."""
    trainer.model.train()
    before = upstream.trained_tokens(trainer)
    upstream.log_metric(trainer, "train", "entropy", 1.0)
    upstream.log_metric(trainer, "train", "entropy", 2.0)
    upstream.add_trained_tokens(trainer, 10)
    upstream.set_logged_tokens(trainer, "train")
    trainer.log({})
    assert upstream.trained_tokens(trainer) == before + 10
    logged = trainer.state.log_history[-1]
    assert logged["entropy"] == 1.5 and logged["num_tokens"] == before + 10, (
        f"SFTTrainer no longer logs what BFTTrainer._record adds to `_metrics`: {logged}")


def test_the_loss_sum_of_a_train_call_is_its_training_loss_times_its_steps(tiny_model, tmp_path):
    """`session_loss_sum` (transformers' `_total_loss_scalar` and `_tr_loss`) adds up the step losses of the current
    `train()` call, logged or not: what a checkpoint records for a resumed run's train_loss (run_totals.RunTotals)."""
    from transformers import TrainerCallback

    seen = {}

    class AtSave(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            seen[state.global_step] = upstream.session_loss_sum(trainer)

    config = BFTConfig(output_dir=str(tmp_path), loss_type="nll", report_to="none", bf16=False, max_steps=3,
                       logging_steps=2, save_strategy="steps", save_steps=1, per_device_train_batch_size=2,
                       disable_tqdm=True)
    with BFTTrainer(model=tiny_model, args=config, train_dataset=load_training_dataset("demo").select(range(6)),
                    processing_class=AutoTokenizer.from_pretrained(tiny_model), callbacks=[AtSave()]) as trainer:
        result = trainer.train()
    logged = [row["loss"] for row in trainer.state.log_history if "loss" in row]  # step 2: the mean of steps 1-2
    assert sorted(seen) == [1, 2, 3], f"on_save at steps {sorted(seen)}"
    assert seen[2] == pytest.approx(2 * logged[0], rel=1e-3), "the loss sum no longer covers the logged steps"
    assert seen[3] == pytest.approx(3 * result.training_loss, rel=1e-6), (
        "the loss sum at the last step is no longer what train() divides by its steps for training_loss")
    assert 0 < seen[1] < seen[2] < seen[3]


def test_router_aux_loss_flag(trainer):
    assert upstream.uses_router_aux_loss(trainer) is False, "a dense model got a router loss, or the flag moved"


def test_fused_head_outputs(trainer):
    """TRL's fused head (what SFTTrainer installs, lm_head='trl') returns the per-token fields BFTTrainer reads."""
    batch = trainer.data_collator([trainer.train_dataset[0], trainer.train_dataset[1]])
    with torch.no_grad():
        outputs = trainer.model(**batch, fused_lm_head=True, use_cache=False)
    shape = (batch["input_ids"].shape[0], batch["input_ids"].shape[1] - 1)
    for name in upstream.FUSED_HEAD_FIELDS:
        value = getattr(outputs, name, None)
        assert isinstance(value, torch.Tensor) and value.shape == shape, (
            f"TRL's fused head output `{name}` changed: on GPUs BFTTrainer reads it per token, {shape}")
    assert torch.equal(outputs.label_mask, batch["labels"][:, 1:] != -100)


def test_lm_head_gather_is_a_context_over_parameters():
    """`gather_lm_head` (TRL's `maybe_gather_lm_head_ctx`): any number of parameters; without ZeRO-3, a no-op."""
    kinds = [p.kind for p in inspect.signature(upstream.maybe_gather_lm_head_ctx).parameters.values()]
    assert kinds == [inspect.Parameter.VAR_POSITIONAL], "maybe_gather_lm_head_ctx no longer takes *params"
    weight = torch.nn.Parameter(torch.ones(3, 2))
    with upstream.gather_lm_head(weight):
        assert weight.shape == (3, 2)


def test_attention_implementation_reads_what_transformers_set(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation="eager")
    assert upstream.attention_implementation(model) == "eager"
    model.set_attn_implementation("sdpa")
    assert upstream.attention_implementation(model) == "sdpa", (
        "config._attn_implementation no longer follows set_attn_implementation: BFTTrainer decides on segment "
        "attention from it")


def test_sdpa_attention_forward_shape():
    """bft.attention falls back to it for batches that are not packed: (module, q, k, v, mask, **kw) -> (out, _)."""
    parameters = list(inspect.signature(upstream.sdpa_attention_forward).parameters)
    assert parameters[:5] == ["module", "query", "key", "value", "attention_mask"]
    query = torch.randn(1, 2, 4, 8)
    module = torch.nn.Module()
    module.is_causal = True
    output, _ = upstream.sdpa_attention_forward(module, query, query, query, None)
    assert output.shape == (1, 4, 2, 8), "sdpa_attention_forward returns another layout than [batch, T, heads, d]"


def test_sdpa_mask_is_transformers_sdpa_mask():
    """bft.attention registers transformers' own `sdpa` mask for `bft_sdpa`."""
    assert AttentionMaskInterface()["sdpa"] is upstream.sdpa_mask


def test_is_triton_available():
    assert isinstance(upstream.is_triton_available(), bool)


def test_padding_free_collator(trainer):
    assert getattr(trainer.data_collator, "padding_free", None) is True, (
        "TRL's DataCollatorForLanguageModeling lost `padding_free`: BFTTrainer switches it on for padding-free "
        "batches without packing")
    batch = trainer.data_collator([trainer.train_dataset[0], trainer.train_dataset[1]])
    assert "attention_mask" not in batch and batch["position_ids"].shape[0] == 1, (
        "padding-free batches changed shape: bft.trainer._count_trained_samples and _segment_ids read position_ids")


def test_collator_pads_rows_by_pad_token_id():
    """bft.weight_tracking builds TRL's collator from `pad_token_id` alone, for padded rows."""
    collate = upstream.DataCollatorForLanguageModeling(pad_token_id=0)
    batch = collate([{"input_ids": [5, 6, 7]}, {"input_ids": [8]}])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist() == [[5, 6, 7], [8, -100, -100]]


def test_grpo_token_logps(tiny_model, tmp_path, demo_records):
    """GRPOTrainer's completion scoring returns per-token log-probs (and entropies) of the last tokens."""
    from datasets import Dataset
    from trl import GRPOTrainer

    from bft import rewards
    from bft.grpo import BFTGRPOConfig

    config = BFTGRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, num_generations=2, bf16=False,
                           report_to="none", max_completion_length=4)
    trainer = GRPOTrainer(model=tiny_model, reward_funcs=[rewards.go_naming_format], args=config,
                          train_dataset=Dataset.from_list([{"prompt": r["messages"][:1], "answer": "x"}
                                                           for r in demo_records[:2]]),
                          processing_class=AutoTokenizer.from_pretrained(tiny_model))
    input_ids = torch.randint(3, 300, (2, 9))
    with torch.no_grad():
        logps, entropies = upstream.grpo_token_logps(trainer, trainer.model, input_ids, torch.ones_like(input_ids), 3,
                                                     compute_entropy=True)
        full = torch.log_softmax(trainer.model(input_ids=input_ids).logits[:, -4:-1].float(), -1)
    torch.testing.assert_close(logps, full.gather(2, input_ids[:, -3:, None])[..., 0], rtol=1e-4, atol=1e-4)
    assert entropies.shape == (2, 3)


def test_deepspeed_compatible_ops_cache():
    """`skip_deepspeed_op` marks an op in DeepSpeed's cache of compatible ops, which its builders consult."""
    ops = pytest.importorskip("deepspeed.ops")
    assert "deepspeed_shm_comm" in ops.__compatible_ops__, "deepspeed.ops.__compatible_ops__ moved or lost the op"
    before = ops.__compatible_ops__["deepspeed_shm_comm"]
    try:
        upstream.skip_deepspeed_op("deepspeed_shm_comm")
        assert ops.__compatible_ops__["deepspeed_shm_comm"] is False
    finally:
        ops.__compatible_ops__["deepspeed_shm_comm"] = before


def test_sft_trainer_still_refuses_other_loss_types(tiny_model, tmp_path):
    """BFTTrainer hides its loss type from SFTTrainer's check during __init__; if TRL drops the check, so can we."""
    config = SFTConfig(output_dir=str(tmp_path), loss_type="bft", report_to="none", bf16=False, use_cpu=True)
    with pytest.raises(ValueError, match="loss_type"):
        SFTTrainer(model=tiny_model, args=config, train_dataset=load_training_dataset("demo").select(range(2)),
                   processing_class=AutoTokenizer.from_pretrained(tiny_model))
