use super::*;

const DAEMON: i32 = 128;

fn port(port: i32) -> PortAddr {
    PortAddr {
        client: DAEMON,
        port,
    }
}

fn participant(alsa_port: i32, room: u16) -> ParticipantPort {
    ParticipantPort {
        port: port(alsa_port),
        room,
        plays: true,
    }
}

fn link(from: i32, to: i32) -> Subscription {
    Subscription {
        from: port(from),
        to: port(to),
    }
}

#[test]
fn everyone_in_a_room_hears_everyone_else_in_it_and_nobody_elsewhere() {
    let participants = [
        participant(1, 5004),
        participant(2, 5004),
        participant(3, 5004),
        participant(4, 5006),
    ];
    let desired = desired_subscriptions(&participants);
    let expected: BTreeSet<Subscription> = [
        link(1, 2),
        link(1, 3),
        link(2, 1),
        link(2, 3),
        link(3, 1),
        link(3, 2),
    ]
    .into();
    assert_eq!(desired, expected);
}

#[test]
fn a_lone_participant_is_wired_to_nobody() {
    assert!(desired_subscriptions(&[participant(1, 5004)]).is_empty());
    assert!(desired_subscriptions(&[participant(1, 5004), participant(2, 5006)]).is_empty());
}

#[test]
fn a_participant_that_does_not_play_is_not_wired() {
    let mut leaving = participant(2, 5004);
    leaving.plays = false;
    let desired = desired_subscriptions(&[participant(1, 5004), leaving, participant(3, 5004)]);
    assert_eq!(desired, [link(1, 3), link(3, 1)].into());
}

#[test]
fn same_named_participants_are_wired_by_port_not_by_name() {
    // Two participants called the same get two ports; the planner never sees names.
    let desired = desired_subscriptions(&[participant(5, 5004), participant(6, 5004)]);
    assert_eq!(desired, [link(5, 6), link(6, 5)].into());
}

#[test]
fn the_plan_adds_what_is_missing_and_removes_only_stale_links_between_participants() {
    let participants = [
        participant(1, 5004),
        participant(2, 5004),
        participant(3, 5006),
    ];
    let other_client = Subscription {
        from: port(1),
        to: PortAddr {
            client: 14,
            port: 0,
        },
    };
    let current: BTreeSet<Subscription> = [
        link(1, 2),   // wanted: kept
        link(1, 3),   // across rooms: removed
        link(9, 1),   // port 9 is not a participant's: left alone
        other_client, // another client's port: left alone
    ]
    .into();
    let plan = plan(&participants, &current);
    assert_eq!(plan.add, vec![link(2, 1)]);
    assert_eq!(plan.remove, vec![link(1, 3)]);
}

#[test]
fn applying_the_plan_reaches_a_fixed_point() {
    let participants = [
        participant(1, 5004),
        participant(2, 5004),
        participant(3, 5004),
    ];
    let mut current: BTreeSet<Subscription> = [link(3, 3)].into();
    let first = plan(&participants, &current);
    for removed in &first.remove {
        current.remove(removed);
    }
    current.extend(first.add.iter().copied());
    assert_eq!(
        plan(&participants, &current),
        WiringPlan::default(),
        "a second pass changes nothing"
    );
    assert!(!current.contains(&link(3, 3)), "no echo to itself");
}

#[test]
fn when_a_participant_leaves_its_links_go_with_its_port_and_nothing_else_changes() {
    let before = [
        participant(1, 5004),
        participant(2, 5004),
        participant(3, 5004),
    ];
    let current = desired_subscriptions(&before);
    // The kernel drops a deleted port's subscriptions by itself.
    let after_kernel: BTreeSet<Subscription> = current
        .into_iter()
        .filter(|s| s.from != port(3) && s.to != port(3))
        .collect();
    let plan = plan(&before[..2], &after_kernel);
    assert_eq!(plan, WiringPlan::default());
}
