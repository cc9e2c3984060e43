"""`bft embed`: texts about genes -> one vector per gene, with a sentence-transformers encoder.

Reads `profiles.jsonl` rows (`{"id", "text"}`) or the `SYMBOL: text` synopsis layout (true NCBI summaries), and
writes `emb.npz` holding `ids` (strings) and `X` (float32, one L2-normalised row per id). The encoder embeds at
most `max_seq_length` word pieces of a text (256 for the default all-MiniLM-L6-v2) and drops the rest: how many
texts were cut is logged as a warning and returned as `cut_by_encoder`. Empty or blank texts (profiles the model
ended at once) all embed to one vector, which says nothing of their genes: they are embedded all the same (a gene
whose profile says nothing is scored on that, not left out), named in a warning and counted (`empty_texts`).
"""

import logging
from pathlib import Path

import numpy as np

from bft.data.gene_profiles import read_synopses
from bft.data.records import DataError, open_text, read_records, require_new_id
from bft.data.symbols import examples
from bft.files import atomic_output, output_file
from bft.models import DEFAULT_ENCODER, embed_with_cut, load_encoder

logger = logging.getLogger(__name__)


def read_gene_texts(path) -> dict[str, str]:
    """{gene: text} from a profiles JSONL file or a synopsis text file. Raises DataError, naming the file, for one
    that is missing, malformed or holds no text at all."""
    path = Path(path)
    if path.suffix.lower() != ".jsonl":
        texts = read_synopses(path)
    else:
        texts, first_lines = {}, {}
        for line, record in read_records(path):
            if not isinstance(record.get("id"), str) or not isinstance(record.get("text"), str):
                raise DataError(path, line, "expected string fields 'id' and 'text'")
            require_new_id(path, line, record["id"], first_lines)
            texts[record["id"]] = record["text"]
        if not texts:
            raise DataError(path, None, 'no genes: expected {"id", "text"} rows')
    return texts


def embed_texts(texts: dict[str, str], sentence_encoder) -> tuple[np.ndarray, np.ndarray, int]:
    """(gene ids, one row per gene, how many texts the encoder's length limit cut) with an already loaded encoder
    (callers embedding several sets load it once)."""
    ids = np.array(list(texts), dtype=str)
    return ids, *embed_with_cut(sentence_encoder, list(texts.values()))


def blank_texts(texts: dict[str, str], source) -> list[str]:
    """The genes whose text is empty or blank, named in a warning (how many, and a few) about `source`."""
    blank = [gene for gene, text in texts.items() if not text.strip()]
    if blank:
        logger.warning("%d of %d texts of %s are empty or blank (%s): they all embed to one vector, which says nothing "
                       "of their genes", len(blank), len(texts), source, examples(blank))
    return blank


def save_embeddings(path, ids: np.ndarray, X: np.ndarray) -> None:
    """Write `ids` and `X` atomically (a reader never sees half a file)."""
    with atomic_output(path) as handle:
        np.savez(handle, ids=ids, X=X.astype(np.float32))


