"""What the chaos scripts share (chaos.py, partition.py, upgrade.py): real chatd processes on
loopback or in network namespaces the harness makes itself, their control sockets, the faults
of a link (a cut, loss, delay and reordering, duplication) and of a clock (libfaketime), the
checks of a ring seen from outside, and one cleanup that always runs.

Everything a script starts is registered here: `cleanup()` (run at exit, on SIGTERM/SIGINT/
SIGHUP, and when the time limit of `guard()` expires) kills exactly those pids, runs the
registered undo steps (namespaces deleted, tmpfs unmounted, worktrees removed) and never
raises. Nothing else on the machine is touched."""
import atexit, glob, json, os, signal, subprocess, sys, tempfile, threading, time

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
CHATD = os.environ.get("CHATD", os.path.join(TARGET, "debug/chatd"))
CHATCTL = os.environ.get("CHATCTL", os.path.join(TARGET, "debug/chatctl"))
# Fast ring timers, no web view or IRC door (many daemons share one loopback).
FAST = ("[ring]\nstabilize_ms = 150\nfix_fingers_ms = 150\ncheck_predecessor_ms = 300\n"
        "rpc_timeout_ms = 300\n[web]\nlisten = \"\"\n[irc]\nlisten = \"\"\n")
# Default timers, no web view or IRC door.
QUIET = "[web]\nlisten = \"\"\n[irc]\nlisten = \"\"\n"
# Debian's libfaketime (package libfaketime), the multi-threaded variant chatd needs.
LIBFAKETIME = next(iter(sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))), None)


# ---- skipping -----------------------------------------------------------------------------
def strict():
    return os.environ.get("CHATD_TEST_STRICT") == "1"


def skip(reason):
    """A missing tool or permission: skip with the reason, or fail under CHATD_TEST_STRICT=1."""
    print(f"skipped: {reason}" + (" (CHATD_TEST_STRICT=1: failing)" if strict() else ""), flush=True)
    sys.exit(1 if strict() else 0)


def is_root():
    return os.geteuid() == 0


# ---- what the harness started, and its undoing ----------------------------------------------
_procs, _undo, _lock = [], [], threading.Lock()
_cleaned = threading.Event()


def track(proc):
    """Registers a process for `cleanup`; one started by a thread after cleanup is killed."""
    with _lock:
        _procs.append(proc)
        late = _cleaned.is_set()
    if late:
        proc.kill()
        proc.wait(5)
    return proc


def on_cleanup(f):
    """Registers an undo step (run last-registered first by `cleanup`; at once if cleanup has
    already run, e.g. a fault's thread that mounted something as the time limit expired)."""
    with _lock:
        late = _cleaned.is_set()
        if not late:
            _undo.append(f)
    if late:
        f()


def cleanup():
    """Kills every process this harness started (only those pids; a stopped one is continued
    first so it dies), then runs the undo steps. Bounded: about 5 s a process at worst."""
    with _lock:
        if _cleaned.is_set():
            return
        _cleaned.set()
        procs, undo = list(_procs), list(reversed(_undo))
    for p in procs:
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGCONT)
                p.kill()
            except OSError:
                pass
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            print(f"cleanup: pid {p.pid} did not die", file=sys.stderr)
    for f in undo:
        try:
            f()
        except Exception as e:  # an undo step failing must not stop the others
            print(f"cleanup: {e}", file=sys.stderr)


class TimeLimit(SystemExit):
    pass


def guard(limit):
    """The whole script is bounded by `limit` seconds; cleanup runs at exit and on signals."""
    atexit.register(cleanup)

    def expired(*_):
        raise TimeLimit(f"time limit of {limit} s reached")

    def stopped(sig, _):
        raise SystemExit(f"stopped by signal {sig}")

    signal.signal(signal.SIGALRM, expired)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, stopped)
    signal.alarm(int(limit))


def sh(*args, check=True, timeout=30):
    """A setup command (ip, iptables, tc, mount); its output is captured."""
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r


def workdir(prefix):
    """A temporary directory removed at cleanup unless KEEP is set."""
    root = tempfile.mkdtemp(prefix=prefix)

    def remove():
        if os.environ.get("KEEP"):
            print("kept", root)
        else:
            subprocess.run(["rm", "-rf", root], timeout=60)

    on_cleanup(remove)
    return root


def write_config(root, text=FAST, name="chatd.toml"):
    path = os.path.join(root, name)
    with open(path, "w") as fh:
        fh.write(text)
    return path


