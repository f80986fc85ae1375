#!/usr/bin/env python3
"""Assertions of tests/e2e/pretool.sh over the session results in OUT_DIR.

    pretool_check.py OUT_DIR

CASE.base.json is the session without the hook, CASE.json the one with it (session.py's
result format). Prints one PASS/FAIL line per assertion, a few `fact:` lines (what Claude
Code ran and reported), then "N passed, M failed"; exits 1 on a failure.
"""
import json
import os
import re
import sys

OUT = sys.argv[1]
PASSED = FAILED = 0

ASSERTION = "E       AssertionError: assert 3 == 4"
SUMMARY = "FAILED tests/test_dates.py::test_parse_date - AssertionError: assert 3 == 4"
FINAL = "1 failed, 400 passed in 2.31s"
NEEDS_APPROVAL = "requires approval"


def load(name):
    try:
        with open(os.path.join(OUT, name + ".json")) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        return {"errors": ["no result: %s" % e], "tool_results": [], "hook_calls": []}


def text(res, k=0):
    results = res.get("tool_results") or []
    return results[k]["text"] if len(results) > k else ""


def is_error(res, k=0):
    results = res.get("tool_results") or []
    return len(results) > k and results[k]["is_error"]


def check(case, what, ok, detail=""):
    global PASSED, FAILED
    if ok:
        PASSED += 1
    else:
        FAILED += 1
    print("%s %s: %s%s" % ("PASS" if ok else "FAIL", case, what,
                           " (%s)" % detail if detail else ""))


def show(res, k=0):
    lines = text(res, k).splitlines()
    shown = lines if len(lines) <= 12 else lines[:6] + ["..."] + lines[-6:]
    for line in shown:
        print("     | " + line[:200])


def pre_outputs(res):
    """(payload command, parsed stdout) of each PreToolUse hook call that printed JSON."""
    out = []
    for call in res.get("hook_calls") or []:
        if call.get("event") != "PreToolUse":
            continue
        try:
            parsed = json.loads(call["out"]) if call["out"].strip() else None
        except ValueError:
            parsed = None
        out.append((call.get("command"), parsed))
    return out


def rewrite_of(res, k=0):
    """updatedInput the PreToolUse hook returned for call k, or None."""
    want = res["calls"][k]["input"]["command"] if res.get("calls") else None
    for command, parsed in pre_outputs(res):
        if command == want and parsed:
            return (parsed.get("hookSpecificOutput") or {}).get("updatedInput")
    return None


def decision_of(res):
    for _, parsed in pre_outputs(res):
        d = ((parsed or {}).get("hookSpecificOutput") or {}).get("permissionDecision")
        if d:
            return d
    return None


def ran(name, where="project"):
    return os.path.exists(os.path.join(OUT, name, where, "ran.log"))


def no_warning(case, res):
    check(case, "no hook warning", res.get("hook_warning") is False and not res.get("errors"),
          "hook_warning=%r errors=%r" % (str(res.get("hook_warning"))[:300], res.get("errors")))


def rewritten(case, res, k=0):
    upd = rewrite_of(res, k)
    orig = res["calls"][k]["input"] if res.get("calls") else {}
    ok = bool(upd) and upd.get("command") != orig.get("command")
    check(case, "the PreToolUse hook rewrote call %d" % (k + 1), ok,
          "updatedInput=%s" % json.dumps(upd)[:300])
    return upd if ok else None


def shorter(case, res, base, k=0):
    got, full = len(text(res, k)), len(text(base, k))
    ran_through = "passed in 2.31s" in text(res, k)  # both stand-ins end with it
    check(case, "the run's output reached the model, at most half the baseline's characters",
          ran_through and 0 < got * 2 <= full,
          "%d vs %d without the hook%s" % (got, full, "" if ran_through else "; no summary"))


def keeps(case, res, needle, k=0):
    check(case, "keeps %r" % needle, needle in text(res, k))


# --- failing test run --------------------------------------------------------------------
case = "failing"
base, res = load(case + ".base"), load(case)
check(case, "baseline: the model gets the failing run whole, with Exit code 1",
      text(base).startswith("Exit code 1\n") and FINAL in text(base) and len(text(base)) > 5000,
      "%d chars" % len(text(base)))
upd = rewritten(case, res)
if upd:
    orig = res["calls"][0]["input"]
    check(case, "the rewrite keeps the other input fields",
          all(upd.get(key) == v for key, v in orig.items() if key != "command"),
          json.dumps(upd)[:300])
    check(case, "Claude Code ran the rewritten command",
          any(upd["command"] in s for s in res.get("shell_scripts") or []))
# `kompress run` read the session transcript the rewrite named: what the agent knew (the
# harness's prompt, "run the scripted tool call", and the command) is in its cache.
known = []
for root, _, files in os.walk(os.path.join(OUT, case)):
    known += [open(os.path.join(root, f)).read() for f in files if f.startswith("known-")]
