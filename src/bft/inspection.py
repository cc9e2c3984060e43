"""`bft inspect`: a teacher-forced pass over a data set that shows where the model's knowledge gaps are.

Token log-probabilities come from the trainer's own path: the data is prepared by `BFTTrainer` (TRL's tokenization,
chat template and completion mask) and scored by the trainer's LM head (`model(..., fused_lm_head=True)`: the
project's token head, or TRL's Triton head on GPUs), so what is shown is what BFT would weight. `P_b`, the sample
weight and the v3 token weights come from `bft.losses`, the window statistics from `bft.gaps`. Writes
`samples.jsonl` (per-sample figures), a self-contained `report.html` (`bft.inspection_report`) and, last,
`summary.json`.
"""

import tempfile
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from bft import gaps
from bft.data.records import DataError
from bft.data.training import load_training_dataset
from bft.files import write_json_atomic, write_jsonl_atomic, write_text_atomic
from bft.losses import bft_loss, min_group_confidence
from bft.ranges import AT_LEAST_ONE
from bft.trainer import BFTConfig, BFTTrainer, NoTrainedTokens


def score_dataset(model, tokenizer, data: str, limit=None, batch_size=8, max_length=1024) -> list[dict]:
    """Per sample: the trained tokens' text pieces and log-probabilities, in order. Raises InputError for a `limit`
    under 1, DataError when no sample has a trained token left after truncation at `max_length`."""
    if limit is not None:
        AT_LEAST_ONE.check("limit", limit)
    dataset = load_training_dataset(data)
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    dataset = dataset.add_column("sample_index", list(range(len(dataset))))
    config = BFTConfig(output_dir=tempfile.mkdtemp(prefix="bft-inspect-"), per_device_train_batch_size=batch_size,
                       max_length=max_length, report_to="none", activation_checkpointing=False)
    try:
        trainer = BFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
    except NoTrainedTokens as error:
        raise DataError(data, None, str(error)) from None
    samples = []
    model.eval()
    with trainer:  # the model is given back as it came, without the trainer's LM head and attention
        prepared = trainer.train_dataset
        for start in tqdm(range(0, len(prepared), batch_size), desc=f"scoring {Path(data).name}", unit="batch"):
            rows = [prepared[i] for i in range(start, min(start + batch_size, len(prepared)))]
            batch = trainer.data_collator([{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows])
            with torch.no_grad():
                outputs = trainer.model(**{k: v.to(trainer.model.device) for k, v in batch.items()},
                                        fused_lm_head=True, use_cache=False)
            targets = batch["input_ids"][:, 1:]
            for row, record in enumerate(rows):
                mask = outputs.label_mask[row]
                mask = mask.cpu()
                samples.append({"index": record["sample_index"],
                                "token_ids": targets[row][mask].tolist(),
                                "logprobs": outputs.log_probs[row].cpu()[mask].double().numpy()})
    for sample in samples:
        sample["tokens"] = [tokenizer.decode([t]) for t in sample.pop("token_ids")]
    return samples


def analyse(samples: list[dict], group_size: int, gamma: float, threshold: float) -> dict:
    """Adds per-sample figures to `samples` (in place) and returns the data set's summary."""
    for sample in samples:
        lp = sample["logprobs"]
        as_batch, mask = torch.tensor(lp)[None], torch.ones(1, len(lp), dtype=torch.bool)
        p_min = float(min_group_confidence(as_batch, mask, group_size)[0])
        _, v3 = bft_loss(as_batch, mask, group_size, gamma, token_weighting="group_norm", return_details=True)
        windows = gaps.window_statistics(lp, group_size, threshold)
        weakest = int(np.argmin(windows["group_confidence"])) if windows["group_confidence"] else None
        low = np.exp(lp) < threshold
        sample.update({
            "n_tokens": len(lp),
            "mean_logprob": float(lp.mean()) if len(lp) else 0.0,
            "min_group_confidence": p_min,
            "sample_weight": 1.0 - p_min**gamma,
            "low_fraction": float(low.mean()) if len(lp) else 0.0,
            "longest_low_run": gaps.longest_run(low),
            "weakest_start": windows["weakest_start"],
            "weakest_end": windows["weakest_end"],
            "weakest_low_fraction": windows["low_fraction"][weakest] if weakest is not None else 0.0,
            "weakest_longest_low_run": windows["longest_low_run"][weakest] if weakest is not None else 0,
            "dft_weights": np.exp(lp),
            "v3_weights": v3.token_weights[0].double().numpy(),
            "windows": windows,
            "low": low,
        })
    return summarise(samples)


def _quantiles(values: np.ndarray) -> dict:
    return {f"q{q}": float(np.quantile(values, q / 100)) for q in (10, 50, 90)} if len(values) else {}


def _mean(values) -> float:
    values = np.asarray(values, dtype=float)
    return float(values.mean()) if values.size else float("nan")


def summarise(samples: list[dict]) -> dict:
    """Data-set figures: how many tokens are low, how clustered they are, and where BFT puts its weight."""
    window_low = np.array([x for s in samples for x in s["windows"]["low_fraction"]])
    window_runs = np.array([x for s in samples for x in s["windows"]["longest_low_run"]])
    weights = np.array([s["sample_weight"] for s in samples])
    p_min = np.array([s["min_group_confidence"] for s in samples])
    concat = lambda key: np.concatenate([s[key] for s in samples]) if samples else np.zeros(0)  # noqa: E731
    return {
        "n_samples": len(samples),
        "n_tokens": int(sum(s["n_tokens"] for s in samples)),
        "low_token_fraction": _mean(concat("low")),
        "clustering_ratio": gaps.clustering_ratio([s["low"] for s in samples]),
        "window_low_fraction_mean": _mean(window_low),
        "window_low_fraction": _quantiles(window_low),
        "window_longest_run_mean": _mean(window_runs),
        "window_longest_run": _quantiles(window_runs),
        "min_group_confidence_mean": _mean(p_min),
        "sample_weight_mean": _mean(weights),
        "weight_share_of_hardest_10pct": gaps.weight_share_of_hardest(weights, p_min, 0.1),
        "dft_token_weight_mean": _mean(concat("dft_weights")),
        "v3_token_weight_mean": _mean(concat("v3_weights")),
    }


def sample_row(sample: dict) -> dict:
    """The JSON-safe per-sample figures written to samples.jsonl."""
    keys = ("index", "n_tokens", "mean_logprob", "min_group_confidence", "sample_weight", "low_fraction",
            "longest_low_run", "weakest_start", "weakest_end", "weakest_low_fraction", "weakest_longest_low_run")
    return {key: sample[key] for key in keys}


def inspect_model(model_name, data, output, *, compare=None, group_size=256, gamma=1.0, threshold=0.1, limit=None,
                  batch_size=8, top_k=10) -> dict:
    """Score `data` (and `compare`), write samples.jsonl, summary.json and report.html into `output`."""
    from bft.inspection_report import render_report
    from bft.models import load_for_eval

    model, tokenizer = load_for_eval(model_name)
    sets = {"data": data, **({"compare": compare} if compare else {})}
    results = {}
    for label, path in sets.items():
        samples = score_dataset(model, tokenizer, path, limit, batch_size)
        summary = analyse(samples, group_size, gamma, threshold)
        results[label] = {"path": str(path), "samples": samples, "summary": summary}
    output = Path(output)
    write_jsonl_atomic(output / "samples.jsonl", [{"set": label, **sample_row(s)}
                                                  for label, r in results.items() for s in r["samples"]])
    summary = {"model": model_name, "group_size": group_size, "gamma": gamma, "low_threshold": threshold,
               "sets": {label: {"path": r["path"], **r["summary"]} for label, r in results.items()}}
    write_text_atomic(output / "report.html", render_report(summary, results, top_k))
    write_json_atomic(output / "summary.json", summary)
    return summary
