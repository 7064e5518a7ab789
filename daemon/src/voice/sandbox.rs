//! The limits put on the transcription helper before it runs (docs/security.md, "Voice
//! messages"): RLIMIT_AS and RLIMIT_CPU, a network namespace of its own (`unshare`:
//! `CLONE_NEWNET` when chatd may, else `CLONE_NEWUSER | CLONE_NEWNET` where unprivileged user
//! namespaces are allowed; where neither works the helper runs with the network — the helper
//! reports which in its answer, and it opens no socket itself), and death with the daemon
//! (`PR_SET_PDEATHSIG`). Its process group is killed at the end of every job ([`Group`]).

/// The resource limits of one helper.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// RLIMIT_AS.
    pub memory_bytes: u64,
    /// RLIMIT_CPU (soft; the hard limit is 5 s above, then SIGKILL).
    pub cpu_secs: u64,
}

/// Sets the limits in the child between fork and exec.
pub fn limit(cmd: &mut tokio::process::Command, limits: Limits) {
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (setrlimit, unshare, prctl, getppid) on stack values.
    unsafe {
        cmd.pre_exec(move || {
            let set = |res, soft: u64, hard: u64| {
                let r = libc::rlimit {
                    rlim_cur: soft as libc::rlim_t,
                    rlim_max: hard as libc::rlim_t,
                };
                if libc::setrlimit(res, &r) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            };
            set(libc::RLIMIT_AS, limits.memory_bytes, limits.memory_bytes)?;
            set(
                libc::RLIMIT_CPU,
                limits.cpu_secs,
                limits.cpu_secs.saturating_add(5),
            )?;
            // No core dumps of decoded audio.
            set(libc::RLIMIT_CORE, 0, 0)?;
            if libc::unshare(libc::CLONE_NEWNET) != 0 {
                // Best effort: a user namespace lets an unprivileged chatd have one.
                let _ = libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET);
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            if libc::getppid() == 1 {
                // The daemon died before the call above: do not run orphaned.
                return Err(std::io::Error::other("parent gone"));
            }
            Ok(())
        });
    }
}

/// A helper's process group (its id is the helper's pid: `process_group(0)`), killed with
/// SIGKILL by [`Group::kill`] and when dropped.
#[derive(Debug)]
pub struct Group(pub Option<u32>);

impl Group {
    /// Kills every process of the group (nothing when it is gone already).
    pub fn kill(&mut self) {
        if let Some(pid) = self
            .0
            .take()
            .and_then(|p| i32::try_from(p).ok())
            .filter(|p| *p > 1)
        {
            // SAFETY: kill(2) with a negative pid signals that process group only.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}
