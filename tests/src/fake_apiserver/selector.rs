//! Label and field selectors of list and watch requests, evaluated against stored objects.

use serde_json::Value;

use super::error::FakeApiServerError;

/// One term of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
enum LabelTerm {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    DoesNotExist(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// One term of a field selector: a dotted path into the object compared with a value.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FieldTerm {
    path: String,
    value: String,
    equal: bool,
}

/// The selectors of one list or watch request; an object must match every term.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Selectors {
    labels: Vec<LabelTerm>,
    fields: Vec<FieldTerm>,
}

impl Selectors {
    pub(crate) fn parse(
        label_selector: Option<&str>,
        field_selector: Option<&str>,
    ) -> Result<Self, FakeApiServerError> {
        let labels = match label_selector {
            Some(selector) => split_terms(selector)
                .into_iter()
                .map(parse_label_term)
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        let fields = match field_selector {
            Some(selector) => split_terms(selector)
                .into_iter()
                .map(parse_field_term)
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok(Self { labels, fields })
    }

    pub(crate) fn matches(&self, object: &Value) -> bool {
        let labels = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object);
        let label = |key: &str| {
            labels
                .and_then(|labels| labels.get(key))
                .and_then(Value::as_str)
        };
        let labels_match = self.labels.iter().all(|term| match term {
            LabelTerm::Equals(key, value) => label(key) == Some(value.as_str()),
            LabelTerm::NotEquals(key, value) => label(key) != Some(value.as_str()),
            LabelTerm::Exists(key) => label(key).is_some(),
            LabelTerm::DoesNotExist(key) => label(key).is_none(),
            LabelTerm::In(key, values) => {
                label(key).is_some_and(|found| values.iter().any(|v| v == found))
            }
            LabelTerm::NotIn(key, values) => {
                !label(key).is_some_and(|found| values.iter().any(|v| v == found))
            }
        });
        labels_match
            && self
                .fields
                .iter()
                .all(|term| (field_value(object, &term.path) == term.value) == term.equal)
    }
}

/// Splits on commas that are not inside the parentheses of an `in (a,b)` set.
fn split_terms(selector: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut depth = 0_i32;
    let mut start = 0;
    for (index, character) in selector.char_indices() {
        match character {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&selector[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    terms.push(&selector[start..]);
    terms
        .into_iter()
        .map(str::trim)
        .filter(|term| !term.is_empty())
        .collect()
}

fn parse_label_term(term: &str) -> Result<LabelTerm, FakeApiServerError> {
    let invalid =
        || FakeApiServerError::BadRequest(format!("unable to parse label selector term {term:?}"));
    if let Some((key, value)) = term.split_once("!=") {
        return Ok(LabelTerm::NotEquals(
            key.trim().to_owned(),
            value.trim().to_owned(),
        ));
    }
    if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Ok(LabelTerm::Equals(
            key.trim().to_owned(),
            value.trim().to_owned(),
        ));
    }
    if let Some(key) = term.strip_prefix('!') {
        return Ok(LabelTerm::DoesNotExist(key.trim().to_owned()));
    }
    if let Some(open) = term.find('(') {
        let Some(values) = term[open + 1..].strip_suffix(')') else {
            return Err(invalid());
        };
        let values = values
            .split(',')
            .map(|value| value.trim().to_owned())
            .collect();
        let mut words = term[..open].split_whitespace();
        return match (words.next(), words.next(), words.next()) {
            (Some(key), Some("in"), None) => Ok(LabelTerm::In(key.to_owned(), values)),
            (Some(key), Some("notin"), None) => Ok(LabelTerm::NotIn(key.to_owned(), values)),
            _ => Err(invalid()),
        };
    }
    if term.contains(char::is_whitespace) {
        return Err(invalid());
    }
    Ok(LabelTerm::Exists(term.to_owned()))
}

fn parse_field_term(term: &str) -> Result<FieldTerm, FakeApiServerError> {
    let (path, value, equal) = if let Some((path, value)) = term.split_once("!=") {
        (path, value, false)
    } else if let Some((path, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
        (path, value, true)
    } else {
        return Err(FakeApiServerError::BadRequest(format!(
            "unable to parse field selector term {term:?}: expected field=value or field!=value"
        )));
    };
    Ok(FieldTerm {
        path: path.trim().to_owned(),
        value: value.trim().to_owned(),
        equal,
    })
}

/// The value of a dotted field path as a field selector sees it; a missing field is empty,
/// so that `spec.nodeName=` selects unscheduled Pods as it does in Kubernetes.
fn field_value(object: &Value, path: &str) -> String {
    let found = path
        .split('.')
        .try_fold(object, |value, key| value.get(key));
    match found {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(name: &str, labels: Value) -> Value {
        json!({ "metadata": { "name": name, "labels": labels }, "spec": { "nodeName": "worker-1" } })
    }

    fn selects(labels: &str, fields: Option<&str>, object: &Value) -> bool {
        Selectors::parse(Some(labels), fields)
            .unwrap()
            .matches(object)
    }

    #[test]
    fn equality_inequality_and_existence_terms() {
        let hub = pod("hub", json!({ "app": "midihub", "tier": "edge" }));
        assert!(selects("app=midihub", None, &hub));
        assert!(selects("app==midihub,tier", None, &hub));
        assert!(!selects("app=other", None, &hub));
        assert!(selects("app!=other", None, &hub));
        assert!(!selects("tier!=edge", None, &hub));
        assert!(selects("missing!=x", None, &hub));
        assert!(!selects("missing", None, &hub));
        assert!(selects("!missing", None, &hub));
        assert!(!selects("app=midihub,missing", None, &hub));
    }

    #[test]
    fn set_terms() {
        let hub = pod("hub", json!({ "env": "dev" }));
        assert!(selects("env in (dev, prod)", None, &hub));
        assert!(!selects("env notin (dev,prod)", None, &hub));
        assert!(selects("env in (dev,prod),!x", None, &hub));
    }

    #[test]
    fn field_selectors_read_dotted_paths() {
        let hub = pod("hub", json!({}));
        assert!(selects("", Some("metadata.name=hub"), &hub));
        assert!(!selects("", Some("metadata.name=other"), &hub));
        assert!(selects(
            "",
            Some("metadata.name!=other,spec.nodeName=worker-1"),
            &hub
        ));
        assert!(selects("", Some("status.phase="), &hub));
    }

    #[test]
    fn malformed_terms_are_rejected() {
        assert!(Selectors::parse(Some("env in dev"), None).is_err());
        assert!(Selectors::parse(None, Some("metadata.name")).is_err());
    }
}
