"""Seeded synthetic (text, reference) pairs, one generator per content type.

The seed's generators (kompress-model.md §3.3) build tool outputs from fake pools and keep
only the salient lines in the reference. These do the same for the five domains the corpus
uses (bash_output, file_read, error_trace, search_result, json_tool_result), at the word
level: every line is a list of words, each marked keep or drop.

* salient lines are kept whole;
* filler lines (progress, chatter, comments, separators, prose) are dropped;
* a filler word that a must-keep rule protects (src/protect.rs, ported in must_keep.py) is
  kept anyway, so by construction every protected word of the text is in the reference;
* filler lines built only from unprotected words are added until len(text)/len(reference)
  reaches a target drawn in [1.4, 2.6] (never below 1.3).

The reference is the text with the dropped words removed (a line with nothing kept
disappears; a line's indentation is kept). Everything is drawn from `random.Random` seeded
by a SHA-256 of (seed, domain, index), so the same seed gives the same bytes on every run.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass

from .must_keep import core, is_protected, words

DOMAINS = ("bash_output", "file_read", "error_trace", "search_result", "json_tool_result")
MIN_RATIO = 1.3


@dataclass(frozen=True)
class Pair:
    id: str
    domain: str
    text: str
    reference: str

    def to_json(self) -> str:
        return json.dumps({"id": self.id, "domain": self.domain, "text": self.text,
                           "reference": self.reference}, ensure_ascii=False)


class Doc:
    """Lines of (indent, [(word, keep)]) that render to a text and its reference."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, list[tuple[str, bool]]]] = []

    def add(self, line: str, keep: bool, at: int | None = None) -> None:
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        ws = [(w, keep or is_protected(w)) for w in line.split()]
        item = (indent, ws)
        if at is None:
            self.lines.append(item)
        else:
            self.lines.insert(at, item)

    def keep(self, line: str) -> None:
        self.add(line, True)

    def drop(self, line: str) -> None:
        self.add(line, False)

    def mixed(self, kept: str, dropped: str, sep: str = " ") -> None:
        """A line whose first part is kept and whose tail is filler."""
        indent = kept[: len(kept) - len(kept.lstrip(" \t"))]
        ws = [(w, True) for w in kept.split()] + [(w, is_protected(w)) for w in dropped.split()]
        self.lines.append((indent, ws))

    def render(self) -> tuple[str, str]:
        text, ref = [], []
        for indent, ws in self.lines:
            text.append(indent + " ".join(w for w, _ in ws))
            kept = [w for w, k in ws if k]
            if kept:
                ref.append(indent + " ".join(kept))
            elif not ws:
                text[-1] = ""  # a blank line: dropped from the reference
        return "\n".join(text) + "\n", "\n".join(ref) + "\n"


# ---------------------------------------------------------------- pools

MODULES = ["requests", "urllib3", "numpy", "pandas", "django", "flask", "pydantic", "sqlalchemy",
           "serde", "tokio", "clap", "regex", "anyhow", "walkdir", "astroid", "marshmallow"]
PKG_DIRS = ["src", "lib", "app", "core", "utils", "api", "models", "tests", "handlers", "db"]
FILES = ["main", "views", "models", "config", "parser", "client", "server", "cache", "auth",
         "router", "schema", "session", "storage", "worker", "utils"]
EXTS = [".py", ".rs", ".ts", ".go", ".js"]
FUNCS = ["get_value", "parse_args", "load_config", "handle_request", "resolve_path",
         "build_index", "fetch_user", "validate_token", "run_migrations", "flush_cache",
         "to_json", "from_str", "process_batch", "open_session", "render_template"]
CAMEL = ["TokenExpiredError", "ValueError", "KeyError", "TypeError", "AttributeError",
         "ImportError", "ConnectionRefusedError", "IntegrityError", "ValidationError",
         "FileNotFoundError", "PermissionError", "RuntimeError", "AssertionError",
         "ImproperlyConfigured", "ObjectDoesNotExist", "JSONDecodeError"]
CLASSES = ["UserManager", "QuerySet", "HttpResponse", "ConfigLoader", "CacheBackend",
           "SessionStore", "TokenValidator", "RequestHandler", "FieldMapper", "IndexBuilder"]
