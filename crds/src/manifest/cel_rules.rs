//! The CEL rules (`x-kubernetes-validations`) of a compiled schema, evaluated over an object the
//! way kube-cel's `Validator::validate_compiled` evaluates them (the same rules, variables,
//! results and messages), at a fraction of its cost:
//!
//! - `self` is converted and bound only at the nodes that have rules; kube-cel converted the
//!   value of every node it walked (the whole object at the root, the whole spec below it), and
//!   binding a value copies it once more inside the `cel` crate.
//! - `matches()` looks its pattern up in a cache of compiled regular expressions; the `cel`
//!   crate's own `matches` compiles the expression on every call (tens of microseconds for the
//!   DNS-name patterns, three calls per access domain).
//! - Field paths are built only for a failed rule, and defaults are not applied a second time
//!   (the caller validates the defaulted object).
//!
//! Objects are validated as on create (no old object), so transition rules are skipped, as
//! kube-cel skips them without an old object. Properties are walked in the object's key order,
//! so several causes always come in the same order (kube-cel's walk followed a `HashMap`).

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::{Arc, RwLock};

use kube::core::cel::cel::extractors::This;
use kube::core::cel::cel::{Context, ExecutionError, FunctionContext};
use kube::core::cel::{CompilationResult, CompiledSchema, KubeCelExt, SchemaFormat};
use regex::Regex;
use serde_json::Value;

use super::cel_value::to_cel;

/// A rule that an object breaks.
#[derive(Debug)]
pub(super) struct RuleViolation {
    /// The field path (`spec.pools[0]`), empty for the root.
    pub(super) field_path: String,
    /// The rule's message.
    pub(super) message: String,
    /// The rule's `reason`, for a rule that evaluated to false.
    pub(super) reason: Option<String>,
}

/// Evaluates the CEL rules of compiled schemas.
pub(super) struct CelRules {
    context: Context<'static>,
}

impl CelRules {
    /// A context with the `cel` crate's functions, all of Kubernetes' CEL libraries (as
    /// kube-cel's `Validator` has them), and `matches` with a cache of compiled patterns.
    pub(super) fn new() -> Self {
        let mut context = Context::default();
        context.register_all();
        let patterns: RwLock<HashMap<String, Regex>> = RwLock::default();
        context.add_function(
            "matches",
            move |ftx: &FunctionContext<'_, '_>,
                  This(text): This<Arc<String>>,
                  pattern: Arc<String>|
                  -> Result<bool, ExecutionError> {
                let cached = patterns
                    .read()
                    .expect("no thread panics holding the pattern cache")
                    .get(pattern.as_str())
                    .map(|re| re.is_match(&text));
                if let Some(matched) = cached {
                    return Ok(matched);
                }
                match Regex::new(&pattern) {
                    Ok(re) => {
                        let matched = re.is_match(&text);
                        patterns
                            .write()
                            .expect("no thread panics holding the pattern cache")
                            .insert(pattern.to_string(), re);
                        Ok(matched)
                    }
                    // Not cached: the `cel` crate's own function gives its error.
                    Err(_) => kube::core::cel::cel::functions::matches(ftx, This(text), pattern),
                }
            },
        );
        Self { context }
    }

    /// The rules `object` breaks, the `schema` being the compiled schema of its kind.
    pub(super) fn check(&self, schema: &CompiledSchema, object: &Value) -> Vec<RuleViolation> {
        let mut out = Vec::new();
        self.walk(schema, object, &mut String::new(), &mut out);
        out
    }

