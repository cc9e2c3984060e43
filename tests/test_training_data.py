"""Training data from a dataset folder or hub name: the same prompt/completion split as files get."""

import json

import pytest

from bft.data.records import DataError
from bft.data.training import load_training_dataset


def test_dataset_folder_of_messages_is_split_like_a_file(tmp_path, demo_records, tiny_model):
    folder = tmp_path / "hub-like"
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in demo_records[:4]))
    dataset = load_training_dataset(str(folder))
    assert dataset.column_names == ["prompt", "completion"]
    assert [m["role"] for m in dataset[0]["completion"]] == ["assistant"]
    assert dataset[0]["prompt"] == demo_records[0]["messages"][:-1]

    # what TRL then trains: only the completion's tokens
    from transformers import AutoTokenizer

    from bft.trainer import BFTConfig, BFTTrainer

    trainer = BFTTrainer(model=tiny_model, args=BFTConfig(output_dir=str(tmp_path / "o"), report_to="none"),
                         train_dataset=dataset, processing_class=AutoTokenizer.from_pretrained(tiny_model))
    row = trainer.train_dataset[0]
    trained = sum(label != -100 for label in row["labels"])
    assert 0 < trained < len(row["input_ids"]) / 2  # the answer only, not the gene list before it


def test_dataset_folder_with_a_bad_record_names_it(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "train.jsonl").write_text(json.dumps({"messages": [{"role": "user", "content": "q"}]}) + "\n")
    with pytest.raises(DataError, match="must end with an assistant turn"):
        load_training_dataset(str(folder))


def test_a_mistyped_local_path_is_not_sent_to_the_hub(monkeypatch):
    from huggingface_hub import constants

    for offline, names in ((True, ["data/go-namng", "go-namng"]), (False, ["./go-namng", "data/x/go-namng",
                                                                               "data/go-namng.jsonl"])):
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
        for name in names:
            with pytest.raises(DataError, match=f"^{name}: file (or dataset )?not found"):
                load_training_dataset(name)


def test_a_hub_name_that_does_not_load_is_one_data_error(monkeypatch):
    import datasets
    from datasets.exceptions import DatasetNotFoundError
    from huggingface_hub import constants

    def not_on_the_hub(name, split):
        raise DatasetNotFoundError(f"Dataset '{name}' doesn't exist on the Hub")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets, "load_dataset", not_on_the_hub)
    with pytest.raises(DataError, match="^data/go-namng: neither a local file or folder nor a hub data set"):
        load_training_dataset("data/go-namng")


@pytest.mark.parametrize("as_dict", [False, True])
def test_a_folder_written_by_save_to_disk_is_read_as_its_training_split(tmp_path, as_dict):
    from datasets import Dataset, DatasetDict

    records = [{"prompt": f"Name gene {i}.", "completion": f"GENE{i}"} for i in range(3)]
    dataset = Dataset.from_list(records)
    (DatasetDict({"train": dataset}) if as_dict else dataset).save_to_disk(str(tmp_path / "saved"))
    loaded = load_training_dataset(str(tmp_path / "saved"))
    assert [row["completion"] for row in loaded] == ["GENE0", "GENE1", "GENE2"]
