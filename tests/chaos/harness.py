"""What the chaos scripts share: real chatd processes on loopback (or in namespaces the
caller made), their control sockets, and the checks of a ring seen from outside."""
import json, os, signal, subprocess, time

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
CHATD = os.environ.get("CHATD", os.path.join(TARGET, "debug/chatd"))
CHATCTL = os.environ.get("CHATCTL", os.path.join(TARGET, "debug/chatctl"))
# Fast ring timers, no web view or IRC door (many daemons share one loopback).
FAST = ("[ring]\nstabilize_ms = 150\nfix_fingers_ms = 150\ncheck_predecessor_ms = 300\n"
        "rpc_timeout_ms = 300\n[web]\nlisten = \"\"\n[irc]\nlisten = \"\"\n")


class Node:
    """One daemon: its address, data directory and control socket survive restarts."""

    def __init__(self, root, i, addr, nick=None):
        self.i, self.addr, self.nick = i, addr, nick
        self.dir = os.path.join(root, f"n{i}")
        self.sock = os.path.join(self.dir, "c.sock")
        self.proc, self.build, self.stopped = None, None, False

    def start(self, chatd, config, bootstrap=None, build="", wrap=(), env=None):
        os.makedirs(self.dir, exist_ok=True)
        args = [*wrap, chatd, "--config", config, "--listen", self.addr, "--data-dir",
                os.path.join(self.dir, "data"), "--control", self.sock]
        if self.nick:
            args += ["--nick", self.nick]
        if bootstrap:
            args += ["--bootstrap", bootstrap]
        log = open(os.path.join(self.dir, f"log{('-' + build) if build else ''}"), "a")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, CHATD_LOG="info", **(env or {})))
        self.build, self.stopped = build, False

    @property
    def up(self):
        return self.proc is not None and not self.stopped

    def send(self, sig):
        if self.proc:
            self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, wait=15):
        if self.proc:
            if self.stopped:
                self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(sig)
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None


def ctl(node, *args, chatctl=CHATCTL, timeout=10):
    """`chatctl --socket … ARGS`; the completed process, or None if it failed."""
    try:
        r = subprocess.run([chatctl, "--socket", node.sock, *args], capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    return r if r.returncode == 0 else None


def one_ring(nodes, chatctl=CHATCTL):
    """Every node's successor and predecessor are right for one ring of exactly `nodes`."""
    views = []
    for n in nodes:
        r = ctl(n, "ring", "--json", chatctl=chatctl)
        if r is None:
            return False
        v = json.loads(r.stdout)
        succ = (v.get("successors") or [{}])[0].get("node_id")
        pred = (v.get("predecessor") or {}).get("node_id")
        views.append((v["node_id"], succ, pred))
    ids = sorted(v[0] for v in views)
    n = len(ids)
    return all(s == ids[(ids.index(me) + 1) % n] and p == ids[(ids.index(me) - 1) % n]
               for me, s, p in views)


def wait(limit, f, every=0.25):
    """Seconds until `f()` held, or None after `limit` seconds."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if f():
            return time.monotonic() - t0
        time.sleep(every)
    return None
