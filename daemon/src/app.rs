//! Running the node: the startup sequence and the shutdown path.
//!
//! Startup: install signal handlers → lock and open the data directory → load or create the
//! node key → bind the control socket (refusing if another chatd serves it) → open the history
//! and the event log (`log.events`) → bind the QUIC endpoint on the listen address and start
//! the overlay driver (founding a ring, or joining through `--bootstrap`) → start the services
//! (people, private conversations, files) → serve.
//!
//! Wiring: [`run`] is a sequence of named steps (`bind`, `open_stores`, `start`,
//! `start_notifier`, `serve`, `wait`, `shut_down`); each piece is built in order and
//! handed what it needs, services before the node, the node before the API layer.
//!
//! Supervision: every long-lived task (the overlay driver and its accept loop, the services, the
//! event feed, the front doors, the systemd notifier) runs in the app's [`Tasks`]; the first
//! that ends (returns or panics) while the node runs stops the daemon with exit status 1, so
//! systemd restarts it instead of leaving it half alive.
//!
//! Readiness: the overlay driver sets the node's `joined` flag on `Event::Joined`, which drives
//! READY=1 (see [`crate::notify`]); STATUS= lines carry the ring-size estimate and the peer
//! count. SIGHUP re-reads the configuration and applies what can change at run time
//! ([`Reloader`]).
//!
//! Shutdown on SIGINT/SIGTERM (or the `Leave` RPC): STOPPING=1, then leave the ring gracefully — the overlay
//! hands our neighbours to each other and the goodbyes are flushed, within [`LEAVE_DEADLINE`] —
//! then close the QUIC endpoint, stop accepting control calls, give in-flight calls [`GRACE`] to
//! finish, remove the socket, return `Ok` (exit 0). The whole path is bounded by a few seconds.

use std::sync::Arc;
use std::time::Duration;

use tracing::{Instrument, error, info, info_span, warn};

use crate::chat::{Chat, RingInbox};
use crate::config::Settings;
use crate::control::ControlSocket;
use crate::direct::Direct;
use crate::discovery::mdns::Lan;
use crate::discovery::{cache, hints};
use crate::dm::Dm;
use crate::error::Error;
use crate::eventlog::feed::Feed;
use crate::eventlog::stats::Activity;
use crate::eventlog::{EventLog, Kind, Record};
use crate::files::Files;
use crate::identity::{Identity, Origin};
use crate::irc::IrcListener;
use crate::nickname::Nickname;
use crate::node::Node;
use crate::notify::{Notifier, RingCounts};
use crate::overlay::membership::Membership;
use crate::overlay::{self, OverlayHandle, RingConfig};
use crate::people::{People, PeopleConfig};
use crate::records::Records;
use crate::reload::Reloader;
use crate::status::NodeStatus;
use crate::supervise::{Ended, Tasks};
use crate::web::WebListener;
use crate::{paths, shutdown, transport};

/// How long in-flight control calls may run after a shutdown signal.
pub const GRACE: Duration = Duration::from_millis(1000);
/// How long leaving the ring may take at shutdown.
pub const LEAVE_DEADLINE: Duration = Duration::from_millis(1500);
/// How long announcing the node's users offline may take at shutdown (the presence engine's
/// bound, which the simulator's presence scenario uses too).
const OFFLINE_DEADLINE: Duration = Duration::from_millis(chat_people::engine::OFFLINE_DEADLINE_MS);
/// How long closing the QUIC endpoint may take at shutdown.
const CLOSE_DEADLINE: Duration = Duration::from_millis(500);

