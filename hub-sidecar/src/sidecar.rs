//! The sidecar's loop: on every sequencer announcement (a port or client came or went) and
//! every few seconds for fresh latency figures, ask rtpmidid who is where, make the kernel's
//! subscriptions match the plan, and publish who is in the hub.
//!
//! Wiring is event-driven: a participant's port is wired as soon as the sequencer announces
//! it, not at the next refresh. Where each room has a sequencer client of its own (midihub's
//! patched rtpmidid), the sequencer thread wires a port that starts in a room without an
//! allow-list itself, as it reads the announcement (each pass tells it which rooms those are);
//! rtpmidid's status, asked for beside the loop (the loop never waits for it), then says who
//! joined. The kernel's own subscription list is the truth the plan is compared with, so a
//! restart of the sidecar or of rtpmidid converges on the same wiring.
//!
//! After each pass the stuck-note guard ([`crate::guard`]), when there is one, is told who plays
//! in which room; a participant who is no longer there is its leave (the guard also hears a
//! port's exit itself, sooner). Panic requests are handed to it.
//!
//! This is the shell: the control socket, the sequencer, the sink, the clock, the logs and the
//! metrics. What a pass decides is [`crate::step`]'s.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use midihub_api::contract::reasons::wiring as reasons;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::allow::RoomRules;
use crate::guard::{Guard, GuardEvent, PanicRequest};
use crate::health::Health;
use crate::metrics::ErrorSource;
use crate::publish::Sink;
use crate::report::{Due, Report, Throttle, WiringState};
use crate::roster::Roster;
use crate::rtpmidid::control::{ControlClient, ControlError};
use crate::rtpmidid::status::RtpmididStatus;
use crate::sequencer::{Announcement, OpenRooms, Sequencer, SequencerError, SequencerEvent};
use crate::step::{self, Memory, Outcome};
use crate::wiring::{PortAddr, Rooms, Subscription, WiringPlan};

/// The log target of the line each wired join gets (at debug): `reaction_ms`, from the
/// announcement of its port to its last subscription; `by`, the sequencer thread (at the
/// announcement) or a pass; for a pass, `before_pass_ms`, of the reaction until the pass
/// started, and `status_ms`, of that the part of rtpmidid's status call after the
/// announcement (both 0 for the thread). The join→wired benchmark reads it; it can be turned
/// on alone (`RUST_LOG=info,hub_sidecar::reaction=debug`).
pub const REACTION_LOG_TARGET: &str = "hub_sidecar::reaction";

/// How the loop paces itself.
#[derive(Clone, Debug)]
pub struct Pacing {
    /// How often rtpmidid is asked for fresh figures when nothing happens.
    pub refresh: Duration,
    /// A port the daemon created may show up in its `status` a moment after the sequencer
    /// announced it: how soon to look again, and for how long.
    pub retry: Duration,
    pub retry_for: Duration,
    /// Publications: membership changes at most this often …
    pub min_publish_interval: Duration,
    /// … and latency-only changes at most this often.
    pub latency_publish_interval: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            refresh: Duration::from_secs(2),
            retry: Duration::from_millis(20),
            retry_for: Duration::from_secs(2),
            min_publish_interval: Duration::from_secs(1),
            latency_publish_interval: Duration::from_secs(10),
        }
    }
}

/// The sidecar stopped for a reason it cannot recover from.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    #[error(
        "the ALSA sequencer thread stopped: the sidecar cannot wire participants any more and exits so that it is restarted"
    )]
    SequencerStopped,
}

/// The loop, with what it talks to and what it remembers between passes.
pub struct Sidecar {
    sequencer: Sequencer,
    control: Arc<ControlClient>,
    sink: Sink,
    health: Arc<Health>,
    pacing: Pacing,
    throttle: Throttle,
    memory: Memory,
    /// The rooms' allow-lists, read at every pass; a change also starts a pass. Their sender
    /// may be gone (local mode's lists never change): the last lists stay in force.
    rules: watch::Receiver<RoomRules>,
    /// The stuck-note guard, unless it is off or its thread stopped.
    guard: Option<NoteGuard>,
    /// Requests for the hub-wide panic, while their sender lives.
    panics: Option<UnboundedReceiver<PanicRequest>>,
    /// Who plays in which room as the last pass found it, with the joins the sequencer thread
    /// wired since, and whether the guard has yet to hear of those.
    playing: Rooms,
    guard_behind: bool,
}

