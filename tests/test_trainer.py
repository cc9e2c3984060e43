"""BFTTrainer: the update does not depend on how the optimizer step's samples are split or packed."""

import math
from pathlib import Path

import pytest
import torch

from bft.trainer import BFTConfig
from tests.one_step import launch, one_step, relative_difference, stored_step


@pytest.mark.parametrize("loss_type", ["nll", "dft", "bft", "asft", "eaft"])
def test_update_is_the_same_for_every_micro_batch_split(tiny_model, loss_type):
    """One batch of 6, micro-batches of 4 + 2 and 3 + 3 (gradient accumulation): the same SGD update."""
    whole, _ = stored_step(tiny_model, loss_type, 6, 1)
    assert whole.norm() > 0
    for batch, accum in [(4, 2), (3, 2)]:
        split, _ = stored_step(tiny_model, loss_type, batch, accum)
        assert relative_difference(split, whole) < 1e-5, (batch, accum)


def test_packed_bft_update_equals_the_padded_one(tiny_model):
    """Packed rows (padding-free, every segment its own sample) give the padded batch's update."""
    padded, _ = stored_step(tiny_model, "bft", 6, 1)
    packed, trainer = one_step(tiny_model, "bft", 6, 1, packing=True)
    assert trainer.args.padding_free or trainer.args.packing_strategy == "bfd"
    assert relative_difference(packed, padded) < 1e-5


def test_packed_bft_counts_no_sample_whose_completion_was_cut(tiny_model):
    """A sample whose completion lies past max_length: TRL drops it from padded data, packing keeps it as a segment
    without trained labels. BFT's N counts samples with a trained token, so both give one update."""
    from datasets import Dataset

    from bft.data.training import load_training_dataset

    samples = load_training_dataset("demo").select(range(6)).to_list()
    samples[0]["prompt"] = [{"role": "user", "content": "gene " * 400 + samples[0]["prompt"][-1]["content"]}]
    data = Dataset.from_list(samples)
    padded, padded_trainer = one_step(tiny_model, "bft", 6, 1, train_dataset=data, max_length=256)
    packed, packed_trainer = one_step(tiny_model, "bft", 6, 1, packing=True, train_dataset=data, max_length=256)
    assert len(padded_trainer.train_dataset) == 5 and sum(map(len, packed_trainer.train_dataset["seq_lengths"])) == 6
    assert relative_difference(packed, padded) < 1e-5
    logged = [{name: row[name] for name in ("bft/sample_weight_mean", "bft/min_group_conf_mean")}
              for trainer in (padded_trainer, packed_trainer) for row in trainer.state.log_history if "loss" in row]
    assert logged[0] == pytest.approx(logged[1], rel=1e-4)  # the cut sample's P_b = 0 is in neither


@pytest.mark.parametrize("loss_type", ["nll", "dft"])
def test_split_holds_for_models_that_take_no_loss_kwargs(tiny_model, loss_type, monkeypatch):
    """A model with `accepts_loss_kwargs = False` (some multimodal ones) gets no count from the Trainer: the token
    losses count the step's tokens themselves, so 3 + 3 still gives the batch of 6's update."""
    from transformers import AutoModelForCausalLM

    whole, _ = stored_step(tiny_model, loss_type, 6, 1)
    monkeypatch.setattr(type(AutoModelForCausalLM.from_pretrained(tiny_model)), "accepts_loss_kwargs", False,
                        raising=False)
    split, trainer = one_step(tiny_model, loss_type, 3, 2, average_tokens_across_devices=False)
    assert trainer.model_accepts_loss_kwargs is False
    assert relative_difference(split, whole) < 1e-5


@pytest.mark.parametrize("loss_type", ["asft", "eaft"])
def test_packed_token_losses_equal_the_padded_ones(tiny_model, loss_type):
    padded, _ = stored_step(tiny_model, loss_type, 6, 1)
    packed, _ = stored_step(tiny_model, loss_type, 6, 1, packing=True)
    assert relative_difference(packed, padded) < 1e-5


