"""A run folder, as `bft train` and `bft grpo` write it and `bft compare` reuses, resumes and archives it.

The contract, in one place:

- `config.yaml` says what made the run (its resolved recipe); it is written when training starts, so a killed run
  says so too;
- `checkpoint-STEP/` folders (transformers' checkpoints) mean a killed run can be resumed from the last one;
- `metrics.json` is written last: a folder holds a finished run exactly when it exists, and a digest of it
  (`fingerprint`) names the training that made it, as every training writes it anew;
- `log_history.json` (the trainer's log), `start.yaml` (the run it started from, `bft.compare.reuse.record_start`) and
  `sample_weights.json` (`bft train --track_sample_weights`) beside them; with the model they are what
  `bft compare --archive` keeps.

Every file is written atomically (`bft.files`): a reader never sees a half-written one.
"""

import hashlib
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path

import yaml

from bft.errors import InputError
from bft.files import check_writable, write_json_atomic, write_text_atomic

logger = logging.getLogger(__name__)

CONFIG = "config.yaml"
METRICS = "metrics.json"
LOG_HISTORY = "log_history.json"
START = "start.yaml"
SAMPLE_WEIGHTS = "sample_weights.json"
RECORDS = (CONFIG, START, METRICS, LOG_HISTORY, SAMPLE_WEIGHTS)  # what a run is known by, without its model
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")  # transformers' PREFIX_CHECKPOINT_DIR and step


class RunExistsError(InputError):
    """The output folder already holds a finished run."""


def is_finished(run_dir) -> bool:
    """Whether `run_dir` holds a finished run (its `metrics.json`)."""
    return (Path(run_dir) / METRICS).exists()


def checkpoints(run_dir) -> list[Path]:
    """The run's checkpoint folders, by step (`checkpoint-20` before `checkpoint-100`)."""
    found = [path for path in Path(run_dir).glob("checkpoint-*") if _CHECKPOINT.fullmatch(path.name) and path.is_dir()]
    return sorted(found, key=lambda path: int(_CHECKPOINT.fullmatch(path.name)[1]))


def latest_checkpoint(run_dir) -> Path | None:
    """The checkpoint that `--resume_from_checkpoint true` resumes from (None: there is none)."""
    found = checkpoints(run_dir)
    return found[-1] if found else None


def is_resumable(run_dir) -> bool:
    """Whether `run_dir` holds a killed run that can go on from a checkpoint (a finished run is not resumed)."""
    return not is_finished(run_dir) and latest_checkpoint(run_dir) is not None


def has_model(run_dir) -> bool:
    """Whether a run folder holds its trained model (full weights or a LoRA adapter), not only its records."""
    return any(Path(run_dir).glob("*.safetensors")) or any(Path(run_dir).glob("*model*.bin"))  # not training_args.bin


def fingerprint(run_dir) -> str | None:
    """Which training made a finished run: the first 16 hex digits of the SHA-256 of its `metrics.json` (None: not
    a finished run)."""
    metrics = Path(run_dir) / METRICS
    return hashlib.sha256(metrics.read_bytes()).hexdigest()[:16] if metrics.is_file() else None


def read_config(run_dir) -> dict | None:
    """What made the run: its `config.yaml` (None: training never started here)."""
    path = Path(run_dir) / CONFIG
    return yaml.safe_load(path.read_text()) if path.exists() else None


def read_metrics(run_dir) -> dict:
    """A finished run's `metrics.json`."""
    return json.loads((Path(run_dir) / METRICS).read_text())


def read_log_history(run_dir) -> list[dict]:
    """The trainer's log of a finished run (`log_history.json`): one mapping per logging step and evaluation."""
    return json.loads((Path(run_dir) / LOG_HISTORY).read_text())


def refuse_finished(run_dir, overwrite: bool) -> None:
    """Before anything is written: raise `InputError` when `run_dir` cannot be written (`bft.files.check_writable`),
    `RunExistsError` when it holds a finished run and `overwrite` is false; with `overwrite`, the run stops counting
    as finished (its `metrics.json` is removed) until it is again."""
    run_dir = Path(run_dir)
    check_writable(run_dir, folder=True)
    if is_finished(run_dir) and not overwrite:
        raise RunExistsError(f"{run_dir} already holds a finished run; pass --overwrite true or another --output_dir")
    (run_dir / METRICS).unlink(missing_ok=True)


def write_config(run_dir, resolved: dict) -> None:
    """Write `config.yaml`, the resolved recipe (`bft.train.resolved_recipe`), in its fields' order."""
    write_text_atomic(Path(run_dir) / CONFIG, yaml.safe_dump(resolved, sort_keys=False))


def write_results(run_dir, log_history: list[dict], metrics: Callable[[list[dict]], dict]) -> dict:
    """Write `log_history.json`, then whatever `metrics` writes from the log (plots), then its result as
    `metrics.json`, last; returns the metrics."""
    run_dir = Path(run_dir)
    write_json_atomic(run_dir / LOG_HISTORY, log_history)
    summary = metrics(log_history)
    write_json_atomic(run_dir / METRICS, summary)
    return summary


def resume_argument(value):
    """Trainer.train's `resume_from_checkpoint` from the option's text: `true` means the last checkpoint in
    output_dir, `false` (or none) none; any other string is a checkpoint folder."""
    if isinstance(value, str) and value.lower() in ("true", "yes", "1"):
        return True
    if isinstance(value, str) and value.lower() in ("false", "no", "0", "none", ""):
        return None
    return value


def train_run(trainer, run_dir, resolved: dict, resume_from_checkpoint, metrics: Callable) -> Path:
    """The lifecycle of a run whose trainer (a transformers `Trainer`) is built, shared by `bft train` and
    `bft grpo`: `config.yaml` first (`resolved`), training (resumed as `resume_argument` says), the model, then
    `write_results` with `metrics(log_history, train_output)`: `metrics.json` last. Files are written by the main
    process; every process returns once they are. Call `refuse_finished` before building the trainer."""
    run_dir = Path(run_dir)
    if trainer.is_world_process_zero():
        write_config(run_dir, resolved)
    result = trainer.train(resume_from_checkpoint=resume_argument(resume_from_checkpoint))
    trainer.save_model(str(run_dir))
    if trainer.is_world_process_zero():
        summary = write_results(run_dir, trainer.state.log_history, lambda history: metrics(history, result))
        logger.info("Run written to %s: %s", run_dir, json.dumps(summary))
    trainer.accelerator.wait_for_everyone()
    return run_dir
