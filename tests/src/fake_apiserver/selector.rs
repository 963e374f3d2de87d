//! Label selectors of list and watch requests, evaluated against stored objects: equality terms
//! (`key=value`, `key==value`) only, which is what the operator and the sidecar send. Other terms
//! and field selectors are refused with a message, never ignored.

use serde_json::Value;

use super::error::FakeApiServerError;

/// The label selector of one list or watch request: an object must carry every `key=value`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Selectors {
    labels: Vec<(String, String)>,
}

impl Selectors {
    pub(crate) fn parse(label_selector: Option<&str>) -> Result<Self, FakeApiServerError> {
        let labels = label_selector
            .into_iter()
            .flat_map(|selector| selector.split(','))
            .map(str::trim)
            .filter(|term| !term.is_empty())
            .map(parse_label_term)
            .collect::<Result<_, _>>()?;
        Ok(Self { labels })
    }

    pub(crate) fn matches(&self, object: &Value) -> bool {
        let labels = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object);
        self.labels.iter().all(|(key, value)| {
            labels
                .and_then(|labels| labels.get(key))
                .and_then(Value::as_str)
                == Some(value.as_str())
        })
    }
}

fn parse_label_term(term: &str) -> Result<(String, String), FakeApiServerError> {
    let equality = term
        .split_once("==")
        .or_else(|| term.split_once('='))
        .filter(|(key, _)| !key.ends_with('!'));
    match equality {
        Some((key, value)) if !key.trim().is_empty() && !value.contains(['(', ')', ' ']) => {
            Ok((key.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(FakeApiServerError::NotModelled(
            "label selector terms other than key=value",
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn selects(labels: &str, object: &Value) -> bool {
        Selectors::parse(Some(labels)).unwrap().matches(object)
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
                Selectors::parse(Some(term)).is_err(),
                "{term} should be refused"
            );
        }
    }
}
