//! The driver task: one loop that owns the overlay node.
//!
//! Inputs come from the transport (messages from authenticated peers — the sender's NodeId is
//! the one its certificate proved, never one the message claims — and unreachable peers), from
//! the overlay's own timers, and from [`DriverCommand`]s. After each input the outputs are executed
//! at once: `Send` goes to the transport (which never blocks), `SetTimer` to the timer heap
//! (the driver sleeps until the earliest timer the overlay still wants), then `Event`s update
//! the node's `joined` flag and its predecessor watch ([`super::OverlayHandle::predecessor`]),
//! hand deliveries to the [`super::Inbox`], records' events to the [`super::RecordSink`] and
//! direct delivery's to the [`super::DirectSink`], all inline.
//!
//! One turn takes up to [`super::MAX_BATCH`] messages from the inbound queue, whatever is
//! there, and hands the broadcast envelopes among them to [`super::Inbox::prevalidate`] at
//! once (batch verification) before feeding them one by one.
//!
//! The driver runs as a task of the daemon's runtime; `CHAT_DRIVER_RUNTIME=thread` runs it on
//! a thread of its own with a current-thread tokio runtime instead ([`spawn`]), the transport
//! and the gRPC server staying on the daemon's runtime (the tokio channels between them cross
//! runtimes). On a machine whose cores every daemon shares, the thread cost a quarter more CPU
//! per delivery (docs/performance.md, "The driver's turn (issue 33)").

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_overlay::{
    BroadcastError, BroadcastEvent, Event, Input, Message, Output, Peer, Phase, Time,
};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, error, info, warn};

use super::membership::Membership;
use super::timers::Timers;
use super::{DriverCommand, MAX_BATCH, RingView};
use crate::transport::{Inbound, Transport};

/// Sends held while the node learns its own numbering (`super::originate`); past this they
/// are refused with [`BroadcastError::Numbering`] (retryable).
const MAX_HELD: usize = 256;

/// The longest the driver's loop waits without turning.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// `thread` runs the driver on a thread of its own ([`spawn`]); anything else, or nothing,
/// as a task of the daemon's runtime (measured: docs/performance.md, "The driver's turn
/// (issue 33)").
pub const RUNTIME_ENV: &str = "CHAT_DRIVER_RUNTIME";
/// `off` makes the driver take one inbound message per turn and verify each alone, as before
/// issue 33 (for A/B measurements); anything else, or nothing, batches.
pub const BATCH_ENV: &str = "CHAT_DRIVER_BATCH";

/// Starts `driver` as the supervised task "the overlay driver" of `tasks`: as a task of the
/// current runtime, or (`CHAT_DRIVER_RUNTIME=thread`) on a thread of its own running a
/// current-thread runtime. On its thread, the driver's panic is carried to the supervised
/// task, which panics with it (a dead driver stops the daemon), and the driver is dropped only
/// once that task has ended (so no reader of its channels reports its death first, under
/// another name); the thread stops when that task is aborted (shutdown). Must run inside a
/// tokio runtime.
pub(super) fn spawn(
    driver: Driver,
    inbound: mpsc::Receiver<Inbound<Message>>,
    commands: mpsc::Receiver<DriverCommand>,
    tasks: &mut crate::supervise::Tasks,
) -> Result<(), crate::transport::TransportError> {
    use crate::transport::TransportError::DriverThread;
    let mut driver = driver;
    if !std::env::var(RUNTIME_ENV).is_ok_and(|v| v == "thread") {
        tasks.spawn("the overlay driver", async move {
            driver.run(inbound, commands).await
        });
        return Ok(());
    }
    // Timers only: the driver does no I/O of its own (the transport's link tasks write), so
    // the thread parks on a condition variable instead of an epoll descriptor.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(DriverThread)?;
    let (done_tx, done_rx) = oneshot::channel();
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    let span = tracing::Span::current();
    std::thread::Builder::new()
        .name("ring-driver".into())
        .spawn(move || {
            let _span = span.enter();
            let run = std::panic::AssertUnwindSafe(|| {
                runtime.block_on(async {
                    tokio::select! {
                        () = driver.run(inbound, commands) => false,
                        // The supervised task ended (shutdown aborted it).
                        _ = &mut stop_rx => true,
                    }
                })
            });
            let result = std::panic::catch_unwind(run);
            let stopped = matches!(result, Ok(true));
            let _ = done_tx.send(result.map(|_| ()));
            if !stopped {
                let _ = stop_rx.blocking_recv();
            }
            drop(driver);
        })
        .map_err(DriverThread)?;
    tasks.spawn("the overlay driver", async move {
        let _stop = stop_tx;
        match done_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => panic!("the overlay driver's thread ended without a word"),
        }
    });
    Ok(())
}

