use jiff::SignedDuration;

use super::*;
use crate::page::examples::{hub, now, participant};

fn minutes(minutes: i64) -> SignedDuration {
    SignedDuration::from_mins(minutes)
}

fn round_trips(
    history: &History,
    hub: &MidiHub,
    participant: &Participant,
    at: Timestamp,
) -> Vec<f64> {
    history
        .samples(&hub_key(hub), participant, at)
        .iter()
        .map(|sample| sample.round_trip_ms)
        .collect()
}

#[test]
fn a_sample_is_kept_for_each_change_of_a_participants_round_trip() {
    let mut history = History::default();
    for (second, last_ms) in [(0, 20.0), (1, 20.0), (2, 25.0), (3, 22.0)] {
        let alice = participant(5004, "alice", "198.51.100.7:5004", last_ms);
        history.record(
            &hub(true, &[alice]),
            now() + SignedDuration::from_secs(second),
        );
    }
    let alice = participant(5004, "alice", "198.51.100.7:5004", 22.0);
    assert_eq!(
        round_trips(&history, &hub(true, &[]), &alice, now() + minutes(1)),
        [20.0, 25.0, 22.0],
        "an unchanged round trip is no new sample"
    );
}

#[test]
fn samples_older_than_the_window_go_but_the_last_before_it_stays() {
    let mut history = History::default();
    for (minute, last_ms) in [(0, 10.0), (1, 11.0), (2, 12.0), (13, 13.0)] {
        let alice = participant(5004, "alice", "198.51.100.7:5004", last_ms);
        history.record(&hub(true, &[alice]), now() + minutes(minute));
    }
    let alice = participant(5004, "alice", "198.51.100.7:5004", 13.0);
    // At minute 13 the window starts at minute 3: 12 ms held until 13 came.
    assert_eq!(
        round_trips(&history, &hub(true, &[]), &alice, now() + minutes(13)),
        [12.0, 13.0]
    );
    assert_eq!(history.len(), 2, "the older samples are gone from memory");
    // Much later, with no change, the last round trip still stands.
    assert_eq!(
        round_trips(&history, &hub(true, &[]), &alice, now() + minutes(60)),
        [13.0]
    );
}

#[test]
fn a_participant_keeps_at_most_the_cap_of_samples() {
    let mut history = History::default();
    for index in 0..(MAX_SAMPLES + 50) {
        let alice = participant(5004, "alice", "198.51.100.7:5004", index as f64);
        history.record(&hub(true, &[alice]), now());
    }
    assert_eq!(history.len(), MAX_SAMPLES);
}

#[test]
fn participants_that_left_are_forgotten() {
    let mut history = History::default();
    let alice = participant(5004, "alice", "198.51.100.7:5004", 20.0);
    let bob = participant(5006, "bob", "198.51.100.8:5006", 30.0);
    history.record(&hub(true, &[alice.clone(), bob.clone()]), now());
    history.record(&hub(true, std::slice::from_ref(&bob)), now());
    assert!(round_trips(&history, &hub(true, &[]), &alice, now()).is_empty());
    assert_eq!(round_trips(&history, &hub(true, &[]), &bob, now()), [30.0]);
}

#[test]
fn only_listed_hubs_are_tracked_and_one_unlisted_is_forgotten() {
    let mut history = History::default();
    let alice = participant(5004, "alice", "198.51.100.7:5004", 20.0);
    assert!(
        !history.record(&hub(false, std::slice::from_ref(&alice)), now()),
        "never shown"
    );
    assert_eq!(history.len(), 0);
    assert!(history.record(&hub(true, std::slice::from_ref(&alice)), now()));
    assert_eq!(history.len(), 1);
    assert!(
        history.record(&hub(false, &[alice]), now()),
        "it was shown until now"
    );
    assert_eq!(history.len(), 0);
}

#[test]
fn deleted_hubs_and_hubs_gone_from_a_fresh_list_are_forgotten() {
    let mut history = History::default();
    let alice = participant(5004, "alice", "198.51.100.7:5004", 20.0);
    let berlin = hub(true, std::slice::from_ref(&alice));
    history.record(&berlin, now());
    assert!(history.forget(&hub_key(&berlin)));
    assert!(!history.forget(&hub_key(&berlin)), "already gone");

    history.record(&berlin, now());
    history.retain(|_| false);
    assert_eq!(history.len(), 0);
}
