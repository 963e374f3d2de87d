//! MIDI channel messages as the hub handles them: a plain type of our own for what
//! participants play (notes and controllers on channels 1–16), the pedals, the hub-wide panic,
//! and the translation to and from the ALSA sequencer's events.
//!
//! The types know nothing of ALSA; only [`ChannelEvent::from_sequencer`] and
//! [`ChannelEvent::to_sequencer`] do, at the edge.

use alsa::seq::{EvCtrl, EvNote, Event, EventType};

/// A MIDI channel: 0–15 on the wire, shown to musicians as 1–16.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Channel(u8);

impl Channel {
    /// The channel numbered `number` (0–15); `None` beyond.
    pub fn new(number: u8) -> Option<Channel> {
        (number < 16).then_some(Channel(number))
    }

    /// The wire number, 0–15.
    pub fn number(self) -> u8 {
        self.0
    }

    /// The 16 channels, in order.
    pub fn all() -> impl Iterator<Item = Channel> {
        (0..16).map(Channel)
    }
}

/// A MIDI note (key) number, 0–127; 60 is middle C.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Note(u8);

impl Note {
    pub const LOWEST: Note = Note(0);
    pub const HIGHEST: Note = Note(127);

    /// The note numbered `number` (0–127); `None` beyond.
    pub fn new(number: u8) -> Option<Note> {
        (number < 128).then_some(Note(number))
    }

    pub fn number(self) -> u8 {
        self.0
    }
}

/// Controller numbers the hub acts on (MIDI 1.0 control change and channel mode messages).
pub mod controller {
    /// Damper (hold) pedal.
    pub const SUSTAIN: u8 = 64;
    pub const SOSTENUTO: u8 = 66;
    pub const SOFT: u8 = 67;
    /// Silences every note of the channel at once, whatever the pedals.
    pub const ALL_SOUND_OFF: u8 = 120;
    /// Puts the performance controllers back at rest; pedals come up.
    pub const RESET_ALL_CONTROLLERS: u8 = 121;
    /// Releases every note of the channel, as if every key came up (the sustain pedal still
    /// holds them until it comes up).
    pub const ALL_NOTES_OFF: u8 = 123;
    /// Omni off, omni on, mono, poly: the MIDI 1.0 specification has each of these channel
    /// mode messages also act as All Notes Off.
    pub const MODE_CHANGES: std::ops::RangeInclusive<u8> = 124..=127;
}

/// Release velocity of the note-offs the hub sends: 64, the value the MIDI 1.0 specification
/// gives for a sender that does not measure how fast a key comes up.
pub const DEFAULT_RELEASE_VELOCITY: u8 = 64;

/// A channel voice message: what the sequencer delivers from a participant's port.
/// Velocities, controller numbers and values are 7-bit (0–127).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelEvent {
    /// A key goes down; with velocity 0 it comes up (the running-status way to say note-off).
    NoteOn {
        channel: Channel,
        note: Note,
        velocity: u8,
    },
    NoteOff {
        channel: Channel,
        note: Note,
        velocity: u8,
    },
    ControlChange {
        channel: Channel,
        controller: u8,
        value: u8,
    },
}

impl ChannelEvent {
    pub fn channel(&self) -> Channel {
        match *self {
            ChannelEvent::NoteOn { channel, .. }
            | ChannelEvent::NoteOff { channel, .. }
            | ChannelEvent::ControlChange { channel, .. } => channel,
        }
    }

    /// Whether the event releases a key: a note-off, or a note-on with velocity 0.
    pub fn is_note_off(&self) -> bool {
        matches!(
            self,
            ChannelEvent::NoteOff { .. } | ChannelEvent::NoteOn { velocity: 0, .. }
        )
    }