def test_loss_types_differ(tiny_model):
    """A guard on the tests above: the loss types really are different updates."""
    updates = {loss_type: stored_step(tiny_model, loss_type, 6, 1)[0] for loss_type in ("dft", "bft", "asft", "eaft")}
    assert relative_difference(updates["bft"], updates["dft"]) > 1e-3
    assert relative_difference(updates["eaft"], updates["dft"]) > 1e-3
    # at the first step the model is its own reference: KL 0 with gradient 0, so ASFT's update is DFT's
    assert relative_difference(updates["asft"], updates["dft"]) < 1e-5


@pytest.mark.parametrize("lora", [False, True])
def test_asft_reference_is_the_starting_model(tiny_model, lora):
    """Full fine-tuning: a frozen copy; LoRA: the base with adapters switched off. KL 0 at the start, then > 0."""
    from peft import LoraConfig

    peft = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    _, trainer = one_step(tiny_model, "asft", 3, 1, max_steps=3, learning_rate=1e-2, optim="adamw_torch",
                          peft_config=peft if lora else None)
    kl = [row["asft/kl_mean"] for row in trainer.state.log_history if "asft/kl_mean" in row]
    assert (trainer.ref_model is None) == lora
    assert kl[0] == pytest.approx(0, abs=1e-7) and min(kl[1:]) > 1e-6  # adapters on: the model moved away
    assert all(0 <= row["asft/token_weight_mean"] <= 1 for row in trainer.state.log_history if "loss" in row)


def test_lora_asft_reference_has_no_dropout(tiny_model, tmp_path):
    """The LoRA reference is the base model with adapters off, and in eval mode while it runs: the same batch gives
    the same reference twice, though the model trains with attention dropout; the model's modes are restored."""
    from tests.conftest import build_tiny_model
    from tests.one_step import tiny_lora

    folder = build_tiny_model(tmp_path / "dropout", attention_dropout=0.5)
    _, trainer = one_step(folder, "asft", 3, 1, peft_config=tiny_lora())
    trainer.model.train()
    modes = [module.training for module in trainer.model.modules()]
    batch = next(iter(trainer.get_train_dataloader()))
    with trainer.patched():
        first, second = (trainer._reference(trainer.model, batch)["reference_hidden"] for _ in range(2))
    assert torch.equal(first, second)
    assert [module.training for module in trainer.model.modules()] == modes


def test_bft_diagnostics_are_logged(tiny_model):
    logged = stored_step(tiny_model, "bft", 3, 2)[1][0]
    for name in ("sample_weight", "min_group_conf", "token_weight"):
        assert 0 <= logged[f"bft/{name}_mean"] <= 1
        assert logged[f"bft/{name}_std"] >= 0
    # s_b = 1 - P_b with gamma = 1, so the means add up to one
    assert logged["bft/sample_weight_mean"] + logged["bft/min_group_conf_mean"] == pytest.approx(1, abs=1e-6)


@pytest.mark.parametrize("loss_type", ["bft", "eaft"])
def test_plain_nll_is_logged_beside_every_loss(tiny_model, loss_type):
    """`nll`, logged for every loss type, is the SFT loss of the same step (micro-batches 3 + 3): one scale for all."""
    _, sft = stored_step(tiny_model, "nll", 3, 2)
    _, other = stored_step(tiny_model, loss_type, 3, 2)
    logged, reference = other[0], sft[0]["loss"]
    assert logged["nll"] == pytest.approx(reference, rel=1e-6)
    assert sft[0]["nll"] == pytest.approx(reference, rel=1e-6)
    assert abs(logged["loss"] - reference) > 1e-3  # a guard: the loss itself is another one


def test_config_rejects_unknown_loss_type(tmp_path):
    with pytest.raises(ValueError, match="loss_type"):
        BFTConfig(output_dir=str(tmp_path), loss_type="focal")
    with pytest.raises(ValueError, match="bft_token_weighting"):
        BFTConfig(output_dir=str(tmp_path), loss_type="bft", bft_token_weighting="entropy")


