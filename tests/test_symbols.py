"""Gene symbols joined whatever their case: exact first, case-insensitive only where one symbol answers, collisions
reported and never merged."""

import logging

from bft.data.symbols import case_collisions, match_symbols


def test_symbols_match_exactly_then_whatever_their_case():
    match = match_symbols(["C14ORF39", "TP53", "brca1", "NOPE"], ["C14orf39", "TP53", "BRCA1", "EGFR"])
    assert match.matched == {"C14ORF39": "C14orf39", "TP53": "TP53", "brca1": "BRCA1"}
    assert match.by_case == ["C14ORF39", "brca1"] and match.unmatched == ["NOPE"] and match.collisions == []
    assert match.counts() == {"matched": 3, "matched_by_case": 2, "unmatched": 1, "case_collisions": 0}


def test_symbols_differing_only_by_case_are_never_merged():
    # two known genes that differ only by case: each matches its own spelling, a third spelling matches neither
    match = match_symbols(["Sept4", "SEPT4", "sept4"], ["Sept4", "SEPT4"])
    assert match.matched == {"Sept4": "Sept4", "SEPT4": "SEPT4"} and match.unmatched == ["sept4"]
    assert match.collisions == [["SEPT4", "Sept4", "sept4"]]
    # two queries that differ only by case: the one spelt as known matches, the other is not folded onto it
    match = match_symbols(["MYC", "myc"], ["MYC"])
    assert match.matched == {"MYC": "MYC"} and match.unmatched == ["myc"] and match.collisions == [["MYC", "myc"]]
    # nor onto a known symbol of another spelling
    match = match_symbols(["Myc", "myc"], ["MYC"])
    assert match.matched == {} and len(match.collisions) == 1
    assert case_collisions(["A1", "a1", "B2", "A1"]) == [["A1", "a1"]]


def test_unmatched_symbols_and_collisions_are_warned_about(caplog):
    with caplog.at_level(logging.INFO, logger="bft.data.symbols"):
        match_symbols(["tp53", "GENE1", "GENE2", "abc", "ABC"], ["TP53"]).warn("symbols of x.tsv", "known genes")
    text = caplog.text
    assert "4 of 5 symbols of x.tsv are not among the known genes: GENE1, GENE2, abc, ABC" in text
    assert ("1 symbols of x.tsv match one of the known genes only when case is ignored (each is taken for the symbol "
            "it matches): tp53 as TP53") in text
    assert "1 groups of symbols of x.tsv" in text and "ABC/abc" in text


def test_what_becomes_of_unmatched_symbols_is_said_of_them_only(caplog):
    # a caller's word on the unmatched ones is not pasted into the line on those matched only when case is ignored
    with caplog.at_level(logging.INFO, logger="bft.data.symbols"):
        match_symbols(["tp53", "NOPE"], ["TP53"]).warn("genes of e.npz", "genes of the pairs",
                                                       unmatched_then="they are not used", by_case_then="they are used")
    unmatched, by_case = caplog.messages
    assert unmatched == "1 of 2 genes of e.npz are not among the genes of the pairs (they are not used): NOPE"
    assert by_case == ("1 genes of e.npz match one of the genes of the pairs only when case is ignored "
                       "(they are used): tp53 as TP53")
