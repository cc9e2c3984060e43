"""Tiny randomly initialised models of the architectures users bring, each with the tokenizer quirks of its family.

Every model has 2 layers and hidden size 32; its tokenizer is the embedded SmolLM2 tokenizer (byte-level BPE) cut to
its first `VOCABULARY` tokens and merges, plus the family's special tokens, its chat template and its choice of BOS,
EOS, padding and end-of-turn token:

| family  | architecture             | BOS added | EOS             | pad           | an assistant turn ends with  |
| ------- | ------------------------ | --------- | --------------- | ------------- | ---------------------------- |
| llama   | Llama (Llama-3 template) | yes       | <|end_of_text|> | missing       | <|eot_id|>                   |
| qwen2   | Qwen2 (ChatML)           | no        | <|im_end|>      | <|endoftext|> | <|im_end|>                   |
| qwen3   | Qwen3 (ChatML, base)     | no        | <|endoftext|>   | = EOS         | <|im_end|>, not generation's |
| mistral | Mistral ([INST])         | yes       | </s>            | missing       | </s>                         |
| gemma2  | Gemma 2 (softcapped)     | yes       | <eos>           | <pad>         | <end_of_turn>                |
| gemma3  | Gemma 3 text             | yes       | <eos>           | <pad>         | <end_of_turn>                |
| phi3    | Phi-3                    | no        | <|endoftext|>   | = EOS         | <|end|>                      |

("not generation's": the model's generation_config lists EOS only, as a base model's does.)

Llama 3's and Qwen2's pre-tokenizer patterns replace the embedded (GPT-2) one for those families. Mistral, Gemma and
Phi-3 attend within a sliding window shorter than the samples (16 tokens; Gemma 2: 64), so that the window's masks
are exercised. Built offline, in well under a second each.
"""

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

VOCABULARY = 4096
WINDOW = 16
# How Llama 3 and Qwen2 tokenizers split text before BPE (Qwen2: one digit at a time): a run of newlines is one
# piece, so a template's "\n\n" before the answer tokenizes alike with and without the answer after it
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_SPLIT = LLAMA3_SPLIT.replace(r"\p{N}{1,3}", r"\p{N}")

LLAMA3 = (
    "{{ bos_token }}{% for message in messages %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{{ message['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
MISTRAL = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}[INST] {{ message['content'] }} "
    "[/INST]{% elif message['role'] == 'assistant' %} {{ message['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
)
GEMMA = (
    "{{ bos_token }}{% for message in messages %}{% set role = 'model' if message['role'] == 'assistant' "
    "else message['role'] %}<start_of_turn>{{ role }}\n{{ message['content'] | trim }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
PHI3 = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% else %}{{ eos_token }}{% endif %}"
)


@dataclass(frozen=True)
class Family:
    architecture: str  # transformers config class
    template: str
    eos: str
    end_of_turn: str
    bos: str | None = None  # prepended by the tokenizer (and by the template, as the real ones do)
    pad: str | None = None
    special: tuple = ()  # special tokens beyond the embedded tokenizer's
    generation_eos: tuple = ()  # generation_config.eos_token_id, as the family's models ship it
    split: str | None = None  # the pre-tokenizer's pattern, where it is not the embedded tokenizer's (GPT-2's)
    settings: dict = field(default_factory=dict)