    /// The channel event an ALSA sequencer event carries: note-on, note-off and controller
    /// events with a channel and 7-bit values. `None` for anything else — other event types
    /// (pitch bend, clock, SysEx, ALSA's note-with-duration, which rtpmidid does not emit) and
    /// values that do not fit in MIDI.
    pub fn from_sequencer(event: &Event<'_>) -> Option<ChannelEvent> {
        match event.get_type() {
            event_type @ (EventType::Noteon | EventType::Noteoff) => {
                let data: EvNote = event.get_data()?;
                let channel = Channel::new(data.channel)?;
                let note = Note::new(data.note)?;
                let velocity = seven_bit(data.velocity)?;
                Some(if event_type == EventType::Noteon {
                    ChannelEvent::NoteOn {
                        channel,
                        note,
                        velocity,
                    }
                } else {
                    ChannelEvent::NoteOff {
                        channel,
                        note,
                        velocity,
                    }
                })
            }
            EventType::Controller => {
                let data: EvCtrl = event.get_data()?;
                Some(ChannelEvent::ControlChange {
                    channel: Channel::new(data.channel)?,
                    controller: u8::try_from(data.param).ok().and_then(seven_bit)?,
                    value: u8::try_from(data.value).ok().and_then(seven_bit)?,
                })
            }
            _ => None,
        }
    }

    /// The ALSA sequencer event that carries this one; the caller sets its source, destination
    /// and delivery (direct, or to subscribers) before sending it.
    pub fn to_sequencer(self) -> Event<'static> {
        match self {
            ChannelEvent::NoteOn {
                channel,
                note,
                velocity,
            } => Event::new(EventType::Noteon, &ev_note(channel, note, velocity)),
            ChannelEvent::NoteOff {
                channel,
                note,
                velocity,
            } => Event::new(EventType::Noteoff, &ev_note(channel, note, velocity)),
            ChannelEvent::ControlChange {
                channel,
                controller,
                value,
            } => Event::new(
                EventType::Controller,
                &EvCtrl {
                    channel: channel.number(),
                    param: controller.into(),
                    value: value.into(),
                },
            ),
        }
    }
}

fn seven_bit(value: u8) -> Option<u8> {
    (value < 128).then_some(value)
}

fn ev_note(channel: Channel, note: Note, velocity: u8) -> EvNote {
    EvNote {
        channel: channel.number(),
        note: note.number(),
        velocity,
        ..EvNote::default()
    }
}

/// A pedal: a switch controller that keeps notes sounding or changes how they sound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pedal {
    Sustain,
    Sostenuto,
    Soft,
}

impl Pedal {
    /// The pedals, in controller order.
    pub const ALL: [Pedal; 3] = [Pedal::Sustain, Pedal::Sostenuto, Pedal::Soft];

    pub fn controller(self) -> u8 {
        match self {
            Pedal::Sustain => controller::SUSTAIN,
            Pedal::Sostenuto => controller::SOSTENUTO,
            Pedal::Soft => controller::SOFT,
        }
    }

    /// The pedal a controller number moves, if it is one.
    pub fn from_controller(controller: u8) -> Option<Pedal> {
        Pedal::ALL
            .into_iter()
            .find(|pedal| pedal.controller() == controller)
    }

    /// Whether a value of the pedal's controller puts it down: MIDI switch controllers are
    /// on from 64 up and off below.
    pub fn is_down(value: u8) -> bool {
        value >= 64
    }

    /// The event that lets the pedal up on `channel`.
    pub fn up(self, channel: Channel) -> ChannelEvent {
        ChannelEvent::ControlChange {
            channel,
            controller: self.controller(),
            value: 0,
        }
    }
}

/// The hub-wide panic, to send to every participant: on each of the 16 channels, every pedal
/// up, then All Notes Off, then Reset All Controllers.
///
/// Pedals come up first because a receiver keeps notes that All Notes Off released sounding
/// while the sustain (or sostenuto) pedal is down; with the pedals up, All Notes Off really
/// ends them. Reset All Controllers comes last and puts pitch bend, modulation and expression
/// back at rest (it lifts the pedals too, but not every receiver implements it, hence the
/// explicit pedal-ups). All Sound Off is not sent: it would also cut the release tails of
/// notes that are ending normally.
pub fn panic() -> Vec<ChannelEvent> {
    let control = |channel, controller| ChannelEvent::ControlChange {
        channel,
        controller,
        value: 0,
    };
    Channel::all()
        .flat_map(|channel| {
            Pedal::ALL
                .into_iter()
                .map(move |pedal| pedal.up(channel))
                .chain([
                    control(channel, controller::ALL_NOTES_OFF),
                    control(channel, controller::RESET_ALL_CONTROLLERS),
                ])
        })
        .collect()
}

#[cfg(test)]
mod tests;
