//! `SchemaAdmission`: a test double, a stand-in for the API server's validation of a MidiHub
//! at admission. It judges an object against the committed `crds/midihub.yaml` as closely as a
//! double can, in the API server's order:
//!
//! 1. the OpenAPI structural schema (types, ranges, lengths, patterns, enums, required fields),
//!    checked with the `jsonschema` crate after translating the OpenAPI dialect (see
//!    [`to_json_schema`]);
//! 2. the CEL `x-kubernetes-validations` rules, evaluated with kube's client-side CEL evaluator
//!    (`kube::core::cel::Validator`), which applies schema defaults first as the API server does.
//!
//! Structural errors are reported with Kubernetes' field and words for the kinds of error this
//! CRD can give (see [`structural_rejection`]); the control-plane tier checks every case against
//! a real API server. What it does not do: metadata validation, pruning, ratcheting of updates,
//! or the CEL cost limits (see the bounds test in `admission.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt;
use std::path::{Path, PathBuf};

use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::LocationSegment;
use kube::core::cel::Validator as CelValidator;
use serde_json::{Map, Value, json};

/// The repository root, from the api crate's manifest directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the api crate lives inside the repository")
        .to_path_buf()
}

/// Reads a YAML file of the repository (a path relative to its root) as JSON.
pub fn load_yaml(relative: &str) -> Value {
    let path = repo_root().join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    serde_saphyr::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not valid YAML: {error}", path.display()))
}

/// One reason the API server would refuse an object: the field (as Kubernetes writes it,
/// e.g. `spec.ports[0].port`) and the message the user sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub field: String,
    pub message: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A stand-in for the API server's validation of MidiHub objects at admission.
pub struct SchemaAdmission {
    openapi_schema: Value,
    structural: jsonschema::Validator,
    cel: CelValidator,
}

impl SchemaAdmission {
    /// Judges objects by the schema of the first version in the committed `crds/midihub.yaml`.
    pub fn from_committed_crd() -> Self {
        let crd = load_yaml("crds/midihub.yaml");
        let openapi_schema = crd
            .pointer("/spec/versions/0/schema/openAPIV3Schema")
            .expect("crds/midihub.yaml has spec.versions[0].schema.openAPIV3Schema")
            .clone();
        Self::from_openapi_schema(openapi_schema)
    }

    /// Judges objects by the given `openAPIV3Schema`.
    pub fn from_openapi_schema(openapi_schema: Value) -> Self {
        let structural = jsonschema::options()
            // OpenAPI 3.0's schema object is an extended subset of JSON Schema draft 4/5.
            .with_draft(jsonschema::Draft::Draft4)
            // The API server checks the formats it knows (date-time and friends) and ignores
            // the others (int32, double).
            .should_validate_formats(true)
            .should_ignore_unknown_formats(true)
            .build(&to_json_schema(&openapi_schema, true))
            .expect("the CRD's structural schema compiles as JSON Schema");
        Self {
            openapi_schema,
            structural,
            cel: CelValidator::new(),
        }
    }

    /// The `openAPIV3Schema` this admission judges by, as written in the CRD.
    pub fn openapi_schema(&self) -> &Value {
        &self.openapi_schema
    }

    /// Admits the object, or returns every reason it would be refused.
    pub fn admit(&self, object: &Value) -> Result<(), Vec<Rejection>> {
        let mut rejections: Vec<Rejection> = self
            .structural
            .iter_errors(object)
            .map(|error| structural_rejection(&error))
            .collect();
        if let Err(errors) = self.cel.validate(&self.openapi_schema, object, None) {
            rejections.extend(errors.into_iter().map(|error| Rejection {
                field: error.field_path.clone(),
                message: error.message.clone(),
            }));
        }
        if rejections.is_empty() {
            Ok(())
        } else {
            Err(rejections)
        }
    }
}

