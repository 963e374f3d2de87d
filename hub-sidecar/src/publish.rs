//! Where reports go: the MidiHub's status and Events (in a hub pod), or JSON lines on stdout
//! (local mode, on a plain Linux host).

use std::io::Write;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};
use midihub_api::contract::{self, SIDECAR_FIELD_MANAGER, reasons};
use midihub_api::{MidiHub, Participant, RefusedParticipant};
use serde_json::json;

use crate::guard::PanicSent;
use crate::report::Report;
use crate::roster::Changes;
use crate::roster::Published;

/// A report could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot write the MidiHub's status: {0}")]
    Kubernetes(kube::Error),
    #[error("cannot write to stdout: {0}")]
    Stdout(std::io::Error),
    #[error("cannot encode the report as JSON: {0}")]
    Json(serde_json::Error),
}

/// Where reports go.
pub enum Sink {
    Kubernetes(Box<KubernetesSink>),
    Local,
}

impl Sink {
    /// Publishes a report.
    pub async fn publish(&mut self, report: &Report) -> Result<(), PublishError> {
        match self {
            Sink::Kubernetes(sink) => sink.publish(report).await,
            Sink::Local => print_line(&json!({
                "type": "status",
                "participantCount": report.participant_count(),
                "latency": report.latency_summary(),
                "participants": report.participants,
                "refused": report.refused,
                "wiring": report.wiring,
            })),
        }
    }

    /// Tells that the hub-wide panic was sent, and why (a Normal Event on the MidiHub, or a JSON
    /// line).
    pub async fn panic_sent(&mut self, why: &str, sent: &PanicSent) -> Result<(), PublishError> {
        match self {
            Sink::Kubernetes(sink) => sink.record(&panic_event(why, sent)).await,
            Sink::Local => print_line(&json!({
                "type": "panic",
                "why": why,
                "receivers": sent.receivers,
                "failed": sent.failed,
            })),
        }
    }

    /// Announces joins and leaves (Events on the MidiHub, or JSON lines).
    pub async fn announce(&mut self, changes: &Changes) -> Result<(), PublishError> {
        match self {
            Sink::Kubernetes(sink) => sink.announce(changes).await,
            Sink::Local => {
                for (kind, participants) in [("joined", &changes.joined), ("left", &changes.left)] {
                    for participant in participants {
                        print_line(&json!({"type": kind, "participant": participant}))?;
                    }
                }
                for participant in &changes.refused {
                    print_line(&json!({"type": "refused", "participant": participant}))?;
                }
                Ok(())
            }
        }
    }
}

fn print_line(value: &serde_json::Value) -> Result<(), PublishError> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, value).map_err(PublishError::Json)?;
    stdout
        .write_all(b"\n")
        .and_then(|()| stdout.flush())
        .map_err(PublishError::Stdout)?;
    Ok(())
}

/// Whether a participant joined or left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Membership {
    Joined,
    Left,
}

/// The Event announcing that `participant` joined or left the hub. Pure.
fn participant_event(membership: Membership, participant: &Participant) -> Event {
    let (reason, verb) = match membership {
        Membership::Joined => (reasons::event::PARTICIPANT_JOINED, "joined"),
        Membership::Left => (reasons::event::PARTICIPANT_LEFT, "left"),
    };
    Event {
        type_: EventType::Normal,
        reason: reason.to_string(),
        note: Some(format!(
            "{} ({}) {verb} room {} (port {})",
            participant.name, participant.remote_address, participant.room, participant.port
        )),
        action: "Wire".to_string(),
        secondary: None,
    }
}

/// The Warning Event telling that `refused` is in a room whose allow-list refuses them. Pure.
fn refusal_event(refused: &RefusedParticipant) -> Event {
    Event {
        type_: EventType::Warning,
        reason: reasons::event::PARTICIPANT_REFUSED.to_string(),
        note: Some(format!(
            "{} ({}) is refused by the allow-list of room {} (port {}): not wired",
            refused.name, refused.remote_address, refused.room, refused.port
        )),
        action: "Wire".to_string(),
        secondary: None,
    }
}

/// The Event telling that the hub-wide panic was sent, as `why` asked. Pure.
fn panic_event(why: &str, sent: &PanicSent) -> Event {
    let failed = match sent.failed {
        0 => String::new(),
        n => format!(" ({n} could not be reached: see the sidecar's log)"),
    };
    Event {
        type_: EventType::Normal,
        reason: reasons::event::PANIC_SENT.to_string(),
        note: Some(format!(
            "all notes off, pedals up and controllers reset on all 16 channels, sent to {} participants{failed}, as {why} asked",
            sent.receivers
        )),
        action: "Panic".to_string(),
        secondary: None,
    }
}

/// Publishes to one MidiHub: its status (server-side apply of the fields the sidecar owns,
/// under [`SIDECAR_FIELD_MANAGER`]) and Events.
pub struct KubernetesSink {
    api: Api<MidiHub>,
    name: String,
    hub: ObjectReference,
    client: Client,
    reporter: Reporter,
    /// The conditions last written: at first the hub's as read at connect, then the sidecar's
    /// own, so that the Wiring condition's lastTransitionTime survives a restart of the sidecar
    /// and moves only when its status does.
    conditions: Vec<Condition>,
}

