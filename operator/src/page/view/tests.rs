use std::sync::Arc;

use super::*;
use crate::page::examples::{hub, named, now, participant};

#[test]
fn an_unlisted_hub_has_no_public_view() {
    let alice = participant(5004, "alice", "198.51.100.7:5004", 20.0);
    assert_eq!(
        hub_view(&hub(false, &[alice]), &History::default(), now()),
        None
    );
}

#[test]
fn a_listed_hub_shows_its_phase_rooms_addresses_and_next_transition() {
    let view = hub_view(&hub(true, &[]), &History::default(), now()).unwrap();
    assert_eq!(
        (view.namespace.as_str(), view.name.as_str()),
        ("music", "berlin")
    );
    assert_eq!(view.phase, Some("Ready"));
    assert_eq!(view.time_zone, "Europe/Berlin");
    let next = view.next_transition.unwrap();
    assert_eq!(next.what, "sleep Wed 23:00 Europe/Berlin");
    assert_eq!(next.at, Some("2026-12-02T22:00:00Z".parse().unwrap()));
    let rooms: Vec<_> = view
        .rooms
        .iter()
        .map(|room| (room.session.as_str(), room.endpoint.as_deref()))
        .collect();
    assert_eq!(
        rooms,
        [
            ("Main room", Some("203.0.113.10:5004")),
            ("berlin-5006", Some("203.0.113.10:5006")),
        ],
        "a room without a name has the default session name"
    );
}

#[test]
fn participants_are_shown_in_their_own_room_with_latency_and_history() {
    let alice = participant(5004, "alice", "198.51.100.7:5004", 20.0);
    let bob = participant(5006, "bob", "198.51.100.8:5006", 30.0);
    let carol = participant(5004, "carol", "198.51.100.9:5004", 40.0);
    let berlin = hub(true, &[alice, bob, carol]);
    let mut history = History::default();
    history.record(&berlin, now());
    let view = hub_view(&berlin, &history, now()).unwrap();
    let names = |room: &RoomView| -> Vec<String> {
        room.participants.iter().map(|p| p.name.clone()).collect()
    };
    assert_eq!(names(&view.rooms[0]), ["alice", "carol"]);
    assert_eq!(names(&view.rooms[1]), ["bob"]);
    let bob = &view.rooms[1].participants[0];
    assert_eq!(bob.latency.as_ref().map(|l| l.last_ms), Some(30.0));
    assert_eq!(bob.joined_at, Some("2026-12-02T17:30:00Z".parse().unwrap()));
    assert_eq!(bob.history.len(), 1);
}

#[test]
fn a_hub_without_an_address_offers_nothing_to_dial() {
    let mut sleeping = hub(true, &[]);
    sleeping.status.as_mut().unwrap().address = None;
    let view = hub_view(&sleeping, &History::default(), now()).unwrap();
    assert!(view.rooms.iter().all(|room| room.endpoint.is_none()));
}

#[test]
fn an_ipv6_address_is_dialled_in_brackets() {
    assert_eq!(endpoint("2001:db8::10", 5004), "[2001:db8::10]:5004");
    assert_eq!(endpoint("hub.example.org", 5004), "hub.example.org:5004");
}

#[test]
fn a_hub_without_a_schedule_or_with_an_unknown_zone_is_shown_in_utc() {
    let mut always = hub(true, &[]);
    always.spec.schedule = None;
    assert_eq!(
        hub_view(&always, &History::default(), now())
            .unwrap()
            .time_zone,
        "UTC"
    );
    let mut unknown = hub(true, &[]);
    unknown.spec.schedule.as_mut().unwrap().time_zone = "Mars/Olympus".to_owned();
    assert_eq!(
        hub_view(&unknown, &History::default(), now())
            .unwrap()
            .time_zone,
        "UTC"
    );
}

#[test]
fn the_listed_hubs_come_in_order_of_namespace_and_name_without_the_unlisted() {
    let hubs = [
        named(hub(true, &[]), "zurich"),
        named(hub(false, &[]), "hidden"),
        named(hub(true, &[]), "athens"),
    ]
    .map(Arc::new);
    let names: Vec<String> = listed_hubs(&hubs, &History::default(), now())
        .into_iter()
        .map(|view| view.name)
        .collect();
    assert_eq!(names, ["athens", "zurich"]);
}