/// Translates an OpenAPI v3 (Kubernetes structural) schema into plain JSON Schema:
/// - `nullable: true` becomes a type union with `"null"` (and admits `null` in an `enum`);
/// - `x-kubernetes-*` extensions are dropped (the CEL rules among them are judged separately);
/// - objects with fixed `properties` refuse unknown fields, as `kubectl`'s default strict
///   field validation does, except at the root, where the API server itself handles
///   `apiVersion`, `kind` and `metadata`.
fn to_json_schema(schema: &Value, is_root: bool) -> Value {
    let Value::Object(fields) = schema else {
        return schema.clone();
    };
    let mut translated = Map::new();
    for (key, value) in fields {
        if key.starts_with("x-kubernetes-") || key == "nullable" {
            continue;
        }
        let value = match key.as_str() {
            "properties" => Value::Object(
                value
                    .as_object()
                    .expect("properties is a map")
                    .iter()
                    .map(|(name, property)| (name.clone(), to_json_schema(property, false)))
                    .collect(),
            ),
            "items" | "additionalProperties" | "not" => to_json_schema(value, false),
            "allOf" | "anyOf" | "oneOf" => Value::Array(
                value
                    .as_array()
                    .expect("a list of schemas")
                    .iter()
                    .map(|schema| to_json_schema(schema, false))
                    .collect(),
            ),
            _ => value.clone(),
        };
        translated.insert(key.clone(), value);
    }
    if fields.get("nullable") == Some(&Value::Bool(true)) {
        if let Some(Value::String(single)) = translated.get("type") {
            let union = json!([single, "null"]);
            translated.insert("type".into(), union);
        }
        if let Some(Value::Array(allowed)) = translated.get_mut("enum") {
            allowed.push(Value::Null);
        }
    }
    let preserves_unknown =
        fields.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
    if !is_root
        && !preserves_unknown
        && fields.contains_key("properties")
        && !fields.contains_key("additionalProperties")
    {
        translated.insert("additionalProperties".into(), Value::Bool(false));
    }
    Value::Object(translated)
}

/// A structural (OpenAPI) error as the API server reports it: the same field and the same
/// words (checked against a real kube-apiserver 1.37 in the control-plane tier). `jsonschema`
/// names a missing field at its parent and an unknown one as "unexpected"; Kubernetes names
/// the missing field itself and refuses unknown fields while decoding, at the object's root.
fn structural_rejection(error: &jsonschema::ValidationError<'_>) -> Rejection {
    let field = kubernetes_field_path(error.instance_path().iter());
    let value = error.instance();
    let child = |name: &str| {
        if field.is_empty() {
            name.to_string()
        } else {
            format!("{field}.{name}")
        }
    };
    let (field, message) = match error.kind() {
        ValidationErrorKind::Enum { options } => {
            let allowed: Vec<String> = options
                .as_array()
                .map(|values| values.iter().map(Value::to_string).collect())
                .unwrap_or_default();
            let message = format!(
                "Unsupported value: {value}: supported values: {}",
                allowed.join(", ")
            );
            (field, message)
        }
        ValidationErrorKind::Required { property } => (
            child(property.as_str().unwrap_or_default()),
            "Required value".to_string(),
        ),
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let names: Vec<String> = unexpected
                .iter()
                .map(|name| format!("unknown field \"{}\"", child(name)))
                .collect();
            (
                String::new(),
                format!("strict decoding error: {}", names.join(", ")),
            )
        }
        ValidationErrorKind::Minimum { limit } => {
            let message = format!(
                "Invalid value: {value}: {field} in body should be greater than or equal to {limit}"
            );
            (field, message)
        }
        ValidationErrorKind::Maximum { limit } => {
            let message = format!(
                "Invalid value: {value}: {field} in body should be less than or equal to {limit}"
            );
            (field, message)
        }
        ValidationErrorKind::MinItems { limit } => {
            let count = value.as_array().map_or(0, Vec::len);
            let message = format!(
                "Invalid value: {count}: {field} in body should have at least {limit} items"
            );
            (field, message)
        }
        ValidationErrorKind::MaxLength { limit } => (
            field,
            format!("Too long: may not be more than {limit} bytes"),
        ),
        ValidationErrorKind::Format { format } => {
            let message = format!(
                "Invalid value: {value}: {field} in body must be of type {format}: {value}"
            );
            (field, message)
        }
        _ => (field, error.to_string()),
    };
    Rejection { field, message }
}

/// `/spec/ports/0/port` as Kubernetes writes it: `spec.ports[0].port`.
fn kubernetes_field_path<'a>(segments: impl Iterator<Item = LocationSegment<'a>>) -> String {
    let mut path = String::new();
    for segment in segments {
        match segment {
            LocationSegment::Index(index) => path.push_str(&format!("[{index}]")),
            LocationSegment::Property(name) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&name);
            }
        }
    }
    path
}