/// Runs the node until SIGINT or SIGTERM: bind → open the stores → start the ring → start the
/// services → serve the front doors → wait → shut down, each a step below.
pub async fn run(settings: Settings, reloader: Reloader, notifier: Notifier) -> Result<(), Error> {
    let signal = shutdown::signal().map_err(Error::Signals)?;
    let hangups = crate::reload::hangups().map_err(Error::Signals)?;
    let _lock = paths::lock_data_dir(&settings.data_dir)?;
    let (identity, origin) = Identity::load_or_create(&settings.data_dir)?;
    let span = info_span!("node", id = %identity.id().short());
    async move {
        match origin {
            Origin::Created => info!(node_id = %identity.id(), data_dir = %settings.data_dir.display(), "created a new node identity"),
            Origin::Loaded => info!(node_id = %identity.id(), data_dir = %settings.data_dir.display(), "loaded node identity"),
        }
        let bound = bind(&settings).await?;
        let stores = open_stores(&settings, &identity, bound.listen_addr)?;
        // Every long-lived task is ours: one that ends on its own ends the daemon (supervise.rs).
        let mut tasks = Tasks::default();
        let running = start(&settings, &identity, bound.udp, stores, &mut tasks)?;
        let notifier = Arc::new(notifier);
        start_notifier(&running, &notifier, &mut tasks);
        let (trigger, stop) = shutdown::channel();
        info!(control = %bound.control.path().display(), listen = %bound.listen_addr, "chatd is running");
        let server = serve(&settings, bound.control, bound.web, bound.irc, &running, stop, &mut tasks)?;
        tokio::pin!(server);
        let waited = wait(&running, &mut tasks, &mut server, signal, hangups, reloader, &notifier).await;
        if let Err(e) = waited {
            tasks.shutdown().await;
            running.records.close().await;
            return Err(e);
        }
        notifier.stopping();
        shut_down(&running).await;
        trigger.fire();
        match tokio::time::timeout(GRACE, &mut server).await {
            Ok(result) => result?,
            Err(_) => warn!("control calls still running after {GRACE:?}; closing them"),
        }
        tasks.shutdown().await;
        // The driver has stopped: nothing more to persist; the writer finishes its queue.
        running.records.close().await;
        info!("stopped");
        Ok(())
    }
    .instrument(span)
    .await
}

/// The sockets, bound before anything runs (so a taken address fails the start at once).
struct Bound {
    control: ControlSocket,
    web: Option<WebListener>,
    irc: Option<IrcListener>,
    /// Bound here (not in the transport) to learn the real port before anything else runs.
    udp: std::net::UdpSocket,
    listen_addr: std::net::SocketAddr,
}

/// Binds the control socket, the web view's and the IRC front door's listeners, and the QUIC
/// endpoint's UDP socket.
async fn bind(settings: &Settings) -> Result<Bound, Error> {
    let group = settings.access.group.as_ref().map(|g| g.1);
    let control = ControlSocket::bind_for_group(&settings.control_socket, group).await?;
    let web = WebListener::bind(&settings.web, &settings.access, &settings.data_dir).await?;
    let irc = IrcListener::bind(&settings.irc, &settings.data_dir).await?;
    let udp = std::net::UdpSocket::bind(settings.listen).map_err(|source| Error::Listen {
        addr: settings.listen,
        source,
    })?;
    let listen_addr = udp.local_addr().map_err(|source| Error::Listen {
        addr: settings.listen,
        source,
    })?;
    Ok(Bound {
        control,
        web,
        irc,
        udp,
        listen_addr,
    })
}

/// The history, the event log and the activity counters, opened before the ring brings
/// anything.
struct Stores {
    chat: Chat,
    event_log: Option<EventLog>,
    activity: Arc<Activity>,
    /// `chat.retention_days` (`None`: no age limit).
    retention: Option<Duration>,
    listen_addr: std::net::SocketAddr,
}

fn open_stores(
    settings: &Settings,
    identity: &Identity,
    listen_addr: std::net::SocketAddr,
) -> Result<Stores, Error> {
    let chat = Chat::open(
        &settings.data_dir,
        identity.signing_key().clone(),
        settings.nickname.clone(),
        &settings.chat,
    )?;
    let activity = Arc::new(Activity::default());
    activity.attach_chat(chat.clone());
    // The event log (log.events): messages and events with their times, in the data
    // directory; private messages as metadata only.
    let retention = (!settings.chat.retention_age.is_zero()).then_some(settings.chat.retention_age);
    let event_log = if settings.event_log.enabled {
        let log = EventLog::open(&settings.data_dir, &settings.event_log, retention)?;
        let mut start = Record::line_of(
            Kind::Start,
            crate::records::unix_ms(),
            format!(
                "chatd {} started, listening on {listen_addr}",
                crate::node::VERSION
            ),
        );
        start.from_id = identity.id().to_hex();
        log.record(start);
        Some(log)
    } else {
        None
    };
    Ok(Stores {
        chat,
        event_log,
        activity,
        retention,
        listen_addr,
    })
}

