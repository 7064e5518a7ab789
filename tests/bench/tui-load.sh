#!/usr/bin/env bash
# CPU of `chatctl chat` idle and under 200 messages/s (docs/performance.md, "The terminal
# chat"). Starts two chatd on loopback (their own data directories under a temporary
# directory), runs `chatctl chat` in a tmux server of its own on the first, sends N messages
# at 200/s from the second, and reads the window's CPU time from /proc. Stops every process
# it started. Usage: tests/bench/tui-load.sh [TARGET_DIR] (default: $CARGO_TARGET_DIR or
# target, debug or release binaries as built).
set -euo pipefail
BIN="${1:-${CARGO_TARGET_DIR:-target}/release}"
[ -x "$BIN/chatd" ] && [ -x "$BIN/chatctl" ] || { echo "build first: cargo build --release (or pass the binaries' directory)"; exit 2; }
command -v tmux >/dev/null || { echo "tmux is needed"; exit 2; }
N=${N:-2000}
RATE=${RATE:-200}
DIR=$(mktemp -d)
TMUX_NAME="chatd-bench-$$"
PIDS=()
cleanup() {
  tmux -L "$TMUX_NAME" kill-server 2>/dev/null || true
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
export CHATD_CONTROL__SEND_RATE=100000 CHATD_CONTROL__SEND_BURST=100000 CHATD_RING__ORIGIN_RATE=100000 CHATD_RING__ORIGIN_BURST=100000
"$BIN/chatd" --listen 127.0.0.1:0 --data-dir "$DIR/a" --control "$DIR/a.sock" --nick watcher --web "" 2>"$DIR/a.log" & PIDS+=($!)
for _ in $(seq 100); do [ -S "$DIR/a.sock" ] && break; sleep 0.1; done
ADDR=$("$BIN/chatctl" --socket "$DIR/a.sock" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["listen_addr"])')
"$BIN/chatd" --listen 127.0.0.1:0 --bootstrap "$ADDR" --data-dir "$DIR/b" --control "$DIR/b.sock" --nick talker --web "" 2>"$DIR/b.log" & PIDS+=($!)
for _ in $(seq 100); do "$BIN/chatctl" --socket "$DIR/b.sock" status --json 2>/dev/null | grep -q '"joined": *true' && break; sleep 0.2; done
tmux -L "$TMUX_NAME" -f /dev/null new-session -d -s chat -x 160 -y 50 "$BIN/chatctl --socket $DIR/a.sock chat"
for _ in $(seq 100); do tmux -L "$TMUX_NAME" capture-pane -p -t chat | grep -q connected && break; sleep 0.1; done
PID=$(tmux -L "$TMUX_NAME" list-panes -t chat -F '#{pane_pid}')
ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
HZ=$(getconf CLK_TCK)
t0=$(ticks); sleep 10; t1=$(ticks)
echo "idle: $(( (t1 - t0) * 1000 / HZ )) ms of CPU in 10 s"
python3 - "$N" "$RATE" > "$DIR/lines" <<'PY'
import sys
n, rate = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    print(f"load line {i} " + "x" * 60)
PY
t0=$(ticks); start=$(date +%s.%N)
python3 - "$DIR/lines" "$RATE" <<'PY' | "$BIN/chatctl" --socket "$DIR/b.sock" send
import sys, time
path, rate = sys.argv[1], int(sys.argv[2])
t = time.monotonic()
for i, line in enumerate(open(path)):
    time.sleep(max(0, t + i / rate - time.monotonic()))
    sys.stdout.write(line); sys.stdout.flush()
PY
last="load line $((N - 1)) "
for _ in $(seq 300); do tmux -L "$TMUX_NAME" capture-pane -p -t chat | grep -q "$last" && break; sleep 0.1; done
end=$(date +%s.%N); t1=$(ticks)
shown=$(tmux -L "$TMUX_NAME" capture-pane -p -t chat | grep -c "load line" || true)
echo "load: $N messages at $RATE/s: last one on screen $(python3 -c "print(round($end - $start, 2))") s after the first was sent; $(( (t1 - t0) * 1000 / HZ )) ms of CPU ($(( (t1 - t0) * 1000000 / HZ / N )) µs per message); $shown load lines on screen"