/// A status of rtpmidid's and when it was asked for and read.
struct StatusRead {
    status: RtpmididStatus,
    asked: Instant,
    read: Instant,
}

/// A call for rtpmidid's status under way, and what it gives.
type StatusCall = Pin<Box<dyn Future<Output = StatusReply> + Send>>;
type StatusReply = (Result<RtpmididStatus, ControlError>, Instant, Instant);

/// The stuck-note guard as the loop drives it.
struct NoteGuard {
    guard: Guard,
    events: UnboundedReceiver<GuardEvent>,
}

impl Sidecar {
    pub fn new(
        sequencer: Sequencer,
        control: ControlClient,
        sink: Sink,
        roster: Roster,
        health: Arc<Health>,
        pacing: Pacing,
        rules: watch::Receiver<RoomRules>,
    ) -> Self {
        let throttle = Throttle::new(pacing.min_publish_interval, pacing.latency_publish_interval);
        Self {
            sequencer,
            control: Arc::new(control),
            sink,
            health,
            pacing,
            throttle,
            memory: Memory::new(roster),
            rules,
            guard: None,
            panics: None,
            playing: Rooms::new(),
            guard_behind: false,
        }
    }

    /// Drives the stuck-note `guard` (started with [`Guard::start`], whose events are
    /// `events`) from the loop.
    pub fn with_guard(mut self, guard: Guard, events: UnboundedReceiver<GuardEvent>) -> Self {
        self.guard = Some(NoteGuard { guard, events });
        self
    }

    /// Sends the hub-wide panic whenever `requests` asks for it (it needs the guard).
    pub fn with_panics(mut self, requests: UnboundedReceiver<PanicRequest>) -> Self {
        self.panics = Some(requests);
        self
    }

    /// Runs until `shutdown` completes (then publishes that nobody is connected any more, as
    /// the hub goes away) or the sequencer thread stops.
    pub async fn run(
        mut self,
        mut events: UnboundedReceiver<Announcement>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), SidecarError> {
        tokio::pin!(shutdown);
        let mut refresh = tokio::time::interval(self.pacing.refresh);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pending: Option<(Instant, Report)> = None;
        let mut rules_may_change = true;
        // At most one call for rtpmidid's status at a time; one asked for meanwhile is made
        // once it is answered (it may not have seen what called for it).
        let mut status_call: Option<StatusCall> = None;
        let mut status_wanted = true;
        loop {
            if status_wanted && status_call.is_none() {
                status_call = Some(self.call_status());
                status_wanted = false;
            }
            let retry_at = (self.memory.awaits_explanation() && status_call.is_none())
                .then(|| Instant::now() + self.pacing.retry);
            let looked = tokio::select! {
                () = &mut shutdown => break,
                announcement = events.recv() => {
                    let Some(announcement) = announcement else {
                        return Err(SidecarError::SequencerStopped);
                    };
                    // Every announcement already queued is taken in; the echoes of the last
                    // pass's own changes call for no look.
                    let mut look = self.note(announcement);
                    while let Ok(announcement) = events.try_recv() {
                        look |= self.note(announcement);
                    }
                    // The joins the thread wired are watched at once, not after the status.
                    if std::mem::take(&mut self.guard_behind) {
                        self.guard_watch(self.playing.clone()).await;
                    }
                    status_wanted |= look;
                    continue;
                }
                reply = or_never(status_call.as_mut()) => {
                    status_call = None;
                    match self.status_read(reply) {
                        Ok(read) => read,
                        Err(report) => {
                            pending = self.reported(report).await;
                            continue;
                        }
                    }
                }
                changed = self.rules.changed(), if rules_may_change => {
                    match changed {
                        // (The sequencer thread checks the rules at each join itself.)
                        Ok(()) => status_wanted = true,
                        Err(_) => rules_may_change = false,
                    }
                    continue;
                }
                event = or_never(self.guard.as_mut().map(|guard| guard.events.recv())) => {
                    self.guard_did(event);
                    continue;
                }
                request = or_never(self.panics.as_mut().map(UnboundedReceiver::recv)) => {
                    match request {
                        Some(request) => self.panic(request).await,
                        None => self.panics = None,
                    }
                    continue;
                }
                _ = refresh.tick() => {
                    status_wanted = true;
                    continue;
                }
                () = or_never(retry_at.map(tokio::time::sleep_until)) => {
                    status_wanted = true;
                    continue;
                }
                () = or_never(pending.as_ref().map(|(at, _)| tokio::time::sleep_until(*at))) => {
                    if let Some((_, report)) = pending.take() {
                        self.publish(report).await;
                    }
                    continue;
                }
            };
            let report;
            (report, status_wanted) = self.pass(&looked, &mut events, status_wanted).await;
            pending = self.reported(report).await;
        }
        let farewell = Report {
            participants: Vec::new(),
            refused: Vec::new(),
            wiring: WiringState::unknown(reasons::STOPPED, "the hub sidecar stopped"),
        };
        self.publish(farewell).await;
        Ok(())
    }

