use jiff::Timestamp;

use super::*;
use crate::allow::AllowList;
use crate::rtpmidid::status::{LatencyMs, ParticipantStatus, RoomStatus};
use crate::sequencer::{OpenRoom, OpenRooms, PortInfo};
use crate::wiring::Subscription;

const DAEMON: i32 = 128;
const RETRY_FOR: Duration = Duration::from_secs(2);

fn port(port: i32) -> PortAddr {
    PortAddr {
        client: DAEMON,
        port,
    }
}

fn link(from: i32, to: i32) -> Subscription {
    Subscription {
        from: port(from),
        to: port(to),
    }
}

/// A connected participant of room `room` with its ALSA port `alsa_port`.
fn participant(name: &str, ssrc: u32, alsa_port: i32, room: u16) -> ParticipantStatus {
    ParticipantStatus {
        room_port: room,
        room_name: format!("room-{room}"),
        name: name.to_owned(),
        remote_address: "203.0.113.10".to_owned(),
        address: "::ffff:203.0.113.10".parse().ok(),
        remote_port: 7000,
        ssrc,
        alsa_port: Some(alsa_port),
        connected: true,
        latency: None,
    }
}

/// `participant` joining from `address`, as rtpmidid reports an IPv4 host.
fn from(participant: ParticipantStatus, address: &str) -> ParticipantStatus {
    ParticipantStatus {
        remote_address: address.to_owned(),
        address: format!("::ffff:{address}").parse().ok(),
        ..participant
    }
}

/// Room `room` admits `cidrs` only; the other rooms admit everyone.
fn only(room: u16, cidrs: &[&str]) -> RoomRules {
    [(room, AllowList::parse(cidrs).unwrap())]
        .into_iter()
        .collect()
}

fn with_round_trip(participant: ParticipantStatus, last: f64) -> ParticipantStatus {
    ParticipantStatus {
        latency: Some(LatencyMs {
            last,
            average: last,
            stddev: 0.5,
        }),
        ..participant
    }
}

/// rtpmidid's status with rooms 5004 and 5006 and `participants`.
fn status(participants: Vec<ParticipantStatus>) -> RtpmididStatus {
    RtpmididStatus {
        version: "v26.01".to_owned(),
        alsa_name: "rtpmidid".to_owned(),
        rooms: [5004, 5006]
            .map(|port| RoomStatus {
                port,
                name: format!("room-{port}"),
                alsa_client: None,
            })
            .into(),
        participants,
        warnings: vec![],
    }
}

/// The daemon's client with ports `ports` and `subscriptions` between them.
fn sequencer(ports: &[i32], subscriptions: &[Subscription]) -> ClientSnapshot {
    ClientSnapshot {
        client: Some(DAEMON),
        ports: ports
            .iter()
            .map(|&p| PortInfo {
                addr: port(p),
                name: String::new(),
            })
            .collect(),
        subscriptions: subscriptions.iter().copied().collect(),
        more_client_names: BTreeMap::new(),
    }
}

fn at(time: &str) -> Timestamp {
    time.parse().unwrap()
}

/// Alice and Bob in room 5004, on the daemon's ports 1 and 2.
fn alice_and_bob() -> RtpmididStatus {
    status(vec![
        participant("Alice", 1, 1, 5004),
        participant("Bob", 2, 2, 5004),
    ])
}

/// The plan of a look at `status` and `snapshot` now, with every room open.
fn plan_now(memory: &Memory, status: &RtpmididStatus, snapshot: &ClientSnapshot) -> Plan {
    plan_with(memory, status, snapshot, &RoomRules::default())
}

/// The plan of a look at `status` and `snapshot` now, with the rooms' lists `rules`.
fn plan_with(
    memory: &Memory,
    status: &RtpmididStatus,
    snapshot: &ClientSnapshot,
    rules: &RoomRules,
) -> Plan {
    let now = Instant::now();
    plan(memory, status, now, snapshot, rules, now, RETRY_FOR).unwrap()
}

/// A whole pass in which every subscription of the plan was made.
fn pass(
    memory: &mut Memory,
    status: &RtpmididStatus,
    snapshot: &ClientSnapshot,
    now: Instant,
) -> Outcome {
    let plan = plan(
        memory,
        status,
        now,
        snapshot,
        &RoomRules::default(),
        now,
        RETRY_FOR,
    )
    .unwrap();
    conclude_ok(memory, status, plan)
}