ERRNO = ["ENOENT", "EACCES", "ECONNREFUSED", "ETIMEDOUT", "EADDRINUSE", "EPIPE"]
FLAGS = ["--release", "--verbose", "-v", "--no-cache-dir", "--force", "-x", "--tb=short",
         "--all-features", "-q", "--locked", "--upgrade"]
RUST_CODES = ["E0277", "E0308", "E0425", "E0599", "E0382", "E0502", "E0433", "E0061"]

# Filler vocabulary: none of these words is protected (checked at import time below).
FILLER_WORDS = ("the a of to in for with on at by from this that it is be as are was were "
                "will can may more some any each other into over about after before while "
                "then than also just very much many most such same new old all both few "
                "here there when where which who how what why done ok ready started finished "
                "checking looking reading writing loading saving building compiling running "
                "waiting fetching resolving preparing collecting installing copying creating "
                "updating cleaning removing scanning indexing processing syncing downloading "
                "package packages files file module modules target cache metadata index "
                "objects deltas dependencies requirements wheels build step stage task job "
                "worker thread progress status output input data value values result results "
                "item items entry entries record records config settings options default "
                "local remote project workspace environment directory folder path note info "
                "helper function method class object instance request response handler "
                "please wait moment while this may take a few seconds minutes").split()
SPINNER = ["|", "/", "-", "\\"]
PROGRESS_CHARS = ["#", "=", "█", "━", "."]

_BAD = [w for w in FILLER_WORDS if is_protected(w)]
assert not _BAD, f"protected words in the filler vocabulary: {_BAD}"


def sentence(rng: random.Random, lo: int = 4, hi: int = 12) -> str:
    n = rng.randint(lo, hi)
    ws = [rng.choice(FILLER_WORDS) for _ in range(n)]
    ws[0] = ws[0].capitalize()
    return " ".join(ws) + rng.choice(["", ".", "...", ":"])


def progress_bar(rng: random.Random) -> str:
    width = rng.randint(10, 40)
    done = rng.randint(0, width)
    c = rng.choice(PROGRESS_CHARS)
    return "[" + c * done + " " * 0 + "." * (width - done) + "]"


