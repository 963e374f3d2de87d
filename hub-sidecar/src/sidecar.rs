//! The sidecar's loop: on every sequencer announcement (a port or client came or went) and
//! every few seconds for fresh latency figures, ask rtpmidid who is where, make the kernel's
//! subscriptions match the plan, and publish who is in the hub.
//!
//! Wiring is event-driven: a participant's port is wired as soon as the sequencer announces
//! it, not at the next refresh. The kernel's own subscription list is the truth the plan is
//! compared with, so a restart of the sidecar or of rtpmidid converges on the same wiring.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use midihub_api::contract::reasons::wiring as reasons;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

use crate::health::Health;
use crate::metrics::ErrorSource;
use crate::publish::Sink;
use crate::report::{Due, Report, Throttle, WiringState};
use crate::roster::Roster;
use crate::rtpmidid::control::ControlClient;
use crate::rtpmidid::status::RtpmididStatus;
use crate::sequencer::{Sequencer, SequencerEvent};
use crate::wiring::{self, ParticipantPort, PortAddr};

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

/// The sidecar's state between passes.
pub struct Sidecar {
    sequencer: Sequencer,
    control: ControlClient,
    sink: Sink,
    health: Arc<Health>,
    pacing: Pacing,
    roster: Roster,
    throttle: Throttle,
    /// The last round-trip sample seen per participant (room, SSRC), to count each once.
    last_round_trip: BTreeMap<(u16, u32), f64>,
    /// What rtpmidid's last status could not explain, logged when it changes.
    status_warnings: Vec<String>,
    /// Ports the sequencer announced that rtpmidid's status has not explained yet (a
    /// participant's port can show up in the sequencer a moment before it does in `status`),
    /// with when they were announced.
    unexplained: BTreeMap<PortAddr, Instant>,
}

