"""The sample weights tracked over the training set against a plain reference: each sample alone, full logits."""

import pytest
import torch
from transformers import AutoTokenizer

from bft.data.training import load_training_dataset
from bft.trainer import BFTConfig, BFTTrainer
from bft.weight_tracking import SampleWeightTracker, process_share
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


@pytest.mark.parametrize("batches, processes", [(5, 2), (4, 2), (1, 3), (7, 3)])
def test_every_batch_is_kept_once_and_every_process_runs_as_many_forwards(batches, processes):
    """Sharded models (FSDP, ZeRO-3) need every process in every forward: the shares are equally long, and the
    batches whose results are kept are each batch once."""
    batches = [[i] for i in range(batches)]
    shares = [process_share(batches, process, processes) for process in range(processes)]
    assert len({len(share) for share in shares}) == 1
    kept = sorted(batch[0] for share in shares for batch, keep in share if keep)
    assert kept == list(range(len(batches)))
