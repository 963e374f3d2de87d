//! What each participant of a room holds down — notes and pedals, per channel — and what to
//! send the room's other participants when one leaves, so that nothing it played is left
//! sounding: the pure core of the stuck-note guard. rtpmidid sends no recovery journal, so a
//! participant who drops mid-chord would otherwise leave every synth in the room holding it.
//!
//! The guard feeds [`HeldInRoom::observe`] with what each participant's port delivers and
//! calls [`HeldInRoom::leave`] when a participant is gone. No sequencer, no clock: events in,
//! events out.

use std::collections::{BTreeMap, BTreeSet};

use crate::midi::{Channel, ChannelEvent, DEFAULT_RELEASE_VELOCITY, Note, Pedal, controller};

/// How many unreleased presses of one key are remembered.
///
/// A key can be pressed again while it still sounds. The MIDI 1.0 specification leaves it to
/// the receiver whether that takes a second voice or retriggers the first, and asks the sender
/// for one note-off per note-on. So presses are counted, not merely noted: after on, on, off
/// the key is still held (a receiver that took two voices still sounds one), and a leave sends
/// one note-off per unreleased press — a receiver that used one voice ignores the extra ones,
/// one that stacked voices needs them all. Beyond a few presses the sender is not pairing its
/// note-offs at all (some drum pads send none), and the cap keeps a leave's burst of events
/// bounded: at most 4 × 128 notes × 16 channels.
pub const PRESSES_REMEMBERED: u8 = 4;

/// What one participant holds down now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Held {
    /// Unreleased presses per channel and note, 1 to [`PRESSES_REMEMBERED`]; released keys
    /// are removed. Bounded by its keys: 16 channels × 128 notes.
    notes: BTreeMap<(Channel, Note), u8>,
    /// Pedals that are down, per channel.
    pedals: BTreeSet<(Channel, Pedal)>,
}

impl Held {
    /// Takes note of an event the participant sent.
    ///
    /// - Note-on presses its key (once more, if it is held already); note-off, or note-on with
    ///   velocity 0, releases one press.
    /// - Sustain, sostenuto and soft pedal are down from value 64 up, up below.
    /// - All Notes Off, All Sound Off and the channel mode messages (omni, mono, poly, which
    ///   the specification has act as All Notes Off) release every key of their channel; the
    ///   pedals stay as they are, as they do at a receiver.
    /// - Reset All Controllers lets the channel's pedals up: the MIDI 1.0 specification and
    ///   the recommended practice on its response (RP-015) both have it reset the pedals
    ///   (sustain, portamento, sostenuto, soft) while leaving notes alone.
    ///
    /// Each only concerns this participant: what another participant holds is theirs to
    /// release, and the guard releases it when they leave.
    pub fn observe(&mut self, event: ChannelEvent) {
        match event {
            ChannelEvent::NoteOn { channel, note, .. }
            | ChannelEvent::NoteOff { channel, note, .. } => {
                if event.is_note_off() {
                    self.release(channel, note);
                } else {
                    let presses = self.notes.entry((channel, note)).or_insert(0);
                    *presses = presses.saturating_add(1).min(PRESSES_REMEMBERED);
                }
            }
            ChannelEvent::ControlChange {
                channel,
                controller,
                value,
            } => self.control(channel, controller, value),
        }
    }

    fn release(&mut self, channel: Channel, note: Note) {
        if let Some(presses) = self.notes.get_mut(&(channel, note)) {
            *presses -= 1;
            if *presses == 0 {
                self.notes.remove(&(channel, note));
            }
        }
    }