/// What came of `plan`, all of whose subscriptions were made.
fn conclude_ok(memory: &mut Memory, status: &RtpmididStatus, plan: Plan) -> Outcome {
    conclude(memory, status, plan, &[], at("2026-11-25T19:00:00Z"))
}

/// The memory of a loop to which the sequencer announced `ports` at `at`.
fn announced(ports: &[i32], at: Instant) -> Memory {
    let mut memory = Memory::default();
    for &p in ports {
        memory.note(&SequencerEvent::PortStart(port(p)), at);
    }
    memory
}

fn names(participants: &[midihub_api::Participant]) -> Vec<&str> {
    participants.iter().map(|p| p.name.as_str()).collect()
}

fn refused_names(refused: &[midihub_api::RefusedParticipant]) -> Vec<&str> {
    refused.iter().map(|p| p.name.as_str()).collect()
}

#[test]
fn participants_of_a_room_are_wired_to_each_other_and_reported_as_wired() {
    let mut memory = Memory::default();
    let status = status(vec![
        participant("Alice", 1, 1, 5004),
        participant("Bob", 2, 2, 5004),
        participant("Carol", 3, 3, 5006),
    ]);
    let plan = plan_now(&memory, &status, &sequencer(&[0, 1, 2, 3], &[]));
    assert_eq!(
        plan.wiring,
        WiringPlan {
            remove: vec![],
            add: vec![link(1, 2), link(2, 1)],
        }
    );

    let outcome = conclude_ok(&mut memory, &status, plan);
    assert_eq!(
        outcome.report.wiring,
        WiringState::wired(3, 2),
        "Carol is alone in her room"
    );
    assert_eq!(
        names(&outcome.report.participants),
        ["Alice", "Bob", "Carol"]
    );
    assert_eq!(names(&outcome.changes.joined), ["Alice", "Bob", "Carol"]);
    assert_eq!(
        (outcome.figures.added, outcome.figures.removed),
        (2, 0),
        "the subscriptions the plan made are counted"
    );
}

#[test]
fn a_participant_whose_port_is_not_in_the_sequencer_is_not_wired() {
    let plan = plan_now(
        &Memory::default(),
        &alice_and_bob(),
        &sequencer(&[0, 1], &[]),
    );
    assert_eq!(
        plan.wiring,
        WiringPlan::default(),
        "Bob's port is not there"
    );
}

#[test]
fn a_daemon_without_a_client_in_the_sequencer_is_reported_and_nothing_is_planned() {
    let memory = Memory::default();
    let status = status(vec![participant("Alice", 1, 1, 5004)]);
    let gone = ClientSnapshot::default();
    let now = Instant::now();
    let Err(wiring) = plan(
        &memory,
        &status,
        now,
        &gone,
        &RoomRules::default(),
        now,
        RETRY_FOR,
    ) else {
        panic!("a daemon that is not in the sequencer cannot be wired");
    };
    assert!(!wiring.ok);
    assert_eq!(wiring.reason, "DaemonNotInSequencer");
    assert!(
        wiring.message.contains("\"rtpmidid\""),
        "{}",
        wiring.message
    );
}

#[test]
fn a_failed_subscription_makes_the_wiring_unknown_with_the_failures_as_message() {
    let mut memory = Memory::default();
    let status = alice_and_bob();
    let plan = plan_now(&memory, &status, &sequencer(&[1, 2], &[]));
    let failures = ["cannot subscribe 128:1 -> 128:2: busy".to_owned()];
    let outcome = conclude(
        &mut memory,
        &status,
        plan,
        &failures,
        at("2026-11-25T19:00:00Z"),
    );
    assert_eq!(
        outcome.report.wiring,
        WiringState::unknown(
            "SubscriptionFailed",
            "cannot subscribe 128:1 -> 128:2: busy"
        )
    );
    assert_eq!(
        names(&outcome.report.participants),
        ["Alice", "Bob"],
        "who is there is known all the same"
    );
}

