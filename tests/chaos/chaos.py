#!/usr/bin/env python3
"""Chaos on real daemons (issue 37, part 3; docs/performance.md, "Chaos on real daemons").

NODES daemons under a steady load — public messages and private messages from random nodes'
clients — meet a schedule of faults; then the record of every client and node is checked,
Jepsen-style:

- every public message a client was told was sent is, exactly once, in the history of every
  node that was up from its send to the end (and, reported apart, of the nodes restarted since);
- every private message a client was told was sent reaches its recipient exactly once;
- the running nodes form one correct ring; every node's nickname record is readable.

As root the daemons run in two network namespaces the harness makes (half in each, joined by
a veth pair; tests/chaos/harness.py), so the link faults touch only them; without root, with
--loopback, on the host's loopback (127.0.98.x) without the link faults or the full disk.

Faults (--faults, default all; --skip removes some), each on its own node(s), all within a
span of 40 s (SCHEDULE=short: 12 nodes, about 2 minutes in all, what CI runs) or 120 s
(SCHEDULE=long: 30 nodes, the issue's schedule):
  kill       kill -9 of 30 % of the nodes spread over the span, half restarted 5 s later
  stop       SIGSTOP of one node for 20 s, then SIGCONT (a gray failure)
  corrupt    a restart with chat.sqlite3 and records.sqlite truncated and zeroed
  diskfull   a node whose data directory is a small tmpfs that fills up, then is freed
  skew       two nodes whose wall clock is off from the start (libfaketime; SKEW="+180s,-40s")
  loss       5 % of the UDP packets dropped (iptables statistic) during the span
  delay      a quarter of the packets through a slow htb class (25 kbit/s a node, 40 packets):
             bursts delayed and reordered (this kernel has no netem; harness.Netns.delay)
  dup        1 % of the UDP packets duplicated (iptables TEE) during the span
  partition  the two namespaces cut apart (20 s short, 60 s long), then healed

Prints one JSON line of figures; exits 1 if an acknowledged message was lost or duplicated,
the ring is wrong at the end, a node's name is unreadable or a fault could not be applied.
Bounded by --limit seconds (default 175 short, 900 long); kills only its own pids, deletes its
namespaces. Skips (exit 0, or 1 under CHATD_TEST_STRICT=1) without root or a needed tool.
"""
import argparse, json, os, random, shutil, signal, subprocess, sys, threading, time, traceback

import harness
from harness import CHATD, FAST, Netns, Node, ctl, dump_lines, dump_logs, guard, is_root, one_ring, skip, wait

FAULTS = ("kill", "stop", "corrupt", "diskfull", "skew", "loss", "delay", "dup", "partition")
LINK = ("loss", "delay", "dup", "partition")


def options():
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--schedule", choices=("short", "long"), default=env("SCHEDULE", "short"))
    p.add_argument("--nodes", type=int, default=int(env("NODES", "0")) or None)
    p.add_argument("--seed", type=int, default=int(env("SEED", "1")))
    p.add_argument("--rate", type=float, default=float(env("RATE", "4")),
                   help="client sends a second (every 4th a private message)")
    p.add_argument("--faults", default=env("FAULTS", ",".join(FAULTS)),
                   help="comma-separated, from: " + ", ".join(FAULTS) + " ('none': load only)")
    p.add_argument("--skip", default=env("SKIP_FAULTS", ""), help="faults left out (comma-separated)")
    p.add_argument("--limit", type=float, default=float(env("LIMIT", "0")) or None,
                   help="seconds for the whole run (default 175 short, 900 long)")
    p.add_argument("--loopback", action="store_true", help="no namespaces (no root needed)")
    o = p.parse_args()
    o.nodes = o.nodes or (12 if o.schedule == "short" else 30)
    o.limit = o.limit or (175 if o.schedule == "short" else 900)
    chosen = [] if o.faults == "none" else [f for f in o.faults.split(",") if f]
    skipped = [f for f in o.skip.split(",") if f]
    for f in chosen + skipped:
        if f not in FAULTS:
            p.error(f"unknown fault {f!r} (known: {', '.join(FAULTS)})")
    o.faults = [f for f in FAULTS if f in chosen and f not in skipped]
    if o.nodes < 8:
        p.error("at least 8 nodes (3 killed, one frozen, corrupted, filled, two skewed)")
    return o


