"""The sample weights tracked over the training set against a plain reference: each sample alone, full logits."""

import torch
from transformers import AutoTokenizer

from bft.data.training import load_training_dataset
from bft.trainer import BFTConfig, BFTTrainer
from bft.weight_tracking import SampleWeightTracker
from tests.reference_losses import min_group_confidence


def test_tracked_min_group_confidence_equals_each_sample_scored_alone(tiny_model, tmp_path):
    config = BFTConfig(output_dir=str(tmp_path), loss_type="bft", bft_group_size=4, report_to="none", bf16=False)
    trainer = BFTTrainer(model=tiny_model, args=config, processing_class=AutoTokenizer.from_pretrained(tiny_model),
                         train_dataset=load_training_dataset("demo").select(range(10)))
    rows = trainer.train_dataset
    lengths = [len(row["input_ids"]) for row in rows]
    assert lengths != sorted(lengths) and lengths != sorted(lengths, reverse=True)  # batching by length reorders
    tracked = SampleWeightTracker(trainer, tmp_path / "weights.json", batch_size=4).min_group_confidences()

    expected = []
    with torch.no_grad():
        for row in rows:
            input_ids, labels = torch.tensor([row["input_ids"]]), torch.tensor(row["labels"])
            logprobs = torch.log_softmax(trainer.model(input_ids=input_ids).logits[0, :-1].float(), dim=-1)
            targets = labels[1:]
            token_logprobs = logprobs.gather(-1, targets.clamp(min=0)[:, None])[:, 0]
            expected += min_group_confidence(token_logprobs[None], (targets != -100)[None], group_size=4)
    assert len(tracked) == len(rows)
    assert torch.allclose(torch.tensor(tracked), torch.tensor(expected), rtol=1e-4, atol=1e-7)
    assert len({round(value, 6) for value in expected}) == len(rows)  # distinct: a row out of place would show
