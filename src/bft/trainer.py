"""`BFTTrainer`: TRL's `SFTTrainer` with five losses, each reduced over the whole optimizer step.

Every loss is computed from the per-token figures of the LM head (`bft.lm_head`; TRL's Triton kernel on GPUs for the
losses it covers), never from the full `(B, T, vocab)` logits. What each loss type computes, what the head must give
it, how it is reduced and what it logs is one entry of `bft.loss_types.LOSS_TYPES`: per-token losses are divided by
the trained tokens of the whole optimizer step (all micro-batches, all processes), BFT by its samples with a trained
token (rows or packed sequences). So the update does not depend on how a batch is split into micro-batches,
processes or packed rows (docs/method.md). On CPUs the trainer also attends per packed sequence (`bft.attention`)
and accepts `padding_free=True` without packing: the very batches of padded training, concatenated into one row.

The trainer patches the model it trains (its forward, for the LM head; its attention on CPUs; PEFT's adapter input
casts under bf16) and undoes all of it when `train()` ends, or when a `with BFTTrainer(...) as trainer:` block ends.
"""

import copy
import logging
import math
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import datasets
import torch
from trl import SFTConfig, SFTTrainer

from bft import upstream
from bft.attention import use_segment_attention
from bft.errors import InputError
from bft.lm_head import has_triton_head, install_token_head, supports_token_head
from bft.loss_types import LOSS_TYPES, diagnostics
from bft.losses import TOKEN_WEIGHTINGS, WINDOW_ALIGNMENTS
from bft.precision import describe_precision, resolve_precision
from bft.ranges import LOSS_RANGES, check_training_arguments

logger = logging.getLogger(__name__)

# The LM heads that can compute the per-token figures: TRL's fused head gives log-probs only (bft.loss_types)
LM_HEADS = ("auto", "trl", "token")


def checkpointing_fields() -> tuple:
    """(activation_checkpointing, gradient_checkpointing) fields. TRL's configs default transformers' deprecated
    alias `gradient_checkpointing` to True, so that every config warns that it is deprecated. Ours leave both unset
    (a recipe that still gives the alias is honoured, and warned about) and `default_activation_checkpointing` puts
    TRL's default on the current name."""
    return (field(default=None, metadata={"help": "Activation checkpointing: trades compute for memory (about 20%% "
                                                  "slower). Default: on, as in TRL's trainers.",
                                          "nargs": "?", "const": True}),
            field(default=None, metadata={"help": "Deprecated alias of activation_checkpointing (transformers 5); "
                                                  "give activation_checkpointing instead.",
                                          "nargs": "?", "const": True}))


def default_activation_checkpointing(config) -> None:
    """Activation checkpointing on unless a recipe says otherwise under either name (TRL's default), set on the
    current name before transformers resolves the two."""
    if config.activation_checkpointing is None and config.gradient_checkpointing is None:
        config.activation_checkpointing = True


