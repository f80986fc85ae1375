"""The filler teacher: word-level drop labels for real tool outputs, without an LLM.

The published Kompress model learned what to drop from an LLM's compressions; nothing like
that is reachable here (no model hub, no API), and the structural passes alone keep ~97% of
real words (they remove whole redundant lines, which the runtime has already done before the
model runs). So real outputs are labelled by explicit, conservative rules about *words*, and
the model distils them with context (the same word is filler in one line and content in
another):

* a line that carries a failure signal (error, exception, traceback, warning, assert, ...)
  keeps every word: that is where the agent looks;
* a line that looks like code (brackets, operators, assignments, key: value pairs, a
  leading keyword, `None`/`self`; after a grep, diff or line-number prefix), and any line
  of fewer than three words, keeps every word: an agent copies from it, and the Python keywords
  `for`, `in`, `is`, `if` are also English function words;
* in a prose-like line (mostly plain words), English function words are filler
  (`FUNCTION_WORDS`: articles, auxiliaries, prepositions, pronouns), and so are the
  politeness and progress words tools print around facts (`CHATTER`);
* anywhere, a word of four or more decoration characters (`-----`, `=====`, `*****`) is
  filler (`===` is an operator; nothing uses `====`).

A word that the must-keep rules protect is never filler (negations, `and`/`or`, status words,
identifiers, paths, numbers: must_keep.py); the caller ORs the must-keep bit in anyway.
"""

from __future__ import annotations

import re

from .must_keep import core, is_protected, words

# Articles, auxiliaries, prepositions, pronouns and adverbs with little content. Negations,
# `and`/`or`, modals and status words are not here (they are protected: must_keep.py).
FUNCTION_WORDS = frozenset("""
a an the this that these those it its it's there here
is are was were be been being am do does did doing has have had having
of to in on at by for from with into onto about as per via than then so such
will would could may might can
i we you he she they me us him them my our your his her their
which who whom whose what when where while
also just very really quite some any each every all both more most much many
""".split())

# Words tools print around the facts.
CHATTER = frozenset("""
please successfully successful done ok okay now currently already still
running checking downloading collecting installing preparing building processing
""".split())

_SIGNAL = re.compile(
    r"(?i)(error|exception|traceback|warn|fail|fatal|panic|assert|denied|refused|abort|"
    r"not found|no such|cannot|can't|unable|invalid|missing|expected|unexpected|"
    r"timeout|timed out|killed|segfault|overflow|deprecat)"
)
# Characters that make a line code or data rather than prose.
_CODE_CHARS = re.compile(r"[(){}\[\]=<>;|\\@$`]|::|->|=>|^\s*[#/*]|\w:\s|\w\.\w+\(")
_CODE_START = re.compile(
    r"^\s*(def|class|import|from|return|if|elif|else|for|while|try|except|finally|with|"
    r"fn|let|pub|use|impl|struct|enum|match|const|static|var|function|export|async|await|"
    r"raise|yield|lambda|assert|package|func|type|interface|continue|break|pass|del|not)\b"
)
_CODE_WORD = re.compile(
    r"\b(None|True|False|self|cls|nil|undefined|__\w+__)\b"  # literals
    r"|\b[A-Za-z]+_\w+"  # snake_case identifiers
    r"|\b[a-z]+[A-Z]\w*"  # camelCase identifiers
    r"|\bfor \w+ in \w"  # comprehensions
)
# What grep -n, diffs and numbered listings put before a line's own text.
_PREFIX = re.compile(r"^\s*(\S+?:\d+[:-]|\d+[:-]|[+\->]\s|\s*\d+\s*\t)")
_DECORATION = re.compile(r"^[-=_*#~+.·─━═]{4,}$")
_PLAIN = re.compile(r"^[A-Za-z][A-Za-z'-]*[.,:;!?]?$")


def line_kind(line: str) -> str:
    """`signal`, `code`, `prose` or `data` for one line (without its newline); decoration
    words do not count."""
    line = " ".join(w for w in words(line) if not _DECORATION.match(w))
    if _SIGNAL.search(line):
        return "signal"
    line = _PREFIX.sub("", line, count=1)
    if _CODE_START.search(line) or _CODE_CHARS.search(line) or _CODE_WORD.search(line):
        return "code"
    ws = words(line)
    if len(ws) < 3:
        return "data"
    plain = sum(1 for w in ws if _PLAIN.match(w))
    if plain * 10 >= len(ws) * 7:
        return "prose"
    return "data"


def is_filler(word: str, kind: str) -> bool:
    """Whether `word`, in a line of `kind`, is filler (never true for a protected word)."""
    if is_protected(word):
        return False
    if _DECORATION.match(word):
        return True
    if kind != "prose":
        return False
    c = core(word).lower()
    return c in FUNCTION_WORDS or c in CHATTER


def keep_labels(text: str) -> list[bool]:
    """One bit per word of `text` (must_keep.words order): True = keep."""
    out: list[bool] = []
    for line in text.split("\n"):
        kind = line_kind(line)
        out.extend(not is_filler(w, kind) for w in words(line))
    return out
