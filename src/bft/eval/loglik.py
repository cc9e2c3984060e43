"""Log-likelihood of continuations given contexts, batched, as the lm-evaluation-harness computes it.

The pair is tokenized whole, `context + continuation`; the continuation's tokens are those past the context's own
tokenization (trailing spaces of the context move to the continuation first). Rows are left-padded, so every
continuation ends at the last position and only its logits are computed (`logits_to_keep`), never the full
`(batch, length, vocab)` tensor.
"""

import torch
from tqdm.auto import tqdm


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], int]:
    """(token ids of the pair, number of continuation tokens at the end)."""
    spaces = len(context) - len(context.rstrip(" "))
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tokenizer(context + continuation, add_special_tokens=False).input_ids
    context_length = len(tokenizer(context, add_special_tokens=False).input_ids)
    return whole, max(len(whole) - context_length, 1)


def continuation_logprobs(model, tokenizer, pairs: list[tuple[str, str]], *, batch_size: int = 16,
                          max_length: int | None = None, desc: str = "scoring") -> list[float]:
    """Summed log-probability of each continuation given its context, in the order of `pairs`."""
    encoded = [encode_pair(tokenizer, context, continuation) for context, continuation in pairs]
    if max_length:  # keep the end: the continuation and the context closest to it
        encoded = [(ids[-max_length:], min(n, max_length - 1)) for ids, n in encoded]
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i][0]))
    scores = [0.0] * len(encoded)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with tqdm(total=len(encoded), desc=desc, unit="option") as progress:
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = max(len(encoded[i][0]) for i in chunk)
            keep = max(encoded[i][1] for i in chunk) + 1
            input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            attention_mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, i in enumerate(chunk):
                ids = encoded[i][0]
                input_ids[row, width - len(ids) :] = torch.tensor(ids)
                attention_mask[row, width - len(ids) :] = 1
            position_ids = (attention_mask.cumsum(1) - 1).clamp(min=0)
            with torch.no_grad():
                logits = model(input_ids=input_ids.to(model.device), attention_mask=attention_mask.to(model.device),
                               position_ids=position_ids.to(model.device), logits_to_keep=keep).logits
            # logits[:, j] predicts token width - keep + j + 1; the last position predicts nothing
            logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
            targets = input_ids[:, width - keep + 1 :].to(logprobs.device)
            token_logprobs = logprobs.gather(-1, targets[..., None])[..., 0]
            for row, i in enumerate(chunk):
                scores[i] = float(token_logprobs[row, -encoded[i][1] :].sum())
            progress.update(len(chunk))
    return scores