words = set(w for k in known for line in k.splitlines() for w in line.split()[1:])
check(case, "the rewritten run read what the agent knew from the transcript",
      len(known) == 1 and {"scripted", "pytest"} <= words,
      "%d cache file(s), %d words" % (len(known), len(words)))
keeps(case, res, "Exit code 1")
keeps(case, res, "test_parse_date")
keeps(case, res, ASSERTION)
keeps(case, res, SUMMARY)
keeps(case, res, FINAL)
shorter(case, res, base)
no_warning(case, res)
if FAILED:
    show(res)
for s in res.get("shell_scripts") or []:
    m = re.search(r"&& eval (.*) < /dev/null && pwd -P >\| \S+$", s.strip())
    print("fact: %s: Claude Code's shell ran: eval %s" % (case, m.group(1) if m else s[-300:]))
for p in res.get("observed") or []:
    print("fact: %s: PostToolUseFailure payload: tool_input=%s error=%r... (%d chars)"
          % (case, json.dumps(p.get("tool_input")), (p.get("error") or "")[:40],
             len(p.get("error") or "")))

# --- deny still denied -------------------------------------------------------------------
case = "deny_rm"
base, res = load(case + ".base"), load(case)
exists = lambda name: os.path.exists(os.path.join(OUT, name, "project", "important.txt"))
check(case, "baseline: denied, the file is still there",
      "denied" in text(base) and exists(case + ".base"), repr(text(base)[:120]))
check(case, "still denied: the file is still there and the call failed",
      exists(case) and is_error(res), repr(text(res)[:160]))
no_warning(case, res)

case = "deny_pytest"
base, res = load(case + ".base"), load(case)
check(case, "baseline: denied, pytest did not run",
      "denied" in text(base) and not ran(case + ".base"), repr(text(base)[:120]))
check(case, "still denied: pytest did not run and the call failed",
      not ran(case) and is_error(res), repr(text(res)[:160]))
no_warning(case, res)

# --- not allowed -> still asked ----------------------------------------------------------
case = "not_allowed"
base, res = load(case + ".base"), load(case)
check(case, "baseline: not run, the model is told it requires approval",
      NEEDS_APPROVAL in text(base) and not ran(case + ".base"), repr(text(base)[:120]))
check(case, "still not run: the call needs approval (print mode cannot give it)",
      not ran(case) and is_error(res)
      and (NEEDS_APPROVAL in text(res) or "denied" in text(res)), repr(text(res)[:160]))
check(case, "the hook did not allow it", decision_of(res) != "allow",
      "permissionDecision=%r" % decision_of(res))
no_warning(case, res)
print("fact: %s: the model got %r" % (case, text(res)[:200]))

# --- allowed -> runs without a prompt, shortened -----------------------------------------
for case, scope in (("allowed", "project settings, trusted workspace"),
                    ("allowed_user", "user settings")):
    base, res = load(case + ".base"), load(case)
    check(case, "baseline: the allow rule (%s) lets it run" % scope,
          ran(case + ".base") and text(base).startswith("Exit code 1\n"), repr(text(base)[:80]))
    rewritten(case, res)
    check(case, "it ran without asking", ran(case) and NEEDS_APPROVAL not in text(res),
          repr(text(res)[:120]))
    keeps(case, res, "Exit code 1")
    keeps(case, res, SUMMARY)
    shorter(case, res, base)
    no_warning(case, res)

# --- an allow rule Claude Code ignores (untrusted workspace) is not honoured either ------
case = "untrusted_allow"
base, res = load(case + ".base"), load(case)
check(case, "baseline: the project allow rule is dropped, the call needs approval",
      NEEDS_APPROVAL in text(base) and not ran(case + ".base"), repr(text(base)[:120]))
check(case, "still not run", not ran(case) and is_error(res), repr(text(res)[:160]))
check(case, "the hook did not allow it", decision_of(res) != "allow",
      "permissionDecision=%r" % decision_of(res))
no_warning(case, res)

# --- cd persists -------------------------------------------------------------------------
case = "cd_persists"
base, res = load(case + ".base"), load(case)
check(case, "baseline: after `cd sub && ...` the next call runs in sub/",
      text(base, 1).endswith("/sub"), repr(text(base, 1)))
rewritten(case, res)
shorter(case, res, base)
check(case, "after the rewritten `cd sub && ...` the next call runs in sub/",
      text(res, 1).endswith("/sub"), repr(text(res, 1)))
no_warning(case, res)

# --- passing run -------------------------------------------------------------------------
case = "passing"
base, res = load(case + ".base"), load(case)
check(case, "baseline: the whole run, no Exit code",
      "Exit code" not in text(base) and "400 passed" in text(base), "%d chars" % len(text(base)))
shorter(case, res, base)
check(case, "no Exit code, not an error", "Exit code" not in text(res) and not is_error(res))
keeps(case, res, "400 passed in 2.31s")
no_warning(case, res)

version = load("failing").get("claude_version")
print("Claude Code %s" % version)
print("%d passed, %d failed" % (PASSED, FAILED))
print("results in %s" % OUT)
sys.exit(1 if FAILED else 0)