def hexs(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def version(rng: random.Random) -> str:
    return f"{rng.randint(0, 9)}.{rng.randint(0, 40)}.{rng.randint(0, 20)}"


def path(rng: random.Random, ext: str | None = None) -> str:
    depth = rng.randint(1, 3)
    parts = [rng.choice(PKG_DIRS) for _ in range(depth)]
    return "/".join(parts + [rng.choice(FILES) + (ext or rng.choice(EXTS))])


def generic_filler(rng: random.Random) -> str:
    kind = rng.randint(0, 5)
    if kind == 0:
        return progress_bar(rng) + " " + rng.choice(FILLER_WORDS)
    if kind == 1:
        return rng.choice(SPINNER) + " " + sentence(rng, 2, 5)
    if kind == 2:
        return ""
    return sentence(rng)


# ---------------------------------------------------------------- generators


def gen_bash_output(rng: random.Random, d: Doc) -> None:
    kind = rng.choice(["pip", "pytest", "cargo", "git", "npm", "script"])
    if kind == "pip":
        mods = rng.sample(MODULES, rng.randint(2, 5))
        for m in mods:
            d.mixed(f"Collecting {m}=={version(rng)}", "")
            d.drop(f"  Downloading {m} metadata " + progress_bar(rng))
            if rng.random() < 0.5:
                d.drop("  Preparing metadata ... done")
        d.drop("Installing collected packages: " + ", ".join(mods))
        if rng.random() < 0.4:
            d.keep(f"ERROR: Could not find a version that satisfies the requirement "
                   f"{mods[0]}=={version(rng)}")
        else:
            d.keep("Successfully installed " + " ".join(f"{m}-{version(rng)}" for m in mods))
    elif kind == "pytest":
        d.keep(f"============================= test session starts ==============================")
        d.keep(f"platform linux -- Python 3.{rng.randint(8, 12)}.{rng.randint(0, 9)}, "
               f"pytest-{version(rng)}")
        d.drop("collecting ... collected tests")
        n = rng.randint(3, 9)
        failed = rng.sample(FUNCS, rng.randint(0, 2))
        for f in rng.sample(FUNCS, n):
            st = "FAILED" if f in failed else "PASSED"
            d.mixed(f"tests/test_{rng.choice(FILES)}.py::test_{f} {st}", "")
        for f in failed:
            d.keep(f"FAILED tests/test_x.py::test_{f} - {rng.choice(CAMEL)}: "
                   f"{rng.choice(['expected', 'got'])} {rng.randint(0, 99)}")
        d.keep(f"========= {len(failed)} failed, {n - len(failed)} passed in "
               f"{rng.randint(0, 9)}.{rng.randint(10, 99)}s =========")
    elif kind == "cargo":
        for m in rng.sample(MODULES, rng.randint(3, 7)):
            d.keep(f"   Compiling {m} v{version(rng)}")
        d.drop("    Blocking waiting for file lock on package cache")
        if rng.random() < 0.5:
            code = rng.choice(RUST_CODES)
            d.keep(f"error[{code}]: mismatched types")
            d.keep(f"  --> {path(rng, '.rs')}:{rng.randint(1, 400)}:{rng.randint(1, 80)}")
            d.drop("   = note: expected this type because of the annotation here")
            d.keep(f"error: could not compile `{rng.choice(MODULES)}` due to previous error")
        else:
            d.keep(f"    Finished `release` profile [optimized] target(s) in "
                   f"{rng.randint(1, 90)}.{rng.randint(10, 99)}s")
    elif kind == "git":
        for _ in range(rng.randint(2, 5)):
            d.keep(f"commit {hexs(rng, 40)}")
            d.keep(f"Author: {rng.choice(CLASSES)} <dev{rng.randint(1, 99)}@example.com>")
            d.keep(f"Date:   Mon Mar {rng.randint(1, 28)} 10:{rng.randint(10, 59)}:00 2024 +0000")
            d.drop("")
            d.mixed(f"    Fix {rng.choice(FUNCS)} in {path(rng)}", sentence(rng, 3, 8))
            d.drop("    " + sentence(rng, 6, 14))
            d.drop("")
    elif kind == "npm":
        d.drop("npm notice " + sentence(rng, 3, 7))
        for _ in range(rng.randint(1, 3)):
            d.keep(f"npm WARN deprecated {rng.choice(MODULES)}@{version(rng)}: "
                   f"use {rng.choice(MODULES)} instead")
        d.keep(f"added {rng.randint(10, 900)} packages in {rng.randint(1, 60)}s")
        d.drop(f"{rng.randint(10, 200)} packages are looking for funding")
        d.drop("  run `npm fund` for details")
    else:
        for _ in range(rng.randint(3, 8)):
            r = rng.random()
            if r < 0.4:
                d.keep(f"{rng.choice(FUNCS)}: {rng.choice(['ok', 'FAILED', 'SUCCESS', 'skipped'])}"
                       f" ({rng.randint(1, 999)}ms)")
            elif r < 0.6:
                d.keep(f"{rng.choice(CAMEL)}: {rng.choice(FUNCS)} returned None")
            else:
                d.mixed(f"=== {rng.choice(CLASSES)} ===", "")


def gen_file_read(rng: random.Random, d: Doc) -> None:
    numbered = rng.random() < 0.3
    start = rng.randint(1, 300)
    lines: list[tuple[str, bool]] = []
    if rng.random() < 0.5:  # python
        lines.append(('"""' + sentence(rng, 5, 10), False))
        lines += [(sentence(rng, 6, 12), False) for _ in range(rng.randint(1, 4))]
        lines.append(('"""', False))
        lines.append(("", False))
        for m in rng.sample(MODULES, rng.randint(1, 3)):
            lines.append((f"import {m}", True))
        lines.append((f"from {rng.choice(MODULES)}.{rng.choice(FILES)} import {rng.choice(CLASSES)}", True))
        lines.append(("", False))
        for _ in range(rng.randint(1, 3)):
            cls = rng.choice(CLASSES)
            lines.append((f"class {cls}({rng.choice(CLASSES)}):", True))
            lines.append(('    """' + sentence(rng, 4, 10) + '"""', False))
            for f in rng.sample(FUNCS, rng.randint(1, 3)):
                lines.append(("", False))
                lines.append((f"    def {f}(self, {rng.choice(['value', 'key', 'path', 'request'])}):", True))
                lines.append(("        # " + sentence(rng, 4, 10), False))
                lines.append((f"        if not {rng.choice(['value', 'key', 'path'])}:", True))
                lines.append((f"            raise {rng.choice(CAMEL)}(\"{rng.choice(FUNCS)}\")", True))
                lines.append((f"        return self._{rng.choice(FUNCS)}({rng.choice(['value', 'key'])})", True))
    else:  # rust
        lines += [("// " + sentence(rng, 5, 12), False) for _ in range(rng.randint(1, 4))]
        for m in rng.sample(MODULES, rng.randint(1, 3)):
            lines.append((f"use {m}::{rng.choice(CLASSES)};", True))
        lines.append(("", False))
        for f in rng.sample(FUNCS, rng.randint(1, 4)):
            lines += [("/// " + sentence(rng, 4, 12), False) for _ in range(rng.randint(1, 3))]
            lines.append((f"pub fn {f}(input: &str) -> Result<{rng.choice(CLASSES)}> {{", True))
            lines.append(("    // " + sentence(rng, 3, 9), False))
            lines.append((f"    let value = {rng.choice(FUNCS)}(input)?;", True))
            lines.append((f"    Ok({rng.choice(CLASSES)}::new(value, {rng.randint(0, 64)}))", True))
            lines.append(("}", True))
            lines.append(("", False))
    for i, (line, keep) in enumerate(lines):
        if numbered:
            prefix = f"{start + i:6d}\t"
            if keep:
                d.keep(prefix + line)
            else:
                d.mixed(prefix.rstrip("\t"), line)
        else:
            d.add(line, keep)


def gen_error_trace(rng: random.Random, d: Doc) -> None:
    if rng.random() < 0.6:
        d.drop(sentence(rng, 3, 8))
        d.keep("Traceback (most recent call last):")
        for _ in range(rng.randint(2, 6)):
            d.keep(f'  File "/usr/lib/python3.{rng.randint(8, 12)}/site-packages/'
                   f'{rng.choice(MODULES)}/{rng.choice(FILES)}.py", line {rng.randint(1, 900)}, '
                   f"in {rng.choice(FUNCS)}")
            d.keep(f"    return {rng.choice(FUNCS)}(self, *args, **kwargs)")
            if rng.random() < 0.3:
                d.drop("    " + "^" * rng.randint(5, 30))
        err = rng.choice(CAMEL)
        if rng.random() < 0.4:
            d.keep(f"{err}: [Errno {rng.randint(1, 120)}] {rng.choice(ERRNO)}: '/tmp/{rng.choice(FILES)}'")
            d.drop("")
            d.drop("During handling of the above exception, another exception occurred:")
            d.drop("")
            err = rng.choice(CAMEL)
        d.keep(f"{err}: {rng.choice(FUNCS)}() got an unexpected keyword argument "
               f"'{rng.choice(['key', 'path', 'value', 'timeout'])}'")
    else:
        code = rng.choice(RUST_CODES)
        d.keep(f"error[{code}]: the trait bound `{rng.choice(CLASSES)}: From<&str>` is not satisfied")
        p = path(rng, ".rs")
        ln = rng.randint(1, 500)
        d.keep(f"  --> {p}:{ln}:{rng.randint(1, 80)}")
        d.drop("   |")
        d.keep(f"{ln:<3}|     let value = {rng.choice(FUNCS)}(input)?;")
        d.mixed("   |", "^" * rng.randint(3, 20) + " " + sentence(rng, 3, 8))
        d.drop("   |")
        d.drop("   = note: " + sentence(rng, 5, 12))
        d.drop("   = help: " + sentence(rng, 4, 10))
        d.keep(f"For more information about this error, try `rustc --explain {code}`.")
        d.keep(f"error: could not compile `{rng.choice(MODULES)}` (lib) due to 1 previous error")


def gen_search_result(rng: random.Random, d: Doc) -> None:
    mode = rng.choice(["grep", "grep_ctx", "find"])
    if mode == "find":
        for _ in range(rng.randint(4, 12)):
            d.keep("./" + path(rng))
        for _ in range(rng.randint(1, 3)):
            d.drop(f"find: {rng.choice(FILLER_WORDS)}: " + sentence(rng, 2, 4))
        return
    for _ in range(rng.randint(2, 6)):
        p = path(rng)
        ln = rng.randint(1, 900)
        if mode == "grep_ctx":
            d.mixed(f"{p}-{ln - 1}-", "    # " + sentence(rng, 3, 9))
        d.keep(f"{p}:{ln}:    {rng.choice(['def', 'return', 'raise', 'class'])} "
               f"{rng.choice(FUNCS + CAMEL)}({rng.choice(['self', 'value', 'request'])})")
        if mode == "grep_ctx":
            d.mixed(f"{p}-{ln + 1}-", "    " + sentence(rng, 3, 9))
            d.drop("--")


def gen_json_tool_result(rng: random.Random, d: Doc) -> None:
    obj = {
        "id": rng.randint(1000, 9_999_999),
        "node_id": "MDU6SXNzdWU" + hexs(rng, 8),
        "number": rng.randint(1, 5000),
        "title": f"{rng.choice(CAMEL)} in {rng.choice(FUNCS)}",
        "state": rng.choice(["open", "closed"]),
        "html_url": f"https://github.com/octo/{rng.choice(MODULES)}/issues/{rng.randint(1, 900)}",
        "user": {"login": rng.choice(CLASSES).lower() + str(rng.randint(1, 99)),
                 "site_admin": rng.random() < 0.1},
        "labels": [rng.choice(["bug", "enhancement", "question"])],
        "body": None,
        "created_at": f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T10:00:00Z",
    }
    body_key = rng.choice(["body", "description"])
    indent = rng.random() < 0.5
    text = json.dumps(obj, indent=2 if indent else None)
    for line in text.split("\n"):
        if line.strip().startswith('"body"'):
            prose = " ".join(sentence(rng, 6, 14) for _ in range(rng.randint(2, 5)))
            d.mixed(line[: line.index(":") + 1].replace("body", body_key), '"' + prose + '",')
        elif not indent:
            # compact JSON: one line; the prose is the body value inside it.
            head, tail = line.split('"body": null', 1)
            prose = " ".join(sentence(rng, 6, 14) for _ in range(rng.randint(2, 5)))
            ws = [(w, True) for w in (head + f'"{body_key}":').split()]
            ws += [(w, is_protected(w)) for w in ('"' + prose + '",').split()]
            ws += [(w, True) for w in tail.lstrip(",").split()]
            d.lines.append(("", ws))
        else:
            d.keep(line)


GENERATORS = {
    "bash_output": gen_bash_output,
    "file_read": gen_file_read,
    "error_trace": gen_error_trace,
    "search_result": gen_search_result,
    "json_tool_result": gen_json_tool_result,
}


def _rng(seed: int, domain: str, index: int) -> random.Random:
    h = hashlib.sha256(f"kompress-synth:{seed}:{domain}:{index}".encode()).digest()
    return random.Random(int.from_bytes(h[:8], "big"))


def generate_one(seed: int, domain: str, index: int) -> Pair:
    rng = _rng(seed, domain, index)
    d = Doc()
    GENERATORS[domain](rng, d)
    target = rng.uniform(1.4, 2.6)
    text, ref = d.render()
    guard = 0
    while len(text) < target * len(ref) or len(text) < 100:
        at = rng.randint(0, len(d.lines))
        d.add(generic_filler(rng), False, at=at)
        text, ref = d.render()
        guard += 1
        assert guard < 10_000
    return Pair(f"synth-{domain}-{seed}-{index:06d}", domain, text, ref)


def generate(seed: int, n_per_domain: int, domains=DOMAINS) -> list[Pair]:
    """`n_per_domain` pairs for each domain, interleaved by index."""
    return [generate_one(seed, dom, i) for i in range(n_per_domain) for dom in domains]


def violations(pair: Pair) -> list[str]:
    """Protected words of the text missing from the reference, plus a ratio violation."""
    ref_cores = {core(w) for w in words(pair.reference)}
    bad = [w for w in words(pair.text) if is_protected(w) and core(w) not in ref_cores]
    if len(pair.text) < MIN_RATIO * len(pair.reference):
        bad.append(f"<ratio {len(pair.text) / max(len(pair.reference), 1):.2f}>")
    return bad


if __name__ == "__main__":
    import sys

    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 42
    for p in generate(seed, 1):
        print("=" * 30, p.id)
        print(p.text)
        print("-" * 30, "reference")
        print(p.reference)
