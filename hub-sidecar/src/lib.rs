//! hub-sidecar: runs beside rtpmidid in every hub. It wires each room's participants to each
//! other through the ALSA sequencer, learns from rtpmidid's control socket who is in which
//! room and how far away they are, and publishes that (to the MidiHub's status, or on stdout
//! and HTTP in local mode).
//!
//! [`sidecar`] is the loop and [`step`] what each pass decides; [`wiring`] plans subscriptions,
//! [`sequencer`] applies them, [`rtpmidid`] reads the daemon, [`roster`] and [`report`] decide
//! what to publish and when, [`allow`] who may play in a room ([`hub_rules`] follows the
//! hub's lists), [`publish`] writes it. [`health`] is what the loop tells the HTTP endpoint
//! ([`http`]) about itself. [`held`] tracks what each participant holds down so that the
//! stuck-note guard ([`guard`], a sequencer client of its own) can release it for the others
//! when they leave; [`midi`] is the events it reads and sends. Both sequencer clients run the
//! loop of `sequencer_thread` on threads of their own.
//!
//! An error's message tells the whole story, its cause's words included, because logs and the
//! Wiring condition show the message alone; so no error also returns its cause as `source()`,
//! which would print it twice wherever a chain of causes is shown.

pub mod allow;
pub mod guard;
pub mod health;
pub mod held;
pub mod http;
pub mod hub_rules;
pub mod local;
pub mod metrics;
pub mod midi;
pub mod publish;
pub mod report;
pub mod roster;
pub mod rtpmidid;
pub mod sequencer;
mod sequencer_thread;
pub mod sidecar;
pub mod step;
pub mod wiring;