    /// A call for rtpmidid's status, made beside the loop.
    fn call_status(&self) -> StatusCall {
        let control = self.control.clone();
        Box::pin(async move {
            let asked = Instant::now();
            let status = control.status().await;
            (status, asked, Instant::now())
        })
    }

    /// Takes rtpmidid's answer: the status to look with, or, when the call failed, the report
    /// that says why (the wiring is left as it is, and the sequencer thread wires nothing by
    /// itself until a status comes).
    fn status_read(&mut self, (status, asked, read): StatusReply) -> Result<StatusRead, Report> {
        match status {
            Ok(status) => {
                if self.memory.warnings_changed(&status.warnings) {
                    for warning in &status.warnings {
                        tracing::warn!(%warning, "part of rtpmidid's status was skipped");
                    }
                }
                Ok(StatusRead {
                    status,
                    asked,
                    read,
                })
            }
            Err(error) => {
                self.wire_joins_of(OpenRooms::new());
                self.health.metrics.error(ErrorSource::Control);
                tracing::warn!(%error, "cannot read rtpmidid's status; the wiring is left as it is");
                Err(self
                    .memory
                    .report(WiringState::unknown(error.reason(), error.to_string())))
            }
        }
    }

    /// Takes a pass's report into the health checks and publishes it now, or says when.
    async fn reported(&mut self, report: Report) -> Option<(Instant, Report)> {
        let now = Instant::now().into_std();
        self.health.beat(&report, now);
        match self.throttle.due(&report, now) {
            Due::Now => {
                self.publish(report).await;
                None
            }
            Due::At(at) => Some((Instant::from_std(at), report)),
            Due::Never => None,
        }
    }

    /// Counts and logs a join wired at `wired`, whose port was `announced`: by a pass that
    /// `started` with a status as `looked`, or by the sequencer thread at the announcement.
    fn join_wired(
        &self,
        port: PortAddr,
        announced: std::time::Instant,
        wired: std::time::Instant,
        pass: Option<(Instant, &StatusRead)>,
    ) {
        let since = |at: std::time::Instant| at.saturating_duration_since(announced);
        let reaction = since(wired);
        self.health.metrics.observe_wiring_reaction(reaction);
        let milliseconds = |duration: Duration| duration.as_secs_f64() * 1000.0;
        // Until the pass started, and of that the part of the status call after the
        // announcement; neither for a join the thread wired.
        let (before_pass, status_wait) = pass.map_or_else(Default::default, |(started, looked)| {
            let since = |at: Instant| since(at.into_std());
            let status_wait = since(looked.read).saturating_sub(since(looked.asked));
            (since(started), status_wait)
        });
        tracing::debug!(
            target: REACTION_LOG_TARGET,
            %port,
            reaction_ms = milliseconds(reaction),
            before_pass_ms = milliseconds(before_pass),
            status_ms = milliseconds(status_wait),
            by = if pass.is_some() { "pass" } else { "sequencer thread" },
            "join wired"
        );
    }

    /// Tells the sequencer thread which rooms' joins it wires itself (none: it wires nothing by
    /// itself until a pass says otherwise).
    fn wire_joins_of(&self, rooms: OpenRooms) {
        if let Err(error) = self.sequencer.wire_joins_of(rooms, self.rules.clone()) {
            tracing::debug!(%error, "cannot tell the sequencer thread the open rooms");
        }
    }

