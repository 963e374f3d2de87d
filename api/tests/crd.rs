//! The committed CustomResourceDefinition: it is exactly what the Rust types generate, and it
//! offers what `kubectl` users rely on (names, short name, subresources, printer columns).

use std::path::Path;

use kube::CustomResourceExt;
use midihub_api::MidiHub;

const REGENERATE: &str = "cargo run -p midihub-api --bin crdgen > crds/midihub.yaml";

#[test]
fn the_committed_crd_is_what_the_rust_types_generate() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds/midihub.yaml");
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read {}: {error}; run `{REGENERATE}`",
            path.display()
        )
    });
    let generated = midihub_api::crd::crd_yaml().expect("the CRD renders as YAML");
    if committed != generated {
        let first_difference = committed
            .lines()
            .zip(generated.lines())
            .enumerate()
            .find(|(_, (committed, generated))| committed != generated)
            .map(|(index, (committed, generated))| {
                format!(
                    "first difference at line {}:\n  committed: {committed}\n  generated: {generated}",
                    index + 1
                )
            })
            .unwrap_or_else(|| {
                format!(
                    "one is a prefix of the other ({} vs {} lines)",
                    committed.lines().count(),
                    generated.lines().count()
                )
            });
        panic!(
            "crds/midihub.yaml is out of date with the types in api/src/hub.rs; regenerate it with\n\n    \
             {REGENERATE}\n\n{first_difference}"
        );
    }
}

#[test]
fn the_crd_names_the_resource_as_kubectl_users_type_it() {
    let crd = MidiHub::crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("midihubs.midihub.io"));
    assert_eq!(crd.spec.group, "midihub.io");
    assert_eq!(crd.spec.scope, "Namespaced");
    let names = &crd.spec.names;
    assert_eq!(names.kind, "MidiHub");
    assert_eq!(names.plural, "midihubs");
    assert_eq!(names.singular.as_deref(), Some("midihub"));
    assert_eq!(names.short_names.as_deref(), Some(&["mh".to_owned()][..]));
}

#[test]
fn the_crd_serves_one_storage_version_v1alpha1() {
    let crd = MidiHub::crd();
    let versions: Vec<(&str, bool, bool)> = crd
        .spec
        .versions
        .iter()
        .map(|version| (version.name.as_str(), version.served, version.storage))
        .collect();
    assert_eq!(versions, [("v1alpha1", true, true)]);
}

#[test]
fn status_is_a_subresource_so_spec_and_status_writers_never_collide() {
    let crd = MidiHub::crd();
    let subresources = crd.spec.versions[0]
        .subresources
        .as_ref()
        .expect("the CRD declares subresources");
    assert!(
        subresources.status.is_some(),
        "status subresource missing: the operator and the sidecar write status through it"
    );
}

#[test]
fn kubectl_get_shows_phase_address_ports_participants_latency_next_and_age() {
    let crd = MidiHub::crd();
    let columns: Vec<(&str, &str, &str)> = crd.spec.versions[0]
        .additional_printer_columns
        .as_deref()
        .expect("the CRD declares printer columns")
        .iter()
        .map(|column| {
            (
                column.name.as_str(),
                column.type_.as_str(),
                column.json_path.as_str(),
            )
        })
        .collect();
    assert_eq!(
        columns,
        [
            ("Phase", "string", ".status.phase"),
            ("Address", "string", ".status.address"),
            ("Ports", "string", ".status.ports"),
            ("Participants", "integer", ".status.participantCount"),
            ("Latency", "string", ".status.latency"),
            ("Next", "string", ".status.nextTransition"),
            ("Age", "date", ".metadata.creationTimestamp"),
        ]
    );
}

#[test]
fn every_printer_column_points_at_a_field_of_the_status_schema() {
    let crd = MidiHub::crd();
    let version = &crd.spec.versions[0];
    let schema = version
        .schema
        .as_ref()
        .and_then(|schema| schema.open_api_v3_schema.as_ref())
        .expect("the CRD has an openAPIV3Schema");
    let status_fields = schema
        .properties
        .as_ref()
        .and_then(|properties| properties.get("status"))
        .and_then(|status| status.properties.as_ref())
        .expect("the schema describes status");
    for column in version
        .additional_printer_columns
        .as_deref()
        .unwrap_or_default()
    {
        if let Some(field) = column.json_path.strip_prefix(".status.") {
            assert!(
                status_fields.contains_key(field),
                "column {} shows .status.{field}, which the status schema lacks",
                column.name
            );
        }
    }
}
