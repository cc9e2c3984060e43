"""Gene-set files (for evaluation and for training exclusions) and the GO biological-process gene sets.

A gene-set file is CSV, TSV or JSONL with columns `id`, `genes` (space- or comma-separated symbols, or a JSON list)
and `name`; GeneAgent's layout (`GO,Genes,Gene_Count,Term_Description`) is read as well.
"""

import logging
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from bft.data.records import DataError, open_text, read_records, require_new_id

logger = logging.getLogger(__name__)

GENEAGENT_COLUMNS = {"id": "GO", "genes": "Genes", "name": "Term_Description"}
# The files of a GO folder (`go_bp/` of the data folder), and what each holds
GO_FILES = {"goID_2_name.tab": "GO term names", "goID_2_namespace.tab": "GO term namespaces",
            "collapsed_go.symbol": "GO graph and gene annotations"}
_GO_ID = re.compile(r"GO:\d+", re.IGNORECASE)


@dataclass(frozen=True)
class GeneSet:
    id: str
    genes: tuple[str, ...]
    name: str


def read_gene_sets(path) -> list[GeneSet]:
    """Gene sets from a file in any accepted layout; raises DataError naming the line of a bad row (a missing column,
    an empty gene list, an empty, blank or null id or name, an id seen before, as matched: `set_key`)."""
    gene_sets, first_lines = [], {}
    for line, record in read_records(path):
        columns = GENEAGENT_COLUMNS if "GO" in record and "Genes" in record else {k: k for k in GENEAGENT_COLUMNS}
        missing = [column for column in columns.values() if column not in record]
        if missing:
            raise DataError(path, line, f"missing column(s) {', '.join(missing)}; expected id, genes, name "
                                        "(or GeneAgent's GO, Genes, Term_Description)")
        set_id, name = (_filled(record, columns[key], path, line) for key in ("id", "name"))
        genes = record[columns["genes"]] or ()  # (a JSONL null is no gene list)
        genes = tuple(genes) if isinstance(genes, list) else tuple(g for g in re.split(r"[\s,]+", str(genes)) if g)
        if not genes:
            raise DataError(path, line, "empty gene list")
        require_new_id(path, line, set_key(set_id), first_lines)
        gene_sets.append(GeneSet(set_id, genes, name))
    return gene_sets


def set_key(set_id) -> str:
    """A set id as ids are matched: without surrounding blanks, and a GO id upper-cased (`go:0015757` is
    `GO:0015757`, as the data builders compare them)."""
    key = str(set_id).strip()
    return key.upper() if _GO_ID.fullmatch(key) else key


def _filled(record, column, path, line) -> str:
    """The text of `column`; DataError for an empty, blank or null one (a set without a name cannot be scored)."""
    value = record[column]
    if value is None or not str(value).strip():
        raise DataError(path, line, f"empty {column}: every set needs an id, its genes and its process name")
    return str(value)


def read_go_terms(go_dir) -> tuple[dict[str, str], set[str]]:
    """(GO id -> name, the ids of biological-process terms) from `goID_2_name.tab` and `goID_2_namespace.tab`; a
    process without a name is left out, with a warning. Raises DataError for a missing or malformed file."""
    names = dict(_read_pairs(_go_file(go_dir, "goID_2_name.tab")))
    processes = {go_id for go_id, namespace in _read_pairs(_go_file(go_dir, "goID_2_namespace.tab"))
                 if namespace == "biological_process"}
    unnamed = sorted(processes - names.keys())
    if unnamed:
        logger.warning("%d biological-process terms of %s have no name in goID_2_name.tab and are left out (e.g. %s)",
                       len(unnamed), go_dir, ", ".join(unnamed[:3]))
    return names, processes - set(unnamed)


def go_process_gene_sets(go_dir) -> dict[str, frozenset[str]]:
    """Every annotated biological-process term -> its genes, propagated up from all its descendants.

    A gene annotated to a term is annotated to all of the term's ancestors (GO's true-path rule), so a term's set
    is the union of its own direct annotations and those of every descendant in `collapsed_go.symbol`. Raises
    DataError for a missing or malformed file of `go_dir`.
    """
    path = _go_file(go_dir, "collapsed_go.symbol")
    children, direct = defaultdict(set), defaultdict(set)
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3 or parts[2] not in ("default", "gene"):
                raise DataError(path, number, "expected 'parent<TAB>child<TAB>default' or 'GO_ID<TAB>SYMBOL<TAB>gene'")
            (children if parts[2] == "default" else direct)[parts[0]].add(parts[1])
    _, processes = read_go_terms(go_dir)
    memo: dict[str, frozenset[str]] = {}

    def genes_of(term):
        if term not in memo:
            memo[term] = frozenset()  # guards against a cycle in a malformed graph
            found = set(direct.get(term, ()))
            for child in children.get(term, ()):
                found |= genes_of(child)
            memo[term] = frozenset(found)
        return memo[term]

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    terms = (set(children) | set(direct)) & processes
    return {term: genes_of(term) for term in sorted(terms) if genes_of(term)}


def _go_file(go_dir, name) -> Path:
    """The path of GO file `name` (`GO_FILES`) in `go_dir`; DataError, saying what it holds, where it is missing."""
    path = Path(go_dir) / name
    if not path.is_file():
        raise DataError(path, None, f"file not found ({GO_FILES[name]}, of the GO folder {go_dir})")
    return path


def _read_pairs(path):
    """`KEY<TAB>VALUE` lines; the stray `<TAB>0` first line of GO's `.tab` files is skipped."""
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 2:
                raise DataError(path, number, "expected 'KEY<TAB>VALUE'")
            if parts[0]:
                yield parts[0], parts[1]
