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

from bft.files import write_json_atomic
from bft.upstream import session_loss_sum, set_trained_tokens, trained_tokens

logger = logging.getLogger(__name__)

TOTALS = "run_totals.json"  # in each checkpoint: its step, the sum of the step losses, trained tokens, seconds


class RunTotals(TrainerCallback):
    """What the run had trained when each checkpoint was saved, written into it (`TOTALS`: its step, the sum of its
    step losses, its trained tokens and seconds of training), and, from those of the checkpoint a run resumes from,
    the whole run's `TrainOutput`: transformers reports the steps of the current `train()` call only."""

    def __init__(self, trainer, resumed_from: Path | None):
        self.trainer, self.start = trainer, time.time()
        self.before = {"step": 0, "loss_sum": 0.0, "tokens": 0, "runtime": 0.0}
        if resumed_from is not None and (resumed_from / TOTALS).is_file():
            self.before = json.loads((resumed_from / TOTALS).read_text())
            set_trained_tokens(trainer, self.before["tokens"])
        elif resumed_from is not None:  # a checkpoint written before bft kept its totals
            self.before = None
            logger.warning("%s does not say what the run trained before it: train_loss, train_tokens and "
                           "train_runtime in metrics.json count the steps after it only", resumed_from)

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.time()

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.before is not None:
            write_json_atomic(Path(args.output_dir) / f"checkpoint-{state.global_step}" / TOTALS, {
                "step": state.global_step,
                "loss_sum": self.before["loss_sum"] + session_loss_sum(self.trainer),
                "tokens": trained_tokens(self.trainer),
                "runtime": self.before["runtime"] + time.time() - self.start})

    def whole_run(self, result: TrainOutput) -> TrainOutput:
        """The run's `TrainOutput` from the current call's `result`: its mean step loss and runtime over every step
        (the same as `result`'s for a run that was not resumed)."""
        if self.before is None or self.before["step"] == 0:
            return result
        loss_sum = self.before["loss_sum"] + result.training_loss * (result.global_step - self.before["step"])
        loss = loss_sum / max(result.global_step, 1)
        runtime = self.before["runtime"] + result.metrics["train_runtime"]
        return TrainOutput(result.global_step, loss, {**result.metrics, "train_loss": loss, "train_runtime": runtime})
