#!/usr/bin/env python3
"""A rolling upgrade of real daemons under load (issue 37, part 4; docs/operations.md,
"Upgrading a ring").

NODES (6) daemons of the previous release (OLD_REV, default the newest `v*` tag older than
HEAD) form a ring on loopback; a steady load sends public messages from random nodes; the
nodes are then replaced one by one (SIGTERM, then the current build on the same address and
data directory), each step waiting until the ring is correct again. At the end every message a
client was told was sent must be in every node's history exactly once.

The old release is built in a git worktree (detached, removed afterwards) with a target
directory of its own seeded by hard links from $CARGO_TARGET_DIR (so only what changed is
compiled); OLD_CHATD and OLD_CHATCTL name ready binaries instead. NEW_CHATD / NEW_CHATCTL
default to the debug build of this tree. Prints one JSON line with the figures and exits 1 if
anything was lost or duplicated. Talks only to 127.0.97.x; kills only its own pids
(tests/chaos/harness.py); LIMIT (1800) seconds at most, the old build included.
"""
import json, os, random, subprocess, sys, tempfile, threading, time

from harness import REPO, TARGET, Node, ctl, dump_logs, guard, one_ring, wait, workdir, write_config

NODES = int(os.environ.get("NODES", "6"))
RATE = float(os.environ.get("RATE", "5"))  # messages per second


def git(*args):
    return subprocess.run(["git", "-C", REPO, *args], check=True, capture_output=True, text=True).stdout.strip()


def old_build():
    """The previous release's chatd and chatctl: built in a worktree unless given."""
    if os.environ.get("OLD_CHATD"):
        return os.environ["OLD_CHATD"], os.environ.get("OLD_CHATCTL", os.environ["OLD_CHATD"] + "ctl")
    rev = os.environ.get("OLD_REV")
    if not rev:
        head = git("rev-parse", "HEAD")
        tags = [t for t in git("tag", "--list", "v*", "--sort=-creatordate").split() if git("rev-list", "-n1", t) != head]
        if not tags:
            sys.exit("no earlier release tag (v*) to upgrade from; set OLD_REV")
        rev = tags[0]
    tree = tempfile.mkdtemp(prefix="chatd-old-")
    os.rmdir(tree)
    git("worktree", "add", "--detach", tree, rev)
    target = os.path.join(TARGET, "upgrade-old")
    try:
        if not os.path.isdir(os.path.join(target, "debug")) and os.path.isdir(os.path.join(TARGET, "debug")):
            os.makedirs(target, exist_ok=True)
            subprocess.run(["cp", "-al", os.path.join(TARGET, "debug"), target], check=True)
        lock = os.path.join(target, "debug", ".cargo-lock")
        if os.path.exists(lock):
            os.remove(lock)
        t0 = time.monotonic()
        subprocess.run(["cargo", "build", "-q", "-p", "chatd", "-p", "chatctl"], cwd=tree, check=True,
                       env=dict(os.environ, CARGO_TARGET_DIR=target))
        print(json.dumps({"old_rev": rev, "old_build_s": round(time.monotonic() - t0, 1)}), flush=True)
    finally:
        git("worktree", "remove", "--force", tree)
    return os.path.join(target, "debug/chatd"), os.path.join(target, "debug/chatctl")


def main():
    guard(float(os.environ.get("LIMIT", "1800")))
    old_chatd, old_ctl = old_build()
    new_chatd = os.environ.get("NEW_CHATD", os.path.join(TARGET, "debug/chatd"))
    new_ctl = os.environ.get("NEW_CHATCTL", os.path.join(TARGET, "debug/chatctl"))
    versions = [subprocess.run([b, "--version"], capture_output=True, text=True).stdout.strip() for b in (old_chatd, new_chatd)]
    root = workdir("chatd-upgrade-")
    config = write_config(root)
    nodes = [Node(root, i, f"127.0.97.{10 + i}:{7700 + i}") for i in range(NODES)]
    sent, refused, lock, stop = [], [0], threading.Lock(), threading.Event()
    figures = {"versions": versions, "nodes": NODES}
    for n in nodes:
        n.start(old_chatd, config, None if n.i == 0 else nodes[0].addr, build="old")
        wait(20, lambda: ctl(n, "status", "--json", chatctl=old_ctl) is not None)
    if wait(120, lambda: one_ring(nodes, chatctl=new_ctl)) is None:
        dump_logs(nodes)
        sys.exit("the old build's ring did not form within 120 s")

    def load():
        k = 0
        while not stop.is_set():
            k += 1
            n = random.choice([n for n in nodes if n.proc])
            text = f"upgrade-{k}"
            # The client of a node uses that node's build of chatctl.
            r = ctl(n, "send", "--json", text, chatctl=old_ctl if n.build == "old" else new_ctl)
            with lock:
                if r is not None:
                    sent.append(text)
                else:
                    refused[0] += 1
            time.sleep(1 / RATE)

    # A daemon thread: an early exit does not wait for it (cleanup kills the nodes).
    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    time.sleep(3)
    steps = []
    for n in nodes:
        n.stop()
        n.start(new_chatd, config, nodes[(n.i + 1) % NODES].addr, build="new")
        took = wait(60, lambda: one_ring(nodes, chatctl=new_ctl))
        if took is None:
            sys.exit(f"no correct ring after replacing node {n.i}")
        steps.append(round(took, 2))
        time.sleep(2)
    time.sleep(3)
    stop.set()
    loader.join()
    figures.update({"sent_ok": len(sent), "refused": refused[0], "ring_after_each_step_s": steps})

    def histories():
        out = []
        for n in nodes:
            r = ctl(n, "tail", "-n", str(len(sent) + 100), "--json", chatctl=new_ctl, timeout=30)
            if r is None:
                return None
            texts = [json.loads(l).get("text", "") for l in r.stdout.splitlines() if l.strip()]
            out.append([t for t in texts if t.startswith("upgrade-")])
        return out

    want = set(sent)
    result = {}

    def complete():
        h = histories()
        if h is None:
            return False
        result["h"] = h
        return all(want <= set(t) for t in h)

    took = wait(90, complete)
    h = result.get("h") or [[] for _ in nodes]
    figures["converged_s"] = round(took, 2) if took is not None else None
    figures["missing"] = [len(want - set(t)) for t in h]
    figures["duplicated"] = [len(t) - len(set(t)) for t in h]
    print(json.dumps(figures), flush=True)
    ok = took is not None and not any(figures["duplicated"])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
