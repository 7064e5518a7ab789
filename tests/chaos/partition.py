#!/usr/bin/env python3
"""A partition of real daemons, timed (docs/performance.md, "A small partition").

NODES (12) chatd in two network namespaces (half each) joined by a veth pair; after the ring
forms, a blackhole route to the other side in each namespace cuts the link for CUT (60)
seconds; then it heals, and the script prints how long until every node's successor and
predecessor are right for one ring again. Needs root and iproute2. Kills only its own pids
and removes its namespaces. CHATD / CHATCTL name the binaries (default: the debug build in
$CARGO_TARGET_DIR or target/), CONF a config file's text, KEEP=1 keeps the data directories.
The e2e test tests/e2e/ring/partition.rs asserts the same bound in CI."""
import json, os, subprocess, sys, tempfile, time, signal, shutil
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(os.path.dirname(__file__), "../../target"))
BIN = os.environ.get("CHATD", os.path.join(TARGET, "debug/chatd"))
CTL = os.environ.get("CHATCTL", os.path.join(TARGET, "debug/chatctl"))
N = int(os.environ.get("NODES", "12")); CUT = float(os.environ.get("CUT", "60"))
CONF = os.environ.get("CONF", "")
tag = f"cp{os.getpid()%100000}"
ns = [f"{tag}a", f"{tag}b"]; veth = [f"{tag}va", f"{tag}vb"]; addr = ["10.213.77.1", "10.213.77.2"]
root = tempfile.mkdtemp(prefix="chatd-partition-")
procs = []
def sh(*a, check=True): return subprocess.run(a, check=check, capture_output=True, text=True)
def setup():
    for n in ns: sh("ip", "netns", "add", n)
    sh("ip", "link", "add", veth[0], "type", "veth", "peer", "name", veth[1])
    for n, v, a in zip(ns, veth, addr):
        sh("ip", "link", "set", v, "netns", n)
        sh("ip", "-n", n, "addr", "add", a + "/24", "dev", v)
        sh("ip", "-n", n, "link", "set", v, "up"); sh("ip", "-n", n, "link", "set", "lo", "up")
def cleanup():
    for p in procs:
        try: p.send_signal(signal.SIGKILL); p.wait(5)
        except Exception: pass
    for n in ns: sh("ip", "netns", "del", n, check=False)
def side(i): return 0 if i < N // 2 else 1
def start(i):
    d = f"{root}/n{i}"; os.makedirs(d, exist_ok=True)
    conf = f"{root}/c.toml"; open(conf, "w").write(CONF.replace("\\n", "\n"))
    args = ["ip", "netns", "exec", ns[side(i)], BIN, "--config", conf, "--listen", f"{addr[side(i)]}:{7000+i}",
            "--data-dir", f"{d}/data", "--control", f"{d}/c.sock", "--web", ""]
    if i > 0: args += ["--bootstrap", f"{addr[0]}:7000"]
    env = dict(os.environ, CHATD_IRC__LISTEN="", CHATD_LOG="info")
    procs.append(subprocess.Popen(args, stdout=open(f"{d}/log", "w"), stderr=subprocess.STDOUT, env=env))
def ring(i):
    r = subprocess.run([CTL, "--socket", f"{root}/n{i}/c.sock", "ring", "--json"], capture_output=True, text=True, timeout=10)
    return json.loads(r.stdout) if r.returncode == 0 else None
def correct(members):
    views = {i: ring(i) for i in members}
    if any(v is None for v in views.values()): return False
    ids = sorted(v["node_id"] for v in views.values())
    for v in views.values():
        me = ids.index(v["node_id"])
        succ = v["successors"][0]["node_id"] if v["successors"] else None
        pred = v["predecessor"]["node_id"] if v["predecessor"] else None
        if isinstance(v["successors"][0] if v["successors"] else None, str): succ = v["successors"][0]
        if isinstance(v["predecessor"], str): pred = v["predecessor"]
        if succ != ids[(me + 1) % len(ids)] or pred != ids[(me - 1) % len(ids)]: return False
    return True
def wait(members, limit):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if correct(members): return time.monotonic() - t0
        time.sleep(0.25)
    return None
def netem(on):
    # No netem in this kernel: a blackhole route to the other side drops every packet.
    for n, other in zip(ns, reversed(addr)):
        sh("ip", "-n", n, "route", "add" if on else "del", "blackhole", other + "/32")
try:
    setup()
    start(0); time.sleep(1)
    for i in range(1, N): start(i); time.sleep(0.2)
    t = wait(range(N), 120); print(json.dumps({"formed_s": t})); sys.stdout.flush()
    if t is None: raise SystemExit("no ring")
    time.sleep(5)
    netem(True); cut_at = time.monotonic()
    a = wait(range(N // 2), CUT); b = wait(range(N // 2, N), CUT)
    print(json.dumps({"side_a_s": a, "side_b_s": b})); sys.stdout.flush()
    rest = CUT - (time.monotonic() - cut_at)
    if rest > 0: time.sleep(rest)
    netem(False)
    m = wait(range(N), 180)
    print(json.dumps({"merged_after_heal_s": m, "cut_s": CUT, "nodes": N}))
finally:
    cleanup()
    if not os.environ.get("KEEP"): shutil.rmtree(root, ignore_errors=True)
    else: print("kept", root)