    fn control(&mut self, channel: Channel, number: u8, value: u8) {
        if let Some(pedal) = Pedal::from_controller(number) {
            if Pedal::is_down(value) {
                self.pedals.insert((channel, pedal));
            } else {
                self.pedals.remove(&(channel, pedal));
            }
        } else if number == controller::ALL_NOTES_OFF
            || number == controller::ALL_SOUND_OFF
            || controller::MODE_CHANGES.contains(&number)
        {
            self.notes.retain(|(held_on, _), _| *held_on != channel);
        } else if number == controller::RESET_ALL_CONTROLLERS {
            self.pedals.retain(|(held_on, _)| *held_on != channel);
        }
    }

    /// How many unreleased presses the participant has of `note` on `channel` (0 when the key
    /// is up).
    pub fn presses(&self, channel: Channel, note: Note) -> u8 {
        self.notes.get(&(channel, note)).copied().unwrap_or(0)
    }

    /// Whether the participant holds `pedal` down on `channel`.
    pub fn holds_pedal(&self, channel: Channel, pedal: Pedal) -> bool {
        self.pedals.contains(&(channel, pedal))
    }

    /// Whether the participant holds nothing down.
    pub fn is_empty(&self) -> bool {
        self.notes.is_empty() && self.pedals.is_empty()
    }
}

/// What every participant of one room holds, keyed by participant (in the sidecar, the
/// participant's ALSA port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldInRoom<P> {
    participants: BTreeMap<P, Held>,
}

impl<P> Default for HeldInRoom<P> {
    fn default() -> Self {
        Self {
            participants: BTreeMap::new(),
        }
    }
}

impl<P: Ord> HeldInRoom<P> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes note of an event `participant` sent.
    pub fn observe(&mut self, participant: P, event: ChannelEvent) {
        self.participants
            .entry(participant)
            .or_default()
            .observe(event);
    }

    /// What `participant` holds now, if it ever sent anything and has not left.
    pub fn held_by(&self, participant: &P) -> Option<&Held> {
        self.participants.get(participant)
    }

    /// Forgets `participant` and returns what to send the room's remaining participants so
    /// that nothing it held keeps sounding: for every key it held, one note-off per unreleased
    /// press, and for every pedal it held down, that pedal up (value 0) — except a key or a
    /// pedal that a remaining participant holds on the same channel, which is theirs and must
    /// not be cut short. (A receiver that gave each participant's press of a shared key a voice
    /// of its own keeps the leaver's until that key's last release; cutting the remaining
    /// player short on every receiver that plays one voice per key would be worse.)
    ///
    /// Channel by channel in order; within a channel, notes from low to high, then the
    /// pedals (sustain, sostenuto, soft), the way a player lets go: keys first, then feet.
    /// Either order silences the channel; this one is easy to read in a log.
    ///
    /// Empty for a participant that held nothing or is unknown. Each note-off is one press
    /// released, so `events.iter().filter(|e| e.is_note_off()).count()` is the figure for a
    /// "notes released" metric.
    pub fn leave(&mut self, participant: &P) -> Vec<ChannelEvent> {
        let Some(leaver) = self.participants.remove(participant) else {
            return Vec::new();
        };
        let mut release = Vec::new();
        for channel in Channel::all() {
            let keys = (channel, Note::LOWEST)..=(channel, Note::HIGHEST);
            for (&(_, note), &presses) in leaver.notes.range(keys) {
                if self.anyone_holds(|other| other.presses(channel, note) > 0) {
                    continue;
                }
                release.extend((0..presses).map(|_| ChannelEvent::NoteOff {
                    channel,
                    note,
                    velocity: DEFAULT_RELEASE_VELOCITY,
                }));
            }
            for pedal in Pedal::ALL {
                if leaver.holds_pedal(channel, pedal)
                    && !self.anyone_holds(|other| other.holds_pedal(channel, pedal))
                {
                    release.push(pedal.up(channel));
                }
            }
        }
        release
    }

    /// Whether any participant of the room holds what `holds` asks about.
    fn anyone_holds(&self, holds: impl Fn(&Held) -> bool) -> bool {
        self.participants.values().any(holds)
    }
}

#[cfg(test)]
mod tests;
