"""The run folder's contract (`bft.run_folder`): finished, resumable, refused; config written first, metrics last."""

import json
from types import SimpleNamespace

import pytest
import yaml

from bft import run_folder
from bft.errors import InputError


class FakeTrainer:
    """What `train_run` uses of a transformers Trainer; notes which run files exist when it trains and saves."""

    def __init__(self, run_dir, main=True, fails=False):
        self.run_dir, self.main, self.fails, self.seen = run_dir, main, fails, {}
        self.state = SimpleNamespace(log_history=[{"loss": 2.0, "step": 1}, {"loss": 1.5, "step": 2}])
        self.accelerator = SimpleNamespace(wait_for_everyone=lambda: self.seen.setdefault("waited", True))

    def is_world_process_zero(self):
        return self.main

    def _files(self):
        return sorted(path.name for path in self.run_dir.iterdir()) if self.run_dir.exists() else []

    def train(self, resume_from_checkpoint=None):
        self.seen["train"] = (self._files(), resume_from_checkpoint)
        if self.fails:
            raise KeyboardInterrupt  # a run killed while it trains
        return SimpleNamespace(global_step=2)

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
    run_folder.refuse_finished(run_dir, overwrite=False)  # nothing there: nothing to refuse, nothing made
    assert not run_dir.exists()
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text('{"train_loss": 1.0}')
    with pytest.raises(run_folder.RunExistsError, match=f"^{run_dir} already holds a finished run; pass --overwrite"):
        run_folder.refuse_finished(run_dir, overwrite=False)
    assert issubclass(run_folder.RunExistsError, InputError) and run_folder.is_finished(run_dir)
    run_folder.refuse_finished(run_dir, overwrite=True)
    assert not run_folder.is_finished(run_dir)  # no longer finished until it is trained again


def test_the_fingerprint_names_the_training_that_wrote_metrics(tmp_path):
    assert run_folder.fingerprint(tmp_path) is None
    (tmp_path / "metrics.json").write_text('{"train_loss": 1.0}')
    first = run_folder.fingerprint(tmp_path)
    assert len(first) == 16 and run_folder.fingerprint(tmp_path) == first
    (tmp_path / "metrics.json").write_text('{"train_loss": 0.9}')
    assert run_folder.fingerprint(tmp_path) not in (None, first)


def test_config_first_training_then_log_and_metrics_last(tmp_path):
    run_dir = tmp_path / "run"
    resolved = {"output_dir": str(run_dir), "loss_type": "bft", "bft_gamma": 0.5, "data": "demo"}
    trainer, seen_by_metrics = FakeTrainer(run_dir), []

    def metrics(history, result):
        seen_by_metrics.append(trainer._files())
        return {"train_loss": history[-1]["loss"], "global_step": result.global_step}

    assert run_folder.train_run(trainer, run_dir, resolved, "true", metrics) == run_dir
    assert trainer.seen["train"] == (["config.yaml"], True)  # the recipe is on disk before training starts
    assert "metrics.json" not in trainer.seen["save_model"]
    assert seen_by_metrics == [["config.yaml", "log_history.json", "model.safetensors"]]  # metrics.json comes last
    assert list(run_folder.read_config(run_dir)) == list(resolved)  # in the recipe's order
    assert run_folder.read_config(run_dir) == resolved
    assert run_folder.read_log_history(run_dir) == trainer.state.log_history
    assert run_folder.read_metrics(run_dir) == {"train_loss": 1.5, "global_step": 2}
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
    assert (tmp_path / "metrics.json").read_text() == json.dumps({"n": 1}, indent=2) + "\n"
    assert json.loads((tmp_path / "log_history.json").read_text()) == [{"loss": 1.0}]
