"""Atomic writes: a reader never sees a half-written output file."""

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


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
