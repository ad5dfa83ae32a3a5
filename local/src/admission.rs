//! What a real kube-apiserver checks before it stores an object, for the local API server: the
//! same refusals, with `422 Invalid` and a message that names the field, so that what passes here
//! passes on a cluster and what a cluster refuses is refused here too.
//!
//! - Metadata: object names are DNS subdomains (at most 253 characters), label keys and values
//!   are label-syntax (values at most 63 characters).
//! - drlaas resources, against their CRD's structural schema: a `null` in a property that is not
//!   `nullable` is pruned (the API server drops it before validation and storage); types,
//!   `minimum`/`maximum`, lengths, `minItems`/`maxItems`, `pattern`, `enum` and `required` are checked; then the
//!   CEL rules (`x-kubernetes-validations`), with `oldSelf` on updates.
//! - One behaviour of the API server's CEL that bit us, reproduced on purpose: a `null` kept in a
//!   `nullable` property counts as absent on one side of an equality, so a transition rule that
//!   compares a subtree holding a null with its old value (`self == oldSelf`) fails even when the
//!   two are identical.
//!
//! Unknown fields are pruned by a real API server (not refused); the operator's types never send
//! any, so that is not reproduced.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::Value;

/// The schema of each drlaas resource, by plural: (kind with group, openAPIV3Schema).
static SCHEMAS: LazyLock<BTreeMap<String, (String, Value)>> = LazyLock::new(|| {
    drlaas_crds::crds()
        .into_iter()
        .filter_map(|crd| {
            let schema = crd
                .spec
                .versions
                .first()?
                .schema
                .as_ref()?
                .open_api_v3_schema
                .as_ref()?;
            let kind = format!("{}.{}", crd.spec.names.kind, crd.spec.group);
            Some((
                crd.spec.names.plural.clone(),
                (kind, serde_json::to_value(schema).ok()?),
            ))
        })
        .collect()
});

/// The kind as the API server names it in errors (`DRLTask.drlaas.io`, `Pod`).
fn kind_of(resource: &str) -> String {
    match SCHEMAS.get(resource) {
        Some((kind, _)) => kind.clone(),
        None => match resource {
            "pods" => "Pod".into(),
            "configmaps" => "ConfigMap".into(),
            "secrets" => "Secret".into(),
            "leases" => "Lease.coordination.k8s.io".into(),
            "events" => "Event.events.k8s.io".into(),
            other => other.into(),
        },
    }
}

/// Checks `object` (a create when `old` is `None`, else an update of `old`) as the API server
/// would, pruning the nulls it would prune. `Err` is the message of its `422`.
pub fn admit(resource: &str, name: &str, old: Option<&Value>, object: &mut Value) -> Result<(), String> {
    let errors = refusals(resource, name, old, object);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} \"{name}\" is invalid: {}",
            kind_of(resource),
            errors.join(", ")
        ))
    }
}

/// What the API server would refuse in `object`, one `field: message` each (none: it is stored).
/// The nulls it would prune are pruned from `object`.
pub fn refusals(resource: &str, name: &str, old: Option<&Value>, object: &mut Value) -> Vec<String> {
    let mut errors = Vec::new();
    if old.is_none() && resource != "events" {
        check_name(name, &mut errors);
    }
    check_labels(&object["metadata"]["labels"], &mut errors);
    if let Some((_, schema)) = SCHEMAS.get(resource) {
        prune_nulls(schema, object);
        let mut found = schema_errors(schema, object, old);
        if let Some(old) = old {
            // Ratcheting: what the stored object already broke (it was stored before a rule
            // existed) does not block an update that leaves it as it was.
            let before = schema_errors(schema, old, None);
            found.retain(|e| !before.contains(e));
            null_equality(schema, object, old, "", &mut found);
        }
        errors.extend(found);
    }
    errors
}

/// One dot-separated part of an RFC 1123 subdomain. The API server bounds only the whole name (253
/// characters), not each part.
/// The schema's value checks and CEL rules (transition rules with `old`), one message each.
fn schema_errors(schema: &Value, object: &Value, old: Option<&Value>) -> Vec<String> {
    let mut errors = Vec::new();
    check_values(schema, object, "", &mut errors);
    if let Err(e) = kube::core::cel::Validator::new().validate(schema, object, old) {
        let text = e.to_string();
        let items: Vec<String> = text
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("- "))
            .map(str::to_owned)
            .collect();
        if items.is_empty() {
            errors.push(text);
        } else {
            errors.extend(items);
        }
    }
    errors
}

fn is_dns_label(part: &str) -> bool {
    !part.is_empty()
        && part.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && part.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && part
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn check_name(name: &str, errors: &mut Vec<String>) {
    if name.len() > 253 || !name.split('.').all(is_dns_label) {
        errors.push(format!(
            "metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case \
             alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (at most 253 \
             characters)"
        ));
    }
}

/// A label value: at most 63 characters, alphanumerics at both ends, `-_.` inside (or empty).
pub fn is_label_value(value: &str) -> bool {
    value.len() <= 63
        && (value.is_empty()
            || (value.starts_with(|c: char| c.is_ascii_alphanumeric())
                && value.ends_with(|c: char| c.is_ascii_alphanumeric())
                && value.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))))
}

