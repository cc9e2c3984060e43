"""Atomic writes: a reader never sees a half-written output file.

An output is written to a staging file beside it, which then replaces it in one step. Staging files and folders are
created with the mode a plain `open()` or `mkdir` gives (0666 or 0777 less the umask), not `tempfile`'s private
0600 and 0700, so that an output is as readable as any other file the user writes.
"""

import json
import math
import os
import secrets
import tempfile
from contextlib import contextmanager
from pathlib import Path

from bft.errors import InputError


@contextmanager
def atomic_output(path, mode: str = "wb"):
    """Yields a file open for writing (`mode` "wb", or "w" for UTF-8 text) at a staging path beside `path`; when the
    block ends without error, the staging file replaces `path` in one step (else it is removed). Writers get the
    open file, never a file name, so none can add a suffix of its own (np.savez adds `.npz` to a name that lacks
    it, and would leave `path` empty)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = _staging_path(path, lambda name: os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)))
    try:
        with open(staging, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)


def output_file(path, suffix: str) -> Path:
    """`path` as the name of an output file ending in `suffix` (any case), as what reads it back expects. Raises
    InputError, before any work, for a name that ends otherwise, ends in a path separator or names a folder."""
    if str(path).endswith(("/", os.sep)) or Path(path).is_dir():
        raise InputError(f"{path}: names a folder; expected the name of a file ending in {suffix}")
    if Path(path).suffix.lower() != suffix:
        raise InputError(f"{path}: expected the name of a file ending in {suffix}")
    return Path(path)


def staging_folder(path) -> Path:
    """A new, empty folder beside `path` (to fill, then move onto `path` with `os.replace`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _staging_path(path, lambda name: os.mkdir(name, 0o777))


def _staging_path(path: Path, create) -> Path:
    """A hidden name beside `path` that ends in its suffix, on which `create(name)` makes a file or folder that did
    not exist (the umask applies to the mode it gives, as to any file)."""
    while True:
        staging = path.with_name(f".{path.stem}.{secrets.token_hex(4)}{path.suffix}")
        try:
            create(staging)
            return staging
        except FileExistsError:
            continue


def write_text_atomic(path, text: str) -> None:
    with atomic_output(path, "w") as out:
        out.write(text)


def to_json(data, indent: int | None = None) -> str:
    """`data` as strict JSON (RFC 8259), which every parser reads: a float that is not finite (an interval of one
    seed, a diverged loss), which Python would write as `NaN` or `Infinity`, is written as `null`."""
    return json.dumps(_finite(data), indent=indent, ensure_ascii=False, allow_nan=False)


def _finite(data):
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: _finite(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(value) for value in data]
    return data


def write_json_atomic(path, data) -> None:
    write_text_atomic(path, to_json(data, indent=2) + "\n")


def write_jsonl_atomic(path, rows) -> None:
    write_text_atomic(path, "".join(to_json(row) + "\n" for row in rows))


def check_writable(path, folder: bool) -> None:
    """Before any work: InputError when `path` cannot be written, as a folder (`folder`) or as a file: it is a file
    where a folder is wanted or the reverse, it lies below a file, or its nearest existing folder is not writable."""
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise InputError(f"{path} is a file: expected a folder for the results (it is made if missing)")
    if not folder and path.is_dir():
        raise InputError(f"{path} is a folder: expected a file name")
    if not folder and path.is_file() and not os.access(path, os.W_OK):  # (a file added to, as profiles.jsonl is)
        raise InputError(f"{path} cannot be written: no permission to write it")
    existing = next(place for place in (path if folder else path.parent, *path.parents) if place.exists())
    if not existing.is_dir():
        raise InputError(f"{path} cannot be written: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{path} cannot be written: no permission to write in {existing}")
    try:  # what permissions do not tell: a read-only or virtual file system (/proc) refuses even root
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise InputError(f"{path} cannot be written: {existing} takes no new files ({error.strerror})") from None


def missing_path(name: str, repo_type: str = "model") -> str | None:
    """For a `name` that names nothing on disk: "not found" (with why, where the hub is offline) when it must be a
    mistyped local path, None where it can name a hub repository of `repo_type` ("model" or "dataset"; found or not
    when loaded). It is a path when it starts with `.`, `/` or `~` or holds more than one `/`, and, when the hub is
    offline (`HF_HUB_OFFLINE`), whatever is not in the hub's local cache, where nothing else loads from."""
    from huggingface_hub import constants, snapshot_download

    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        return "not found"
    if constants.HF_HUB_OFFLINE:
        try:
            snapshot_download(name, repo_type=repo_type, local_files_only=True)
        except Exception:  # the hub client raises many types for "not cached"; all mean the same here
            return "not found (nor in the hub's cache, and the hub is offline: HF_HUB_OFFLINE)"
    return None
