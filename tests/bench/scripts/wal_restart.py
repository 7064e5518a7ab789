#!/usr/bin/env python3
"""What a write-ahead log that never restarts costs per insert.

A writer inserts chat-sized rows (same schema as chatd's store) at a steady rate while a
second thread checkpoints once a second, as chatd's checkpoint thread does, with one
PASSIVE pass or with up to four passes (each copying what the previous one left). With one
pass the log never starts over under steady writes: it grows, and every commit appends to
fresh file pages. Prints the writer's CPU time per insert (Python's own overhead included)
and the log's size at the end.

Usage: python3 tests/bench/scripts/wal_restart.py [RATE_PER_S] [SECONDS]   (default 1000 6)
"""

import os
import sqlite3
import sys
import tempfile
import threading
import time

SCHEMA = """
CREATE TABLE messages (pos INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, origin BLOB NOT NULL,
  seq INTEGER NOT NULL, hlc INTEGER NOT NULL, kind INTEGER NOT NULL, room TEXT NOT NULL,
  nick TEXT NOT NULL, body TEXT NOT NULL, wire BLOB NOT NULL, UNIQUE (origin, seq));
CREATE INDEX messages_by_room ON messages (room, pos);
"""


def run(passes: int, rate: float, seconds: float) -> str:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "chat.sqlite3")
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA wal_autocheckpoint=0")
        db.executescript(SCHEMA)
        stop = threading.Event()

        def checkpointer() -> None:
            c = sqlite3.connect(path, isolation_level=None)
            while not stop.wait(1.0):
                previous = None
                for _ in range(passes):
                    cur = c.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    busy, log, _ = cur.fetchone()
                    cur.close()
                    if busy or (previous is not None and log <= previous):
                        break
                    previous = log
            c.close()

        thread = threading.Thread(target=checkpointer)
        thread.start()
        count = int(rate * seconds)
        origin = os.urandom(32)
        cpu = 0.0
        start = time.perf_counter()
        for i in range(count):
            wait = start + i / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            t0 = time.thread_time()
            db.execute("BEGIN")
            db.execute(
                "INSERT INTO messages (id, origin, seq, hlc, kind, room, nick, body, wire)"
                " VALUES (?, ?, ?, ?, 1, 'lobby', 'bench', ?, ?)",
                (os.urandom(32), origin, i + 1, i + 1, "x" * 40, os.urandom(220)),
            )
            db.execute("COMMIT")
            cpu += time.thread_time() - t0
        stop.set()
        thread.join()
        wal = os.path.getsize(path + "-wal")
        db.close()
        return (
            f"{passes} pass(es): {cpu / count * 1e6:6.1f} µs CPU per insert, "
            f"log {wal / 1e6:5.1f} MB after {count} inserts"
        )


def main() -> None:
    rate = float(sys.argv[1]) if len(sys.argv) > 1 else 1000.0
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 6.0
    for passes in (1, 4, 1, 4):
        print(run(passes, rate, seconds))


if __name__ == "__main__":
    main()