class Run:
    def __init__(self, o, root, ns):
        self.o, self.root, self.ns, self.t0 = o, root, ns, time.monotonic()
        self.config = harness.write_config(root, FAST)
        short = o.schedule == "short"
        self.span = 40 if short else 120
        self.nodes = []
        for i in range(o.nodes):
            side = i % 2
            if ns:
                addr, where = f"{ns.addrs[side]}:{7800 + i}", (ns, side)
            else:
                addr, where = f"127.0.98.{10 + i}:{7800 + i}", None
            self.nodes.append(Node(root, i, addr, nick=f"n{i}", ns=where))
        # Per node, the times it went down and came back (seconds since the start).
        self.down = {i: [] for i in range(o.nodes)}
        self.lock, self.halt = threading.Lock(), threading.Event()
        self.public, self.private, self.refused = [], [], 0
        self.notes, self.errors, self.results = [], [], {}

    def now(self):
        return time.monotonic() - self.t0

    def note(self, text):
        with self.lock:
            self.notes.append(f"{self.now():.0f}s {text}")

    def start(self, n):
        others = [m.addr for m in self.nodes if m.up and m is not n]
        bootstrap = None if n.i == 0 and not others else random.choice(others or [self.nodes[0].addr])
        n.start(CHATD, self.config, bootstrap)
        with self.lock:
            if self.down[n.i] and self.down[n.i][-1][1] is None:
                self.down[n.i][-1][1] = self.now()

    def went_down(self, n):
        with self.lock:
            self.down[n.i].append([self.now(), None])

    def up_since(self, i, t):
        """Node i was up from t to the end: every time it went down, it was back before t."""
        return all(d[1] is not None and d[1] <= t for d in self.down[i])

    def alive(self, n, limit=20):
        return wait(limit, lambda: ctl(n, "status", "--json") is not None)

    # ---- load ------------------------------------------------------------------------------
    def load(self):
        k = 0
        while not self.halt.is_set():
            k += 1
            up = [n for n in self.nodes if n.up]
            if not up:
                time.sleep(0.2)
                continue
            n = random.choice(up)
            t = self.now()
            if k % 4 == 0:
                to = random.choice([m for m in self.nodes if m is not n])
                text = f"chaos-dm-{k}"
                r = ctl(n, "dm", to.nick, text, timeout=15)
                with self.lock:
                    if r is not None:
                        self.private.append((text, to.i, t, n.i))
                    else:
                        self.refused += 1
            else:
                text = f"chaos-{k}"
                r = ctl(n, "send", text, timeout=15)
                with self.lock:
                    if r is not None:
                        self.public.append((text, n.i, t))
                    else:
                        self.refused += 1
            time.sleep(1 / self.o.rate)

    # ---- faults (each runs in a thread of its own, from `at` seconds into the span) --------
    def kill(self, victims):
        """kill -9 spread over the span; every second victim restarted 5 s later."""
        events = []
        for j, v in enumerate(victims):
            t = self.span * (0.1 + 0.8 * j / max(1, len(victims) - 1))
            events.append((t, "kill", v))
            if j % 2 == 0:
                events.append((t + 5, "start", v))
        t0 = time.monotonic()
        for t, what, v in sorted(events, key=lambda e: e[0]):
            time.sleep(max(0, t - (time.monotonic() - t0)))
            if what == "kill":
                self.note(f"kill -9 n{v.i}")
                v.send(signal.SIGKILL)
                v.proc.wait(10)
                v.proc = None
                self.went_down(v)
            else:
                self.note(f"restart n{v.i}")
                self.start(v)
        self.results["kill"] = {"killed": len(victims), "restarted": (len(victims) + 1) // 2}

    def stop(self, n, secs=20):
        self.note(f"SIGSTOP n{n.i} for {secs}s")
        n.send(signal.SIGSTOP)
        n.stopped = True
        self.went_down(n)
        time.sleep(secs)
        n.send(signal.SIGCONT)
        n.stopped = False
        with self.lock:
            self.down[n.i][-1][1] = self.now()

    def corrupt(self, n):
        """Stop n, truncate its history and record file, start it: a clear error naming the
        file, or a recovery — never a panic loop."""
        n.stop()
        self.went_down(n)
        data = os.path.join(n.dir, "data")
        for f in ("chat.sqlite3", "records.sqlite"):
            p = os.path.join(data, f)
            if os.path.exists(p):
                size = os.path.getsize(p)
                with open(p, "r+b") as fh:
                    fh.truncate(size // 2)
                    fh.seek(0)
                    fh.write(b"\0" * min(4096, size // 2))
        self.start(n)
        if self.alive(n) is not None:
            self.note(f"corrupt n{n.i}: started (recovered)")
            self.results["corrupt"] = {"started": True}
            return
        code = n.proc.poll()
        log = n.tail(2000)
        named = "chat.sqlite3" in log or "records.sqlite" in log
        self.note(f"corrupt n{n.i}: did not start (exit {code}; log names the file: {named})")
        # The operator's way out: the damaged files moved aside, the node starts afresh.
        n.stop()
        for f in ("chat.sqlite3", "chat.sqlite3-wal", "chat.sqlite3-shm", "records.sqlite",
                  "records.sqlite-wal", "records.sqlite-shm"):
            p = os.path.join(data, f)
            if os.path.exists(p):
                os.replace(p, p + ".damaged")
        self.start(n)
        self.alive(n)
        self.results["corrupt"] = {"started": False, "exit": code, "names_file": named,
                                   "panicked": "panicked" in log}

    def diskfull(self, n, secs):
        """n's data directory on an 8 MB tmpfs that fills up for `secs`, then is freed."""
        n.stop()
        self.went_down(n)
        data = os.path.join(n.dir, "data")
        keep = data + ".before"
        shutil.move(data, keep)
        os.makedirs(data)
        harness.sh("mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", data)
        harness.on_cleanup(lambda: harness.sh("umount", "-l", data, check=False))
        for f in os.listdir(keep):
            src = os.path.join(keep, f)
            if os.path.isfile(src) and os.path.getsize(src) < 3_000_000:
                shutil.copy2(src, os.path.join(data, f))
        self.start(n)
        self.alive(n)
        filler = os.path.join(data, "filler")
        try:
            with open(filler, "wb") as fh:
                while True:
                    fh.write(b"\0" * 65536)
        except OSError:
            pass
        self.note(f"disk full on n{n.i} for {secs}s")
        time.sleep(secs)
        survived = n.running
        os.remove(filler)
        if not survived:
            self.note(f"disk full: n{n.i} exited ({n.proc.poll() if n.proc else None})")
            self.start(n)
        else:
            with self.lock:
                self.down[n.i][-1][1] = self.now()
        self.results["diskfull"] = {"survived": survived}

    def link(self, fault):
        """loss, delay or dup on every link of both namespaces for the span."""
        ns = self.ns
        if fault == "loss":
            ns.loss(0.05, True)
        elif fault == "dup":
            ns.duplicate(0.01, True)
        else:
            # 25 kbit/s a node: 300 for the short schedule's 12, 750 for the long one's 30.
            ns.delay(True, rate=f"{25 * self.o.nodes}kbit")
        self.note(f"{fault} on")
        time.sleep(self.span)
        stats = ns.counters()
        if fault == "loss":
            ns.loss(0.05, False)
            self.results["loss"] = {"dropped_packets": stats["dropped"]}
        elif fault == "dup":
            ns.duplicate(0.01, False)
            self.results["dup"] = {"duplicated_packets": stats["teed"]}
        else:
            self.results["delay"] = ns.slow_stats()
            ns.delay(False)
        self.note(f"{fault} off")

    def partition(self, secs):
        time.sleep(self.span * 0.25)
        self.ns.cut(True)
        self.note(f"partition for {secs}s")
        time.sleep(secs)
        self.ns.cut(False)
        self.note("healed")
        merged = wait(60, lambda: one_ring([n for n in self.nodes if n.up]), every=0.5)
        self.results["partition"] = {"cut_s": secs, "one_ring_after_heal_s": merged and round(merged, 1)}

    def spawn(self, name, f, *args, at=0.0):
        def body():
            try:
                time.sleep(at)
                f(*args)
            except Exception:
                with self.lock:
                    self.errors.append(f"{name}: {traceback.format_exc(limit=3)}")

        t = threading.Thread(target=body, name=name, daemon=True)
        t.start()
        return t

    # ---- the record ------------------------------------------------------------------------
    def histories(self):
        out = {}
        for n in self.nodes:
            if not n.up:
                continue
            r = ctl(n, "tail", "-n", str(len(self.public) + 200), "--json", timeout=60)
            if r is None:
                return None
            texts = [json.loads(l).get("text", "") for l in r.stdout.splitlines() if l.strip()]
            out[n.i] = [t for t in texts if t.startswith("chaos-") and not t.startswith("chaos-dm-")]
        return out

    def inboxes(self):
        out = {}
        for n in self.nodes:
            if not n.up:
                continue
            r = ctl(n, "dms", "-n", "100000", "--json", timeout=60)
            if r is None:
                return None
            out[n.i] = [m.get("text", "") for m in map(json.loads, filter(str.strip, r.stdout.splitlines()))
                        if m.get("outgoing") is False]
        return out


def preflight(o):
    """What this machine lacks for the chosen faults: skip (or fail under strict) if it is all
    of them, otherwise run the rest and say which were left out."""
    for b in (CHATD, harness.CHATCTL):
        if not os.access(b, os.X_OK):
            sys.exit(f"no {b}: build first (cargo build -p chatd -p chatctl), or set CARGO_TARGET_DIR "
                     "or CHATD/CHATCTL")
    missing = {}
    if o.loopback:
        for f in LINK:
            missing[f] = "--loopback: no namespaces"
        if not is_root():
            missing["diskfull"] = "needs root to mount a tmpfs"
    else:
        if not is_root():
            skip("chaos.py needs root (network namespaces, iptables, tc, a tmpfs); --loopback runs "
                 "the process faults without it")
        if not shutil.which("ip"):
            skip("chaos.py needs iproute2 (ip) for its network namespaces")
        for f, tool in (("loss", "iptables"), ("dup", "iptables"), ("delay", "tc")):
            if not shutil.which(tool):
                missing[f] = f"{tool} is not installed"
    if not harness.LIBFAKETIME:
        missing["skew"] = "libfaketime is not installed"
    missing = {f: why for f, why in missing.items() if f in o.faults}
    if missing and (harness.strict() or len(missing) == len(o.faults)):
        skip("; ".join(f"{f}: {why}" for f, why in missing.items()))
    return missing


def main():
    o = options()
    missing = preflight(o)
    o.faults = [f for f in o.faults if f not in missing]
    guard(o.limit)
    random.seed(o.seed)
    root = harness.workdir("chatd-chaos-")
    ns = None if o.loopback else Netns("ch", 37)
    run = Run(o, root, ns)
    short = o.schedule == "short"
    figures = {"schedule": o.schedule, "nodes": o.nodes, "seed": o.seed, "faults": o.faults,
               "namespaces": ns is not None, "left_out": missing}
    rest = run.nodes[1:]
    random.shuffle(rest)
    kills = max(1, int(o.nodes * 0.3))
    victims, rest = rest[:kills], rest[kills:]
    frozen, corrupted, filled, skewed = rest[0], rest[1], rest[2], rest[3:5]
    if "skew" in o.faults:
        for n, s in zip(skewed, os.environ.get("SKEW", "+180s,-40s").split(",")):
            n.skew = s
        run.notes.append("clock skew: " + ", ".join(f"n{n.i} {n.skew}" for n in skewed if n.skew))
    for n in run.nodes:
        run.start(n)
        time.sleep(0.1)
    formed = wait(120, lambda: one_ring(run.nodes) or any(n.proc.poll() is not None for n in run.nodes))
    if formed is None or any(n.proc.poll() is not None for n in run.nodes):
        dump_logs(run.nodes, why="the ring did not form within 120 s, or a node exited")
        sys.exit("the ring did not form")
    figures["formed_s"] = round(formed, 1)
    loader = threading.Thread(target=run.load, daemon=True)
    loader.start()
    threads = []
    if "kill" in o.faults:
        threads.append(run.spawn("kill", run.kill, victims))
    if "stop" in o.faults:
        threads.append(run.spawn("stop", run.stop, frozen, 20, at=run.span * 0.3))
    if "corrupt" in o.faults:
        threads.append(run.spawn("corrupt", run.corrupt, corrupted, at=run.span * 0.5))
    if "diskfull" in o.faults:
        threads.append(run.spawn("diskfull", run.diskfull, filled, 15 if short else 30, at=run.span * 0.2))
    for f in ("loss", "delay", "dup"):
        if f in o.faults:
            threads.append(run.spawn(f, run.link, f))
    if "partition" in o.faults:
        threads.append(run.spawn("partition", run.partition, 20 if short else 60))
    time.sleep(run.span)
    for t in threads:
        t.join(max(1, o.limit - 60 - run.now()))
    time.sleep(10)
    run.halt.set()
    loader.join(30)
    figures["schedule_s"] = round(run.now(), 1)
    left = lambda: max(5, o.limit - 15 - run.now())
    # Convergence: the ring and every node's record.
    up = [n for n in run.nodes if n.up]
    ring = wait(min(90, left()), lambda: one_ring(up))
    figures["ring_after_s"] = ring and round(ring, 2)
    want_pub = {t for t, _, _ in run.public}
    got = {}

    def converged():
        h = run.histories()
        if h is None:
            return False
        got["h"] = h
        return all(want_pub <= set(h[n.i]) for n in up)

    took = wait(min(120, left()), converged, every=2)
    figures["public_converged_s"] = took and round(took, 1)
    h = got.get("h", {})
    must = {i: {t for t, _, ts in run.public if run.up_since(i, ts)} for i in h}
    lost = sum(len(must[i] - set(h[i])) for i in h)
    figures["public_sent_ok"] = len(run.public)
    figures["public_lost_on_always_up_nodes"] = lost
    figures["public_missing_on_restarted_nodes"] = sum(len(want_pub - set(h[i])) for i in h) - lost
    figures["public_duplicated"] = sum(len(h[i]) - len(set(h[i])) for i in h)
    figures["public_missing_detail"] = {f"n{i}": len(want_pub - set(h[i])) for i in h if want_pub - set(h[i])}
    figures["public_lost_detail"] = sorted(
        (t, f"from n{frm}", f"at {ts:.1f} s", f"missing on {sum(t not in h[i] for i in h if t in must[i])}")
        for t, frm, ts in run.public if any(t in must[i] and t not in h[i] for i in h))[:20]
    want_dm = {}
    for text, to, _, _ in run.private:
        want_dm.setdefault(to, set()).add(text)
    box = {}

    def delivered():
        b = run.inboxes()
        if b is None:
            return False
        box["b"] = b
        return all(want_dm.get(n.i, set()) <= set(b.get(n.i, [])) for n in up)

    took = wait(min(120, left()), delivered, every=2)
    figures["private_converged_s"] = took and round(took, 1)
    b = box.get("b", {})
    figures["private_sent_ok"] = len(run.private)
    figures["private_lost"] = sum(len(want_dm.get(i, set()) - set(b.get(i, []))) for i in b)
    sent_at = {text: (round(ts, 1), frm) for text, _, ts, frm in run.private}
    figures["private_lost_detail"] = sorted(
        (t, f"n{sent_at[t][1]} to n{i}", f"at {sent_at[t][0]} s")
        for i in b for t in want_dm.get(i, set()) - set(b.get(i, [])))[:20]
    figures["private_duplicated"] = sum(len(b[i]) - len(set(b[i])) for i in b)
    figures["refused"] = run.refused

    def readable(nick):
        r = ctl(up[0], "record", "get", "nick", nick, "--json")
        return r is not None and bool(json.loads(r.stdout).get("records"))

    unread = [n.nick for n in up if not readable(n.nick)]
    figures["names_unreadable"] = unread
    figures["events"] = run.notes
    figures["errors"] = run.errors
    figures.update(run.results)
    figures["total_s"] = round(run.now(), 1)
    print(json.dumps(figures), flush=True)
    bad = (figures["ring_after_s"] is None or lost or figures["public_duplicated"]
           or figures["private_lost"] or figures["private_duplicated"] or unread or run.errors)
    if bad:
        dump_logs([n for n in run.nodes if n.skew or not n.up], chars=1200, why="failed; some logs:")
        # Each lost private message's sender and recipient: their private-message lines.
        trail = sorted({i for text, to, _, frm in run.private
                        if text not in set(b.get(to, [])) for i in (frm, to)})
        for i in trail[:6]:
            dump_lines(run.nodes[i], ("chatd::dm", "private", "mailbox", "joined", "chatd is running"))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
