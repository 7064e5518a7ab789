#!/usr/bin/env bash
# Issue 35's throughput figure: a file of SIZE_MB MiB (200) of random bytes uploaded on chatd
# A and downloaded on chatd B (`chatctl get`: found through the DHT, fetched over a bulk
# stream with every chunk group verified and written to B's store, streamed to the client as
# it verifies), two release daemons on loopback, against two baselines in the same run, the three
# interleaved for ROUNDS rounds (3):
#   - quinn: one raw bulk stream of chatd's transport between two endpoints in one process
#     (`transport::bulk_tests::bulk_figure`: quinn + rustls, 200 MiB, no store, no hashing
#     beyond a checksum of what arrived);
#   - iperf3 over TCP on loopback (installed here with apt-get when missing; not in CI).
# Prints one line per measurement and the machine's load; docs/performance.md ("Files")
# holds the figures. Each chatd and quinn line also gives the CPU seconds the transfer took
# (user + system: both daemons and chatctl for chatd, the whole test process for quinn, its
# 2 s of idle frames and set-up included), a figure the machine's load changes far less.
# Release build without fat LTO (as the bulk-stream figures there).
#
#   tests/bench/scripts/files_throughput.sh            # ROUNDS=3 SIZE_MB=200
#   NO_BUILD=1 NO_QUINN=1 ...                          # built binaries as they are, no quinn
#   NO_BUILD=1 BASELINE=target/release/deps/chatd-HASH ...  # the lib test binary as it is
#   BEFORE_BIN=DIR ...   # also DIR/chatd + DIR/chatctl (an older build) in every round: A/B
#   AFTER_BIN=DIR ...    # the build measured, instead of $CARGO_TARGET_DIR/release
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SIZE_MB=${SIZE_MB:-200}
cd "$(dirname "$0")/../../.."
export CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
TARGET=${CARGO_TARGET_DIR:-target}
[ -n "${NO_BUILD:-}" ] || cargo build --release -p chatd -p chatctl
BASELINE=${BASELINE:-} # the release lib test binary, if built already
[ -n "${NO_QUINN:-}" ] || [ -n "$BASELINE" ] || BASELINE=$(cargo test --release -p chatd --lib --no-run --message-format=json 2>/dev/null |
  python3 -c 'import sys,json
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["name"]=="chatd" and m["profile"]["test"]:
        print(m["executable"])' | tail -1)
CHATD=${AFTER_BIN:-$TARGET/release}/chatd
CHATCTL=${AFTER_BIN:-$TARGET/release}/chatctl
BEFORE_BIN=${BEFORE_BIN:-}

if ! command -v iperf3 >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 >/dev/null || true
  fi
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Two daemons: A founds the ring, B joins it.
printf '[ring]\nstabilize_ms = 150\nfix_fingers_ms = 150\ncheck_predecessor_ms = 300\n' >"$WORK/chatd.toml"
start() { # name listen [bootstrap [bin-dir]]
  local d=$WORK/$1
  mkdir -p "$d"
  local boot=()
  [ -n "${3:-}" ] && boot=(--bootstrap "$3")
  local chatd=$CHATD chatctl=$CHATCTL
  [ -n "${4:-}" ] && chatd=$4/chatd && chatctl=$4/chatctl
  CHATD_FILES__MAX_FILE_MB=$((SIZE_MB + 1)) CHATD_FILES__STORE_MB=$((SIZE_MB * 2 * ROUNDS + 64)) \
    "$chatd" --config "$WORK/chatd.toml" --listen "$2" --data-dir "$d/data" \
    --control "$d/control.sock" "${boot[@]}" >"$d/log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do
    "$chatctl" --socket "$d/control.sock" status >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "chatd $1 did not start" >&2
  cat "$d/log" >&2
  exit 1
}
declare -A PID_OF
start a 127.0.0.1:47351
PID_OF[a]=${PIDS[-1]}
start b 127.0.0.1:47352 127.0.0.1:47351
PID_OF[b]=${PIDS[-1]}
if [ -n "$BEFORE_BIN" ]; then # the older build's own two daemons
  start oa 127.0.0.1:47354 "" "$BEFORE_BIN"
  PID_OF[oa]=${PIDS[-1]}
  start ob 127.0.0.1:47355 127.0.0.1:47354 "$BEFORE_BIN"
  PID_OF[ob]=${PIDS[-1]}
fi
ticks() { # CPU clock ticks (user + system) of the pids given, so far
  local t=0 p f
  for p in "$@"; do
    read -ra f <"/proc/$p/stat"
    t=$((t + f[13] + f[14]))
  done
  echo "$t"
}
HZ=$(getconf CLK_TCK)
declare -A CTL_BIN=([a]=$CHATCTL [b]=$CHATCTL [oa]=$BEFORE_BIN/chatctl [ob]=$BEFORE_BIN/chatctl)
ctl() {
  local n=$1 bin=$CHATCTL
  shift
  case $n in o*) bin=$BEFORE_BIN/chatctl ;; esac
  "$bin" --socket "$WORK/$n/control.sock" "$@"
}

