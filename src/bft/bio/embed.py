"""`bft embed`: texts about genes -> one vector per gene, with a sentence-transformers encoder.

Reads `profiles.jsonl` rows (`{"id", "text"}`) or the `SYMBOL: text` synopsis layout (true NCBI summaries), and
writes `emb.npz` holding `ids` (strings) and `X` (float32, one L2-normalised row per id).
"""

import os
import tempfile
from pathlib import Path

import numpy as np

from bft.data.gene_profiles import read_synopses
from bft.data.records import DataError, read_records
from bft.models import DEFAULT_ENCODER, embed, load_encoder


def read_gene_texts(path) -> dict[str, str]:
    """{gene: text} from a profiles JSONL file or a synopsis text file."""
    path = Path(path)
    if path.suffix.lower() != ".jsonl":
        return read_synopses(path)
    texts = {}
    for line, record in read_records(path):
        if not isinstance(record.get("id"), str) or not isinstance(record.get("text"), str):
            raise DataError(path, line, "expected string fields 'id' and 'text'")
        texts[record["id"]] = record["text"]
    return texts


def embed_texts(texts: dict[str, str], sentence_encoder) -> tuple[np.ndarray, np.ndarray]:
    """(gene ids, one row per gene) with an already loaded encoder (callers embedding several sets load it once)."""
    ids = np.array(list(texts), dtype=str)
    return ids, embed(sentence_encoder, list(texts.values()))


def save_embeddings(path, ids: np.ndarray, X: np.ndarray) -> None:
    """Write `ids` and `X` atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz", dir=path.parent)
    os.close(handle)
    try:
        np.savez(staging, ids=ids, X=X.astype(np.float32))
        os.replace(staging, path)
    finally:
        Path(staging).unlink(missing_ok=True)


def load_embeddings(path) -> dict[str, np.ndarray]:
    expected = "expected an .npz with 'ids' and a matching matrix 'X' (from `bft embed`)"
    if not Path(path).is_file():
        raise DataError(path, None, "file not found")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise DataError(path, None, f"not an .npz file: {expected}") from error
    with data:
        if "ids" not in data or "X" not in data or len(data["ids"]) != len(data["X"]):
            raise DataError(path, None, expected)
        return dict(zip(data["ids"].tolist(), data["X"]))


def embed_file(input_path, output, encoder: str = DEFAULT_ENCODER) -> dict:
    ids, X = embed_texts(read_gene_texts(input_path), load_encoder(encoder))
    save_embeddings(output, ids, X)
    return {"genes": len(ids), "dimensions": int(X.shape[1]) if X.ndim == 2 else 0, "encoder": encoder,
            "output": str(output)}