# ---- network namespaces -------------------------------------------------------------------
class Netns:
    """Two namespaces joined by a veth pair (10.213.SUBNET.1 in the first, .2 in the second),
    loopback up in each: a private network whose faults touch nothing of the host's. Deleted
    at cleanup (after the processes in them are killed)."""

    def __init__(self, tag, subnet):
        pid = os.getpid()
        self.names = [f"chatd-{pid}-{tag}-a", f"chatd-{pid}-{tag}-b"]
        self.addrs = [f"10.213.{subnet}.1", f"10.213.{subnet}.2"]
        # Interface names are at most 15 bytes.
        self.veth = [f"cv{pid % 100000}{tag}a", f"cv{pid % 100000}{tag}b"]
        self.cut_on, self.shaped = False, False
        on_cleanup(self.delete)
        for n in self.names:
            sh("ip", "netns", "add", n)
        sh("ip", "link", "add", self.veth[0], "type", "veth", "peer", "name", self.veth[1])
        for n, v, a in zip(self.names, self.veth, self.addrs):
            sh("ip", "link", "set", v, "netns", n)
            sh("ip", "-n", n, "addr", "add", a + "/24", "dev", v)
            sh("ip", "-n", n, "link", "set", v, "up")
            sh("ip", "-n", n, "link", "set", "lo", "up")

    def delete(self):
        for n in self.names:
            sh("ip", "netns", "del", n, check=False)
        sh("ip", "link", "del", self.veth[0], check=False)

    def exec(self, side):
        """The prefix running a program in namespace `side` (`ip netns exec` execs it: the
        child's pid is the program's)."""
        return ("ip", "netns", "exec", self.names[side])

    def run(self, side, *args, check=True):
        return sh(*self.exec(side), *args, check=check)

    def cut(self, on):
        """Cuts the link (a blackhole route to the other side in each namespace) or heals it."""
        for i, n in enumerate(self.names):
            sh("ip", "-n", n, "route", "add" if on else "del", "blackhole", self.addrs[1 - i] + "/32")
        self.cut_on = on

    def loss(self, p, on):
        """Drops a fraction `p` of the UDP packets every namespace receives (iptables'
        statistic match: loopback and the veth alike)."""
        for side in (0, 1):
            self.run(side, "iptables", "-A" if on else "-D", "INPUT", "-p", "udp", "-m", "statistic",
                     "--mode", "random", "--probability", str(p), "-j", "DROP")

    def duplicate(self, p, on):
        """Sends a copy of a fraction `p` of the UDP packets (iptables' TEE target: a clone
        routed to the same destination)."""
        for side in (0, 1):
            for dst, gw in ((self.addrs[side], "127.0.0.1"), (self.addrs[1 - side], self.addrs[1 - side])):
                self.run(side, "iptables", "-t", "mangle", "-A" if on else "-D", "OUTPUT", "-p", "udp",
                         "-d", dst, "-m", "statistic", "--mode", "random", "--probability", str(p),
                         "-j", "TEE", "--gateway", gw)

    def counters(self):
        """Packets dropped (loss) and duplicated (dup) so far by the rules above, both sides."""
        out = {"dropped": 0, "teed": 0}
        for side in (0, 1):
            for table, chain, target, key in (("filter", "INPUT", "DROP", "dropped"),
                                              ("mangle", "OUTPUT", "TEE", "teed")):
                r = self.run(side, "iptables", "-t", table, "-L", chain, "-v", "-x", "-n", check=False)
                for line in r.stdout.splitlines()[2:]:
                    w = line.split()
                    if len(w) > 2 and w[2] == target and w[0].isdigit():
                        out[key] += int(w[0])
        return out

    # The kernel here has no sch_netem (nor tbf): no fixed delay can be added. What it has is
    # htb and the u32 classifier: a quarter of the UDP packets of 64 bytes or more (chosen by
    # two bits of a ciphertext byte, so at random) go through a slow class (SLOW_RATE, a queue
    # of SLOW_LIMIT packets) and wait in its queue whenever they come faster than its rate,
    # while the others pass: bursts are delayed (a 1,200-byte packet takes 32 ms at 300 kbit/s,
    # a full queue of them 1.3 s) and reordered, and a full queue drops. A lone packet after a
    # quiet spell passes at once (htb's burst), so this is congestion, not netem's fixed delay.
    SLOW_RATE = os.environ.get("SLOW_RATE")
    SLOW_LIMIT = int(os.environ.get("SLOW_LIMIT", "40"))

    def delay(self, on, rate="300kbit"):
        """Turns the slow class on (at `rate`, or $SLOW_RATE) or off on every link."""
        rate = self.SLOW_RATE or rate
        for side in (0, 1):
            for dev in ("lo", self.veth[side]):
                if not on:
                    self.run(side, "tc", "qdisc", "del", "dev", dev, "root", check=False)
                    continue
                tc = ("tc",)
                self.run(side, *tc, "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "20")
                self.run(side, *tc, "class", "add", "dev", dev, "parent", "1:", "classid", "1:10", "htb",
                         "rate", rate, "burst", "1600", "cburst", "1600")
                self.run(side, *tc, "class", "add", "dev", dev, "parent", "1:", "classid", "1:20", "htb",
                         "rate", "10gbit")
                self.run(side, *tc, "qdisc", "add", "dev", dev, "parent", "1:10", "handle", "10:", "pfifo",
                         "limit", str(self.SLOW_LIMIT))
                self.run(side, *tc, "filter", "add", "dev", dev, "parent", "1:", "protocol", "ip", "prio", "1",
                         "u32", "match", "ip", "protocol", "17", "0xff", "match", "u8", "0", "0x03", "at", "60",
                         "flowid", "1:10")
        self.shaped = on

    def slow_stats(self):
        """Packets through the slow class, the times one had to wait for the class's rate
        (htb's overlimits: delayed) and the packets its full queue dropped, over the links."""
        sent = dropped = waited = 0
        for side in (0, 1):
            for dev in ("lo", self.veth[side]):
                out = self.run(side, "tc", "-s", "class", "show", "dev", dev, "classid", "1:10", check=False).stdout
                words = out.split()
                if "Sent" in words:
                    sent += int(words[words.index("Sent") + 3])
                if "(dropped" in words:
                    dropped += int(words[words.index("(dropped") + 1].rstrip(","))
                if "overlimits" in words:
                    waited += int(words[words.index("overlimits") + 1])
        return {"slow_packets": sent, "slow_waited": waited, "slow_dropped": dropped}


# ---- daemons ------------------------------------------------------------------------------
class Node:
    """One daemon: its address, data directory, control socket, namespace and clock survive
    restarts. `ns` is a (Netns, side) pair or None (the host's loopback); `skew` a libfaketime
    offset such as "+90s" or None."""

    def __init__(self, root, i, addr, nick=None, ns=None, skew=None):
        self.i, self.addr, self.nick, self.ns, self.skew = i, addr, nick, ns, skew
        self.dir = os.path.join(root, f"n{i}")
        self.sock = os.path.join(self.dir, "c.sock")
        self.proc, self.build, self.stopped = None, None, False

    @property
    def log(self):
        return os.path.join(self.dir, f"log{('-' + self.build) if self.build else ''}")

    def start(self, chatd, config, bootstrap=None, build="", wrap=(), env_extra=None):
        os.makedirs(self.dir, exist_ok=True)
        if self.ns:
            wrap = (*self.ns[0].exec(self.ns[1]), *wrap)
        # chatd reads every CHATD_* variable as configuration (and refuses unknown ones, such as
        # CI's CHATD_TEST_STRICT): none of the caller's reach it, only those given here.
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATD_")}
        # The private-message service at debug: a lost private message's trail (its text is
        # never logged) is what a failed run prints.
        env.update(CHATD_LOG="info,chatd::dm=debug", **(env_extra or {}))
        if self.skew:
            if not LIBFAKETIME:
                raise RuntimeError("libfaketime is not installed")
            # The wall clock only: a skewed NTP clock leaves CLOCK_MONOTONIC alone.
            env.update(LD_PRELOAD=LIBFAKETIME, FAKETIME=self.skew, DONT_FAKE_MONOTONIC="1")
        args = [*wrap, chatd, "--config", config, "--listen", self.addr, "--data-dir",
                os.path.join(self.dir, "data"), "--control", self.sock]
        if self.nick:
            args += ["--nick", self.nick]
        if bootstrap:
            args += ["--bootstrap", bootstrap]
        self.build, self.stopped = build, False
        with open(self.log, "a") as log:
            self.proc = track(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL, env=env))

    @property
    def up(self):
        return self.proc is not None and not self.stopped

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send(self, sig):
        if self.proc:
            self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, wait=15):
        if self.proc:
            if self.stopped:
                self.proc.send_signal(signal.SIGCONT)
                self.stopped = False
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None

    def tail(self, chars=1500):
        try:
            with open(self.log, errors="replace") as fh:
                return fh.read()[-chars:]
        except OSError:
            return "(no log)"


def dump_lines(n, words, most=80):
    """The last `most` lines of n's log (every start of it) that name one of `words`, on
    stderr: a lost message's trail."""
    try:
        with open(n.log, errors="replace") as fh:
            lines = [l.rstrip() for l in fh if any(w in l for w in words)]
    except OSError:
        lines = ["(no log)"]
    print(f"--- n{n.i}, lines naming {', '.join(words)} (last {most}):", file=sys.stderr)
    for l in lines[-most:]:
        print(l[:400], file=sys.stderr)


def dump_logs(nodes, chars=1500, why=""):
    """Each node's last log lines on stderr (after a failure)."""
    if why:
        print(why, file=sys.stderr)
    for n in nodes:
        state = "running" if n.running else "exited" if n.proc else "down"
        print(f"--- n{n.i} ({state}):\n{n.tail(chars)}", file=sys.stderr)


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