#[test]
fn joins_and_leaves_are_told_once_with_the_time_of_the_join() {
    let mut memory = Memory::default();
    let alice = participant("Alice", 1, 1, 5004);
    let bob = participant("Bob", 2, 2, 5004);
    let ports = sequencer(&[1, 2], &[]);

    let first = status(vec![alice.clone()]);
    let plan_1 = plan_now(&memory, &first, &ports);
    let outcome = conclude_ok(&mut memory, &first, plan_1);
    assert_eq!(names(&outcome.changes.joined), ["Alice"]);

    let second = status(vec![alice, bob.clone()]);
    let plan_2 = plan_now(&memory, &second, &ports);
    let outcome = conclude(
        &mut memory,
        &second,
        plan_2,
        &[],
        at("2026-11-25T19:05:00Z"),
    );
    assert_eq!(names(&outcome.changes.joined), ["Bob"]);
    assert!(outcome.changes.left.is_empty());
    let joined_at = |name: &str| {
        outcome
            .report
            .participants
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.joined_at.clone())
            .map(|time| time.0)
    };
    assert_eq!(joined_at("Alice"), Some(at("2026-11-25T19:00:00Z")));
    assert_eq!(joined_at("Bob"), Some(at("2026-11-25T19:05:00Z")));

    let third = status(vec![bob]);
    let plan_3 = plan_now(&memory, &third, &ports);
    let outcome = conclude(&mut memory, &third, plan_3, &[], at("2026-11-25T19:10:00Z"));
    assert!(outcome.changes.joined.is_empty());
    assert_eq!(names(&outcome.changes.left), ["Alice"]);
    assert_eq!(names(&outcome.report.participants), ["Bob"]);
}

#[test]
fn an_announced_port_waits_for_the_status_to_explain_it_until_it_is_too_old() {
    let start = Instant::now();
    let mut memory = announced(&[5], start);
    assert!(memory.awaits_explanation());
    let ports = sequencer(&[0, 5], &[]);
    let nobody = status(vec![]);

    pass(
        &mut memory,
        &nobody,
        &ports,
        start + Duration::from_millis(100),
    );
    assert!(
        memory.awaits_explanation(),
        "a young port may still be a participant's"
    );

    pass(&mut memory, &nobody, &ports, start + RETRY_FOR);
    assert!(
        !memory.awaits_explanation(),
        "a port unexplained for {RETRY_FOR:?} is something else"
    );
}

#[test]
fn an_announced_port_is_explained_by_the_status_or_by_going_away() {
    let start = Instant::now();
    let mut memory = announced(&[1], start);
    pass(
        &mut memory,
        &status(vec![participant("Alice", 1, 1, 5004)]),
        &sequencer(&[1], &[]),
        start,
    );
    assert!(!memory.awaits_explanation(), "the status names it");

    memory.note(&SequencerEvent::PortStart(port(2)), start);
    pass(&mut memory, &status(vec![]), &sequencer(&[1], &[]), start);
    assert!(
        !memory.awaits_explanation(),
        "a port the sequencer no longer lists needs no explanation"
    );
}

#[test]
fn a_port_or_client_that_exits_needs_no_explanation() {
    let start = Instant::now();
    let mut memory = announced(&[1], start);
    memory.note(&SequencerEvent::PortExit(port(1)), start);
    assert!(!memory.awaits_explanation(), "the port went");

    let mut memory = announced(&[1, 2], start);
    memory.note(&SequencerEvent::ClientExit(DAEMON), start);
    assert!(!memory.awaits_explanation(), "its client went");
}

#[test]
fn a_join_is_wired_by_the_pass_that_explains_its_port_and_keeps_its_announcement_time() {
    let announced_at = Instant::now();
    let mut memory = announced(&[2], announced_at);
    let later = announced_at + Duration::from_millis(30);

    let nobody_yet = pass(
        &mut memory,
        &status(vec![]),
        &sequencer(&[1, 2], &[]),
        later,
    );
    assert!(
        nobody_yet.figures.wired_joins.is_empty(),
        "a port the status does not name yet is no join yet"
    );

    let outcome = pass(
        &mut memory,
        &alice_and_bob(),
        &sequencer(&[1, 2], &[]),
        later,
    );
    assert_eq!(outcome.figures.wired_joins, [(port(2), announced_at)]);

    let again = pass(
        &mut memory,
        &alice_and_bob(),
        &sequencer(&[1, 2], &[link(1, 2), link(2, 1)]),
        later,
    );
    assert!(
        again.figures.wired_joins.is_empty(),
        "each join counts once"
    );
}