def load_embeddings(path) -> dict[str, np.ndarray]:
    """{gene: vector} from `bft embed`'s .npz, a word2vec text file (`SYMBOL v1 ... vd` lines, with or without the
    `count dim` header line, as Gene2vec ships), or a pickled `{symbol: vector}` dict (.pkl/.pickle, as GenePT
    ships; unpickling runs code from the file, so load only files you trust). Raises DataError for a missing file,
    one that does not hold what its suffix says, no vectors or vectors of no numbers, a symbol given twice (which
    vector would count?) or vectors that hold NaN or infinity."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "file not found")
    suffix = path.suffix.lower()
    if suffix in (".pkl", ".pickle"):
        vectors = _load_pickled(path)
    elif suffix in (".txt", ".vec", ".w2v"):
        vectors = _load_word2vec(path)
    else:
        vectors = _load_npz(path)
    if not vectors:
        raise DataError(path, None, "no vectors: expected a vector per gene")
    if not len(next(iter(vectors.values()))):  # (the loaders check that all have the same length)
        raise DataError(path, None, "vectors of no numbers: expected a vector of numbers per gene")
    not_finite = [gene for gene, vector in vectors.items() if not np.isfinite(vector).all()]
    if not_finite:
        raise DataError(path, None, f"{len(not_finite)} of {len(vectors)} vectors hold NaN or infinity (the first: "
                                    f"{not_finite[0]!r}): expected finite numbers")
    return vectors


def _load_npz(path) -> dict[str, np.ndarray]:
    expected = "expected an .npz with string 'ids' and a matrix 'X' of numbers, a row per id (from `bft embed`)"
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError):  # (an empty file: EOFError)
        data = None
    if not isinstance(data, np.lib.npyio.NpzFile):  # (an .npy file loads as an array)
        raise DataError(path, None, f"not an .npz file: {expected}; word2vec text files end in .txt, pickled "
                                    "dicts in .pkl")
    with data:
        try:
            ids, X = data["ids"], data["X"]
        except (KeyError, ValueError) as error:  # no such array, or one of Python objects
            raise DataError(path, None, expected) from error
    if ids.ndim != 1 or ids.dtype.kind != "U" or X.ndim != 2 or X.dtype.kind not in "fiu" or len(ids) != len(X):
        raise DataError(path, None, expected)
    first = {}
    for position, gene in enumerate(ids.tolist()):
        if gene in first:
            raise DataError(path, None, f"id {gene!r} again at ids[{position}] (first at ids[{first[gene]}]): ids must "
                                        "be unique")
        first[gene] = position
    return dict(zip(ids.tolist(), X))


def _load_word2vec(path) -> dict[str, np.ndarray]:
    vectors, dimensions, first_lines = {}, None, {}
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.split()
            if not parts or (number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts)):
                continue  # a blank line, or the `count dim` header
            try:
                vector = np.array(parts[1:], dtype=np.float32)
            except ValueError as error:
                raise DataError(path, number, "expected 'SYMBOL v1 v2 ... vd' (numbers after the symbol)") from error
            if not len(vector):
                raise DataError(path, number, "expected 'SYMBOL v1 v2 ... vd', got a symbol and no numbers")
            if dimensions is None:
                dimensions = len(vector)
            if len(vector) != dimensions:
                raise DataError(path, number, f"expected {dimensions} numbers after the symbol, got {len(vector)}")
            require_new_id(path, number, parts[0], first_lines)
            vectors[parts[0]] = vector
    return vectors


def _load_pickled(path) -> dict[str, np.ndarray]:
    import pickle

    expected = "expected a pickled, non-empty {symbol: vector} dict"
    try:
        with open(path, "rb") as handle:
            loaded = pickle.load(handle)
    except Exception as error:  # unpickling a file that is no pickle fails in any way at all (ValueError, KeyError...)
        raise DataError(path, None, f"not a pickle ({type(error).__name__}): {expected}") from error
    if not isinstance(loaded, dict) or not loaded:
        raise DataError(path, None, expected)
    vectors, keys = {}, {}
    for key, vector in loaded.items():
        symbol = str(key)
        if symbol in keys:
            raise DataError(path, None, f"keys {keys[symbol]!r} and {key!r} are both symbol {symbol!r}: symbols must "
                                        "be unique")
        keys[symbol] = key
        try:
            vectors[symbol] = np.asarray(vector, dtype=np.float32).ravel()
        except (TypeError, ValueError) as error:
            raise DataError(path, None, f"the vector of {key!r} is not numbers: {expected}") from error
    if len({len(v) for v in vectors.values()}) != 1:
        raise DataError(path, None, "the vectors do not all have the same length")
    return vectors


def embed_file(input_path, output, encoder: str = DEFAULT_ENCODER) -> dict:
    """Embed the texts of `input_path` (`read_gene_texts`) into the .npz file `output`. Raises InputError, before the
    encoder loads, for an `output` that is not an .npz file name, and DataError for bad or empty input (nothing is
    written)."""
    output = output_file(output, ".npz")
    texts = read_gene_texts(input_path)  # bad input fails before the encoder loads
    empty = blank_texts(texts, input_path)
    sentence_encoder = load_encoder(encoder)
    ids, X, cut = embed_texts(texts, sentence_encoder)
    save_embeddings(output, ids, X)
    return {"genes": len(ids), "dimensions": int(X.shape[1]) if X.ndim == 2 else 0, "encoder": encoder,
            "encoder_max_seq_length": sentence_encoder.max_seq_length, "cut_by_encoder": cut,
            "empty_texts": len(empty), "output": str(output)}
