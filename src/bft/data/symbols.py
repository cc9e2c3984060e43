"""Joining gene symbols from two sources whatever their case (a spreadsheet upper-cases `C14orf39` to `C14ORF39`).

HGNC symbols are unique regardless of case, but files spell them differently: spreadsheets upper-case them, mouse
and human symbols differ in case only, and some tools lower-case everything. A symbol is matched exactly where its
spelling is known, else case-insensitively where that names a single known symbol. Spellings that differ only by
case on either side (two entries `Abc` and `ABC`) may be genuinely distinct genes: they are matched exactly only,
never merged, and reported as collisions.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)
EXAMPLES = 5  # symbols named in a warning


@dataclass
class SymbolMatch:
    """The result of `match_symbols`: each query's known spelling (`matched`), and what could not be matched."""

    matched: dict[str, str]  # query -> the known spelling it stands for
    by_case: list[str] = field(default_factory=list)  # queries matched only case-insensitively
    unmatched: list[str] = field(default_factory=list)  # queries that name no known symbol
    # spellings differing by case only, among the queries or between a query and several known symbols
    collisions: list[list[str]] = field(default_factory=list)

    def counts(self) -> dict:
        """Figures for a `meta.json` or a summary."""
        return {"matched": len(self.matched), "matched_by_case": len(self.by_case), "unmatched": len(self.unmatched),
                "case_collisions": len(self.collisions)}

    def warn(self, queries: str, known: str, *, unmatched_then: str = "",
             by_case_then: str = "each is taken for the symbol it matches") -> None:
        """Log a warning naming a few unmatched symbols, a line naming a few matched only case-insensitively, and a
        warning naming the collisions. `queries` and `known` name the two sides in the plural ("gene symbols of
        FILE", "genes annotated to GO biological processes"); `unmatched_then` and `by_case_then` say what becomes
        of the queries matched by no symbol ("they are not used") and of those matched only case-insensitively."""
        if self.unmatched:
            logger.warning("%d of %d %s are not among the %s%s: %s", len(self.unmatched),
                           len(self.unmatched) + len(self.matched), queries, known, _then(unmatched_then),
                           examples(self.unmatched))
        if self.by_case:
            logger.info("%d %s match one of the %s only when case is ignored%s: %s", len(self.by_case), queries, known,
                        _then(by_case_then),
                        examples([f"{query} as {self.matched[query]}" for query in self.by_case]))
        if self.collisions:
            logger.warning("%d groups of %s (or of the %s they would match) differ only by case (%s): they are "
                           "matched exactly only, never merged", len(self.collisions), queries, known,
                           examples(["/".join(group) for group in self.collisions]))


def match_symbols(queries: Iterable[str], known: Iterable[str]) -> SymbolMatch:
    """Match every query symbol to a symbol of `known`: exactly, else by case-folded spelling where exactly one
    known symbol and exactly one query have that folded spelling. Order of first appearance is kept."""
    queries, known = list(dict.fromkeys(queries)), set(known)
    known_by_fold, queries_by_fold = defaultdict(set), defaultdict(set)
    for symbol in known:
        known_by_fold[symbol.casefold()].add(symbol)
    for symbol in queries:
        queries_by_fold[symbol.casefold()].add(symbol)
    result = SymbolMatch(matched={})
    for symbol in queries:
        fold = symbol.casefold()
        if symbol in known:
            result.matched[symbol] = symbol
        elif len(known_by_fold.get(fold, ())) == 1 and len(queries_by_fold[fold]) == 1:
            result.matched[symbol] = next(iter(known_by_fold[fold]))
            result.by_case.append(symbol)
        else:
            result.unmatched.append(symbol)
    result.collisions = [sorted(spellings | known_by_fold.get(fold, set()))
                         for fold, spellings in sorted(queries_by_fold.items())
                         if len(spellings) > 1 or len(known_by_fold.get(fold, ())) > 1]
    return result


def case_collisions(symbols: Iterable[str]) -> list[list[str]]:
    """Groups of the given symbols that differ only by case (distinct entries that a case-insensitive join would
    merge)."""
    return match_symbols(symbols, ()).collisions


def _then(what: str) -> str:
    """` (what)`, or nothing where `what` is empty: what becomes of the symbols a log line names."""
    return f" ({what})" if what else ""


def examples(symbols: list[str]) -> str:
    """A few of `symbols`, comma-separated, and how many more there are."""
    shown = ", ".join(symbols[:EXAMPLES])
    return shown + (f" and {len(symbols) - EXAMPLES} more" if len(symbols) > EXAMPLES else "")