#[test]
fn a_join_whose_subscriptions_failed_or_that_does_not_play_is_not_counted_as_wired() {
    let start = Instant::now();
    let mut memory = announced(&[1, 2], start);
    let status = alice_and_bob();
    let plan = plan_now(&memory, &status, &sequencer(&[1, 2], &[]));
    let failures = ["cannot subscribe 128:1 -> 128:2: busy".to_owned()];
    let outcome = conclude(
        &mut memory,
        &status,
        plan,
        &failures,
        at("2026-11-25T19:00:00Z"),
    );
    assert!(outcome.figures.wired_joins.is_empty());

    let mut memory = announced(&[1, 3], start);
    let band = band_and_strangers();
    let rules = only(5004, &["203.0.113.0/24"]);
    let plan = plan_with(&memory, &band, &sequencer(&[1, 2, 3, 4], &[]), &rules);
    let outcome = conclude_ok(&mut memory, &band, plan);
    assert_eq!(
        outcome.figures.wired_joins,
        [(port(1), start)],
        "Mallory, on port 3, is refused: never wired"
    );
}

#[test]
fn a_join_a_failed_pass_could_not_wire_is_wired_by_the_next_pass_that_completes() {
    let announced_at = Instant::now();
    let mut memory = announced(&[2], announced_at);
    let status = alice_and_bob();
    let plan = plan_now(&memory, &status, &sequencer(&[1, 2], &[]));
    let failures = ["cannot subscribe 128:1 -> 128:2: busy".to_owned()];
    conclude(
        &mut memory,
        &status,
        plan,
        &failures,
        at("2026-11-25T19:00:00Z"),
    );

    let outcome = pass(
        &mut memory,
        &status,
        &sequencer(&[1, 2], &[link(2, 1)]),
        Instant::now(),
    );
    assert_eq!(outcome.figures.wired_joins, [(port(2), announced_at)]);
}

#[test]
fn the_announcements_of_a_pass_own_changes_call_for_no_look_but_others_do() {
    let now = Instant::now();
    let mut memory = Memory::default();
    let leaving = ParticipantStatus {
        connected: false,
        ..participant("Bob", 2, 2, 5004)
    };
    pass(
        &mut memory,
        &status(vec![participant("Alice", 1, 1, 5004), leaving]),
        &sequencer(&[1, 2], &[link(1, 2)]),
        now,
    );
    assert!(
        !memory.note(&SequencerEvent::Unsubscribed(link(1, 2)), now),
        "the sidecar removed that link itself"
    );
    assert!(
        memory.note(&SequencerEvent::Unsubscribed(link(1, 2)), now),
        "each change is echoed once: a second announcement is someone else's"
    );
    assert!(
        memory.note(&SequencerEvent::Subscribed(link(2, 1)), now),
        "someone else's subscription is looked at"
    );
    assert!(memory.note(&SequencerEvent::PortStart(port(3)), now));

    let mut memory = Memory::default();
    pass(&mut memory, &alice_and_bob(), &sequencer(&[1, 2], &[]), now);
    assert!(!memory.note(&SequencerEvent::Subscribed(link(1, 2)), now));
    assert!(!memory.note(&SequencerEvent::Subscribed(link(2, 1)), now));
    assert!(
        memory.note(&SequencerEvent::Unsubscribed(link(2, 1)), now),
        "a link the sidecar made and someone removed is looked at again"
    );
}

#[test]
fn each_round_trip_sample_is_counted_once() {
    let mut memory = Memory::default();
    let ports = sequencer(&[1, 2], &[]);
    let now = Instant::now();
    let alice = participant("Alice", 1, 1, 5004);
    let bob = participant("Bob", 2, 2, 5004);

    let first = status(vec![
        with_round_trip(alice.clone(), 20.0),
        with_round_trip(bob.clone(), 40.0),
    ]);
    let outcome = pass(&mut memory, &first, &ports, now);
    assert_eq!(outcome.figures.new_round_trips, [20.0, 40.0]);

    let unchanged = pass(&mut memory, &first, &ports, now);
    assert!(
        unchanged.figures.new_round_trips.is_empty(),
        "the same sample again is not a new one"
    );

    let second = status(vec![
        with_round_trip(alice, 20.0),
        with_round_trip(bob, 42.0),
    ]);
    let outcome = pass(&mut memory, &second, &ports, now);
    assert_eq!(outcome.figures.new_round_trips, [42.0]);
}

#[test]
fn every_room_reports_its_connected_participants_even_when_empty() {
    let mut memory = Memory::default();
    let leaving = ParticipantStatus {
        connected: false,
        ..participant("Bob", 2, 2, 5004)
    };
    let outcome = pass(
        &mut memory,
        &status(vec![participant("Alice", 1, 1, 5004), leaving]),
        &sequencer(&[1, 2], &[]),
        Instant::now(),
    );
    assert_eq!(outcome.figures.participants, [(5004, 1), (5006, 0)]);
}

