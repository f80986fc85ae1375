#!/usr/bin/env bash
# One entry point: make the Python environment, build the data, train, evaluate, and (with
# --ship) convert into model/. Works from a fresh clone: the corpus is in training/data/.
#
#   training/train.sh --smoke            # ~1-2 min on CPU, writes into a temp dir
#   training/train.sh --ship             # full run, then `kompress model convert` into model/
#   training/train.sh --setup-only       # only make the venv and the release binary
#   training/train.sh --lines [--ship]   # the line model (~2 min): line data from the
#                                        # trajectories, LightGBM, prices, packed into
#                                        # lines.bin; --ship: into model/
#
# Needs cargo, python3 (3.10 or newer, with its venv module: `apt-get install python3-venv`
# on Debian/Ubuntu) and, the first time, PyPI.
#
# Environment:
#   PYTHON        a Python that already has training/requirements.txt; no venv is made.
#   KOMPRESS_VENV where to make the venv (default training/.venv, gitignored). It is made
#                 with python3 (or VENV_PYTHON) and filled from training/requirements.txt,
#                 constrained to training/requirements-lock.txt; it is refilled when
#                 either file changes. torch comes from PyPI with its CUDA runtime wheels
#                 (several GB the first time), which also run on CPU-only machines.
#   KOMPRESS_TRAIN_DEVICE  auto (default: CUDA when torch.cuda.is_available(), else CPU),
#                 cpu, cuda or cuda:N; the same as train.py's --device.
#   KOMPRESS_CORPUS  the corpus (default training/data/dev.jsonl.gz).
# Other arguments go to training/train.py.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[train.sh] %s\n' "$*" >&2; }

setup_only=0
lines=0
args=()
for a in "$@"; do
  if [[ "$a" == --setup-only ]]; then setup_only=1
  elif [[ "$a" == --lines ]]; then lines=1
  else args+=("$a"); fi
done

if [[ -n "${PYTHON:-}" ]]; then
  say "using PYTHON=$PYTHON (no venv)"
else
  venv="${KOMPRESS_VENV:-training/.venv}"
  req=training/requirements.txt
  lock=training/requirements-lock.txt
  stamp="$venv/.kompress-requirements"
  want=$(grep -hv "^[[:space:]]*#" "$req" "$lock" | sha256sum | cut -d" " -f1)
  if [[ ! -x "$venv/bin/python" ]]; then
    base="${VENV_PYTHON:-python3}"
    say "making the venv $venv with $base ($("$base" --version 2>&1))"
    if ! "$base" -m venv "$venv"; then
      rm -rf "$venv"
      say "'$base -m venv' failed; on Debian/Ubuntu: apt-get install python3-venv"
      exit 1
    fi
  fi
  if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
    say "installing $req (constraints $lock) into $venv; the first time this downloads"
    say "torch and its CUDA runtime wheels from PyPI (several GB)"
    rm -f "$stamp"
    "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar on \
      -r "$req" -c "$lock"
    echo "$want" >"$stamp"
    say "venv ready: $("$venv/bin/python" -c 'import torch; print("torch", torch.__version__, "cuda available:", torch.cuda.is_available())')"
  else
    say "venv $venv is up to date with $req"
  fi
  PYTHON="$venv/bin/python"
fi

if [[ ! -x target/release/kompress ]]; then
  say "building target/release/kompress (cargo build --release)"
  cargo build --release
fi

if [[ $setup_only == 1 ]]; then
  say "setup done: PYTHON=$PYTHON, target/release/kompress"
  exit 0
fi

if [[ $lines == 1 ]]; then
  out=training/runs/lines
  mkdir -p "$out"
  say "line data: target/release/kompress model line-data (features and use labels of every line)"
  target/release/kompress model line-data \
    --trajectories training/data/trajectories-dev.jsonl.gz --out "$out/lines.jsonl"
  say "training the line model: $PYTHON training/line_model.py"
  "$PYTHON" training/line_model.py --data "$out/lines.jsonl" --out "$out/lines.json"
  say "packing it: target/release/kompress model pack-lines"
  target/release/kompress model pack-lines --from "$out/lines.json" --out "$out/lines.bin"
  if [[ " ${args[*]-} " == *" --ship "* ]]; then
    cp "$out/lines.bin" model/lines.bin
    say "shipped: model/lines.bin ($(wc -c <model/lines.bin) bytes)"
  fi
  say "measure it: target/release/kompress eval --trajectories training/data/trajectories-dev.jsonl.gz"
  exit 0
fi

if [[ " ${args[*]-} " == *" --smoke "* && " ${args[*]-} " != *" --out "* ]]; then
  args+=(--out "$(mktemp -d /tmp/kompress-smoke.XXXXXX)")
fi
say "training: $PYTHON training/train.py ${args[*]-}"
exec "$PYTHON" training/train.py ${args[@]+"${args[@]}"}
