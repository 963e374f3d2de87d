//! Which Events a change of a hub's status deserves: one for its phase ([`event_for`]), one when
//! its overtime starts or ends ([`overtime_event`]). Pure: the controller publishes what they
//! return.
//!
//! An Event is published when the hub's phase, or the reason it is not ready, changed: once per
//! change, not once per reconcile. kube's `Recorder` folds an Event into an earlier one with the
//! same type, reason, action and hub (a series with a count, keeping the first note) while the
//! earlier one is less than six minutes old. Every reason here names one situation, so such a
//! series is a repeat of that situation (a crash-looping container, a hub that keeps moving
//! between Starting and Degraded), which is worth a count rather than a new Event each time;
//! different reasons are always separate Events. The price: a repeat within six minutes whose
//! details differ (a Ready hub that moved to another node's address) shows the first note with
//! the count; the status always has the current details.

use kube::runtime::events::{Event, EventType};
use midihub_api::{MidiHubStatus, Phase};

use midihub_api::contract::reasons::awake;
use midihub_api::contract::reasons::event;
use midihub_api::contract::{AWAKE_CONDITION, PUBLIC_ADDRESS_CONDITION, READY_CONDITION};

use crate::status;

/// The action of every Event the operator publishes.
const ACTION: &str = "Reconcile";

/// The Event announcing the change from `previous` to `current`, if there is one to announce.
pub fn event_for(previous: Option<&MidiHubStatus>, current: &MidiHubStatus) -> Option<Event> {
    let phase_before = previous.and_then(|status| status.phase);
    let before = (
        phase_before,
        status::condition_reason(previous, READY_CONDITION),
    );
    let after = (
        current.phase,
        status::condition_reason(Some(current), READY_CONDITION),
    );
    if before == after {
        return None;
    }
    let phase = current.phase?;
    let ready = current
        .conditions
        .iter()
        .find(|c| c.type_ == READY_CONDITION);
    let awake = current
        .conditions
        .iter()
        .find(|c| c.type_ == AWAKE_CONDITION);
    let was_awake =
        phase_before.is_some_and(|phase| !matches!(phase, Phase::Sleeping | Phase::Invalid));
    let (type_, reason, note) = match phase {
        Phase::Sleeping => (
            EventType::Normal,
            event::SLEEPING.to_string(),
            awake.map(|c| c.message.clone()),
        ),
        // A pod that is replaced (a lost node, a changed configuration) or recovering is not
        // a hub waking up.
        Phase::Starting if was_awake => (
            EventType::Normal,
            event::STARTING.to_string(),
            ready.map(|c| c.message.clone()),
        ),
        Phase::Starting => (
            EventType::Normal,
            event::WAKING.to_string(),
            awake.map(|c| c.message.clone()),
        ),
        Phase::Ready => {
            let mut note = format!(
                "the hub listens on {} ports {}",
                current.address.as_deref().unwrap_or("(unknown address)"),
                current.ports.as_deref().unwrap_or_default()
            );
            if let Some(address) = current
                .conditions
                .iter()
                .find(|c| c.type_ == PUBLIC_ADDRESS_CONDITION && c.status != "True")
            {
                note.push_str(&format!("; but {}", address.message));
            }
            (EventType::Normal, event::READY.to_string(), Some(note))
        }
        Phase::Invalid => (
            EventType::Warning,
            awake.map_or_else(|| phase.as_str().to_string(), |c| c.reason.clone()),
            awake.map(|c| c.message.clone()),
        ),
        Phase::Degraded | Phase::Unschedulable | Phase::Blocked => (
            EventType::Warning,
            ready.map_or_else(|| phase.as_str().to_string(), |c| c.reason.clone()),
            ready.map(|c| c.message.clone()),
        ),
    };
    Some(Event {
        type_,
        reason,
        note,
        action: ACTION.to_string(),
        secondary: None,
    })
}

/// The Event announcing that the hub's overtime started or ended between `previous` and
/// `current`, if it did: when it ends, why.
pub fn overtime_event(previous: Option<&MidiHubStatus>, current: &MidiHubStatus) -> Option<Event> {
    let awake = current
        .conditions
        .iter()
        .find(|c| c.type_ == AWAKE_CONDITION);
    let before = previous.and_then(|status| status.overtime.as_ref());
    let (reason, note) = match (before, &current.overtime) {
        (None, Some(_)) => (
            event::OVERTIME_STARTED,
            awake.map_or_else(String::new, |c| c.message.clone()),
        ),
        (Some(ended), None) => {
            let note = match awake {
                Some(c) if c.reason == awake::SUSPENDED => {
                    "suspended by spec.suspend: the hub sleeps at once".to_owned()
                }
                Some(c) if c.status == "True" => format!("the hub stays awake: {}", c.message),
                _ => match &ended.empty_since {
                    Some(since) => format!(
                        "the rooms have been empty since {}: the hub sleeps",
                        utc(since)
                    ),
                    None => format!(
                        "the limit after the window's end ({}) is reached with participants still connected: the hub sleeps",
                        utc(&ended.window_ended)
                    ),
                },
            };
            (event::OVERTIME_ENDED, note)
        }
        _ => return None,
    };
    Some(Event {
        type_: EventType::Normal,
        reason: reason.to_owned(),
        note: Some(note),
        action: ACTION.to_string(),
        secondary: None,
    })
}

/// "23:05:10 UTC".
fn utc(time: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> String {
    jiff::tz::TimeZone::UTC
        .to_datetime(time.0)
        .strftime("%H:%M:%S UTC")
        .to_string()
}

#[cfg(test)]
mod tests;
