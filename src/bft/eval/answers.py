"""The answer in a model's free text: one parser per kind of answer, for `bft eval`, the GRPO rewards
(`bft.rewards`) and `bft compare` alike, so that what GRPO rewards is what evaluation scores.

An answer that says nothing (empty, blank, or nothing in it reads as an answer) parses to `""` (names) or `None`
(letters, decisions); the evaluations score it at the floor of every metric and count it as unanswered.

- `parse_process_name`: the first line that holds a name, without a label ("Process:", "**Name:**", "Answer:",
  also on a line of its own), a list marker, quotes, markdown or trailing punctuation;
- `parse_option_letter`: a letter only where it is written as an option ("\\boxed{C}", "Answer: C",
  "the answer is C", "I would choose C", "I'd pick C", "(C)", "C.", "C) pancreas"; lower-case only after such a
  cue: "Answer: c"), never an English word ("I think ...", the article "A" or "a", "vitamin C"), and only one of
  the question's letters;
- `parse_decision` (PubMedQA): "Final answer: yes", "the answer is no", or a yes/no/maybe that opens the answer
  or stands alone on its last line; never a "no" inside a sentence ("there is no evidence ...").

Pure string functions: importing this module loads no model code.
"""

import re

# --- process names -------------------------------------------------------------------------------------------------
_MARKUP = re.compile(r"^\s*(?:[-*•>#]+\s*|\d+[.)]\s+)?")  # list markers, quote and heading marks, emphasis
_LABEL = re.compile(r"^(?:the\s+)?(?:final\s+|proposed\s+|suggested\s+|short\s+)?"
                    r"(?:(?:biological\s+)?process(?:\s+name)?|name(?:\s+of\s+the\s+process)?|answer|go\s+term|term)"
                    r"\s*[:=]\s*", re.IGNORECASE)
# "The most prominent biological process (they perform / of these genes) is X": keep X
_SENTENCE = re.compile(r"^(?:the )?(?:most )?(?:prominent )?(?:biological )?process\b[^.:]*?\bis (?:the |a |an )?",
                       re.IGNORECASE)
_GO_ID = re.compile(r"\s*\(?\bGO:\d+\)?$")
_ENCLOSING = "*_\"'`“”‘’ \t"
_NO_NAME = {"none", "n/a", "na", "unknown", "not sure", "i don't know", "i do not know"}


def parse_process_name(answer: str | None) -> str:
    """The process name in a free-text answer, or `""` when it holds none (empty, blank, only punctuation or
    markup, a bare label, "unknown", "n/a")."""
    for line in (answer or "").splitlines():
        name = _LABEL.sub("", _MARKUP.sub("", line).strip(_ENCLOSING))
        name = _strip_decoration(_SENTENCE.sub("", _strip_decoration(name)))
        if not re.search(r"[^\W\d_]", name):  # a label on its own line, "...", "-": look further
            continue
        return "" if name.lower() in _NO_NAME else name
    return ""


def _strip_decoration(text: str) -> str:
    """Without list markers, markdown emphasis, quotes, a GO id and trailing punctuation."""
    previous = None
    while text != previous:
        previous = text
        text = _GO_ID.sub("", _MARKUP.sub("", text).strip(_ENCLOSING)).rstrip(".;:!,").strip()
    return text


# --- option letters ------------------------------------------------------------------------------------------------
LETTERS = "ABCDEFGHIJ"
_KEYS = {"answer": r"(?i:\banswer\b)",
         "chosen": r"(?i:\b(?:choose|chose|pick|picked|select|selected|go\s+with|going\s+with|went\s+with)\b)",
         "option": r"(?i:\b(?:option|choice)\b)"}
