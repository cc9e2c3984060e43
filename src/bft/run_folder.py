"""A run folder, as `bft train` and `bft grpo` write it and `bft compare` reuses, resumes and archives it.

The contract, in one place:

- `config.yaml` says what made the run (its resolved recipe); it is written when training starts, so a killed run
  says so too;
- `checkpoint-STEP/` folders (transformers' checkpoints) mean a killed run can be resumed from the last one, with the
  settings it was made with; each holds `run_totals.json`, what the run had trained by then, so that a resumed run's
  metrics are the whole run's (`bft.run_totals`);
- `metrics.json` is written last: a folder holds a finished run exactly when it exists, and a digest of it
  (`fingerprint`) names the training that made it, as every training writes it anew, with when it finished;
- `log_history.json` (the trainer's log), `start.yaml` (the run it started from, `bft.compare.reuse.record_start`) and
  `sample_weights.json` (`bft train --track_sample_weights`) beside them; with the model they are what
  `bft compare --archive` keeps.

Every file is written atomically (`bft.files`): a reader never sees a half-written one.
"""

import hashlib
import json
import logging
import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
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
# Settings transformers 5 renamed: deprecated name -> current name (the old one mirrors the new one); a config.yaml
# written before the rename is read under the current names
RENAMED = {"gradient_checkpointing": "activation_checkpointing",
           "gradient_checkpointing_kwargs": "activation_checkpointing_kwargs"}
# What a run may change when it resumes, as the model it learns does not depend on it and a resumed trainer takes it
# from the command, not from the checkpoint (which keeps its logging, saving and evaluation steps): where it is
# written and runs (`use_cpu`, which bft.precision sets from the machine and the processes; their number is
# checked by bft.run_totals), how long it trains, its evaluation data and batch, how many checkpoints it keeps,
# where it reports
MAY_CHANGE_ON_RESUME = ("output_dir", "overwrite", "resume_from_checkpoint", "use_cpu", "max_steps",
                        "num_train_epochs", "eval_data", "per_device_eval_batch_size", "save_total_limit", "report_to",
                        "run_name", "disable_tqdm")
MAY_CHANGE_ON_RESUME_PREFIXES = ("dataloader_", "push_to_hub", "hub_")


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
    """What made the run: its `config.yaml`, settings `RENAMED` since under their current names (None: training
    never started here)."""
    path = Path(run_dir) / CONFIG
    if not path.exists():
        return None
    return {RENAMED.get(key, key): value for key, value in yaml.safe_load(path.read_text()).items()}


def read_metrics(run_dir) -> dict:
    """A finished run's `metrics.json`."""
    return json.loads((Path(run_dir) / METRICS).read_text())


def read_log_history(run_dir) -> list[dict]:
    """The trainer's log of a finished run (`log_history.json`): one mapping per logging step and evaluation."""
    return json.loads((Path(run_dir) / LOG_HISTORY).read_text())


def prepare(run_dir, resolved: dict, overwrite: bool, resume_from_checkpoint) -> Path | None:
    """Before a model loads or anything is written: the checkpoint that training resumes from (None: it starts
    anew), as `resume_from_checkpoint` asks (`resume_checkpoint`).

    Raises `InputError` when `run_dir` cannot be written (`bft.files.check_writable`); `RunExistsError` when it
    holds a finished run and `overwrite` is false; `InputError` when the checkpoint asked for is not there, when the
    run it resumes was made with other settings than `resolved` (`check_resumed_settings`), and when `run_dir` holds
    the checkpoints of a killed run that is neither resumed nor overwritten (a rerun would silently start over).
    With `overwrite`, a finished run stops counting as finished (its `metrics.json` is removed) until it is again,
    and the checkpoints of an earlier run that is not resumed are deleted."""
    run_dir = Path(run_dir)
    check_writable(run_dir, folder=True)
    if is_finished(run_dir) and not overwrite:
        raise RunExistsError(f"{run_dir} already holds a finished run; pass --overwrite true or another --output_dir")
    checkpoint = resume_checkpoint(run_dir, resume_from_checkpoint)
    if checkpoint is not None:
        check_resumed_settings(checkpoint, resolved)
    elif checkpoints(run_dir) and not is_finished(run_dir) and not overwrite:
        raise InputError(f"{run_dir} holds the checkpoints of a run that did not finish (the last: "
                         f"{latest_checkpoint(run_dir).name}): pass --resume_from_checkpoint true to go on from it, "
                         "or --overwrite true to train anew")
    elif overwrite:
        for folder in checkpoints(run_dir):  # an earlier run's: a later resume must not find them
            shutil.rmtree(folder, ignore_errors=True)  # (every process may delete them)
    (run_dir / METRICS).unlink(missing_ok=True)
    return checkpoint


def resume_checkpoint(run_dir, resume_from_checkpoint) -> Path | None:
    """The checkpoint `--resume_from_checkpoint VALUE` resumes from: for `true` the last one in `run_dir`, for a
    folder that folder, for `false` or none None. InputError where that checkpoint is not there, or the folder is
    none (it lacks transformers' `trainer_state.json`: a run folder, say)."""
    wanted = resume_argument(resume_from_checkpoint)
    if not wanted:
        return None
    if wanted is True:
        found = latest_checkpoint(run_dir)
        if found is None:
            raise InputError(f"--resume_from_checkpoint true: {run_dir} holds no checkpoint to resume from (a run "
                             "saves them with save_strategy steps or epoch)")
        return found
    if not Path(wanted).is_dir():
        raise InputError(f"--resume_from_checkpoint {wanted}: no such checkpoint folder")
    if not (Path(wanted) / "trainer_state.json").is_file():
        raise InputError(f"--resume_from_checkpoint {wanted}: not a checkpoint (no trainer_state.json); a run's "
                         "checkpoints are its checkpoint-STEP folders")
    return Path(wanted)


