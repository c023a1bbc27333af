//! Client-side validation of manifests against the generated CRD schemas, the way the API server
//! checks them on `kubectl apply`: schema defaults applied first, then the OpenAPI schema
//! (types, enums, ranges, patterns, list limits, required fields), unknown fields (as kubectl's
//! strict field validation does), the object name, and the CEL rules (`x-kubernetes-validations`).
//!
//! Local mode runs every manifest it reads through this, so an invalid manifest is rejected with
//! the same kind of message a cluster would give, and tests check every example with it.

use std::fmt;

use kube::core::cel::{CompiledSchema, Validator as CelValidator, apply_defaults, compile_schema};
use serde_json::Value;

use crate::{API_VERSION, crds};

mod messages;

/// The kinds of the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `GtmAccessDomain`.
    GtmAccessDomain,
    /// `AddressPool`.
    AddressPool,
    /// `HealthCheckTemplate`.
    HealthCheckTemplate,
    /// `GtmZone`.
    GtmZone,
}

impl Kind {
    /// All kinds.
    pub const ALL: [Kind; 4] = [
        Self::GtmAccessDomain,
        Self::AddressPool,
        Self::HealthCheckTemplate,
        Self::GtmZone,
    ];

    /// The kind's name as in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GtmAccessDomain => "GtmAccessDomain",
            Self::AddressPool => "AddressPool",
            Self::HealthCheckTemplate => "HealthCheckTemplate",
            Self::GtmZone => "GtmZone",
        }
    }

    fn from_name(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A manifest that passed validation, with schema defaults applied.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidManifest {
    /// Its kind.
    pub kind: Kind,
    /// The object with defaults filled in, ready to deserialize into the kind's type.
    pub object: Value,
}

/// Why a manifest was rejected.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ManifestError {
    /// Not an object with `apiVersion` and `kind`.
    #[error("not a Kubernetes object: {0}")]
    NotAnObject(String),
    /// An object of another API.
    #[error("{api_version} {kind} is not a kube-gtm kind")]
    ForeignKind {
        /// Its `apiVersion`.
        api_version: String,
        /// Its `kind`.
        kind: String,
    },
    /// A kube-gtm object that breaks its schema.
    #[error("{kind} {name:?} is invalid: {}", causes.join("; "))]
    Invalid {
        /// Its kind.
        kind: Kind,
        /// Its `metadata.name`, or empty.
        name: String,
        /// One line per violation, each starting with the field path.
        causes: Vec<String>,
    },
}

struct KindSchema {
    kind: Kind,
    schema: Value,
    openapi: jsonschema::Validator,
    cel: CompiledSchema,
}

/// Validates manifests of the kinds against the schemas generated from the Rust types.
pub struct ManifestValidator {
    kinds: Vec<KindSchema>,
    cel: CelValidator,
}

impl Default for ManifestValidator {
    fn default() -> Self {
        Self::new()
    }
}

