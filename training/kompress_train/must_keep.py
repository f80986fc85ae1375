"""A faithful Python port of src/protect.rs: must-keep protection at the word level.

A *word* is a maximal run of non-whitespace characters (Rust's `str::split_whitespace`,
i.e. Unicode White_Space). `core()` strips the wrapping punctuation, `classify()` tries the
pattern rules in order and then the meaning words. tests/fixtures/protect/words.tsv holds the
Rust verdicts for a few thousand words; training/tests/test_must_keep.py checks this port
against it (100% agreement required).

Differences between Python `re` and Rust `regex` are handled explicitly:

* `\\w` in Rust is Unicode-aware (Alphabetic, marks, decimal digits, connector punctuation,
  join controls); Python's `\\w` differs on a few code points (e.g. `²` is `\\w` in Python but
  not in Rust, combining marks are the reverse). `WORD` below builds Rust's class.
* whitespace: Rust's `char::is_whitespace` (White_Space) does not include U+001C..U+001F,
  which Python's `str.split()` treats as separators; `words()` uses Rust's set.
"""

from __future__ import annotations

import re
import unicodedata

LEADING = "([{<\"'`*,"
TRAILING = ")]}>\"'`,;:.!?*"

MEANING_WORDS = frozenset([
    # negations
    "not", "no", "never", "none", "nothing", "nobody", "neither", "nor", "cannot", "can't",
    "don't", "doesn't", "didn't", "won't", "isn't", "aren't", "wasn't", "weren't", "shouldn't",
    "mustn't", "couldn't", "wouldn't", "hasn't", "haven't", "without", "unless", "except",
    # modals and constraints
    "must", "should", "shall", "only", "always", "required", "mandatory", "avoid", "forbidden",
    "prohibited", "disallow", "refuse", "deprecated",
    # conjunctions that change a condition
    "and", "or", "xor",
    # status words
    "error", "errors", "failed", "failure", "failures", "fail", "fails", "fatal", "panic",
    "panicked", "warning", "warnings", "denied", "missing", "invalid", "unexpected", "timeout",
    "aborted", "killed", "true", "false", "null",
])

# Rust's char::is_whitespace (Unicode White_Space).
RUST_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_WS_CLASS = "".join("\\x%02x" % ord(c) if ord(c) < 256 else "\\u%04x" % ord(c) for c in RUST_WHITESPACE)
_WORD_RE = re.compile("[^%s]+" % _WS_CLASS)
_GAPPED_RE = re.compile("([%s]*)([^%s]+)" % (_WS_CLASS, _WS_CLASS))


# Other_Alphabetic code points outside the mark categories (circled/squared letters, So).
_OTHER_ALPHABETIC_SO = ((0x24B6, 0x24E9), (0x1F130, 0x1F149), (0x1F150, 0x1F169), (0x1F170, 0x1F189))


def _rust_is_word_char(ch: str) -> bool:
    """regex-syntax's Unicode `\\w`: Alphabetic | M | Nd | Pc | Join_Control."""
    if ch.isalpha():  # L*
        return True
    cat = unicodedata.category(ch)
    if cat[0] == "M" or cat in ("Nd", "Pc", "Nl"):
        return True
    if ch in ("\u200c", "\u200d"):
        return True
    o = ord(ch)
    return any(lo <= o <= hi for lo, hi in _OTHER_ALPHABETIC_SO)


def _word_class_body() -> str:
    """The body of a regex character class equal to Rust's Unicode `\\w`, as ranges."""
    ranges = []
    start = None
    for o in range(0x110000 + 1):
        inside = o < 0x110000 and not (0xD800 <= o <= 0xDFFF) and _rust_is_word_char(chr(o))
        if inside and start is None:
            start = o
        elif not inside and start is not None:
            ranges.append((start, o - 1))
            start = None

    def esc(o: int) -> str:
        return "\\U%08x" % o

    return "".join(esc(a) if a == b else esc(a) + "-" + esc(b) for a, b in ranges)


# The Rust patterns verbatim (src/protect.rs RULES), tried in order.
RUST_RULES = [
    ("Numeric", r"[0-9]"),
    ("Path", r"(^|[\w.~-])[/\\][\w.~-]|^/[\w.~-]|^~[/\\]|^[A-Za-z]:[/\\]|^[a-zA-Z][\w+.-]*://|\w@\w"),
    ("Flag", r"^--?[A-Za-z][\w-]*(=.*)?$"),
    ("Identifier", r"[A-Z][A-Z_]|[A-Z][a-z]+[A-Z]|[a-z][A-Z]"),
    ("Compound", r"\w_\w|_\w|\w_|[A-Za-z_]\w*\.[A-Za-z_]\w*|\w=|::"),
]


def _translate(pattern: str, body: str) -> str:
    """Rust regex -> Python re: `\\w` becomes Rust's class (inside or outside a bracket
    class) and `$` (end of text in Rust) becomes `\\Z`. The patterns hold no other construct
    whose meaning differs (`.` excludes only `\\n` in both; words hold no newline)."""
    out = []
    i = 0
    in_class = False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1]
            if nxt == "w":
                out.append(body if in_class else "[" + body + "]")
            else:
                out.append(c + nxt)
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
        elif c == "]" and in_class:
            in_class = False
        elif c == "$" and not in_class:
            c = r"\Z"
        out.append(c)
        i += 1
    return "".join(out)


_RULES: list | None = None


def _rules() -> list:
    global _RULES
    if _RULES is None:
        body = _word_class_body()
        _RULES = [(kind, re.compile(_translate(p, body))) for kind, p in RUST_RULES]
    return _RULES


def core(word: str) -> str:
    """Strip the punctuation that surrounds a word (protect.rs `core`)."""
    return word.lstrip(LEADING).rstrip(TRAILING)


def _rust_lower(s: str) -> str:
    # Rust's str::to_lowercase and Python's str.lower agree except for final sigma handling;
    # MEANING_WORDS are ASCII, so a non-ASCII result can never be a member anyway.
    return s.lower()


def classify(word: str) -> str | None:
    """The first rule that protects `word` (a kind name as in Rust's `Kind`), or None."""
    c = core(word)
    if not c:
        return None
    for kind, rx in _rules():
        if rx.search(c):
            return kind
    return "Meaning" if _rust_lower(c) in MEANING_WORDS else None


def is_protected(word: str) -> bool:
    return classify(word) is not None


def words(text: str) -> list[str]:
    """Maximal runs of non-whitespace (Rust `split_whitespace`)."""
    return _WORD_RE.findall(text)


def gapped_words(text: str) -> list[tuple[str, str]]:
    """`(gap, word)` pairs as src/model/words.rs `gapped_words` (trailing whitespace dropped)."""
    return _GAPPED_RE.findall(text)


def protected_words(text: str) -> list[str]:
    return [core(w) for w in words(text) if is_protected(w)]
