//! A cluster of real chatd processes on distinct 127.0.N.x addresses, with short ring timers,
//! and checks of the ring they form through `chatctl ring --json`; `chatctl` against a member
//! (plain, must-succeed, JSON) and the `hello` a member's web view sends a page.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite;

use crate::support::{Daemon, Sandbox, skip_or_fail};

/// Ring timers for tests (the `[ring]` section); the defaults would make the suite slow.
pub const CONFIG: &str = "[ring]\nstabilize_ms = 150\nfix_fingers_ms = 150\ncheck_predecessor_ms = 300\nrpc_timeout_ms = 300\n";

pub use crate::support::poll;

/// One node of the cluster.
pub struct Member {
    pub daemon: Option<Daemon>,
    pub dir: PathBuf,
    pub listen: SocketAddr,
    pub id: String,
    /// Extra environment (`CHATD_*` settings of this node only), kept for restarts.
    pub env: Vec<(String, String)>,
}

/// The cluster.
pub struct Cluster {
    /// First, so that the daemons stop (and their logs are kept, under
    /// `CHATD_TEST_KEEP_LOGS`) before the sandbox goes: fields drop in this order.
    pub members: Vec<Member>,
    pub sandbox: Sandbox,
    pub net: u8,
}

impl Cluster {
    /// An empty cluster whose nodes listen on 127.0.`net`.x.
    pub fn new(net: u8) -> Cluster {
        let sandbox = Sandbox::new();
        sandbox.write_config(CONFIG);
        Cluster {
            sandbox,
            net,
            members: Vec::new(),
        }
    }

    fn socket(dir: &std::path::Path) -> PathBuf {
        dir.join("run/control.sock")
    }

    fn command(
        &self,
        dir: &std::path::Path,
        listen: SocketAddr,
        bootstrap: &[SocketAddr],
        env: &[(String, String)],
    ) -> Command {
        let mut cmd = self.sandbox.chatd_bare();
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        cmd.arg("--config")
            .arg(self.sandbox.config())
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--control")
            .arg(Self::socket(dir));
        for b in bootstrap {
            cmd.arg("--bootstrap").arg(b.to_string());
        }
        cmd
    }

    /// Starts a new node (port chosen by the system) joining through `bootstrap`.
    pub fn add(&mut self, bootstrap: &[SocketAddr]) -> usize {
        self.add_with_env(bootstrap, &[])
    }

    /// [`Cluster::add`] with extra environment for this node, e.g. a `CHATD_*` setting.
    pub fn add_with_env(&mut self, bootstrap: &[SocketAddr], env: &[(&str, &str)]) -> usize {
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let i = self.members.len();
        let dir = self.sandbox.path().join(format!("n{i}"));
        let ip = format!("127.0.{}.{}", self.net, 10 + i);
        let listen: SocketAddr = format!("{ip}:0").parse().expect("addr");
        self.start_at(dir, listen, bootstrap, env)
    }

    /// Starts a node with data in `dir` on exactly `listen`.
    pub fn start_at(
        &mut self,
        dir: PathBuf,
        listen: SocketAddr,
        bootstrap: &[SocketAddr],
        env: Vec<(String, String)>,
    ) -> usize {
        let cmd = self.command(&dir, listen, bootstrap, &env);
        let daemon = self.sandbox.start(cmd, &Self::socket(&dir));
        let status = self.json(&dir, &["status", "--json"]).expect("status");
        let member = Member {
            daemon: Some(daemon),
            listen: status["listen_addr"]
                .as_str()
                .expect("addr")
                .parse()
                .expect("addr"),
            id: status["node_id"].as_str().expect("id").to_owned(),
            dir,
            env,
        };
        self.members.push(member);
        self.members.len() - 1
    }

    /// A ring of nodes whose users hold `names` (node 0 founds it, the others join through
    /// it), returned once the ring is correct and every node lists every name, within
    /// `deadline` each.
    pub fn named(net: u8, names: &[&str], deadline: Duration) -> Cluster {
        Cluster::named_with_env(net, names, deadline, |_| Vec::new())
    }

    /// [`Cluster::named`] with extra environment for node `i` from `env(i)`.
    pub fn named_with_env(
        net: u8,
        names: &[&str],
        deadline: Duration,
        env: impl Fn(usize) -> Vec<(String, String)>,
    ) -> Cluster {
        let mut c = Cluster::new(net);
        let with = |i: usize, n: &str| {
            let mut e = env(i);
            e.push(("CHATD_NODE__NICKNAME".into(), n.to_owned()));
            e
        };
        let first = with(0, names[0]);
        let first: Vec<(&str, &str)> = first
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        c.add_with_env(&[], &first);
        let boot = [c.addr(0)];
        for (i, n) in names.iter().enumerate().skip(1) {
            let e = with(i, n);
            let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            c.add_with_env(&boot, &e);
        }
        c.await_ring(deadline);
        poll(deadline, Duration::from_millis(300), || {
            c.live()
                .into_iter()
                .all(|i| {
                    let v = c.json(&c.members[i].dir, &["users", "--json"]);
                    v.is_some_and(|v| {
                        names.iter().all(|n| {
                            v["users"]
                                .as_array()
                                .is_some_and(|u| u.iter().any(|x| x["nickname"] == *n))
                        })
                    })
                })
                .then_some(())
        })
        .expect("every node lists every name");
        c
    }

