"""`bft eval go-naming`: the model names the biological process of each gene set (Hu et al. 2024; GeneAgent).

Scores per set: the cosine similarity of the sentence embeddings of the proposed and the true name; the percentile
of that similarity among the similarities of the proposed name to every GO biological-process name (1.0: closer
to the true name than to any other term); ROUGE-L F1 of the two names. An answer that names nothing (empty, blank,
unparseable: `bft.eval.answers.parse_process_name`) scores 0 on all three and is counted: `answered_share`. Over
all sets: the share of distinct names, which shows a model that names most sets alike.
"""

import hashlib
import logging
from collections import Counter

import numpy as np

from bft.data.gene_sets import read_gene_sets, read_go_terms, set_key
from bft.data.go_naming import naming_prompt
from bft.data.records import DataError, read_records
from bft.data.splits import fixed_subset
from bft.data.symbols import examples
from bft.eval.answers import parse_process_name
from bft.eval.output import write_evaluation
from bft.files import atomic_output
from bft.generation import generate
from bft.models import DEFAULT_ENCODER, cache_dir, embed, embed_with_cut, load_encoder
from bft.stats import summarise

logger = logging.getLogger(__name__)


def percentiles(similarity: np.ndarray, to_all_terms: np.ndarray) -> np.ndarray:
    """For each set: the fraction of GO terms whose name is less similar to the prediction than the true name is."""
    return (to_all_terms < similarity[:, None]).mean(axis=1)


def name_scores(names: list[str], predicted: np.ndarray, truth: np.ndarray, all_terms: np.ndarray | None = None):
    """(similarity, percentile) of each proposed name, `[n]` arrays: the cosine of its embedding (`predicted`,
    `[n, d]`, unit length) to the true name's (`truth`), and that similarity's `percentiles` among its similarities
    to every GO process name (`all_terms`, `[terms, d]`; None: no percentile). A name that says nothing (`""`)
    scores 0 on both, the floor, never the chance-level figures its embedding would get."""
    answered = np.array([bool(name) for name in names])
    similarity = np.where(answered, (predicted * truth).sum(axis=1), 0.0)
    if all_terms is None:
        return similarity, None
    return similarity, np.where(answered, percentiles(similarity, predicted @ all_terms.T), 0.0)


def rouge_l(predictions: list[str], references: list[str]) -> list[float]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return [scorer.score(ref, pred)["rougeL"].fmeasure for pred, ref in zip(predictions, references)]


def process_name_embeddings(encoder, encoder_name: str, go_dir) -> np.ndarray:
    """Embeddings of every GO biological-process name, cached by encoder and file contents."""
    names, processes = read_go_terms(go_dir)
    texts = sorted(names[go_id] for go_id in processes if go_id in names)
    key = hashlib.sha256(("\n".join(texts) + encoder_name).encode()).hexdigest()[:16]
    path = cache_dir() / "embeddings" / f"go-bp-names-{key}.npy"
    if path.exists():
        return np.load(path)
    vectors = embed(encoder, texts)
    with atomic_output(path) as handle:
        np.save(handle, vectors)
    return vectors


def read_evaluation_sets(path) -> list:
    """The gene sets of an evaluation file (`bft.data.gene_sets.read_gene_sets`); DataError when it holds none: an
    evaluation of nothing has no score."""
    gene_sets = read_gene_sets(path)
    if not gene_sets:
        raise DataError(path, None, "no gene sets: expected a header and at least one row of id, genes, name")
    return gene_sets


def evaluate_go_naming(model, tokenizer, sets, output, *, go_dir, encoder=DEFAULT_ENCODER, limit=None,
                       batch_size=16, max_new_tokens=32, repetition_penalty=1.0, gene_sets=None) -> dict:
    """Name every gene set of the file `sets` with the model and score the names; writes results and predictions.
    `gene_sets`: the sets already read from that file (it is then not read again)."""
    gene_sets = fixed_subset(read_evaluation_sets(sets) if gene_sets is None else gene_sets, limit, lambda gs: gs.id)
    generated = generate(model, tokenizer, [naming_prompt(gs.genes) for gs in gene_sets],
                         max_new_tokens=max_new_tokens, batch_size=batch_size, repetition_penalty=repetition_penalty,
                         desc="naming gene sets")
    results = {"task": "go-naming", "sets": str(sets), "encoder": encoder, "repetition_penalty": repetition_penalty,
               "cut_at_max_new_tokens": sum(generated.cut), "prompts_over_context": generated.over_context}
    return score_names(gene_sets, generated.answers, output, go_dir=go_dir, encoder=encoder, results=results)