/// What runs on the node, built in order: each piece is handed what it needs, and the node
/// (what the API layer reads) last.
struct Running {
    node: Arc<Node>,
    chat: Chat,
    people: Arc<People>,
    records: Arc<Records>,
    dm: Arc<Dm>,
    /// The blob store and transfers.
    files: Arc<Files>,
    ring: OverlayHandle,
    lan: Option<Arc<Lan>>,
    event_log: Option<EventLog>,
    status: NodeStatus,
}

/// Starts LAN discovery, the overlay driver and the services on it (people, private
/// conversations, the event feed, pruning, the peer cache), each supervised in `tasks`.
fn start(
    settings: &Settings,
    identity: &Identity,
    udp: std::net::UdpSocket,
    stores: Stores,
    tasks: &mut Tasks,
) -> Result<Running, Error> {
    let Stores {
        chat,
        event_log,
        activity,
        retention,
        listen_addr,
    } = stores;
    if settings.bootstrap.is_empty() && settings.discovery.mdns {
        info!("no bootstrap peers: joining the nodes found on the LAN, if any");
    } else if settings.bootstrap.is_empty() {
        info!("no bootstrap peers: this node founds a new ring");
    } else {
        info!(peers = ?settings.bootstrap, "joining through the bootstrap peers");
    }
    // Peers seen in an earlier run: tried beside the bootstrap, so the ring is found again
    // while any of them is up.
    let remembered = cache::load(&settings.data_dir);
    if !remembered.is_empty() {
        info!(
            peers = remembered.len(),
            "trying the peers remembered from the last run too"
        );
    }
    // LAN discovery (mDNS), only when asked for: it multicasts on the local network.
    let lan = if settings.discovery.mdns {
        Some(Lan::start(
            identity.id(),
            listen_addr,
            &settings.discovery.interfaces,
        )?)
    } else {
        None
    };
    let ring_cfg = RingConfig {
        transport: transport::Config {
            bulk: settings.bulk.transport(),
            ..transport::Config::new(listen_addr, settings.max_connections)
        },
        chord: overlay::chord_config(&settings.ring),
        bootstrap: settings.bootstrap.clone(),
        remembered: remembered
            .iter()
            .map(|r| chat_overlay::Peer {
                id: r.id,
                addr: r.addr,
            })
            .collect(),
        lan: lan.clone().map(|l| l as Arc<dyn overlay::LanPeers>),
    };
    // Broadcasts are verified once, by the ring's validator, and stored by the chat core.
    let inbox = Arc::new(RingInbox::new(chat.clone()));
    // DHT records held before a restart come back from the record file.
    let (records, held) = Records::open(&settings.data_dir, identity.signing_key().clone())?;
    // Direct delivery (one body to one node, acknowledged): the transport of private
    // messages; the service that encrypts them takes its receiver.
    let direct = Direct::new();
    // The person this node hosts: account key, nickname claim, presence, user directory.
    let people = People::open(
        &settings.data_dir,
        identity.id(),
        chat.clone(),
        records.clone(),
        PeopleConfig {
            wish: settings.nickname.clone().unwrap_or_else(default_nickname),
            away_after: Duration::from_secs(settings.chat.away_after_secs),
            nick_ttl: Duration::from_secs(settings.chat.nick_release_days * 24 * 3600),
        },
    )?;
    let membership = Arc::new(Membership::default());
    let ring = overlay::start(
        identity.id(),
        membership.clone(),
        identity.signing_key(),
        ring_cfg,
        udp,
        overlay::Apps {
            inbox,
            records: records.clone(),
            direct: direct.clone(),
        },
        tasks,
    )?;
    records.attach(ring.clone(), held);
    direct.attach(ring.clone());
    tasks.spawn(
        "the people service",
        people
            .clone()
            .run(ring.clone(), membership.subscribe_joined()),
    );
    // Private conversations: end-to-end encrypted, through direct delivery and mailboxes.
    let dm = Dm::open(
        &settings.data_dir,
        crate::dm::DmConfig {
            ttl: settings.chat.mailbox_ttl,
            retention,
        },
        people.clone(),
        records.clone(),
        direct.clone(),
    )?;
    tasks.spawn(
        "the private-conversations service",
        dm.clone()
            .run(membership.subscribe_joined(), ring.predecessor()),
    );
    if let Some(received) = direct.received() {
        // If it died the overlay would keep acknowledging bodies nobody reads.
        tasks.spawn(
            "the private direct deliveries",
            dm.clone().take_direct(received),
        );
    }
    // Files: the blob store in <data_dir>/blobs/ and the blob transfers over bulk streams.
    let files = Files::open(
        &settings.data_dir,
        settings.files.store(),
        ring.transport().clone(),
        Some((records.clone(), listen_addr)),
    )?;
    let streams = files.listen();
    tasks.spawn("the files service", files.clone().run(streams));
    // Private files: ciphertext held for other nodes' offline recipients, and the files this
    // node's accounts receive, fetched at once.
    files.configure_offline(crate::files::hold::Offline {
        max_bytes: settings.files.offline_max_mb << 20,
        replicas: usize::try_from(settings.ring.record_replicas).unwrap_or(3),
        ttl: settings.chat.mailbox_ttl,
        total_bytes: (settings.files.store_mb << 20) / 4,
    });
    let holds = files.listen_holds();
    tasks.spawn("the private file holds", files.clone().run_holds(holds));
    tasks.spawn(
        "the fetch of received private files",
        crate::files::private::fetch_received(
            files.clone(),
            dm.watch(),
            settings.files.max_file_mb << 20,
        ),
    );
    tasks.spawn("the provider records", files.clone().renew());
    // Files whose messages were deleted or expired leave the store.
    tasks.spawn(
        "the files of deleted messages",
        crate::files::lifecycle::run(files.clone(), chat.clone()),
    );
    // The auto-fetch watches the message hub like a client would; it is not one.
    activity.internal_watcher(true);
    tasks.spawn(
        "the auto-fetch of images",
        crate::files::auto::run(
            files.clone(),
            chat.hub_subscribe(),
            settings.files.auto_fetch_kb.saturating_mul(1024),
        ),
    );
    let node = Arc::new(
        Node::new(
            identity.public_key(),
            settings.nickname.clone(),
            listen_addr,
            settings.bootstrap.clone(),
        )
        .with_membership(membership)
        .with_activity(activity.clone())
        .with_overlay(ring.clone())
        .with_lan(lan.clone())
        .with_private(dm.clone())
        .with_files(files.clone())
        .with_voice(Arc::new(crate::voice::Voice::new(
            settings.voice.clone(),
            settings.files.max_file_mb << 20,
        )))
        .with_event_log(event_log.clone()),
    );
    let status = NodeStatus::new(node.clone(), people.clone());
    // The event log's records, the private-message counts and the statistics line.
    let feed = Feed {
        log: event_log.clone(),
        activity,
        chat: chat.clone(),
        people: people.clone(),
        dm: dm.clone(),
        status: {
            let status = status.clone();
            Arc::new(move || {
                let status = status.clone();
                Box::pin(async move { status.report(Some(&crate::client::this_process())).await })
            })
        },
        stats_every: settings.event_log.stats_interval,
        retention,
    };
    tasks.spawn("the event log's feed", feed.run());
    if let Some(max_age) = retention {
        tasks.spawn(
            "the history's age limit",
            prune_history(chat.clone(), max_age),
        );
    }
    tasks.spawn(
        "the peer cache",
        cache::run(ring.clone(), settings.data_dir.clone(), remembered),
    );
    if let Some(lan) = &lan {
        tasks.spawn(
            "the LAN discovery hints",
            hints::run(ring.clone(), lan.clone()),
        );
    }
    Ok(Running {
        node,
        chat,
        people,
        records,
        dm,
        files,
        ring,
        lan,
        event_log,
        status,
    })
}

