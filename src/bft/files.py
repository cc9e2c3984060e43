"""Atomic writes: a reader never sees a half-written output file."""

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from bft.errors import InputError


@contextmanager
def atomic_output(path):
    """Yields a staging path beside `path`; when the block ends without error, the staging file replaces `path`
    in one step (else it is removed). For writers that take a file name (np.save, np.savez, ...)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    try:
        yield staging
        os.replace(staging, path)
    finally:
        Path(staging).unlink(missing_ok=True)


def write_text_atomic(path, text: str) -> None:
    with atomic_output(path) as staging, open(staging, "w", encoding="utf-8") as out:
        out.write(text)


def write_json_atomic(path, data) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_jsonl_atomic(path, rows) -> None:
    write_text_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def check_writable(path, folder: bool) -> None:
    """Before any work: InputError when `path` cannot be written, as a folder (`folder`) or as a file: it is a file
    where a folder is wanted or the reverse, it lies below a file, or its nearest existing folder is not writable."""
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise InputError(f"{path} is a file: expected a folder for the results (it is made if missing)")
    if not folder and path.is_dir():
        raise InputError(f"{path} is a folder: expected a file name")
    existing = next(place for place in (path if folder else path.parent, *path.parents) if place.exists())
    if not existing.is_dir():
        raise InputError(f"{path} cannot be written: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{path} cannot be written: no permission to write in {existing}")
