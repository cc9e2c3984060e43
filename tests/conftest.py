"""Shared fixtures: a tiny randomly initialised causal LM with a small chat tokenizer, built offline in seconds."""

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Triton decorates TRL's kernels when TRL is imported: under its interpreter they also run on CPU tensors, so the
# CUDA branch of the trainer is checked here (tests/test_cuda_branch.py). Nothing else on a CPU runs Triton.
os.environ.setdefault("TRITON_INTERPRET", "1")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def needs_shared_data(*parts):
    """Skip a test, with the reason, where ../shared/data (or a file inside it) is absent."""
    path = SHARED_DATA.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"{path} is absent")


def build_tiny_model(folder: Path, seed: int = 0, **config_fields) -> Path:
    """A 2-layer Llama with a 400-token byte-level BPE tokenizer trained on the packaged demo set; `config_fields`
    replace LlamaConfig's settings below (`hidden_size=256, tie_word_embeddings=False`: an LM head of its own, large
    enough for DeepSpeed ZeRO-3 to shard it)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from bft.data.training import demo_data_path

    texts = [m["content"] for line in demo_data_path().read_text().splitlines() for m in json.loads(line)["messages"]]
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        bos_token=None, chat_template=CHATML)
    torch.manual_seed(seed)
    settings = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                    eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
                    tie_word_embeddings=True)
    config = LlamaConfig(**{**settings, **config_fields})
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny-model")))


@pytest.fixture(scope="session")
def demo_records():
    from bft.data.training import demo_data_path

    return [json.loads(line) for line in demo_data_path().read_text().splitlines()]


@pytest.fixture
def embedded_tiny(tiny_model, tmp_path, monkeypatch):
    """The tiny model standing in for the embedded default, `tiny-embedded`, converted into the cache `cache-a`.
    Returns a function that moves the cache: the converted model, and the old cache gone (another machine)."""
    import shutil

    from bft import models

    monkeypatch.setitem(models.EMBEDDED_MODELS, "tiny-embedded", ("no_such_package", "tiny.gguf"))

    def use_cache(name):
        for old in tmp_path.glob("cache-*"):
            shutil.rmtree(old)
        shutil.copytree(tiny_model, tmp_path / name / "models" / "tiny-embedded")
        monkeypatch.setenv("BFT_CACHE", str(tmp_path / name))

    use_cache("cache-a")
    return use_cache
