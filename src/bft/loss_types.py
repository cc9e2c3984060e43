"""The loss types of `BFTTrainer`, one table entry each: what the loss computes from the LM head's per-token figures,
what the head must compute for it, how it is reduced over an optimizer step, which settings it reads and what it
logs. The trainer, `bft compare` and its report read this table; the maths is in `bft.losses` (docs/method.md).

To add a loss: write it in `bft.losses` as a pure function of per-token log-probabilities and a mask, with parity
tests against a loop reference (tests/reference_losses.py, tests/test_losses.py); add its settings to `BFTConfig`
(bft.trainer); add one `LossType` to `LOSS_TYPES` below.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from bft.losses import asft_loss, bft_loss, dft_loss, dft_token_weights, eaft_loss, sft_loss


@dataclass(frozen=True)
class LossType:
    """One loss of the trainer.

    `compute(outputs, args, num_items, segment_ids)` returns `(loss, diagnostics)`: `outputs` is the head's output
    (`log_probs`, `label_mask` `[B, T - 1]`, and `topk_entropy` or `kl` where asked for), `args` the `BFTConfig`,
    `num_items` the step's count (trained tokens, or samples where `per_sample`), `segment_ids` the packed sequence
    of each label (`[B, T - 1]`, or None for padded rows); `diagnostics` maps names of `diagnostics` to detached
    values, whose mean and standard deviation are logged.
    """

    name: str
    compute: Callable
    source: str
    # the setting fields of BFTConfig it reads
    fields: tuple[str, ...] = ()
    # reduced per sample (divided by the step's samples with a trained token: rows or packed sequences), else per
    # trained token
    per_sample: bool = False
    # the head computes the top-k entropy, k the value of this field; the head computes the KL to the starting model
    topk_field: str | None = None
    needs_reference: bool = False
    # the loss_type of TRL's SFTTrainer that computes the same loss while `fields` keep their defaults
    trl_name: str | None = None
    # logged name -> what it summarises
    diagnostics: dict[str, str] = field(default_factory=dict)

    @property
    def needs_token_head(self) -> bool:
        """TRL's fused head computes log-probabilities only; the top-k entropy and the KL are the token head's."""
        return self.topk_field is not None or self.needs_reference


def _nll(outputs, args, num_items, segment_ids):
    return sft_loss(outputs.log_probs, outputs.label_mask, num_items), {}


def _dft(outputs, args, num_items, segment_ids):
    return dft_loss(outputs.log_probs, outputs.label_mask, num_items, args.token_weight_floor), {}


def _bft(outputs, args, num_items, segment_ids):
    mask = outputs.label_mask
    loss, details = bft_loss(
        outputs.log_probs, mask, group_size=args.bft_group_size, gamma=args.bft_gamma, num_samples=num_items,
        token_weighting=args.bft_token_weighting, segment_ids=segment_ids,
        window_alignment=args.bft_window_alignment, token_weight_floor=args.token_weight_floor, return_details=True)
    trained = details.num_trained > 0  # a sample cut off before its completion is not one (docs/method.md)
    return loss, {"bft/sample_weight": details.sample_weights[trained],
                  "bft/min_group_conf": details.min_group_confidence[trained],
                  "bft/token_weight": details.token_weights[mask]}


def _asft(outputs, args, num_items, segment_ids):
    log_probs, mask = outputs.log_probs, outputs.label_mask
    loss = asft_loss(log_probs, mask, outputs.kl, args.asft_alpha, num_items, args.token_weight_floor)
    return loss, {"asft/kl": outputs.kl.detach()[mask],
                  "asft/token_weight": dft_token_weights(log_probs, args.token_weight_floor)[mask]}


def _eaft(outputs, args, num_items, segment_ids):
    mask = outputs.label_mask
    weights = outputs.topk_entropy.clamp(min=0).pow(args.eaft_alpha)
    return (eaft_loss(outputs.log_probs, mask, outputs.topk_entropy, args.eaft_alpha, num_items),
            {"eaft/token_weight": weights[mask]})


LOSS_TYPES: dict[str, LossType] = {loss.name: loss for loss in (
    LossType("nll", _nll, "SFT (TRL)", trl_name="nll"),
    LossType("dft", _dft, "Wu et al. 2025, arXiv 2508.05629 (TRL)", fields=("token_weight_floor",), trl_name="dft"),
    LossType("bft", _bft, "Tang et al., arXiv 2511.21075", per_sample=True,
             fields=("bft_group_size", "bft_gamma", "bft_token_weighting", "bft_window_alignment",
                     "token_weight_floor"),
             diagnostics={
                 "bft/sample_weight": "s_b = 1 - P_b ** gamma, per sample",
                 "bft/min_group_conf": "P_b, the geometric-mean probability of the sample's weakest window",
                 "bft/token_weight": "token weight (DFT's probability or v3's group-normalised one), per trained "
                                     "token"}),
    LossType("asft", _asft, "Zhu et al., arXiv 2509.23753 (LLaMA-Factory use_asft_loss)", needs_reference=True,
             fields=("asft_alpha", "token_weight_floor"),
             diagnostics={"asft/kl": "KL(pi_ref || pi_theta) over the vocabulary, per trained token",
                          "asft/token_weight": "DFT's token weight, the detached probability, per trained token"}),
    LossType("eaft", _eaft, "arXiv 2601.02151 (LLaMA-Factory, Axolotl)", topk_field="eaft_topk",
             fields=("eaft_alpha", "eaft_topk"),
             diagnostics={"eaft/token_weight": "(H_k / ln k) ** alpha, per trained token"}),
)}


def loss_type(name: str) -> LossType:
    """The table entry of `name`; `ValueError` naming the loss types for an unknown one."""
    if name not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {', '.join(LOSS_TYPES)}, got {name!r}")
    return LOSS_TYPES[name]


def diagnostics() -> dict[str, str]:
    """Every loss's logged diagnostics: name -> what it summarises."""
    return {name: meaning for loss in LOSS_TYPES.values() for name, meaning in loss.diagnostics.items()}

