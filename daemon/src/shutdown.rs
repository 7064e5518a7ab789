//! Graceful shutdown: one trigger, many listeners (the pattern from tokio's mini-redis).
//!
//! [`Trigger::fire`] broadcasts once; every task holding a [`Shutdown`] sees it, and tasks that
//! subscribe after the fact see it too. [`signal`] waits for SIGINT or SIGTERM.

use tokio::sync::watch;

/// Fires the shutdown signal.
#[derive(Debug)]
pub struct Trigger {
    tx: watch::Sender<bool>,
}

/// Listens for the shutdown signal.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// A connected trigger and listener.
pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger { tx }, Shutdown { rx })
}

impl Trigger {
    /// Tells every listener to shut down. Idempotent.
    pub fn fire(&self) {
        self.tx.send_replace(true);
    }

    /// A new listener.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            rx: self.tx.subscribe(),
        }
    }
}

impl Shutdown {
    /// Whether shutdown has been signalled.
    pub fn is_shutdown(&self) -> bool {
        *self.rx.borrow()
    }

    /// Waits until shutdown is signalled (or the trigger is dropped, which means the same).
    pub async fn recv(&mut self) {
        let _ = self.rx.wait_for(|&down| down).await;
    }
}

/// Which signal asked us to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (systemd, kill).
    Terminate,
}

/// Installs SIGINT and SIGTERM handlers; the returned future resolves at the first of them.
/// Installing happens before the first poll, so signals arriving early are not lost.
pub fn signal() -> std::io::Result<impl Future<Output = Signal>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => Signal::Interrupt,
            _ = term.recv() => Signal::Terminate,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_listener_sees_the_trigger() {
        let (trigger, mut a) = channel();
        let mut b = trigger.subscribe();
        assert!(!a.is_shutdown());
        let waiter = tokio::spawn(async move { b.recv().await });
        trigger.fire();
        a.recv().await;
        waiter.await.expect("listener finished");
        let mut late = trigger.subscribe();
        assert!(late.is_shutdown(), "late subscribers see it too");
        late.recv().await;
    }

    #[tokio::test]
    async fn dropping_the_trigger_counts_as_shutdown() {
        let (trigger, mut rx) = channel();
        drop(trigger);
        rx.recv().await;
    }
}
