//! Builders: pure functions from a MidiHub to the objects the operator applies. No I/O.
