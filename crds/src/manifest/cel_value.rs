//! A JSON value as a CEL value, the way kube-cel (and the API server) binds it to `self`:
//! numbers as `int` (else `uint`, else `double`), declared field names escaped (`__dash__`,
//! reserved words as `__in__`...), map keys (`additionalProperties`) as they are, and an embedded
//! resource with `apiVersion`, `kind` and `metadata` filled in. Strings stay strings: no rule of
//! ours sees a `date-time`, `duration` or `byte` field (`ManifestValidator::new` checks it).

use std::collections::HashMap;
use std::sync::Arc;

use kube::core::cel::CompiledSchema;
use kube::core::cel::cel::Value as Cel;
use kube::core::cel::cel::objects::{Key, Map};
use serde_json::Value;

/// `value` as CEL, `node` being its compiled schema.
pub(super) fn to_cel(value: &Value, node: &CompiledSchema) -> Cel {
    match value {
        Value::Array(items) => Cel::List(Arc::new(
            items
                .iter()
                .map(|item| match &node.items {
                    Some(schema) => to_cel(item, schema),
                    None => schemaless(item),
                })
                .collect(),
        )),
        Value::Object(fields) => {
            let mut map = HashMap::with_capacity(fields.len());
            for (name, field) in fields {
                let converted = match node
                    .properties
                    .get(name)
                    .or(node.additional_properties.as_deref())
                {
                    Some(schema) => to_cel(field, schema),
                    None => schemaless(field),
                };
                let key = if node.is_map {
                    name.clone()
                } else {
                    escape_field_name(name)
                };
                map.insert(Key::String(Arc::new(key)), converted);
            }
            if node.embedded_resource {
                for field in ["apiVersion", "kind"] {
                    map.entry(Key::String(Arc::new(field.into())))
                        .or_insert_with(|| Cel::String(Arc::default()));
                }
                map.entry(Key::String(Arc::new("metadata".into())))
                    .or_insert_with(|| {
                        Cel::Map(Map {
                            map: Arc::default(),
                        })
                    });
            }
            Cel::Map(Map { map: Arc::new(map) })
        }
        scalar => schemaless(scalar),
    }
}

/// A value below the schema's reach (or a scalar): declared-field escaping throughout.
fn schemaless(value: &Value) -> Cel {
    match value {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Cel::Int(i),
            (None, Some(u)) => Cel::UInt(u),
            (None, None) => Cel::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Cel::String(Arc::new(s.clone())),
        Value::Array(items) => Cel::List(Arc::new(items.iter().map(schemaless).collect())),
        Value::Object(fields) => Cel::Map(Map {
            map: Arc::new(
                fields
                    .iter()
                    .map(|(name, field)| {
                        (
                            Key::String(Arc::new(escape_field_name(name))),
                            schemaless(field),
                        )
                    })
                    .collect(),
            ),
        }),
    }
}

/// CEL reserved words, which a field name escapes as `__word__`.
const CEL_RESERVED_WORDS: [&str; 21] = [
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// A declared field name as CEL sees it: a reserved word as `__word__`, else `_`, `.`, `-`
/// and `/` as `__`, `__dot__`, `__dash__` and `__slash__`.
fn escape_field_name(name: &str) -> String {
    if CEL_RESERVED_WORDS.contains(&name) {
        return format!("__{name}__");
    }
    let mut escaped = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '_' => escaped.push_str("__"),
            '.' => escaped.push_str("__dot__"),
            '-' => escaped.push_str("__dash__"),
            '/' => escaped.push_str("__slash__"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_escape_as_kubernetes_cel_does() {
        assert_eq!(escape_field_name("namespace"), "__namespace__");
        assert_eq!(escape_field_name("default"), "default");
        assert_eq!(
            escape_field_name("a_b.c-d/e"),
            "a__b__dot__c__dash__d__slash__e"
        );
        assert_eq!(escape_field_name("minAvailable"), "minAvailable");
    }
}
