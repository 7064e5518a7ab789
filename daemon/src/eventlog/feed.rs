//! The feed: one task that watches what happens on the node and turns it into event-log
//! records and counters, and writes the periodic statistics line.
//!
//! It reads three broadcasts, none of which ever waits for it: the chat hub (public messages
//! and edits, with their text, and deletes), the people service's user events (join, leave, away/back, nickname,
//! node down) and the private-conversations service's events (a private message shown to an
//! account of this node, or shown again edited or deleted: its sender, recipient or group,
//! time and id — the text is in the event, and stays there). Missing some because it fell behind is counted
//! (`eventlog_lagged`). Private messages are counted for `chatctl status` even with the
//! event log off. Every `log.stats_interval_secs` it reads the node's status (the same
//! assembly `GetStatus` and `/metrics` use, `crate::status`, handed in as [`ReadStatus`]) and
//! writes it as one line to chatd's log (INFO) and as a `stats` record.

use std::sync::Arc;
use std::time::Duration;

use std::future::Future;
use std::pin::Pin;

use chat_proto::v1::GetStatusResponse;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::info;

use super::EventLog;
use super::record::{Kind, PrivateFacts, Record};
use super::stats::{self, Activity};
use crate::chat::{Chat, Stored, envelope};
use crate::dm::{Dm, DmEvent};
use crate::people::{Change, People, UserEvent};
use crate::records::unix_ms;

/// How often the writer drops records older than `chat.retention_days` at most (as the
/// history: a quarter of the limit when that is shorter, at least every second).
pub const RETENTION_EVERY: Duration = Duration::from_secs(60);

/// Reads the node's status as its operator sees it (the app passes
/// `status::NodeStatus::report` with this process as the client; the event log names nothing
/// above the services, so the status module may use it).
pub type ReadStatus =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = GetStatusResponse> + Send>> + Send + Sync>;

/// What the feed watches and where it writes.
pub struct Feed {
    /// The event log (`None`: `log.events = false`; the feed then only counts and writes
    /// the statistics line).
    pub log: Option<EventLog>,
    /// The counters `chatctl status` adds.
    pub activity: Arc<Activity>,
    /// The chat core (its hub).
    pub chat: Chat,
    /// People (user events, names).
    pub people: Arc<People>,
    /// Private conversations.
    pub dm: Arc<Dm>,
    /// The status the statistics line shows.
    pub status: ReadStatus,
    /// `log.stats_interval_secs` (zero: no statistics line).
    pub stats_every: Duration,
    /// `chat.retention_days` (`None`: no age limit).
    pub retention: Option<Duration>,
}

impl Feed {
    /// Runs until the daemon stops.
    pub async fn run(self) {
        let mut hub = self.log.as_ref().map(|_| {
            self.activity.internal_watcher(true);
            self.chat.hub_subscribe()
        });
        let mut users = self.log.as_ref().map(|_| self.people.watch());
        let mut private = Some(self.dm.watch());
        let mut retention = self.log.as_ref().and(self.retention).map(|age| {
            every(
                (age / 4).clamp(Duration::from_secs(1), RETENTION_EVERY),
                false,
            )
        });
        let mut stats = (!self.stats_every.is_zero()).then(|| every(self.stats_every, true));
        // The last message written: after a lag of the hub, the rest comes from the store.
        let mut last_pos = self
            .chat
            .before(i64::MAX, None, 1)
            .ok()
            .and_then(|rows| rows.last().map(|s| s.pos))
            .unwrap_or(0);
        loop {
            tokio::select! {
                r = next(&mut hub) => match r {
                    Ok(stored) if stored.pos > last_pos => {
                        last_pos = stored.pos;
                        self.message(&stored);
                    }
                    Ok(_) => {}
                    Err(n) => {
                        if let Err(e) = self.catch_up(&mut last_pos) {
                            tracing::warn!(error = %e, "event log: cannot read the history after a lag");
                            self.missed(n);
                        }
                    }
                },
                r = next(&mut users) => match r {
                    Ok(event) => self.user(&event),
                    Err(n) => self.missed(n),
                },
                r = next(&mut private) => match r {
                    Ok(DmEvent::Message(m)) => self.private(&m),
                    Ok(_) => {}
                    Err(n) => self.missed(n),
                },
                () = tick(&mut retention) => {
                    if let Some(log) = &self.log {
                        log.tick();
                    }
                }
                () = tick(&mut stats) => self.stats().await,
            }
        }
    }

    /// Writes what the store holds after `last_pos` (what a lag of the hub skipped), as a
    /// subscription does after one.
    fn catch_up(&self, last_pos: &mut i64) -> Result<(), crate::chat::ChatError> {
        /// Rows read at a time.
        const PAGE: usize = 256;
        loop {
            let page = self.chat.feed_after(*last_pos, None, PAGE)?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            *last_pos = last.pos;
            for stored in &page {
                self.message(stored);
            }
        }
    }