def evaluate_given_names(sets, predictions, output, *, go_dir, encoder=DEFAULT_ENCODER, limit=None) -> dict:
    """Score names written by another system (GPT-4, GeneAgent, ...) with the same metrics: `predictions` is a
    TSV/CSV/JSONL file of set `id` and `name`, joined to `sets` by id (a GO id whatever its case: `set_key`); where a
    `prediction` column is present it is the proposed name (as in this tool's own predictions.jsonl, whose `name` is
    the true one). Sets the file does not list are reported in `missing` and left out of the scores; a set listed
    with an empty, blank or null name is scored as named nothing; names of sets not in `sets` are reported in
    `unknown`; both are also logged as warnings, with counts and examples.

    Raises DataError for a row without an id or a name, a set named twice, or no set in common with `sets`."""
    all_sets = read_evaluation_sets(sets)
    gene_sets = fixed_subset(all_sets, limit, lambda gs: gs.id)
    given, lines, ids = {}, {}, {}
    for line, record in read_records(predictions):
        column = "prediction" if "prediction" in record else "name"
        name = "" if column in record and record[column] is None else record.get(column)  # null: named nothing
        absent = [key for key in ("id", column) if key not in record]
        if absent or not isinstance(name, str):
            found = f"missing {', '.join(map(repr, absent))}" if absent else f"{column!r} is not text"
            raise DataError(predictions, line, f"{found}: expected columns 'id' and 'name' (the proposed process name)")
        key = set_key(record["id"])
        if key in given:
            raise DataError(predictions, line, f"set {record['id']!r} is named again (first on line {lines[key]}): "
                                               "give one name a set")
        given[key], lines[key], ids[key] = name, line, str(record["id"])
    known = {set_key(gs.id) for gs in all_sets}
    named = [gs for gs in gene_sets if set_key(gs.id) in given]
    missing = [gs.id for gs in gene_sets if set_key(gs.id) not in given]
    unknown = sorted(ids[key] for key in set(given) - known)
    results = {"task": "go-naming", "sets": str(sets), "predictions": str(predictions), "encoder": encoder,
               "sets_total": len(gene_sets), "missing": missing, "unknown": unknown}
    if not named:
        raise DataError(predictions, None, f"no set id in common with {sets}")
    if missing:
        logger.warning("%d of %d sets of %s have no name in %s and are left out of the scores: %s", len(missing),
                       len(gene_sets), sets, predictions, examples(missing))
    if unknown:
        logger.warning("%d of %d names of %s are of sets that %s does not hold: %s", len(unknown), len(given),
                       predictions, sets, examples(unknown))
    return score_names(named, [given[set_key(gs.id)] for gs in named], output, go_dir=go_dir, encoder=encoder,
                       results=results)


def name_diversity(names: list[str]) -> dict:
    """How varied the proposed names are: the share of sets given a distinct name (case-insensitive) and the most
    frequent name with the share of sets given it. A model that gives most sets one name has collapsed, whatever its
    mean similarity. A name that says nothing (`""`) is no name: it adds no distinct name and is never the top name
    (None where no set is named, with shares 0)."""
    counts = Counter(name.lower() for name in names if name)
    top_name, top_count = counts.most_common(1)[0] if counts else (None, 0)
    return {"distinct_name_share": len(counts) / len(names), "top_name": top_name,
            "top_name_share": top_count / len(names)}


def score_names(gene_sets, answers, output, *, go_dir, encoder, results) -> dict:
    """Similarity, percentile and ROUGE-L of each answer's process name against its set's true name (0 for an answer
    that names nothing), the share of answers that name something, and how varied the names are."""
    names = [parse_process_name(answer) for answer in answers]
    sentence_encoder = load_encoder(encoder)
    predicted, names_cut = embed_with_cut(sentence_encoder, names)
    truth = embed(sentence_encoder, [gs.name for gs in gene_sets])
    similarity, percentile = name_scores(names, predicted, truth,
                                         process_name_embeddings(sentence_encoder, encoder, go_dir))
    rouge = [score if name else 0.0 for name, score in zip(names, rouge_l(names, [gs.name for gs in gene_sets]))]
    predictions = [
        {"id": gs.id, "genes": list(gs.genes), "name": gs.name, "prediction": name, "answer": answer,
         "answered": bool(name), "similarity": float(s), "percentile": float(p), "rougeL": r}
        for gs, name, answer, s, p, r in zip(gene_sets, names, answers, similarity, percentile, rouge)
    ]
    answered = sum(bool(name) for name in names)
    results = {**results, "n": len(gene_sets), "answered": answered, "answered_share": answered / len(gene_sets),
               "names_cut_by_encoder": names_cut,
               **summarise("semantic_similarity", similarity),
               **summarise("percentile", percentile), **summarise("rougeL", rouge), **name_diversity(names)}
    return write_evaluation(output, results, predictions)