@dataclass
class BFTConfig(SFTConfig):
    """`SFTConfig` plus the project's losses. Every other field, and its default, is TRL's, except `bf16`: by
    default bf16 mixed precision where the hardware multiplies bf16 natively, float32 elsewhere; and activation
    checkpointing (TRL's default, on) is set as `activation_checkpointing`, its current name."""

    activation_checkpointing: bool | None
    gradient_checkpointing: bool | None
    activation_checkpointing, gradient_checkpointing = checkpointing_fields()

    loss_type: str = field(
        default="nll",
        metadata={"help": "Loss: 'nll' (SFT), 'dft' (token weights = detached probability), 'bft' (DFT's token "
                          "weights times a sample weight 1 - P_b ** gamma), 'asft' (DFT plus a KL anchor to the "
                          "starting model) or 'eaft' (token weights = normalised top-k entropy)."},
    )
    bft_group_size: int = field(
        default=256,
        metadata={"help": "BFT: window length g, in trained tokens, of the group confidence (and of v3's window)."},
    )
    bft_gamma: float = field(default=1.0, metadata={"help": "BFT: exponent gamma > 0 in the sample weight "
                                                             "1 - P_b ** gamma."})
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
    token_weight_floor: float = field(
        default=0.0,
        metadata={"help": "dft, bft and asft: token weights below this are raised to it (0: off), so that tokens the "
                          "model finds unlikely, such as new facts or an answer format not yet learned, still train."},
    )
    lm_head: str = field(
        default="auto",
        metadata={"help": "Which LM head computes the per-token log-probs: 'auto' (TRL's fused head with its Triton "
                          "kernel on CUDA/XPU for nll, dft and bft, and where the model softcaps or scales its "
                          "logits; the project's token head otherwise), 'trl' (TRL's fused head; nll, dft and bft "
                          "only) or 'token' (the project's token head; plain linear heads only). Every choice computes "
                          "the same loss."},
    )
    asft_alpha: float = field(default=0.1, metadata={"help": "ASFT: weight of the per-token KL anchor."})
    eaft_alpha: float = field(default=1.0, metadata={"help": "EAFT: exponent of the normalised top-k entropy."})
    eaft_topk: int = field(default=20, metadata={"help": "EAFT: k, the top probabilities whose entropy is taken."})

    def __post_init__(self):
        resolve_precision(self)
        default_activation_checkpointing(self)
        for name, allowed in LOSS_RANGES.items():  # before transformers' checks, whose messages name no range
            allowed.check(name, getattr(self, name))
        check_training_arguments(self)
        super().__post_init__()
        if self.loss_type not in LOSS_TYPES:
            raise InputError(f"loss_type must be one of {', '.join(LOSS_TYPES)}, got {self.loss_type!r}")
        loss = LOSS_TYPES[self.loss_type]
        if self.bft_token_weighting not in TOKEN_WEIGHTINGS:
            raise InputError(f"bft_token_weighting must be one of {TOKEN_WEIGHTINGS}, got {self.bft_token_weighting!r}")
        if self.bft_window_alignment not in WINDOW_ALIGNMENTS:
            raise InputError(f"bft_window_alignment must be one of {WINDOW_ALIGNMENTS}")
        if self.lm_head not in LM_HEADS:
            raise InputError(f"lm_head must be one of {', '.join(LM_HEADS)}, got {self.lm_head!r}")
        if self.lm_head == "trl" and loss.needs_token_head:
            raise InputError(f"lm_head='trl' computes log-probs only; loss_type={self.loss_type!r} also needs "
                             "the top-k entropy or the reference KL of the project's head: use lm_head 'auto' or "
                             "'token'")
        if self.token_weight_floor and "token_weight_floor" not in loss.fields:
            raise InputError(f"token_weight_floor applies to the DFT token weights of "
                             f"{', '.join(n for n, t in LOSS_TYPES.items() if 'token_weight_floor' in t.fields)}; "
                             f"loss_type {self.loss_type!r} has none")
        if loss.per_sample:
            _check_sample_boundaries(self)


class NoTrainedTokens(InputError):
    """A data set in which tokenization, the completion mask and truncation at `max_length` leave no token to train
    on (or to evaluate). `split`: "train" or "eval"."""

    def __init__(self, split: str, message: str):
        super().__init__(message)
        self.split = split


def _require_trained_tokens(dataset, split: str, max_length, given: int | None) -> None:
    """Raise NoTrainedTokens when no row of the prepared `dataset` holds a trained label (TRL would train or
    evaluate on nothing: a sampler error, or a loss of 0 / NaN). `given`: how many samples there were before."""
    import pyarrow.compute as pc

    if not isinstance(dataset, datasets.Dataset) or "labels" not in dataset.column_names:
        return
    for chunk in dataset.select_columns(["labels"]).with_format("arrow").iter(batch_size=10_000):
        targets = pc.list_flatten(pc.list_slice(chunk["labels"], 1))  # a row's first label is never predicted
        if pc.any(pc.not_equal(targets, -100)).as_py():
            return
    what = "training" if split == "train" else "evaluation"
    samples = f"all {given} {what} samples" if given else f"the {what} data"
    raise NoTrainedTokens(split, f"no {what} token is left: {samples} lose every trained token to truncation at "
                                 f"max_length={max_length} (each completion begins past it) or to the completion "
                                 "mask; raise max_length or shorten the prompts")


