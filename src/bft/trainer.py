"""`BFTTrainer`: TRL's `SFTTrainer` with the BFT loss, reduced over every sample of the optimizer step.

`loss_type="nll"` and `"dft"` are TRL's own losses, untouched. `loss_type="bft"` computes `bft.losses.bft_loss` from
the per-token log-probabilities of TRL's fused LM head (the `(B, T, vocab)` logits are never built) and divides by
the number of samples in the whole optimizer step, counted across gradient-accumulation micro-batches, processes
and packed segments (METHOD.md, last section), so the update does not depend on how a batch is split.
"""

import math
import os
from dataclasses import dataclass, field

import torch
from trl import SFTConfig, SFTTrainer

from bft.losses import TOKEN_WEIGHTINGS, WINDOW_ALIGNMENTS, bft_loss

LOSS_TYPES = ("nll", "dft", "bft")
# Diagnostics logged for BFT: name -> what it summarises
DIAGNOSTICS = {
    "bft/sample_weight": "s_b = 1 - P_b ** gamma, per sample",
    "bft/min_group_conf": "P_b, the geometric-mean probability of the sample's weakest window",
    "bft/token_weight": "token weight (DFT's probability or v3's group-normalised one), per trained token",
}


@dataclass
class BFTConfig(SFTConfig):
    """`SFTConfig` plus the BFT loss. Every other field, and its default, is TRL's."""

    loss_type: str = field(
        default="nll",
        metadata={"help": "Loss: 'nll' (SFT), 'dft' (token weights = detached probability) or 'bft' (DFT's token "
                          "weights times a sample weight 1 - P_b ** gamma)."},
    )
    bft_group_size: int = field(
        default=256,
        metadata={"help": "BFT: window length g, in trained tokens, of the group confidence (and of v3's window)."},
    )
    bft_gamma: float = field(default=1.0, metadata={"help": "BFT: exponent gamma in the sample weight 1 - P_b ** gamma."})
    bft_token_weighting: str = field(
        default="prob",
        metadata={"help": "BFT token weights: 'prob' (DFT's detached probability) or 'group_norm' (v3: probability "
                          "relative to the mean probability of the token's window, clipped to [0, 1])."},
    )
    bft_window_alignment: str = field(
        default="centered",
        metadata={"help": "BFT 'group_norm' window: 'centered' on the token, or 'trailing' (the token and the g - 1 "
                          "trained tokens before it)."},
    )

    def __post_init__(self):
        if self.bf16 is None and not self.fp16 and not _bf16_device_available(self.use_cpu):
            self.bf16 = False  # TRL's default (True) refuses to start on a machine without a bf16 accelerator
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not _accelerator_available():
            # Without this, processes launched on CPUs would each train alone, never synchronising gradients
            self.use_cpu = True
        super().__post_init__()
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type must be one of {', '.join(LOSS_TYPES)}, got {self.loss_type!r}")
        if self.bft_token_weighting not in TOKEN_WEIGHTINGS:
            raise ValueError(f"bft_token_weighting must be one of {TOKEN_WEIGHTINGS}, got {self.bft_token_weighting!r}")
        if self.bft_window_alignment not in WINDOW_ALIGNMENTS:
            raise ValueError(f"bft_window_alignment must be one of {WINDOW_ALIGNMENTS}")
        if self.bft_group_size < 1 or self.bft_gamma < 0:
            raise ValueError("bft_group_size must be at least 1 and bft_gamma non-negative")


