//! Validation at admission, as a specification: which MidiHub objects the API server refuses,
//! and that the message it gives tells the user what to fix.
//!
//! Objects are judged against the committed `crds/midihub.yaml` by `SchemaAdmission`, a test
//! double standing in for the API server's validation (OpenAPI schema + CEL rules). With
//! `MIDIHUB_ADMISSION_KUBECONFIG` naming the kubeconfig of a real API server that has the CRD
//! installed (the control-plane tier sets it), every case is judged by that server instead
//! (`ServerAdmission`, a server-side dry run): the same verdicts, fields and message fragments.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod schema_admission;
mod server_admission;

use midihub_api::MidiHub;
use schema_admission::{Rejection, SchemaAdmission, load_yaml};
use serde_json::{Value, json};
use server_admission::ServerAdmission;

/// Who judges: the real API server when the control-plane tier names one, else the double.
enum Admission {
    Double(SchemaAdmission),
    Server(ServerAdmission),
}

impl Admission {
    fn admit(&self, object: &Value) -> Result<(), Vec<Rejection>> {
        match self {
            Self::Double(double) => double.admit(object),
            Self::Server(server) => server.admit(object),
        }
    }

    /// The reasons the object is refused; fails the test if it is admitted.
    fn rejections(&self, object: &Value) -> Vec<Rejection> {
        match self.admit(object) {
            Ok(()) => panic!(
                "expected the API server to refuse this object, but it was admitted:\n{}",
                serde_json::to_string_pretty(object).unwrap()
            ),
            Err(rejections) => rejections,
        }
    }
}

fn admission() -> Admission {
    match std::env::var_os("MIDIHUB_ADMISSION_KUBECONFIG") {
        Some(kubeconfig) => Admission::Server(ServerAdmission::new(kubeconfig.as_ref())),
        None => Admission::Double(SchemaAdmission::from_committed_crd()),
    }
}

/// The example users start from: `examples/midihub.yaml`.
fn example_hub() -> Value {
    load_yaml("examples/midihub.yaml")
}

/// The example hub with its `ports` replaced.
fn hub_with_ports(ports: Value) -> Value {
    let mut hub = example_hub();
    hub["spec"]["ports"] = ports;
    hub
}

/// The example hub whose first room has the given session name.
fn hub_with_session_name(name: &str) -> Value {
    hub_with_ports(json!([{ "port": 5004, "name": name }]))
}

/// The example hub with a single schedule window.
fn hub_with_window(window: Value) -> Value {
    let mut hub = example_hub();
    hub["spec"]["schedule"]["windows"] = json!([window]);
    hub
}

