use super::*;
use crate::rtpmidid::status::LatencyMs;

fn status(name: &str, room_port: u16, ssrc: u32, remote_port: u16) -> ParticipantStatus {
    ParticipantStatus {
        room_port,
        room_name: format!("room-{room_port}"),
        name: name.to_string(),
        remote_address: "203.0.113.10".to_string(),
        address: "::ffff:203.0.113.10".parse().ok(),
        remote_port,
        ssrc,
        alsa_port: Some(1),
        connected: true,
        latency: Some(LatencyMs {
            last: 20.0,
            average: 21.5,
            stddev: 1.25,
        }),
    }
}

fn nobody_refused() -> BTreeSet<Key> {
    BTreeSet::new()
}

fn at(time: &str) -> Timestamp {
    time.parse().unwrap()
}

fn names(participants: &[Participant]) -> Vec<&str> {
    participants.iter().map(|p| p.name.as_str()).collect()
}

#[test]
fn a_new_participant_joins_once_and_keeps_its_join_time() {
    let mut roster = Roster::default();
    let alice = status("Alice", 5004, 11, 7000);
    let first = roster.update(
        std::slice::from_ref(&alice),
        &nobody_refused(),
        at("2026-11-25T19:00:00Z"),
    );
    assert_eq!(names(&first.joined), ["Alice"]);
    let second = roster.update(&[alice], &nobody_refused(), at("2026-11-25T19:05:00Z"));
    assert_eq!(second, Changes::default());
    let published = roster.participants();
    assert_eq!(
        published[0].joined_at,
        Some(Time(at("2026-11-25T19:00:00Z")))
    );
    assert_eq!(published[0].remote_address, "203.0.113.10:7000");
    assert_eq!(published[0].latency.as_ref().unwrap().jitter_ms, 1.25);
}

#[test]
fn a_participant_that_disappears_or_stops_being_connected_has_left() {
    let mut roster = Roster::default();
    let alice = status("Alice", 5004, 11, 7000);
    let bob = status("Bob", 5004, 12, 7002);
    roster.update(
        &[alice.clone(), bob.clone()],
        &nobody_refused(),
        at("2026-11-25T19:00:00Z"),
    );
    let mut bob_leaving = bob;
    bob_leaving.connected = false;
    let changes = roster.update(
        &[alice, bob_leaving],
        &nobody_refused(),
        at("2026-11-25T19:01:00Z"),
    );
    assert_eq!(names(&changes.left), ["Bob"]);
    assert_eq!(names(&roster.participants()), ["Alice"]);
}

#[test]
fn same_names_are_two_participants_and_a_rejoin_is_a_leave_and_a_join() {
    let mut roster = Roster::default();
    let first = status("iPad", 5004, 11, 7000);
    let second = status("iPad", 5004, 12, 7002);
    let changes = roster.update(
        &[first.clone(), second],
        &nobody_refused(),
        at("2026-11-25T19:00:00Z"),
    );
    assert_eq!(changes.joined.len(), 2);
    // The first one re-joins: a new SSRC.
    let rejoined = status("iPad", 5004, 13, 7000);
    let changes = roster.update(&[rejoined], &nobody_refused(), at("2026-11-25T19:02:00Z"));
    assert_eq!(changes.joined.len(), 1);
    assert_eq!(changes.left.len(), 2);
}

#[test]
fn after_a_restart_known_participants_keep_their_join_time_and_are_not_announced_again() {
    let mut before = Roster::default();
    before.update(
        &[
            status("Alice", 5004, 11, 7000),
            status("Bob", 5006, 12, 7002),
        ],
        &nobody_refused(),
        at("2026-11-25T19:00:00Z"),
    );
    let mut after = Roster::inherit(Published {
        participants: before.participants(),
        refused: before.refused(),
    });
    // Alice is still there; Bob left while the sidecar was down.
    let changes = after.update(
        &[status("Alice", 5004, 11, 7000)],
        &nobody_refused(),
        at("2026-11-25T19:30:00Z"),
    );
    assert!(changes.joined.is_empty());
    assert_eq!(names(&changes.left), ["Bob"]);
    assert_eq!(
        after.participants()[0].joined_at,
        Some(Time(at("2026-11-25T19:00:00Z")))
    );
}

#[test]
fn participants_are_listed_by_room_then_join_time() {
    let mut roster = Roster::default();
    roster.update(
        &[status("Zed", 5006, 1, 7000)],
        &nobody_refused(),
        at("2026-11-25T19:00:00Z"),
    );
    roster.update(
        &[
            status("Zed", 5006, 1, 7000),
            status("Bea", 5004, 2, 7002),
            status("Abe", 5004, 3, 7004),
        ],
        &nobody_refused(),
        at("2026-11-25T19:01:00Z"),
    );
    assert_eq!(names(&roster.participants()), ["Abe", "Bea", "Zed"]);
}

fn refused_names(refused: &[RefusedParticipant]) -> Vec<&str> {
    refused.iter().map(|p| p.name.as_str()).collect()
}

