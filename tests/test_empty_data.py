"""Data sets that preprocessing, a limit or a filter empties stop with a clear error: never a run or an evaluation on
nothing. (The command-line cases, with their exit code and what is not written, are in tests/test_bad_input.py.)"""

import pytest

from bft.data.records import DataError
from bft.errors import InputError


def all_cut(count=3):
    """Samples whose completion begins past max_length=64 for the tiny model's tokenizer."""
    from datasets import Dataset

    genes = ", ".join(f"GENE{i}" for i in range(60))
    return Dataset.from_list([{"prompt": f"These genes act together: {genes}. Name the process.",
                               "completion": f" process {i}"} for i in range(count)])


@pytest.mark.parametrize("settings", [{}, {"packing": True}, {"padding_free": True}])
def test_trainer_refuses_data_that_truncation_empties(tiny_model, tmp_path, settings):
    """Dropped (padded rows) or kept without a trained label (packed rows): either way nothing would be trained."""
    from transformers import AutoTokenizer

    from bft.data.training import load_training_dataset
    from bft.trainer import BFTConfig, BFTTrainer, NoTrainedTokens

    def trainer(train, evaluation=None):
        config = BFTConfig(output_dir=str(tmp_path / "out"), loss_type="bft", report_to="none", bf16=False,
                           max_length=64, **settings)
        return BFTTrainer(model=tiny_model, args=config, processing_class=AutoTokenizer.from_pretrained(tiny_model),
                          train_dataset=train, eval_dataset=evaluation)

    with pytest.raises(NoTrainedTokens, match="all 3 training samples lose every trained token") as error:
        trainer(all_cut())
    assert error.value.split == "train" and isinstance(error.value, InputError)
    demo = load_training_dataset("demo").select(range(4))
    with pytest.raises(NoTrainedTokens, match="no evaluation token is left") as error:
        trainer(demo, {"cut": all_cut(2), "fine": demo})
    assert error.value.split == "eval" and not any((tmp_path / "out").glob("*"))  # nothing written
    trainer(demo, demo)  # data that keeps trained tokens trains


def test_inspect_refuses_data_that_truncation_empties(tiny_model, tmp_path, monkeypatch):
    import json

    from bft import inspection
    from bft.models import load_model

    data = tmp_path / "cut.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in all_cut()))
    model, tokenizer = load_model(tiny_model)
    with pytest.raises(DataError, match="cut.jsonl: no training token is left"):
        inspection.score_dataset(model, tokenizer, str(data), max_length=64)


def test_builders_and_subsets_refuse_to_leave_nothing(tmp_path):
    from bft.data.output import write_dataset
    from bft.data.splits import fixed_subset

    with pytest.raises(DataError, match=r"leave no item in train.jsonl \(train: 0, valid: 0\)"):
        write_dataset(tmp_path / "built", {"train": [], "valid": []}, {"counts": {"train": 0, "valid": 0}})
    with pytest.raises(DataError, match=r"leave no item in train.jsonl \(train: 0, valid: 1\)"):  # nothing to train
        write_dataset(tmp_path / "built", {"train": [], "valid": [{"id": 1}]}, {"counts": {"train": 0, "valid": 1}})
    with pytest.raises(DataError, match="leave no item in trained.jsonl"):
        write_dataset(tmp_path / "built", {"trained": [], "untrained": [{"id": 1}]}, {}, training="trained")
    assert not (tmp_path / "built").exists()
    write_dataset(tmp_path / "built", {"train": [{"id": 1}], "valid": []}, {})  # an empty split beside others is fine
    assert (tmp_path / "built" / "valid.jsonl").read_text() == ""
    for limit in (0, -1):
        with pytest.raises(InputError, match="limit must be a whole number at least 1"):
            fixed_subset([1, 2, 3], limit, str)
    assert fixed_subset([1, 2, 3], 3, str) == [1, 2, 3] and len(fixed_subset([1, 2, 3], 1, str)) == 1
