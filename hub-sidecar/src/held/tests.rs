use super::*;

const ALICE: &str = "alice";
const BOB: &str = "bob";
const CAROL: &str = "carol";

fn channel(number: u8) -> Channel {
    Channel::new(number).expect("a channel")
}

fn note(number: u8) -> Note {
    Note::new(number).expect("a note")
}

fn on(channel_number: u8, note_number: u8) -> ChannelEvent {
    ChannelEvent::NoteOn {
        channel: channel(channel_number),
        note: note(note_number),
        velocity: 100,
    }
}

fn off(channel_number: u8, note_number: u8) -> ChannelEvent {
    ChannelEvent::NoteOff {
        channel: channel(channel_number),
        note: note(note_number),
        velocity: 40,
    }
}

/// What the guard sends for a released note.
fn released(channel_number: u8, note_number: u8) -> ChannelEvent {
    ChannelEvent::NoteOff {
        channel: channel(channel_number),
        note: note(note_number),
        velocity: DEFAULT_RELEASE_VELOCITY,
    }
}

fn control(channel_number: u8, controller: u8, value: u8) -> ChannelEvent {
    ChannelEvent::ControlChange {
        channel: channel(channel_number),
        controller,
        value,
    }
}

fn pedal_up(channel_number: u8, pedal: Pedal) -> ChannelEvent {
    control(channel_number, pedal.controller(), 0)
}

