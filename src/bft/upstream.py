"""What `bft` uses of TRL, transformers and DeepSpeed that they do not promise.

Private names, module paths outside their documented API, and attributes their trainers keep for themselves: the
rest of the project takes each of them from here, and tests/test_trl_contract.py has one test per name that fails,
saying what reads it, when an upgrade moves or reshapes it. Written against TRL 1.16 and transformers 5. (Of PEFT
and accelerate, only documented API is used.)

Three kinds of use cannot be wrapped, and are listed instead, for the contract tests:
`TRAINER_ATTRIBUTES` (attributes of TRL's and transformers' trainers that `BFTTrainer` reads or sets),
`OVERRIDDEN_METHODS` (trainer methods `BFTTrainer` overrides or calls, with the parameters it relies on) and the
`fused_lm_head=True` call contract of TRL's fused LM head (`FUSED_HEAD_FIELDS`), which `bft.lm_head` also serves.
"""

import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward  # noqa: F401 (re-exported)
from transformers.masking_utils import sdpa_mask  # noqa: F401 (re-exported)
from transformers.utils import is_triton_available  # noqa: F401 (re-exported)
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling  # noqa: F401 (re-exported)
from trl.trainer.utils import maybe_gather_lm_head_ctx

# transformers: `sdpa_attention_forward` (the `sdpa` AttentionInterface function) and `sdpa_mask` (its mask) are
# what `bft.attention` falls back to and registers its mask with; transformers' docs show them in examples, but
# their modules are not part of the documented API. `is_triton_available`: whether TRL's Triton head can run.
# TRL: `DataCollatorForLanguageModeling` pads rows exactly as SFTTrainer does (bft.weight_tracking); it is not
# exported at the package level.

# Set by transformers' Trainer or TRL's SFTTrainer in __init__; name -> what BFTTrainer does with it
TRAINER_ATTRIBUTES = {
    "_metrics": "BFTTrainer._record appends entropy, accuracy and num_tokens to it (through log_metric)",
    "_total_train_tokens": "BFTTrainer._record counts the trained tokens (add_trained_tokens, trained_tokens)",
    "_tp_size": "add_trained_tokens divides the token count by it, as SFTTrainer does",
    "aux_loss_enabled": "BFTTrainer._check_loss_path refuses MoE router losses for its own losses",
    "label_smoother": "BFTTrainer._check_loss_path leaves label smoothing to TRL",
    "compute_loss_func": "BFTTrainer._check_loss_path leaves custom losses to TRL",
    "loss_is_scaled_for_ga": "BFTTrainer sets it: its losses divide by the whole step's count",
    "is_fsdp_enabled": "BFTTrainer refuses ASFT's reference copy under FSDP",
    "is_deepspeed_enabled": "BFTTrainer refuses ASFT's reference copy under DeepSpeed",
}

# (class, method) -> (parameters BFTTrainer relies on, in order after self; why)
OVERRIDDEN_METHODS = {
    ("transformers.Trainer", "_get_num_items_in_batch"): (
        ("batch_samples", "device"), "BFTTrainer counts the whole optimizer step's samples or tokens"),
    ("transformers.Trainer", "evaluation_loop"): (
        ("dataloader", "description", "prediction_loss_only", "ignore_keys", "metric_key_prefix"),
        "BFTTrainer reduces the eval loss over the whole set; it reads metric_key_prefix by position"),
    ("trl.SFTTrainer", "compute_loss"): (
        ("model", "inputs", "return_outputs", "num_items_in_batch"), "BFTTrainer computes its own losses"),
    ("trl.SFTTrainer", "log"): (("logs", "start_time"), "BFTTrainer adds its diagnostics to the logged metrics"),
    ("trl.GRPOTrainer", "_get_per_token_logps_and_entropies"): (
        ("model", "input_ids", "attention_mask", "logits_to_keep", "batch_size", "compute_entropy"),
        "GRPO's completion scoring, checked against the token head (benchmarks/grpo_scoring.py)"),
}