    /// Takes note of a sequencer announcement, as of when the sequencer thread read it;
    /// whether it calls for a pass.
    fn note(&mut self, announcement: Announcement) -> bool {
        tracing::debug!(event = ?announcement.event, "sequencer announcement");
        let look = self.memory.note(&announcement.event, announcement.read_at);
        if let (SequencerEvent::PortStart(port), Some(wired)) =
            (&announcement.event, &announcement.wired)
        {
            self.memory
                .wired_at_announcement(*port, &wired.subscriptions);
            self.join_wired(*port, announcement.read_at, wired.at, None);
            self.playing.entry(wired.room).or_default().insert(*port);
            self.guard_behind = true;
        }
        // What goes leaves the rooms the guard is told of between passes.
        match announcement.event {
            SequencerEvent::PortExit(gone) => {
                for ports in self.playing.values_mut() {
                    ports.remove(&gone);
                }
            }
            SequencerEvent::ClientExit(gone) => {
                for ports in self.playing.values_mut() {
                    ports.retain(|port| port.client != gone);
                }
            }
            _ => {}
        }
        look
    }

    /// Takes what the guard did into the metrics; `None`: its thread stopped (logged, and the
    /// loop goes on without it: the wiring matters more).
    fn guard_did(&mut self, event: Option<GuardEvent>) {
        let metrics = &self.health.metrics;
        match event {
            Some(GuardEvent::Released { room, notes, .. }) => metrics.notes_released(room, notes),
            Some(GuardEvent::EventsLost) => metrics.error(ErrorSource::Guard),
            None => {
                metrics.error(ErrorSource::Guard);
                tracing::error!(
                    "the stuck-note guard's thread stopped: notes of participants who leave are no longer released"
                );
                self.guard = None;
            }
        }
    }

    /// Sends the hub-wide panic, and tells so.
    async fn panic(&mut self, request: PanicRequest) {
        let Some(guard) = &self.guard else {
            tracing::warn!(
                why = %request.why,
                "a panic was asked for, but the stuck-note guard, which sends it, is off: nothing was sent"
            );
            return;
        };
        let sent = match guard.guard.panic().await {
            Ok(sent) => sent,
            Err(error) => {
                self.health.metrics.error(ErrorSource::Guard);
                tracing::warn!(why = %request.why, %error, "cannot send the panic");
                return;
            }
        };
        self.health.metrics.panic_sent();
        tracing::info!(why = %request.why, receivers = sent.receivers, failed = sent.failed, "panic sent");
        if let Err(error) = self.sink.panic_sent(&request.why, &sent).await {
            self.health.metrics.error(ErrorSource::Publish);
            tracing::warn!(%error, "cannot tell that the panic was sent");
        }
    }

    /// Tells the guard who plays in which room. At every pass, not only when the loop saw a
    /// change: the guard forgets a port as soon as it goes, and a participant who left and
    /// joined again between two passes may come back on the same port number.
    async fn guard_watch(&self, rooms: Rooms) {
        let Some(guard) = &self.guard else {
            return;
        };
        match guard.guard.watch(rooms).await {
            Ok(()) => {}
            Err(error) => {
                self.health.metrics.error(ErrorSource::Guard);
                tracing::warn!(%error, "cannot tell the stuck-note guard who plays");
            }
        }
    }

    async fn publish(&mut self, report: Report) {
        match self.sink.publish(&report).await {
            Ok(()) => self.throttle.published(report, Instant::now().into_std()),
            Err(error) => {
                self.health.metrics.error(ErrorSource::Publish);
                tracing::warn!(%error, "cannot publish the participants");
            }
        }
    }

