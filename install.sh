#!/usr/bin/env bash
# Install kompress from this checkout: build the release binary, install it and the model,
# register the Claude Code hook, then check the installation. Safe to run again: what is
# already in place is left alone.
#
#   ./install.sh                  # register in ~/.claude/settings.json
#   ./install.sh --project        # register in ./.claude/settings.json (any `kompress init` flag)
#   ./install.sh --no-init        # install only, do not touch Claude Code's settings (CI)
#
# Environment: KOMPRESS_BIN_DIR (default ~/.local/bin), KOMPRESS_HOME (one folder for all of
# kompress's data, as the binary reads it), XDG_DATA_HOME, CARGO_TARGET_DIR.
set -euo pipefail

say() { printf 'install: %s\n' "$*"; }
warn() { printf 'install: warning: %s\n' "$*" >&2; }
die() { printf 'install: error: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
}

run_init=1
init_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --no-init) run_init=0 ;;
        -h | --help) usage; exit 0 ;;
        *) init_args+=("$1") ;;
    esac
    shift
done

# `init --project` and `doctor` look at the directory this script was started from.
caller_dir=$PWD
root=$(cd "$(dirname "$0")" && pwd)
cd "$root"

# 1. The toolchain.
if ! command -v cargo >/dev/null 2>&1; then
    die "cargo not found. Install Rust with rustup:
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh
then open a new shell (or run: . \"\$HOME/.cargo/env\") and run ./install.sh again."
fi
# rustup finds its toolchains through $HOME unless told otherwise. When this script runs with
# another HOME (a throwaway home for a test install), point rustup at the installation the
# `cargo` on PATH belongs to, which is where the defaults would point with the usual HOME.
cargo_bin_dir=$(dirname "$(command -v cargo)")
case "$cargo_bin_dir" in
    */.cargo/bin)
        rust_base=${cargo_bin_dir%/.cargo/bin}
        if [ -z "${RUSTUP_HOME:-}" ] && [ -d "$rust_base/.rustup" ]; then
            export RUSTUP_HOME=$rust_base/.rustup
        fi
        if [ -z "${CARGO_HOME:-}" ]; then
            export CARGO_HOME=$rust_base/.cargo
        fi
        ;;
esac

# 2. The release binary. cargo itself says "Finished" without rebuilding when nothing changed.
say "building: cargo build --release --locked"
cargo build --release --locked
target_dir=${CARGO_TARGET_DIR:-$root/target}
case "$target_dir" in /*) ;; *) target_dir=$root/$target_dir ;; esac
built=$target_dir/release/kompress
[ -x "$built" ] || die "the build did not produce $built (is CARGO_TARGET_DIR or build.target-dir set elsewhere?)"

# Copy $1 to $2 unless $2 already has the same bytes; atomic (temporary file, then rename).
# Returns 0 when it copied, 1 when $2 was already up to date.
copy_if_changed() {
    local src=$1 dest=$2 mode=$3 tmp
    if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
        return 1
    fi
    mkdir -p "$(dirname "$dest")"
    tmp=$(dirname "$dest")/.$(basename "$dest").install.$$
    cp "$src" "$tmp"
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$dest"
    return 0
}

# 3. The binary, on PATH.
bin_dir=${KOMPRESS_BIN_DIR:-$HOME/.local/bin}
bin=$bin_dir/kompress
if copy_if_changed "$built" "$bin" 755; then
    say "binary: installed $bin"
else
    say "binary: $bin (unchanged)"
fi
case ":${PATH:-}:" in
    *":$bin_dir:"*) ;;
    *) warn "$bin_dir is not on PATH. The hook registered by 'kompress init' uses the full path
  and works anyway; for your shell (and the plugin hooks/hooks.json) add to your shell profile:
    export PATH=\"$bin_dir:\$PATH\"" ;;
esac

# 4. The model, into the data directory the binary reads (directories' ProjectDirs::data_dir).
if [ -n "${KOMPRESS_HOME:-}" ]; then
    data_dir=$KOMPRESS_HOME/data
elif [ "$(uname -s)" = Darwin ]; then
    data_dir="$HOME/Library/Application Support/kompress"
else
    case "${XDG_DATA_HOME:-}" in
        /*) data_dir=$XDG_DATA_HOME/kompress ;;
        *) data_dir=$HOME/.local/share/kompress ;;
    esac
fi
model_dest=$data_dir/model
if [ -d "$root/model" ] && [ -n "$(find "$root/model" -type f -print -quit)" ]; then
    changed=0
    total=0
    while IFS= read -r -d '' file; do
        rel=${file#"$root/model/"}
        total=$((total + 1))
        if copy_if_changed "$file" "$model_dest/$rel" 644; then
            changed=$((changed + 1))
        fi
    done < <(find "$root/model" -type f -print0)
    if [ "$changed" -gt 0 ]; then
        say "model: installed $changed of $total file(s) into $model_dest"
    else
        say "model: $model_dest (unchanged, $total file(s))"
    fi
else
    say "model: none in this checkout ($root/model); kompress runs its structural passes only"
fi

# 5. The Claude Code hook.
if [ "$run_init" -eq 1 ]; then
    (cd "$caller_dir" && "$bin" init ${init_args[@]+"${init_args[@]}"})
else
    say "hook: not registered (--no-init); run '$bin init' to register it"
fi

# 6. The check. Its warnings are advice; a failed check does not undo the installation.
(cd "$caller_dir" && "$bin" doctor) || true
