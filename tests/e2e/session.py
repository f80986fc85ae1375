#!/usr/bin/env python3
"""Run the real Claude Code CLI for one session of scripted tool calls.

Claude Code (print mode) talks to scripted_api.py on 127.0.0.1, which makes the tool calls
given with --call one after the other, each after the previous tool_result arrived, and
records every tool_result: the exact text the model receives. Hooks are registered in the
project's .claude/settings.json through a recording wrapper, so each hook call's payload,
stdout, stderr and exit status are kept. Prints one JSON object (also written to --out).

    session.py [--hook CMD --event PreToolUse --event PostToolUse] [--permissions JSON]
               [--allowed-tools Bash] [--setup 'bash in the project dir'] \
               --call '{"command": "cd sub && pwd"}' --call '{"command": "pwd"}'

Claude Code is found with --claude, else $CC_E2E_CLAUDE, else through the team harness
(`shared/tools/cc-e2e/run.sh --install-only`, which installs it on first use). docs/e2e.md
describes the result fields.
"""
import argparse
import glob
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MARKER = "e2e-session-go"

# Records one hook call (payload, output, status) and behaves exactly like the hook.
HOOK_WRAPPER = """#!/bin/sh
n=$(date +%%s%%N)-$$
d=%(dir)s
cat > "$d/$n.in"
/bin/sh -c %(cmd)s < "$d/$n.in" > "$d/$n.out" 2> "$d/$n.err"
rc=$?
echo "$rc" > "$d/$n.rc"
cat "$d/$n.out"
cat "$d/$n.err" >&2
exit "$rc"
"""

# Stands in for bash as $SHELL: logs the -c script Claude Code runs for a Bash call.
SHELL_WRAPPER = """#!/bin/sh
if [ "$1" = -c ] && [ "$#" = 2 ]; then
    case $2 in *"eval "*) printf '%%s\\n' "$2" | base64 -w0 >> %(log)s; echo >> %(log)s ;; esac
fi
exec %(bash)s "$@"
"""

# Debug-log lines where Claude Code complains about a hook's output or run.
WARNING_PATTERNS = [
    r"Hook JSON output validation failed",
    r"Hook JSON output had unrecognized keys",
    r"Hook returned incorrect event name",
    r"Hook failed to run",
    r"Hook \S+ \(\w+\) error",
    r"does not match \S+ output shape",
    r"starts with \{ but is not",
    r"\[(WARN|WARNING|ERROR)\] \"?Hook",
    r"Hook\b.*\b(timed out|cancelled|canceled)\b",
]
# Hook lines worth showing (warnings included).
HOOK_PATTERNS = WARNING_PATTERNS + [
    r"Hooks: \S+ \[",
    r"[Hh]ook.*(updatedInput|permissionDecision|replaced tool output|additionalContext)",
    r"Successfully parsed and validated hook JSON output",
    r"Hook output does not start with \{",
    r"[Pp]ermission",
]


def note(msg):
    print("[session] " + msg, file=sys.stderr, flush=True)


def find_claude(given):
    cmd = given or os.environ.get("CC_E2E_CLAUDE")
    if cmd:
        return shlex.split(cmd)
    runner = os.environ.get("CC_E2E") or os.path.join(REPO, "..", "shared", "tools",
                                                      "cc-e2e", "run.sh")
    r = subprocess.run([runner, "--install-only"], stdout=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, text=True)
    if r.returncode != 0:
        sys.exit("session.py: %s --install-only failed" % runner)
    return json.loads(r.stdout)["command"]


