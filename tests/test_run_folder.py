"""The run folder's contract (`bft.run_folder`): finished, resumable, refused; config written first, metrics last."""

import json
from datetime import datetime
from types import SimpleNamespace

import pytest
import yaml
from transformers.trainer_utils import TrainOutput

from bft import run_folder, run_totals
from bft.errors import InputError


class FakeTrainer:
    """What `train_run` uses of a transformers Trainer; notes which run files exist when it trains and saves."""

    def __init__(self, run_dir, main=True, fails=False):
        self.run_dir, self.main, self.fails, self.seen = run_dir, main, fails, {}
        self.state = SimpleNamespace(log_history=[{"loss": 2.0, "step": 1}, {"loss": 1.5, "step": 2}])
        self.accelerator = SimpleNamespace(wait_for_everyone=lambda: self.seen.setdefault("waited", True))
        self.callbacks = []

    def add_callback(self, callback):
        self.callbacks.append(callback)

    def is_world_process_zero(self):
        return self.main

    def _files(self):
        return sorted(path.name for path in self.run_dir.iterdir()) if self.run_dir.exists() else []

    def train(self, resume_from_checkpoint=None):
        self.seen["train"] = (self._files(), resume_from_checkpoint)
        if self.fails:
            raise KeyboardInterrupt  # a run killed while it trains
        return TrainOutput(2, 1.75, {"train_runtime": 3.0})

    def save_model(self, folder):
        self.seen["save_model"] = self._files()
        (self.run_dir / "model.safetensors").write_bytes(b"")


def test_finished_and_resumable_runs_are_told_apart(tmp_path):
    run_dir = tmp_path / "bft-seed0"
    assert not run_folder.is_finished(run_dir) and not run_folder.is_resumable(run_dir)
    assert run_folder.checkpoints(run_dir) == [] and run_folder.latest_checkpoint(run_dir) is None
    for step in (100, 20, 3):
        (run_dir / f"checkpoint-{step}").mkdir(parents=True)
    (run_dir / "checkpoint-7").write_text("")  # a file, and a folder without a step, are no checkpoints
    (run_dir / "checkpoint-best").mkdir()
    found = [path.name for path in run_folder.checkpoints(run_dir)]
    assert found == ["checkpoint-3", "checkpoint-20", "checkpoint-100"]
    assert run_folder.latest_checkpoint(run_dir) == run_dir / "checkpoint-100"
    assert run_folder.is_resumable(run_dir) and not run_folder.is_finished(run_dir)
    (run_dir / "metrics.json").write_text("{}")
    assert run_folder.is_finished(run_dir) and not run_folder.is_resumable(run_dir)  # a finished run is not resumed
    assert not run_folder.has_model(run_dir)
    (run_dir / "adapter_model.safetensors").write_bytes(b"")
    assert run_folder.has_model(run_dir)


def test_a_finished_run_is_refused_unless_overwritten(tmp_path):
    run_dir = tmp_path / "run"
    assert run_folder.prepare(run_dir, {}, overwrite=False, resume_from_checkpoint=None) is None
    assert not run_dir.exists()  # nothing there: nothing to refuse, nothing made
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text('{"train_loss": 1.0}')
    with pytest.raises(run_folder.RunExistsError, match=f"^{run_dir} already holds a finished run; pass --overwrite"):
        run_folder.prepare(run_dir, {}, overwrite=False, resume_from_checkpoint=None)
    assert issubclass(run_folder.RunExistsError, InputError) and run_folder.is_finished(run_dir)
    run_folder.prepare(run_dir, {}, overwrite=True, resume_from_checkpoint=None)
    assert not run_folder.is_finished(run_dir)  # no longer finished until it is trained again


