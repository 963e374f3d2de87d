//! Label and field selectors of list and watch requests, evaluated against stored objects:
//! equality terms (`key=value`, `key==value`) only, which is what the operator and the sidecar
//! send. A field is named by its path (`metadata.name`, `spec.listed`) and compared as the text
//! of its value, as the API server does for a CRD's selectable fields; the API server's checks of
//! which fields are selectable are not modelled. Other terms are refused with a message, never
//! ignored.

use serde_json::Value;

use super::error::FakeApiServerError;

/// The selectors of one list or watch request: an object must carry every label `key=value`
/// and have every field `path=value`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Selectors {
    labels: Vec<(String, String)>,
    fields: Vec<(String, String)>,
}

impl Selectors {
    pub(crate) fn parse(
        label_selector: Option<&str>,
        field_selector: Option<&str>,
    ) -> Result<Self, FakeApiServerError> {
        Ok(Self {
            labels: terms(label_selector)?,
            fields: terms(field_selector)?,
        })
    }

    pub(crate) fn matches(&self, object: &Value) -> bool {
        let labels = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object);
        let labelled = self.labels.iter().all(|(key, value)| {
            labels
                .and_then(|labels| labels.get(key))
                .and_then(Value::as_str)
                == Some(value.as_str())
        });
        labelled
            && self.fields.iter().all(|(path, value)| {
                let pointer = format!("/{}", path.replace('.', "/"));
                field_text(object.pointer(&pointer)).as_deref() == Some(value.as_str())
            })
    }
}

/// The equality terms of a selector.
fn terms(selector: Option<&str>) -> Result<Vec<(String, String)>, FakeApiServerError> {
    selector
        .into_iter()
        .flat_map(|selector| selector.split(','))
        .map(str::trim)
        .filter(|term| !term.is_empty())
        .map(parse_equality_term)
        .collect()
}

/// A field's value as a selector compares it: strings as they are, booleans and numbers as
/// their text; absent and other values match nothing.
fn field_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) => Some(text.clone()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn parse_equality_term(term: &str) -> Result<(String, String), FakeApiServerError> {
    let equality = term
        .split_once("==")
        .or_else(|| term.split_once('='))
        .filter(|(key, _)| !key.ends_with('!'));
    match equality {
        Some((key, value)) if !key.trim().is_empty() && !value.contains(['(', ')', ' ']) => {
            Ok((key.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(FakeApiServerError::NotModelled(
            "selector terms other than key=value",
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn selects(labels: &str, object: &Value) -> bool {
        Selectors::parse(Some(labels), None)
            .unwrap()
            .matches(object)
    }

    fn selects_fields(fields: &str, object: &Value) -> bool {
        Selectors::parse(None, Some(fields))
            .unwrap()
            .matches(object)
    }

    #[test]
    fn every_equality_term_must_match() {
        let hub = json!({ "metadata": { "name": "hub", "labels": { "app": "midihub", "tier": "edge" } } });
        assert!(selects("app=midihub", &hub));
        assert!(selects("app==midihub, tier=edge", &hub));
        assert!(!selects("app=other", &hub));
        assert!(!selects("app=midihub,missing=x", &hub));
        assert!(selects("", &hub));
    }

    #[test]
    fn terms_other_than_equality_are_refused() {
        for term in [
            "app!=x",
            "app",
            "!app",
            "env in (dev,prod)",
            "env notin (dev)",
        ] {
            assert!(
                Selectors::parse(Some(term), None).is_err(),
                "{term} should be refused"
            );
            assert!(
                Selectors::parse(None, Some(term)).is_err(),
                "{term} should be refused as a field selector"
            );
        }
    }

    #[test]
    fn a_field_selector_compares_the_text_of_the_field() {
        let listed =
            json!({ "metadata": { "name": "jam" }, "spec": { "listed": true, "ports": [] } });
        let unlisted = json!({ "metadata": { "name": "quiet" }, "spec": { "listed": false } });
        let silent = json!({ "metadata": { "name": "old" }, "spec": {} });
        assert!(selects_fields("spec.listed=true", &listed));
        assert!(!selects_fields("spec.listed=true", &unlisted));
        assert!(!selects_fields("spec.listed=true", &silent));
        assert!(selects_fields(
            "metadata.name==jam,spec.listed=true",
            &listed
        ));
        assert!(
            !selects_fields("spec.ports=[]", &listed),
            "a list is no field value"
        );
    }
}
