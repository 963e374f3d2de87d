use alsa::seq::{Addr, EvCtrl, EvNote, Event, EventType};

use super::*;

fn channel(number: u8) -> Channel {
    Channel::new(number).expect("a channel")
}

fn note(number: u8) -> Note {
    Note::new(number).expect("a note")
}

fn sequencer_note(event_type: EventType, channel: u8, note: u8, velocity: u8) -> Event<'static> {
    Event::new(
        event_type,
        &EvNote {
            channel,
            note,
            velocity,
            ..EvNote::default()
        },
    )
}

fn sequencer_control(channel: u8, param: u32, value: i32) -> Event<'static> {
    Event::new(
        EventType::Controller,
        &EvCtrl {
            channel,
            param,
            value,
        },
    )
}

#[test]
fn channels_are_0_to_15_and_notes_0_to_127() {
    assert_eq!(Channel::new(15).map(Channel::number), Some(15));
    assert_eq!(Channel::new(16), None);
    assert_eq!(Channel::all().count(), 16);
    assert_eq!(Note::new(127), Some(Note::HIGHEST));
    assert_eq!(Note::new(128), None);
}

#[test]
fn note_ons_offs_and_controllers_come_from_the_sequencer_as_they_were_played() {
    assert_eq!(
        ChannelEvent::from_sequencer(&sequencer_note(EventType::Noteon, 9, 36, 100)),
        Some(ChannelEvent::NoteOn {
            channel: channel(9),
            note: note(36),
            velocity: 100
        })
    );
    assert_eq!(
        ChannelEvent::from_sequencer(&sequencer_note(EventType::Noteoff, 0, 60, 64)),
        Some(ChannelEvent::NoteOff {
            channel: channel(0),
            note: note(60),
            velocity: 64
        })
    );
    assert_eq!(
        ChannelEvent::from_sequencer(&sequencer_control(15, 64, 127)),
        Some(ChannelEvent::ControlChange {
            channel: channel(15),
            controller: controller::SUSTAIN,
            value: 127
        })
    );
}

#[test]
fn a_sequencer_note_on_with_velocity_zero_stays_a_note_on_that_counts_as_a_note_off() {
    let event = ChannelEvent::from_sequencer(&sequencer_note(EventType::Noteon, 0, 60, 0));
    assert_eq!(
        event,
        Some(ChannelEvent::NoteOn {
            channel: channel(0),
            note: note(60),
            velocity: 0
        })
    );
    assert!(event.is_some_and(|event| event.is_note_off()));
}

#[test]
fn sequencer_events_that_are_not_tracked_or_do_not_fit_midi_are_skipped() {
    let not_channel_events = [
        Event::new(
            EventType::PortExit,
            &Addr {
                client: 128,
                port: 1,
            },
        ),
        Event::new(
            EventType::Pitchbend,
            &EvCtrl {
                channel: 0,
                param: 0,
                value: 8191,
            },
        ),
        sequencer_note(EventType::Note, 0, 60, 100),
    ];
    let out_of_range = [
        sequencer_note(EventType::Noteon, 16, 60, 100),
        sequencer_note(EventType::Noteon, 0, 128, 100),
        sequencer_note(EventType::Noteon, 0, 60, 128),
        sequencer_control(16, 64, 127),
        sequencer_control(0, 128, 0),
        sequencer_control(0, 64, 128),
        sequencer_control(0, 64, -1),
    ];
    for event in not_channel_events.iter().chain(&out_of_range) {
        assert_eq!(
            ChannelEvent::from_sequencer(event),
            None,
            "{:?}",
            event.get_type()
        );
    }
}

#[test]
fn an_event_survives_the_trip_to_the_sequencer_and_back() {
    let events = [
        ChannelEvent::NoteOn {
            channel: channel(3),
            note: note(61),
            velocity: 1,
        },
        ChannelEvent::NoteOff {
            channel: channel(15),
            note: Note::LOWEST,
            velocity: DEFAULT_RELEASE_VELOCITY,
        },
        ChannelEvent::ControlChange {
            channel: channel(0),
            controller: controller::ALL_NOTES_OFF,
            value: 0,
        },
    ];
    for event in events {
        assert_eq!(
            ChannelEvent::from_sequencer(&event.to_sequencer()),
            Some(event)
        );
    }
}

#[test]
fn pedals_are_the_sustain_sostenuto_and_soft_controllers() {
    assert_eq!(Pedal::from_controller(64), Some(Pedal::Sustain));
    assert_eq!(Pedal::from_controller(66), Some(Pedal::Sostenuto));
    assert_eq!(Pedal::from_controller(67), Some(Pedal::Soft));
    assert_eq!(
        Pedal::from_controller(65),
        None,
        "portamento is not a pedal here"
    );
}

#[test]
fn panic_lifts_the_pedals_then_ends_the_notes_then_resets_the_controllers_on_all_16_channels() {
    let events = panic();
    assert_eq!(events.len(), 16 * 5);
    for (number, per_channel) in (0..16).zip(events.chunks(5)) {
        let cc = |controller| ChannelEvent::ControlChange {
            channel: channel(number),
            controller,
            value: 0,
        };
        assert_eq!(
            per_channel,
            [
                cc(controller::SUSTAIN),
                cc(controller::SOSTENUTO),
                cc(controller::SOFT),
                cc(controller::ALL_NOTES_OFF),
                cc(controller::RESET_ALL_CONTROLLERS),
            ]
        );
    }
}
