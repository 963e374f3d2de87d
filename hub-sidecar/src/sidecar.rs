//! The sidecar's loop: on every sequencer announcement (a port or client came or went) and
//! every few seconds for fresh latency figures, ask rtpmidid who is where, make the kernel's
//! subscriptions match the plan, and publish who is in the hub.
//!
//! Wiring is event-driven: a participant's port is wired as soon as the sequencer announces
//! it, not at the next refresh. The kernel's own subscription list is the truth the plan is
//! compared with, so a restart of the sidecar or of rtpmidid converges on the same wiring.
//!
//! This is the shell: the control socket, the sequencer, the sink, the clock, the logs and the
//! metrics. What a pass decides is [`crate::step`]'s.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use midihub_api::contract::reasons::wiring as reasons;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::allow::RoomRules;
use crate::health::Health;
use crate::metrics::ErrorSource;
use crate::publish::Sink;
use crate::report::{Due, Report, Throttle, WiringState};
use crate::roster::Roster;
use crate::rtpmidid::control::ControlClient;
use crate::sequencer::{Sequencer, SequencerEvent};
use crate::step::{self, Memory, Outcome};
use crate::wiring::WiringPlan;

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
    control: ControlClient,
    sink: Sink,
    health: Arc<Health>,
    pacing: Pacing,
    throttle: Throttle,
    memory: Memory,
    /// The rooms' allow-lists, read at every pass; a change also starts a pass. Their sender
    /// may be gone (local mode's lists never change): the last lists stay in force.
    rules: watch::Receiver<RoomRules>,
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
            control,
            sink,
            health,
            pacing,
            throttle,
            memory: Memory::new(roster),
            rules,
        }
    }

    /// Runs until `shutdown` completes (then publishes that nobody is connected any more, as
    /// the hub goes away) or the sequencer thread stops.
    pub async fn run(
        mut self,
        mut events: UnboundedReceiver<SequencerEvent>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), SidecarError> {
        tokio::pin!(shutdown);
        let mut refresh = tokio::time::interval(self.pacing.refresh);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pending: Option<(Instant, Report)> = None;
        let mut rules_may_change = true;
        loop {
            let retry_at = self
                .memory
                .awaits_explanation()
                .then(|| Instant::now() + self.pacing.retry);
            tokio::select! {
                () = &mut shutdown => break,
                event = events.recv() => {
                    let Some(event) = event else {
                        return Err(SidecarError::SequencerStopped);
                    };
                    // One pass serves every announcement that is already queued.
                    self.note(event);
                    while let Ok(event) = events.try_recv() {
                        self.note(event);
                    }
                }
                changed = self.rules.changed(), if rules_may_change => {
                    if changed.is_err() {
                        rules_may_change = false;
                        continue;
                    }
                }
                _ = refresh.tick() => {}
                () = sleep_until(retry_at) => {}
                () = sleep_until(pending.as_ref().map(|(at, _)| *at)) => {
                    if let Some((_, report)) = pending.take() {
                        self.publish(report).await;
                    }
                    continue;
                }
            }
            let started = Instant::now();
            let report = self.pass().await;
            tracing::debug!(took = ?started.elapsed(), wiring = %report.wiring.reason, "pass");
            let now = Instant::now().into_std();
            self.health.beat(&report, now);
            pending = match self.throttle.due(&report, now) {
                Due::Now => {
                    self.publish(report).await;
                    None
                }
                Due::At(at) => Some((Instant::from_std(at), report)),
                Due::Never => None,
            };
        }
        let farewell = Report {
            participants: Vec::new(),
            refused: Vec::new(),
            wiring: WiringState::unknown(reasons::STOPPED, "the hub sidecar stopped"),
        };
        self.publish(farewell).await;
        Ok(())
    }

    /// Takes note of a sequencer announcement.
    fn note(&mut self, event: SequencerEvent) {
        tracing::debug!(?event, "sequencer announcement");
        self.memory.note(&event, Instant::now().into_std());
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

    /// One look at rtpmidid and the sequencer, and the wiring made right.
    async fn pass(&mut self) -> Report {
        let metrics = &self.health.metrics;
        let status = match self.control.status().await {
            Ok(status) => status,
            Err(error) => {
                metrics.error(ErrorSource::Control);
                tracing::warn!(%error, "cannot read rtpmidid's status; the wiring is left as it is");
                return self
                    .memory
                    .report(WiringState::unknown(error.reason(), error.to_string()));
            }
        };
        if self.memory.warnings_changed(&status.warnings) {
            for warning in &status.warnings {
                tracing::warn!(%warning, "part of rtpmidid's status was skipped");
            }
        }
        let snapshot = match self.sequencer.snapshot(&status.alsa_name).await {
            Ok(snapshot) => snapshot,
            Err(error) => {
                metrics.error(ErrorSource::Sequencer);
                tracing::warn!(%error, "cannot read the sequencer");
                return self.memory.report(WiringState::unknown(
                    reasons::SEQUENCER_ERROR,
                    error.to_string(),
                ));
            }
        };
        let now = Instant::now().into_std();
        let rules = self.rules.borrow_and_update().clone();
        let plan = match step::plan(
            &self.memory,
            &status,
            &snapshot,
            &rules,
            now,
            self.pacing.retry_for,
        ) {
            Ok(plan) => plan,
            Err(wiring) => return self.memory.report(wiring),
        };
        let failures = self.rewire(&plan.wiring).await;
        let Outcome {
            changes,
            figures,
            report,
        } = step::conclude(
            &mut self.memory,
            &status,
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
        report
    }

    /// Removes and adds the plan's subscriptions; returns why those that failed did.
    async fn rewire(&self, plan: &WiringPlan) -> Vec<String> {
        let mut failures = Vec::new();
        for subscription in &plan.remove {
            match self.sequencer.unsubscribe(*subscription).await {
                Ok(()) => tracing::info!(%subscription, "unwired"),
                Err(error) => failures.push(error.to_string()),
            }
        }
        for subscription in &plan.add {
            match self.sequencer.subscribe(*subscription).await {
                Ok(()) => tracing::info!(%subscription, "wired"),
                Err(error) => failures.push(error.to_string()),
            }
        }
        failures
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