def killed_run(run_dir, config: dict):
    """A run folder as a run killed after its checkpoints at steps 2 and 4 leaves it."""
    run_folder.write_config(run_dir, config)
    for step in (2, 4):
        (run_dir / f"checkpoint-{step}").mkdir()
        (run_dir / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    return run_dir


def test_a_killed_run_is_neither_restarted_nor_resumed_unasked(tmp_path):
    """A rerun without --resume_from_checkpoint would train anew over the checkpoints: it is refused, pointing at
    both ways on; with overwrite the earlier run's checkpoints go, so that no later resume finds them."""
    run_dir = killed_run(tmp_path / "run", {"loss_type": "bft"})
    with pytest.raises(InputError, match=r"holds the checkpoints of a run that did not finish \(the last: "
                                         r"checkpoint-4\): pass --resume_from_checkpoint true .* --overwrite true"):
        run_folder.prepare(run_dir, {"loss_type": "bft"}, overwrite=False, resume_from_checkpoint=None)
    assert run_folder.prepare(run_dir, {"loss_type": "bft"}, False, "true") == run_dir / "checkpoint-4"
    assert run_folder.prepare(run_dir, {"loss_type": "bft"}, False, str(run_dir / "checkpoint-2")) == (
        run_dir / "checkpoint-2")
    assert run_folder.checkpoints(run_dir)  # resuming keeps them, even with overwrite (as bft compare passes it)
    assert run_folder.prepare(run_dir, {"loss_type": "bft"}, True, "true") == run_dir / "checkpoint-4"
    assert run_folder.prepare(run_dir, {"loss_type": "dft"}, overwrite=True, resume_from_checkpoint=None) is None
    assert run_folder.checkpoints(run_dir) == []


def test_a_checkpoint_that_is_not_there_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with pytest.raises(InputError, match=f"--resume_from_checkpoint true: {run_dir} holds no checkpoint to resume"):
        run_folder.prepare(run_dir, {}, overwrite=False, resume_from_checkpoint="true")
    with pytest.raises(InputError, match="--resume_from_checkpoint runs/x/checkpoint-9: no such checkpoint folder"):
        run_folder.prepare(run_dir, {}, overwrite=False, resume_from_checkpoint="runs/x/checkpoint-9")
    with pytest.raises(InputError, match=f"--resume_from_checkpoint {run_dir}: not a checkpoint"):  # a run folder
        run_folder.prepare(tmp_path / "other", {}, overwrite=False, resume_from_checkpoint=str(run_dir))


def test_checkpoints_of_the_model_alone_are_not_resumed(tmp_path):
    """save_only_model checkpoints lack the optimizer and schedule: transformers would resume them with fresh ones,
    silently another run."""
    run_dir = killed_run(tmp_path / "run", {"loss_type": "bft", "save_only_model": True})
    with pytest.raises(InputError, match=r"checkpoint-4 holds the model alone \(save_only_model: true\)"):
        run_folder.prepare(run_dir, {"loss_type": "bft", "save_only_model": True}, False, "true")


def test_a_checkpoint_without_its_runs_settings_resumes_with_a_warning(tmp_path, caplog):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoint-3").mkdir(parents=True)
    (run_dir / "checkpoint-3" / "trainer_state.json").write_text("{}")
    assert run_folder.prepare(run_dir, {"loss_type": "dft"}, False, "true") == run_dir / "checkpoint-3"
    assert "has no config.yaml: nothing says what made checkpoint-3" in caplog.text


def test_a_run_resumes_only_with_the_settings_it_was_made_with(tmp_path):
    """What the model learns must not change halfway (another loss, learning rate or data); where the run is
    written, how it logs, saves and evaluates, and how long it trains may."""
    made = {"output_dir": "a", "loss_type": "asft", "learning_rate": 0.01, "logging_steps": 1, "max_steps": 4}
    run_dir = killed_run(tmp_path / "run", made)
    with pytest.raises(InputError) as refused:
        run_folder.prepare(run_dir, {**made, "loss_type": "nll", "learning_rate": 0.5}, False, "true")
    assert str(refused.value) == (
        f"{run_dir} was trained with other settings (learning_rate: 0.01 there, 0.5 given now; loss_type: 'asft' "
        f"there, 'nll' given now): resume checkpoint-4 with the settings in {run_dir / 'config.yaml'}, or train "
        "anew in another --output_dir")
    without = {key: value for key, value in made.items() if key != "learning_rate"}
    with pytest.raises(InputError, match="learning_rate: 0.01 there, the default given now"):
        run_folder.prepare(run_dir, without, False, "true")
    # a resumed trainer keeps the checkpoint's logging, saving and evaluation steps: a new value would not hold
    with pytest.raises(InputError, match="logging_steps: 1 there, 5 given now"):
        run_folder.prepare(run_dir, {**made, "logging_steps": 5}, False, "true")
    changed = {**made, "output_dir": "b", "max_steps": 8, "eval_data": "v.jsonl", "per_device_eval_batch_size": 2,
               "save_total_limit": 1, "report_to": ["tensorboard"], "overwrite": True, "resume_from_checkpoint": True}
    assert run_folder.prepare(run_dir, changed, False, "true") == run_dir / "checkpoint-4"


def test_a_run_started_from_another_resumes_after_its_comparison_moved(tmp_path):
    """A comparison's run after SFT names the SFT run by its path, which moves with the comparison's folder; its
    start is checked by fingerprint (start.yaml, bft.compare.reuse), so the path alone does not stop the resume."""
    made = {"model_name_or_path": "/old/cmp/runs/nll-seed0", "loss_type": "bft"}
    run_dir = killed_run(tmp_path / "bft-after-nll-seed0", made)
    moved = {**made, "model_name_or_path": "/new/cmp/runs/nll-seed0"}
    with pytest.raises(InputError, match="model_name_or_path: '/old/cmp/runs/nll-seed0' there"):
        run_folder.prepare(run_dir, moved, False, "true")
    (run_dir / run_folder.START).write_text("run: nll-seed0\nfingerprint: 0123456789abcdef\n")
    assert run_folder.prepare(run_dir, moved, False, "true") == run_dir / "checkpoint-4"
    with pytest.raises(InputError, match="loss_type: 'bft' there, 'dft' given now"):
        run_folder.prepare(run_dir, {**moved, "loss_type": "dft"}, False, "true")


def test_config_yaml_of_a_run_made_before_a_rename_reads_under_the_current_names(tmp_path):
    run_folder.write_config(tmp_path, {"gradient_checkpointing": False, "loss_type": "bft"})
    assert run_folder.read_config(tmp_path) == {"activation_checkpointing": False, "loss_type": "bft"}


def test_the_fingerprint_names_the_training_that_wrote_metrics(tmp_path):
    assert run_folder.fingerprint(tmp_path) is None
    (tmp_path / "metrics.json").write_text('{"train_loss": 1.0}')
    first = run_folder.fingerprint(tmp_path)
    assert len(first) == 16 and run_folder.fingerprint(tmp_path) == first
    (tmp_path / "metrics.json").write_text('{"train_loss": 0.9}')
    assert run_folder.fingerprint(tmp_path) not in (None, first)
    # a training that gives the same figures again (a deterministic run, its runtime alike) is another training
    fingerprints = set()
    for _ in range(2):
        run_folder.write_results(tmp_path, [], lambda history: {"train_loss": 0.9, "train_runtime": 0.25})
        fingerprints.add(run_folder.fingerprint(tmp_path))
    assert len(fingerprints) == 2


def test_config_first_training_then_log_and_metrics_last(tmp_path):
    run_dir = tmp_path / "run"
    resolved = {"output_dir": str(run_dir), "loss_type": "bft", "bft_gamma": 0.5, "data": "demo"}
    trainer, seen_by_metrics = FakeTrainer(run_dir), []

    def metrics(history, result):
        seen_by_metrics.append(trainer._files())
        return {"train_loss": history[-1]["loss"], "global_step": result.global_step}

    assert run_folder.train_run(trainer, run_dir, resolved, None, metrics) == run_dir
    assert trainer.seen["train"] == (["config.yaml"], None)  # the recipe is on disk before training starts
    assert "metrics.json" not in trainer.seen["save_model"]
    assert seen_by_metrics == [["config.yaml", "log_history.json", "model.safetensors"]]  # metrics.json comes last
    assert list(run_folder.read_config(run_dir)) == list(resolved)  # in the recipe's order
    assert run_folder.read_config(run_dir) == resolved
    assert run_folder.read_log_history(run_dir) == trainer.state.log_history
    metrics_written = run_folder.read_metrics(run_dir)
    assert datetime.fromisoformat(metrics_written.pop("finished_at")).tzinfo is not None  # when, in UTC
    assert metrics_written == {"train_loss": 1.5, "global_step": 2}
    assert trainer.seen["waited"] and run_folder.is_finished(run_dir)


def test_a_killed_run_says_what_made_it_and_is_not_finished(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_folder.train_run(FakeTrainer(run_dir, fails=True), run_dir, {"loss_type": "dft"}, None, lambda *_: {})
    assert run_folder.read_config(run_dir) == {"loss_type": "dft"} and not run_folder.is_finished(run_dir)
    assert sorted(path.name for path in run_dir.iterdir()) == ["config.yaml"]  # no staging file left behind


def test_only_the_main_process_writes_the_run_files(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    trainer = FakeTrainer(run_dir, main=False)
    run_folder.train_run(trainer, run_dir, {"loss_type": "bft"}, None, lambda *_: pytest.fail("not on this process"))
    assert trainer.seen["train"] == ([], None) and trainer.seen["waited"]
    assert sorted(path.name for path in run_dir.iterdir()) == ["model.safetensors"]  # save_model: the trainer's call


@pytest.mark.parametrize(("given", "passed"), [("true", True), ("Yes", True), ("1", True), ("false", None),
                                               ("none", None), ("", None), (None, None),
                                               ("runs/a/checkpoint-20", "runs/a/checkpoint-20")])
def test_resume_from_checkpoint_as_the_trainer_takes_it(given, passed):
    assert run_folder.resume_argument(given) == passed


def test_written_files_keep_their_formats(tmp_path):
    """config.yaml is YAML in the recipe's order; log_history.json and metrics.json are indented JSON."""
    run_folder.write_config(tmp_path, {"b": 1, "a": [1, 2]})
    assert (tmp_path / "config.yaml").read_text() == yaml.safe_dump({"b": 1, "a": [1, 2]}, sort_keys=False)
    run_folder.write_results(tmp_path, [{"loss": 1.0}], lambda history: {"n": len(history)})
    finished_at = run_folder.read_metrics(tmp_path)["finished_at"]
    assert (tmp_path / "metrics.json").read_text() == json.dumps({"n": 1, "finished_at": finished_at}, indent=2) + "\n"
    assert json.loads((tmp_path / "log_history.json").read_text()) == [{"loss": 1.0}]


def test_a_resumed_run_reports_the_whole_runs_loss_tokens_and_time(tmp_path):
    """transformers' TrainOutput covers the steps of the current train() call; a checkpoint's run_totals.json holds
    what came before it (steps 1-2 here, loss sum 5.0, 10 s, 300 tokens), so that metrics.json is the whole run's."""
    checkpoint = tmp_path / "checkpoint-2"
    checkpoint.mkdir()
    (checkpoint / run_totals.TOTALS).write_text(json.dumps({"step": 2, "loss_sum": 5.0, "tokens": 300,
                                                            "runtime": 10.0}))
    trainer = SimpleNamespace(_total_train_tokens=0, accelerator=SimpleNamespace(num_processes=1))
    totals = run_totals.RunTotals(trainer, checkpoint)
    assert trainer._total_train_tokens == 300  # SFTTrainer's count, which starts at 0 in every train() call
    # this call: steps 3-4 (4 samples) in 3 s, loss sum 2.0
    now = {"train_runtime": 3.0, "train_loss": 1.0, "train_steps_per_second": 2 / 3, "train_samples_per_second": 4 / 3}
    whole = totals.whole_run(TrainOutput(4, 1.0, now))
    assert whole.global_step == 4 and whole.training_loss == pytest.approx((5.0 + 2.0) / 4)
    assert whole.metrics == {"train_runtime": 13.0, "train_loss": pytest.approx(1.75),  # 4 steps, 8 samples, 13 s
                             "train_steps_per_second": round(4 / 13, 3), "train_samples_per_second": round(8 / 13, 3)}
    fresh = run_totals.RunTotals(SimpleNamespace(_total_train_tokens=0), None)
    result = TrainOutput(4, 1.0, {"train_runtime": 3.0})
    assert fresh.whole_run(result) is result


def test_a_checkpoint_resumes_with_the_processes_that_saved_it(tmp_path):
    """Another number of processes makes each step's batch another: the run would be neither."""
    (tmp_path / "checkpoint-2").mkdir()
    (tmp_path / "checkpoint-2" / run_totals.TOTALS).write_text(json.dumps(
        {"step": 2, "loss_sum": 5.0, "tokens": 300, "runtime": 10.0, "processes": 2}))
    trainer = SimpleNamespace(_total_train_tokens=0, accelerator=SimpleNamespace(num_processes=1))
    with pytest.raises(InputError, match=r"saved by a run of 2 process\(es\), and this one has 1: .*\(accelerate "
                                         r"launch --num_processes 2"):
        run_totals.RunTotals(trainer, tmp_path / "checkpoint-2")


def test_checkpoints_record_what_the_run_had_trained(tmp_path):
    import torch

    trainer = SimpleNamespace(_total_train_tokens=120, _total_loss_scalar=3.0, _tr_loss=torch.tensor(0.5),
                              accelerator=SimpleNamespace(num_processes=1, gather=lambda tensor: tensor[None]))
    (tmp_path / "checkpoint-3").mkdir()
    totals = run_totals.RunTotals(trainer, None)
    state = SimpleNamespace(global_step=3, is_world_process_zero=True)
    totals.on_save(SimpleNamespace(output_dir=str(tmp_path)), state, None)
    saved = json.loads((tmp_path / "checkpoint-3" / run_totals.TOTALS).read_text())
    assert saved["step"] == 3 and saved["loss_sum"] == 3.5 and saved["tokens"] == 120 and saved["runtime"] >= 0
    assert saved["processes"] == 1
