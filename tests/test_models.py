"""The model resolver: the embedded GGUF converted once and reused; local folders; LoRA adapters whose base is
recorded by name and found on another machine or cache; clear errors."""

import json
import time
from pathlib import Path

import pytest

from bft import models
from bft.cli import main


def test_local_folder_and_bad_arguments(tiny_model, tmp_path):
    assert models.resolve(tiny_model) == tiny_model
    assert not models.is_adapter(tiny_model)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a model folder"):
        models.resolve(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="nowhere not found: expected a model folder"):
        models.resolve(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match=r"no-such-model not found \(nor in the hub's cache, and the hub is offline"):
        models.resolve("no-such-org/no-such-model")  # offline (the tests' setting): found nowhere


def test_a_name_found_nowhere_is_a_hub_id_only_while_the_hub_is_online_or_holds_it_cached(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    models.check_model("no-such-org/no-such-model")  # passes: found or not when loaded
    for path in ("./runs/nowhere", "runs/demo/nowhere", "~/nowhere"):
        with pytest.raises(ValueError, match=f"model {path} not found: expected"):
            models.check_model(path)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ValueError, match="not found .nor in the hub's cache, and the hub is offline"):
        models.check_model("some-org/cached-model")
    snapshot = tmp_path / "models--some-org--cached-model" / "snapshots" / "0123abcd"  # the hub client's cache layout
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "models--some-org--cached-model" / "refs").mkdir()
    (tmp_path / "models--some-org--cached-model" / "refs" / "main").write_text("0123abcd")
    models.check_model("some-org/cached-model")  # offline, but in the cache: it loads from there


def test_embedded_encoder_is_a_sentence_transformers_folder():
    folder = models.resolve_encoder()
    assert (models.Path(folder) / "modules.json").exists()


@pytest.mark.slow
def test_embedded_model_is_converted_once_then_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("BFT_CACHE", str(tmp_path))
    started = time.perf_counter()
    folder = models.resolve("smollm2-135m-instruct")
    first = time.perf_counter() - started
    config = json.loads((models.Path(folder) / "config.json").read_text())
    assert "quantization_config" not in config and config["dtype"] == "float32"
    assert config["num_hidden_layers"] == 30 and config["vocab_size"] == 49152
    stamp = (models.Path(folder) / "model.safetensors").stat().st_mtime
    started = time.perf_counter()
    assert models.resolve("SmolLM2-135M-Instruct") == folder
    assert time.perf_counter() - started < first / 10
    assert (models.Path(folder) / "model.safetensors").stat().st_mtime == stamp
    assert [p.name for p in tmp_path.joinpath("models").iterdir()] == ["smollm2-135m-instruct"]  # no staging left


def logits_of(model_argument):
    return logits_of_model(models.load_model(model_argument)[0])


def logits_of_model(model):
    import torch

    with torch.no_grad():
        return model(torch.tensor([[5, 17, 42, 99, 7]])).logits


def random_adapter(model_argument, folder, seed):
    """A LoRA adapter on `model_argument` with random, non-zero weights, saved as `bft train --use_peft` saves one
    (PEFT records the loaded model's `name_or_path` as its base)."""
    import torch
    from peft import LoraConfig, get_peft_model

    model, tokenizer = models.load_model(model_argument)
    torch.manual_seed(seed)
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft_model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"]


def test_an_adapter_of_the_embedded_model_loads_from_another_cache(embedded_tiny, tmp_path):
    run = tmp_path / "run"
    assert random_adapter("tiny-embedded", run, seed=0) == "tiny-embedded"  # by its name, not the cache's folder
    before = logits_of(str(run))
    embedded_tiny("cache-b")  # the run folder on another machine, or after the cache was cleaned
    assert (logits_of(str(run)) == before).all()
    # an adapter written before bases were recorded by name names the cache folder; where it is gone, the name counts
    config = json.loads((run / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(tmp_path / "cache-a" / "models" / "tiny-embedded")
    (run / "adapter_config.json").write_text(json.dumps(config))
    assert (logits_of(str(run)) == before).all()


def test_an_adapter_trained_on_an_adapter_keeps_both_and_moves_with_it(tiny_model, tmp_path):
    import shutil

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    first, second = tmp_path / "out" / "runs" / "nll-seed0", tmp_path / "out" / "runs" / "bft-after-nll-seed0"
    assert random_adapter(tiny_model, first, seed=0) == str(Path(tiny_model).resolve())
    assert random_adapter(str(first), second, seed=1) == str(first.resolve())  # on the first, merged
    both = logits_of(str(second))
    base = AutoModelForCausalLM.from_pretrained(tiny_model)  # the second alone on the base would lose the first
    assert not (logits_of_model(PeftModel.from_pretrained(base, second).merge_and_unload()) - both).abs().max() < 1e-4
    shutil.move(tmp_path / "out", tmp_path / "copied")  # a comparison's folder copied to another machine
    assert (logits_of(str(tmp_path / "copied" / "runs" / second.name)) - both).abs().max() < 1e-6


def test_a_merged_adapter_trains_as_a_plain_model(tiny_model, tmp_path):
    """PEFT freezes the base it loads an adapter on; the merged model is trained from in full (`use_peft: false`
    after a LoRA run, GRPO from a LoRA run), so every weight must be trainable again."""
    random_adapter(tiny_model, tmp_path / "run", seed=0)
    model, _ = models.load_model(str(tmp_path / "run"))
    assert all(parameter.requires_grad for parameter in model.parameters())
    assert not any("lora" in name for name, _ in model.named_parameters())


def test_a_base_model_that_cannot_be_found_is_one_line_naming_it(tiny_model, tmp_path, capsys):
    run = tmp_path / "run"
    random_adapter(tiny_model, run, seed=0)
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "Which organ?", "options": {"A": "liver", "B": "spleen"}, "answer_idx": "A"}\n')
    config = json.loads((run / "adapter_config.json").read_text())
    for base in ("/gone/models/llama-3-8b", "no-such-org/no-such-model"):  # a folder elsewhere; a hub id, offline
        config["base_model_name_or_path"] = base
        (run / "adapter_config.json").write_text(json.dumps(config))
        capsys.readouterr()
        assert main(["eval", "mcq", "--model", str(run), "--data", str(questions), "--output",
                     str(tmp_path / "ev")]) == 2
        error = capsys.readouterr().err
        assert f"bft eval mcq: error: {run} is a LoRA adapter of the base model {base}, which cannot be loaded" in error
        assert error.endswith(f"write its path or hub id as base_model_name_or_path in {run / 'adapter_config.json'}\n")
        assert "Traceback" not in error and error.count("\n") == 1
