"""Training and evaluation data: builders, validators and readers of the biomedical sources."""

import os
from pathlib import Path

DEFAULT_DATA_DIR = "../shared/data"


def data_dir(path=None) -> Path:
    """The biomedical data folder: `path`, else `$BFT_DATA_DIR`, else ../shared/data."""
    return Path(path or os.environ.get("BFT_DATA_DIR") or DEFAULT_DATA_DIR)
