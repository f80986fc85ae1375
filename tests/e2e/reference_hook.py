#!/usr/bin/env python3
"""A test double of the PreToolUse behaviour issue #15 asks of `kompress hook`, used only to
check that tests/e2e/pretool.sh can pass (PRETOOL_HOOK="python3 .../reference_hook.py BIN").

    reference_hook.py PATH/TO/kompress      (payload on stdin, as Claude Code runs a hook)

PreToolUse, Bash: a command containing `python3 -m pytest` is rewritten so that this part
runs under `BIN run --`, the rest of the command unchanged (so a leading `cd sub &&` still
runs in Claude Code's shell). Permissions are read from the user's, the local and (in a
trusted workspace) the project's settings, with a deliberately small matcher (`Bash`,
`Bash(prefix:*)`, `Bash(exact)`; the command split on && || ; |): deny -> no output; every part allowed -> rewrite + "allow"; otherwise
rewrite without a decision, so Claude Code's own permission flow decides.
PostToolUse: output of a rewritten command passes through; anything else goes to
`BIN hook`. It is not the real implementation and does not aim to be complete.
"""
import json
import os
import re
import shlex
import subprocess
import sys

REWRITE = re.compile(r"(?<![\w/.-])(python3 -m pytest\b)")


def rules(kind):
    """Rules of one kind from the user, local and (in a trusted workspace) project settings."""
    home = os.path.expanduser("~")
    base = os.environ.get("CLAUDE_PROJECT_DIR") or os.getcwd()
    try:
        with open(os.path.join(home, ".claude.json")) as f:
            trusted = (json.load(f).get("projects") or {}).get(base, {}).get(
                "hasTrustDialogAccepted") is True
    except (OSError, ValueError, AttributeError):
        trusted = False
    files = [os.path.join(home, ".claude", "settings.json"),
             os.path.join(base, ".claude", "settings.local.json")]
    # Claude Code drops project-scoped allow rules of an untrusted workspace.
    if trusted or kind != "allow":
        files.append(os.path.join(base, ".claude", "settings.json"))
    out = []
    for path in files:
        try:
            with open(path) as f:
                out += (json.load(f).get("permissions") or {}).get(kind) or []
        except (OSError, ValueError, AttributeError):
            pass
    return out


def matches(rule, part):
    if rule == "Bash":
        return True
    m = re.fullmatch(r"Bash\((.*)\)", rule)
    if not m:
        return False
    pat = m.group(1)
    if pat.endswith(":*"):
        prefix = pat[:-2]
        return part == prefix or part.startswith(prefix + " ")
    return part == pat


def verdict(command):
    parts = [p.strip() for p in re.split(r"&&|\|\||;|\|", command) if p.strip()]
    if any(matches(r, p) for r in rules("deny") for p in parts):
        return "deny"
    if any(matches(r, p) for r in rules("ask") for p in parts):
        return "ask"
    if parts and all(any(matches(r, p) for r in rules("allow")) for p in parts):
        return "allow"
    return "default"


def main():
    kompress = sys.argv[1]
    raw = sys.stdin.read()
    try:
        payload = json.loads(raw)
    except ValueError:
        return 0
    event = payload.get("hook_event_name")
    tool_input = payload.get("tool_input") or {}
    command = tool_input.get("command") or ""
    if event == "PreToolUse" and payload.get("tool_name") == "Bash":
        if not REWRITE.search(command) or " run -- " in command:
            return 0
        decision = verdict(command)
        if decision == "deny":
            return 0
        new = REWRITE.sub(lambda m: shlex.quote(kompress) + " run -- " + m.group(1), command)
        out = {"hookEventName": "PreToolUse", "updatedInput": dict(tool_input, command=new),
               "permissionDecisionReason": "reference hook: runs %s" % new}
        if decision == "allow":
            out["permissionDecision"] = "allow"
        print(json.dumps({"hookSpecificOutput": out}))
        return 0
    if event == "PostToolUse":
        if " run -- " in command:
            return 0
        r = subprocess.run([kompress, "hook"], input=raw, text=True, stdout=subprocess.PIPE)
        sys.stdout.write(r.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
