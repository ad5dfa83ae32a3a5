//! Schema helpers for the custom resources' specs.

use schemars::Schema;
use schemars::transform::{Transform, transform_subschemas};
use serde_json::Value;

/// A `#[schemars(transform = ...)]` for a spec type: its schema and every subschema allow no
/// `null`.
///
/// schemars gives every `Option` field the type `[T, "null"]`, which kube's generator turns into
/// `nullable: true`. A spec must not be nullable anywhere: the API server stores a `null` sent for
/// a nullable property, and in CEL a stored `null` is not an absent field, so a transition rule such
/// as `self == oldSelf` could then refuse every later update of an unchanged spec. In a property
/// that is not nullable the API server prunes a `null` before validation and storage, so a client
/// that still sends one is harmless. (The spec types also never serialize a `null`.)
pub fn non_nullable(schema: &mut Schema) {
    NonNullable.transform(schema);
}

struct NonNullable;

impl Transform for NonNullable {
    fn transform(&mut self, schema: &mut Schema) {
        if let Some(object) = schema.as_object_mut() {
            object.remove("nullable");
            if let Some(Value::Array(types)) = object.get_mut("type") {
                types.retain(|t| t != "null");
                if let [only] = types.as_slice() {
                    let only = only.clone();
                    object.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(values)) = object.get_mut("enum") {
                values.retain(|v| !v.is_null());
            }
            // `Option<T>` of a schema with subschemas is `anyOf: [T, {type: null}]`.
            if let Some(Value::Array(branches)) = object.get_mut("anyOf") {
                branches.retain(|b| !only_null(b));
                if let [only] = branches.as_slice()
                    && let Some(only) = only.as_object().cloned()
                {
                    object.remove("anyOf");
                    for (key, value) in only {
                        object.entry(key).or_insert(value);
                    }
                }
            }
        }
        transform_subschemas(self, schema);
    }
}

/// A schema that allows only `null`.
fn only_null(schema: &Value) -> bool {
    match schema.get("type") {
        Some(Value::String(t)) => t == "null",
        Some(Value::Array(types)) => types.iter().all(|t| t == "null"),
        None => {
            schema.get("const").is_some_and(Value::is_null)
                || schema
                    .get("enum")
                    .and_then(Value::as_array)
                    .is_some_and(|values| !values.is_empty() && values.iter().all(Value::is_null))
        }
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nulls_are_removed_everywhere() {
        let mut schema = Schema::try_from(json!({
            "type": "object",
            "properties": {
                "a": {"type": ["integer", "null"], "nullable": true},
                "b": {"anyOf": [{"type": "object", "properties": {"c": {"type": ["string", "null"]}}}, {"type": "null"}]},
                "d": {"type": "array", "items": {"type": ["number", "null"]}},
                "e": {"enum": ["x", null], "type": ["string", "null"]},
            }
        }))
        .unwrap();
        non_nullable(&mut schema);
        assert_eq!(
            schema.as_value(),
            &json!({
                "type": "object",
                "properties": {
                    "a": {"type": "integer"},
                    "b": {"type": "object", "properties": {"c": {"type": "string"}}},
                    "d": {"type": "array", "items": {"type": "number"}},
                    "e": {"enum": ["x"], "type": "string"},
                }
            })
        );
    }
}