fn check_labels(labels: &Value, errors: &mut Vec<String>) {
    let Some(labels) = labels.as_object() else { return };
    for (key, value) in labels {
        let name = key.rsplit('/').next().unwrap_or_default();
        let prefix_ok = key
            .rsplit_once('/')
            .is_none_or(|(prefix, _)| prefix.len() <= 253 && prefix.split('.').all(is_dns_label));
        if name.is_empty() || !is_label_value(name) || !prefix_ok {
            errors.push(format!("metadata.labels: Invalid value: {key:?}: not a qualified name"));
        }
        let value = value.as_str().unwrap_or_default();
        if value.len() > 63 {
            errors.push(format!(
                "metadata.labels: Invalid value: {value:?}: must be no more than 63 characters"
            ));
        } else if !is_label_value(value) {
            errors.push(format!(
                "metadata.labels: Invalid value: {value:?}: a valid label must be an empty string or consist of \
                 alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
            ));
        }
    }
}

fn property<'a>(schema: &'a Value, key: &str) -> Option<&'a Value> {
    schema["properties"]
        .get(key)
        .or_else(|| match &schema["additionalProperties"] {
            Value::Object(_) => Some(&schema["additionalProperties"]),
            _ => None,
        })
}

/// Drops every `null` the schema does not allow, as the API server does before validating.
fn prune_nulls(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, v| {
                !v.is_null() || property(schema, key).is_some_and(|s| s["nullable"].as_bool() == Some(true))
            });
            for (key, v) in map.iter_mut() {
                if let Some(s) = property(schema, key) {
                    prune_nulls(s, v);
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                prune_nulls(&schema["items"], v);
            }
        }
        _ => {}
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The OpenAPI value checks of a structural schema (not CEL), with the API server's wording.
fn check_values(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    if value.is_null() {
        return;
    }
    let shown = if path.is_empty() { "<root>" } else { path };
    let type_ok = match schema["type"].as_str() {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string() || schema["x-kubernetes-int-or-string"].as_bool() == Some(true),
        Some("integer") => value.is_i64() || (value.is_u64() && value.as_u64().is_some_and(|v| v <= i64::MAX as u64)),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    };
    if !type_ok {
        errors.push(format!(
            "{shown}: Invalid value: {value}: {shown} in body must be of type {}",
            schema["type"].as_str().unwrap_or_default()
        ));
        return;
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema["minimum"].as_f64()
            && (n < min || (schema["exclusiveMinimum"].as_bool() == Some(true) && n == min))
        {
            errors.push(format!(
                "{shown}: Invalid value: {value}: {shown} in body should be greater than or equal to {min}"
            ));
        }
        if let Some(max) = schema["maximum"].as_f64()
            && (n > max || (schema["exclusiveMaximum"].as_bool() == Some(true) && n == max))
        {
            errors.push(format!(
                "{shown}: Invalid value: {value}: {shown} in body should be less than or equal to {max}"
            ));
        }
    }
    if let Some(text) = value.as_str() {
        let chars = text.chars().count() as u64;
        if let Some(max) = schema["maxLength"].as_u64()
            && chars > max
        {
            errors.push(format!("{shown}: Too long: may not be more than {max} bytes"));
        }
        if let Some(min) = schema["minLength"].as_u64()
            && chars < min
        {
            errors.push(format!(
                "{shown}: Invalid value: {value}: {shown} in body should be at least {min} chars long"
            ));
        }
        if let Some(pattern) = schema["pattern"].as_str()
            && regex::Regex::new(pattern).is_ok_and(|re| !re.is_match(text))
        {
            errors.push(format!(
                "{shown}: Invalid value: {value}: {shown} in body should match '{pattern}'"
            ));
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        errors.push(format!("{shown}: Unsupported value: {value}"));
    }
    match value {
        Value::Object(map) => {
            for required in schema["required"].as_array().into_iter().flatten() {
                if let Some(key) = required.as_str()
                    && !map.contains_key(key)
                {
                    errors.push(format!("{}: Required value", join(path, key)));
                }
            }
            for (key, v) in map {
                if let Some(s) = property(schema, key) {
                    check_values(s, v, &join(path, key), errors);
                }
            }
        }
        Value::Array(items) => {
            if let Some(min) = schema["minItems"].as_u64()
                && (items.len() as u64) < min
            {
                errors.push(format!(
                    "{shown}: Invalid value: {}: {shown} in body should have at least {min} items",
                    items.len()
                ));
            }
            if let Some(max) = schema["maxItems"].as_u64()
                && items.len() as u64 > max
            {
                errors.push(format!(
                    "{shown}: Too many: {}: must have at most {max} items",
                    items.len()
                ));
            }
            for (i, v) in items.iter().enumerate() {
                check_values(&schema["items"], v, &format!("{path}[{i}]"), errors);
            }
        }
        _ => {}
    }
}

fn holds_null(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.values().any(holds_null),
        Value::Array(items) => items.iter().any(holds_null),
        _ => false,
    }
}

