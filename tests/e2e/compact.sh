#!/usr/bin/env bash
# Session memory and compaction in the real Claude Code (issue #15): the second identical
# `seq 1 3000` of a session comes back as "output unchanged"; `/compact` fires SessionStart
# with source "compact", kompress forgets the session; the same command after it comes back
# in full again. Claude Code runs three times against the fake API of scripted_api.py,
# continuing one session (`--continue`). Not run in CI (it installs Claude Code from npm).
#
# usage: tests/e2e/compact.sh [path/to/kompress] [work-dir]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${1:-$repo/target/release/kompress}
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
w=${2:-$(mktemp -d)}
rm -rf "$w" && mkdir -p "$w/home" "$w/proj/.claude" "$w/tmp" "$w/kh"
cc=${CC_E2E:-$repo/../shared/tools/cc-e2e/run.sh}
mapfile -t claude < <("$cc" --install-only | python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)["command"]))')
hook="KOMPRESS_HOME='$w/kh' '$bin' hook"
cat > "$w/proj/.claude/settings.json" <<JSON
{"hooks": {
  "PostToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "$hook"}]}],
  "SessionStart": [{"matcher": "compact", "hooks": [{"type": "command",
    "command": "tee -a '$w/session_start.jsonl' | $hook"}]}]}}
JSON

pass=0 fail=0
check() { # check NAME CONDITION-RESULT(0/1) DETAIL
    if [ "$2" = 0 ]; then echo "PASS $1"; pass=$((pass + 1)); else echo "FAIL $1 ($3)"; fail=$((fail + 1)); fi
}
# run N PROMPT SCRIPT-JSON: one Claude Code run (continuing the session after the first).
run() {
    local n=$1 prompt=$2 script=$3 cont=()
    [ "$n" -gt 1 ] && cont=(--continue)
    echo "$script" > "$w/script$n.json"
    python3 "$here/scripted_api.py" --script "$w/script$n.json" --results "$w/results$n.json" \
        --log "$w/api$n.log" --port-file "$w/port$n" &
    local server=$!
    while [ ! -s "$w/port$n" ]; do sleep 0.1; done
    (cd "$w/proj" && env -i PATH="$PATH" HOME="$w/home" TMPDIR="$w/tmp" \
        ANTHROPIC_BASE_URL="http://127.0.0.1:$(cat "$w/port$n")" ANTHROPIC_API_KEY=test \
        DISABLE_TELEMETRY=1 DISABLE_AUTOUPDATER=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 \
        timeout 180 "${claude[@]}" "${cont[@]}" -p "$prompt" --output-format json \
        --allowedTools Bash --debug-file "$w/debug$n.log" > "$w/out$n.json" 2>&1 < /dev/null) || true
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
}
texts() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); [print(repr(x.get("text",""))) for x in (r if isinstance(r, list) else r.values())]' "$1" 2>/dev/null; }
# Session memory: lines of its log (one for every session; a forgotten session gets a line
# that ends its earlier records).
records() { cat "$w"/kh/state/sessions/log 2>/dev/null | wc -l; }
seq_call='{"tool": "Bash", "input": {"command": "seq 1 3000"}}'

run 1 "e2e-go: twice" "{\"marker\": \"e2e-go\", \"calls\": [$seq_call, $seq_call], \"final_text\": \"done\"}"
first=$(texts "$w/results1.json" | sed -n 1p)
second=$(texts "$w/results1.json" | sed -n 2p)
# (The line model may thin it, but its last line always stays.)
check "first call: the output itself" "$([[ $first == *"\\n3000'" && $first != *"output unchanged"* ]]; echo $?)" "${first:0:120}"
check "second identical call: output unchanged" "$([[ $second == *"output unchanged since the earlier identical call"* ]]; echo $?)" "${second:0:120}"
check "session memory holds a record" "$([ "$(records)" -ge 1 ]; echo $?)" "$(records) records"
before=$(records)

run 2 "/compact" '{"marker": "never-ours", "calls": [], "final_text": "done"}'
start=$(cat "$w/session_start.jsonl" 2>/dev/null || true)
check "/compact fired SessionStart with source compact" "$([[ $start == *'"source":"compact"'* ]]; echo $?)" "${start:0:200}"
check "kompress forgot the session" "$([ "$(records)" = $((before + 1)) ] && tail -1 "$w"/kh/state/sessions/log | grep -q '"id":""'; echo $?)" "$before then $(records) records"

run 3 "e2e-again: once more" "{\"marker\": \"e2e-again\", \"calls\": [$seq_call], \"final_text\": \"done\"}"
third=$(texts "$w/results3.json" | sed -n 1p)
check "same command after the compaction: not called unchanged" "$([[ -n $third && $third != *"output unchanged"* ]]; echo $?)" "${third:0:120}"
warnings=$(grep -hiE "hook.*(error|fail|invalid|does not match)" "$w"/debug*.log | grep -vi "Failed to stat" | head -3 || true)
check "no hook warning in the three runs" "$([ -z "$warnings" ]; echo $?)" "$warnings"
echo "Claude Code $("${claude[@]}" --version 2>/dev/null | head -1)"
echo "$pass passed, $fail failed"
echo "work dir: $w"
[ "$fail" = 0 ]