/// The systemd notifier: READY=1 once joined, STATUS= numbers (the driver's ring size, exact
/// or estimated, and the open connections); the driver's heartbeat gates the watchdog pings.
fn start_notifier(running: &Running, notifier: &Arc<Notifier>, tasks: &mut Tasks) {
    let ring_counts = {
        let (membership, transport) = (running.node.membership(), running.ring.transport().clone());
        move || RingCounts {
            ring_size: membership.ring_size(),
            ring_exact: membership.ring_size_is_exact(),
            peers: transport.peers().len() as u64,
            driver_turns: membership.turns(),
            retry_at_unix_ms: membership.retry().map_or(0, |r| r.next_unix_ms),
        }
    };
    let (notifier, joined, bootstrap) = (
        notifier.clone(),
        running.node.subscribe_joined(),
        running.node.bootstrap().len(),
    );
    tasks.spawn("the systemd notifier", async move {
        notifier.run(joined, ring_counts, bootstrap).await
    });
}

/// Serves the front doors (the API layer, on top of the services): the web view and the IRC
/// front door as supervised tasks, and returns the control server's future.
fn serve<'a>(
    settings: &'a Settings,
    control: ControlSocket,
    web: Option<WebListener>,
    irc: Option<IrcListener>,
    running: &Running,
    stop: shutdown::Shutdown,
    tasks: &mut Tasks,
) -> Result<
    impl std::future::Future<Output = Result<(), crate::control::ControlError>> + use<'a>,
    Error,
