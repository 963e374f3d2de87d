//! The occupied-room rule: a hub whose window ends (or whose `spec.wakeUntil` passes) while
//! someone plays stays awake, in *overtime*, until its rooms have been empty for a grace period,
//! and at most for a limit counted from the window's end. `spec.suspend` still sleeps at once.
//!
//! Pure: [`apply`] turns the schedule's decision into the final one, given the hub's spec, its
//! status as last written and the time. An overtime's state lives in the operator's own status
//! fields (`status.overtime`: when the window ended, since when the rooms are empty), so an
//! operator restart neither ends an overtime nor starts a new one.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use midihub_api::contract::{self, reasons::awake};
use midihub_api::{MidiHubSpec, MidiHubStatus, OvertimeStatus};

use crate::schedule::{self, AwakeReason, Decision, Transition};

/// How long the rooms must have been empty, unless the hub says otherwise.
pub const DEFAULT_GRACE: SignedDuration = SignedDuration::from_mins(10);
/// The longest overtime after a window's end, unless the hub says otherwise.
pub const DEFAULT_LIMIT: SignedDuration = SignedDuration::from_hours(2);

/// A hub's `spec.overtime`, read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub grace: SignedDuration,
    pub limit: SignedDuration,
}

/// An overtime setting that cannot be read (admission refuses them; this is for a CRD that was
/// changed by hand).
#[derive(Debug, thiserror::Error)]
#[error("spec.overtime.{field} is {value:?}, not a duration: write it like 90s, 10m or 1h30m")]
pub struct OvertimeError {
    field: &'static str,
    value: String,
}

impl OvertimeError {
    /// CamelCase reason for the `Awake` condition.
    pub fn reason(&self) -> &'static str {
        awake::INVALID_OVERTIME
    }
}

impl Rule {
    /// The rule of the hub of `spec`: its `spec.overtime`, with the defaults for what it leaves out.
    pub fn of(spec: &MidiHubSpec) -> Result<Self, OvertimeError> {
        let setting = spec.overtime.clone().unwrap_or_default();
        let read = |field, value: Option<String>, default| match value {
            None => Ok(default),
            Some(value) => match value.parse::<SignedDuration>() {
                Ok(duration) if !duration.is_negative() => Ok(duration),
                _ => Err(OvertimeError { field, value }),
            },
        };
        Ok(Self {
            grace: read("grace", setting.grace, DEFAULT_GRACE)?,
            limit: read("limit", setting.limit, DEFAULT_LIMIT)?,
        })
    }
}

/// The decision for a hub, given what the schedule decided (`decision`), the hub's `spec` and
/// its `status` as last written, at `now`.
///
/// Overtime begins when the schedule puts to sleep a hub that was awake with someone playing
/// (not when it is suspended), counted from when the window ended (the sleep time the status
/// announced, or the `wakeUntil` that passed); it lasts while the rooms are occupied, ends once
/// they have been empty for the grace period or the limit is reached, and ends at once when
/// the schedule wakes the hub anyway (a new window, a new `wakeUntil`).
pub fn apply(
    decision: Decision,
    spec: &MidiHubSpec,
    status: Option<&MidiHubStatus>,
    now: Timestamp,
) -> Result<Decision, OvertimeError> {
    // Read first, so that a setting that cannot be read is reported whatever the hub does.
    let rule = Rule::of(spec)?;
    if decision.awake || decision.reason == AwakeReason::Suspended {
        return Ok(decision);
    }
    let Some(status) = status else {
        return Ok(decision);
    };
    let occupied = contract::occupied(status);
    let window_ended = match &status.overtime {
        Some(overtime) => overtime.window_ended.0,
        None if status.replicas == Some(1) && occupied => window_end(spec, status, now),
        None => return Ok(decision),
    };
    let latest = after(window_ended, rule.limit);
    let empty_since = match &status.overtime {
        _ if occupied => None,
        Some(OvertimeStatus {
            empty_since: Some(since),
            ..
        }) => Some(since.0),
        _ => Some(now),
    };
    let sleep_at = empty_since.map_or(latest, |since| after(since, rule.grace).min(latest));
    if now >= sleep_at {
        return Ok(decision);
    }
    let summary = match empty_since {
        None => format!(
            "sleeps when empty, window ended {}",
            schedule::hub_time(spec, window_ended, now)
        ),
        Some(_) => format!(
            "sleep {} unless someone joins",
            schedule::hub_time(spec, sleep_at, now)
        ),
    };
    Ok(Decision {
        awake: true,
        reason: AwakeReason::Overtime,
        // The schedule may wake the hub for good before the overtime ends.
        recheck_at: Some(decision.recheck_at.map_or(sleep_at, |at| at.min(sleep_at))),
        next: Some(Transition {
            at: sleep_at,
            wakes: false,
            summary,
        }),
        overtime: Some(OvertimeStatus {
            window_ended: Time(window_ended),
            empty_since: empty_since.map(Time),
        }),
    })
}

/// When the awake period that just ended ended: the sleep time the status announced, else the
/// `wakeUntil` that passed, else (an operator that was not running then) now.
fn window_end(spec: &MidiHubSpec, status: &MidiHubStatus, now: Timestamp) -> Timestamp {
    let announced = status.next_transition_time.as_ref().map(|time| time.0);
    let woken_until = spec.wake_until.as_ref().map(|time| time.0);
    announced
        .filter(|at| *at <= now)
        .or(woken_until.filter(|at| *at <= now))
        .unwrap_or(now)
}

/// `at + duration`, or the end of time where that is beyond it.
fn after(at: Timestamp, duration: SignedDuration) -> Timestamp {
    at.checked_add(duration).unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
mod tests;
