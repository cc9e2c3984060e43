"""`bft profile`: the model writes a profile of each gene, in batches, resumably.

Output rows are `{"id": symbol, "text": profile, "cut": whether generation stopped at max_new_tokens, "written_by":
{model, template, max_new_tokens, repetition_penalty}}`, appended batch by batch and flushed to disk; a restarted
run reads what is there (dropping a torn last line) and profiles only the genes that are missing (a gene already
there whatever the case of its symbol is not profiled again). A file written by another model or setting fails
instead: one file never mixes two models' profiles. A run folder is recorded by its name and training
(`writer`), so a copied or moved run folder carries on with its profiles.
"""

import json
import logging
import os
import time
from collections import Counter
from pathlib import Path

from tqdm.auto import tqdm

from bft.data.gene_profiles import profile_prompt
from bft.data.records import DataError, read_records, read_text
from bft.data.symbols import case_collisions, examples, match_symbols
from bft.errors import InputError
from bft.files import output_file
from bft.generation import generate
from bft.run_folder import fingerprint as run_fingerprint

logger = logging.getLogger(__name__)

TEMPLATES = {
    "describe": profile_prompt,
    "summary": lambda symbol: f"Write a concise NCBI-style summary of the human gene {symbol}.",
}


def read_gene_list(path) -> list[str]:
    """Symbols from a text file (one a line) or any CSV/TSV/JSONL file with a `gene` column; order kept, no repeats."""
    path = Path(path)
    if path.suffix.lower() in (".csv", ".tsv", ".jsonl", ".json", ".parquet"):
        genes = []
        for line, record in read_records(path):
            if not str(record.get("gene", "")).strip():
                raise DataError(path, line, "expected a non-empty 'gene' column")
            genes.append(str(record["gene"]).strip())
    else:
        if not path.is_file():
            raise DataError(path, None, "file not found")
        genes = []
        for number, line in enumerate(read_text(path).split("\n"), start=1):
            symbol = line.strip()
            if symbol and (" " in symbol or "\t" in symbol):
                raise DataError(path, number, f"expected one gene symbol a line, got {symbol!r}")
            if symbol:
                genes.append(symbol)
    if not genes:
        raise DataError(path, None, "no genes")
    genes = list(dict.fromkeys(genes))
    collisions = case_collisions(genes)
    if collisions:
        logger.warning("%s: %d groups of symbols differ only by case (%s); each is profiled as a gene of its own",
                       path, len(collisions), examples(["/".join(group) for group in collisions]))
    return genes


def writer(model_name: str, template: str, max_new_tokens: int, repetition_penalty: float) -> dict:
    """What writes a profile: the model and the settings of its generation. A `bft train` run folder is named by
    its folder's name and its training's fingerprint (`bft.run_folder.fingerprint`), so that a copied or moved folder
    carries on; another local folder by its full path; an embedded name or hub id as given. Raises InputError for a
    template not in `TEMPLATES`."""
    if template not in TEMPLATES:
        raise InputError(f"unknown template {template!r}; choose one of {', '.join(TEMPLATES)}")
    model, run = model_name, None
    if Path(model_name).exists():
        run = run_fingerprint(model_name)
        model = Path(model_name).resolve().name if run else str(Path(model_name).resolve())
    return {"model": model, **({"run": run} if run else {}), "template": template, "max_new_tokens": max_new_tokens,
            "repetition_penalty": repetition_penalty}


def read_done(output, written_by: dict | None = None) -> dict[str, dict]:
    """Profiles already written, {gene: its row} (by `written_by`, when given: a row written otherwise fails); a torn
    last line (a killed run) is cut off the file. Raises InputError for an `output` that is not a .jsonl file name
    (`bft embed` reads profiles from .jsonl files only), DataError for a file that holds something else."""
    output = output_file(output, ".jsonl")
    if not output.exists():
        return {}
    raw = output.read_bytes()
    keep = raw if raw.endswith(b"\n") or not raw else raw[: raw.rfind(b"\n") + 1]
    if keep != raw:
        output.write_bytes(keep)
    done = {}
    for number, line in enumerate(keep.decode("utf-8-sig").split("\n"), start=1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            if not isinstance(row, dict) or not isinstance(row.get("id"), str) or not isinstance(row.get("text"), str):
                raise DataError(output, number, 'expected {"id": ..., "text": ...}: is this a profiles file?')
            done[row["id"]] = row
            if written_by is not None and row.get("written_by", written_by) != written_by:
                different = ", ".join(f"{key!r}: {row['written_by'].get(key)!r} there, {value!r} now"
                                      for key, value in written_by.items() if row["written_by"].get(key) != value)
                raise DataError(output, number, f"written by another model or setting ({different}); profiles of "
                                                "two would mix: give another output, or delete the file")
    return done


def profile_quality(texts: list[str]) -> dict:
    """How degenerate a set of profiles is: the share that loop (some word 3-gram occurs 4+ times: fine-tuned
    small models often fall into "the family of the family of ...") and the share of distinct texts."""
    def loops(text):
        words = text.split()
        counts = Counter(tuple(words[i:i + 3]) for i in range(len(words) - 2))
        return max(counts.values(), default=0) >= 4

    n = max(len(texts), 1)
    return {"looping_share": sum(map(loops, texts)) / n, "distinct_share": len(set(texts)) / n}


def write_profiles(model, tokenizer, genes: list[str], output, *, model_name: str, template="describe", batch_size=16,
                   max_new_tokens=160, repetition_penalty=1.0) -> dict:
    """Profile the genes not yet in `output` with `model` (loaded from `model_name`); returns counts and
    throughput."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    written_by = writer(model_name, template, max_new_tokens, repetition_penalty)
    done = match_symbols(genes, read_done(output, written_by))  # a gene already there, whatever its case, is done
    if done.by_case:
        logger.info("%d genes are already in %s spelt with another case (e.g. %s): they are not profiled again",
                    len(done.by_case), output, examples(done.by_case))
    todo, cut, over_context = done.unmatched, 0, 0
    started = time.perf_counter()
    with open(output, "a", encoding="utf-8") as handle, tqdm(total=len(todo), desc="profiling", unit="gene") as bar:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            generated = generate(model, tokenizer, [TEMPLATES[template](g) for g in chunk],
                                 max_new_tokens=max_new_tokens, batch_size=batch_size,
                                 repetition_penalty=repetition_penalty, desc=None, warn=False)
            cut += sum(generated.cut)
            over_context += generated.over_context
            rows = (json.dumps({"id": g, "text": t, "cut": c, "written_by": written_by}, ensure_ascii=False) + "\n"
                    for g, t, c in zip(chunk, generated.answers, generated.cut))
            handle.write("".join(rows))
            handle.flush()
            os.fsync(handle.fileno())
            bar.update(len(chunk))
    seconds = time.perf_counter() - started
    if cut:
        logger.warning("%d of %d profiles reached --max-new-tokens (%d) before the model ended them, and are cut there",
                       cut, len(todo), max_new_tokens)
    if over_context:
        logger.warning("%d of %d prompts, with --max-new-tokens (%d), are longer than the model's context: their "
                       "profiles are written past it", over_context, len(todo), max_new_tokens)
    return {"genes": len(genes), "already_done": len(genes) - len(todo), "written": len(todo),
            "cut_at_max_new_tokens": cut, "prompts_over_context": over_context, "seconds": seconds,
            "genes_per_second": len(todo) / seconds if todo and seconds else None,
            "repetition_penalty": repetition_penalty}