impl ManifestValidator {
    /// Compiles the schemas of the current CRDs.
    pub fn new() -> Self {
        let kinds = crds()
            .into_iter()
            .map(|crd| {
                let kind = Kind::from_name(&crd.spec.names.kind).expect("our CRDs are our kinds");
                let schema = serde_json::to_value(
                    crd.spec.versions[0]
                        .schema
                        .as_ref()
                        .and_then(|s| s.open_api_v3_schema.as_ref())
                        .expect("generated CRDs have a schema"),
                )
                .expect("schemas serialize");
                let openapi = jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft4)
                    .should_validate_formats(false)
                    .build(&schema)
                    .expect("generated schemas are valid JSON schemas");
                let cel = compile_schema(&schema);
                KindSchema {
                    kind,
                    schema,
                    openapi,
                    cel,
                }
            })
            .collect();
        Self {
            kinds,
            cel: CelValidator::new(),
        }
    }

    /// Validates one object; returns it with defaults applied.
    pub fn validate(&self, object: &Value) -> Result<ValidManifest, ManifestError> {
        let Some(map) = object.as_object() else {
            return Err(ManifestError::NotAnObject("expected a mapping".into()));
        };
        let field = |f: &str| map.get(f).and_then(Value::as_str).unwrap_or_default();
        let (api_version, kind_name) = (field("apiVersion"), field("kind"));
        if api_version.is_empty() || kind_name.is_empty() {
            return Err(ManifestError::NotAnObject(
                "apiVersion and kind are required".into(),
            ));
        }
        let foreign = || ManifestError::ForeignKind {
            api_version: api_version.into(),
            kind: kind_name.into(),
        };
        if api_version != API_VERSION {
            return Err(foreign());
        }
        let kind = Kind::from_name(kind_name).ok_or_else(foreign)?;
        let ks = self
            .kinds
            .iter()
            .find(|k| k.kind == kind)
            .expect("every kind has a schema");
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();

        let defaulted = apply_defaults(&ks.schema, object);
        let mut causes = metadata_errors(object);
        unknown_fields(&ks.schema, &defaulted, "", true, &mut causes);
        causes.extend(ks.openapi.iter_errors(&defaulted).map(|e| {
            messages::schema_violation(&json_pointer_to_path(&e.instance_path().to_string()), &e)
        }));
        // CEL rules only run on objects that pass the schema, as in the API server.
        if causes.is_empty()
            && let Err(errors) = self.cel.validate_compiled(&ks.cel, &defaulted, None)
        {
            causes.extend(
                errors
                    .iter()
                    .map(|e| messages::cel_violation(e, &defaulted)),
            );
        }
        if causes.is_empty() {
            Ok(ValidManifest {
                kind,
                object: defaulted,
            })
        } else {
            Err(ManifestError::Invalid { kind, name, causes })
        }
    }
}

/// Splits a multi-document YAML stream into objects, skipping empty documents.
pub fn parse_yaml_stream(text: &str) -> Result<Vec<Value>, serde_yaml_ng::Error> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let value = Value::deserialize(doc)?;
        if !value.is_null() {
            out.push(value);
        }
    }
    Ok(out)
}

/// `metadata.name` must be present and a DNS-1123 subdomain, as the API server requires.
fn metadata_errors(object: &Value) -> Vec<String> {
    match object.pointer("/metadata/name").and_then(Value::as_str) {
        None | Some("") => vec!["metadata.name: Required value".into()],
        Some(name) if !is_dns1123_subdomain(name) => vec![messages::invalid_object_name(name)],
        Some(_) => vec![],
    }
}

/// Lower-case alphanumerics, `-` and `.`, starting and ending alphanumeric, at most 253.
pub fn is_dns1123_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_label_shaped)
}

/// An RFC 1123 label: 1 to 63 lower-case alphanumerics and `-`, starting and ending alphanumeric
/// (a label value, a Namespace name, a DNS label).
pub fn is_dns1123_label(name: &str) -> bool {
    name.len() <= 63 && is_label_shaped(name)
}

/// Not empty, lower-case alphanumerics and `-`, starting and ending alphanumeric.
fn is_label_shaped(label: &str) -> bool {
    !label.is_empty()
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// Reports fields the schema does not define, like `kubectl apply --validate=strict`.
fn unknown_fields(schema: &Value, value: &Value, path: &str, root: bool, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let Some(props) = schema.get("properties").and_then(Value::as_object) else {
                return;
            };
            for (key, v) in map {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match props.get(key) {
                    Some(s) => unknown_fields(s, v, &child, false, out),
                    None if root && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") => {}
                    None => out.push(messages::unknown_field(&child)),
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    unknown_fields(s, v, &format!("{path}[{i}]"), false, out);
                }
            }
        }
        _ => {}
    }
}

/// `/spec/pools/0/name` to `spec.pools[0].name`.
fn json_pointer_to_path(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').skip(1) {
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg.replace("~1", "/").replace("~0", "~"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