> {
    let Running {
        node,
        chat,
        people,
        records,
        dm,
        files,
        status,
        ..
    } = running;
    // One set of chat operations for every front door: a client's send limit holds across
    // the gRPC API and the web view.
    let chat_ops = crate::ops::ChatOps::with_access(
        chat.clone(),
        node.clone(),
        people.clone(),
        &settings.access,
    )
    .with_private(dm.clone());
    let mut status = status.clone();
    let mut web_front: Option<Arc<dyn crate::ops::WebFront>> = None;
    if let Some(web) = web {
        let link = web.link();
        status = status.with_web_pages(Arc::new(move || link.pages() as u64));
        web_front = Some(Arc::new(web.link()));
        let serve = web.serve(
            node.clone(),
            status.clone(),
            chat.clone(),
            people.clone(),
            chat_ops.clone(),
            stop.clone(),
        );
        tasks.spawn("the web view", serve);
    }
    let mut irc_front: Option<Arc<dyn crate::ops::IrcFront>> = None;
    if let Some(irc) = irc {
        let (link, serve) = irc.serve(
            &settings.data_dir,
            chat.clone(),
            people.clone(),
            node.clone(),
            &settings.access,
            stop.clone(),
        )?;
        irc_front = Some(Arc::new(link));
        tasks.spawn("the IRC front door", serve);
    }
    let services = crate::control::Services {
        node: node.clone(),
        chat: chat_ops,
        records: records.clone(),
        people: people.clone(),
        dm: dm.clone(),
        files: files.clone(),
        status,
        web: web_front,
        irc: irc_front,
    };
    Ok(control.serve(services, &settings.access, stop))
}