impl KubernetesSink {
    /// Reads the hub (for Events), and returns with the sink the participants and refusals a
    /// previous sidecar published.
    pub async fn connect(
        client: Client,
        namespace: &str,
        name: &str,
        pod: Option<String>,
    ) -> Result<(Self, Published), kube::Error> {
        let api = Api::<MidiHub>::namespaced(client.clone(), namespace);
        let hub = api.get(name).await?;
        let status = hub.status.clone().unwrap_or_default();
        let previous = Published {
            participants: status.participants.unwrap_or_default(),
            refused: status.refused.unwrap_or_default(),
        };
        let reporter = Reporter {
            controller: SIDECAR_FIELD_MANAGER.to_string(),
            instance: pod,
        };
        let sink = Self {
            api,
            name: name.to_string(),
            hub: hub.object_ref(&()),
            client,
            reporter,
            conditions: status.conditions,
        };
        Ok((sink, previous))
    }

    /// Writes the report's fields of the hub's status.
    pub async fn publish(&mut self, report: &Report) -> Result<(), PublishError> {
        let status = report.hub_status(&self.conditions, jiff::Timestamp::now());
        self.api
            .patch_status(
                &self.name,
                &PatchParams::apply(SIDECAR_FIELD_MANAGER).force(),
                &contract::status_patch(&status),
            )
            .await
            .map_err(PublishError::Kubernetes)?;
        self.conditions = status.conditions;
        Ok(())
    }

    /// Publishes an Event per participant that joined, left or was refused.
    ///
    /// Each through a `Recorder` of its own, so each is created as a new Event: kube's
    /// `Recorder` folds an Event into an earlier one of the last six minutes with the same
    /// type, reason, action, object and reporter into a series, keeping the earlier note. The
    /// note is the only field that tells participants apart, so three joins within minutes
    /// became one `ParticipantJoined` (count 3) naming the first participant only. A join or
    /// leave is an occurrence of its own, never a repeat: it should read as one. (Putting the
    /// participant into `action` or `related` would also split the series, but misuses
    /// fields that mean something else, and would still fold a re-join into the first join.)
    pub async fn announce(&mut self, changes: &Changes) -> Result<(), PublishError> {
        let memberships = [
            (Membership::Joined, &changes.joined),
            (Membership::Left, &changes.left),
        ];
        let events = memberships
            .into_iter()
            .flat_map(|(membership, participants)| {
                participants
                    .iter()
                    .map(move |participant| participant_event(membership, participant))
            })
            .chain(changes.refused.iter().map(refusal_event));
        for event in events {
            self.record(&event).await?;
        }
        Ok(())
    }

    /// Records `event` on the hub, as a new Event (see [`Self::announce`]).
    async fn record(&self, event: &Event) -> Result<(), PublishError> {
        Recorder::new(self.client.clone(), self.reporter.clone())
            .publish(event, &self.hub)
            .await
            .map_err(PublishError::Kubernetes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn participant(name: &str, remote_address: &str) -> Participant {
        Participant {
            port: 5004,
            room: "jam-a".into(),
            name: name.into(),
            remote_address: remote_address.into(),
            joined_at: None,
            latency: None,
        }
    }

    #[test]
    fn a_join_and_a_leave_name_the_participant_the_room_and_the_port() {
        let alice = participant("Alice", "203.0.113.10:5004");

        let joined = participant_event(Membership::Joined, &alice);
        assert_eq!(joined.reason, "ParticipantJoined");
        assert_eq!(
            joined.note.as_deref(),
            Some("Alice (203.0.113.10:5004) joined room jam-a (port 5004)")
        );
        let left = participant_event(Membership::Left, &alice);
        assert_eq!(left.reason, "ParticipantLeft");
        assert_eq!(
            left.note.as_deref(),
            Some("Alice (203.0.113.10:5004) left room jam-a (port 5004)")
        );
        assert!(matches!(joined.type_, EventType::Normal));
    }

    #[test]
    fn a_panic_says_what_was_sent_to_how_many_and_who_asked() {
        let sent = PanicSent {
            receivers: 5,
            failed: 0,
        };
        let event = panic_event("annotation midihub.io/panic=7", &sent);
        assert_eq!(event.reason, "PanicSent");
        assert!(matches!(event.type_, EventType::Normal));
        assert_eq!(
            event.note.as_deref(),
            Some(
                "all notes off, pedals up and controllers reset on all 16 channels, sent to 5 participants, as annotation midihub.io/panic=7 asked"
            )
        );
        let partly = PanicSent {
            receivers: 4,
            failed: 1,
        };
        assert!(
            panic_event("POST /panic", &partly)
                .note
                .unwrap()
                .contains("sent to 4 participants (1 could not be reached: see the sidecar's log)")
        );
    }

    #[test]
    fn a_refusal_is_a_warning_naming_the_participant_the_room_and_the_port() {
        let refused = RefusedParticipant {
            port: 5004,
            room: "jam-a".into(),
            name: "Mallory".into(),
            remote_address: "198.51.100.7:7000".into(),
            since: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2026-11-25T19:00:00Z".parse().unwrap(),
            ),
        };
        let event = refusal_event(&refused);
        assert_eq!(event.reason, "ParticipantRefused");
        assert!(matches!(event.type_, EventType::Warning));
        assert_eq!(
            event.note.as_deref(),
            Some(
                "Mallory (198.51.100.7:7000) is refused by the allow-list of room jam-a (port 5004): not wired"
            )
        );
    }
}
