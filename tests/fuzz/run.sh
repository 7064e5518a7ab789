#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each with honggfuzz (stable Rust).
#
#   tests/fuzz/run.sh SECONDS [TARGET...]   fuzz; exit 1 if any target crashed
#   tests/fuzz/run.sh --seeds               rewrite the seed corpora (corpus/) from the encoders
#   tests/fuzz/run.sh --list                the targets
#
# Needs `cargo install honggfuzz --locked --version 0.5.62` and Debian's binutils-dev,
# libunwind-dev and liblzma-dev (.ci/run installs them). The instrumented build goes to
# $CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release (or tests/fuzz/hfuzz_target); inputs that
# found new coverage go to $HFUZZ_WORKSPACE/TARGET/new (never into the committed corpus/), and a
# crash is kept there as TARGET/*.fuzz and printed (hex). HFUZZ_THREADS sets honggfuzz's threads
# (default: the CPUs). docs/security.md, "Fuzzing", says what each target checks.
set -euo pipefail
cd "$(dirname "$0")"

TARGETS=(wire_frame services envelope record dm_items config web_frames thumbnail)

# The fuzz crate is its own workspace (it is excluded from the main one): build it with the
# same dependency versions as the daemon.
cp ../../Cargo.lock Cargo.lock

TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/hfuzz_target}"
export CARGO_TARGET_DIR="$TARGET_DIR"
export HFUZZ_WORKSPACE="${HFUZZ_WORKSPACE:-$TARGET_DIR/hfuzz_workspace}"
BIN="$TARGET_DIR/x86_64-unknown-linux-gnu/release"

case "${1:-}" in
  --list) printf '%s\n' "${TARGETS[@]}"; exit 0 ;;
  --seeds)
    cargo hfuzz build
    "$BIN/gen_seeds" corpus
    cp ../../deploy/chatd.toml corpus/config/sample
    du -sh corpus
    exit 0 ;;
  ''|-*) sed -n '2,12p' "$0"; exit 2 ;;
esac
SECONDS_EACH="$1"
shift
[[ $# -gt 0 ]] && TARGETS=("$@")

build_start=$(date +%s)
cargo hfuzz build
echo "fuzz: instrumented build took $(( $(date +%s) - build_start )) s"

threads="${HFUZZ_THREADS:-$(nproc)}"
failed=()
for t in "${TARGETS[@]}"; do
  [[ -d "corpus/$t" ]] || { echo "fuzz: no corpus/$t" >&2; exit 2; }
  work="$HFUZZ_WORKSPACE/$t"
  rm -rf "$work"
  mkdir -p "$work/new"
  # -P: persistent mode (the targets loop); --output: new inputs beside, not into, corpus/.
  "$TARGET_DIR/honggfuzz" -W "$work" -f "corpus/$t" --output "$work/new" -P \
    --run_time "$SECONDS_EACH" --threads "$threads" --timeout 5 --exit_upon_crash -v \
    -- "$BIN/$t" >"$work/log" 2>&1 || true
  crashes=$(find "$work" -maxdepth 1 -name '*.fuzz' | wc -l)
  runs=$(grep -Eo 'Summary iterations:[0-9]+' "$work/log" | tail -1 | cut -d: -f2 || true)
  echo "fuzz: $t: ${runs:-?} runs in ${SECONDS_EACH} s, $(find "$work/new" -type f | wc -l) new inputs, $crashes crashes"
  if [[ $crashes -gt 0 ]]; then
    failed+=("$t")
    for f in "$work"/*.fuzz; do
      echo "fuzz: $t crashed on $f:"; od -A d -t x1 "$f" | head -20
    done
    # honggfuzz-rs aborts on a panic without its message: feed the input to the decoder in a
    # plain #[test] (the regression test it becomes) to see it.
    echo "fuzz: the inputs are kept in $work (honggfuzz's log: $work/log)"
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: crashes in ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#TARGETS[@]} targets, no crash"
