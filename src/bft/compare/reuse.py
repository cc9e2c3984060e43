"""What `bft compare` may reuse from an earlier, killed or finished, invocation into the same folder.

A comparison reruns cheaply because it reuses finished runs and evaluations; it must never reuse one made otherwise
than the recipe now asks, or the report would show old numbers under new settings. Each output says what made it:

- a run, its `config.yaml` (the resolved training settings, written when training starts; `bft.run_folder`);
- a run started from another run (BFT after SFT, a GRPO stage), `start.yaml`: that run's fingerprint;
- built data, its `meta.json` (the builder's options);
- an evaluation, `evaluation.yaml` beside its results: the model (a run's name and fingerprint, or the untrained
  model's name), the task and the recipe's options.

A run's fingerprint (`bft.run_folder.fingerprint`) is a digest of its `metrics.json`, which every training writes
anew. Data built or a run trained
otherwise (another training of its start included) fails before any training (rebuilding and retraining are the
user's call: they cost hours); an evaluation made otherwise is evaluated again.
"""

import json
from pathlib import Path

import yaml

from bft.errors import InputError
from bft.files import write_text_atomic
from bft.run_folder import START, differences, fingerprint, is_finished, is_resumable, read_config

EVALUATION_RECORD = "evaluation.yaml"
# Fields of a run's config.yaml that say where and how it ran, not what it learned (a moved folder is reused, on
# another machine too: `use_cpu` is set from the machine, bft.precision)
NOT_SETTINGS = ("output_dir", "overwrite", "resume_from_checkpoint", "use_cpu")


def is_reused(run_dir: Path) -> bool:
    """A finished run is reused, and a killed one resumed from its last checkpoint."""
    return is_finished(run_dir) or is_resumable(run_dir)


def check_run(run_dir: Path, requested: dict, start: Path | None = None) -> None:
    """Fail when a run that would be reused or resumed was made with other settings than `requested` (its resolved
    recipe), or, for a run started from the run `start`, from another training of it."""
    if not is_reused(run_dir):
        return
    ignore = (*NOT_SETTINGS, "model_name_or_path") if start is not None else NOT_SETTINGS  # the start is checked
    recorded = read_config(run_dir)
    if recorded is not None:
        different = differences(recorded, requested, ignore=ignore)
        if different:
            raise InputError(f"{run_dir} was trained with other settings than the recipe's ({different}), and "
                             f"this comparison would reuse it. Give another --output, or delete {run_dir} to train "
                             "it again")
    if start is not None:
        recorded = yaml.safe_load((run_dir / START).read_text()) if (run_dir / START).exists() else None
        current = fingerprint(start)
        if current is None or (recorded is not None and recorded["fingerprint"] != current):
            why = "which is to be trained again" if current is None else "as it was before it was trained again"
            raise InputError(f"{run_dir} was trained from {start}, {why}, and this comparison would reuse it. "
                             f"Delete {run_dir} to train it from the new {start.name}")


def check_data(folder: Path, builder: str, options: dict) -> None:
    """Fail when the data built in `folder` (its meta.json) came from another builder or other options than these
    (the builder's defaults included)."""
    meta = json.loads((folder / "meta.json").read_text())
    recorded = {"builder": meta.get("task"), **{key: meta[key] for key in options if key in meta}}
    different = differences(recorded, {"builder": builder, **{key: options[key] for key in options if key in meta}})
    if different:
        raise InputError(f"{folder} was built otherwise than the recipe's build ({different}), and every run would "
                         f"train on it. Delete {folder} to build it again, or give the build another output")


def record_start(run_dir: Path, start: Path) -> None:
    """Note which training of `start` the run `run_dir` starts (or started) from."""
    write_text_atomic(run_dir / START, yaml.safe_dump({"run": start.name, "fingerprint": fingerprint(start)}))


def evaluation_record(made_by: dict, evaluation: dict) -> dict:
    """What makes an evaluation's results: the model (`made_by`) and the options the recipe gives."""
    options = {key: value for key, value in evaluation.items() if key not in ("task", "name") and value is not None}
    return {**made_by, "task": evaluation["task"], **options}


def read_evaluation_record(out: Path) -> dict | None:
    path = out / EVALUATION_RECORD
    return yaml.safe_load(path.read_text()) if path.exists() else None


def write_evaluation_record(out: Path, record: dict) -> None:
    write_text_atomic(out / EVALUATION_RECORD, yaml.safe_dump(record, sort_keys=False))
