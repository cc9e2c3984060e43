"""Batched greedy generation with the model's chat template, in a deterministic order."""

import torch
from tqdm.auto import tqdm


def generate_answers(model, tokenizer, prompts: list[str], *, max_new_tokens: int = 64, batch_size: int = 16,
                     desc: str | None = "generating") -> list[str]:
    """One greedy answer per user prompt, batched by length (less padding), in order; `desc=None`: no progress bar."""
    texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                           add_generation_prompt=True) for p in prompts]
    lengths = [len(tokenizer(t, add_special_tokens=False).input_ids) for t in texts]
    order = sorted(range(len(texts)), key=lambda i: -lengths[i])
    answers = [""] * len(texts)
    tokenizer.padding_side = "left"
    with tqdm(total=len(texts), desc=desc, unit="prompt", disable=desc is None) as progress:
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            inputs = tokenizer([texts[i] for i in chunk], return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.no_grad():
                output = model.generate(**inputs.to(model.device), max_new_tokens=max_new_tokens, do_sample=False,
                                        pad_token_id=tokenizer.pad_token_id)
            new_tokens = output[:, inputs["input_ids"].shape[1] :]
            for i, text in zip(chunk, tokenizer.batch_decode(new_tokens, skip_special_tokens=True)):
                answers[i] = text.strip()
            progress.update(len(chunk))
    return answers
