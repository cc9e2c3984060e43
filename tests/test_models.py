"""The model resolver: the embedded GGUF converted once and reused; local folders; clear errors."""

import json
import time

import pytest

from bft import models


def test_local_folder_and_bad_arguments(tiny_model, tmp_path):
    assert models.resolve(tiny_model) == tiny_model
    assert not models.is_adapter(tiny_model)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a model folder"):
        models.resolve(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="does not exist"):
        models.resolve(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="could not find model"):
        models.resolve("no-such-org/no-such-model")  # offline: the hub cannot be reached


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
