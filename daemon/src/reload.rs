//! SIGHUP: re-read the configuration and apply what can change while the node runs.
//!
//! Every key is compared ([`crate::config::KEYS`] says which apply live). Reloadable today:
//! `log.filter`. Every other key needs a restart; a reload that finds one of them changed logs
//! a warning naming it and keeps the running value. A configuration that
//! no longer validates is refused as a whole (one error line naming the key) and the node
//! carries on with what it had. The environment is the one chatd started with, and flags still
//! override the file.

use crate::config::{ConfigError, KEYS, Overrides, Settings};
use crate::env::Env;
use crate::logging::{LogError, LogHandle};

/// SIGHUP, as a stream. Installing it replaces the default action (terminate), so it is done
/// at startup, before the service manager can send one.
pub fn hangups() -> std::io::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
}

/// Re-reads the configuration on request.
#[derive(Debug)]
pub struct Reloader {
    overrides: Overrides,
    env: Env,
    current: Settings,
    log: Option<LogHandle>,
}

/// What a reload did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Keys whose new value is in force, with old and new values.
    pub applied: Vec<(&'static str, String, String)>,
    /// Keys that changed in the configuration but need a restart.
    pub needs_restart: Vec<&'static str>,
}

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The configuration is invalid now.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The log filter could not be applied.
    #[error(transparent)]
    Log(#[from] LogError),
}

impl Reloader {
    /// A reloader for a node started with `current`, from these flags and this environment.
    /// `log` is the handle from [`crate::logging::init`] (`None`: logging is not ours to change).
    pub fn new(overrides: Overrides, env: Env, current: Settings, log: Option<LogHandle>) -> Self {
        Reloader {
            overrides,
            env,
            current,
            log,
        }
    }

    /// Re-reads the configuration and applies the reloadable keys.
    pub fn reload(&mut self) -> Result<Outcome, ReloadError> {
        let new = Settings::load(&self.overrides, &self.env)?;
        self.apply(new)
    }

    /// Compares every key ([`crate::config::KEYS`]); applies the live ones (today
    /// `log.filter`) and names the others that changed as needing a restart.
    fn apply(&mut self, new: Settings) -> Result<Outcome, ReloadError> {
        let mut outcome = Outcome::default();
        let (old_values, new_values) = (self.current.values(), new.values());
        for key in KEYS.iter() {
            let (old, now) = (&old_values[key.name], &new_values[key.name]);
            if old == now {
                continue;
            }
            match key.name {
                "log.filter" => {
                    if let Some(log) = &mut self.log {
                        log.set_filter(&new.log_filter)?;
                    }
                    outcome.applied.push((
                        key.name,
                        self.current.log_filter.clone(),
                        new.log_filter.clone(),
                    ));
                    self.current.log_filter = new.log_filter.clone();
                }
                // A key marked live must be applied above.
                _ if key.live => unreachable_live(key.name),
                _ => outcome.needs_restart.push(key.name),
            }
        }
        Ok(outcome)
    }
}

/// `KEYS` marks a key live that [`Reloader::apply`] does not apply: a bug caught by the tests.
fn unreachable_live(name: &str) -> ! {
    panic!("config key {name} is marked live but the reloader does not apply it")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings_from(text: &str, dir: &tempfile::TempDir) -> (Overrides, Env, Settings) {
        let path = dir.path().join("chatd.toml");
        std::fs::write(&path, text).expect("write");
        let overrides = Overrides {
            config: Some(path),
            data_dir: Some(dir.path().join("data")),
            control: Some(dir.path().join("c.sock")),
            ..Overrides::default()
        };
        let env = Env::default();
        let settings = Settings::load(&overrides, &env).expect("valid");
        (overrides, env, settings)
    }

    #[test]
    fn log_filter_applies_and_other_keys_need_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (overrides, env, settings) = settings_from("[log]\nfilter = \"info\"\n", &dir);
        let mut reloader = Reloader::new(overrides, env, settings, None);
        assert_eq!(reloader.reload().expect("unchanged"), Outcome::default());

        std::fs::write(
            dir.path().join("chatd.toml"),
            "[log]\nfilter = \"debug\"\n[node]\nlisten = \"127.0.0.1:9\"\nnickname = \"bo\"\n",
        )
        .expect("write");
        let outcome = reloader.reload().expect("valid");
        assert_eq!(
            outcome.applied,
            [("log.filter", "info".to_owned(), "debug".to_owned())]
        );
        assert_eq!(outcome.needs_restart, ["node.listen", "node.nickname"]);
        // Applied once: a second reload of the same file changes nothing more.
        let again = reloader.reload().expect("valid");
        assert!(again.applied.is_empty());
        assert_eq!(again.needs_restart, ["node.listen", "node.nickname"]);
    }

    #[test]
    fn every_changed_key_is_named_ring_chat_and_transport_included() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (overrides, env, settings) = settings_from("", &dir);
        let mut reloader = Reloader::new(overrides, env, settings, None);
        std::fs::write(
            dir.path().join("chatd.toml"),
            "[ring]\nstabilize_ms = 700\norigin_rate = 40\n[chat]\ncommit_delay_ms = 5\n\
             [transport]\nmax_connections = 64\n[control]\nsend_rate = 9.5\n",
        )
        .expect("write");
        let outcome = reloader.reload().expect("valid");
        assert!(outcome.applied.is_empty());
        assert_eq!(
            outcome.needs_restart,
            [
                "control.send_rate",
                "chat.commit_delay_ms",
                "transport.max_connections",
                "ring.stabilize_ms",
                "ring.origin_rate"
            ]
        );
    }

    #[test]
    fn every_key_marked_live_is_applied() {
        for key in KEYS.iter().filter(|k| k.live) {
            assert_eq!(
                key.name, "log.filter",
                "{} is live but not applied",
                key.name
            );
        }
    }

    #[test]
    fn an_invalid_configuration_is_refused_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (overrides, env, settings) = settings_from("", &dir);
        let mut reloader = Reloader::new(overrides, env, settings, None);
        std::fs::write(
            dir.path().join("chatd.toml"),
            "[log]\nfilter = \"chatd=loud\"\n",
        )
        .expect("write");
        let err = reloader.reload().expect_err("invalid");
        assert!(
            err.to_string().starts_with("log.filter: invalid filter"),
            "{err}"
        );
        std::fs::write(dir.path().join("chatd.toml"), "[log]\nfilter = \"warn\"\n").expect("write");
        let outcome = reloader.reload().expect("valid again");
        assert_eq!(
            outcome.applied,
            [("log.filter", "info".to_owned(), "warn".to_owned())]
        );
    }
}