#[test]
fn a_refused_participant_is_listed_apart_from_the_participants_since_it_was_first_refused() {
    let mut roster = Roster::default();
    let alice = status("Alice", 5004, 11, 7000);
    let mallory = status("Mallory", 5004, 13, 7004);
    let refused = BTreeSet::from([(5004, 13)]);

    let first = roster.update(
        &[alice.clone(), mallory.clone()],
        &refused,
        at("2026-11-25T19:00:00Z"),
    );
    assert_eq!(names(&first.joined), ["Alice"], "Mallory never joins");
    assert_eq!(refused_names(&first.refused), ["Mallory"]);
    assert_eq!(names(&roster.participants()), ["Alice"]);

    let second = roster.update(&[alice, mallory], &refused, at("2026-11-25T19:05:00Z"));
    assert_eq!(second, Changes::default(), "a refusal is told once");
    let listed = roster.refused();
    assert_eq!(refused_names(&listed), ["Mallory"]);
    assert_eq!(listed[0].since, Time(at("2026-11-25T19:00:00Z")));
    assert_eq!(listed[0].remote_address, "203.0.113.10:7004");
    assert_eq!(listed[0].room, "room-5004");
}

#[test]
fn a_refused_participant_who_disconnects_is_no_longer_listed_and_has_not_left() {
    let mut roster = Roster::default();
    let mallory = status("Mallory", 5004, 13, 7004);
    let refused = BTreeSet::from([(5004, 13)]);
    roster.update(
        std::slice::from_ref(&mallory),
        &refused,
        at("2026-11-25T19:00:00Z"),
    );

    let mut disconnecting = mallory;
    disconnecting.connected = false;
    let changes = roster.update(&[disconnecting], &refused, at("2026-11-25T19:01:00Z"));
    assert_eq!(changes, Changes::default());
    assert!(roster.refused().is_empty());
}

#[test]
fn a_player_whom_a_changed_list_refuses_leaves_and_is_refused_and_joins_when_admitted_again() {
    let mut roster = Roster::default();
    let bob = status("Bob", 5004, 12, 7002);
    roster.update(
        std::slice::from_ref(&bob),
        &nobody_refused(),
        at("2026-11-25T19:00:00Z"),
    );

    let refused = roster.update(
        std::slice::from_ref(&bob),
        &BTreeSet::from([(5004, 12)]),
        at("2026-11-25T19:10:00Z"),
    );
    assert_eq!(names(&refused.left), ["Bob"]);
    assert_eq!(refused_names(&refused.refused), ["Bob"]);
    assert!(roster.participants().is_empty());

    let admitted = roster.update(&[bob], &nobody_refused(), at("2026-11-25T19:20:00Z"));
    assert_eq!(names(&admitted.joined), ["Bob"]);
    assert!(roster.refused().is_empty());
    assert_eq!(
        roster.participants()[0].joined_at,
        Some(Time(at("2026-11-25T19:20:00Z")))
    );
}

#[test]
fn after_a_restart_an_inherited_participant_now_refused_has_left() {
    let mut before = Roster::default();
    before.update(
        &[status("Bob", 5004, 12, 7002)],
        &nobody_refused(),
        at("2026-11-25T19:00:00Z"),
    );
    let mut after = Roster::inherit(Published {
        participants: before.participants(),
        refused: before.refused(),
    });
    let changes = after.update(
        &[status("Bob", 5004, 12, 7002)],
        &BTreeSet::from([(5004, 12)]),
        at("2026-11-25T19:30:00Z"),
    );
    assert_eq!(names(&changes.left), ["Bob"]);
    assert_eq!(refused_names(&changes.refused), ["Bob"]);
    assert!(changes.joined.is_empty());
}

#[test]
fn after_a_restart_a_participant_still_refused_keeps_its_refusal_time_and_is_not_told_again() {
    let mut before = Roster::default();
    before.update(
        &[
            status("Mallory", 5004, 13, 7004),
            status("Eve", 5004, 14, 7006),
        ],
        &BTreeSet::from([(5004, 13), (5004, 14)]),
        at("2026-11-25T19:00:00Z"),
    );
    let mut after = Roster::inherit(Published {
        participants: before.participants(),
        refused: before.refused(),
    });
    // Mallory is still there; Eve went while the sidecar was down.
    let changes = after.update(
        &[status("Mallory", 5004, 13, 7004)],
        &BTreeSet::from([(5004, 13)]),
        at("2026-11-25T19:30:00Z"),
    );
    assert_eq!(changes, Changes::default());
    let refused = after.refused();
    assert_eq!(refused_names(&refused), ["Mallory"]);
    assert_eq!(refused[0].since, Time(at("2026-11-25T19:00:00Z")));
    // Eve comes back later: refused anew, from then on.
    let back = after.update(
        &[
            status("Mallory", 5004, 13, 7004),
            status("Eve", 5004, 14, 7006),
        ],
        &BTreeSet::from([(5004, 13), (5004, 14)]),
        at("2026-11-25T19:40:00Z"),
    );
    assert_eq!(refused_names(&back.refused), ["Eve"]);
}
