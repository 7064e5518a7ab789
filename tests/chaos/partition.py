#!/usr/bin/env python3
"""A partition of real daemons, timed (docs/performance.md, "A small partition").

NODES (12) chatd in two network namespaces (half each) joined by a veth pair; after the ring
forms, a blackhole route to the other side in each namespace cuts the link for CUT (60)
seconds; then it heals, and the script prints how long until every node's successor and
predecessor are right for one ring again. Needs root and iproute2. Kills only its own pids
and removes its namespaces (tests/chaos/harness.py); LIMIT (600) seconds at most. CHATD /
CHATCTL name the binaries (default: the debug build in $CARGO_TARGET_DIR or target/), CONF a
config file's text, KEEP=1 keeps the data directories. The e2e test
tests/e2e/ring/partition.rs asserts the same bound in CI."""
import json, os, shutil, sys, time

from harness import CHATD, QUIET, Netns, Node, dump_logs, guard, is_root, one_ring, skip, wait, workdir, write_config

N = int(os.environ.get("NODES", "12"))
CUT = float(os.environ.get("CUT", "60"))
CONF = os.environ.get("CONF", "").replace("\\n", "\n") or QUIET


def main():
    if not is_root():
        skip("partition.py needs root to create network namespaces")
    if not shutil.which("ip"):
        skip("partition.py needs iproute2 (ip)")
    guard(float(os.environ.get("LIMIT", "600")))
    root = workdir("chatd-partition-")
    ns = Netns("cp", 77)
    config = write_config(root, CONF)
    side = lambda i: 0 if i < N // 2 else 1
    nodes = [Node(root, i, f"{ns.addrs[side(i)]}:{7000 + i}", ns=(ns, side(i))) for i in range(N)]
    nodes[0].start(CHATD, config)
    time.sleep(1)
    for n in nodes[1:]:
        n.start(CHATD, config, nodes[0].addr)
        time.sleep(0.2)
    t = wait(120, lambda: one_ring(nodes))
    print(json.dumps({"formed_s": t}), flush=True)
    if t is None:
        dump_logs(nodes, why="no ring")
        sys.exit("no ring")
    time.sleep(5)
    ns.cut(True)
    cut_at = time.monotonic()
    a = wait(CUT, lambda: one_ring(nodes[:N // 2]))
    b = wait(CUT, lambda: one_ring(nodes[N // 2:]))
    print(json.dumps({"side_a_s": a, "side_b_s": b}), flush=True)
    rest = CUT - (time.monotonic() - cut_at)
    if rest > 0:
        time.sleep(rest)
    ns.cut(False)
    m = wait(180, lambda: one_ring(nodes))
    print(json.dumps({"merged_after_heal_s": m, "cut_s": CUT, "nodes": N}), flush=True)


if __name__ == "__main__":
    main()