DDP_RUNS = {"bft": ("bft", {}), "nll": ("nll", {}), "eaft": ("eaft", {}),
            "bft-tokens-per-device": ("bft", {"average_tokens_across_devices": False})}
FSDP_RUNS = ("bft", "nll")


@pytest.fixture(scope="module")
def ddp_launched(tiny_model, tmp_path_factory):
    """Every run of DDP_RUNS (2 processes x 3 samples) in one `accelerate launch`: one start-up of the processes."""
    runs = {name: dict(loss_type=loss_type, batch_size=3, grad_accum=1, **settings)
            for name, (loss_type, settings) in DDP_RUNS.items()}
    return launch(tiny_model, tmp_path_factory.mktemp("ddp"), runs, "--multi_gpu")


@pytest.fixture(scope="module")
def fsdp_launched(tiny_model, tmp_path_factory):
    """Every loss type of FSDP_RUNS under FSDP2 (configs/accelerate/fsdp.yaml) on 2 processes, in one launch."""
    config = Path(__file__).resolve().parents[1] / "configs" / "accelerate" / "fsdp.yaml"
    runs = {loss_type: dict(loss_type=loss_type, batch_size=3, grad_accum=1, tracked=loss_type == "bft")
            for loss_type in FSDP_RUNS}
    return launch(tiny_model, tmp_path_factory.mktemp("fsdp"), runs, "--config_file", str(config))