def _report_cut_samples(dataset, max_length, given: int | None, what: str = "training") -> None:
    """Warn how many `what` samples TRL cut at `max_length` and how many it dropped (it does both silently): the
    end of a cut sample, often the end of its answer, is never trained on; a dropped one had nothing left to train
    (its completion began past `max_length`, or was empty). `given`: how many samples there were before."""
    import pyarrow.compute as pc

    if not isinstance(dataset, datasets.Dataset) or "input_ids" not in dataset.column_names:
        return
    if given is not None and given > len(dataset):
        logger.warning("%d of the %d %s samples were dropped: no token of theirs is trained on (the completion "
                       "began past max_length=%s, or was empty)", given - len(dataset), given, what, max_length)
    if max_length is None:
        return
    cut = 0
    for chunk in dataset.select_columns(["input_ids"]).with_format("arrow").iter(batch_size=10_000):
        cut += pc.sum(pc.greater_equal(pc.list_value_length(chunk["input_ids"]), max_length)).as_py() or 0
    if cut:
        logger.warning("%d of the %d %s samples reach max_length=%d: their ends are cut off and never trained "
                       "on; raise max_length to train on them whole", cut, len(dataset), what, max_length)


class RestoresModelMixin:
    """A transformers `Trainer` mixin (listed before the trainer class) for trainers that patch the model they are
    given, recorded in `self._patches` (a `_ModelPatches`) when they are built: `train()` undoes the patches when it
    ends, `evaluate()`/`predict()` redo them while they run, and so does `with trainer.patched():`.

    Before building the trainer, keep `forward_before(model)`; once built, give it to `track_patches`, then record
    one's own patches with `self._patches.add(undo, redo)` (the LM heads patched over the forward need none)."""

    @staticmethod
    def forward_before(model):
        """The forward of the model given (under PEFT: its base model) before any trainer patches it."""
        return _instance_forward(_unwrapped(model)) if isinstance(model, torch.nn.Module) else None

    def track_patches(self, original_forward) -> None:
        """Start recording the patches of `self.model`; the first undoes every LM head patched over its forward."""
        self._patches = _ModelPatches(_unwrapped(self.model), original_forward)

    def train(self, *args, **kwargs):
        self._patches.redo()
        try:
            return super().train(*args, **kwargs)
        finally:  # a saved or reused model computes, attends and casts as it did before
            self.restore_model()

    def evaluation_loop(self, *args, **kwargs):
        with self.patched():  # evaluate() after train(), which restored the model
            return super().evaluation_loop(*args, **kwargs)

    def restore_model(self) -> None:
        """Undo the trainer's patches of the model: its forward, attention and adapter casts are again what they
        were when the trainer was built. `train()`, `evaluate()` and `predict()` redo them while they run."""
        self._patches.undo()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.restore_model()

    @contextmanager
    def patched(self):
        """A context manager: within, the model patched as during `train()` (for `model(..., fused_lm_head=True)`
        calls of one's own); afterwards, patched or not, as it was before."""
        patched = self._patches.applied
        self._patches.redo()
        try:
            yield
        finally:
            if not patched:
                self.restore_model()