    /// Restarts member `i` (stopped) on its old address with its old data directory.
    pub fn restart(&mut self, i: usize, bootstrap: &[SocketAddr]) -> String {
        let m = &self.members[i];
        let cmd = self.command(&m.dir, m.listen, bootstrap, &m.env);
        let daemon = self.sandbox.start(cmd, &Self::socket(&m.dir));
        let status = self
            .json(&m.dir.clone(), &["status", "--json"])
            .expect("status");
        self.members[i].daemon = Some(daemon);
        status["node_id"].as_str().expect("id").to_owned()
    }

    /// Texts of the private messages member `i` received (`chatctl dms --json`, newest 200).
    pub fn received(&self, i: usize) -> Vec<String> {
        let out = self.sandbox.chatctl_at(
            &Self::socket(&self.members[i].dir),
            &["dms", "-n", "200", "--json"],
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| m["outgoing"] == false)
            .map(|m| m["text"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    /// `chatctl ARGS` against member `i`'s control socket, as it ended.
    pub fn ctl(&self, i: usize, args: &[&str]) -> std::process::Output {
        self.sandbox
            .chatctl_at(&Self::socket(&self.members[i].dir), args)
    }

    /// `chatctl ARGS` against member `i`'s control socket, which must succeed: its output.
    pub fn ctl_ok(&self, i: usize, args: &[&str]) -> String {
        let out = self.ctl(i, args);
        assert!(
            out.status.success(),
            "chatctl {} on node {i} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `chatctl ARGS` (a `--json` one) on member `i`, which must succeed: its last JSON line.
    pub fn ctl_json(&self, i: usize, args: &[&str]) -> serde_json::Value {
        self.ctl_ok(i, args)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .next_back()
            .unwrap_or_else(|| panic!("chatctl {} on node {i}: no JSON", args.join(" ")))
    }

    /// `chatctl send --json --file PATH [CAPTION]` on member `i`: the message as sent (the
    /// send must succeed).
    pub fn send_file(&self, i: usize, path: &std::path::Path, caption: &str) -> serde_json::Value {
        let path = path.to_str().expect("a UTF-8 path");
        let mut args = vec!["send", "--json", "--file", path];
        if !caption.is_empty() {
            args.push(caption);
        }
        self.ctl_json(i, &args)
    }

    /// `chatctl dm --json TO --file PATH [TEXT…]` on member `i`: the private message as sent
    /// (the send must succeed).
    pub fn dm_file(
        &self,
        i: usize,
        to: &str,
        path: &std::path::Path,
        text: &[&str],
    ) -> serde_json::Value {
        let path = path.to_str().expect("a UTF-8 path");
        let mut args = vec!["dm", "--json", to, "--file", path];
        args.extend_from_slice(text);
        self.ctl_json(i, &args)
    }

    /// `chatctl ARGS --json` against the node in `dir`, parsed; `None` if it failed.
    pub fn json(&self, dir: &std::path::Path, args: &[&str]) -> Option<serde_json::Value> {
        let out = self.sandbox.chatctl_at(&Self::socket(dir), args);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// `chatctl status --json` of member `i`.
    pub fn status(&self, i: usize) -> Option<serde_json::Value> {
        self.json(&self.members[i].dir, &["status", "--json"])
    }

    /// Kills member `i` with SIGKILL and waits for it to exit.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut d) = self.members[i].daemon.take() {
            d.signal(rustix::process::Signal::KILL);
            d.wait_exit(Duration::from_secs(10)).expect("killed");
        }
    }

    /// Indices of running members.
    pub fn live(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|&i| self.members[i].daemon.is_some())
            .collect()
    }

    /// `None` if every live node's successor and predecessor are its neighbours in NodeId
    /// order; otherwise a description of the first mismatch.
    pub fn ring_error(&self) -> Option<String> {
        let live = self.live();
        let mut ids: Vec<&str> = live.iter().map(|&i| self.members[i].id.as_str()).collect();
        ids.sort_unstable();
        for &i in &live {
            let m = &self.members[i];
            let Some(ring) = self.json(&m.dir, &["ring", "--json"]) else {
                return Some(format!("node {i} did not answer"));
            };
            let pos = ids.iter().position(|id| *id == m.id).expect("listed");
            let want_succ = ids[(pos + 1) % ids.len()];
            let want_pred = ids[(pos + ids.len() - 1) % ids.len()];
            let succ = ring["successors"][0]["node_id"].as_str().unwrap_or("");
            let pred = ring["predecessor"]["node_id"].as_str().unwrap_or("");
            if succ != want_succ || pred != want_pred {
                return Some(format!(
                    "node {i} ({}): successor {} want {}, predecessor {} want {}",
                    &m.id[..8],
                    short(succ),
                    &want_succ[..8],
                    short(pred),
                    &want_pred[..8]
                ));
            }
        }
        None
    }

    /// Waits until the ring is correct; panics with the last mismatch otherwise.
    pub fn await_ring(&self, deadline: Duration) {
        let mut last = None;
        let ok = poll(deadline, Duration::from_millis(250), || {
            last = self.ring_error();
            last.is_none().then_some(())
        });
        assert!(
            ok.is_some(),
            "ring not correct within {deadline:?}: {last:?}"
        );
    }

    /// The address of member `i`.
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.members[i].listen
    }

    /// A drop counter of member `i`.
    pub fn dropped(&self, i: usize, reason: &str) -> u64 {
        self.status(i)
            .and_then(|s| s["dropped"][reason].as_u64())
            .unwrap_or(0)
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or("(none)")
}

/// Whether any file under `dir` contains `needle`: the path of the first that does.
pub fn found_in(dir: &std::path::Path, needle: &[u8]) -> Option<String> {
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p)
                && bytes.windows(needle.len()).any(|w| w == needle)
            {
                return Some(p.display().to_string());
            }
        }
    }
    None
}