/// A room in which each participant has sent its events, in order.
fn room(played: &[(&'static str, &[ChannelEvent])]) -> HeldInRoom<&'static str> {
    let mut room = HeldInRoom::new();
    for (participant, events) in played {
        for event in *events {
            room.observe(*participant, *event);
        }
    }
    room
}

fn room_with_presses(count: usize) -> HeldInRoom<&'static str> {
    let mut room = HeldInRoom::new();
    for _ in 0..count {
        room.observe(ALICE, on(0, 60));
    }
    room
}

#[test]
fn a_leaver_s_held_chord_is_released_note_by_note() {
    let mut room = room(&[(ALICE, &[on(0, 64), on(0, 60), on(0, 67)]), (BOB, &[])]);
    assert_eq!(
        room.leave(&ALICE),
        [released(0, 60), released(0, 64), released(0, 67)]
    );
}

#[test]
fn overlapping_notes_leave_only_the_ones_still_down() {
    // Legato: 62 starts before 60 ends, 64 before 62 ends; then the participant drops.
    let mut room = room(&[(
        ALICE,
        &[on(0, 60), on(0, 62), off(0, 60), on(0, 64), off(0, 62)],
    )]);
    assert_eq!(room.leave(&ALICE), [released(0, 64)]);
}

#[test]
fn a_key_pressed_twice_needs_two_note_offs_and_is_released_as_often_as_it_is_still_down() {
    let mut room = room(&[(ALICE, &[on(0, 60), on(0, 60), off(0, 60)])]);
    assert_eq!(
        room.held_by(&ALICE)
            .map(|held| held.presses(channel(0), note(60))),
        Some(1)
    );
    assert_eq!(room.leave(&ALICE), [released(0, 60)]);

    let mut room = room_with_presses(3);
    assert_eq!(room.leave(&ALICE), vec![released(0, 60); 3]);
}

#[test]
fn presses_of_one_key_are_remembered_up_to_a_bound() {
    let mut room = room_with_presses(1000);
    assert_eq!(
        room.leave(&ALICE),
        vec![released(0, 60); usize::from(PRESSES_REMEMBERED)]
    );
}

#[test]
fn a_note_on_with_velocity_zero_releases_the_key() {
    let silent_on = ChannelEvent::NoteOn {
        channel: channel(0),
        note: note(60),
        velocity: 0,
    };
    let mut room = room(&[(ALICE, &[on(0, 60), silent_on])]);
    assert!(room.leave(&ALICE).is_empty());
}

#[test]
fn a_note_off_for_a_key_that_is_not_down_changes_nothing() {
    let mut room = room(&[(ALICE, &[off(0, 60), on(0, 60), off(0, 61)])]);
    assert_eq!(room.leave(&ALICE), [released(0, 60)]);
}

#[test]
fn pedals_are_down_from_64_and_up_below() {
    let held = |value| {
        let mut held = Held::default();
        held.observe(control(0, controller::SUSTAIN, value));
        held.holds_pedal(channel(0), Pedal::Sustain)
    };
    assert!(!held(0));
    assert!(!held(63));
    assert!(held(64));
    assert!(held(127));

    let mut held = Held::default();
    held.observe(control(0, controller::SOSTENUTO, 127));
    held.observe(control(0, controller::SOSTENUTO, 63));
    assert!(held.is_empty());
}

#[test]
fn a_leaver_s_pedals_come_up_after_its_notes_in_controller_order() {
    let mut room = room(&[(
        ALICE,
        &[
            control(0, controller::SOFT, 100),
            control(0, controller::SUSTAIN, 127),
            control(0, controller::SOSTENUTO, 64),
            on(0, 60),
        ],
    )]);
    assert_eq!(
        room.leave(&ALICE),
        [
            released(0, 60),
            pedal_up(0, Pedal::Sustain),
            pedal_up(0, Pedal::Sostenuto),
            pedal_up(0, Pedal::Soft),
        ]
    );
}

#[test]
fn other_controllers_are_not_tracked() {
    // Modulation, volume, portamento switch: not what keeps a note sounding.
    let mut room = room(&[(
        ALICE,
        &[control(0, 1, 127), control(0, 7, 100), control(0, 65, 127)],
    )]);
    assert!(room.leave(&ALICE).is_empty());
}

#[test]
fn all_notes_off_all_sound_off_and_mode_changes_release_the_keys_of_their_channel_only() {
    for controller in [
        controller::ALL_NOTES_OFF,
        controller::ALL_SOUND_OFF,
        124,
        125,
        126,
        127,
    ] {
        let mut room = room(&[(
            ALICE,
            &[
                on(0, 60),
                on(0, 60),
                on(1, 60),
                control(0, controller::SUSTAIN, 127),
                control(0, controller, 0),
            ],
        )]);
        assert_eq!(
            room.leave(&ALICE),
            [pedal_up(0, Pedal::Sustain), released(1, 60)],
            "controller {controller} ends the keys of its channel only, and leaves its pedal down"
        );
    }
}

#[test]
fn reset_all_controllers_lets_the_pedals_of_its_channel_up_and_leaves_the_keys() {
    let mut room = room(&[(
        ALICE,
        &[
            on(0, 60),
            control(0, controller::SUSTAIN, 127),
            control(0, controller::SOSTENUTO, 127),
            control(0, controller::SOFT, 127),
            control(1, controller::SUSTAIN, 127),
            control(0, controller::RESET_ALL_CONTROLLERS, 0),
        ],
    )]);
    assert_eq!(
        room.leave(&ALICE),
        [released(0, 60), pedal_up(1, Pedal::Sustain)]
    );
}

#[test]
fn channels_are_kept_apart_and_released_in_order() {
    let mut room = room(&[
        (
            ALICE,
            &[
                on(15, 60),
                on(9, 36),
                on(0, 72),
                control(9, controller::SUSTAIN, 127),
            ],
        ),
        // Bob holds the same key and pedal, on other channels: that protects nothing of Alice's.
        (
            BOB,
            &[on(1, 72), on(3, 36), control(0, controller::SUSTAIN, 127)],
        ),
    ]);
    assert_eq!(
        room.leave(&ALICE),
        [
            released(0, 72),
            released(9, 36),
            pedal_up(9, Pedal::Sustain),
            released(15, 60),
        ]
    );
}

#[test]
fn a_note_two_participants_hold_is_released_only_when_the_last_of_them_leaves() {
    let mut room = room(&[
        (ALICE, &[on(0, 60), on(0, 64)]),
        (BOB, &[on(0, 60)]),
        (CAROL, &[]),
    ]);
    assert_eq!(room.leave(&ALICE), [released(0, 64)]);
    assert_eq!(room.leave(&BOB), [released(0, 60)]);
}

#[test]
fn a_pedal_another_participant_holds_down_stays_down() {
    let mut room = room(&[
        (
            ALICE,
            &[
                control(0, controller::SUSTAIN, 127),
                control(0, controller::SOFT, 127),
            ],
        ),
        (BOB, &[control(0, controller::SUSTAIN, 90)]),
    ]);
    assert_eq!(room.leave(&ALICE), [pedal_up(0, Pedal::Soft)]);
    assert_eq!(room.leave(&BOB), [pedal_up(0, Pedal::Sustain)]);
}

#[test]
fn a_participant_who_let_go_of_everything_leaves_nothing_to_release() {
    let mut room = room(&[
        (
            ALICE,
            &[
                on(0, 60),
                control(0, controller::SUSTAIN, 127),
                off(0, 60),
                control(0, controller::SUSTAIN, 0),
            ],
        ),
        (BOB, &[on(0, 62)]),
    ]);
    assert!(room.held_by(&ALICE).is_some_and(Held::is_empty));
    assert!(room.leave(&ALICE).is_empty());
}

#[test]
fn an_unknown_participant_s_leave_releases_nothing_and_a_participant_leaves_only_once() {
    let mut room = room(&[(ALICE, &[on(0, 60)])]);
    assert!(room.leave(&BOB).is_empty());
    assert_eq!(room.leave(&ALICE), [released(0, 60)]);
    assert!(room.leave(&ALICE).is_empty());
    assert!(room.held_by(&ALICE).is_none());
}

#[test]
fn nothing_is_released_while_the_participant_is_still_there() {
    // Observing another participant's events, or another participant's leave, never releases
    // what a participant holds: only its own leave does.
    let mut room = room(&[(ALICE, &[on(0, 60)]), (BOB, &[on(0, 62)])]);
    assert_eq!(room.leave(&BOB), [released(0, 62)]);
    assert_eq!(
        room.held_by(&ALICE)
            .map(|held| held.presses(channel(0), note(60))),
        Some(1)
    );
}

#[test]
fn the_release_counts_one_note_off_per_press_for_metrics() {
    let mut room = room(&[(
        ALICE,
        &[
            on(0, 60),
            on(0, 60),
            on(2, 61),
            control(0, controller::SUSTAIN, 127),
        ],
    )]);
    let release = room.leave(&ALICE);
    assert_eq!(release.iter().filter(|e| e.is_note_off()).count(), 3);
    assert_eq!(release.len(), 4);
}