@pytest.mark.slow
@pytest.mark.parametrize("name", DDP_RUNS)
def test_two_processes_give_the_update_of_one(tiny_model, ddp_launched, name):
    """DDP on CPU (gloo) through `accelerate launch`: 2 processes x 3 samples == 1 process x 6 samples. BFT's
    sample count is global even where token counts are not averaged across devices.

    On a machine without GPUs, `--multi_gpu` starts the processes and BFTConfig switches them to CPU DDP
    (`accelerate launch --cpu --num_processes 2` would start a single process).
    """
    loss_type = DDP_RUNS[name][0]
    launched = ddp_launched[name]
    update = launched["update"]
    single, log_history = stored_step(tiny_model, loss_type, 6, 1)
    assert relative_difference(update, single) < 1e-5
    logged = launched["log_history"][0]  # the plain NLL, over both processes
    assert logged["nll"] == pytest.approx(log_history[0]["nll"], rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("loss_type", FSDP_RUNS)
def test_fsdp_gives_the_update_of_one_process(tiny_model, fsdp_launched, loss_type):
    """FSDP2 (configs/accelerate/fsdp.yaml) on 2 CPU processes: the update of one process with the whole batch."""
    update = fsdp_launched[loss_type]["update"]
    single, _ = stored_step(tiny_model, loss_type, 6, 1)
    assert relative_difference(update, single) < 1e-5


@pytest.mark.slow
def test_sample_weights_are_tracked_through_the_sharded_model(tiny_model, fsdp_launched):
    """Under FSDP2 every process scores its share of the samples through the sharded model (3 batches of 2 over 2
    processes: one repeats a batch so that both run as many forwards); the P_b are one process's after the step."""
    from bft.weight_tracking import SampleWeightTracker

    _, trainer = one_step(tiny_model, "bft", 6, 1)
    single = SampleWeightTracker(trainer, None, batch_size=2).min_group_confidences()
    tracked = fsdp_launched["bft"]["tracked"]
    assert len(set(single)) == 6
    assert tracked == pytest.approx(single, rel=1e-4)


@pytest.mark.parametrize("loss_type", ["bft", "nll"])
def test_padding_free_batches_give_the_padded_update(tiny_model, loss_type):
    """`padding_free=True` without packing: the padded batches, concatenated into one row, the same update."""
    padded, _ = stored_step(tiny_model, loss_type, 3, 2)
    flat, trainer = one_step(tiny_model, loss_type, 3, 2, padding_free=True)
    assert trainer.data_collator.padding_free and not trainer.args.packing
    assert relative_difference(flat, padded) < 1e-5


def test_lora_bft_packed_step_equals_the_padded_batch(tiny_model):
    from peft import LoraConfig

    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    padded, _ = one_step(tiny_model, "bft", 6, 1, peft_config=lora)
    packed, trainer = one_step(tiny_model, "bft", 6, 1, packing=True, peft_config=lora)
    assert hasattr(trainer.model, "disable_adapter") and padded.norm() > 0
    assert relative_difference(packed, padded) < 1e-5


@pytest.mark.parametrize("loss_type", ["nll", "dft"])
def test_nll_and_dft_are_trls_own(tiny_model, loss_type):
    """BFTTrainer computes nll/dft itself (one code path for every loss): the update of TRL's SFTTrainer."""
    from trl import SFTTrainer

    ours, _ = stored_step(tiny_model, loss_type, 3, 2)
    trls, _ = one_step(tiny_model, loss_type, 3, 2, trainer_class=SFTTrainer)
    assert relative_difference(ours, trls) < 1e-5


def test_bf16_split_invariance_is_bounded(tiny_model):
    """Under bf16 autocast, micro-batches of other shapes round differently: bounded, and finite."""
    whole, _ = one_step(tiny_model, "bft", 6, 1, bf16=True)
    split, _ = one_step(tiny_model, "bft", 3, 2, bf16=True, padding_free=True)
    assert torch.isfinite(whole).all() and torch.isfinite(split).all()
    assert relative_difference(split, whole) < 2e-2


@pytest.mark.parametrize("native", [True, False])
def test_precision_follows_the_hardware(tmp_path, monkeypatch, native):
    import bft.precision

    monkeypatch.setattr(bft.precision, "native_bf16", lambda device: (native, "mocked"))
    config = BFTConfig(output_dir=str(tmp_path), loss_type="bft")
    assert config.bf16 is native
    assert BFTConfig(output_dir=str(tmp_path), bf16=False).bf16 is False  # the exact float32 path on request


@pytest.mark.parametrize("settings, message", [
    ({"packing": True, "packing_strategy": "wrapped"}, "packing_strategy='wrapped'"),
    ({"packing": True, "packing_strategy": "bfd_split"}, "packing_strategy='bfd_split'"),
    ({"packing": True, "pad_to_multiple_of": 64}, "pad_to_multiple_of"),
    ({"padding_free": True, "pad_to_multiple_of": 64}, "pad_to_multiple_of"),
])
def test_bft_refuses_batches_whose_samples_it_cannot_find(tiny_model, settings, message):
    with pytest.raises(ValueError, match=message):
        one_step(tiny_model, "bft", 3, 1, **settings)


@pytest.mark.parametrize("field, value", [("bft_gamma", 0.0), ("bft_gamma", -1.0), ("asft_alpha", -0.1),
                                          ("eaft_topk", 1), ("token_weight_floor", 1.5)])
def test_config_refuses_meaningless_settings(tmp_path, field, value):
    with pytest.raises(ValueError, match=field):
        BFTConfig(output_dir=str(tmp_path), loss_type="bft", **{field: value})


@pytest.mark.parametrize("loss_type", ["nll", "eaft"])
def test_token_weight_floor_needs_dft_weights(tmp_path, loss_type):
    with pytest.raises(ValueError, match="token_weight_floor applies to"):
        BFTConfig(output_dir=str(tmp_path), loss_type=loss_type, token_weight_floor=0.1)


def test_floored_dft_reaches_the_update(tiny_model):
    """DFT's weights floored at 1 are all 1: the update of SFT; a floor of 0.1 moves it away from plain DFT's."""
    sft, _ = stored_step(tiny_model, "nll", 6, 1)
    assert relative_difference(one_step(tiny_model, "dft", 6, 1, token_weight_floor=1.0)[0], sft) < 1e-5
    floored, dft = one_step(tiny_model, "dft", 6, 1, token_weight_floor=0.1)[0], stored_step(tiny_model, "dft", 6, 1)[0]
    assert relative_difference(floored, dft) > 1e-2


def test_asft_refuses_a_reference_of_another_vocabulary(tiny_model, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from bft.data.training import load_training_dataset
    from bft.trainer import BFTTrainer

    other = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=4, num_key_value_heads=2))
    config = BFTConfig(output_dir=str(tmp_path), loss_type="asft", report_to="none", bf16=False)
    with pytest.raises(ValueError, match="another vocabulary"):
        BFTTrainer(model=AutoModelForCausalLM.from_pretrained(tiny_model), args=config, ref_model=other,
                   train_dataset=load_training_dataset("demo").select(range(4)),
                   processing_class=AutoTokenizer.from_pretrained(tiny_model))