class BFTTrainer(RestoresModelMixin, SFTTrainer):
    """`SFTTrainer` whose `loss_type` may also be `bft`, `asft` or `eaft`. Use it exactly like `SFTTrainer`.

    `ref_model` (ASFT with full fine-tuning): the frozen reference; by default a copy of the model at the start.

    Building it patches the model (see the module's docstring); `train()` undoes the patches when it ends, and
    `evaluate()`/`predict()` redo them meanwhile if needed (as `with trainer.patched():` does for one's own calls).
    Used without `train()`, restore the model with `restore_model()`, or build the trainer in a `with` block.
    """

    _tag_names = ["trl", "sft", "bft"]

    def __init__(self, *args, ref_model=None, **kwargs):
        config = kwargs["args"] if "args" in kwargs else (args[1] if len(args) > 1 else None)
        if config is None:
            raise InputError("BFTTrainer needs args=BFTConfig(...)")
        _check_supported(config, kwargs)
        loss_type = config.loss_type
        padding_free_batches = config.padding_free and not config.packing
        config.loss_type = "nll"  # SFTTrainer accepts only its own two names; restored below
        if padding_free_batches:
            config.padding_free = False  # TRL then truncates to max_length as for padded batches
        given = {"train": kwargs.get("train_dataset"), "eval": kwargs.get("eval_dataset")}
        given = {split: len(data) if isinstance(data, datasets.Dataset) else None for split, data in given.items()}
        model = kwargs["model"] if "model" in kwargs else (args[0] if args else None)
        # SFTTrainer's __init__ replaces the forward by TRL's fused LM head's: the one to restore is this one
        original_forward = self.forward_before(model)
        try:
            super().__init__(*args, **kwargs)
        finally:
            config.loss_type = loss_type
            config.padding_free = config.padding_free or padding_free_batches
        self.track_patches(original_forward)
        try:
            self._set_up(loss_type, ref_model, padding_free_batches, given)
        except BaseException:  # a model that could not be trained is left as it was given
            self.restore_model()
            raise

    def _set_up(self, loss_type, ref_model, padding_free_batches, given):
        """The rest of __init__, once SFTTrainer's has run."""
        if padding_free_batches:
            # The batches padded training would see, concatenated into one row: the same examples per step
            self.data_collator.padding_free = True
        self._trl_computes_loss = self._check_loss_path()
        logger.info("Precision: %s", describe_precision(self.args))
        unwrapped = _unwrapped(self.model)
        if self.args.device.type == "cpu" and upstream.attention_implementation(unwrapped) == "sdpa":
            self._patches.add(use_segment_attention(unwrapped), lambda: use_segment_attention(unwrapped))
        if self.args.bf16:
            self._patches.add(*_skip_adapter_input_casts(self.model))
        if _uses_token_head(self.args, unwrapped):
            install_token_head(unwrapped)  # over TRL's head: undone with it, by _ModelPatches
        self.ref_model = None
        if LOSS_TYPES[loss_type].needs_reference and not hasattr(self.model, "disable_adapter"):
            self.ref_model = self._frozen_reference(unwrapped, ref_model)
        # compute_loss divides by the step's count itself, so Trainer must not divide by the GA steps
        self.loss_is_scaled_for_ga = not self._trl_computes_loss or self.loss_is_scaled_for_ga
        # Per mode and diagnostic: (count, sum, sum of squares) since the last log
        self._diagnostic_sums = {mode: {name: torch.zeros(3, dtype=torch.float64) for name in diagnostics()}
                                 for mode in ("train", "eval")}
        # (sum of per-item losses, items, NLL summed over trained tokens, trained tokens)
        self._eval_loss_sums = torch.zeros(4, dtype=torch.float64)
        self._nll_sums = torch.zeros(2, dtype=torch.float64)  # training, since the last log: (NLL summed, tokens)
        evaluated = self.eval_dataset if isinstance(self.eval_dataset, dict) else {"eval": self.eval_dataset}
        for split, dataset in (("train", self.train_dataset), *(("eval", data) for data in evaluated.values())):
            _require_trained_tokens(dataset, split, self.args.max_length, given[split])
            if not self.args.packing and self.is_world_process_zero():
                _report_cut_samples(dataset, self.args.max_length, given[split],
                                    "training" if split == "train" else "evaluation")

    def _frozen_reference(self, model, ref_model):
        """ASFT with full fine-tuning: the given reference, or a frozen copy of the starting model (its weights
        once more in memory). Sharded engines would hold that copy whole on every process: LoRA needs no copy."""
        if self.is_fsdp_enabled or self.is_deepspeed_enabled:
            raise InputError("loss_type='asft' with full fine-tuning under FSDP/DeepSpeed would hold an unsharded "
                             "reference copy on every process; use LoRA (use_peft), whose reference is the base model")
        if ref_model is not None:
            if ref_model.get_output_embeddings().weight.shape[0] != model.get_output_embeddings().weight.shape[0]:
                raise InputError("ref_model has another vocabulary than the model: ASFT compares their next-token "
                                 "distributions token by token")
            return ref_model.requires_grad_(False).eval()
        return copy.deepcopy(model).requires_grad_(False).eval()

    def _check_loss_path(self) -> bool:
        """Whether TRL computes the loss (nll/dft with the options only TRL's path has); refuses what none can do."""
        special = []
        if self.compute_loss_func is not None:
            special.append("compute_loss_func")
        if self.label_smoother is not None:
            special.append("label_smoothing_factor")
        if upstream.uses_router_aux_loss(self):
            special.append("a MoE router auxiliary loss (output_router_logits)")
        parallelism = self.accelerator.parallelism_config
        if parallelism is not None and (parallelism.tp_enabled or parallelism.cp_enabled or parallelism.sp_enabled):
            special.append("tensor, context or sequence parallelism")
        if not special:
            return False
        loss = self._loss_type
        if loss.trl_name is not None and all(getattr(self.args, name) == BFTConfig.__dataclass_fields__[name].default
                                             for name in loss.fields):
            return True
        raise InputError(f"loss_type={self.args.loss_type!r}"
                         f"{' with token_weight_floor' if self.args.token_weight_floor else ''} does not support "
                         f"{', '.join(special)}; use loss_type 'nll' or 'dft' (with its default settings) with it, "
                         "or leave it out")

    def _get_num_items_in_batch(self, batch_samples, device):
        """The optimizer step's count: samples with a trained token (rows or packed segments) for BFT, trained
        tokens for the token-level losses; over all processes, except for nll/dft with
        average_tokens_across_devices off (per process, as TRL counts them). Whatever the model accepts as loss
        keyword arguments: the trainer's own losses always divide by it."""
        if self._trl_computes_loss:
            return super()._get_num_items_in_batch(batch_samples, device)
        count = torch.tensor(sum(self._count_items(batch) for batch in batch_samples), device=device)
        if self._counts_whole_step and self.args.world_size > 1:
            count = self.accelerator.gather(count).sum()
        return count

    def _count_items(self, batch) -> int:
        """What the loss divides by, in one batch: samples with a trained token (BFT), or trained tokens."""
        if self._loss_type.per_sample:
            return _count_trained_samples(batch)
        return int((batch["labels"][..., 1:] != -100).sum())

    @property
    def _counts_whole_step(self) -> bool:
        if self._trl_computes_loss:
            return False
        return self._loss_type.trl_name is None or self.args.average_tokens_across_devices

    @property
    def _loss_type(self):
        """The table entry of `args.loss_type` (bft.loss_types)."""
        return LOSS_TYPES[self.args.loss_type]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self._trl_computes_loss:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        mode = "train" if self.model.training else "eval"
        inputs["use_cache"] = False
        loss_type, extra = self._loss_type, {}
        if loss_type.topk_field is not None:
            extra["head_topk"] = getattr(self.args, loss_type.topk_field)
        if loss_type.needs_reference:
            extra.update(self._reference(model, inputs))
        outputs = model(**inputs, fused_lm_head=True, **extra)
        # no count given (a direct call; evaluation before transformers 5): the batch's own, so that the eval loss
        # sums to the whole set's
        items = self._count_items(inputs) if num_items_in_batch is None else num_items_in_batch
        loss, diagnostics = loss_type.compute(outputs, self.args, items, _segment_ids(inputs))
        if num_items_in_batch is not None and self.args.world_size > 1 and self._counts_whole_step:
            # num_items_in_batch counts every process's items, and DDP/FSDP/DeepSpeed average the gradients
            loss = loss * self.accelerator.num_processes
        nll, tokens = _summed_nll(outputs)
        self._record(mode, inputs, outputs, diagnostics, nll)
        if mode == "eval":
            self._eval_loss_sums += torch.tensor([float(loss.detach()) * float(items), float(items), float(nll),
                                                  float(tokens)], dtype=torch.float64)
        if return_outputs:  # compute_metrics wants the logits: one more forward builds them
            with torch.no_grad():
                outputs = model(**{k: v for k, v in inputs.items() if k != "labels"})
            return loss, outputs
        return loss

    def _reference(self, model, inputs) -> dict:
        """ASFT: the reference model's last hidden states for this batch, and its LM head."""
        model_inputs = {k: v for k, v in inputs.items() if k != "labels"}
        unwrapped = self.accelerator.unwrap_model(model)
        # the reference's forward is called directly, outside the autocast accelerate wraps the model's in
        with torch.no_grad(), self.accelerator.autocast():
            if self.ref_model is not None:
                reference = self.ref_model
                hidden = reference.base_model(**model_inputs).last_hidden_state
            else:  # LoRA: the base model is the starting model, adapters switched off, without dropout
                reference = unwrapped.get_base_model()
                with unwrapped.disable_adapter(), _in_eval_mode(reference):
                    hidden = reference.base_model(**model_inputs).last_hidden_state
        head = reference.get_output_embeddings()
        return {"reference_hidden": hidden, "reference_head": (head.weight, head.bias)}

    def evaluation_loop(self, *args, **kwargs):
        """Trainer averages batch losses weighted by rows; the eval loss here is the training loss's reduction over
        the whole evaluation set: per trained token, or per sample with a trained token (packed segments included)
        for BFT."""
        self._eval_loss_sums.zero_()
        output = super().evaluation_loop(*args, **kwargs)
        if not self._trl_computes_loss:
            prefix = kwargs.get("metric_key_prefix", args[4] if len(args) > 4 else "eval")
            total, items, nll, tokens = self.accelerator.reduce(self._eval_loss_sums.to(self.args.device),
                                                                reduction="sum").tolist()
            if items > 0:
                output.metrics[f"{prefix}_loss"] = total / items
            if tokens > 0:  # every loss type on one scale: the plain NLL per trained token, and its perplexity
                output.metrics[f"{prefix}_nll"] = nll / tokens
                output.metrics[f"{prefix}_perplexity"] = math.exp(min(nll / tokens, 700.0))
        return output

    def log(self, logs, start_time=None):
        """Adds the loss's diagnostics (mean and standard deviation since the last log) to the usual metrics, and in
        training `nll`: the plain NLL per trained token since the last log (the SFT loss, whatever the loss type)."""
        mode = "train" if self.model.training else "eval"
        prefix = "" if mode == "train" else "eval_"
        nll, tokens = self._nll_sums.tolist()
        if mode == "train" and tokens > 0:
            logs["nll"] = nll / tokens
            self._nll_sums.zero_()
        for name, (count, total, squares) in self._diagnostic_sums[mode].items():
            if count > 0:
                mean = total / count
                logs[f"{prefix}{name}_mean"] = float(mean)
                logs[f"{prefix}{name}_std"] = math.sqrt(max(float(squares / count - mean**2), 0.0))
            self._diagnostic_sums[mode][name].zero_()
        super().log(logs, start_time)

    def _record(self, mode, inputs, outputs, diagnostics, nll):
        """The metrics TRL logs for its own losses (entropy, accuracy, tokens), and the loss's diagnostics; `nll`:
        this process's NLL summed over the batch's trained tokens (`_summed_nll`). Each process's sums are gathered
        whole: `gather_for_metrics` would cut the rows of processes at an epoch's last, uneven batch."""
        gather = self.accelerator.gather
        mask = outputs.label_mask
        counts = torch.stack([mask.sum(), outputs.entropy.detach().sum(), outputs.is_top1.sum(), nll]).double()
        num_valid, entropy, correct, nll = gather(counts[None]).sum(0).tolist()
        upstream.log_metric(self, mode, "entropy", entropy / max(num_valid, 1))
        upstream.log_metric(self, mode, "mean_token_accuracy", correct / max(num_valid, 1))
        if mode == "train":
            self._nll_sums += torch.tensor([nll, num_valid], dtype=torch.float64)
            if "attention_mask" in inputs:
                tokens = inputs["attention_mask"].sum()
            else:
                tokens = torch.tensor(inputs["position_ids"].size(1))
            upstream.add_trained_tokens(self, int(gather(tokens.to(mask.device)[None]).sum()))
        upstream.set_logged_tokens(self, mode)
        if not diagnostics:
            return
        # (count, sum, sum of squares) of each diagnostic, gathered from every process in one collective call
        stats = torch.stack([_moments(v.double()) for v in diagnostics.values()])
        totals = gather(stats[None]).sum(0).cpu()
        for name, row in zip(diagnostics, totals):
            self._diagnostic_sums[mode][name] += row


