"""What a run had trained when each of its checkpoints was saved, kept in the checkpoint (`TOTALS`), so that a run
resumed from it reports the whole run's figures in `metrics.json`: transformers' `TrainOutput` counts the steps of
the current `train()` call only, and SFTTrainer's token count starts at 0 in each. Part of the run folder's contract
(`bft.run_folder`).
"""

import json
import logging
import time
from pathlib import Path

from transformers import TrainerCallback
from transformers.trainer_utils import TrainOutput

from bft.errors import InputError
from bft.files import write_json_atomic
from bft.upstream import session_loss_sum, set_trained_tokens, trained_tokens

logger = logging.getLogger(__name__)

TOTALS = "run_totals.json"  # in each checkpoint: its step, loss sum, trained tokens, seconds and processes


class RunTotals(TrainerCallback):
    """What the run had trained when each checkpoint was saved, written into it (`TOTALS`: its step, the sum of its
    step losses, its trained tokens, its seconds of training and its number of processes), and, from those of the
    checkpoint a run resumes from, the whole run's `TrainOutput`: transformers reports the steps of the current
    `train()` call only.

    Raises InputError where the run would resume with another number of processes than saved the checkpoint: each
    step's batch (processes x per-device batch x accumulation) would differ, which makes another run."""

    def __init__(self, trainer, resumed_from: Path | None):
        self.trainer, self.start = trainer, time.time()
        self.before = {"step": 0, "loss_sum": 0.0, "tokens": 0, "runtime": 0.0}
        if resumed_from is not None and (resumed_from / TOTALS).is_file():
            self.before = json.loads((resumed_from / TOTALS).read_text())
            saved, now = self.before.get("processes", 1), trainer.accelerator.num_processes
            if saved != now:
                raise InputError(f"{resumed_from} was saved by a run of {saved} process(es), and this one has {now}: "
                                 f"each step's batch would differ, which makes another run. Resume it with "
                                 f"{saved} (accelerate launch --num_processes {saved}), or train anew in another "
                                 "--output_dir")
            set_trained_tokens(trainer, self.before["tokens"])
        elif resumed_from is not None:  # a checkpoint written before bft kept its totals
            self.before = None
            logger.warning("%s does not say what the run trained before it: train_loss, train_tokens and "
                           "train_runtime in metrics.json count the steps after it only", resumed_from)

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.time()

    def on_save(self, args, state, control, **kwargs):
        if self.before is None:
            return
        totals = {"step": state.global_step,
                  "loss_sum": self.before["loss_sum"] + session_loss_sum(self.trainer),  # every process: gathered
                  "tokens": trained_tokens(self.trainer),
                  "runtime": self.before["runtime"] + time.time() - self.start,
                  "processes": self.trainer.accelerator.num_processes}
        if state.is_world_process_zero:
            write_json_atomic(Path(args.output_dir) / f"checkpoint-{state.global_step}" / TOTALS, totals)

    def whole_run(self, result: TrainOutput) -> TrainOutput:
        """The run's `TrainOutput` from the current call's `result`: its mean step loss, runtime and throughput over
        every step (the same as `result`'s for a run that was not resumed)."""
        if self.before is None or self.before["step"] == 0:
            return result
        steps_now = result.global_step - self.before["step"]
        loss = (self.before["loss_sum"] + result.training_loss * steps_now) / max(result.global_step, 1)
        runtime = self.before["runtime"] + result.metrics["train_runtime"]
        metrics = {**result.metrics, "train_loss": loss, "train_runtime": runtime}
        for rate in ("train_samples_per_second", "train_steps_per_second"):  # this call's rate, over every step
            if rate in result.metrics and steps_now > 0 and runtime > 0:
                done_now = result.metrics[rate] * result.metrics["train_runtime"]
                metrics[rate] = round(done_now * result.global_step / steps_now / runtime, 3)
        return TrainOutput(result.global_step, loss, metrics)
