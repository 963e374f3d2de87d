//! hub-sidecar: runs beside rtpmidid in every hub. It wires each room's participants to each
//! other through the ALSA sequencer, learns from rtpmidid's control socket who is in which
//! room and how far away they are, and publishes that (to the MidiHub's status, or on stdout
//! and HTTP in local mode).

pub mod rtpmidid;
pub mod sequencer;
pub mod wiring;
