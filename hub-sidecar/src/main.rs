//! hub-sidecar: runs beside rtpmidid in every hub pod. Its work (wiring participants through
//! the ALSA sequencer and publishing participants and latency) is the next milestone; until
//! then it is a placeholder that says so and exits with an error, so no hub looks healthier
//! than it is.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "hub-sidecar {}: participant wiring is not implemented yet; this build is a placeholder",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::FAILURE
}