def _uses_token_head(args, model) -> bool:
    """Whether the project's token head computes the per-token figures (`args.lm_head`; else TRL's fused head,
    installed by `SFTTrainer`). Raises `InputError` where the head asked for cannot serve the model or the loss."""
    plain = supports_token_head(model)
    if args.lm_head == "token" or LOSS_TYPES[args.loss_type].needs_token_head:
        if not plain:
            needs = "lm_head='token'" if args.lm_head == "token" else f"loss_type={args.loss_type!r}"
            raise InputError(f"{needs} needs a plain linear LM head; {type(model).__name__} scales or softcaps its "
                             "logits (use lm_head 'auto' or 'trl' with nll, dft or bft)")
        return True
    return args.lm_head == "auto" and plain and not has_triton_head(args.device)


def _skip_adapter_input_casts(model) -> tuple:
    """Under autocast PEFT's cast of each adapter's input to float32 is undone at once: skip it (a copy per layer).
    Returns (undo, redo) functions."""
    from peft.helpers import disable_input_dtype_casting

    skipped = ExitStack()

    def skip():
        skipped.enter_context(disable_input_dtype_casting(model))

    skip()
    return skipped.close, skip


def _unwrapped(model):
    """The model whose forward and attention the trainers patch: under PEFT, the base model."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _instance_forward(model):
    """The forward set on the model object itself (by a patch or a hook), or None where it is the class's."""
    return vars(model).get("forward")


