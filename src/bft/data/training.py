"""Training data in TRL's formats: validated before anything is trained or written.

Accepted records: conversational `{"messages": [{"role", "content"}, ...]}` ending with an assistant turn, or
`{"prompt": ..., "completion": ...}` where both are strings or both are lists of messages. `demo` names the small
go-naming set shipped with the package.

Conversations are trained on their final assistant turn: they are split into a conversational prompt (all turns
before it) and completion (that turn), so that TRL masks the prompt out of the loss with any chat template.
"""

from importlib import resources
from pathlib import Path

from bft.data.records import DataError, read_records
from bft.files import missing_path

ROLES = ("system", "user", "assistant", "tool")
TRAINING_FILE_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv", ".tsv", ".tab")


def demo_data_path() -> Path:
    """The packaged demo set: gene set -> biological-process name, built by `bft data go-naming`."""
    return Path(str(resources.files("bft") / "resources" / "demo_go_naming.jsonl"))


def load_training_dataset(data: str):
    """A `datasets.Dataset` from a file (validated), the packaged `demo` set, or a hub dataset (or a local dataset
    folder) name, whose `messages` records are split like a file's: the prompt turns are never trained."""
    from datasets import Dataset, load_dataset
    from datasets.exceptions import DatasetNotFoundError

    path = _local_path(data)
    if path.is_file():
        return Dataset.from_list([_as_prompt_completion(record) for _, record in validated_records(path)])
    check_training_data(data)
    try:
        dataset = _saved_dataset(path) if _is_saved_dataset(path) else load_dataset(data, split="train")
    except (DatasetNotFoundError, ConnectionError) as error:
        raise DataError(data, None, f"neither a local file or folder nor a hub data set that can be loaded "
                                    f"({type(error).__name__})") from None
    formats = {_check_record(record, data, index) for index, record in enumerate(dataset, start=1)}
    if len(formats) > 1:
        raise DataError(data, None, f"mixes record formats ({', '.join(sorted(formats))}); use one per data set")
    return dataset.map(_as_prompt_completion, remove_columns=dataset.column_names)


def check_training_data(data: str) -> None:
    """What `load_training_dataset` checks of `data` before loading it, alone (DataError): a file validated record by
    record, a path that names nothing on disk and cannot be a hub data set (`bft.files.missing_path`, or it
    ends like a data file); hub data sets and dataset folders are checked as they load."""
    path = _local_path(data)
    if path.is_file():
        validated_records(path)
    elif not path.is_dir() and path.suffix in TRAINING_FILE_SUFFIXES:
        raise DataError(data, None, "file not found")
    elif not path.is_dir() and (why := missing_path(data, "dataset")):
        raise DataError(data, None, f"file or dataset {why}")


def _is_saved_dataset(path: Path) -> bool:
    """Whether `path` is a folder `Dataset.save_to_disk` or `DatasetDict.save_to_disk` wrote."""
    return (path / "state.json").is_file() or (path / "dataset_dict.json").is_file()


def _saved_dataset(path: Path):
    """The training split of a folder `save_to_disk` wrote: the dataset itself, or a DatasetDict's `train`."""
    from datasets import DatasetDict, load_from_disk

    saved = load_from_disk(str(path))
    if isinstance(saved, DatasetDict):
        if "train" not in saved:
            raise DataError(path, None, f"has no 'train' split (it has {', '.join(saved)})")
        return saved["train"]
    return saved


def _local_path(data: str) -> Path:
    return demo_data_path() if data == "demo" else Path(data).expanduser()


def validated_records(path):
    """(line, record) pairs of a training file, each checked against TRL's formats; raises DataError."""
    records = read_records(path)
    if not records:
        raise DataError(path, None, "no records: expected at least one training example")
    first_format = None
    for line, record in records:
        record_format = _check_record(record, path, line)
        if first_format is None:
            first_format = record_format
        elif record_format != first_format:
            raise DataError(path, line, f"this record is {record_format} but the first is {first_format}; "
                                        "use one format per file")
    return records


def _check_record(record, path, line) -> str:
    if "messages" in record:
        _check_messages(record["messages"], path, line, "messages")
        if record["messages"][-1]["role"] != "assistant" or len(record["messages"]) < 2:
            raise DataError(path, line, "'messages' must end with an assistant turn that follows a prompt turn")
        if not record["messages"][-1]["content"].strip():
            raise DataError(path, line, "the final assistant turn is empty: nothing to train on")
        return "conversational"
    if "prompt" in record and "completion" in record:
        prompt, completion = record["prompt"], record["completion"]
        if isinstance(prompt, str) and isinstance(completion, str):
            if not completion.strip():
                raise DataError(path, line, "'completion' is empty")
            return "prompt-completion"
        if isinstance(prompt, list) and isinstance(completion, list):
            _check_messages(prompt, path, line, "prompt")
            _check_messages(completion, path, line, "completion")
            if not any(message["content"].strip() for message in completion):
                raise DataError(path, line, "'completion' is empty")
            return "conversational prompt-completion"
        raise DataError(path, line, "'prompt' and 'completion' must both be strings or both be lists of messages")
    keys = ", ".join(sorted(record)) or "none"
    raise DataError(path, line, f"expected a 'messages' list or 'prompt' and 'completion' fields; found keys: {keys}")


def _as_prompt_completion(record: dict) -> dict:
    if "messages" not in record:
        return {"prompt": record["prompt"], "completion": record["completion"]}
    messages = record["messages"]
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def _check_messages(messages, path, line, field):
    if not isinstance(messages, list) or not messages:
        raise DataError(path, line, f"'{field}' must be a non-empty list of {{'role', 'content'}} objects")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise DataError(path, line, f"'{field}'[{i}] must be an object with 'role' and 'content'")
        if message["role"] not in ROLES:
            raise DataError(path, line, f"'{field}'[{i}] has role {message['role']!r}; expected one of {ROLES}")
        if not isinstance(message["content"], str):
            raise DataError(path, line, f"'{field}'[{i}]['content'] must be a string")
