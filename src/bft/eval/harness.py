"""A thin bridge to the lm-evaluation-harness: `bft eval mcq --tasks NAMES` runs harness tasks on a bft model.

The harness's hub tasks (`medqa_4options`, `medmcqa`, `mmlu_clinical_knowledge`, ...) need their data from the
hub; `--include-path DIR` adds local task YAML files, and `local_mcq_task` writes one for a JSONL file in the
`medqa_mcq` layout, so the harness scores exactly the questions `bft eval mcq` does. The model is loaded by bft
(embedded names, run folders and LoRA adapters included) and handed to the harness's `HFLM` as an object.
"""

import json
from pathlib import Path

import yaml

from bft.errors import InputError
from bft.eval.output import write_evaluation

LETTERS = "ABCDEFGHIJ"


def local_mcq_task(data, folder, name="bft_local_mcq") -> str:
    """Write a harness task YAML over a `question`/`options`/`answer_idx` JSONL file; returns the task name."""
    task = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(Path(data).resolve())}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "Question: {{question.strip()}}\nAnswer:",
        "doc_to_choice": "{{options.values() | list}}",
        "doc_to_target": "{{(options.keys() | list).index(answer_idx)}}",
        "metric_list": [{"metric": "acc"}, {"metric": "acc_norm"}],
    }
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / f"{name}.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    return name


def check_harness_tasks(tasks: str, include_path=None) -> list[str]:
    """The comma-separated harness task names of `tasks`, each known to the harness (its own tasks and those in
    `include_path`); InputError naming the unknown ones, with near names, before any model loads."""
    from difflib import get_close_matches

    from lm_eval.tasks import TaskManager
    if include_path and not Path(include_path).is_dir():
        raise InputError(f"--include-path {include_path}: no such folder of harness task files")
    names = [name.strip() for name in tasks.split(",") if name.strip()]
    known = TaskManager(include_path=str(include_path) if include_path else None).all_tasks
    unknown = [name for name in names if name not in known]
    if not names or unknown:
        near = {name: get_close_matches(name, known, n=3) for name in unknown}
        hints = "; ".join(f"{name} (near: {', '.join(close)})" if close else name for name, close in near.items())
        raise InputError(f"--tasks: {'no task given' if not names else 'unknown harness task(s) ' + hints}; "
                         "`lm-eval ls tasks` lists them, --include-path adds a folder of your own")
    return names


def run_harness(model, tokenizer, tasks: list[str], output, *, include_path=None, limit=None, batch_size=16) -> dict:
    """Run harness tasks; `results.json` holds each task's accuracy and accuracy_norm."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    harness_model = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    manager = TaskManager(include_path=str(include_path) if include_path else None)
    raw = simple_evaluate(model=harness_model, tasks=tasks, task_manager=manager, limit=limit, log_samples=True)
    results = {"task": "mcq-harness", "tasks": {}}
    predictions = []
    for name in tasks:
        metrics = raw["results"][name]
        results["tasks"][name] = {"accuracy": metrics.get("acc,none"), "accuracy_norm": metrics.get("acc_norm,none"),
                                  "n": len(raw["samples"][name])}
        for sample in raw["samples"][name]:
            scores = [r[0] for r in sample["filtered_resps"]]
            predictions.append({"task": name, "doc_id": sample["doc_id"], "target": sample["target"],
                                "prediction": LETTERS[max(range(len(scores)), key=scores.__getitem__)],
                                "scores": scores})
    json.dumps(results)  # fail here, not half-way through writing, if anything is not serialisable
    return write_evaluation(output, results, predictions)
