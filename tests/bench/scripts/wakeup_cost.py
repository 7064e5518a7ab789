#!/usr/bin/env python3
"""CPU cost and latency of waking a process for one UDP datagram, by spacing between
datagrams.

A process echoes datagrams on loopback; a second one sends them at a fixed interval and
waits for each echo. The echoing process's CPU time (user + system, from getrusage) per
datagram shows what a wake-up costs on this machine when the process slept in between; the
round trips (two wake-ups each: the echoer's, then the sender's) show how long waking takes.
chatd daemons in the benchmark wake a few hundred times a second each, and every hop of a
broadcast wakes the next daemon, so both are part of every delivery (docs/performance.md).

Usage: python3 tests/bench/scripts/wakeup_cost.py [INTERVAL_MS ...]   (default: 0 1 5 20)
"""

import os
import resource
import socket
import sys
import time


def measure(interval_s: float) -> str:
    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.bind(("127.0.0.1", 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    count = int(2 / interval_s) if interval_s > 0 else 20000
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        before = resource.getrusage(resource.RUSAGE_SELF)
        for _ in range(count):
            data, addr = echo.recvfrom(100)
            echo.sendto(data, addr)
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        os.write(write_end, f"{cpu / count * 1e6:.1f}".encode())
        os._exit(0)
    os.close(write_end)
    start = time.perf_counter()
    rtts = []
    for i in range(count):
        wait = start + i * interval_s - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        sent = time.perf_counter()
        sender.sendto(b"x" * 100, echo.getsockname())
        sender.recvfrom(100)
        rtts.append((time.perf_counter() - sent) * 1e6)
    os.waitpid(pid, 0)
    per_datagram = os.read(read_end, 64).decode()
    rtts.sort()
    p50, p99 = rtts[len(rtts) // 2], rtts[int(len(rtts) * 0.99)]
    return (
        f"interval {interval_s * 1e3:5.1f} ms: {per_datagram} µs CPU per echoed datagram, "
        f"round trip p50 {p50:.0f} µs, p99 {p99:.0f} µs"
    )


def main() -> None:
    intervals = [float(a) for a in sys.argv[1:]] or [0, 1, 5, 20]
    for ms in intervals:
        print(measure(ms / 1e3))


if __name__ == "__main__":
    main()
