//! The ALSA sequencer client of the sidecar, on a thread of its own.