    /// One look at the sequencer, with what rtpmidid's status `looked` says, and the wiring
    /// made right; whether a status is wanted (`status_wanted`, or announcements read during
    /// the pass call for a look).
    async fn pass(
        &mut self,
        looked: &StatusRead,
        events: &mut UnboundedReceiver<Announcement>,
        mut status_wanted: bool,
    ) -> (Report, bool) {
        let health = self.health.clone();
        let metrics = &health.metrics;
        let started = Instant::now();
        let status = &looked.status;
        let room_clients: Vec<i32> = status.rooms.iter().filter_map(|r| r.alsa_client).collect();
        let snapshot = self
            .sequencer
            .snapshot(&status.alsa_name, &room_clients)
            .await;
        // The announcement of every port the snapshot shows came before its reply: taken in
        // now, a port announced since the status was asked for is not taken for one it names.
        while let Ok(announcement) = events.try_recv() {
            status_wanted |= self.note(announcement);
        }
        let snapshot = match snapshot {
            Ok(snapshot) => snapshot,
            Err(error) => {
                metrics.error(ErrorSource::Sequencer);
                tracing::warn!(%error, "cannot read the sequencer");
                self.wire_joins_of(OpenRooms::new());
                let report = self.memory.report(WiringState::unknown(
                    reasons::SEQUENCER_ERROR,
                    error.to_string(),
                ));
                return (report, status_wanted);
            }
        };
        let looked_at = Instant::now();
        let rules = self.rules.borrow_and_update().clone();
        let plan = match step::plan(
            &self.memory,
            status,
            looked.asked.into_std(),
            &snapshot,
            &rules,
            looked_at.into_std(),
            self.pacing.retry_for,
        ) {
            Ok(plan) => plan,
            Err(wiring) => {
                self.wire_joins_of(OpenRooms::new());
                return (self.memory.report(wiring), status_wanted);
            }
        };
        let planned = Instant::now();
        let failures = self.rewire(&plan.wiring).await;
        let rewired = Instant::now();
        self.wire_joins_of(plan.open_rooms(status, &snapshot, &rules));
        tracing::debug!(
            snapshot = ?(looked_at - started),
            plan = ?(planned - looked_at),
            rewire = ?(rewired - planned),
            subscriptions = plan.wiring.add.len() + plan.wiring.remove.len(),
            "pass phases"
        );
        // After the wiring, so that a join's reaction does not wait for the guard.
        self.playing = plan.playing();
        self.guard_behind = false;
        self.guard_watch(self.playing.clone()).await;
        let Outcome {
            changes,
            figures,
            report,
        } = step::conclude(
            &mut self.memory,
            status,
            plan,
            &failures,
            jiff::Timestamp::now(),
        );

        for participant in &changes.joined {
            tracing::info!(room = participant.port, participant = %participant.name, address = %participant.remote_address, "joined");
        }
        for participant in &changes.left {
            tracing::info!(room = participant.port, participant = %participant.name, address = %participant.remote_address, "left");
        }
        for refused in &changes.refused {
            tracing::info!(room = refused.port, participant = %refused.name, address = %refused.remote_address, "refused by the room's allow-list; not wired");
            metrics.refused(refused.port);
        }
        if (!changes.joined.is_empty() || !changes.left.is_empty() || !changes.refused.is_empty())
            && let Err(error) = self.sink.announce(&changes).await
        {
            metrics.error(ErrorSource::Publish);
            tracing::warn!(%error, "cannot announce joins and leaves");
        }
        metrics.wiring_changed(figures.added, figures.removed);
        for (port, announced) in figures.wired_joins {
            self.join_wired(port, announced, rewired.into_std(), Some((started, looked)));
        }
        for (room, count) in figures.participants {
            metrics.set_participants(room, count);
        }
        for milliseconds in figures.new_round_trips {
            metrics.observe_round_trip(milliseconds);
        }
        if !failures.is_empty() {
            metrics.error(ErrorSource::Sequencer);
            tracing::warn!(?failures, "some subscriptions could not be changed");
        }
        (report, status_wanted)
    }

    /// Removes and adds the plan's subscriptions, all in one request to the sequencer thread;
    /// returns why those that failed did.
    async fn rewire(&self, plan: &WiringPlan) -> Vec<String> {
        if plan.add.is_empty() && plan.remove.is_empty() {
            return Vec::new();
        }
        let errors = match self.sequencer.rewire(plan.clone()).await {
            Ok(errors) => errors,
            Err(error) => return vec![error.to_string()],
        };
        let failed: BTreeSet<Subscription> = errors
            .iter()
            .filter_map(SequencerError::subscription)
            .collect();
        for subscription in plan.remove.iter().filter(|s| !failed.contains(s)) {
            tracing::info!(%subscription, "unwired");
        }
        for subscription in plan.add.iter().filter(|s| !failed.contains(s)) {
            tracing::info!(%subscription, "wired");
        }
        errors.iter().map(ToString::to_string).collect()
    }
}

/// What `future` gives; never, without one (no status call under way, no guard, no panic
/// requests, nothing to wait for).
async fn or_never<F: Future>(future: Option<F>) -> F::Output {
    match future {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}