def evaluation(tiny_model, tmp_path, **settings):
    from transformers import AutoTokenizer

    from bft.data.training import load_training_dataset
    from bft.trainer import BFTTrainer

    fields = dict(output_dir=str(tmp_path), loss_type="bft", bft_group_size=4, report_to="none", bf16=False,
                  per_device_eval_batch_size=2, max_length=2048, disable_tqdm=True)
    fields.update(settings)
    trainer = BFTTrainer(model=tiny_model, args=BFTConfig(**fields), processing_class=AutoTokenizer.from_pretrained(
        tiny_model), train_dataset=load_training_dataset("demo").select(range(2)),
        eval_dataset=load_training_dataset("demo").select(range(7)))
    return trainer.evaluate()


def test_eval_loss_is_the_loss_over_the_whole_set(tiny_model, tmp_path):
    """Batches of 2 rows, one batch of 7, packed rows and the logits path for compute_metrics: one eval loss,
    BFT's (1/N) sum_b s_b L_b over all 7 samples, with BFT's diagnostics."""
    reference = evaluation(tiny_model, tmp_path, per_device_eval_batch_size=7)
    for settings in ({}, {"padding_free": True}, {"eval_packing": True, "packing": True},
                     {"prediction_loss_only": False}):
        metrics = evaluation(tiny_model, tmp_path, **settings)
        assert metrics["eval_loss"] == pytest.approx(reference["eval_loss"], rel=1e-5), settings
        assert metrics["eval_bft/sample_weight_mean"] == pytest.approx(reference["eval_bft/sample_weight_mean"],
                                                                       rel=1e-5), settings


def test_eval_nll_and_perplexity_are_the_sft_figures_of_the_whole_set(tiny_model, tmp_path):
    """eval_nll of a BFT trainer is the eval loss of an SFT one on the same set, however it is batched."""
    reference = evaluation(tiny_model, tmp_path, loss_type="nll", per_device_eval_batch_size=7)["eval_loss"]
    for settings in ({}, {"per_device_eval_batch_size": 7}, {"eval_packing": True, "packing": True}):
        metrics = evaluation(tiny_model, tmp_path, **settings)
        assert metrics["eval_nll"] == pytest.approx(reference, rel=1e-5), settings
        assert metrics["eval_perplexity"] == pytest.approx(math.exp(reference), rel=1e-5)
        assert abs(metrics["eval_loss"] - reference) > 1e-3


def test_moe_auxiliary_loss_stays_with_trl_or_is_refused(tiny_model, tmp_path):
    """MoE router loss: TRL's nll adds it; the project's losses do not, and say so instead of dropping it."""
    from transformers import AutoTokenizer, MixtralConfig, MixtralForCausalLM

    from bft.data.training import load_training_dataset
    from bft.errors import InputError
    from bft.trainer import BFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    moe = MixtralForCausalLM(MixtralConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                           num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
                                           num_local_experts=2, num_experts_per_tok=1, output_router_logits=True,
                                           router_aux_loss_coef=0.01, pad_token_id=tokenizer.pad_token_id))
    data = load_training_dataset("demo").select(range(4))
    for loss_type in ("bft", "eaft"):
        config = BFTConfig(output_dir=str(tmp_path), loss_type=loss_type, report_to="none", bf16=False)
        with pytest.raises(InputError, match="router"):
            BFTTrainer(model=moe, args=config, train_dataset=data, processing_class=tokenizer)
    config = BFTConfig(output_dir=str(tmp_path), loss_type="nll", report_to="none", bf16=False, max_steps=1)
    trainer = BFTTrainer(model=moe, args=config, train_dataset=data, processing_class=tokenizer)
    assert trainer._trl_computes_loss
    trainer.train()
    assert "aux_loss" in trainer.state.log_history[0]


