#!/usr/bin/env bash
# Runs `kompress hook` inside the real Claude Code CLI (shared/tools/cc-e2e, fake API on
# loopback) for the cases issue #2 names, and prints one summary line per case.
# Not run in CI: it installs Claude Code from npm on first use.
#
# usage: tests/e2e/cc_e2e.sh [path/to/kompress] [out-dir]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-$repo/target/release/kompress}
out=${2:-$(mktemp -d)}
cc=${CC_E2E:-$repo/../shared/tools/cc-e2e/run.sh}
mkdir -p "$out"

# A build log: 150 similar "Compiling" lines, a repeated warning, an error, a summary.
gen_log='for i in $(seq 1 150); do echo "   Compiling dependency_$i v0.$i.3"; done
for i in $(seq 1 60); do echo "warning: unused manifest key: package.metadata.release"; done
echo "error[E0277]: the trait bound \`Foo: Bar\` is not satisfied"
echo "  --> src/main.rs:4:5"
echo "    Finished \`dev\` profile [unoptimized + debuginfo] target(s) in 3.28s"'
# Over 30,000 characters: 2,500 similar lines with one error in the middle.
gen_huge='for i in $(seq 1 2500); do echo "[2026-11-25T10:00:00Z] INFO worker=$i processed batch $i in 12ms"; if [ $i = 1250 ]; then echo "[2026-11-25T10:00:01Z] ERROR worker=1250 failed: connection reset by peer (ECONNRESET)"; fi; done'

run_case() {
    local name=$1; shift
    "$cc" --hook "$bin hook" "$@" --out "$out/$name.json" > /dev/null 2>"$out/$name.err" || true
    python3 - "$name" "$out/$name.json" <<'PY'
import json, sys
name, path = sys.argv[1], sys.argv[2]
try:
    r = json.load(open(path))
except Exception as e:
    print(f"{name}: no result ({e})"); sys.exit(0)
print(f"{name}: claude {r.get('claude_version')} replaced={r.get('replaced')} "
      f"cc_says_replaced={r.get('cc_says_replaced')} hook_warning={r.get('hook_warning')} "
      f"model_chars={r.get('tool_result_len')} without_hook={r.get('original_text_len')} "
      f"errors={r.get('errors')}")
PY
}

run_case bash_log --tool Bash --input "$(python3 -c 'import json,sys; print(json.dumps({"command": "sh gen.sh"}))')" \
    --setup "cat > gen.sh <<'EOF'
$gen_log
EOF"
run_case bash_small --tool Bash --input '{"command":"echo hello"}'
run_case bash_huge --tool Bash --input '{"command":"sh huge.sh"}' \
    --setup "cat > huge.sh <<'EOF'
$gen_huge
EOF"
# Release notes a command printed: prose, where the model pass drops function words.
run_case bash_prose --tool Bash --input '{"command":"sh notes.sh"}' \
    --setup "cat > notes.sh <<'EOF'
for i in \$(seq 1 30); do echo \"In release \$i the importer of the project is now able to read the files that are written by the exporter of the older version\"; done
EOF"
run_case read_source --tool Read --input '{"file_path":"@PROJECT@/big.py"}' \
    --setup "cp $repo/src/pipeline.rs big.py"
run_case read_data --tool Read --input '{"file_path":"@PROJECT@/fixture.py"}' \
    --setup "python3 -c \"import base64,os
lines=['def f_%d(x):\\n    return x + %d\\n' % (i, i) for i in range(300)]
blob=base64.b64encode(bytes((i*7919+i*i) % 251 for i in range(76*400))).decode()
data=''.join('    \\'%s\\'\\n' % blob[i:i+76] for i in range(0, len(blob), 76))
open('fixture.py','w').write(''.join(lines) + 'BLOB = (\\n' + data + ')\\n' + ''.join(lines))\""
run_case grep_content --tool Grep --input '{"pattern":"compute","output_mode":"content","-n":false,"path":"@PROJECT@"}' \
    --setup 'for f in $(seq 1 20); do for i in $(seq 1 20); do echo "    let x = compute();"; done > m$f.rs; done'
echo "results in $out"