def _set_forward(model, forward) -> None:
    if forward is None:
        vars(model).pop("forward", None)
    else:
        model.forward = forward


class _ModelPatches:
    """What a trainer changed in its model, as (undo, redo) pairs, undone last first. The first is the forward:
    `original_forward` (see `_instance_forward`) is what it was before TRL's and the project's LM heads replaced it."""

    def __init__(self, model, original_forward):
        self.applied, self._pairs, patched = True, [], {}

        def undo_forward():
            patched["forward"] = _instance_forward(model)
            _set_forward(model, original_forward)

        self.add(undo_forward, lambda: _set_forward(model, patched["forward"]))

    def add(self, undo, redo) -> None:
        """Record a patch already applied."""
        self._pairs.append((undo, redo))

    def undo(self) -> None:
        if self.applied:
            for undo, _ in reversed(self._pairs):
                undo()
            self.applied = False

    def redo(self) -> None:
        if not self.applied:
            for _, redo in self._pairs:
                redo()
            self.applied = True


@contextmanager
def _in_eval_mode(model):
    """Within, every module of `model` in eval mode (no dropout); afterwards each in the mode it was in."""
    modes = [(module, module.training) for module in model.modules()]
    for module, _ in modes:  # the flag alone, set and reset alike (no module's train() override runs either way)
        module.training = False
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def _summed_nll(outputs) -> tuple[torch.Tensor, torch.Tensor]:
    """(the NLL summed over the batch's trained tokens, float64; their number), from the head's log-probs."""
    mask = outputs.label_mask
    return -torch.where(mask, outputs.log_probs.detach().double(), 0.0).sum(), mask.sum()


