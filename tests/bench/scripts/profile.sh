#!/usr/bin/env bash
# Where a delivery's CPU goes (issue 24): runs chat-bench's latency step (NODES daemons, 200
# msg/s for 20 s), records the whole machine with `perf record -a -g` during 12 s of it, and
# splits the daemons' samples into parts (signature check, SQLite, QUIC, UDP, wake-ups, gRPC,
# allocation, …) with classify_profile.py, in per cent and in µs of the run's CPU per delivery.
# User-space stacks are not unwound (the release build has no frame pointers); kernel samples
# are charged to the system call on their kernel stack, user samples to their function's crate.
#
# Usage: tests/bench/scripts/profile.sh [CHATD]   (as root: perf -a needs it)
#   NODES (default 20), CHAT_BENCH (default $CARGO_TARGET_DIR/release/chat-bench).
set -euo pipefail
here=$(dirname "$0")
bench=${CHAT_BENCH:-${CARGO_TARGET_DIR:-target}/release/chat-bench}
chatd=${1:-$(dirname "$bench")/chatd}
command -v perf >/dev/null || { echo "profile.sh: perf is not installed (apt install linux-perf)" >&2; exit 2; }
[[ -x $bench && -x $chatd ]] || { echo "profile.sh: need $bench and $chatd (cargo build --release -p chatd -p chat-bench)" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$bench" --chatd "$chatd" --nodes "${NODES:-20}" --idle 0 --step-seconds 0 --settle 3 \
  --seconds 20 --dir /dev/shm >"$out/bench.log" 2>&1 &
pid=$!
# The latency step starts once the ring is correct and settled: wait for its first line.
for _ in $(seq 1 120); do
  grep -q '^latency:' "$out/bench.log" && break
  kill -0 "$pid" 2>/dev/null || { cat "$out/bench.log" >&2; exit 1; }
  sleep 0.5
done
sleep 2
perf record -q -a -g -F 1999 -o "$out/perf.data" -- sleep 12 >/dev/null 2>&1
wait "$pid" || { cat "$out/bench.log" >&2; exit 1; }
line=$(grep '^latency at' "$out/bench.log")
echo "$line"
us=$(sed -E 's/.* ([0-9]+) µs CPU per delivery.*/\1/' <<<"$line")
python3 "$here/classify_profile.py" "$out/perf.data" "$us" "$(basename "$chatd")"