chatd_round() { # round [prefix: o for the older build]
  local a=${2:-}a b=${2:-}b label="chatd get"
  [ -n "${2:-}" ] && label="chatd get (before)"
  local f=$WORK/file-$1.bin
  head -c "${SIZE_MB}M" /dev/urandom >"$f"
  local hash
  hash=$(ctl "$a" send --json --file "$f" "round $1" 2>/dev/null | python3 -c 'import sys,json; print(json.loads(sys.stdin.readline())["attachment"]["hash"])')
  # B learns A's provider record through the DHT; until then `get` says "no provider".
  for _ in $(seq 200); do
    ctl "$b" record get provider "$hash" >/dev/null 2>&1 && break
    sleep 0.1
  done
  local t0 t1 c0 c1 ctl_cpu
  c0=$(ticks "${PID_OF[$a]}" "${PID_OF[$b]}")
  t0=$(date +%s.%N)
  /usr/bin/time -f '%U %S' -o "$WORK/ctl-cpu" "${CTL_BIN[$b]}" --socket "$WORK/$b/control.sock" \
    get "$hash" -o "$WORK/got-$1.bin" 2>/dev/null
  t1=$(date +%s.%N)
  c1=$(ticks "${PID_OF[$a]}" "${PID_OF[$b]}")
  ctl_cpu=$(awk '{print $1 + $2}' "$WORK/ctl-cpu")
  cmp -s "$f" "$WORK/got-$1.bin" || { echo "round $1: B's copy differs" >&2; exit 1; }
  python3 -c "print(f'$label: {$SIZE_MB} MiB in {$t1-$t0:.3f} s = {$SIZE_MB/($t1-$t0):.0f} MiB/s, CPU {($c1-$c0)/$HZ+$ctl_cpu:.2f} s (daemons {($c1-$c0)/$HZ:.2f}, chatctl {$ctl_cpu:.2f})')"
  rm -f "$f" "$WORK/got-$1.bin"
}

quinn_round() {
  if [ -z "$BASELINE" ]; then
    echo "quinn bulk stream: not built (NO_QUINN)"
    return
  fi
  local line cpu
  line=$(/usr/bin/time -f '%U %S' -o "$WORK/quinn-cpu" "$BASELINE" transport::bulk_tests::bulk_figure \
    --ignored --nocapture 2>/dev/null | grep '^bulk:' | sed 's/^bulk:/quinn bulk stream:/')
  cpu=$(awk '{print $1 + $2}' "$WORK/quinn-cpu")
  echo "$line, CPU $cpu s (the whole test process)"
}

iperf_round() {
  if ! command -v iperf3 >/dev/null; then
    echo "iperf3: not installed (skipped)"
    return
  fi
  iperf3 -s -1 -B 127.0.0.1 -p 47353 >/dev/null 2>&1 &
  local srv=$!
  sleep 0.3
  iperf3 -c 127.0.0.1 -p 47353 -n "${SIZE_MB}M" -J 2>/dev/null | python3 -c '
import sys,json
e=json.load(sys.stdin)["end"]["sum_received"]
mib, secs = e["bytes"] / 2**20, e["seconds"]
print("iperf3 tcp: %.0f MiB in %.3f s = %.0f MiB/s" % (mib, secs, mib / secs))'
  wait "$srv" 2>/dev/null || true
}

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
  echo "-- round $r (load $(cut -d' ' -f1-3 /proc/loadavg))"
  [ -z "$BEFORE_BIN" ] || chatd_round "$r" o
  chatd_round "$r"
  quinn_round
  iperf_round
done
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
