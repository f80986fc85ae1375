#!/usr/bin/env bash
# Checks `kompress hook` as a PreToolUse + PostToolUse hook inside the real Claude Code CLI
# (issue #15): a failing test run is shortened, permission rules still decide, a `cd` in a
# rewritten command still moves the working directory for the next call, a passing run is
# still shortened. Each case runs twice: without the hook (the baseline, whose behaviour is
# asserted too) and with it. Sessions are driven by tests/e2e/session.py (a fake Messages
# API on loopback that makes a scripted sequence of tool calls). Prints PASS/FAIL lines
# and "N passed, M failed"; exits 1 on a failure. Not run in CI (needs Claude Code).
# docs/e2e.md describes the cases.
#
# usage: tests/e2e/pretool.sh [path/to/kompress] [out-dir]
#   PRETOOL_HOOK='CMD'  register CMD instead of "BIN hook"
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${1:-$repo/target/release/kompress}
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
out=${2:-$(mktemp -d)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
fixtures=$here/fixtures

# Run a copy of the binary and the model (a concurrent build cannot change them midway).
snap=$out/snapshot
rm -rf "$snap" && mkdir -p "$snap/target/release"
cp -p "$bin" "$snap/target/release/kompress"
[ -d "$repo/model" ] && cp -rp "$repo/model" "$snap/model"
for f in target/release/kompress model/lines.bin; do
    [ -e "$snap/$f" ] && echo "ran with $f sha256=$(sha256sum "$snap/$f" | cut -c1-12)"
done
bin=$snap/target/release/kompress
hook=${PRETOOL_HOOK:-"'$bin' hook"}
echo "hook command: $hook"

# session NAME ARGS...: one Claude Code session; result in $out/NAME.json, files in $out/NAME/
session() {
    local name=$1; shift
    python3 "$here/session.py" --work "$out/$name" --out "$out/$name.json" "$@" \
        > /dev/null 2> "$out/$name.err" || true
}
# both CASE ARGS...: the baseline (no hook) and the hooked session of one case.
both() {
    local name=$1; shift
    session "$name.base" --record-shell "$@"
    session "$name" --record-shell --hook "$hook" --event PreToolUse --event PostToolUse "$@"
}

fail_setup="cp '$fixtures/pytest_fail.py' pytest.py"
pass_setup="cp '$fixtures/pytest_pass.py' pytest.py"
pytest_call='{"command": "python3 -m pytest -v", "description": "Run the test suite", "timeout": 120000}'

both failing --allowed-tools Bash --setup "$fail_setup" --call "$pytest_call" \
    --observe PostToolUseFailure
# Claude Code drops project-scoped allow rules while the workspace is untrusted (a fresh
# HOME has trusted nothing): the permission cases mark the project trusted (--trust), as a
# user's own repository is, except untrusted_allow, which checks exactly that rule.
both deny_rm --trust --permissions '{"deny": ["Bash(rm:*)"], "allow": ["Bash"]}' \
    --setup 'echo keep > important.txt' --call '{"command": "rm -f important.txt"}'
both deny_pytest --trust \
    --permissions '{"deny": ["Bash(python3 -m pytest:*)"], "allow": ["Bash"]}' \
    --setup "$fail_setup" --call "$pytest_call"
both not_allowed --trust --permissions '{"allow": ["Bash(ls:*)"]}' \
    --setup "$fail_setup" --call "$pytest_call"
both allowed --trust --permissions '{"allow": ["Bash(python3 -m pytest:*)"]}' \
    --setup "$fail_setup" --call "$pytest_call"
both allowed_user --permissions-scope user --permissions '{"allow": ["Bash(python3 -m pytest:*)"]}' \
    --setup "$fail_setup" --call "$pytest_call"
both untrusted_allow --permissions '{"allow": ["Bash(python3 -m pytest:*)"]}' \
    --setup "$fail_setup" --call "$pytest_call"
both cd_persists --allowed-tools Bash \
    --setup "mkdir sub && cp '$fixtures/pytest_pass.py' sub/pytest.py" \
    --call '{"command": "cd sub && python3 -m pytest -v"}' --call '{"command": "pwd"}'
both passing --allowed-tools Bash --setup "$pass_setup" --call "$pytest_call"

python3 "$here/pretool_check.py" "$out"