#[test]
fn a_departed_participants_links_are_removed_and_counted() {
    let mut memory = Memory::default();
    let leaving = ParticipantStatus {
        connected: false,
        ..participant("Bob", 2, 2, 5004)
    };
    let outcome = pass(
        &mut memory,
        &status(vec![participant("Alice", 1, 1, 5004), leaving]),
        &sequencer(&[1, 2], &[link(1, 2), link(2, 1)]),
        Instant::now(),
    );
    assert_eq!((outcome.figures.added, outcome.figures.removed), (0, 2));
    assert_eq!(outcome.report.wiring, WiringState::wired(1, 0));
}

#[test]
fn the_same_status_warnings_are_told_once() {
    let mut memory = Memory::default();
    let warnings = ["a peer without an SSRC was skipped".to_owned()];
    assert!(!memory.warnings_changed(&[]), "none at first");
    assert!(memory.warnings_changed(&warnings));
    assert!(!memory.warnings_changed(&warnings));
    assert!(memory.warnings_changed(&[]), "and their going away");
}

#[test]
fn a_pass_that_cannot_look_reports_the_participants_last_seen() {
    let mut memory = Memory::default();
    pass(
        &mut memory,
        &status(vec![participant("Alice", 1, 1, 5004)]),
        &sequencer(&[1], &[]),
        Instant::now(),
    );
    let report = memory.report(WiringState::unknown("ControlSocketTimeout", "no answer"));
    assert_eq!(names(&report.participants), ["Alice"]);
    assert_eq!(report.wiring.reason, "ControlSocketTimeout");
}

/// Alice and Bob from the band's network, Mallory from elsewhere, in room 5004 on ports 1, 2
/// and 3; Carol, from elsewhere too, alone in room 5006 on port 4.
fn band_and_strangers() -> RtpmididStatus {
    status(vec![
        from(participant("Alice", 1, 1, 5004), "203.0.113.10"),
        from(participant("Bob", 2, 2, 5004), "203.0.113.11"),
        from(participant("Mallory", 3, 3, 5004), "198.51.100.7"),
        from(participant("Carol", 4, 4, 5006), "198.51.100.8"),
    ])
}

#[test]
fn a_participant_its_rooms_list_refuses_is_wired_in_neither_direction() {
    let mut memory = Memory::default();
    let status = band_and_strangers();
    let plan = plan_with(
        &memory,
        &status,
        &sequencer(&[1, 2, 3, 4], &[]),
        &only(5004, &["203.0.113.0/24"]),
    );
    assert_eq!(
        plan.wiring,
        WiringPlan {
            remove: vec![],
            add: vec![link(1, 2), link(2, 1)],
        },
        "Alice and Bob hear each other; Mallory hears nobody and nobody hears Mallory"
    );

    let outcome = conclude_ok(&mut memory, &status, plan);
    assert_eq!(
        outcome.report.wiring,
        WiringState::wired(3, 2),
        "Alice, Bob and Carol play; Mallory does not"
    );
}

#[test]
fn links_to_a_refused_participant_are_removed() {
    let wired_before = [
        link(1, 2),
        link(2, 1),
        link(1, 3),
        link(3, 1),
        link(2, 3),
        link(3, 2),
    ];
    let plan = plan_with(
        &Memory::default(),
        &band_and_strangers(),
        &sequencer(&[1, 2, 3, 4], &wired_before),
        &only(5004, &["203.0.113.0/24"]),
    );
    assert_eq!(
        plan.wiring,
        WiringPlan {
            remove: vec![link(1, 3), link(2, 3), link(3, 1), link(3, 2)],
            add: vec![],
        }
    );
}

#[test]
fn an_empty_list_admits_everyone() {
    let plan = plan_with(
        &Memory::default(),
        &band_and_strangers(),
        &sequencer(&[1, 2, 3], &[]),
        &only(5004, &[]),
    );
    assert_eq!(plan.wiring.add.len(), 6, "all three of room 5004 are wired");
}