def test_every_bft_setting_reaches_the_update(tiny_model, tmp_path):
    """One packed BFTTrainer step with non-default settings equals a hand-made step: the same examples through the
    full logits, the loop reference of the loss, and SGD with learning rate 1."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bft.data.training import load_training_dataset
    from bft.trainer import BFTTrainer
    from tests import reference_losses as ref

    settings = dict(bft_gamma=2.0, bft_token_weighting="group_norm", bft_window_alignment="trailing",
                    bft_group_size=3, token_weight_floor=0.05)
    update, _ = one_step(tiny_model, "bft", 6, 1, packing=True, **settings)

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    config = BFTConfig(output_dir=str(tmp_path), report_to="none", bf16=False, max_length=2048)
    rows = BFTTrainer(model=tiny_model, args=config, processing_class=tokenizer,
                      train_dataset=load_training_dataset("demo").select(range(6))).train_dataset
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    length = max(len(row["input_ids"]) for row in rows)
    logprobs = torch.zeros(len(rows), length - 1, dtype=torch.float64)
    mask = torch.zeros(len(rows), length - 1, dtype=torch.bool)
    for i, row in enumerate(rows):
        ids, labels = torch.tensor(row["input_ids"]), torch.tensor(row["labels"])
        full = torch.log_softmax(model(input_ids=ids[None]).logits[0, :-1].double(), dim=-1)
        n = len(ids) - 1
        logprobs[i, :n] = full.gather(1, ids[1:, None]).squeeze(1)
        mask[i, :n] = labels[1:] != -100
    loss = ref.bft_loss(logprobs, mask, group_size=3, gamma=2.0, token_weighting="group_norm",
                        window_alignment="trailing", token_weight_floor=0.05)
    loss.backward()
    expected = torch.cat([-p.grad.flatten() for p in model.parameters()]).float()
    assert relative_difference(update, expected) < 1e-5
    default, _ = stored_step(tiny_model, "bft", 6, 1, packing=True)
    assert relative_difference(default, expected) > 1e-3  # the settings do change the update


@pytest.mark.slow
def test_compiled_first_step_equals_eager(tiny_model):
    """`torch_compile: true` (off in every recipe: it does not pay on CPUs, docs/benchmarks.md) computes the same."""
    eager, eager_log = stored_step(tiny_model, "bft", 3, 2, padding_free=True)
    compiled, trainer = one_step(tiny_model, "bft", 3, 2, padding_free=True, torch_compile=True)
    assert trainer.state.log_history[0]["loss"] == pytest.approx(eager_log[0]["loss"], rel=1e-4)
    assert relative_difference(compiled, eager) < 1e-4


def test_samples_cut_at_max_length_are_reported(tiny_model, tmp_path, caplog):
    from transformers import AutoTokenizer

    from bft.data.training import load_training_dataset
    from bft.trainer import BFTTrainer

    def trainer(max_length):
        config = BFTConfig(output_dir=str(tmp_path), loss_type="bft", bft_group_size=4, report_to="none", bf16=False,
                           max_length=max_length)
        return BFTTrainer(model=tiny_model, args=config, processing_class=AutoTokenizer.from_pretrained(tiny_model),
                          train_dataset=load_training_dataset("demo").select(range(8)))

    caplog.set_level("WARNING", logger="bft.trainer")
    lengths = [len(ids) for ids in trainer(None).train_dataset["input_ids"]]
    assert "max_length" not in caplog.text
    cut_at = sorted(lengths)[4]
    kept = len(trainer(cut_at).train_dataset)
    dropped, cut = 8 - kept, sum(length >= cut_at for length in lengths) - (8 - kept)  # every dropped one was long
    assert dropped > 0 and cut > 0
    assert f"{cut} of the {kept} training samples reach max_length={cut_at}: their ends are cut off" in caplog.text
    assert f"{dropped} of the 8 training samples were dropped" in caplog.text