def _moments(values: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.tensor(values.numel(), dtype=values.dtype, device=values.device), values.sum(),
                        values.pow(2).sum()])


def _check_supported(config, kwargs):
    """Fail early on a loss function given to a trainer whose loss type computes its own."""
    if LOSS_TYPES[config.loss_type].trl_name is None and kwargs.get("compute_loss_func") is not None:
        raise InputError(f"loss_type={config.loss_type!r} computes its own loss: do not pass compute_loss_func")


def _check_sample_boundaries(config):
    """A per-sample loss (BFT) must find where each sample starts: refuse the batchings that hide it."""
    if config.packing and config.packing_strategy == "wrapped":
        raise InputError(f"loss_type={config.loss_type!r} cannot use packing_strategy='wrapped': it cuts documents "
                         "into rows without marking where each starts, so its samples cannot be found; use 'bfd' (the "
                         "default)")
    if config.packing and config.packing_strategy == "bfd_split":
        raise InputError(f"loss_type={config.loss_type!r} cannot use packing_strategy='bfd_split': it splits a "
                         "sample longer than max_length into pieces that each start a sequence, so one sample would "
                         "be weighted as several; use 'bfd' (the default), which cuts it as padded data does")
    padding_free = config.padding_free or config.packing
    if padding_free and config.pad_to_multiple_of is not None:
        raise InputError(f"loss_type={config.loss_type!r} with padding-free batches cannot use pad_to_multiple_of: "
                         "its padding tokens would look like extra packed samples")


def _segment_starts(position_ids: torch.Tensor) -> torch.Tensor:
    """Where each packed sequence starts: the positions stop counting up by one (as transformers' masks see it)."""
    starts = torch.ones_like(position_ids, dtype=torch.bool)
    starts[:, 1:] = position_ids[:, 1:] != position_ids[:, :-1] + 1
    return starts


def _count_trained_samples(batch) -> int:
    """Samples with at least one trained label: rows of a padded batch, or sequences of a padding-free one. A sample
    with none (its completion cut off by max_length) is not one: TRL drops it from padded data, and packed data then
    gives the same count (docs/method.md)."""
    trained = batch["labels"][..., 1:] != -100
    segment_ids = _segment_ids(batch)
    if segment_ids is None:
        return int(trained.any(-1).sum())
    rows = torch.arange(trained.shape[0], device=trained.device)[:, None].expand_as(trained)
    return int(torch.unique(torch.stack([rows[trained], segment_ids[trained]]), dim=1).shape[1])


def _segment_ids(inputs):
    """For padding-free batches, the sequence each label belongs to, aligned with the head's shifted labels."""
    if "attention_mask" in inputs or "position_ids" not in inputs:
        return None
    return _segment_starts(inputs["position_ids"]).long().cumsum(1)[:, 1:]
