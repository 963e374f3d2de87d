//! One condition of a MidiHub's status, found by its type: typed, as a client reads the status,
//! or as JSON, as the fake API server stores it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use midihub_api::MidiHubStatus;
use serde_json::Value;

/// The condition of type `type_` in `status`, if it has one.
pub fn condition<'a>(status: &'a MidiHubStatus, type_: &str) -> Option<&'a Condition> {
    status
        .conditions
        .iter()
        .find(|condition| condition.type_ == type_)
}

/// Whether `status` has a condition of type `type_`.
pub fn has_condition(status: &MidiHubStatus, type_: &str) -> bool {
    condition(status, type_).is_some()
}

/// The condition of type `type_` in the status of `hub`, a MidiHub as JSON; `Null` when it has
/// none, so that a test can compare its fields directly.
pub fn json_condition<'a>(hub: &'a Value, type_: &str) -> &'a Value {
    hub["status"]["conditions"]
        .as_array()
        .and_then(|conditions| {
            conditions
                .iter()
                .find(|condition| condition["type"] == type_)
        })
        .unwrap_or(&Value::Null)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_condition_is_found_by_its_type_and_a_missing_one_is_none() {
        let hub = json!({ "status": { "conditions": [
            { "type": "Awake", "status": "True", "reason": "InWindow", "message": "",
              "lastTransitionTime": "2026-11-24T19:00:00Z" },
            { "type": "Ready", "status": "False", "reason": "Starting", "message": "",
              "lastTransitionTime": "2026-11-24T19:00:00Z" },
        ] } });
        assert_eq!(json_condition(&hub, "Ready")["reason"], "Starting");
        assert_eq!(json_condition(&hub, "Wiring"), &Value::Null);
        assert_eq!(json_condition(&json!({}), "Ready"), &Value::Null);

        let status: MidiHubStatus = serde_json::from_value(hub["status"].clone()).unwrap();
        assert_eq!(
            condition(&status, "Awake").map(|c| c.reason.as_str()),
            Some("InWindow")
        );
        assert!(has_condition(&status, "Ready"));
        assert!(!has_condition(&status, "Wiring"));
    }
}
