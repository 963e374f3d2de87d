//! Prints the MidiHub CRD: `cargo run -p midihub-api --bin crdgen > crds/midihub.yaml`.

fn main() -> std::process::ExitCode {
    match midihub_api::crd::crd_yaml() {
        Ok(yaml) => {
            print!("{yaml}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("crdgen: cannot render the MidiHub CRD: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
