//! Schema violations in the API server's words, so that `gtm-operator local` and `kubectl apply`
//! tell a user the same thing about the same manifest (the real-API-server suite compares them
//! for every manifest under `crds/tests/invalid/`). The formats are those of
//! `k8s.io/apimachinery`'s field errors as the apiextensions server fills them from an OpenAPI
//! schema violation.

use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

/// The message the API server gives for `error` at `path` (`spec.pools[0].name`).
pub(super) fn schema_violation(path: &str, error: &jsonschema::ValidationError<'_>) -> String {
    let value = error.instance();
    let path = if path.is_empty() { "<root>" } else { path };
    match error.kind() {
        ValidationErrorKind::Pattern { pattern } => invalid(
            path,
            value,
            &format!("{path} in body should match '{pattern}'"),
        ),
        ValidationErrorKind::Enum { options } => {
            let supported: Vec<String> = options
                .as_array()
                .map(|o| o.iter().map(go_value).collect())
                .unwrap_or_default();
            format!(
                "{path}: Unsupported value: {}: supported values: {}",
                go_value(value),
                supported.join(", ")
            )
        }
        ValidationErrorKind::Maximum { limit } => invalid(
            path,
            value,
            &format!("{path} in body should be less than or equal to {limit}"),
        ),
        ValidationErrorKind::Minimum { limit } => invalid(
            path,
            value,
            &format!("{path} in body should be greater than or equal to {limit}"),
        ),
        ValidationErrorKind::ExclusiveMaximum { limit } => invalid(
            path,
            value,
            &format!("{path} in body should be less than {limit}"),
        ),
        ValidationErrorKind::ExclusiveMinimum { limit } => invalid(
            path,
            value,
            &format!("{path} in body should be greater than {limit}"),
        ),
        ValidationErrorKind::MinItems { limit } => invalid(
            path,
            &Value::from(value.as_array().map_or(0, Vec::len)),
            &format!("{path} in body should have at least {limit} items"),
        ),
        ValidationErrorKind::MaxItems { limit } => format!(
            "{path}: Too many: {}: must have at most {limit} items",
            value.as_array().map_or(0, Vec::len)
        ),
        ValidationErrorKind::MinLength { limit } => invalid(
            path,
            value,
            &format!("{path} in body should be at least {limit} chars long"),
        ),
        ValidationErrorKind::MaxLength { limit } => {
            format!("{path}: Too long: may not be more than {limit} bytes")
        }
        ValidationErrorKind::Required { property } => {
            let field = property.as_str().unwrap_or_default();
            let child = if path == "<root>" {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            };
            format!("{child}: Required value")
        }
        ValidationErrorKind::Type { kind } => {
            let expected = format!("{kind:?}").to_ascii_lowercase();
            let expected = expected
                .trim_start_matches("single(")
                .trim_end_matches(')')
                .to_owned();
            invalid(
                path,
                value,
                &format!(
                    "{path} in body must be of type {expected}: {}",
                    go_value(value)
                ),
            )
        }
        _ => format!("{path}: Invalid value: {}: {error}", go_value(value)),
    }
}

/// `field.Invalid`: `<path>: Invalid value: <value>: <detail>`.
fn invalid(path: &str, value: &Value, detail: &str) -> String {
    format!("{path}: Invalid value: {}: {detail}", go_value(value))
}

/// A value as Go's `%#v`/`%q` print it in field errors: strings quoted, numbers bare.
fn go_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".into(),
        Value::Array(_) | Value::Object(_) => "\"object\"".into(),
        other => other.to_string(),
    }
}

/// The API server's message for an object name that is not a DNS-1123 subdomain.
pub(super) fn invalid_object_name(name: &str) -> String {
    format!(
        "metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    )
}

/// The message of strict field validation (`kubectl apply`, `kubectl create`) for a field the
/// schema does not declare.
pub(super) fn unknown_field(path: &str) -> String {
    format!("unknown field {path:?}")
}

/// A CEL rule's violation as the API server reports it: the rule's field path, the value there
/// and the rule's message, in the form of the rule's reason.
pub(super) fn cel_violation(error: &super::cel_rules::RuleViolation, object: &Value) -> String {
    let path = if error.field_path.is_empty() {
        "<root>"
    } else {
        &error.field_path
    };
    let message = &error.message;
    match error.reason.as_deref() {
        Some("FieldValueRequired") => format!("{path}: Required value: {message}"),
        Some("FieldValueForbidden") => format!("{path}: Forbidden: {message}"),
        Some("FieldValueDuplicate") => format!(
            "{path}: Duplicate value: {}",
            value_at(object, &error.field_path).map_or("null".into(), go_value)
        ),
        _ => invalid(
            path,
            value_at(object, &error.field_path).unwrap_or(&Value::Null),
            message,
        ),
    }
}

/// The value at `path` (`spec.pools[0].name`) in `object`.
fn value_at<'v>(object: &'v Value, path: &str) -> Option<&'v Value> {
    let mut current = object;
    for segment in path.split('.').filter(|s| !s.is_empty()) {
        let (field, indices) = segment.split_once('[').unwrap_or((segment, ""));
        if !field.is_empty() {
            current = current.get(field)?;
        }
        for index in indices.split('[').filter(|i| !i.is_empty()) {
            current = current.get(index.trim_end_matches(']').parse::<usize>().ok()?)?;
        }
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_found_by_field_path() {
        let object = json!({"spec": {"pools": [{"name": "a"}, {"name": "b", "ids": [7]}]}});
        assert_eq!(value_at(&object, "spec.pools[1].name"), Some(&json!("b")));
        assert_eq!(value_at(&object, "spec.pools[1].ids[0]"), Some(&json!(7)));
        assert_eq!(value_at(&object, "spec.pools[2].name"), None);
        assert_eq!(value_at(&object, ""), Some(&object));
    }

    #[test]
    fn values_print_as_go_prints_them() {
        assert_eq!(go_value(&json!("MX")), "\"MX\"");
        assert_eq!(go_value(&json!(65)), "65");
        assert_eq!(go_value(&json!({"a": 1})), "\"object\"");
    }
}
