//! Renders the CustomResourceDefinition that `crds/midihub.yaml` holds.

use kube::CustomResourceExt;

use crate::MidiHub;

/// The MidiHub CRD as YAML, exactly as committed in `crds/midihub.yaml`.
pub fn crd_yaml() -> Result<String, serde_saphyr::ser::Error> {
    let yaml = serde_saphyr::to_string(&MidiHub::crd())?;
    Ok(format!(
        "# Generated from the Rust types in api/src/hub.rs by\n\
         #   cargo run -p midihub-api --bin crdgen > crds/midihub.yaml\n\
         # Do not edit by hand: a test fails when this file differs from the types.\n\
         {yaml}"
    ))
}
