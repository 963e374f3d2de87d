//! What the sidecar publishes (participants, their count, a latency summary, whom the rooms'
//! allow-lists refuse and whether the wiring is known to be right) and when: at most about
//! once a second, and only when something meaningful changed. Pure: time is passed in.

use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use midihub_api::contract::reasons::wiring as reasons;
use midihub_api::contract::{self, WIRING_CONDITION};
use midihub_api::{MidiHubStatus, Participant, RefusedParticipant};
use serde::Serialize;

/// Whether the sidecar could check the wiring, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WiringState {
    pub ok: bool,
    /// CamelCase reason, e.g. `Wired`, `ControlSocketUnreachable`.
    pub reason: String,
    pub message: String,
}

impl WiringState {
    /// The wiring matches the participants rtpmidid reports.
    pub fn wired(participants: usize, subscriptions: usize) -> Self {
        Self {
            ok: true,
            reason: reasons::WIRED.into(),
            message: format!(
                "{participants} participant(s) connected through {subscriptions} subscription(s)"
            ),
        }
    }

    /// The wiring could not be checked.
    pub fn unknown(reason: &str, message: impl Into<String>) -> Self {
        Self {
            ok: false,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// One publication of the hub's participants.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub participants: Vec<Participant>,
    /// Connected, but refused by their room's allow-list: not participants, never wired.
    pub refused: Vec<RefusedParticipant>,
    pub wiring: WiringState,
}

impl Report {
    /// Number of connected participants (refused ones are not participants).
    pub fn participant_count(&self) -> i32 {
        i32::try_from(self.participants.len()).unwrap_or(i32::MAX)
    }

    /// Round-trip summary over the participants that have a measurement, e.g.
    /// `avg 21.5ms max 40.0ms`; `None` when nobody has one yet.
    pub fn latency_summary(&self) -> Option<String> {
        let averages: Vec<f64> = self
            .participants
            .iter()
            .filter_map(|p| p.latency.as_ref().map(|l| l.average_ms))
            .collect();
        if averages.is_empty() {
            return None;
        }
        let mean = averages.iter().sum::<f64>() / averages.len() as f64;
        let max = averages.iter().copied().fold(f64::MIN, f64::max);
        Some(format!("avg {mean:.1}ms max {max:.1}ms"))
    }

    /// The fields of a hub's status the sidecar writes, as of `now`: the participants and the
    /// refused (each listed even when there are none), the participants' count, the latency
    /// summary when anyone has one, and the Wiring condition, carried forward from the
    /// `previous` conditions so that its lastTransitionTime moves only when its status does.
    pub fn hub_status(&self, previous: &[Condition], now: jiff::Timestamp) -> MidiHubStatus {
        let wiring = contract::condition(
            WIRING_CONDITION,
            self.wiring.ok,
            &self.wiring.reason,
            self.wiring.message.clone(),
            None,
            previous,
            now,
        );
        MidiHubStatus {
            participants: Some(self.participants.clone()),
            refused: Some(self.refused.clone()),
            participant_count: Some(self.participant_count()),
            latency: self.latency_summary(),
            conditions: vec![wiring],
            ..MidiHubStatus::default()
        }
    }
}

/// How two reports differ, as far as readers of the status care.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Change {
    None,
    /// Only latency figures moved (by at least a millisecond).
    Latency,
    /// Someone joined, left or was refused, or the wiring state changed.
    Membership,
}

fn change(old: &Report, new: &Report) -> Change {
    let without_latency = |report: &Report| -> Vec<Participant> {
        report
            .participants
            .iter()
            .map(|p| Participant {
                latency: None,
                ..p.clone()
            })
            .collect()
    };
    if old.wiring != new.wiring
        || old.refused != new.refused
        || without_latency(old) != without_latency(new)
    {
        return Change::Membership;
    }
    // Latency is re-measured every few seconds at 0.1 ms resolution: a millisecond is the
    // smallest change worth a write.
    let rounded = |report: &Report| -> Vec<Option<(i64, i64, i64)>> {
        report
            .participants
            .iter()
            .map(|p| {
                p.latency.as_ref().map(|l| {
                    (
                        l.last_ms.round() as i64,
                        l.average_ms.round() as i64,
                        l.jitter_ms.round() as i64,
                    )
                })
            })
            .collect()
    };
    if rounded(old) != rounded(new) {
        Change::Latency
    } else {
        Change::None
    }
}

/// When the next publication is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    Now,
    At(Instant),
    Never,
}

/// Rate limits publications: membership changes at most every `min_interval`, latency-only
/// changes at most every `latency_interval`.
#[derive(Clone, Debug)]
pub struct Throttle {
    min_interval: Duration,
    latency_interval: Duration,
    last: Option<(Instant, Report)>,
}

impl Throttle {
    pub fn new(min_interval: Duration, latency_interval: Duration) -> Self {
        Self {
            min_interval,
            latency_interval,
            last: None,
        }
    }

    /// When `report` should be published, given what was published last.
    pub fn due(&self, report: &Report, now: Instant) -> Due {
        let Some((at, last)) = &self.last else {
            return Due::Now;
        };
        let wait = match change(last, report) {
            Change::None => return Due::Never,
            Change::Latency => self.latency_interval,
            Change::Membership => self.min_interval,
        };
        let when = *at + wait;
        if when <= now { Due::Now } else { Due::At(when) }
    }

    /// Records that `report` was published at `now`.
    pub fn published(&mut self, report: Report, now: Instant) {
        self.last = Some((now, report));
    }
}

#[cfg(test)]
mod tests;