def version_of(claude, home):
    r = subprocess.run(claude + ["--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, text=True, env=dict(os.environ, HOME=home))
    m = re.match(r"\s*(\S+)", r.stdout or "")
    return m.group(1) if m else None


def session_pids(sid):
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open("/proc/%s/stat" % entry).read()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            if len(fields) > 3 and int(fields[3]) == sid and fields[0] != "Z":
                pids.append(int(entry))
    return pids


def end_session(sid):
    """Stop what Claude Code started and left behind (its own session id)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = session_pids(sid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        time.sleep(0.3)


def clean(line):
    line = re.sub(r"^\S+Z \[(DEBUG|INFO|WARN|WARNING|ERROR)\] ", "", line.strip())
    return line[:800]


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hook", help="hook command as written in settings.json")
    ap.add_argument("--event", action="append", default=[],
                    help="event to register the hook for (repeatable; default PostToolUse)")
    ap.add_argument("--matcher", default="Bash", help="matcher of every hook entry (Bash)")
    ap.add_argument("--observe", action="append", default=[], metavar="EV",
                    help="also register a silent recorder for EV (its payloads are in "
                         "the result's observed list); repeatable")
    ap.add_argument("--raw-hook", action="store_true",
                    help="register the command itself, without the recording wrapper")
    ap.add_argument("--permissions", help="JSON of the settings' permissions object")
    ap.add_argument("--permissions-scope", choices=["project", "local", "user"],
                    default="project", help="settings file that gets --permissions: "
                    "project (.claude/settings.json, the default), local "
                    "(.claude/settings.local.json) or user ($HOME/.claude/settings.json)")
    ap.add_argument("--trust", action="store_true",
                    help="mark the project dir as trusted in $HOME/.claude.json (Claude Code "
                         "drops project-scoped allow rules of an untrusted workspace)")
    ap.add_argument("--allowed-tools", help="--allowedTools for claude (none by default)")
    ap.add_argument("--setup", help="bash command run in the empty project dir ($PROJECT set)")
    ap.add_argument("--call", action="append", default=[], required=True,
                    help="one tool call: a Bash input object, or {\"tool\":..., \"input\":...}"
                         "; @PROJECT@ is replaced by the project dir (repeatable, in order)")
    ap.add_argument("--record-shell", action="store_true",
                    help="record the shell script Claude Code runs for each Bash call")
    ap.add_argument("--env", action="append", default=[], metavar="K=V")
    ap.add_argument("--claude", help="claude command (else $CC_E2E_CLAUDE, else cc-e2e's)")
    ap.add_argument("--timeout", type=int, default=180)
    ap.add_argument("--work", help="keep everything in this directory (new, empty, or an "
                    "earlier session's, which is replaced)")
    ap.add_argument("--out", help="also write the result JSON here")
    return ap.parse_args(argv)


def run(a):
    claude = find_claude(a.claude)
    work = os.path.abspath(a.work) if a.work else tempfile.mkdtemp(prefix="e2e-session.")
    if a.work and os.path.isdir(work) and os.listdir(work):
        if not os.path.exists(os.path.join(work, "script.json")):
            sys.exit("session.py: --work %s is not empty and not an earlier session" % work)
        shutil.rmtree(work)  # an earlier session's files: start afresh
    os.makedirs(work, exist_ok=True)
    home, proj, tmp, hooks = (os.path.join(work, d) for d in ("home", "project", "tmp", "hook"))
    for d in (home, proj, tmp, hooks):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    if a.setup:
        subprocess.run(["bash", "-c", a.setup], cwd=proj, check=True,
                       stdin=subprocess.DEVNULL, env=dict(os.environ, PROJECT=proj))

    settings = {}
    if a.hook is not None:
        command = a.hook
        if not a.raw_hook:
            wrapper = os.path.join(work, "hook-wrapper.sh")
            with open(wrapper, "w") as f:
                f.write(HOOK_WRAPPER % {"dir": shlex.quote(hooks), "cmd": shlex.quote(a.hook)})
            os.chmod(wrapper, 0o755)
            command = shlex.quote(wrapper)
        entry = [{"matcher": a.matcher, "hooks": [{"type": "command", "command": command}]}]
        settings["hooks"] = {ev: list(entry) for ev in (a.event or ["PostToolUse"])}
    observed_dir = os.path.join(work, "observed")
    shutil.rmtree(observed_dir, ignore_errors=True)
    os.makedirs(observed_dir)
    for ev in a.observe:
        rec = "cat > %s/$(date +%%s%%N)-$$.json" % shlex.quote(observed_dir)
        settings.setdefault("hooks", {}).setdefault(ev, []).append(
            {"matcher": a.matcher, "hooks": [{"type": "command", "command": rec}]})
    files = {os.path.join(proj, ".claude", "settings.json"): settings}
    if a.permissions:
        where = {"project": os.path.join(proj, ".claude", "settings.json"),
                 "local": os.path.join(proj, ".claude", "settings.local.json"),
                 "user": os.path.join(home, ".claude", "settings.json")}[a.permissions_scope]
        files.setdefault(where, {})["permissions"] = json.loads(a.permissions)
    for path, content in files.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(content, f, indent=2)
    if a.trust:
        with open(os.path.join(home, ".claude.json"), "w") as f:
            json.dump({"projects": {proj: {"hasTrustDialogAccepted": True}}}, f, indent=2)

    calls = []
    for c in a.call:
        c = json.loads(c.replace("@PROJECT@", proj))
        calls.append(c if "tool" in c else {"tool": "Bash", "input": c})
    script = os.path.join(work, "script.json")
    with open(script, "w") as f:
        json.dump({"marker": MARKER, "calls": calls, "final_text": "e2e-session: done"}, f)
    results, reqlog, portfile = (os.path.join(work, n) for n in
                                 ("results.json", "requests.jsonl", "port"))
    for p in (results, reqlog, portfile):
        if os.path.exists(p):
            os.remove(p)
    server = subprocess.Popen([sys.executable, os.path.join(HERE, "scripted_api.py"),
                               "--script", script, "--results", results, "--log", reqlog,
                               "--port-file", portfile], stdin=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        for _ in range(300):
            if os.path.exists(portfile) or server.poll() is not None:
                break
            time.sleep(0.05)
        port = int(open(portfile).read())

        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "TMPDIR": tmp,
               "ANTHROPIC_BASE_URL": "http://127.0.0.1:%d" % port, "ANTHROPIC_API_KEY": "test",
               "DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1",
               "DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
               "TERM": "dumb"}
        for k in ("LANG", "LC_ALL", "USER", "LOGNAME"):
            if k in os.environ:
                env[k] = os.environ[k]
        shell_log = os.path.join(work, "shell.log")
        if a.record_shell:
            bindir = os.path.join(work, "shellbin")
            os.makedirs(bindir, exist_ok=True)
            fake = os.path.join(bindir, "bash")  # Claude Code wants a shell named bash/zsh
            with open(fake, "w") as f:
                f.write(SHELL_WRAPPER % {"log": shlex.quote(shell_log),
                                         "bash": shlex.quote(shutil.which("bash"))})
            os.chmod(fake, 0o755)
            env["SHELL"] = fake
        elif "SHELL" in os.environ:
            env["SHELL"] = os.environ["SHELL"]
        for kv in a.env:
            k, _, v = kv.partition("=")
            env[k] = v
        debug = os.path.join(work, "debug.log")
        cmd = claude + ["-p", MARKER + ": make the scripted tool calls", "--output-format",
                        "json", "--debug-file", debug]
        if a.allowed_tools:
            cmd += ["--allowedTools", a.allowed_tools]
        t0 = time.time()
        with open(os.path.join(work, "claude.stdout"), "w") as out, \
                open(os.path.join(work, "claude.stderr"), "w") as err:
            proc = subprocess.Popen(cmd, cwd=proj, env=env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=err, start_new_session=True)
            try:
                rc = proc.wait(a.timeout)
            except subprocess.TimeoutExpired:
                rc = "timeout"
            finally:
                end_session(proc.pid)
                proc.wait()
        elapsed = round(time.time() - t0, 2)
    finally:
        server.terminate()
        server.wait()

    debug_text = open(debug, errors="replace").read() if os.path.exists(debug) else ""
    lines = debug_text.splitlines()
    warnings = [clean(l) for l in lines if any(re.search(p, l) for p in WARNING_PATTERNS)]
    hook_debug = [clean(l) for l in lines if any(re.search(p, l) for p in HOOK_PATTERNS)]
    hook_calls = []
    for rcfile in sorted(glob.glob(os.path.join(hooks, "*.rc"))):
        base = rcfile[:-3]
        rec = {"rc": int(open(rcfile).read().strip() or -1)}
        for ext in ("in", "out", "err"):
            rec[ext] = open(base + "." + ext, errors="replace").read()
        try:
            payload = json.loads(rec["in"])
        except ValueError:
            payload = {}
        rec["event"] = payload.get("hook_event_name")
        rec["command"] = (payload.get("tool_input") or {}).get("command")
        out = rec["out"].strip()
        if out and not out.startswith("{"):
            warnings.append("%s hook printed non-JSON stdout (taken as plain text): %r"
                            % (rec["event"], out[:200]))
        if rec["rc"] not in (0,):
            warnings.append("%s hook exited %d: %s" % (rec["event"], rec["rc"],
                                                       rec["err"].strip()[:300]))
        hook_calls.append(rec)
    try:
        tool_results = json.load(open(results))
    except (OSError, ValueError):
        tool_results = []
    try:
        claude_json = json.load(open(os.path.join(work, "claude.stdout")))
    except (OSError, ValueError):
        claude_json = {}
    shell = []
    if os.path.exists(shell_log):
        import base64
        shell = [base64.b64decode(l).decode(errors="replace")
                 for l in open(shell_log).read().split()]
    observed = []
    for p in sorted(glob.glob(os.path.join(observed_dir, "*.json"))):
        try:
            observed.append(json.load(open(p)))
        except ValueError:
            pass
    res = {
        "claude_version": version_of(claude, home),
        "project": proj,
        "calls": calls,
        "tool_results": tool_results,
        "hook_warning": "\n".join(dict.fromkeys(warnings)) or False,
        "hook_calls": hook_calls,
        "hook_debug": hook_debug[:80],
        "observed": observed,
        "shell_scripts": shell,
        "claude_exit_code": rc,
        "claude_result": claude_json.get("result"),
        "permission_denials": claude_json.get("permission_denials"),
        "elapsed_s": elapsed,
    }
    errors = []
    if len(tool_results) != len(calls):
        errors.append("got %d tool_results for %d calls" % (len(tool_results), len(calls)))
    if rc != 0:
        errors.append("claude exited %s: %s" % (rc, open(os.path.join(
            work, "claude.stderr"), errors="replace").read()[-600:]))
    if errors:
        res["errors"] = errors
    if a.work:
        res["work_dir"] = work
    else:
        shutil.rmtree(work, ignore_errors=True)
    return res


def main(argv):
    a = parse_args(argv)
    res = run(a)
    text = json.dumps(res, indent=2, ensure_ascii=False)
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    print(text)
    return 1 if res.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