    /// Evaluates the rules of `node` on `value`, then those of its children. `path` is the field
    /// path of `value`, extended in place while descending and restored on the way back.
    fn walk(
        &self,
        node: &CompiledSchema,
        value: &Value,
        path: &mut String,
        out: &mut Vec<RuleViolation>,
    ) {
        if !node.validations.is_empty() {
            self.evaluate(node, value, path, out);
        }
        let parent = path.len();
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let schema = match node.properties.get(key) {
                        Some(schema) => schema,
                        None if node.preserve_unknown_fields => continue,
                        None => match &node.additional_properties {
                            Some(schema) => schema,
                            None => continue,
                        },
                    };
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                    self.walk(schema, child, path, out);
                    path.truncate(parent);
                }
            }
            Value::Array(items) => {
                if let Some(schema) = &node.items {
                    for (i, item) in items.iter().enumerate() {
                        write!(path, "[{i}]").expect("writing to a String cannot fail");
                        self.walk(schema, item, path, out);
                        path.truncate(parent);
                    }
                }
            }
            _ => {}
        }
        for branch in node.all_of.iter().chain(&node.one_of).chain(&node.any_of) {
            self.walk(branch, value, path, out);
        }
    }

    /// Evaluates the rules at one node, with `value` bound as `self`.
    fn evaluate(
        &self,
        node: &CompiledSchema,
        value: &Value,
        path: &str,
        out: &mut Vec<RuleViolation>,
    ) {
        let mut scope = self.context.new_inner_scope();
        scope.add_variable_from_value("self", to_cel(value, node));
        // Every rule compiled (`ManifestValidator::new` checks it).
        for rule in node.validations.iter().flatten() {
            let optional_old_self = rule.rule.optional_old_self == Some(true);
            if rule.is_transition_rule && !optional_old_self {
                continue;
            }
            let violation = if optional_old_self {
                let mut with_old = scope.new_inner_scope();
                with_old.add_variable_from_value("oldSelf", kube::core::cel::cel::Value::Null);
                violation(rule, &with_old, path)
            } else {
                violation(rule, &scope, path)
            };
            out.extend(violation);
        }
    }
}

/// What breaking `rule` says, if `self` (bound in `scope`) breaks it: its message (or
/// `messageExpression`) for a false result, kube-cel's words for any other result or error.
fn violation(rule: &CompilationResult, scope: &Context<'_>, path: &str) -> Option<RuleViolation> {
    use kube::core::cel::cel::Value as Cel;
    let (message, reason) = match rule.program.execute(scope) {
        Ok(Cel::Bool(true)) => return None,
        Ok(Cel::Bool(false)) => (message(rule, scope), rule.rule.reason.clone()),
        Ok(_) => (
            format!("rule \"{}\" did not evaluate to bool", rule.rule.rule),
            None,
        ),
        Err(ExecutionError::UndeclaredReference(name)) => (
            format!(
                "rule references '{name}', which this kube-cel build does not support \
                 (an unsupported CEL macro, or a feature disabled at compile time); \
                 it cannot be evaluated client-side"
            ),
            None,
        ),
        Err(e) => (format!("rule evaluation error: {e}"), None),
    };
    let field_path = match rule.rule.field_path.as_deref() {
        Some(field) if field.starts_with('.') => format!("{path}{field}"),
        Some(field) if !path.is_empty() => format!("{path}.{field}"),
        Some(field) => field.to_string(),
        None => path.to_string(),
    };
    Some(RuleViolation {
        field_path,
        message,
        reason,
    })
}

/// A failed rule's message: its `messageExpression` if that gives a string, else its `message`,
/// else `failed rule: <rule>`.
fn message(rule: &CompilationResult, scope: &Context<'_>) -> String {
    if let Some(program) = &rule.message_program
        && let Ok(kube::core::cel::cel::Value::String(s)) = program.execute(scope)
    {
        return (*s).clone();
    }
    rule.rule
        .message
        .clone()
        .unwrap_or_else(|| format!("failed rule: {}", rule.rule.rule))
}

