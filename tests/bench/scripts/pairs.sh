#!/usr/bin/env bash
# Interleaved A/B runs of chat-bench: each round runs every given chatd binary once, one after
# another, so the machine's drift over the hour (docs/performance.md) hits all builds alike.
# Prints one line per run: binary, p50, p99 and max latency (ms), missing and duplicate
# deliveries, daemon CPU µs per delivery.
#
# Usage: tests/bench/scripts/pairs.sh ROUNDS CHATD...
#   NODES (default 30), BENCH_SECONDS (default 10) and CHAT_BENCH (default target/release/chat-bench,
#   or $CARGO_TARGET_DIR/release/chat-bench) in the environment.
# Example: cp target/release/chatd /tmp/chatd-a; (change, rebuild); \
#   tests/bench/scripts/pairs.sh 3 /tmp/chatd-a target/release/chatd
set -euo pipefail
if [[ $# -lt 2 ]]; then
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
rounds=$1
shift
bench=${CHAT_BENCH:-${CARGO_TARGET_DIR:-target}/release/chat-bench}
[[ -x $bench ]] || { echo "no chat-bench at $bench: cargo build --release --bin chat-bench" >&2; exit 2; }
for ((r = 1; r <= rounds; r++)); do
  for chatd in "$@"; do
    line=$("$bench" --chatd "$chatd" --nodes "${NODES:-30}" --idle 0 --step-seconds 0 \
      --settle 3 --seconds "${BENCH_SECONDS:-10}" 2>&1 | grep '^latency at') || {
      echo "$chatd: chat-bench failed" >&2
      exit 1
    }
    echo "$(basename "$chatd") $(sed -E 's/.*p50 ([0-9.]+) ms.*p99 ([0-9.]+) ms, max ([0-9.]+) ms; missing ([0-9]+), duplicates ([0-9]+); ([0-9]+) µs.*/p50 \1 p99 \2 max \3 missing \4 duplicates \5 cpu_us \6/' <<<"$line")"
  done
done
