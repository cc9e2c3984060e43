"""A comparison's results without its models (`bft compare --archive DIR`).

A comparison's models and checkpoints take gigabytes; what its report is made of takes a few megabytes: each run's
settings, metrics, loss log and sample weights, each evaluation's record, results and per-item predictions, and the
report itself. The archive holds those files alone, in the comparison's own layout, so it can be kept in version
control or moved to another machine. Copied back into a comparison's `--output`, its runs count as finished and
evaluated: `bft compare` reuses them (the same checks as for any run, `bft.compare.reuse`) and trains only what is left.
Its runs have no model, so none of them can be evaluated anew or started from; the comparison says so before
anything runs.
"""

import shutil
from pathlib import Path

from bft import run_folder
from bft.compare.reuse import EVALUATION_RECORD
from bft.errors import InputError

REPORT_FILES = ("*.md", "*.json", "*.yaml", "*.png")  # report.md, report.json, train-recipe.yaml, plots
EVALUATION_FILES = (EVALUATION_RECORD, "results.json", "summary.json", "predictions.jsonl")


def archive_comparison(output, archive) -> dict:
    """Copy the files of `output` that the report is made of into `archive`, replacing an earlier archive there as
    a whole (it is written beside it first, so a killed copy leaves the earlier one intact); returns what it holds:
    files, bytes, runs (`runs/RUN/`) and evaluations (`evals/RUN/TASK/`), counted by their place under `output`.
    Raises InputError where `output` is no comparison's folder, or where the two folders hold one another."""
    output, archive = Path(output), Path(archive)
    if not (output / "runs").is_dir() and not (output / "evals").is_dir():
        raise InputError(f"{output}: not a comparison's output folder (it has no runs/ or evals/)")
    kept, made = archive.resolve(), output.resolve()
    if kept == made or made in kept.parents or kept in made.parents:
        raise InputError(f"--archive {archive} and the comparison's folder {output} must not hold one another")
    files = sorted({*[path for pattern in REPORT_FILES for path in output.glob(pattern)],
                    *[path for name in run_folder.RECORDS for path in output.glob(f"runs/*/{name}")],
                    *[path for name in EVALUATION_FILES for path in output.glob(f"evals/*/*/{name}")]})
    staging = archive.with_name(f".{archive.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    for path in files:
        target = staging / path.relative_to(output)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    staging.mkdir(parents=True, exist_ok=True)
    earlier = archive.with_name(f".{archive.name}.earlier")
    if archive.exists():
        archive.rename(earlier)
    staging.rename(archive)
    shutil.rmtree(earlier, ignore_errors=True)
    places = [path.relative_to(output).parts for path in files]  # where each file is in the comparison's layout
    return {"archive": str(archive), "files": len(files), "bytes": sum(path.stat().st_size for path in files),
            "runs": len({parts[1] for parts in places if parts[0] == "runs" and len(parts) == 3}),
            "evaluations": len({parts[1:3] for parts in places if parts[0] == "evals" and len(parts) == 4})}