FAMILIES = {
    "llama": Family("LlamaConfig", LLAMA3, eos="<|end_of_text|>", end_of_turn="<|eot_id|>", bos="<|begin_of_text|>",
                    special=("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                             "<|eot_id|>"),
                    generation_eos=("<|end_of_text|>", "<|eot_id|>"), split=LLAMA3_SPLIT,
                    settings={"tie_word_embeddings": False}),
    "qwen2": Family("Qwen2Config", CHATML, eos="<|im_end|>", end_of_turn="<|im_end|>", pad="<|endoftext|>",
                    generation_eos=("<|im_end|>", "<|endoftext|>"), split=QWEN2_SPLIT,
                    settings={"tie_word_embeddings": True}),
    "qwen3": Family("Qwen3Config", CHATML, eos="<|endoftext|>", end_of_turn="<|im_end|>", pad="<|endoftext|>",
                    generation_eos=("<|endoftext|>",), split=QWEN2_SPLIT, settings={"tie_word_embeddings": True}),
    "mistral": Family("MistralConfig", MISTRAL, eos="</s>", end_of_turn="</s>", bos="<s>",
                      special=("<s>", "</s>", "[INST]", "[/INST]"), generation_eos=("</s>",),
                      settings={"sliding_window": WINDOW, "tie_word_embeddings": False}),
    "gemma2": Family("Gemma2Config", GEMMA, eos="<eos>", end_of_turn="<end_of_turn>", bos="<bos>", pad="<pad>",
                     special=("<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"),
                     generation_eos=("<eos>", "<end_of_turn>"),
                     # 64: a wider window than the padding of the tests' batches, where eager attention in float64
                     # (its softmax in float32) makes NaN of a padded position's all-padding window
                     settings={"sliding_window": 64, "final_logit_softcapping": 30.0,
                               "attn_logit_softcapping": 50.0, "query_pre_attn_scalar": 8}),
    "gemma3": Family("Gemma3TextConfig", GEMMA, eos="<eos>", end_of_turn="<end_of_turn>", bos="<bos>", pad="<pad>",
                     special=("<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"),
                     generation_eos=("<eos>", "<end_of_turn>"),
                     settings={"sliding_window": WINDOW, "query_pre_attn_scalar": 8,
                               "layer_types": ["sliding_attention", "full_attention"]}),
    "phi3": Family("Phi3Config", PHI3, eos="<|endoftext|>", end_of_turn="<|end|>", pad="<|endoftext|>",
                   special=("<|system|>", "<|user|>", "<|assistant|>", "<|end|>"),
                   generation_eos=("<|endoftext|>", "<|assistant|>", "<|end|>"),
                   settings={"sliding_window": WINDOW, "tie_word_embeddings": False}),
}


@functools.cache
def embedded_tokenizer_json(size: int = VOCABULARY) -> str:
    """The embedded tokenizer's `tokenizer.json`, cut to its first `size` tokens and the merges that make them (a BPE
    vocabulary is ordered by merge: merge `i` makes token `first + i`, so the cut is itself a consistent BPE)."""
    from bft.models import DEFAULT_MODEL, resolve

    data = json.loads((Path(resolve(DEFAULT_MODEL)) / "tokenizer.json").read_text())
    model = data["model"]
    first = len(model["vocab"]) - len(model["merges"])
    merges = model["merges"][: size - first]
    model["vocab"] = {token: i for token, i in model["vocab"].items() if i < size}
    assert all("".join(pair) in model["vocab"] for pair in merges)
    model["merges"] = merges
    data["added_tokens"] = [token for token in data["added_tokens"] if token["id"] < size]
    return json.dumps(data)


def family_tokenizer(name: str, adds_bos: bool | None = None):
    """The family's tokenizer; `adds_bos` overrides whether it prepends BOS to plain text (the family's default)."""
    from tokenizers import Regex, Tokenizer, pre_tokenizers
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    family = FAMILIES[name]
    core = Tokenizer.from_str(embedded_tokenizer_json())
    if family.split:
        core.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(family.split), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, chat_template=family.template)
    tokenizer.add_special_tokens({"additional_special_tokens": list(family.special)})
    tokenizer.eos_token = family.eos
    tokenizer.pad_token = family.pad
    tokenizer.bos_token = family.bos
    bos = family.bos if adds_bos is None or adds_bos else None
    if adds_bos and bos is None:  # a family without a BOS token of its own: the embedded <|endoftext|>
        tokenizer.bos_token = bos = "<|endoftext|>"
    if bos is not None:
        bos_id = tokenizer.convert_tokens_to_ids(bos)
        tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A $B:1", special_tokens=[(bos, bos_id)])
    return tokenizer


def build_family(name: str, folder, seed: int = 0, adds_bos: bool | None = None) -> Path:
    """Save a tiny randomly initialised model of the family `name`, with its tokenizer, into `folder`."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, GenerationConfig

    family = FAMILIES[name]
    tokenizer = family_tokenizer(name, adds_bos)
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
           "pad_token_id": tokenizer.pad_token_id}
    config = getattr(transformers, family.architecture)(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, max_position_embeddings=1024, **ids, **family.settings)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config = GenerationConfig(
        **ids | {"eos_token_id": [tokenizer.convert_tokens_to_ids(t) for t in family.generation_eos]})
    folder = Path(folder)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
