"""BFT's weights over the whole training set, epoch by epoch: where does the sample weight spread?

`SampleWeightTracker` is a trainer callback: before training and at the end of each epoch it scores every training
sample in one teacher-forced pass without gradient (the trainer's own data preparation and LM head) and records
each sample's `P_b` (minimum group confidence) and `s_b = 1 - P_b ** gamma`, in the order of the prepared training
set, in `sample_weights.json` beside the run; a run resumed from a checkpoint keeps the epochs recorded up to it.
Under several processes each scores its share of the samples (with FSDP or DeepSpeed ZeRO-3 every process must
take part in each forward), and the main process writes the file. `bft train --track_sample_weights true` turns it
on.
"""

import json
import logging
from pathlib import Path

import torch
from accelerate.utils import gather_object
from transformers import TrainerCallback

from bft.files import write_json_atomic
from bft.losses import min_group_confidence
from bft.upstream import DataCollatorForLanguageModeling

logger = logging.getLogger(__name__)


class SampleWeightTracker(TrainerCallback):
    def __init__(self, trainer, path: Path, batch_size=16):
        self.trainer, self.path, self.batch_size = trainer, path, batch_size
        self.epochs = []

    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step == 0:
            self._record(0.0)
        else:  # resumed from a checkpoint: keep the epochs recorded up to it; the model is not at epoch 0
            self.epochs = self._recorded_until(state.epoch)

    def _recorded_until(self, epoch) -> list[dict]:
        if not self.path.exists():
            logger.warning("%s is missing: the epochs before the resumed checkpoint are not recorded", self.path)
            return []
        return [row for row in json.loads(self.path.read_text())["epochs"] if row["epoch"] <= epoch]

    def on_epoch_end(self, args, state, control, **kwargs):
        self._record(float(state.epoch))

    def _record(self, epoch):
        args = self.trainer.args
        p_min = self.min_group_confidences()  # every process takes part
        if not self.trainer.is_world_process_zero():
            return
        self.epochs.append({"epoch": epoch, "min_group_conf": p_min,
                            "sample_weight": [1.0 - p**args.bft_gamma for p in p_min]})
        write_json_atomic(self.path, {"group_size": args.bft_group_size, "gamma": args.bft_gamma,
                                      "samples": len(p_min), "epochs": self.epochs})

    @torch.no_grad()
    def min_group_confidences(self) -> list[float]:
        """P_b of every row of the prepared training set, in order: the data file's samples, less those TRL dropped
        for having no trained token (the trainer warns of them), shuffled if `shuffle_dataset` is set. Unpacked data
        only: `bft train` refuses `track_sample_weights` with packing. Under several processes every process must
        call it; each returns the whole list."""
        trainer = self.trainer
        model = trainer.accelerator.unwrap_model(trainer.model)
        collate = DataCollatorForLanguageModeling(pad_token_id=trainer.processing_class.pad_token_id)
        rows = trainer.train_dataset
        was_training = model.training
        model.eval()
        scored = []  # (row, P_b) of this process's share
        with trainer.patched():  # the trainer's LM head, also after train() gave the model back
            try:
                for chunk, kept in process_share(batches_by_length([len(ids) for ids in rows["input_ids"]],
                                                                   self.batch_size),
                                                 trainer.accelerator.process_index, trainer.accelerator.num_processes):
                    batch = collate([{"input_ids": rows[i]["input_ids"], "labels": rows[i]["labels"]} for i in chunk])
                    batch = {k: v.to(trainer.args.device) for k, v in batch.items()}
                    with trainer.accelerator.autocast():  # the run's precision
                        outputs = model(**batch, fused_lm_head=True, use_cache=False)
                    confidences = min_group_confidence(outputs.log_probs.float(), outputs.label_mask,
                                                       trainer.args.bft_group_size)
                    if kept:
                        scored += zip(chunk, confidences.tolist())
            finally:
                model.train(was_training)
        if trainer.accelerator.num_processes > 1:
            scored = gather_object(scored)
        values = [0.0] * len(rows)
        for i, value in scored:
            values[i] = value
        return values


def process_share(batches: list[list[int]], process: int, processes: int) -> list[tuple[list[int], bool]]:
    """The batches process `process` of `processes` scores, each with whether its result is kept: every `processes`-th
    one, then repeats of a batch (results dropped) until every process runs as many forwards as the others, which
    sharded models (FSDP, ZeRO-3) need."""
    share = [(batch, True) for batch in batches[process::processes]]
    rounds = -(-len(batches) // processes)
    return share + [(batches[0], False)] * (rounds - len(share))  # (`batches_by_length`'s first: its shortest)


def batches_by_length(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Row indices in batches of rows of similar length, so a padded batch holds little padding (on the gene summaries
    of configs/compare-gene-knowledge.yaml, batches in the data's order process 1.86x the tokens)."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