_SAID = r"\s+(?i:is|would\s+be|will\s+be|should\s+be|must\s+be)\s*:?\s*"  # "the answer is C"
_LABELLED = r"\s*[:=\-]?\s*"  # "Answer: C", "Option C"
_CHOSEN = r"\s+"  # "I would choose C"
_PREFIX = r"(?:\*\*\s*)?(?i:(?:option|choice)\s+)?[\(\[\"'“‘]?\s*"  # "(C)", "[C]", quoted "C" or 'c'
_END = r"(?![\w-]|['’]\w)"  # not part of a word: "C", "C.", "C)", "'C'", but not "Cell", "C's", "C-reactive"
# A lower-case letter (after a cue only) must end its phrase: "Answer: c", "c.", "(c)", "c) pancreas"; never "a"
# or "i" before a word ("Answer: a deficiency of ...", "I would choose a different drug") nor "e.g.", "i.e."
_LOWER_END = r"(?=[)\]*,;:!?\"'”’]|\.(?!\w)|[ \t]*(?:\n|$))"
# In order of precedence: said to be the answer; said to be chosen; said to be the option. After a colon, "A" or
# "I" before a lower-case word is English ("Answer: I think ...", "Answer: A deficiency of ..."), unless the word
# cannot follow the article or the pronoun ("Answer: A because ...", "Answer: A is correct", "Answer: A with ...");
# after "is" or "choose" it is the letter.
_AFTER_A_LETTER = r"(?:because|since|as|is|was|with|and|or|but|due|given|seems|appears)\b"
_ENGLISH = rf"(?![AI]\s+(?!{_AFTER_A_LETTER})[a-z])"
_STATED = [re.compile(_KEYS[key] + form + _PREFIX + rf"(?:{guard}([A-J]){_END}|([a-j]){_LOWER_END})")
           for key, form, guard in (("answer", _SAID, ""), ("answer", _LABELLED, _ENGLISH), ("chosen", _CHOSEN, ""),
                                    ("option", _SAID, ""), ("option", _LABELLED, _ENGLISH))]
# Written as an option at the start of the answer: "C", "C.", "(C) the kidney", "C) pancreas", "C: insulin",
# "**C**", "C is correct"; a bare letter followed by a word ("A cell ...", "I think") is English
_LEADING = re.compile(r"^\s*(?:\*\*)?\s*(?:\(([A-J])\)|\[([A-J])\]|([A-J])(?:\*\*)?(?:[.):]|\s*$|\s+is\s+"
                      r"(?:the\s+)?(?:correct|right|best|answer)\b))")
_ENCLOSED = re.compile(r"[\(\[]([A-J])[\)\]]")  # "(C)" anywhere
_BOXED = re.compile(r"\\boxed\{\s*(?:\\text\{\s*)?([A-J])\s*\}")  # LaTeX "\boxed{C}", as reasoning models write it


def parse_option_letter(answer: str | None, letters: str = LETTERS) -> str | None:
    """The option chosen in a free-text answer, or None where no option letter of `letters` is written as one.

    In order: the first letter boxed ("\\boxed{C}"), the first said to be the answer ("Answer: C", "the answer is
    C"), then the first said to be chosen ("I would choose C", "I'd pick C", "I would go with C"), the first said to
    be the option ("Option C"), the letter the answer opens with as an option ("C", "C.", "(C)", "C) pancreas"), the
    first letter in brackets ("... (C) ..."). Capital letters, and a lower-case one only right after one of those
    cues and ending its phrase ("Answer: c", "I choose (b)."): elsewhere lower-case "a" and "i" are words."""
    text = answer or ""
    boxed = next((match.group(1) for match in _BOXED.finditer(text) if match.group(1) in letters), None)
    if boxed:
        return boxed
    for pattern in _STATED:
        for match in pattern.finditer(text):
            letter = (match.group(1) or match.group(2)).upper()
            if letter in letters:
                return letter
    leading = _LEADING.match(text)
    if leading:
        letter = next(group for group in leading.groups() if group)
        if letter in letters:
            return letter
    return next((match.group(1) for match in _ENCLOSED.finditer(text) if match.group(1) in letters), None)


# --- PubMedQA decisions --------------------------------------------------------------------------------------------
_DECISION = r"\W*(yes|no|maybe)\b"
_FINAL = re.compile(r"final\s+answer" + _DECISION, re.IGNORECASE)
_STATED_DECISION = re.compile(r"\banswer(?:\s+to\s+(?:the|this)\s+question)?(?:\s+is|\s*:)" + _DECISION,
                              re.IGNORECASE)
_OPENING = re.compile(r"^\W*(yes|no|maybe)\b(?!-)", re.IGNORECASE)
_ALONE = re.compile(r"^\W*(yes|no|maybe)\W*$", re.IGNORECASE)


def parse_decision(answer: str | None) -> str | None:
    """The yes/no/maybe decision of a PubMedQA answer, or None. In order: the last 'Final answer: X', the last
    'answer is X' / 'answer: X', a decision alone on the last non-empty line, a decision that opens the answer."""
    text = answer or ""
    for pattern in (_FINAL, _STATED_DECISION):
        found = pattern.findall(text)
        if found:
            return found[-1].lower()
    lines = [line for line in text.splitlines() if line.strip()]
    for match in (_ALONE.match(lines[-1]) if lines else None, _OPENING.match(text)):
        if match:
            return match.group(1).lower()
    return None