#[test]
fn a_changed_list_takes_effect_at_the_next_pass() {
    let memory = Memory::default();
    let status = band_and_strangers();
    let wired = sequencer(&[1, 2, 3, 4], &[link(1, 2), link(2, 1)]);
    let band = only(5004, &["203.0.113.10/32", "203.0.113.11/32"]);
    assert_eq!(
        plan_with(&memory, &status, &wired, &band).wiring,
        WiringPlan::default(),
        "Alice and Bob are wired, Mallory is not: nothing to change"
    );

    let alice_only = only(5004, &["203.0.113.10/32"]);
    assert_eq!(
        plan_with(&memory, &status, &wired, &alice_only).wiring,
        WiringPlan {
            remove: vec![link(1, 2), link(2, 1)],
            add: vec![],
        },
        "Bob is refused now: his links go"
    );

    let open = RoomRules::default();
    assert_eq!(
        plan_with(&memory, &status, &wired, &open).wiring.add,
        [link(1, 3), link(2, 3), link(3, 1), link(3, 2)],
        "with no list, Mallory is wired too"
    );
}

#[test]
fn a_list_refuses_a_participant_whose_address_cannot_be_read_but_no_list_does_not() {
    let unreadable = ParticipantStatus {
        remote_address: "laptop.local".to_owned(),
        address: None,
        ..participant("Bob", 2, 2, 5004)
    };
    let status = status(vec![
        from(participant("Alice", 1, 1, 5004), "203.0.113.10"),
        unreadable,
    ]);
    let ports = sequencer(&[1, 2], &[]);
    let listed = only(5004, &["0.0.0.0/0", "::/0"]);
    assert_eq!(
        plan_with(&Memory::default(), &status, &ports, &listed).wiring,
        WiringPlan::default()
    );
    assert_eq!(
        plan_now(&Memory::default(), &status, &ports).wiring.add,
        [link(1, 2), link(2, 1)]
    );
}

#[test]
fn a_refused_participant_is_reported_as_refused_and_counted_nowhere() {
    let mut memory = Memory::default();
    let status = band_and_strangers();
    let plan = plan_with(
        &memory,
        &status,
        &sequencer(&[1, 2, 3, 4], &[]),
        &only(5004, &["203.0.113.0/24"]),
    );
    let outcome = conclude_ok(&mut memory, &status, plan);

    assert_eq!(
        names(&outcome.report.participants),
        ["Alice", "Bob", "Carol"]
    );
    assert_eq!(outcome.report.participant_count(), 3);
    assert_eq!(refused_names(&outcome.report.refused), ["Mallory"]);
    assert_eq!(
        outcome.report.refused[0].remote_address,
        "198.51.100.7:7000"
    );
    assert_eq!(names(&outcome.changes.joined), ["Alice", "Bob", "Carol"]);
    assert_eq!(outcome.changes.refused, outcome.report.refused);
    assert_eq!(
        outcome.figures.participants,
        [(5004, 2), (5006, 1)],
        "Mallory does not play in room 5004"
    );
}

#[test]
fn a_refused_participant_whose_port_is_not_there_yet_is_refused_all_the_same() {
    let mut memory = Memory::default();
    let status = band_and_strangers();
    let plan = plan_with(
        &memory,
        &status,
        &sequencer(&[1, 2], &[]),
        &only(5004, &["203.0.113.0/24"]),
    );
    let outcome = conclude_ok(&mut memory, &status, plan);
    assert_eq!(refused_names(&outcome.report.refused), ["Mallory"]);
}

#[test]
fn a_refused_participants_round_trips_are_not_the_hubs() {
    let mut memory = Memory::default();
    let status = status(vec![
        with_round_trip(from(participant("Alice", 1, 1, 5004), "203.0.113.10"), 20.0),
        with_round_trip(
            from(participant("Mallory", 3, 3, 5004), "198.51.100.7"),
            300.0,
        ),
    ]);
    let plan = plan_with(
        &memory,
        &status,
        &sequencer(&[1, 3], &[]),
        &only(5004, &["203.0.113.0/24"]),
    );
    let outcome = conclude_ok(&mut memory, &status, plan);
    assert_eq!(outcome.figures.new_round_trips, [20.0]);
}

/// `a` to `b` and back.
fn both_ways(a: PortAddr, b: PortAddr) -> [Subscription; 2] {
    [
        Subscription { from: a, to: b },
        Subscription { from: b, to: a },
    ]
}

/// The sequencer clients of rooms 5004 and 5006 where each room has one of its own.
const ROOM_CLIENTS: [(u16, i32); 2] = [(5004, 129), (5006, 130)];

/// The sequencer client of room `room`, if it has one of its own.
fn room_client(room: u16) -> Option<i32> {
    (ROOM_CLIENTS.iter())
        .find(|(r, _)| *r == room)
        .map(|(_, client)| *client)
}