/// The API server's CEL treats a `null` in a `nullable` property as absent on one side of an
/// equality: a transition rule (`oldSelf`) over a subtree holding one fails, identical or not.
fn null_equality(schema: &Value, new: &Value, old: &Value, path: &str, errors: &mut Vec<String>) {
    for rule in schema["x-kubernetes-validations"].as_array().into_iter().flatten() {
        let compares_old = rule["rule"].as_str().is_some_and(|r| r.contains("oldSelf"));
        if compares_old && (holds_null(new) || holds_null(old)) {
            let shown = if path.is_empty() { "<nil>" } else { path };
            let message = rule["message"].as_str().unwrap_or("failed rule");
            errors.push(format!("{shown}: Invalid value: \"object\": {message}"));
        }
    }
    if let (Value::Object(new), Value::Object(old)) = (new, old) {
        for (key, v) in new {
            if let (Some(s), Some(o)) = (property(schema, key), old.get(key)) {
                null_equality(s, v, o, &join(path, key), errors);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(name: &str, training: Value) -> Value {
        json!({"apiVersion": "drlaas.io/v1alpha1", "kind": "DRLTask",
               "metadata": {"name": name, "namespace": "ns"},
               "spec": {"training": training, "chainTaskId": 1}})
    }

    #[test]
    fn label_values_over_63_characters_and_bad_names_are_refused() {
        let mut pod = json!({"metadata": {"name": "p", "labels": {"drlaas.io/task": "a".repeat(64)}}});
        let err = admit("pods", "p", None, &mut pod).unwrap_err();
        assert!(err.contains("must be no more than 63 characters"), "{err}");
        let mut ok = json!({"metadata": {"name": "p", "labels": {"drlaas.io/task": "a".repeat(63)}}});
        admit("pods", "p", None, &mut ok).unwrap();
        let long = "a".repeat(254);
        let mut object = task(&long, json!({"environment": {"kind": "cartpole"}}));
        assert!(
            admit("drltasks", &long, None, &mut object)
                .unwrap_err()
                .contains("metadata.name")
        );
        let mut object = task("Upper", json!({"environment": {"kind": "cartpole"}}));
        assert!(admit("drltasks", "Upper", None, &mut object).is_err());
    }

    #[test]
    fn a_spec_change_is_refused_and_a_metadata_change_is_not() {
        let old = task("t", json!({"environment": {"kind": "cartpole"}, "totalEnvSteps": 640}));
        let mut same = old.clone();
        same["metadata"]["finalizers"] = json!(["drlaas.io/settlement"]);
        admit("drltasks", "t", Some(&old), &mut same).unwrap();
        let mut changed = old.clone();
        changed["spec"]["training"]["totalEnvSteps"] = json!(641);
        let err = admit("drltasks", "t", Some(&old), &mut changed).unwrap_err();
        assert!(err.contains("immutable"), "{err}");
    }

    #[test]
    fn a_null_in_a_property_that_is_not_nullable_is_pruned() {
        let mut object = task(
            "t",
            json!({"environment": {"kind": "cartpole"}, "ppo": {"numEnvs": 4, "targetKl": null}}),
        );
        admit("drltasks", "t", None, &mut object).unwrap();
        let ppo = &object["spec"]["training"]["ppo"];
        assert!(ppo.get("targetKl").is_none() || !ppo["targetKl"].is_null(), "{ppo}");
    }

    #[test]
    fn a_kept_null_breaks_a_transition_rule_as_on_the_api_server() {
        let schema = json!({"type": "object", "properties": {"spec": {
            "type": "object",
            "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "immutable"}],
            "properties": {"x": {"type": "number", "nullable": true}}}}});
        let old = json!({"spec": {"x": null}});
        let mut errors = Vec::new();
        null_equality(&schema, &old.clone(), &old, "", &mut errors);
        assert_eq!(errors.len(), 1, "{errors:?}");
        let without = json!({"spec": {}});
        errors.clear();
        null_equality(&schema, &without.clone(), &without, "", &mut errors);
        assert!(errors.is_empty());
    }

    #[test]
    fn schema_bounds_are_checked_with_the_field_named() {
        let mut object = task("t", json!({"environment": {"kind": "cartpole"}}));
        object["spec"]["deadlineSeconds"] = json!(40_000_000);
        let err = admit("drltasks", "t", None, &mut object).unwrap_err();
        assert!(err.contains("spec.deadlineSeconds"), "{err}");
    }
}