/// Asserts that one rejection concerns `field` and that its message contains every fragment
/// (the facts a user needs to fix the object).
#[track_caller]
fn assert_rejected(rejections: &[Rejection], field: &str, fragments: &[&str]) {
    let found = rejections.iter().any(|rejection| {
        rejection.field == field
            && fragments
                .iter()
                .all(|fragment| rejection.message.contains(fragment))
    });
    assert!(
        found,
        "expected a rejection of `{field}` whose message contains {fragments:?}; got:\n{}",
        rejections
            .iter()
            .map(|rejection| format!("  - {rejection}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[track_caller]
fn assert_admitted(admission: &Admission, hub: &Value) {
    if let Err(rejections) = admission.admit(hub) {
        panic!(
            "expected the object to be admitted; it was refused:\n{}",
            rejections
                .iter()
                .map(|rejection| format!("  - {rejection}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// What is admitted

#[test]
fn the_example_hub_is_admitted() {
    assert_admitted(&admission(), &example_hub());
}

#[test]
fn the_example_hub_reads_into_the_rust_types() {
    let hub: MidiHub = serde_json::from_value(example_hub()).expect("the example is a MidiHub");
    let ports: Vec<i32> = hub.spec.ports.iter().map(|room| room.port).collect();
    assert_eq!(ports, [5004, 5006]);
    assert_eq!(hub.spec.ports[0].name.as_deref(), Some("jam-studio-a"));
    assert_eq!(hub.spec.ports[1].name, None);
    assert_eq!(hub.spec.region.as_deref(), Some("eu-central-1"));
    let schedule = hub.spec.schedule.expect("the example has a schedule");
    assert_eq!(schedule.time_zone, "Europe/Berlin");
    assert!(
        schedule
            .windows
            .iter()
            .any(|window| window.end < window.start),
        "the example shows a window that crosses midnight"
    );
}

#[test]
fn the_edges_of_the_port_range_are_admitted() {
    let admission = admission();
    assert_admitted(
        &admission,
        &hub_with_ports(json!([{ "port": 1024 }, { "port": 65534 }])),
    );
}

#[test]
fn a_session_name_of_63_characters_with_spaces_and_punctuation_is_admitted() {
    let admission = admission();
    let name = format!(
        "Studio A (main), Berlin's jam: 'blues' & more! {}",
        "x".repeat(16)
    );
    assert_eq!(name.chars().count(), 63);
    assert_admitted(&admission, &hub_with_session_name(&name));
}

#[test]
fn a_hub_without_a_schedule_is_admitted() {
    let admission = admission();
    let mut hub = example_hub();
    hub["spec"].as_object_mut().unwrap().remove("schedule");
    assert_admitted(&admission, &hub);
}

#[test]
fn wake_until_alone_is_admitted() {
    let admission = admission();
    let mut hub = example_hub();
    hub["spec"]["wakeUntil"] = json!("2026-11-28T23:00:00Z");
    assert_admitted(&admission, &hub);
}

#[test]
fn a_hub_name_longer_than_55_characters_is_refused() {
    let admission = admission();
    let mut hub = example_hub();
    hub["metadata"]["name"] = json!("j".repeat(56));
    let rejections = admission.rejections(&hub);
    assert_rejected(&rejections, "", &["name may have at most 55 characters"]);
}

// ---------------------------------------------------------------------------------------------
// Ports

#[test]
fn a_hub_without_ports_is_refused() {
    let admission = admission();
    let rejections = admission.rejections(&hub_with_ports(json!([])));
    assert_rejected(&rejections, "spec.ports", &["should have at least 1 items"]);
}

#[test]
fn a_hub_that_omits_ports_is_refused() {
    let admission = admission();
    let mut hub = example_hub();
    hub["spec"].as_object_mut().unwrap().remove("ports");
    let rejections = admission.rejections(&hub);
    assert_rejected(&rejections, "spec.ports", &["Required value"]);
}

#[test]
fn an_odd_port_is_refused() {
    let admission = admission();
    let rejections = admission.rejections(&hub_with_ports(json!([{ "port": 5005 }])));
    assert_rejected(
        &rejections,
        "spec.ports[0].port",
        &["port must be even", "5004, 5006"],
    );
}

#[test]
fn a_port_below_1024_is_refused() {
    let admission = admission();
    let rejections = admission.rejections(&hub_with_ports(json!([{ "port": 1022 }])));
    assert_rejected(
        &rejections,
        "spec.ports[0].port",
        &["should be greater than or equal to 1024"],
    );
}

#[test]
fn a_port_above_65534_is_refused() {
    let admission = admission();
    let rejections = admission.rejections(&hub_with_ports(json!([{ "port": 65536 }])));
    assert_rejected(
        &rejections,
        "spec.ports[0].port",
        &["should be less than or equal to 65534"],
    );
}

#[test]
fn a_duplicate_port_is_refused() {
    let admission = admission();
    let rejections =
        admission.rejections(&hub_with_ports(json!([{ "port": 5004 }, { "port": 5004 }])));
    assert_rejected(
        &rejections,
        "spec.ports",
        &["each port may appear only once", "remove the duplicate"],
    );
}

#[test]
fn a_port_whose_data_port_is_another_rooms_control_port_is_refused() {
    // 5004's data port is 5005, listed as a room of its own. Since control ports must be even
    // and N+1 is odd, the odd-port rule fires on the second entry as well as the list rule on
    // the overlap: both messages reach the user.
    let admission = admission();
    let rejections =
        admission.rejections(&hub_with_ports(json!([{ "port": 5004 }, { "port": 5005 }])));
    assert_rejected(
        &rejections,
        "spec.ports",
        &["data port (port + 1)", "space the ports by 2"],
    );
    assert_rejected(&rejections, "spec.ports[1].port", &["port must be even"]);
    assert_eq!(rejections.len(), 2, "exactly these two: {rejections:?}");
}

// ---------------------------------------------------------------------------------------------
// Session names: they land in rtpmidid's INI configuration, so nothing may add a line or a
// section there.

const SESSION_NAME_FIX: &str = "use letters, digits, spaces and simple punctuation";

#[test]
fn a_session_name_with_a_newline_is_refused() {
    let admission = admission();
    let rejections = admission.rejections(&hub_with_session_name("jam\n[general]"));
    assert_rejected(
        &rejections,
        "spec.ports[0].name",
        &["control characters (such as a newline)", SESSION_NAME_FIX],
    );
}

#[test]
fn a_session_name_with_a_bracket_is_refused() {
    let admission = admission();
    let rejections = admission.rejections(&hub_with_session_name("jam [main]"));
    assert_rejected(
        &rejections,
        "spec.ports[0].name",
        &["[ ] = ; # { }", SESSION_NAME_FIX],
    );
}

#[test]
fn a_session_name_with_a_hash_is_refused() {
    let admission = admission();
    let rejections = admission.rejections(&hub_with_session_name("jam #1"));
    assert_rejected(
        &rejections,
        "spec.ports[0].name",
        &["[ ] = ; # { }", SESSION_NAME_FIX],
    );
}

#[test]
fn a_session_name_with_a_backslash_or_quote_is_refused() {
    let admission = admission();
    for name in [r"jam\nroom", r#"jam "A""#] {
        let rejections = admission.rejections(&hub_with_session_name(name));
        assert_rejected(&rejections, "spec.ports[0].name", &[SESSION_NAME_FIX]);
    }
}

#[test]
fn a_session_name_with_a_leading_space_is_refused() {
    let admission = admission();
    let rejections = admission.rejections(&hub_with_session_name(" jam"));
    assert_rejected(
        &rejections,
        "spec.ports[0].name",
        &["may not start or end with whitespace"],
    );
}

#[test]
fn a_session_name_longer_than_63_characters_is_refused() {
    let admission = admission();
    let rejections = admission.rejections(&hub_with_session_name(&"j".repeat(64)));
    assert_rejected(
        &rejections,
        "spec.ports[0].name",
        &["may not be more than 63 bytes"],
    );
}

// ---------------------------------------------------------------------------------------------
// Schedule

#[test]
fn a_start_time_of_25_00_is_refused() {
    let admission = admission();
    let hub = hub_with_window(json!({ "days": ["Mon"], "start": "25:00", "end": "23:00" }));
    let rejections = admission.rejections(&hub);
    assert_rejected(
        &rejections,
        "spec.schedule.windows[0].start",
        &["start must be a 24-hour time HH:MM", "e.g. 19:00"],
    );
}

#[test]
fn a_start_time_of_7pm_is_refused() {
    let admission = admission();
    let hub = hub_with_window(json!({ "days": ["Mon"], "start": "7pm", "end": "23:00" }));
    let rejections = admission.rejections(&hub);
    assert_rejected(
        &rejections,
        "spec.schedule.windows[0].start",
        &["start must be a 24-hour time HH:MM", "not 7pm"],
    );
}

#[test]
fn an_unknown_day_is_refused() {
    let admission = admission();
    let hub = hub_with_window(json!({ "days": ["Funday"], "start": "19:00", "end": "23:00" }));
    let rejections = admission.rejections(&hub);
    assert_rejected(
        &rejections,
        "spec.schedule.windows[0].days[0]",
        &[
            "Unsupported value: \"Funday\"",
            r#"supported values: "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun""#,
        ],
    );
}

#[test]
fn a_duplicate_day_is_refused() {
    let admission = admission();
    let hub = hub_with_window(json!({ "days": ["Mon", "Mon"], "start": "19:00", "end": "23:00" }));
    let rejections = admission.rejections(&hub);
    assert_rejected(
        &rejections,
        "spec.schedule.windows[0].days",
        &["each day may appear only once in days"],
    );
}

#[test]
fn a_window_without_days_is_refused() {
    let admission = admission();
    let hub = hub_with_window(json!({ "days": [], "start": "19:00", "end": "23:00" }));
    let rejections = admission.rejections(&hub);
    assert_rejected(
        &rejections,
        "spec.schedule.windows[0].days",
        &["should have at least 1 items"],
    );
}

#[test]
fn a_window_whose_start_equals_its_end_is_refused() {
    let admission = admission();
    let hub = hub_with_window(json!({ "days": ["Mon"], "start": "19:00", "end": "19:00" }));
    let rejections = admission.rejections(&hub);
    assert_rejected(
        &rejections,
        "spec.schedule.windows[0]",
        &[
            "start and end must differ",
            "drop the schedule to stay awake",
        ],
    );
}

#[test]
fn a_schedule_without_windows_is_refused() {
    let admission = admission();
    let mut hub = example_hub();
    hub["spec"]["schedule"]["windows"] = json!([]);
    let rejections = admission.rejections(&hub);
    assert_rejected(
        &rejections,
        "spec.schedule.windows",
        &["should have at least 1 items"],
    );
}

// ---------------------------------------------------------------------------------------------
// Overrides and field hygiene

#[test]
fn suspend_together_with_wake_until_is_refused() {
    let admission = admission();
    let mut hub = example_hub();
    hub["spec"]["suspend"] = json!(true);
    hub["spec"]["wakeUntil"] = json!("2026-11-28T23:00:00Z");
    let rejections = admission.rejections(&hub);
    assert_rejected(
        &rejections,
        "spec",
        &[
            "suspend and wakeUntil cannot be set at once",
            "remove wakeUntil to sleep",
        ],
    );
}

#[test]
fn wake_until_that_is_not_a_timestamp_is_refused() {
    let admission = admission();
    let mut hub = example_hub();
    hub["spec"]["wakeUntil"] = json!("tonight");
    let rejections = admission.rejections(&hub);
    assert_rejected(
        &rejections,
        "spec.wakeUntil",
        &["must be of type date-time"],
    );
}

#[test]
fn overtime_durations_in_hours_minutes_and_seconds_are_admitted() {
    let admission = admission();
    for (grace, limit) in [("10m", "2h"), ("90s", "1h30m"), ("0s", "0s"), ("5s", "12h")] {
        let mut hub = example_hub();
        hub["spec"]["overtime"] = json!({ "grace": grace, "limit": limit });
        assert_admitted(&admission, &hub);
    }
}

#[test]
fn an_overtime_that_is_not_a_duration_is_refused_with_an_example() {
    let admission = admission();
    let mut hub = example_hub();
    hub["spec"]["overtime"] = json!({ "grace": "ten minutes", "limit": "2 h" });
    let rejections = admission.rejections(&hub);
    assert_rejected(
        &rejections,
        "spec.overtime.grace",
        &["grace must be a duration", "such as 90s, 10m or 1h30m"],
    );
    assert_rejected(
        &rejections,
        "spec.overtime.limit",
        &["limit must be a duration", "0s (off)"],
    );
}

#[test]
fn room_allow_lists_of_ipv4_and_ipv6_cidrs_are_admitted() {
    let admission = admission();
    let mut hub = example_hub();
    hub["spec"]["ports"][0]["allow"] =
        json!(["203.0.113.0/24", "198.51.100.7/32", "2001:db8::/32"]);
    assert_admitted(&admission, &hub);
}

#[test]
fn an_allow_entry_that_is_not_a_cidr_is_refused_with_an_example() {
    let admission = admission();
    for entry in ["203.0.113.7", "203.0.113.0/33", "example.com/24", "any"] {
        let mut hub = example_hub();
        hub["spec"]["ports"][0]["allow"] = json!(["10.0.0.0/8", entry]);
        let rejections = admission.rejections(&hub);
        assert_rejected(
            &rejections,
            "spec.ports[0].allow",
            &["each entry of allow must be a CIDR", "203.0.113.7/32"],
        );
    }
}

#[test]
fn a_misspelt_field_is_refused_by_strict_field_validation() {
    let admission = admission();
    let mut hub = example_hub();
    hub["spec"]["wakeUntill"] = json!("2026-11-28T23:00:00Z");
    let rejections = admission.rejections(&hub);
    assert_rejected(&rejections, "", &["unknown field \"spec.wakeUntill\""]);
}

// ---------------------------------------------------------------------------------------------
// The CEL rules themselves

/// Every `x-kubernetes-validations` rule in the schema, with the path of the node it sits on.
fn cel_rules(schema: &Value, path: &str, found: &mut Vec<(String, Value, String)>) {
    let Value::Object(fields) = schema else {
        return;
    };
    if let Some(Value::Array(rules)) = fields.get("x-kubernetes-validations") {
        for rule in rules {
            let expression = rule["rule"].as_str().expect("a rule has a CEL expression");
            found.push((path.to_owned(), schema.clone(), expression.to_owned()));
        }
    }
    if let Some(Value::Object(properties)) = fields.get("properties") {
        for (name, property) in properties {
            cel_rules(property, &format!("{path}.{name}"), found);
        }
    }
    for nested in ["items", "additionalProperties"] {
        if let Some(child) = fields.get(nested) {
            cel_rules(child, &format!("{path}[]"), found);
        }
    }
}

#[test]
fn every_cel_rule_compiles() {
    let admission = SchemaAdmission::from_committed_crd();
    let compiled = kube::core::cel::compile_schema(admission.openapi_schema());
    let errors: Vec<String> = compiled
        .compilation_errors()
        .iter()
        .map(|error| format!("{error:?}"))
        .collect();
    assert!(
        errors.is_empty(),
        "CEL rules that do not compile: {errors:#?}"
    );
    let mut rules = Vec::new();
    cel_rules(admission.openapi_schema(), "", &mut rules);
    assert!(
        rules.len() >= 7,
        "the CRD carries the admission rules: {rules:?}"
    );
}

/// Strings that CEL sees as a timestamp or a duration, which have a fixed size.
fn is_cel_timestamp_or_duration(node: &Value) -> bool {
    matches!(node["format"].as_str(), Some("date-time" | "duration"))
}

/// The Kubernetes CEL cost estimator charges a rule by the largest list or string it may walk;
/// without `maxItems`/`maxLength` it assumes the whole request size and may refuse the CRD. So
/// every list and string a rule touches must be bounded: the rule's own node, and the fields it
/// names (`self.start`, `p.port`, …) on that node or on its list items. Kubernetes bounds an
/// enum string by its longest value, so an `enum` counts as a bound, and sees a `date-time` string
/// as a timestamp of fixed size.
#[test]
fn every_list_and_string_a_cel_rule_touches_is_bounded() {
    let admission = SchemaAdmission::from_committed_crd();
    let mut rules = Vec::new();
    cel_rules(admission.openapi_schema(), "", &mut rules);

    let mut unbounded = Vec::new();
    let mut check = |what: &str, node: &Value, rule: &str| match node["type"].as_str() {
        Some("array") if node.get("maxItems").is_none() => {
            unbounded.push(format!("{what} (a list without maxItems) in `{rule}`"));
        }
        Some("string")
            if node.get("maxLength").is_none()
                && node.get("enum").is_none()
                && !is_cel_timestamp_or_duration(node) =>
        {
            unbounded.push(format!("{what} (a string without maxLength) in `{rule}`"));
        }
        _ => {}
    };
    for (path, node, rule) in &rules {
        check(path, node, rule);
        if let Some(items) = node.get("items") {
            check(&format!("{path}[]"), items, rule);
        }
        // Fields the rule names, on the node itself or on its items.
        for holder in [Some(node), node.get("items")].into_iter().flatten() {
            if let Some(Value::Object(properties)) = holder.get("properties") {
                for (name, property) in properties {
                    if rule.contains(&format!(".{name}")) {
                        check(&format!("{path}.{name}"), property, rule);
                    }
                }
            }
        }
    }
    assert!(
        unbounded.is_empty(),
        "unbounded inputs of CEL rules (add maxItems/maxLength in api/src/hub.rs):\n  {}",
        unbounded.join("\n  ")
    );
}
