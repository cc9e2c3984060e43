"""Batched greedy generation with the model's chat template, in a deterministic order.

Prompts are sorted by length and batched up to `batch_size` rows and `max_batch_tokens` tokens (rows x the longest
prompt and answer of the batch), each batch holding lengths within a factor of two of its longest: short prompts go
many at a time, where decoding costs little more per row, and one long prompt does not pad a large batch to its
length. A reply ends at the token that ends an assistant turn in the chat template (`stop_token_ids`). What
generation cuts is counted and logged (`generate`): answers stopped by `max_new_tokens` and prompts longer
than the model's context.
"""

import logging
from typing import NamedTuple

import torch
from jinja2 import TemplateError
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

MAX_BATCH_TOKENS = 16384


def length_batches(lengths: list[int], batch_size: int, max_tokens: int, max_ratio: float = 2.0) -> list[list[int]]:
    """Indices of `lengths` in batches, longest first: each at most `batch_size` rows, at most `max_tokens` (rows x
    its longest length) past its first row, and no length under 1/`max_ratio` of its longest."""
    batches = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        batch = batches[-1] if batches else None
        longest = lengths[batch[0]] if batch else 0
        if (batch and len(batch) < batch_size and (len(batch) + 1) * longest <= max_tokens
                and max_ratio * lengths[index] >= longest):
            batch.append(index)
        else:
            batches.append([index])
    return batches


def stop_token_ids(model, tokenizer) -> list[int]:
    """Token ids at which a reply ends: the model's `generation_config.eos_token_id` (one id or a list), the
    tokenizer's EOS, and the special token the chat template ends an assistant turn with (`<|im_end|>`, `<|eot_id|>`,
    `<end_of_turn>`, `<|end|>`, ...), which the configuration of a base model or of a model fine-tuned with another
    template may not list."""
    configured = model.generation_config.eos_token_id
    ids = [configured] if isinstance(configured, int) else list(configured or [])
    ids += [tokenizer.eos_token_id, template_turn_end(tokenizer)]
    return list(dict.fromkeys(i for i in ids if i is not None))


def template_turn_end(tokenizer) -> int | None:
    """The special token the chat template writes right after an assistant message's text, or None (no template, or
    text follows the message)."""
    marker = "bft-turn-end-probe"
    messages = [{"role": "user", "content": "?"}, {"role": "assistant", "content": marker}]
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False)
    except (ValueError, TemplateError):  # no template, or one that refuses such a conversation
        return None
    if marker not in text:
        return None
    special = set(tokenizer.all_special_ids) | {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    for token in tokenizer(text[text.rindex(marker) + len(marker):], add_special_tokens=False).input_ids:
        if token in special:
            return token
        if tokenizer.decode([token]).strip():
            return None
    return None


class Generated(NamedTuple):
    answers: list[str]  # one per prompt, in order
    cut: list[bool]  # per prompt: the answer reached max_new_tokens before the model ended it
    over_context: int  # prompts that, with max_new_tokens, exceed the model's context (max_position_embeddings)


def generate(model, tokenizer, prompts: list[str], *, max_new_tokens: int = 64, batch_size: int = 16,
             max_batch_tokens: int = MAX_BATCH_TOKENS, max_length_ratio: float = 2.0, repetition_penalty: float = 1.0,
             desc: str | None = "generating", warn: bool = True) -> Generated:
    """One greedy answer per user prompt, in order, with what was cut; `desc=None`: no progress bar.
    `max_batch_tokens` and `max_length_ratio` bound a batch's padding (`length_batches`); infinite values give plain
    batches of `batch_size` prompts sorted by length. `repetition_penalty` > 1 divides the positive logits of tokens
    already in the prompt or answer by it (and multiplies the negative ones): a common remedy for looping text.

    Answers end at the model's end-of-turn token (`stop_token_ids`); one is cut when its `max_new_tokens` tokens
    hold none. Cut answers and prompts longer than the model's context are counted, and logged as a
    warning when there are any (`warn=False`: not logged, for a caller that generates in parts and warns once)."""
    texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                           add_generation_prompt=True) for p in prompts]
    lengths = [len(tokenizer(t, add_special_tokens=False).input_ids) + max_new_tokens for t in texts]
    answers, cut = [""] * len(texts), [False] * len(texts)
    stop = stop_token_ids(model, tokenizer)
    tokenizer.padding_side = "left"
    with tqdm(total=len(texts), desc=desc, unit="prompt", disable=desc is None) as progress:
        for chunk in length_batches(lengths, batch_size, max_batch_tokens, max_length_ratio):
            inputs = tokenizer([texts[i] for i in chunk], return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.no_grad():
                output = model.generate(**inputs.to(model.device), max_new_tokens=max_new_tokens, do_sample=False,
                                        repetition_penalty=repetition_penalty, eos_token_id=stop,
                                        pad_token_id=tokenizer.pad_token_id)
            new_tokens = output[:, inputs["input_ids"].shape[1] :]
            ended = torch.isin(new_tokens, torch.tensor(stop, device=new_tokens.device)).any(dim=1).tolist()
            for i, text, done in zip(chunk, tokenizer.batch_decode(new_tokens, skip_special_tokens=True), ended):
                answers[i], cut[i] = text.strip(), not done
            progress.update(len(chunk))
    if warn and any(cut):
        logger.warning("%d of %d answers reached max_new_tokens (%d) before the model ended them, and are cut there "
                       "(a larger max_new_tokens lets them finish)", sum(cut), len(cut), max_new_tokens)
    context = getattr(model.config, "max_position_embeddings", None)
    over_context = sum(length > context for length in lengths) if context else 0
    if warn and over_context:
        logger.warning("%d of %d prompts, with max_new_tokens (%d), are longer than the model's context of %d tokens: "
                       "their answers are written past it", over_context, len(texts), max_new_tokens, context)
    return Generated(answers, cut, over_context)


def generate_answers(model, tokenizer, prompts: list[str], **options) -> list[str]:
    """The answers of `generate` (same options) alone."""
    return generate(model, tokenizer, prompts, **options).answers