fn room_port(room: u16, port: i32) -> PortAddr {
    PortAddr {
        client: room_client(room).unwrap(),
        port,
    }
}

/// `status` from a daemon that gives each room a sequencer client of its own.
fn with_room_clients(mut status: RtpmididStatus) -> RtpmididStatus {
    for room in &mut status.rooms {
        room.alsa_client = room_client(room.port);
    }
    status
}

/// The daemon's client without ports, and the rooms' clients with `ports` and `subscriptions`.
fn room_sequencer(ports: &[PortAddr], subscriptions: &[Subscription]) -> ClientSnapshot {
    ClientSnapshot {
        client: Some(DAEMON),
        more_client_names: (ROOM_CLIENTS.iter())
            .map(|(room, client)| (*client, format!("rtpmidid room-{room}")))
            .collect(),
        ports: ports
            .iter()
            .map(|&addr| PortInfo {
                addr,
                name: String::new(),
            })
            .collect(),
        subscriptions: subscriptions.iter().copied().collect(),
    }
}

/// The plan of a look at `snapshot` at `now` with a status read earlier, and when it was.
fn plan_read_at(
    memory: &Memory,
    (status, status_read): (&RtpmididStatus, Instant),
    snapshot: &ClientSnapshot,
    rules: &RoomRules,
    now: Instant,
) -> Plan {
    plan(memory, status, status_read, snapshot, rules, now, RETRY_FOR).unwrap()
}

#[test]
fn a_port_on_an_open_rooms_client_is_wired_before_any_status_names_it_and_counted_once() {
    let alice = room_port(5004, 1);
    let bob = room_port(5004, 2);
    let carol = room_port(5006, 1);
    // A status that names Alice alone, read before Bob's port was announced.
    let status_read = Instant::now();
    let old_status = with_room_clients(status(vec![participant("Alice", 1, 1, 5004)]));
    let announced_at = status_read + Duration::from_millis(5);
    let mut memory = Memory::default();
    memory.note(&SequencerEvent::PortStart(bob), announced_at);

    let now = announced_at + Duration::from_millis(1);
    let snapshot = room_sequencer(&[alice, bob, carol], &[]);
    let rules = RoomRules::default();
    let plan = plan_read_at(&memory, (&old_status, status_read), &snapshot, &rules, now);
    let both_ways = both_ways(alice, bob);
    assert_eq!(plan.wiring.add, both_ways, "Carol's room is another client");
    let outcome = conclude_ok(&mut memory, &old_status, plan);
    assert_eq!(outcome.figures.wired_joins, [(bob, announced_at)]);
    assert_eq!(
        names(&outcome.changes.joined),
        ["Alice"],
        "who Bob is comes with the status"
    );
    assert!(
        memory.awaits_explanation(),
        "the status is still to name him"
    );

    let fresh = with_room_clients(alice_and_bob());
    let later = now + Duration::from_millis(10);
    let wired = room_sequencer(&[alice, bob, carol], &both_ways);
    let plan = plan_read_at(&memory, (&fresh, later), &wired, &rules, later);
    assert_eq!(plan.wiring, WiringPlan::default());
    let outcome = conclude(&mut memory, &fresh, plan, &[], at("2026-11-25T19:00:01Z"));
    assert!(
        outcome.figures.wired_joins.is_empty(),
        "each join counts once"
    );
    assert_eq!(names(&outcome.report.participants), ["Alice", "Bob"]);
    assert!(!memory.awaits_explanation());
}