/// Whether a node with rules, or below one, converts a string in a way [`to_cel`] does not
/// (`date-time`, `duration` and `byte` fields become timestamps, durations and bytes in the API
/// server's CEL); `ManifestValidator::new` checks that our schemas have none.
pub(super) fn has_typed_strings_under_rules(node: &CompiledSchema, under_rule: bool) -> bool {
    let under_rule = under_rule || !node.validations.is_empty();
    let typed = !matches!(node.format, SchemaFormat::None | SchemaFormat::IntOrString);
    (under_rule && typed)
        || node
            .properties
            .values()
            .chain(node.items.as_deref())
            .chain(node.additional_properties.as_deref())
            .chain(&node.all_of)
            .chain(&node.one_of)
            .chain(&node.any_of)
            .any(|child| has_typed_strings_under_rules(child, under_rule))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::cel::{Validator, compile_schema};
    use serde_json::json;

    /// What kube-cel's validator and [`CelRules`] say about `object`: (path, message, reason)
    /// of each broken rule, sorted.
    fn both(schema: &Value, object: &Value) -> [Vec<(String, String, Option<String>)>; 2] {
        let compiled = compile_schema(schema);
        let mut theirs: Vec<_> = match Validator::new().validate_compiled(&compiled, object, None) {
            Ok(()) => vec![],
            Err(errors) => errors
                .iter()
                .map(|e| (e.field_path.clone(), e.message.clone(), e.reason.clone()))
                .collect(),
        };
        let mut ours: Vec<_> = CelRules::new()
            .check(&compiled, object)
            .into_iter()
            .map(|v| (v.field_path, v.message, v.reason))
            .collect();
        theirs.sort();
        ours.sort();
        [theirs, ours]
    }

    fn rules(rules: Value, properties: Value) -> Value {
        json!({"type": "object", "x-kubernetes-validations": rules, "properties": properties})
    }

    #[test]
    fn rules_give_what_kube_cels_validator_gives() {
        let item = json!({
            "type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.value.matches('^[a-z]+$')", "message": "lower case",
                 "fieldPath": ".value", "reason": "FieldValueInvalid"},
                {"rule": "self.value.matches('[')"},
                {"rule": "self.value == oldSelf.value"},
                {"rule": "self.value.size()", "messageExpression": "'x'"}
            ],
            "properties": {"value": {"type": "string"}, "in": {"type": "integer"}}
        });
        let schema = rules(
            json!([
                {"rule": "self.items.all(i, i.value != 'b')",
                 "messageExpression": "'no b in ' + string(size(self.items))"},
                {"rule": "self.missing == 1"},
                {"rule": "noSuchFunction(self)"},
                {"rule": "!has(self.labels) || self.labels.all(k, k != 'my-key')",
                 "fieldPath": "labels", "reason": "FieldValueForbidden"},
                {"rule": "self.x__y.__in__ == 1 && self.embedded.kind == ''"},
                {"rule": "oldSelf != null", "optionalOldSelf": true, "message": "never old"}
            ]),
            json!({
                "items": {"type": "array", "items": item},
                "labels": {"type": "object", "additionalProperties": {
                    "type": "string", "x-kubernetes-validations": [{"rule": "self != 'bad'"}]}},
                "x_y": {"type": "object", "properties": {"in": {"type": "integer"}}},
                "embedded": {"type": "object", "x-kubernetes-embedded-resource": true,
                             "x-kubernetes-preserve-unknown-fields": true}
            }),
        );
        let objects = [
            json!({"items": [{"value": "a"}, {"value": "b"}, {"value": "B2", "in": 3}],
                   "labels": {"my-key": "bad", "other": "ok"},
                   "x_y": {"in": 1}, "embedded": {}}),
            json!({"items": [], "x_y": {"in": 2}, "embedded": {"kind": "K"}, "missing": 1}),
            json!({"items": [{"value": "abc"}], "labels": {}, "x_y": {"in": 1}, "embedded": {}}),
        ];
        for object in objects {
            let [theirs, ours] = both(&schema, &object);
            assert!(!theirs.is_empty());
            assert_eq!(ours, theirs, "{object}");
        }
    }

    #[test]
    fn a_cached_pattern_matches_as_a_fresh_one() {
        let schema = json!({"type": "string", "x-kubernetes-validations": [
            {"rule": "self.matches('^a+$')", "message": "only a"}]});
        for text in ["aaa", "b", "aaa", "ab", "b", ""] {
            let [theirs, ours] = both(&schema, &json!(text));
            assert_eq!(ours, theirs, "{text}");
            assert_eq!(
                ours.is_empty(),
                text.starts_with('a') && !text.contains('b')
            );
        }
    }
}
