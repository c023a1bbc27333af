//! Client-side validation of manifests against the generated CRD schemas, the way the API server
//! checks them on `kubectl apply`: schema defaults applied first, then the OpenAPI schema
//! (types, enums, ranges, patterns, list limits, required fields), unknown fields (as kubectl's
//! strict field validation does), the object name, and the CEL rules (`x-kubernetes-validations`).
//!
//! Local mode runs every manifest it reads through this, so an invalid manifest is rejected with
//! the same kind of message a cluster would give, and tests check every example with it.

use std::fmt;

use kube::core::cel::{CompiledSchema, SchemaFormat, apply_defaults, compile_schema};
use serde_json::Value;

use crate::{API_VERSION, crds};

mod cel_rules;
mod cel_value;
mod messages;

use cel_rules::CelRules;

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
    cel: CelRules,
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
                let mut cel = compile_schema(&schema);
                assert!(!cel.has_errors(), "the CEL rules of {kind} compile");
                assert!(
                    !cel_rules::has_typed_strings_under_rules(&cel, false),
                    "no CEL rule of {kind} sees a date-time, duration or byte field"
                );
                drop_idle_subtrees(&mut cel);
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
            cel: CelRules::new(),
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
        unknown_fields(
            &ks.schema,
            &defaulted,
            &mut String::new(),
            true,
            &mut causes,
        );
        causes.extend(ks.openapi.iter_errors(&defaulted).map(|e| {
            messages::schema_violation(&json_pointer_to_path(&e.instance_path().to_string()), &e)
        }));
        // CEL rules only run on objects that pass the schema, as in the API server.
        if causes.is_empty() {
            causes.extend(
                self.cel
                    .check(&ks.cel, &defaulted)
                    .iter()
                    .map(|v| messages::cel_violation(v, &defaulted)),
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

/// Removes the subtrees of a compiled schema where the CEL walk has nothing to do: no rule at
/// or below them, and nothing that makes their CEL value differ from the plain conversion of
/// their JSON (a `format`, a map's unescaped keys, an embedded resource). The walk
/// ([`CelRules`]) then visits only the nodes that lead to a rule (kube-cel's own walk converted
/// every node's value to CEL, rule or no rule: for a pool of 10 addresses about 60 nodes, most of
/// them leaves). Rules, messages and field paths stay as they were; the defaults these subtrees
/// carry are applied before (`apply_defaults` over the full schema). Returns whether `node`
/// itself is such a subtree.
fn drop_idle_subtrees(node: &mut CompiledSchema) -> bool {
    if node.items.as_deref_mut().is_some_and(drop_idle_subtrees) {
        node.items = None;
    }
    if node
        .additional_properties
        .as_deref_mut()
        .is_some_and(drop_idle_subtrees)
    {
        node.additional_properties = None;
    }
    if node.additional_properties.is_none() {
        node.properties
            .retain(|_, child| !drop_idle_subtrees(child));
    } else {
        // A declared property stays declared next to an additionalProperties schema: without it
        // the walk and the conversion would take it for a map entry of that schema.
        for child in node.properties.values_mut() {
            drop_idle_subtrees(child);
        }
    }
    for branches in [&mut node.all_of, &mut node.one_of, &mut node.any_of] {
        branches.retain_mut(|branch| !drop_idle_subtrees(branch));
    }
    node.validations.is_empty()
        && node.format == SchemaFormat::None
        && !node.is_map
        && !node.embedded_resource
        && node.properties.is_empty()
        && node.items.is_none()
        && node.additional_properties.is_none()
        && node.all_of.is_empty()
        && node.one_of.is_empty()
        && node.any_of.is_empty()
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

/// Reports fields the schema does not define, like `kubectl apply --validate=strict`. `path` is
/// the field path of `value` (`spec.pools[0]`); it is extended in place while descending and
/// restored on the way back, so that a valid object costs no path strings.
fn unknown_fields(
    schema: &Value,
    value: &Value,
    path: &mut String,
    root: bool,
    out: &mut Vec<String>,
) {
    use std::fmt::Write;
    let parent = path.len();
    match value {
        Value::Object(map) => {
            let Some(props) = schema.get("properties").and_then(Value::as_object) else {
                return;
            };
            for (key, v) in map {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                match props.get(key) {
                    Some(s) => unknown_fields(s, v, path, false, out),
                    None if root && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") => {}
                    None => out.push(messages::unknown_field(path)),
                }
                path.truncate(parent);
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    write!(path, "[{i}]").expect("writing to a String cannot fail");
                    unknown_fields(s, v, path, false, out);
                    path.truncate(parent);
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