/// Waits for a signal, a `Leave`, or a supervised task's end (an error: exit status 1);
/// reloads on SIGHUP meanwhile.
async fn wait(
    running: &Running,
    tasks: &mut Tasks,
    server: &mut std::pin::Pin<
        &mut impl std::future::Future<Output = Result<(), crate::control::ControlError>>,
    >,
    signal: impl std::future::Future<Output = shutdown::Signal>,
    mut hangups: tokio::signal::unix::Signal,
    mut reloader: Reloader,
    notifier: &Notifier,
) -> Result<(), Error> {
    tokio::pin!(signal);
    loop {
        tokio::select! {
            sig = &mut signal => {
                info!(signal = ?sig, "shutting down");
                return Ok(());
            }
            () = running.node.stop_requested() => {
                info!("stop requested over the control API");
                return Ok(());
            }
            Some(()) = hangups.recv() => reload(&mut reloader, notifier),
            ended = tasks.ended() => {
                error!("{ended} unexpectedly; stopping so that the service manager restarts chatd");
                return Err(Error::TaskEnded(ended));
            }
            result = server.as_mut() => {
                result?;
                return Err(Error::TaskEnded(Ended { name: "the control server", panicked: false }));
            }
        }
    }
}

/// The shutdown path before the control server closes: tell everyone this node's user
/// leaves, leave the ring, close the QUIC endpoint, say goodbye on the LAN, commit the last
/// messages, close the event log.
async fn shut_down(running: &Running) {
    let Running {
        people,
        ring,
        lan,
        chat,
        event_log,
        ..
    } = running;
    // Everybody sees this node's user leave now, not when a neighbour notices.
    people.go_offline(ring, OFFLINE_DEADLINE).await;
    if ring.leave(LEAVE_DEADLINE).await {
        info!("left the ring");
    } else {
        warn!("could not leave the ring gracefully within {LEAVE_DEADLINE:?}");
    }
    ring.close(CLOSE_DEADLINE).await;
    if let Some(lan) = lan {
        // Goodbye packets: the LAN forgets us now rather than when our records expire.
        lan.shutdown();
    }
    // Messages from the ring still waiting for their group commit.
    if let Err(e) = chat.commit() {
        warn!(error = %e, "could not commit the last messages from the ring");
    }
    if let Some(log) = event_log {
        log.record(Record::line_of(
            Kind::Stop,
            crate::records::unix_ms(),
            "chatd stopped",
        ));
        // Followers of the log (chatctl log -f) see its end.
        log.close(CLOSE_DEADLINE).await;
    }
}

/// Deletes the messages older than `max_age` (`chat.retention_days`) at start and then every
/// minute (a quarter of `max_age` when that is shorter, at least every second), off the async
/// threads.
async fn prune_history(chat: Chat, max_age: Duration) {
    let period = (max_age / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut every = tokio::time::interval(period);
    loop {
        every.tick().await;
        let chat = chat.clone();
        match tokio::task::spawn_blocking(move || chat.prune_expired(max_age)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => info!(
                messages = n,
                "deleted messages older than chat.retention_days"
            ),
            Ok(Err(e)) => {
                warn!(error = %e, "could not delete expired messages; retrying in a minute")
            }
            Err(e) => warn!(error = %e, "the pruning of expired messages failed"),
        }
    }
}

/// The nickname wished for when none is configured: the Unix login name where it is a valid
/// nickname, else `user`.
fn default_nickname() -> Nickname {
    std::env::var("USER")
        .ok()
        .and_then(|u| u.parse().ok())
        .unwrap_or_else(Nickname::user)
}

/// Handles one SIGHUP: reload, log what changed, tell systemd.
fn reload(reloader: &mut Reloader, notifier: &Notifier) {
    notifier.reloading();
    info!("SIGHUP: reloading the configuration");
    match reloader.reload() {
        Ok(outcome) => {
            for (key, old, new) in &outcome.applied {
                info!(key, old = %old, new = %new, "reloaded: {key} is now {new:?} (was {old:?})");
            }
            for key in &outcome.needs_restart {
                warn!(
                    key,
                    "{key} changed in the configuration but needs a restart to apply; keeping the running value"
                );
            }
            if outcome.applied.is_empty() && outcome.needs_restart.is_empty() {
                info!("reloaded: nothing changed");
            }
            notifier.reloaded();
        }
        Err(e) => {
            error!("reload refused, keeping the running configuration: {e}");
            notifier.reloaded();
        }
    }
}