class BFTTrainer(SFTTrainer):
    """`SFTTrainer` whose `loss_type` may also be `"bft"`. Use it exactly like `SFTTrainer`."""

    _tag_names = ["trl", "sft", "bft"]

    def __init__(self, *args, **kwargs):
        config = kwargs["args"] if "args" in kwargs else (args[1] if len(args) > 1 else None)
        is_bft = config is not None and config.loss_type == "bft"
        if is_bft:
            _check_bft_supported(config, kwargs)
            config.loss_type = "nll"  # SFTTrainer validates loss_type against its own two; restored below
        try:
            super().__init__(*args, **kwargs)
        finally:
            if is_bft:
                config.loss_type = "bft"
        if is_bft:
            # compute_loss divides by the step's sample count itself, so Trainer must not divide by the GA steps
            self.loss_is_scaled_for_ga = True
        # Per mode and diagnostic: (count, sum, sum of squares) since the last log
        self._diagnostic_sums = {mode: {name: torch.zeros(3, dtype=torch.float64) for name in DIAGNOSTICS}
                                 for mode in ("train", "eval")}

    def _get_num_items_in_batch(self, batch_samples, device):
        """For BFT, the number of samples (rows, or packed segments) in the optimizer step, over all processes."""
        if self.args.loss_type != "bft":
            return super()._get_num_items_in_batch(batch_samples, device)
        count = torch.tensor(sum(_count_samples(batch) for batch in batch_samples), device=device)
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            count = self.accelerator.gather(count).sum()
        return count

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.args.loss_type != "bft" or return_outputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        mode = "train" if self.model.training else "eval"
        inputs["use_cache"] = False
        outputs = model(**inputs, fused_lm_head=True)
        loss, details = bft_loss(
            outputs.log_probs,
            outputs.label_mask,
            group_size=self.args.bft_group_size,
            gamma=self.args.bft_gamma,
            num_samples=num_items_in_batch,
            token_weighting=self.args.bft_token_weighting,
            segment_ids=_segment_ids(inputs),
            window_alignment=self.args.bft_window_alignment,
            return_details=True,
        )
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            # num_items_in_batch counts every process's samples, and DDP/FSDP/DeepSpeed average the gradients
            loss = loss * self.accelerator.num_processes
        self._record(mode, inputs, outputs, details)
        return loss

    def log(self, logs, start_time=None):
        """Adds BFT's diagnostics (mean and standard deviation since the last log) to the usual metrics."""
        if self.args.loss_type == "bft":
            mode = "train" if self.model.training else "eval"
            prefix = "" if mode == "train" else "eval_"
            for name, (count, total, squares) in self._diagnostic_sums[mode].items():
                if count > 0:
                    mean = total / count
                    logs[f"{prefix}{name}_mean"] = float(mean)
                    logs[f"{prefix}{name}_std"] = math.sqrt(max(float(squares / count - mean**2), 0.0))
                self._diagnostic_sums[mode][name].zero_()
        super().log(logs, start_time)

    def _record(self, mode, inputs, outputs, details):
        """The metrics TRL logs for its own losses (entropy, accuracy, tokens), and BFT's diagnostics."""
        gather = self.accelerator.gather
        mask = outputs.label_mask
        num_valid = gather(mask.sum()).sum()
        self._metrics[mode]["entropy"].append((gather(outputs.entropy.detach().sum()).sum() / num_valid.clamp(min=1)).item())
        self._metrics[mode]["mean_token_accuracy"].append((gather(outputs.is_top1.sum()).sum() / num_valid.clamp(min=1)).item())
        if mode == "train":
            tokens = inputs["attention_mask"].sum() if "attention_mask" in inputs else torch.tensor(inputs["position_ids"].size(1))
            self._total_train_tokens += gather(tokens.to(mask.device)).sum().item() // self._tp_size
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]

        values = {
            "bft/sample_weight": details.sample_weights,
            "bft/min_group_conf": details.min_group_confidence,
            "bft/token_weight": details.token_weights[mask],
        }
        # (count, sum, sum of squares) of each diagnostic, gathered from every process in one collective call
        stats = torch.stack([_moments(v.double()) for v in values.values()])
        totals = gather(stats[None]).sum(0).cpu()
        for name, row in zip(values, totals):
            self._diagnostic_sums[mode][name] += row


def _moments(values: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.tensor(values.numel(), dtype=values.dtype, device=values.device), values.sum(),
                        values.pow(2).sum()])


def _accelerator_available() -> bool:
    return torch.cuda.is_available() or any(
        hasattr(getattr(torch, name, None), "is_available") and getattr(torch, name).is_available()
        for name in ("xpu", "npu", "mlu", "musa", "hpu")
    )


def _bf16_device_available(use_cpu: bool) -> bool:
    if use_cpu or not _accelerator_available():
        return False
    return torch.cuda.is_bf16_supported() if torch.cuda.is_available() else True


def _check_bft_supported(config, kwargs):
    """Fail early on the TRL options whose loss paths BFT does not replace."""
    if kwargs.get("compute_loss_func") is not None:
        raise ValueError("loss_type='bft' computes its own loss: do not pass compute_loss_func")
    if config.label_smoothing_factor > 0:
        raise ValueError("loss_type='bft' does not support label_smoothing_factor")
    padding_free = config.padding_free or (config.packing and config.packing_strategy == "bfd")
    if padding_free and config.pad_to_multiple_of is not None:
        raise ValueError("loss_type='bft' with padding-free batches cannot use pad_to_multiple_of: its padding tokens "
                         "would look like extra packed samples")


def _count_samples(batch) -> int:
    """Rows of a padded batch, or sequences of a padding-free one (each starts at position id 0)."""
    if "attention_mask" not in batch and "position_ids" in batch:
        return int((batch["position_ids"] == 0).sum())
    return int(batch["input_ids"].shape[0])


def _segment_ids(inputs):
    """For padding-free batches, the sequence each label belongs to, aligned with the fused head's shifted labels."""
    if "attention_mask" in inputs or "position_ids" not in inputs:
        return None
    return (inputs["position_ids"] == 0).long().cumsum(1)[:, 1:]