    fn missed(&self, n: u64) {
        if let Some(log) = &self.log {
            log.lagged(n);
        }
    }

    fn write(&self, record: Record) {
        if let Some(log) = &self.log {
            log.record(record);
        }
    }

    /// A public message, edit or delete (people events come from the people service).
    fn message(&self, stored: &Stored) {
        let m = &stored.message;
        let kind = match m.kind {
            envelope::Kind::Text => Kind::Message,
            envelope::Kind::Edit => Kind::Edit,
            envelope::Kind::Delete => Kind::Delete,
            envelope::Kind::People | envelope::Kind::Deleted => return,
        };
        let node = m.from_id();
        let mut r = Record::new(kind, unix_ms());
        r.room = m.room.to_string();
        r.from = self.people.name_for(m.author.as_ref(), &node);
        r.from_id = node.to_hex();
        r.id = m.id.to_hex();
        r.target = m.target.map(|t| t.to_hex()).unwrap_or_default();
        r.sent_ms = Some(m.hlc.millis());
        if kind != Kind::Delete {
            r.text = m.text.clone();
        }
        self.write(r);
    }

    /// A change in the user directory.
    fn user(&self, e: &UserEvent) {
        let kind = match e.change {
            Change::Join => Kind::Join,
            Change::Leave => Kind::Leave,
            Change::Presence => Kind::Presence,
            Change::Nick => Kind::Nick,
            Change::NodeDown => Kind::NodeDown,
        };
        let mut r = Record::line_of(kind, e.at_ms, e.line.clone());
        if e.account != [0; 32] {
            r.from = self.people.display_account(&e.account);
            r.from_id = hex::encode(e.account);
        }
        self.write(r);
    }

    /// A private message shown to an account of this node: counted, and logged without its
    /// text.
    fn private(&self, m: &crate::dm::Message) {
        let row = &m.row;
        // A message shown again because its sender edited or deleted it is no new message.
        let kind = if row.deleted {
            Kind::PrivateDelete
        } else if row.edited_ms > 0 {
            Kind::PrivateEdit
        } else {
            self.activity.private_message(row.outgoing);
            Kind::Private
        };
        if self.log.is_none() {
            return;
        }
        let named = |a: &[u8; 32]| (self.people.display_account(a), hex::encode(a));
        // The recipient: the other account of a one-to-one message sent; the account of this
        // node a message was received for (a group's too); none for a group message sent.
        let to = match (row.outgoing, row.group, row.peer) {
            (true, None, Some(peer)) => named(&peer),
            (true, _, _) => (String::new(), String::new()),
            (false, _, _) => named(&m.account),
        };
        let facts = PrivateFacts {
            from: named(&row.from),
            to,
            group_id: row.group.map(hex::encode).unwrap_or_default(),
            id: hex::encode(row.id),
            sent_ms: row.sent_ms,
            outgoing: row.outgoing,
        };
        self.write(Record::private(kind, unix_ms(), facts));
    }

    /// The statistics line, to chatd's log and the event log.
    async fn stats(&self) {
        // The line goes to the operator's logs: read as the operator (private counts included).
        let status = (self.status)().await;
        let line = stats::summary(&status);
        info!(
            messages_sent = status.messages_sent,
            messages_received = status.messages_received,
            messages_forwarded = status.messages_forwarded,
            private_sent = status.private_sent,
            private_received = status.private_received,
            subscriptions = status.subscriptions,
            control_connections = status.control_connections,
            web_clients = status.web_clients,
            "stats: {line}"
        );
        let mut r = Record::line_of(Kind::Stats, unix_ms(), line);
        r.counts = stats::counts(&status);
        self.write(r);
    }
}

/// The next event of `rx` (never, when there is none or it closed); `Err(n)` when `n` were
/// missed.
async fn next<T: Clone>(rx: &mut Option<broadcast::Receiver<T>>) -> Result<T, u64> {
    loop {
        let Some(r) = rx else {
            return std::future::pending().await;
        };
        match r.recv().await {
            Ok(v) => return Ok(v),
            Err(RecvError::Lagged(n)) => return Err(n),
            Err(RecvError::Closed) => *rx = None,
        }
    }
}

/// Ticks every `period`, the first at once or (`later`) one period from now.
fn every(period: Duration, later: bool) -> tokio::time::Interval {
    let first = if later {
        Instant::now() + period
    } else {
        Instant::now()
    };
    let mut i = tokio::time::interval_at(first, period);
    i.set_missed_tick_behavior(MissedTickBehavior::Delay);
    i
}

/// The next tick of `every` (never, when there is none).
async fn tick(every: &mut Option<tokio::time::Interval>) {
    match every {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}