#[test]
fn a_port_on_a_listed_rooms_client_waits_for_a_status_read_after_its_announcement() {
    let alice = room_port(5004, 1);
    let port_two = room_port(5004, 2);
    let rules = only(5004, &["203.0.113.0/24"]);
    // The status names Bob, admitted, on port 2; then Bob left and Mallory, whom the list
    // refuses, got port 2 before the next status.
    let status_read = Instant::now();
    let old_status = with_room_clients(alice_and_bob());
    let announced_at = status_read + Duration::from_millis(5);
    let mut memory = Memory::default();
    memory.note(&SequencerEvent::PortExit(port_two), announced_at);
    memory.note(&SequencerEvent::PortStart(port_two), announced_at);

    let now = announced_at + Duration::from_millis(1);
    let snapshot = room_sequencer(&[alice, port_two], &[]);
    let plan = plan_read_at(&memory, (&old_status, status_read), &snapshot, &rules, now);
    assert_eq!(
        plan.wiring,
        WiringPlan::default(),
        "port 2 is not Bob's any more"
    );
    conclude_ok(&mut memory, &old_status, plan);
    assert!(memory.awaits_explanation());

    let mallory = from(participant("Mallory", 3, 2, 5004), "198.51.100.7");
    let fresh = with_room_clients(status(vec![participant("Alice", 1, 1, 5004), mallory]));
    let later = now + Duration::from_millis(10);
    let plan = plan_read_at(&memory, (&fresh, later), &snapshot, &rules, later);
    assert_eq!(plan.wiring, WiringPlan::default(), "Mallory is refused");
    let outcome = conclude(&mut memory, &fresh, plan, &[], at("2026-11-25T19:00:01Z"));
    assert_eq!(refused_names(&outcome.report.refused), ["Mallory"]);
    assert!(!memory.awaits_explanation());
}

#[test]
fn the_sequencer_thread_wires_joins_of_open_rooms_on_their_own_clients_but_not_who_does_not_play() {
    let alice = room_port(5004, 1);
    let bob = room_port(5004, 2);
    let carol = room_port(5006, 1);
    let leaving = ParticipantStatus {
        connected: false,
        ..participant("Bob", 2, 2, 5004)
    };
    let status = with_room_clients(status(vec![
        participant("Alice", 1, 1, 5004),
        leaving,
        participant("Carol", 3, 1, 5006),
    ]));
    let snapshot = room_sequencer(&[alice, bob, carol], &[]);
    let open_room = |room: u16, not_playing: &[PortAddr]| OpenRoom {
        room,
        client_name: format!("rtpmidid room-{room}"),
        not_playing: not_playing.iter().copied().collect(),
    };
    let open = plan_now(&Memory::default(), &status, &snapshot);
    assert_eq!(
        open.open_rooms(&status, &snapshot, &RoomRules::default()),
        OpenRooms::from([(129, open_room(5004, &[bob])), (130, open_room(5006, &[]))])
    );
    let rules = only(5004, &["203.0.113.0/24"]);
    let listed = plan_with(&Memory::default(), &status, &snapshot, &rules);
    assert_eq!(
        listed.open_rooms(&status, &snapshot, &rules),
        OpenRooms::from([(130, open_room(5006, &[]))]),
        "a room with a list waits for the status, which gives the address"
    );
    let mut without_b = snapshot.clone();
    without_b.more_client_names.remove(&130);
    assert_eq!(
        open.open_rooms(&status, &without_b, &RoomRules::default()),
        OpenRooms::from([(129, open_room(5004, &[bob]))]),
        "a client that is not there is no room"
    );
    let daemon_only = alice_and_bob();
    let daemon_snapshot = sequencer(&[1, 2], &[]);
    let plan = plan_now(&Memory::default(), &daemon_only, &daemon_snapshot);
    assert!(
        plan.open_rooms(&daemon_only, &daemon_snapshot, &RoomRules::default())
            .is_empty(),
        "ports on rtpmidid's own client say no room"
    );
}

#[test]
fn a_join_the_sequencer_thread_wired_is_counted_once_and_its_subscriptions_call_for_no_look() {
    let alice = room_port(5004, 1);
    let dave = room_port(5004, 4);
    let status_read = Instant::now();
    let old_status = with_room_clients(status(vec![participant("Alice", 1, 1, 5004)]));
    let announced_at = status_read + Duration::from_millis(5);
    let both_ways = both_ways(dave, alice);
    let mut memory = Memory::default();
    assert!(memory.note(&SequencerEvent::PortStart(dave), announced_at));
    memory.wired_at_announcement(dave, &both_ways);
    for subscription in both_ways {
        assert!(!memory.note(&SequencerEvent::Subscribed(subscription), announced_at));
    }

    let now = announced_at + Duration::from_millis(1);
    let wired = room_sequencer(&[alice, dave], &both_ways);
    let rules = RoomRules::default();
    let plan = plan_read_at(&memory, (&old_status, status_read), &wired, &rules, now);
    assert_eq!(plan.wiring, WiringPlan::default(), "the pass agrees");
    let outcome = conclude_ok(&mut memory, &old_status, plan);
    assert!(
        outcome.figures.wired_joins.is_empty(),
        "the thread's join is counted where it was wired"
    );
    assert!(
        memory.awaits_explanation(),
        "who Dave is comes with the status"
    );
}
