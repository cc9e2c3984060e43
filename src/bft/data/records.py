"""Reading user files record by record, with errors that name the file, the line and what was expected.

Every text file a user gives is read through `open_text` (or `read_text`): UTF-8, with the byte-order mark that
some editors (Excel, Notepad) put at its start dropped, rather than read into its first symbol, header or record.
"""

import csv
import json
from pathlib import Path

from bft.errors import InputError


class DataError(InputError):
    """Bad input data. `str(error)` reads `FILE:LINE: what was wrong (what was expected)`."""

    def __init__(self, path, line, message):
        self.path, self.line = str(path), line
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")


def read_records(path) -> list[tuple[int, dict]]:
    """(line number, record) pairs from JSONL, JSON (a list of objects), Parquet, CSV or TSV.

    For JSON lists and Parquet files the number is the item's position (1-based); for CSV/TSV it is the line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "file not found")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return list(_read_jsonl(path))
    if suffix == ".json":
        return _read_json(path)
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return [(i, row) for i, row in enumerate(pq.read_table(path).to_pylist(), start=1)]
    if suffix in (".csv", ".tsv", ".tab"):
        return list(_read_table(path, "\t" if suffix != ".csv" else ","))
    raise DataError(path, None, f"unknown file type {suffix!r} (expected .jsonl, .json, .parquet, .csv or .tsv)")


def open_text(path, newline=None):
    """A user's text file, open for reading as UTF-8 without a leading byte-order mark (`newline` as for `open`)."""
    return open(path, encoding="utf-8-sig", newline=newline)


def read_text(path) -> str:
    """The text of a user's file, UTF-8 without a leading byte-order mark."""
    with open_text(path) as handle:
        return handle.read()


def require_new_id(path, line: int, item_id: str, first_lines: dict) -> None:
    """Fail on an id already seen in the file (items are paired across models by id, so a repeated one would be
    silently merged); `first_lines` remembers the line of each id."""
    if item_id in first_lines:
        raise DataError(path, line, f"id {item_id!r} again (first on line {first_lines[item_id]}): ids must be unique")
    first_lines[item_id] = line


def _read_jsonl(path):
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                message = f"not valid JSON ({error.msg}); expected one JSON object per line"
                raise DataError(path, number, message) from None
            if not isinstance(record, dict):
                raise DataError(path, number, f"expected a JSON object, got {type(record).__name__}")
            yield number, record


def _read_json(path):
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise DataError(path, error.lineno, f"not valid JSON ({error.msg})") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise DataError(path, None, "expected a JSON list of objects")
    return list(enumerate(data, start=1))


def _read_table(path, delimiter):
    with open_text(path, newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        for row in reader:
            if None in row or None in row.values():
                raise DataError(path, reader.line_num, f"expected {len(reader.fieldnames)} columns "
                                                       f"({', '.join(reader.fieldnames)})")
            yield reader.line_num, row