impl Sidecar {
    pub fn new(
        sequencer: Sequencer,
        control: ControlClient,
        sink: Sink,
        roster: Roster,
        health: Arc<Health>,
        pacing: Pacing,
    ) -> Self {
        let throttle = Throttle::new(pacing.min_publish_interval, pacing.latency_publish_interval);
        Self {
            sequencer,
            control,
            sink,
            health,
            pacing,
            roster,
            throttle,
            last_round_trip: BTreeMap::new(),
            status_warnings: Vec::new(),
            unexplained: BTreeMap::new(),
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
        loop {
            let retry_at =
                (!self.unexplained.is_empty()).then(|| Instant::now() + self.pacing.retry);
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
            wiring: WiringState::unknown(reasons::STOPPED, "the hub sidecar stopped"),
        };
        self.publish(farewell).await;
        Ok(())
    }

    /// Takes note of a sequencer announcement.
    fn note(&mut self, event: SequencerEvent) {
        tracing::debug!(?event, "sequencer announcement");
        match event {
            SequencerEvent::PortStart(port) => {
                self.unexplained.insert(port, Instant::now());
            }
            SequencerEvent::PortExit(port) => {
                self.unexplained.remove(&port);
            }
            SequencerEvent::ClientExit(client) => {
                self.unexplained.retain(|port, _| port.client != client);
            }
            _ => {}
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

    /// One look at rtpmidid and the sequencer, and the wiring made right.
    async fn pass(&mut self) -> Report {
        let status = match self.control.status().await {
            Ok(status) => status,
            Err(error) => {
                self.health.metrics.error(ErrorSource::Control);
                tracing::warn!(%error, "cannot read rtpmidid's status; the wiring is left as it is");
                return self.stale_report(error.reason(), error.to_string());
            }
        };
        if status.warnings != self.status_warnings {
            for warning in &status.warnings {
                tracing::warn!(%warning, "part of rtpmidid's status was skipped");
            }
            self.status_warnings = status.warnings.clone();
        }
        let snapshot = match self.sequencer.snapshot(&status.alsa_name).await {
            Ok(snapshot) => snapshot,
            Err(error) => {
                self.health.metrics.error(ErrorSource::Sequencer);
                tracing::warn!(%error, "cannot read the sequencer");
                return self.stale_report(reasons::SEQUENCER_ERROR, error.to_string());
            }
        };
        let Some(client) = snapshot.client else {
            let message = format!(
                "rtpmidid answers, but its ALSA client {:?} is not in the sequencer",
                status.alsa_name
            );
            return self.stale_report(reasons::DAEMON_NOT_IN_SEQUENCER, message);
        };

        let participants = participant_ports(&status, client);
        let existing: BTreeSet<PortAddr> = snapshot.ports.iter().map(|p| p.addr).collect();
        let known: BTreeSet<PortAddr> = participants.iter().map(|p| p.port).collect();
        // Announced ports stay unexplained until the status names them, they go away, or
        // they are old enough to be something else (rtpmidid's own port, say).
        let retry_for = self.pacing.retry_for;
        self.unexplained.retain(|port, announced| {
            !known.contains(port) && existing.contains(port) && announced.elapsed() < retry_for
        });
        let participants: Vec<ParticipantPort> = participants
            .into_iter()
            .filter(|p| existing.contains(&p.port))
            .collect();

        let plan = wiring::plan(&participants, &snapshot.subscriptions);
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
        self.health
            .metrics
            .wiring_changed(plan.add.len(), plan.remove.len());

        let changes = self
            .roster
            .update(&status.participants, jiff::Timestamp::now());
        for participant in &changes.joined {
            tracing::info!(room = participant.port, participant = %participant.name, address = %participant.remote_address, "joined");
        }
        for participant in &changes.left {
            tracing::info!(room = participant.port, participant = %participant.name, address = %participant.remote_address, "left");
        }
        if (!changes.joined.is_empty() || !changes.left.is_empty())
            && let Err(error) = self.sink.announce(&changes).await
        {
            self.health.metrics.error(ErrorSource::Publish);
            tracing::warn!(%error, "cannot announce joins and leaves");
        }
        self.record_figures(&status);

        let connected = participants.iter().filter(|p| p.connected).count();
        let wiring = if failures.is_empty() {
            WiringState::wired(
                connected,
                wiring::desired_subscriptions(&participants).len(),
            )
        } else {
            self.health.metrics.error(ErrorSource::Sequencer);
            tracing::warn!(?failures, "some subscriptions could not be changed");
            WiringState::unknown(reasons::SUBSCRIPTION_FAILED, failures.join("; "))
        };
        Report {
            participants: self.roster.participants(),
            wiring,
        }
    }

    /// The last known participants, with the reason the wiring could not be checked.
    fn stale_report(&self, reason: &str, message: String) -> Report {
        Report {
            participants: self.roster.participants(),
            wiring: WiringState::unknown(reason, message),
        }
    }

    fn record_figures(&mut self, status: &RtpmididStatus) {
        for room in &status.rooms {
            let count = status
                .participants
                .iter()
                .filter(|p| p.connected && p.room_port == room.port)
                .count();
            self.health.metrics.set_participants(room.port, count);
        }
        let mut seen = BTreeMap::new();
        for participant in status.participants.iter().filter(|p| p.connected) {
            if let Some(latency) = participant.latency {
                let key = (participant.room_port, participant.ssrc);
                if self.last_round_trip.get(&key) != Some(&latency.last) {
                    self.health.metrics.observe_round_trip(latency.last);
                }
                seen.insert(key, latency.last);
            }
        }
        self.last_round_trip = seen;
    }
}

/// The ALSA ports of the participants rtpmidid reports, on the daemon's client.
fn participant_ports(status: &RtpmididStatus, client: i32) -> Vec<ParticipantPort> {
    status
        .participants
        .iter()
        .filter_map(|participant| {
            Some(ParticipantPort {
                port: PortAddr {
                    client,
                    port: participant.alsa_port?,
                },
                room: participant.room_port,
                connected: participant.connected,
            })
        })
        .collect()
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