# Fields of TRL's FusedCausalLMOutput (what `model(..., labels=..., fused_lm_head=True)` returns after
# SFTTrainer's `add_fused_lm_head`) that BFTTrainer reads; bft.lm_head.TokenHeadOutput has them too
FUSED_HEAD_FIELDS = ("log_probs", "entropy", "is_top1", "label_mask")


def gather_lm_head(*parameters: torch.nn.Parameter):
    """A context manager that gathers the LM head's parameters where DeepSpeed ZeRO-3 holds them as shards (TRL's
    `maybe_gather_lm_head_ctx`, private to its trainers); a no-op otherwise."""
    return maybe_gather_lm_head_ctx(*parameters)


def attention_implementation(model) -> str:
    """The attention implementation a transformers model uses (`config._attn_implementation`: transformers has no
    public getter; `set_attn_implementation` is the public setter)."""
    return model.config._attn_implementation


def log_metric(trainer, mode: str, name: str, value: float) -> None:
    """Add `value` to the metric `name` that SFTTrainer averages and logs at the next log (`_metrics`)."""
    trainer._metrics[mode][name].append(value)


def add_trained_tokens(trainer, tokens: int) -> None:
    """Count `tokens` (summed over processes) as trained, as SFTTrainer counts them (divided by the tensor-parallel
    degree)."""
    trainer._total_train_tokens += tokens // trainer._tp_size


def trained_tokens(trainer) -> int:
    """Tokens trained so far (SFTTrainer's `_total_train_tokens`: inputs, prompts included, padding excluded)."""
    return trainer._total_train_tokens


def set_trained_tokens(trainer, tokens: int) -> None:
    """Start the count of trained tokens at `tokens` (a resumed run's, `bft.run_totals.RunTotals`): SFTTrainer's
    count starts at 0 in every `train()` call."""
    trainer._total_train_tokens = tokens


def session_loss_sum(trainer) -> float:
    """The sum of the step losses of the current `train()` call so far (transformers' `_total_loss_scalar`, drained
    from `_tr_loss` at each logging step as its mean over the processes, plus `_tr_loss` since, gathered alike: a
    collective call, made on every process; both set by `train()`, not `__init__`): its `training_loss` times its
    steps, at the end."""
    return trainer._total_loss_scalar + float(trainer.accelerator.gather(trainer._tr_loss.detach()).mean().item())


def set_logged_tokens(trainer, mode: str) -> None:
    """Log the running token count as `num_tokens` in `mode` (SFTTrainer's `_metrics`)."""
    trainer._metrics[mode]["num_tokens"] = [trainer._total_train_tokens]


def uses_router_aux_loss(trainer) -> bool:
    """Whether SFTTrainer adds a MoE router's auxiliary loss (`aux_loss_enabled`)."""
    return trainer.aux_loss_enabled


def grpo_token_logps(trainer, model, input_ids, attention_mask, logits_to_keep, compute_entropy=False):
    """GRPOTrainer's scoring of completions (`_get_per_token_logps_and_entropies`): `(log_probs, entropies)` of the
    last `logits_to_keep` tokens, `[batch, logits_to_keep]` each (`entropies` None unless asked for)."""
    logps, entropies, _ = trainer._get_per_token_logps_and_entropies(model, input_ids, attention_mask, logits_to_keep,
                                                                     compute_entropy=compute_entropy)
    return logps, entropies


def skip_deepspeed_op(name: str) -> None:
    """Mark DeepSpeed's C++ op `name` unavailable, so that DeepSpeed never compiles it (`deepspeed.ops`'s
    `__compatible_ops__`, a cache it fills on first use)."""
    import deepspeed.ops

    compatible = getattr(deepspeed.ops, "__compatible_ops__", None)
    if isinstance(compatible, dict):
        compatible[name] = False