/// A small tmpfs mounted at a directory, unmounted (lazily) on drop: a disk that fills up,
/// for the tests of full disks (a node's data directory, a download's output). Needs root.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Whether tmpfs can be mounted here (root); otherwise the test `what` is skipped with
    /// the reason printed (failed under `CHATD_TEST_STRICT=1`). Call it before the cluster
    /// forms, so a skipped test costs nothing.
    pub fn available(what: &str) -> bool {
        let root = rustix::process::geteuid().is_root();
        if !root {
            skip_or_fail(&format!("{what}: needs root to mount a tmpfs"));
        }
        root
    }

    /// Mounts a tmpfs of `size` (mount's `size=`, e.g. `8m`) at `dir` (created), or skips
    /// the test `what` (as [`Tmpfs::available`]) when it cannot be mounted.
    pub fn mount(dir: &std::path::Path, size: &str, what: &str) -> Option<Tmpfs> {
        if !Tmpfs::available(what) {
            return None;
        }
        std::fs::create_dir_all(dir).expect("the mount point");
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status();
        if !mounted.is_ok_and(|s| s.success()) {
            skip_or_fail(&format!("{what}: cannot mount a tmpfs"));
            return None;
        }
        Some(Tmpfs(dir.to_owned()))
    }

    /// Where it is mounted.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The JSON lines of a `chatctl … --json` output (other lines skipped).
pub fn json_lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The `hello` frame the web view on `web` sends a page that authenticates with `auth` (a
/// `chatctl web` ticket or a session) over `/ws`; each frame waited for at most 10 s.
pub fn ws_hello(web: SocketAddr, auth: serde_json::Value) -> serde_json::Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{web}/ws"))
            .await
            .expect("ws");
        ws.send(tungstenite::Message::Text(auth.to_string().into()))
            .await
            .expect("auth");
        for _ in 0..100 {
            let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .expect("a frame in time")
                .expect("open")
                .expect("frame");
            if let tungstenite::Message::Text(t) = m {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).expect("json");
                if v["t"] == "hello" {
                    return v;
                }
            }
        }
        panic!("no hello among the first 100 frames");
    })
}

/// A token guest: another account than the local users' on the node started with
/// [`Guest::env`] (the control API on TCP with a bearer token).
pub struct Guest {
    _dir: tempfile::TempDir,
    /// The token file (mode 0600).
    pub token: PathBuf,
    /// The node's control address on TCP.
    pub tcp: SocketAddr,
}

impl Guest {
    /// A guest whose token is `token`, for a node whose TCP control listener is on `ip`.
    pub fn new(ip: &str, token: &str) -> Guest {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("token");
        std::fs::write(&path, format!("{token}\n")).expect("token");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let tcp = std::net::TcpListener::bind(format!("{ip}:0"))
            .and_then(|l| l.local_addr())
            .expect("a free port");
        Guest {
            _dir: dir,
            token: path,
            tcp,
        }
    }

    /// The node's settings for this guest.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("CHATD_CONTROL__TCP_LISTEN".into(), self.tcp.to_string()),
            (
                "CHATD_CONTROL__TOKEN_FILE".into(),
                self.token.display().to_string(),
            ),
        ]
    }

    /// `chatctl --remote TCP --token-file TOKEN ARGS` once the listener is up, as it ended.
    pub fn ctl(&self, c: &Cluster, args: &[&str]) -> std::process::Output {
        poll(Duration::from_secs(60), Duration::from_millis(200), || {
            std::net::TcpStream::connect(self.tcp).ok()
        })
        .expect("the node's TCP control listener is up");
        c.sandbox
            .chatctl()
            .args(["--remote", &self.tcp.to_string(), "--token-file"])
            .arg(&self.token)
            .args(args)
            .output()
            .expect("chatctl runs")
    }
}
