//! Two network namespaces joined by a veth pair, made by a test and removed when it ends:
//! real daemons on a link of their own (LAN discovery's multicast, a partition cut by a
//! blackhole route) without touching the host's network. Needs root and iproute2.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::support::skip_or_fail;

/// Two namespaces joined by a veth pair, removed on drop.
pub struct Netns {
    pub names: [String; 2],
    pub addrs: [Ipv4Addr; 2],
    veth: [String; 2],
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    /// Creates `chatd-PID-TAG-{a,b}` with 10.213.`subnet`.1 and .2 on a veth pair.
    pub fn create(tag: &str, subnet: u8) -> Result<Netns, String> {
        let pid = std::process::id();
        let ns = Netns {
            names: [
                format!("chatd-{pid}-{tag}-a"),
                format!("chatd-{pid}-{tag}-b"),
            ],
            addrs: [
                Ipv4Addr::new(10, 213, subnet, 1),
                Ipv4Addr::new(10, 213, subnet, 2),
            ],
            // Interface names are at most 15 bytes.
            veth: [
                format!("cv{}{tag}a", pid % 100_000),
                format!("cv{}{tag}b", pid % 100_000),
            ],
        };
        let veth = ns.veth.clone();
        for n in &ns.names {
            ip(&["netns", "add", n])?;
        }
        ip(&[
            "link", "add", &veth[0], "type", "veth", "peer", "name", &veth[1],
        ])?;
        for ((n, v), addr) in ns.names.iter().zip(&veth).zip(&ns.addrs) {
            ip(&["link", "set", v, "netns", n])?;
            let cidr = format!("{addr}/24");
            ip(&["-n", n, "addr", "add", &cidr, "dev", v])?;
            ip(&["-n", n, "link", "set", v, "up"])?;
            ip(&["-n", n, "link", "set", "lo", "up"])?;
        }
        Ok(ns)
    }

    /// `cmd`'s program and arguments, run inside namespace `i` (`ip netns exec` execs it, so
    /// the child's pid is the program's).
    pub fn wrap(&self, i: usize, cmd: &Command) -> Command {
        let mut out = Command::new("ip");
        out.args(["netns", "exec", &self.names[i]])
            .arg(cmd.get_program())
            .args(cmd.get_args());
        out.env_clear();
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                out.env(k, v);
            }
        }
        out.stdin(Stdio::null());
        out
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for n in &self.names {
            // Deleting a namespace deletes the veth end inside it (and so the pair).
            let _ = ip(&["netns", "del", n]);
        }
        // A pair left in this namespace by a failed setup (normally gone already).
        let _ = ip(&["link", "del", &self.veth[0]]);
    }
}

/// Creates the namespaces, or says why the test cannot run here.
pub fn netns_or_skip(test: &str, tag: &str, subnet: u8) -> Option<Netns> {
    if !rustix::process::geteuid().is_root() {
        skip_or_fail(&format!("{test}: needs root to create network namespaces"));
        return None;
    }
    match Netns::create(tag, subnet) {
        Ok(ns) => Some(ns),
        Err(e) => {
            skip_or_fail(&format!("{test}: cannot create network namespaces: {e}"));
            None
        }
    }
}

impl Netns {
    /// Cuts the link (`true`) or heals it (`false`): a blackhole route to the other side's
    /// address in each namespace drops every packet between them (the kernel may lack
    /// `netem`).
    pub fn cut(&self, on: bool) -> Result<(), String> {
        for (i, n) in self.names.iter().enumerate() {
            let other = format!("{}/32", self.addrs[1 - i]);
            let verb = if on { "add" } else { "del" };
            ip(&["-n", n, "route", verb, "blackhole", &other])?;
        }
        Ok(())
    }
}
