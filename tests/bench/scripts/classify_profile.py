#!/usr/bin/env python3
"""Splits a `perf record -a -g` profile of a chat-bench run into the parts of a delivery.

Usage: classify_profile.py PERF_DATA [US_PER_DELIVERY] [CHATD_NAME]

Samples of chat-bench (the clients), of idle CPUs and of other programs are left out. A
kernel sample is charged to the system call found on its kernel stack (pwrite64 → SQLite's
file writes, sendmsg → UDP sending, which on loopback includes the receiver's network stack,
epoll_wait → waiting for work, …); without one, to scheduling and interrupts or "kernel other".
A user sample is charged by the function it is in (crate or library name). The daemon's own
threads (event log, search indexer, checkpointer) are parts of their own. Prints each part in
per cent of the daemons' samples and, given the run's CPU per delivery, in µs.
"""
import collections
import re
import subprocess
import sys

SYSCALLS = [
    ("pwrite64", "SQLite: file writes (kernel)"),
    ("pread64", "SQLite: file reads (kernel)"),
    ("fcntl", "SQLite: locks (kernel)"),
    ("fdatasync", "SQLite: sync (kernel)"),
    ("fsync", "SQLite: sync (kernel)"),
    ("sendmsg", "UDP: send, and the loopback receive (kernel)"),
    ("sendmmsg", "UDP: send, and the loopback receive (kernel)"),
    ("recvmmsg", "UDP: receive (kernel)"),
    ("recvmsg", "UDP: receive (kernel)"),
    ("sendto", "gRPC to subscribers: Unix socket (kernel)"),
    ("recvfrom", "gRPC to subscribers: Unix socket (kernel)"),
    ("writev", "gRPC to subscribers: Unix socket (kernel)"),
    ("epoll_wait", "wake-ups: epoll and scheduling (kernel)"),
    ("futex", "wake-ups: futex (kernel)"),
    ("sys_write", "write (kernel)"),
    ("sys_read", "read (kernel)"),
]
USER = [
    (("curve25519", "ed25519", "sha2"), "ed25519 signature check"),
    (("sqlite3", "pcache", "wal", "btree", "Btree", "Vdbe", "vdbe", "rusqlite", "unixWrite"), "SQLite (user)"),
    (("quinn", "rustls"), "QUIC (quinn, rustls)"),
    (("ring::", "ring_core", "aes", "gcm", "chacha"), "QUIC packet crypto (ring)"),
    (("h2::", "tonic", "hyper", "prost", "http_body", "tower"), "gRPC to subscribers (h2, tonic, hyper, prost)"),
    (("tokio",), "tokio runtime (tasks, channels, timers)"),
    (("ciborium", "serde"), "CBOR (ciborium, serde)"),
    (("chat_overlay",), "overlay state machine"),
    (("blake3",), "blake3 ids"),
    (("tracing",), "tracing (span enter/exit, with inlined futures)"),
    (("malloc", "free", "realloc", "_int_", "unlink_chunk", "cfree"), "allocation (glibc)"),
    (("memmove", "memcpy", "memcmp", "memset"), "copies and compares (memmove, memcmp)"),
    (("chatd::people", "chatd::dm"), "chatd: people and private (per-message checks)"),
    (("chatd::chat",), "chatd: chat core"),
    (("chatd::transport",), "chatd: transport"),
    (("chatd::overlay",), "chatd: overlay driver"),
    (("chatd::",), "chatd: other"),
    (("prometheus", "pow"), "metrics"),
]
THREADS = {
    "chatd-eventlog": "event log thread",
    "chat-search-ind": "search indexer thread",
    "chat-checkpoint": "SQLite checkpoint thread",
    "record-store": "DHT record store thread",
}


def samples(path):
    out = subprocess.run(
        ["perf", "script", "-i", path, "-F", "comm,pid,ip,sym,dso"],
        capture_output=True, text=True, check=True,
    ).stdout
    cur = None
    for line in out.split("\n"):
        if not line.strip():
            if cur:
                yield cur
            cur = None
        elif not line[0].isspace():
            m = re.match(r"\s*(.+?)\s+(\d+)\s*$", line)
            cur = {"comm": m.group(1), "pid": int(m.group(2)), "stack": []} if m else None
        elif cur is not None:
            m = re.match(r"\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$", line)
            if m:
                cur["stack"].append((m.group(1), m.group(2)))
    if cur:
        yield cur


def part(s, chatd):
    comm = s["comm"]
    if comm in THREADS:
        return THREADS[comm]
    if comm != "tokio-rt-worker" and not comm.startswith(chatd[:15]):
        return None
    sym, dso = s["stack"][0]
    if "kernel" in dso:
        for fsym, _ in s["stack"]:
            if "sys_" in fsym:
                for key, name in SYSCALLS:
                    if key in fsym:
                        return name
        names = " ".join(f for f, _ in s["stack"])
        if "schedule" in names or "irqentry" in names or "exit_to_user" in names:
            return "wake-ups: scheduling and interrupts (kernel)"
        if "net_rx" in names or "softirq" in names:
            return "UDP: send, and the loopback receive (kernel)"
        return "kernel other"
    for keys, name in USER:
        if any(k in sym for k in keys):
            return name
    if "libc" in dso:
        return "libc other"
    return "unattributed (inlined into generic code)"


def main():
    path = sys.argv[1]
    us = float(sys.argv[2]) if len(sys.argv) > 2 else None
    chatd = sys.argv[3] if len(sys.argv) > 3 else "chatd"
    all_samples = [s for s in samples(path) if s["stack"]]
    bench = {s["pid"] for s in all_samples if "chat-bench" in s["stack"][0][1]}
    parts = collections.Counter()
    for s in all_samples:
        if s["pid"] in bench:
            continue
        p = part(s, chatd)
        if p:
            parts[p] += 1
    total = sum(parts.values())
    if total == 0:
        sys.exit("no samples of the daemons")
    print("| part | share | µs per delivery |" if us else "| part | share |")
    print("|---|---|---|" if us else "|---|---|")
    for name, n in parts.most_common():
        share = 100 * n / total
        row = f"| {name} | {share:.1f} % |"
        if us:
            row += f" {share * us / 100:.0f} |"
        print(row)
    print(f"({total} samples of the daemons)")


if __name__ == "__main__":
    main()
