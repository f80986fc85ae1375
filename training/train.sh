#!/usr/bin/env bash
# One entry point: build the data, train, evaluate, and (with --ship) convert into model/.
#
#   training/train.sh --smoke            # ~1-2 min on CPU, writes into a temp dir
#   training/train.sh --ship             # full run, then `kompress model convert` into model/
#
# Environment: PYTHON (default /tmp/fxvenv/bin/python: a venv with training/requirements.txt;
# never install torch into the repo). Other arguments go to training/train.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-/tmp/fxvenv/bin/python}"
if [[ ! -x target/release/kompress ]]; then
  cargo build --release
fi
args=("$@")
if [[ " $* " == *" --smoke "* && " $* " != *" --out "* ]]; then
  args+=(--out "$(mktemp -d /tmp/kompress-smoke.XXXXXX)")
fi
exec "$PYTHON" training/train.py "${args[@]}"