def check_resumed_settings(checkpoint: Path, resolved: dict) -> None:
    """InputError when the run that saved `checkpoint` (its folder's `config.yaml`) was made with other settings
    than `resolved`, other than those `MAY_CHANGE_ON_RESUME` (a resumed run with another loss or learning rate would
    be neither run), or saved the model alone (`save_only_model`: no optimizer or schedule to resume)."""
    run_dir = checkpoint.parent
    recorded = read_config(run_dir)
    if recorded is None:
        logger.warning("%s has no %s: nothing says what made %s, which resumes with the settings given now",
                       run_dir, CONFIG, checkpoint.name)
        return
    ignored = {key for key in recorded.keys() | resolved.keys() if _may_change_on_resume(key)}
    if (run_dir / START).exists():  # a run started from another names it by a path that moves with the comparison:
        ignored.add("model_name_or_path")  # bft.compare.reuse checks that start by its fingerprint instead
    changed = differences(recorded, resolved, now="given now", ignore=ignored)
    if changed:
        raise InputError(f"{run_dir} was trained with other settings ({changed}): resume {checkpoint.name} with "
                         f"the settings in {run_dir / CONFIG}, or train anew in another --output_dir")
    if recorded.get("save_only_model"):
        raise InputError(f"{checkpoint} holds the model alone (save_only_model: true), without the optimizer and "
                         "learning-rate schedule a resumed run goes on with: train anew (--overwrite true), from it "
                         f"if you wish (--model_name_or_path {checkpoint})")


def _may_change_on_resume(key: str) -> bool:
    return key in MAY_CHANGE_ON_RESUME or key.startswith(MAY_CHANGE_ON_RESUME_PREFIXES)


def differences(recorded: dict, requested: dict, now: str = "in the recipe", ignore=()) -> str:
    """'key: old there, new NOW; ...' for every key but those in `ignore` whose values differ ('' when none does);
    a key one of them lacks is at its default (a config.yaml records only the settings that differ from theirs)."""
    keys = sorted(key for key in recorded.keys() | requested.keys()
                  if key not in ignore and recorded.get(key) != requested.get(key))
    return "; ".join(f"{key}: {_setting(recorded, key)} there, {_setting(requested, key)} {now}" for key in keys)


def _setting(settings: dict, key: str) -> str:
    return repr(settings[key]) if key in settings else "the default"


def write_config(run_dir, resolved: dict) -> None:
    """Write `config.yaml`, the resolved recipe (`bft.train.resolved_recipe`), in its fields' order."""
    write_text_atomic(Path(run_dir) / CONFIG, yaml.safe_dump(resolved, sort_keys=False))


def write_results(run_dir, log_history: list[dict], metrics: Callable[[list[dict]], dict]) -> dict:
    """Write `log_history.json`, then whatever `metrics` writes from the log (plots), then its result as
    `metrics.json`, last, with `finished_at` (UTC, to the microsecond): two trainings that give the same figures (a
    deterministic run trained again, runtimes alike to 0.1 ms) still write different files, so `fingerprint` tells
    them apart. Returns the metrics."""
    run_dir = Path(run_dir)
    write_json_atomic(run_dir / LOG_HISTORY, log_history)
    summary = {**metrics(log_history), "finished_at": datetime.now(UTC).isoformat()}
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


def train_run(trainer, run_dir, resolved: dict, checkpoint: Path | None, metrics: Callable) -> Path:
    """The lifecycle of a run whose trainer (a transformers `Trainer`) is built, shared by `bft train` and
    `bft grpo`: `config.yaml` first (`resolved`), training (resumed from `checkpoint`, which `prepare` gives), the
    model, then `write_results` with `metrics(log_history, train_output)`, `train_output` the whole run's
    (`bft.run_totals.RunTotals`): `metrics.json` last. Files are written by the main process; every process returns
    once they are. Call `prepare` before building the trainer."""
    from bft.run_totals import RunTotals  # (transformers' trainer modules: seconds to import, which readers skip)

    run_dir = Path(run_dir)
    totals = RunTotals(trainer, checkpoint)  # (first: it may refuse the checkpoint)
    if trainer.is_world_process_zero():
        write_config(run_dir, resolved)
    trainer.add_callback(totals)
    result = totals.whole_run(trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None))
    trainer.save_model(str(run_dir))
    if trainer.is_world_process_zero():
        history = _whole_run_summary(trainer.state.log_history, result)
        summary = write_results(run_dir, history, lambda history: metrics(history, result))
        logger.info("Run written to %s: %s", run_dir, json.dumps(summary))
    trainer.accelerator.wait_for_everyone()
    return run_dir


def _whole_run_summary(log_history: list[dict], result) -> list[dict]:
    """The trainer's log with its closing summary row (`train_loss`, `train_runtime`, ...: the current `train()`
    call's) given the whole run's figures from `result`, as `metrics.json` gives them."""
    if not log_history or "train_loss" not in log_history[-1]:
        return log_history
    closing = log_history[-1]
    return [*log_history[:-1], {**closing, **{key: value for key, value in result.metrics.items() if key in closing}}]
