"""Training and evaluation data: builders, validators and readers of the biomedical sources."""

import os
from pathlib import Path

from bft.errors import InputError

DEFAULT_DATA_DIR = "../shared/data"


def data_dir(path=None) -> Path:
    """The biomedical data folder: `path`, else `$BFT_DATA_DIR`, else ../shared/data. Raises InputError where it is
    a file (a folder not there is left to the files read from it, whose messages name it)."""
    folder = Path(path or os.environ.get("BFT_DATA_DIR") or DEFAULT_DATA_DIR)
    if folder.exists() and not folder.is_dir():
        given = "--data-dir (a recipe's data_dir)" if path else "$BFT_DATA_DIR" if os.environ.get("BFT_DATA_DIR") \
            else "the default data folder"
        raise InputError(f"{folder} is a file, not a folder: {given} must name the folder of the biomedical data")
    return folder