/// Test builds only (debug assertions on): `CHAT_TEST_DRIVER_FAULT=panic` makes the driver
/// panic, `=stall` makes it block its thread, a second after the node has joined; release
/// builds ignore it. The supervision tests use it (tests/e2e/ops.rs).
pub const FAULT_ENV: &str = "CHAT_TEST_DRIVER_FAULT";

#[derive(Clone, Copy, Debug)]
enum Fault {
    Panic,
    Stall,
}

impl Fault {
    fn from_env() -> Option<Fault> {
        if !cfg!(debug_assertions) {
            return None;
        }
        match std::env::var(FAULT_ENV).ok()?.as_str() {
            "panic" => Some(Fault::Panic),
            "stall" => Some(Fault::Stall),
            _ => None,
        }
    }

    fn strike(self) {
        match self {
            Fault::Panic => panic!("injected fault: the overlay driver panics ({FAULT_ENV})"),
            Fault::Stall => {
                error!("injected fault: the overlay driver stalls ({FAULT_ENV})");
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
    }
}

pub(super) struct Driver {
    membership: Arc<Membership>,
    overlay: chat_overlay::Overlay,
    transport: Transport<Message>,
    predecessor: watch::Sender<Option<Peer>>,
    timers: Timers,
    epoch: Instant,
    leave_waiters: Vec<oneshot::Sender<()>>,
    /// Trace walks running, by token (the overlay bounds them and always answers).
    traces: std::collections::HashMap<u64, oneshot::Sender<super::TraceOutcome>>,
    next_trace: u64,
    /// Lookups of the application running, by token (the overlay bounds them by its
    /// `max_lookups` and deadlines and always answers).
    lookups: std::collections::HashMap<u64, oneshot::Sender<super::LookupOutcome>>,
    next_lookup: u64,
    inbox: Arc<dyn super::Inbox>,
    records: Arc<dyn super::RecordSink>,
    direct: Arc<dyn super::DirectSink>,
    met: super::met::Met,
    /// Sends waiting for the node to know its own numbering (at most [`MAX_HELD`], for at
    /// most the overlay's `numbering_wait`).
    held: std::collections::VecDeque<(
        super::originate::Job,
        oneshot::Sender<Result<(), BroadcastError>>,
    )>,
}

impl Driver {
    pub(super) fn new(
        membership: Arc<Membership>,
        overlay: chat_overlay::Overlay,
        transport: Transport<Message>,
        predecessor: watch::Sender<Option<Peer>>,
        inbox: Arc<dyn super::Inbox>,
        records: Arc<dyn super::RecordSink>,
        direct: Arc<dyn super::DirectSink>,
    ) -> Driver {
        let epoch = Instant::now();
        let mut overlay = overlay;
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        overlay.set_wall_clock(u64::try_from(unix.as_micros()).unwrap_or(u64::MAX));
        Driver {
            membership,
            overlay,
            transport,
            predecessor,
            timers: Timers::default(),
            epoch,
            leave_waiters: Vec::new(),
            traces: std::collections::HashMap::new(),
            next_trace: 0,
            lookups: std::collections::HashMap::new(),
            next_lookup: 0,
            inbox,
            records,
            direct,
            met: super::met::Met::default(),
            held: std::collections::VecDeque::new(),
        }
    }

    fn now(&self) -> Time {
        Time::from_micros(u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    fn instant(&self, at: Time) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.epoch + Duration::from_micros(at.as_micros()))
    }

    pub(super) async fn run(
        &mut self,
        mut inbound: mpsc::Receiver<Inbound<Message>>,
        mut commands: mpsc::Receiver<DriverCommand>,
    ) {
        // The loop turns at least this often, so its heartbeat proves it is not stuck.
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let fault = Fault::from_env();
        let mut fault_at = None;
        let batch = !std::env::var(BATCH_ENV).is_ok_and(|v| v == "off");
        let take = if batch { MAX_BATCH } else { 1 };
        let mut arrived = Vec::with_capacity(take);
        let mut inbound_open = true;
        loop {
            // The last turn's sends are queued: its deliveries go to the store in one piece.
            self.inbox.end_turn();
            self.membership.turned();
            self.release_held();
            if let Some(fault) = fault
                && self.membership.is_joined()
            {
                // A second after joining, once READY=1 and the first pings are out.
                let at = *fault_at.get_or_insert_with(|| Instant::now() + HEARTBEAT);
                if Instant::now() >= at {
                    fault.strike();
                }
            }
            if self.inbox.flush_due(Instant::now()) {
                // The sends queued by the last input leave first (their link tasks run
                // during the yield); then the inbox's deferred commit.
                tokio::task::yield_now().await;
                self.inbox.flush();
            }
            // Messages the store could not keep are asked for again by anti-entropy.
            for (origin, seq) in self.inbox.take_dropped() {
                self.overlay.forget_broadcast(&origin, seq);
            }
            let overlay = &self.overlay;
            self.timers.drop_front_while(|t| !overlay.wants_timer(t));
            let timer = self.timers.next().map(|at| self.instant(at));
            let flush = self
                .inbox
                .flush_deadline()
                .map(tokio::time::Instant::from_std);
            let next = match (timer, flush) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::select! {
                n = inbound.recv_many(&mut arrived, take), if inbound_open => {
                    // 0: every sender is gone (the transport stopped).
                    inbound_open = n > 0;
                    if batch {
                        self.prevalidate(&arrived);
                    }
                    for item in arrived.drain(..) {
                        match item {
                            Inbound::Message { from, msg, at } => {
                                self.feed_arrived(Input::Message { from, msg }, Some(at));
                            }
                            Inbound::Unreachable(id) => {
                                self.feed(Input::Unreachable(id));
                            }
                        }
                    }
                }
                cmd = commands.recv() => match cmd {
                    None => return,
                    Some(DriverCommand::Input(input)) => {
                        self.feed(input);
                    }
                    Some(DriverCommand::View(reply)) => {
                        self.meet();
                        let _ = reply.send(self.view());
                    }
                    Some(DriverCommand::Originate { job, reply }) => {
                        self.originate_or_hold(job, reply);
                    }
                    Some(DriverCommand::Trace { origin, seq, reply }) => {
                        let token = self.next_trace;
                        self.next_trace = self.next_trace.wrapping_add(1);
                        self.traces.insert(token, reply);
                        self.feed(Input::Trace { origin, seq, token });
                    }
                    Some(DriverCommand::Lookup { key, reply }) => {
                        let token = self.next_lookup;
                        self.next_lookup = self.next_lookup.wrapping_add(1);
                        self.lookups.insert(token, reply);
                        self.feed(Input::Lookup { key, token });
                    }
                    Some(DriverCommand::Leave(reply)) => {
                        self.feed(Input::Leave);
                        if self.overlay.phase() == Phase::Left {
                            let _ = reply.send(());
                        } else {
                            self.leave_waiters.push(reply);
                        }
                    }
                },
                _ = heartbeat.tick() => {
                    // The pool keeps the connections of the routing state when it is full.
                    self.transport
                        .set_routing(self.overlay.ring().known_peers().into_iter().map(|p| p.id));
                    self.meet();
                }
                () = sleep_until(next) => {
                    let now = self.now();
                    for timer in self.timers.due(now) {
                        if self.overlay.wants_timer(&timer) {
                            self.feed(Input::Timer(timer));
                        }
                    }
                }
            }
        }
    }

    /// Hands the envelopes the overlay will validate among `arrived` to the inbox at once.
    fn prevalidate(&self, arrived: &[Inbound<Message>]) {
        if arrived.len() < 2 {
            return;
        }
        let envs: Vec<&chat_overlay::broadcast::Envelope> = arrived
            .iter()
            .filter_map(|item| match item {
                Inbound::Message { msg, .. } => self.overlay.envelope_to_validate(msg),
                Inbound::Unreachable(_) => None,
            })
            .collect();
        if envs.len() >= 2 {
            self.inbox.prevalidate(&envs);
        }
    }

    /// Feeds one input and executes the outputs: sends and timers first, then events, so a
    /// broadcast is queued for the next hops before it is stored here. (Yielding to the
    /// runtime between the two, so the sends leave before the store write, was measured: it
    /// halves the sustained throughput and does not improve latency; docs/performance.md.)
    ///
    /// Returns the refusal of a broadcast this input asked for, if any.
    fn feed(&mut self, input: Input) -> Option<BroadcastError> {
        self.feed_arrived(input, None)
    }

    /// [`Driver::feed`] for an input that reached the driver at `at` (a message that waited
    /// in the inbound queue: the trace log counts the wait as this node's).
    fn feed_arrived(&mut self, input: Input, at: Option<Instant>) -> Option<BroadcastError> {
        let now = self.now();
        let mut events = Vec::new();
        let seq = match &input {
            Input::Broadcast { seq, .. } => Some(*seq),
            _ => None,
        };
        let outputs = match at {
            Some(at) => {
                let since = at.saturating_duration_since(self.epoch);
                let arrived = Time::from_micros(u64::try_from(since.as_micros()).unwrap_or(0));
                self.overlay.handle_arrived(now, arrived, input)
            }
            None => self.overlay.handle(now, input),
        };
        let refusal = seq.and_then(|seq| chat_overlay::overlay::refusal(&outputs, seq));
        for output in outputs {
            match output {
                Output::Send { to, msg } => self.transport.send(to, &msg),
                Output::SetTimer { at, timer } => {
                    if !self.timers.arm(at, timer) {
                        warn!(?timer, "timer heap full; timer dropped");
                    }
                }
                Output::Event(event) => events.push(event),
            }
        }
        // The size first: an event (Joined) may wake readers of it (the READY=1 status).
        let exact = self.overlay.ring_size_exact();
        self.membership.set_ring_size(
            exact.unwrap_or_else(|| self.overlay.ring_size_estimate()),
            exact.is_some(),
        );
        for event in events {
            self.on_event(event);
        }
        refusal
    }

    /// [`Driver::originate`], or, while the node still learns its own numbering from its
    /// neighbours, holds the job (bounded) until it knows ([`Driver::release_held`]).
    fn originate_or_hold(
        &mut self,
        job: super::originate::Job,
        reply: oneshot::Sender<Result<(), BroadcastError>>,
    ) {
        let learning = self.overlay.admits_broadcast(self.now()) == Err(BroadcastError::Numbering);
        if learning && self.held.len() < MAX_HELD {
            self.held.push_back((job, reply));
        } else {
            let _ = reply.send(self.originate(job));
        }
    }

    /// Runs the held sends, in order, once the node knows its numbering (or has left).
    fn release_held(&mut self) {
        while !self.held.is_empty()
            && self.overlay.admits_broadcast(self.now()) != Err(BroadcastError::Numbering)
        {
            if let Some((job, reply)) = self.held.pop_front() {
                let _ = reply.send(self.originate(job));
            }
        }
    }

    /// Runs `job` and broadcasts what it made if the overlay admits a broadcast now; the
    /// job's store write happens only then ([`super::originate`]). The job numbers its
    /// message above the highest own number the ring is known to hold.
    fn originate(&mut self, job: super::originate::Job) -> Result<(), BroadcastError> {
        self.overlay.admits_broadcast(self.now())?;
        let Some((seq, payload)) = job(self.overlay.own_seq_floor()) else {
            // The job failed before anything was stored; it told its caller why.
            return Ok(());
        };
        match self.feed(Input::Broadcast { seq, payload }) {
            Some(refusal) => {
                // Cannot happen: the overlay admitted this very broadcast a moment ago. The
                // message is stored here and anti-entropy will still offer it to neighbours.
                error!(seq, %refusal, "an admitted broadcast was refused");
                Err(refusal)
            }
            None => Ok(()),
        }
    }

    /// Hands one event to whoever needs it, inline: no event is copied into a channel that
    /// readers must wake for (a delivery is the inbox's alone; a copy of every message for
    /// other readers cost each of them a wake-up per message).
    fn on_event(&mut self, event: Event) {
        match event {
            Event::Records(e) => self.records.event(e),
            Event::Direct(e) => self.direct.event(e),
            Event::Broadcast(BroadcastEvent::Deliver { env, .. }) => self.inbox.deliver(&env),
            Event::Broadcast(BroadcastEvent::Refused { seq, error }) => {
                warn!(seq, %error, "broadcast refused by the overlay")
            }
            Event::Broadcast(BroadcastEvent::Traced { token, result }) => {
                if let Some(reply) = self.traces.remove(&token) {
                    let _ = reply.send(result);
                }
            }
            Event::LookupDone {
                token,
                result,
                followers,
                ..
            } => {
                if let Some(reply) = self.lookups.remove(&token) {
                    let _ = reply.send(result.map(|s| {
                        let mut all = vec![s];
                        all.extend(followers);
                        all
                    }));
                }
            }
            Event::Joined => {
                info!(
                    ring_size = self.overlay.ring_size_estimate(),
                    "joined the ring"
                );
                self.membership.set_joined(true);
            }
            Event::Left => {
                info!("left the ring");
                self.membership.set_joined(false);
                for w in self.leave_waiters.drain(..) {
                    let _ = w.send(());
                }
            }
            Event::JoinFailed { .. } => info!("join attempt failed; retrying"),
            Event::PeerSuspected(id) => debug!(peer = %id.short(), "peer suspected"),
            Event::SuccessorChanged(p) => {
                debug!(successor = ?p.map(|p| p.id.short()), "successor changed")
            }
            Event::PredecessorChanged(p) => {
                debug!(predecessor = ?p.map(|p| p.id.short()), "predecessor changed");
                self.predecessor.send_replace(p);
            }
            // A service the daemon runs no consumer for (a test service).
            Event::Service(e) => debug!(service = e.service, "service event not consumed"),
            _ => {}
        }
    }

    /// Notes the peers connected now and those in the routing state as met.
    fn meet(&mut self) {
        let (at, unix_ms) = (Instant::now(), crate::clock::unix_ms());
        self.met.expire(at);
        let connected = self.transport.peers().into_iter().map(|p| Peer {
            id: p.id,
            addr: p.addr,
        });
        for p in connected.chain(self.overlay.ring().known_peers()) {
            self.met.saw(p, at, unix_ms);
        }
    }

    fn view(&self) -> RingView {
        RingView {
            me: self.overlay.me(),
            member: self.overlay.is_member(),
            predecessor: self.overlay.ring().predecessor(),
            successors: self.overlay.ring().successors().to_vec(),
            fingers: self.overlay.ring().fingers().to_vec(),
            size_estimate: self.overlay.ring_size_estimate(),
            size_exact: self.overlay.ring_size_exact(),
            suspects: self.overlay.ring().suspects(self.now()),
            met: self.met.list(),
            stats: self.overlay.ring().stats().clone(),
            broadcast: self.overlay.broadcast().stats().clone(),
            records: self.overlay.records().stats().clone(),
            records_held: self.overlay.records().store().len(),
            records_bytes: self.overlay.records().store().bytes(),
            direct: self.overlay.direct().stats().clone(),
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
