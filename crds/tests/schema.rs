//! The custom resources' schemas: the committed CRD YAML is what the types generate, and the CEL
//! rules reject bad objects with messages that say what to do (evaluated here with kube's CEL
//! engine, the rules the API server runs).

use drlaas_crds::task::DRLTask;
use drlaas_crds::worker::Worker;
use serde_json::json;

const GENERATED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/generated/drlaas.io.yaml");
/// The Helm chart installs the same CRDs (helm applies `crds/` of a chart before its templates).
const CHART_COPY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/drlaas/crds/drlaas.io.yaml");

fn rendered() -> String {
    drlaas_crds::crds_yaml()
}

#[test]
fn committed_crds_are_up_to_date() {
    let now = rendered();
    for path in [GENERATED, CHART_COPY] {
        if std::env::var_os("DRLAAS_UPDATE_CRDS").is_some() {
            std::fs::write(path, &now).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == now,
            "{path} is stale: run `DRLAAS_UPDATE_CRDS=1 cargo test -p drlaas-crds --features kube --test schema` and commit it"
        );
    }
}

fn task(spec: serde_json::Value) -> DRLTask {
    serde_json::from_value(json!({
        "apiVersion": "drlaas.io/v1alpha1",
        "kind": "DRLTask",
        "metadata": {"name": "maze", "namespace": "team-a"},
        "spec": spec,
    }))
    .unwrap()
}

/// A file of `deploy/examples/`, as JSON.
fn example(name: &str) -> serde_json::Value {
    let path = format!("{}/../deploy/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The spec of the example task (the examples are checked here too).
fn good_spec() -> serde_json::Value {
    example("drltask-maze.yaml")["spec"].clone()
}

/// The CEL verdict on a task object that need not deserialize (what the API server checks).
fn cel_on_raw_task(spec: serde_json::Value) -> String {
    use kube::CustomResourceExt;
    let crd = DRLTask::crd();
    let version = &crd.spec.versions[0];
    let schema = serde_json::to_value(version.schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap()).unwrap();
    let object =
        json!({"apiVersion": "drlaas.io/v1alpha1", "kind": "DRLTask", "metadata": {"name": "t"}, "spec": spec});
    cel_errors(kube::core::cel::Validator::new().validate(&schema, &object, None))
}

fn cel_errors(result: Result<(), impl std::fmt::Display>) -> String {
    match result {
        Ok(()) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_good_task_passes_and_defaults_are_filled() {
    let t = task(good_spec());
    assert_eq!(cel_errors(t.validate_cel()), "");
    assert_eq!(t.spec.warm_start, "none");
    assert_eq!(t.spec.max_attempts, 3);
    let mut bare = good_spec();
    bare.as_object_mut().unwrap().remove("resources");
    assert_eq!(task(bare).spec.resources.cpu, "2");
}

#[test]
fn cel_rejects_bad_tasks_with_clear_messages() {
    let mut both = good_spec();
    both["chainTaskId"] = json!(7);
    let err = cel_errors(task(both).validate_cel());
    assert!(err.contains("exactly one of spec.payment"), "{err}");

    let mut neither = good_spec();
    neither.as_object_mut().unwrap().remove("payment");
    assert!(cel_errors(task(neither).validate_cel()).contains("exactly one of spec.payment"));

    let mut warm = good_spec();
    warm["warmStart"] = json!("latest");
    let err = cel_errors(task(warm).validate_cel());
    assert!(err.contains("warmStart must be none, auto or a model CID"), "{err}");

    // Rejected by serde as well, so checked on the raw object as the API server sees it.
    let mut cartpole_grid = good_spec();
    cartpole_grid["training"]["environment"] = json!({"kind": "cartpole", "grid": 8});
    let err = cel_on_raw_task(cartpole_grid);
    assert!(err.contains("cartpole takes only horizon"), "{err}");

    let mut by_cid = good_spec();
    by_cid["warmStart"] = json!("bafybeib4ks7u5sdpjo5cdng23hpz43jekwfys6qqbzznnch3e4tzgh2cma");
    assert_eq!(cel_errors(task(by_cid).validate_cel()), "");
}

#[test]
fn the_spec_cannot_change_once_created() {
    let old = task(good_spec());
    let mut changed = good_spec();
    changed["minReputation"] = json!(0.5);
    let err = cel_errors(task(changed).validate_cel_update(&old));
    assert!(err.contains("spec is immutable once created"), "{err}");
    assert_eq!(cel_errors(task(good_spec()).validate_cel_update(&old)), "");
}

/// The example worker with other `expertise`.
fn worker(expertise: serde_json::Value) -> Worker {
    let mut object = example("worker.yaml");
    object["spec"]["expertise"] = expertise;
    serde_json::from_value(object).unwrap()
}

#[test]
fn worker_expertise_names_known_kinds_with_levels_in_range() {
    let example: Worker = serde_json::from_value(example("worker.yaml")).unwrap();
    assert_eq!(cel_errors(example.validate_cel()), "");
    assert_eq!(
        cel_errors(worker(json!({"maze-cleaning": 0.9, "cartpole": 0.5})).validate_cel()),
        ""
    );
    for bad in [json!({"chess": 0.9}), json!({"maze-cleaning": 1.5})] {
        let err = cel_errors(worker(bad.clone()).validate_cel());
        assert!(err.contains("expertise keys must be environment kinds"), "{bad}: {err}");
    }
}

#[test]
fn kubectl_shows_phase_worker_return_and_age() {
    let yaml = rendered();
    for column in [
        "name: Phase",
        "name: Worker",
        "name: Return",
        "name: Age",
        "name: Reputation",
        "name: Sales",
        "name: Rating",
    ] {
        assert!(yaml.contains(column), "missing printer column {column}");
    }
    assert!(yaml.contains("- drlt") && yaml.contains("scope: Namespaced") && yaml.contains("scope: Cluster"));
    assert!(
        yaml.contains("- drlm") && yaml.contains("plural: drlmodels"),
        "kubectl get drlmodels shows the market"
    );
    // OpenAPI ranges and patterns the API server checks besides CEL.
    assert!(yaml.contains("pattern: ^0x[0-9a-fA-F]{40}$"));
    assert!(yaml.contains("maximum: 1.0") || yaml.contains("maximum: 1"));
}

// ---------------------------------------------------------------------------------------------
// The schema itself: no nulls, descriptions everywhere, bounds the API server can read.

/// Every CRD's `openAPIV3Schema`, by kind.
fn schemas() -> Vec<(String, serde_json::Value)> {
    drlaas_crds::crds()
        .into_iter()
        .map(|crd| {
            let version = &crd.spec.versions[0];
            let schema = version.schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap();
            (crd.spec.names.kind.clone(), serde_json::to_value(schema).unwrap())
        })
        .collect()
}

fn task_schema() -> serde_json::Value {
    schemas().remove(0).1
}

/// Calls `visit(path, schema)` for `schema` and every schema under it.
fn walk_schema(path: &str, schema: &serde_json::Value, visit: &mut dyn FnMut(&str, &serde_json::Value)) {
    visit(path, schema);
    if let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) {
        for (name, property) in properties {
            walk_schema(&format!("{path}.{name}"), property, visit);
        }
    }
    if let Some(items) = schema.get("items") {
        walk_schema(&format!("{path}[]"), items, visit);
    }
    if let Some(values) = schema.get("additionalProperties").filter(|a| a.is_object()) {
        walk_schema(&format!("{path}.*"), values, visit);
    }
    for keyword in ["allOf", "anyOf", "oneOf"] {
        for branch in schema.get(keyword).and_then(|b| b.as_array()).into_iter().flatten() {
            walk_schema(path, branch, visit);
        }
    }
}

#[test]
fn no_spec_property_is_nullable() {
    for (kind, schema) in schemas() {
        let spec = &schema["properties"]["spec"];
        assert!(spec.is_object(), "{kind} has a spec");
        walk_schema(&format!("{kind}.spec"), spec, &mut |path, node| {
            assert!(node.get("nullable").is_none(), "{path} is nullable: {node}");
            if let Some(types) = node.get("type") {
                assert_ne!(types, "null", "{path}");
                assert!(types.is_string(), "{path} has one type: {types}");
            }
        });
    }
    // The status may stay nullable (the operator owns it); this is what `non_nullable` changed.
    let yaml = rendered();
    assert!(yaml.contains("nullable: true"), "statuses keep their nullable fields");
}

#[test]
fn every_property_has_a_description() {
    for (kind, schema) in schemas() {
        let top = schema["description"].as_str().unwrap_or_default();
        assert!(
            !top.is_empty() && !top.contains("Auto-generated"),
            "{kind} needs a real description, got {top:?}"
        );
        walk_schema(&kind, &schema, &mut |path, node| {
            for (name, property) in node.get("properties").and_then(|p| p.as_object()).into_iter().flatten() {
                let description = property.get("description").and_then(|d| d.as_str()).unwrap_or_default();
                assert!(!description.trim().is_empty(), "{path}.{name} has no description");
            }
        });
    }
}

/// The API server reads a CRD's `minimum`/`maximum` as doubles and, for an integer property, checks
/// that the bound prints as an int64 (kube-openapi's `IsValueValidAgainstRange`, whose error is
/// reported for the value being validated): a bound that does not (2^63 - 1 rounds up to 2^63)
/// would refuse every value of the property.
#[test]
fn integer_bounds_are_int64s_the_api_server_can_read() {
    let mut bounds = 0;
    for (kind, schema) in schemas() {
        walk_schema(&kind, &schema, &mut |path, node| {
            if node.get("type").and_then(|t| t.as_str()) != Some("integer") {
                return;
            }
            for key in ["minimum", "maximum"] {
                if let Some(bound) = node.get(key).and_then(|b| b.as_f64()) {
                    bounds += 1;
                    let printed = format!("{bound}");
                    assert!(
                        printed.parse::<i64>().is_ok(),
                        "{path}: {key} {bound} prints as {printed}"
                    );
                }
            }
        });
    }
    assert!(bounds > 20, "the check ran over the bounds ({bounds})");
    let seed = &task_schema()["properties"]["spec"]["properties"]["training"]["properties"]["seed"];
    assert_eq!(seed["maximum"].as_f64(), Some(drlaas_crds::training::MAX_SEED as f64));
    assert_eq!(
        drlaas_crds::training::MAX_SEED as f64 as u64,
        drlaas_crds::training::MAX_SEED,
        "exact"
    );
}

/// The static analysis of kube's CEL crate over every rule of every CRD: every rule compiles and
/// no estimated cost exceeds the API server's per-rule budget. The API server's own estimator is
/// stricter about unbounded lists and strings, so every rule that iterates over a value (a string
/// it matches, a list or map it walks) must sit on a value with `maxLength`/`maxItems`/`maxProperties`.
#[test]
fn every_rule_compiles_and_is_cheap() {
    use kube::core::cel::{ScopeContext, WarningKind, analyze_rule, compile_schema};
    let mut rules = 0;
    for (kind, schema) in schemas() {
        walk_schema(&kind, &schema, &mut |path, node| {
            let compiled = compile_schema(node);
            assert!(!compiled.has_errors(), "{path}: {:?}", compiled.compilation_errors());
            for rule in node
                .get("x-kubernetes-validations")
                .and_then(|r| r.as_array())
                .into_iter()
                .flatten()
            {
                rules += 1;
                let text = rule["rule"].as_str().unwrap();
                // (Its scope check takes a comprehension's variable for an unknown one: only the
                // cost is asserted.)
                for warning in analyze_rule(text, &compiled, ScopeContext::CrdValidation) {
                    assert!(
                        warning.kind != WarningKind::CostExceeded,
                        "{path}: {text}: {}",
                        warning.message
                    );
                }
                let strings_or_lists = ["matches(", ".all(", ".exists(", ".map(", ".filter("];
                if strings_or_lists.iter().any(|f| text.contains(f)) {
                    let bounded = ["maxLength", "maxItems", "maxProperties"]
                        .iter()
                        .any(|b| node.get(*b).is_some());
                    assert!(bounded, "{path}: {text} iterates over a value without a bound");
                }
            }
        });
    }
    assert!(rules >= 15, "{rules} rules");
}

// ---------------------------------------------------------------------------------------------
// Nulls and the immutability rule.

/// Every `null` in a JSON value, by path.
fn nulls(path: &str, value: &serde_json::Value, found: &mut Vec<String>) {
    match value {
        serde_json::Value::Null => found.push(path.to_owned()),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                nulls(&format!("{path}[{i}]"), item, found);
            }
        }
        serde_json::Value::Object(fields) => {
            for (name, field) in fields {
                nulls(&format!("{path}.{name}"), field, found);
            }
        }
        _ => {}
    }
}

/// A spec with every optional part present and every `Option` of those parts left out, and one
/// with every `Option` set.
fn sparse_and_full_specs() -> [drlaas_crds::task::DRLTaskSpec; 2] {
    let mut sparse = task(good_spec()).spec;
    sparse.training.ppo = Some(Default::default());
    let mut full = task(good_spec()).spec;
    full.training.ppo = Some(drlaas_crds::PpoConfig {
        target_kl: Some(0.02),
        ..Default::default()
    });
    [sparse, full]
}

#[test]
fn no_spec_serializes_a_null() {
    let worker: Worker = serde_json::from_value(example("worker.yaml")).unwrap();
    let mut values: Vec<serde_json::Value> = sparse_and_full_specs()
        .iter()
        .map(|spec| serde_json::to_value(spec).unwrap())
        .collect();
    // Every `Option` set, whether or not the combination is admitted.
    let mut everything = sparse_and_full_specs()[1].clone();
    everything.training.dqn = Some(Default::default());
    everything.chain_task_id = Some(3);
    values.push(serde_json::to_value(&everything).unwrap());
    let mut nothing = everything.clone();
    nothing.training = drlaas_crds::TrainingSpec::new(nothing.training.environment.clone());
    nothing.payment = None;
    nothing.chain_task_id = None;
    values.push(serde_json::to_value(&nothing).unwrap());
    values.push(serde_json::to_value(&worker.spec).unwrap());
    let model: drlaas_crds::model::DRLModelSpec = serde_json::from_value(json!({
        "chainId": 1, "listingId": 2, "modelCid": "Qm", "owner": "0x", "environmentKind": "cartpole", "royaltyBps": 0
    }))
    .unwrap();
    values.push(serde_json::to_value(&model).unwrap());
    for value in values {
        let mut found = Vec::new();
        nulls("spec", &value, &mut found);
        assert!(found.is_empty(), "{found:?} in {value}");
    }
}

/// The object as the API server stores it: it prunes a `null` in a property that is not nullable
/// (every property of the spec).
fn stored(mut object: serde_json::Value) -> serde_json::Value {
    fn prune(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(fields) => {
                fields.retain(|_, v| !v.is_null());
                fields.values_mut().for_each(prune);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(prune),
            _ => {}
        }
    }
    prune(&mut object["spec"]);
    object
}

/// The null case: the operator reads a task, changes its status or metadata and writes it back;
/// the spec it sends must equal the stored one under `self == oldSelf`. Before the spec types
/// skipped their `None`s, the client sent `ppo.targetKl: null` where the stored copy had nothing,
/// and every update was refused.
///
/// This is kube's CEL interpreter, not the API server's: the real one is tested against a real API
/// server elsewhere. Here a stored `null`-free copy against the client's serialization shows the
/// rule holds as long as the client never sends a `null`.
#[test]
fn an_unchanged_spec_passes_the_immutability_rule_against_the_stored_copy() {
    use kube::CustomResourceExt;
    let schema = serde_json::to_value(
        DRLTask::crd().spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap();
    for spec in sparse_and_full_specs() {
        let mut old = task(good_spec());
        old.spec = spec;
        let sent = serde_json::to_value(&old).unwrap();
        let on_server = stored(sent.clone());
        let result = kube::core::cel::Validator::new().validate(&schema, &sent, Some(&on_server));
        assert_eq!(cel_errors(result), "", "{sent}");

        // Status and metadata updates, through kube's own `validate_cel_update`.
        let mut new = old.clone();
        new.status = Some(drlaas_crds::task::DRLTaskStatus {
            phase: Some(drlaas_crds::task::TaskPhase::Funded),
            chain_task_id: Some(9),
            ..Default::default()
        });
        assert_eq!(cel_errors(new.validate_cel_update(&old)), "");
        new.metadata.finalizers = Some(vec!["drlaas.io/escrow".into()]);
        new.metadata.labels = Some([("drlaas.io/worker".to_owned(), "lab".to_owned())].into());
        assert_eq!(cel_errors(new.validate_cel_update(&old)), "");
    }

    // A client that still sent a null would be refused by kube's interpreter (which does not
    // prune); the API server prunes it, since no spec property is nullable.
    let mut old = task(good_spec());
    old.spec.training.ppo = Some(Default::default());
    let mut sent = serde_json::to_value(&old).unwrap();
    sent["spec"]["training"]["ppo"]["targetKl"] = serde_json::Value::Null;
    let on_server = stored(sent.clone());
    let err = cel_errors(kube::core::cel::Validator::new().validate(&schema, &sent, Some(&on_server)));
    assert!(err.contains("spec is immutable once created"), "{err}");
    let err = cel_errors(kube::core::cel::Validator::new().validate(&schema, &stored(sent), Some(&on_server)));
    assert_eq!(err, "");
}

// ---------------------------------------------------------------------------------------------
// Admission: the schema, its CEL rules and the Rust validation refuse the same specs.

/// What the API server's OpenAPI validation refuses in `value` (the part of it this CRD uses:
/// types, int64 integers, bounds, lengths, patterns, enums, item and property counts, required
/// fields), as `path: message` lines. Nulls are skipped (the API server prunes them first).
fn openapi_errors(path: &str, schema: &serde_json::Value, value: &serde_json::Value, errors: &mut Vec<String>) {
    use serde_json::Value;
    if value.is_null() {
        return;
    }
    let mut fail = |message: String| errors.push(format!("{path}: {message}"));
    let ty = schema.get("type").and_then(Value::as_str);
    let type_ok = match ty {
        // Kubernetes decodes a JSON integer beyond int64 as a double, then refuses it as a number.
        Some("integer") => value.as_i64().is_some(),
        Some("number") => value.is_number(),
        Some("string") => value.is_string(),
        Some("boolean") => value.is_boolean(),
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        _ => true,
    };
    if !type_ok {
        fail(format!("must be of type {}", ty.unwrap_or_default()));
        return;
    }
    if let Some(number) = value.as_f64() {
        let exclusive = |key: &str| schema.get(key).and_then(Value::as_bool) == Some(true);
        let (low, high) = match value.as_i64() {
            // Integers compare as integers, as the API server does when the bound is an int64.
            Some(int) if ty == Some("integer") => (
                schema
                    .get("minimum")
                    .and_then(Value::as_f64)
                    .map(|m| (int as i128).cmp(&(m as i128))),
                schema
                    .get("maximum")
                    .and_then(Value::as_f64)
                    .map(|m| (int as i128).cmp(&(m as i128))),
            ),
            _ => (
                schema
                    .get("minimum")
                    .and_then(Value::as_f64)
                    .and_then(|m| number.partial_cmp(&m)),
                schema
                    .get("maximum")
                    .and_then(Value::as_f64)
                    .and_then(|m| number.partial_cmp(&m)),
            ),
        };
        use std::cmp::Ordering::*;
        if matches!(low, Some(Less)) || (low == Some(Equal) && exclusive("exclusiveMinimum")) {
            fail(format!(
                "should be at least {} (exclusive: {})",
                schema["minimum"],
                exclusive("exclusiveMinimum")
            ));
        }
        if matches!(high, Some(Greater)) || (high == Some(Equal) && exclusive("exclusiveMaximum")) {
            fail(format!(
                "should be at most {} (exclusive: {})",
                schema["maximum"],
                exclusive("exclusiveMaximum")
            ));
        }
    }
    if let Some(text) = value.as_str() {
        let chars = text.chars().count() as u64;
        if schema
            .get("maxLength")
            .and_then(Value::as_u64)
            .is_some_and(|max| chars > max)
        {
            fail("too long".into());
        }
        if schema
            .get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|min| chars < min)
        {
            fail("too short".into());
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
            && !matches(text, pattern)
        {
            fail(format!("should match '{pattern}'"));
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        fail(format!("unsupported value {value}"));
    }
    if let Some(items) = value.as_array() {
        if schema
            .get("minItems")
            .and_then(Value::as_u64)
            .is_some_and(|min| (items.len() as u64) < min)
        {
            fail("too few items".into());
        }
        if schema
            .get("maxItems")
            .and_then(Value::as_u64)
            .is_some_and(|max| items.len() as u64 > max)
        {
            fail("too many items".into());
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                openapi_errors(&format!("{path}[{i}]"), item_schema, item, errors);
            }
        }
    }
    if let Some(fields) = value.as_object() {
        if schema
            .get("maxProperties")
            .and_then(Value::as_u64)
            .is_some_and(|max| fields.len() as u64 > max)
        {
            errors.push(format!("{path}: too many properties"));
        }
        for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let name = required.as_str().unwrap();
            if !fields.contains_key(name) {
                errors.push(format!("{path}.{name}: Required value"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (name, field) in fields {
            let child = format!("{path}.{name}");
            match properties.and_then(|p| p.get(name)) {
                Some(field_schema) => openapi_errors(&child, field_schema, field, errors),
                None => {
                    if let Some(values) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                        openapi_errors(&child, values, field, errors);
                    }
                }
            }
        }
    }
}

/// An OpenAPI `pattern`, evaluated with CEL's `matches` (RE2, like the API server's Go regexp).
fn matches(text: &str, pattern: &str) -> bool {
    use kube::core::cel::cel::{Context, Program, Value};
    let program = Program::compile("text.matches(pattern)").unwrap();
    let mut context = Context::default();
    context.add_variable_from_value("text", text);
    context.add_variable_from_value("pattern", pattern);
    program.execute(&context).unwrap() == Value::Bool(true)
}

/// Everything the API server would say about a task with this spec, as `path: message` lines:
/// the OpenAPI validation (after defaulting) and the CEL rules.
fn admission_errors(spec: &serde_json::Value) -> Vec<String> {
    let schema = task_schema();
    let object =
        json!({"apiVersion": "drlaas.io/v1alpha1", "kind": "DRLTask", "metadata": {"name": "t"}, "spec": spec});
    let defaulted = kube::core::cel::apply_defaults(&schema, &object);
    let mut errors = Vec::new();
    openapi_errors("", &schema, &defaulted, &mut errors);
    let errors = errors.into_iter().map(|e| e.trim_start_matches('.').to_owned());
    let cel = match kube::core::cel::Validator::new().validate(&schema, &object, None) {
        Ok(()) => Vec::new(),
        Err(e) => e
            .into_vec()
            .into_iter()
            .map(|e| format!("{}: {}", e.field_path, e.message))
            .collect(),
    };
    errors.chain(cel).collect()
}

/// The good example task with `changes` merged into its spec (`null` removes a field; an
/// `environment` replaces the example's).
fn spec_with(changes: serde_json::Value) -> serde_json::Value {
    fn merge(target: &mut serde_json::Value, changes: &serde_json::Value) {
        for (name, change) in changes.as_object().unwrap() {
            if change.is_null() {
                target.as_object_mut().unwrap().remove(name);
            } else if change.is_object() && name != "environment" && target.get(name).is_some_and(|t| t.is_object()) {
                merge(&mut target[name], change);
            } else {
                target[name] = change.clone();
            }
        }
    }
    let mut spec = good_spec();
    merge(&mut spec, &changes);
    spec
}

/// The Rust validation of the spec's training part: the field it names, as a path in the task.
fn rust_refusal(spec: &serde_json::Value) -> Option<String> {
    let training: drlaas_crds::TrainingSpec = match serde_json::from_value(spec["training"].clone()) {
        Ok(training) => training,
        Err(e) => return Some(format!("spec.training (serde: {e})")),
    };
    training.validate().err().map(|e| format!("spec.training.{}", e.field))
}

#[test]
fn schema_cel_and_rust_refuse_the_same_bad_specs() {
    let ppo = |settings: serde_json::Value| json!({"training": {"ppo": settings}});
    let dqn = |settings: serde_json::Value| json!({"training": {"algorithm": "dqn", "dqn": settings}});
    let env = |environment: serde_json::Value| json!({"training": {"environment": environment}});
    let training = |fields: serde_json::Value| json!({"training": fields});
    // (changes to the good spec, the field both must name)
    let cases = [
        (training(json!({"totalEnvSteps": 0})), "spec.training.totalEnvSteps"),
        (
            training(json!({"totalEnvSteps": 10_000_000_001u64})),
            "spec.training.totalEnvSteps",
        ),
        (training(json!({"evalEpisodes": 0})), "spec.training.evalEpisodes"),
        (training(json!({"evalEpisodes": 100_001})), "spec.training.evalEpisodes"),
        (training(json!({"returnWindow": 0})), "spec.training.returnWindow"),
        (
            training(json!({"seed": 9_223_372_036_854_775_808u64})),
            "spec.training.seed",
        ),
        (training(json!({"seed": u64::MAX})), "spec.training.seed"),
        (training(json!({"seed": i64::MAX})), "spec.training.seed"),
        (
            training(json!({"targetMeanReturn": 3.0e6})),
            "spec.training.targetMeanReturn",
        ),
        (
            training(json!({"targetMeanReturn": -2_147_483.649})),
            "spec.training.targetMeanReturn",
        ),
        (ppo(json!({"numEnvs": 0})), "spec.training.ppo.numEnvs"),
        (ppo(json!({"numEnvs": 4097})), "spec.training.ppo.numEnvs"),
        (ppo(json!({"numSteps": 0})), "spec.training.ppo.numSteps"),
        (ppo(json!({"numMinibatches": 0})), "spec.training.ppo.numMinibatches"),
        (
            ppo(json!({"numEnvs": 1, "numSteps": 16, "numMinibatches": 17})),
            "spec.training.ppo.numMinibatches",
        ),
        (ppo(json!({"updateEpochs": 0})), "spec.training.ppo.updateEpochs"),
        (ppo(json!({"learningRate": 0.0})), "spec.training.ppo.learningRate"),
        (ppo(json!({"learningRate": 1.5})), "spec.training.ppo.learningRate"),
        (ppo(json!({"gamma": 1.5})), "spec.training.ppo.gamma"),
        (ppo(json!({"gaeLambda": -0.1})), "spec.training.ppo.gaeLambda"),
        (ppo(json!({"clipCoef": 0.0})), "spec.training.ppo.clipCoef"),
        (ppo(json!({"entCoef": -0.01})), "spec.training.ppo.entCoef"),
        (ppo(json!({"vfCoef": 0.0})), "spec.training.ppo.vfCoef"),
        (ppo(json!({"maxGradNorm": 0.0})), "spec.training.ppo.maxGradNorm"),
        (ppo(json!({"targetKl": 0.0})), "spec.training.ppo.targetKl"),
        (dqn(json!({"numEnvs": 0})), "spec.training.dqn.numEnvs"),
        (dqn(json!({"bufferSize": 0})), "spec.training.dqn.bufferSize"),
        (dqn(json!({"batchSize": 0})), "spec.training.dqn.batchSize"),
        (dqn(json!({"batchSize": 20_000})), "spec.training.dqn.batchSize"),
        (
            dqn(json!({"targetNetworkFrequency": 0})),
            "spec.training.dqn.targetNetworkFrequency",
        ),
        (dqn(json!({"trainFrequency": 0})), "spec.training.dqn.trainFrequency"),
        (dqn(json!({"learningRate": 2.0})), "spec.training.dqn.learningRate"),
        (dqn(json!({"tau": 1.5})), "spec.training.dqn.tau"),
        (dqn(json!({"startE": -0.5})), "spec.training.dqn.startE"),
        (dqn(json!({"endE": 1.5})), "spec.training.dqn.endE"),
        (
            dqn(json!({"explorationFraction": 2.0})),
            "spec.training.dqn.explorationFraction",
        ),
        (dqn(json!({"maxGradNorm": 0.0})), "spec.training.dqn.maxGradNorm"),
        (training(json!({"dqn": {}})), "spec.training.dqn"),
        (training(json!({"algorithm": "dqn", "ppo": {}})), "spec.training.ppo"),
        (
            training(json!({"network": {"hidden": [64, 0]}})),
            "spec.training.network.hidden[1]",
        ),
        (
            training(json!({"network": {"convChannels": [4097]}})),
            "spec.training.network.convChannels[0]",
        ),
        (
            training(json!({"network": {"hidden": vec![8; 9]}})),
            "spec.training.network.hidden",
        ),
        (
            env(json!({"kind": "maze-cleaning", "grid": 3})),
            "spec.training.environment.grid",
        ),
        (
            env(json!({"kind": "maze-cleaning", "grid": 65})),
            "spec.training.environment.grid",
        ),
        (
            env(json!({"kind": "maze-cleaning", "agents": 0})),
            "spec.training.environment.agents",
        ),
        (
            env(json!({"kind": "maze-cleaning", "horizon": 0})),
            "spec.training.environment.horizon",
        ),
        (
            env(json!({"kind": "cartpole", "horizon": 100_001})),
            "spec.training.environment.horizon",
        ),
        // More agents than free cells, with and without each kind's defaults.
        (
            env(json!({"kind": "maze-cleaning", "grid": 4, "agents": 12})),
            "spec.training.environment.agents",
        ),
        (
            env(json!({"kind": "maze-cleaning", "grid": 5, "agents": 10})),
            "spec.training.environment.agents",
        ),
        (
            env(json!({"kind": "maze-cleaning", "agents": 32})),
            "spec.training.environment.agents",
        ),
        (
            env(json!({"kind": "target-localization", "grid": 4, "wallDensity": 0.5, "agents": 4, "targets": 5})),
            "spec.training.environment.agents",
        ),
        (
            env(json!({"kind": "target-localization", "grid": 4, "wallDensity": 0.5, "targets": 7})),
            "spec.training.environment.agents",
        ),
        (
            env(json!({"kind": "target-localization", "targets": 0})),
            "spec.training.environment.targets",
        ),
        (
            env(json!({"kind": "target-localization", "wallDensity": 0.6})),
            "spec.training.environment.wallDensity",
        ),
        (
            env(json!({"kind": "fleet-coordination", "grid": 4, "agents": 17})),
            "spec.training.environment.agents",
        ),
        (
            env(json!({"kind": "fleet-coordination", "requestRate": 1.5})),
            "spec.training.environment.requestRate",
        ),
        (
            env(json!({"kind": "fleet-coordination", "maxWaiting": 0})),
            "spec.training.environment.maxWaiting",
        ),
        (
            env(json!({"kind": "gymnasium", "id": "", "observationShape": [4], "actions": 2})),
            "spec.training.environment.id",
        ),
        (
            env(json!({"kind": "gymnasium", "id": "Cart Pole", "observationShape": [4], "actions": 2})),
            "spec.training.environment.id",
        ),
        (
            env(json!({"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [], "actions": 2})),
            "spec.training.environment.observationShape",
        ),
        (
            env(json!({"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [1, 1, 1, 1, 1], "actions": 2})),
            "spec.training.environment.observationShape",
        ),
        (
            env(json!({"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [4, 0], "actions": 2})),
            "spec.training.environment.observationShape[1]",
        ),
        (
            env(json!({"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [1024, 512], "actions": 2})),
            "spec.training.environment.observationShape",
        ),
        (
            env(json!({"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [64, 64, 64, 2], "actions": 2})),
            "spec.training.environment.observationShape",
        ),
        (
            env(json!({"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [4], "actions": 1})),
            "spec.training.environment.actions",
        ),
        (
            env(json!({"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [4], "actions": 65_537})),
            "spec.training.environment.actions",
        ),
        // Exactly one kind of action; a box's components in range; DQN only for discrete actions.
        (
            env(json!({"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [4]})),
            "spec.training.environment.actions",
        ),
        (
            env(
                json!({"kind": "gymnasium", "id": "Pendulum-v1", "observationShape": [3], "actions": 2, "continuousActions": 1}),
            ),
            "spec.training.environment.actions",
        ),
        (
            env(json!({"kind": "gymnasium", "id": "Pendulum-v1", "observationShape": [3], "continuousActions": 0})),
            "spec.training.environment.continuousActions",
        ),
        (
            env(json!({"kind": "gymnasium", "id": "Pendulum-v1", "observationShape": [3], "continuousActions": 1025})),
            "spec.training.environment.continuousActions",
        ),
        (
            env(
                json!({"kind": "gymnasium", "id": "shelves_env:Shelves-v0", "observationShape": [3], "actions": 3,
                       "package": {"cid": "not-a-cid", "wheel": "shelves_env-0.1.0-py3-none-any.whl"}}),
            ),
            "spec.training.environment.package.cid",
        ),
        (
            env(
                json!({"kind": "gymnasium", "id": "shelves_env:Shelves-v0", "observationShape": [3], "actions": 3,
                       "package": {"cid": "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "wheel": "../evil.whl"}}),
            ),
            "spec.training.environment.package.wheel",
        ),
        (
            env(
                json!({"kind": "gymnasium", "id": "Shelves-v0", "observationShape": [3], "actions": 3,
                       "image": "reg.example/shelves:latest"}),
            ),
            "spec.training.environment.image",
        ),
        (
            env(
                json!({"kind": "gymnasium", "id": "Shelves-v0", "observationShape": [3], "actions": 3,
                       "image": format!("reg.example/shelves@sha256:{}", "e".repeat(64)),
                       "package": {"cid": "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "wheel": "s-0.1-py3-none-any.whl"}}),
            ),
            "spec.training.environment.image",
        ),
        (
            env(
                json!({"kind": "pettingzoo", "factory": "not a factory", "agents": 3, "observationShape": [3], "actions": 3}),
            ),
            "spec.training.environment.factory",
        ),
        (
            env(
                json!({"kind": "pettingzoo", "factory": "envs:team", "agents": 65, "observationShape": [3], "actions": 3}),
            ),
            "spec.training.environment.agents",
        ),
        (
            env(json!({"kind": "pettingzoo", "factory": "envs:team", "agents": 3, "observationShape": [3]})),
            "spec.training.environment.actions",
        ),
        (
            training(json!({
                "algorithm": "dqn",
                "environment": {"kind": "gymnasium", "id": "Pendulum-v1", "observationShape": [3], "continuousActions": 1},
            })),
            "spec.training.algorithm",
        ),
    ];
    for (changes, field) in &cases {
        let spec = spec_with(changes.clone());
        let refused = admission_errors(&spec);
        assert!(
            refused.iter().any(|e| e.starts_with(&format!("{field}:"))),
            "admission must refuse {changes} naming {field}, said {refused:#?}"
        );
        assert_eq!(
            rust_refusal(&spec).as_deref(),
            Some(*field),
            "the Rust validation of {changes}"
        );
    }

    // Parameters of another kind, and a gymnasium environment without its spaces: CEL names the
    // environment and says what the kind takes; serde refuses the unknown or missing field.
    let kind_cases = [
        (
            json!({"kind": "cartpole", "id": "CartPole-v1"}),
            "id is for kind gymnasium",
        ),
        // `package` is a CEL reserved word: the rule must see the field (escaped) on both servers.
        (
            json!({"kind": "cartpole", "package": {"cid": "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "wheel": "s-0.1-py3-none-any.whl"}}),
            "kwargs, observationShape, actions, continuousActions, package and image are for kinds gymnasium and pettingzoo",
        ),
        (
            json!({"kind": "maze-cleaning", "kwargs": {"size": 3}}),
            "kwargs, observationShape, actions, continuousActions, package and image are for kinds gymnasium and pettingzoo",
        ),
        (
            json!({"kind": "gymnasium", "id": "CartPole-v1", "factory": "envs:team", "observationShape": [4], "actions": 2}),
            "factory is for kind pettingzoo",
        ),
        (
            json!({"kind": "pettingzoo", "factory": "envs:team", "observationShape": [3], "actions": 3}),
            "pettingzoo needs factory, agents, observationShape and actions or continuousActions",
        ),
        (
            json!({"kind": "pettingzoo", "factory": "envs:team", "agents": 3, "observationShape": [3], "actions": 3, "horizon": 10}),
            "pettingzoo takes factory, kwargs, agents, observationShape and actions or continuousActions",
        ),
        (
            json!({"kind": "gymnasium", "id": "CartPole-v1"}),
            "gymnasium needs id, observationShape and actions or continuousActions",
        ),
        (
            json!({"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [4], "actions": 2, "horizon": 200}),
            "gymnasium takes id, kwargs, observationShape and actions or continuousActions",
        ),
    ];
    for (environment, message) in &kind_cases {
        let spec = spec_with(env(environment.clone()));
        let refused = admission_errors(&spec);
        assert!(
            refused
                .iter()
                .any(|e| e.starts_with("spec.training.environment:") && e.contains(message)),
            "admission must refuse {environment} saying {message:?}, said {refused:#?}"
        );
        assert!(
            rust_refusal(&spec).is_some_and(|r| r.contains("serde")),
            "{environment}"
        );
    }

    // Checks of the whole task that the operator makes in `core::admission::validate_task` (which
    // this crate cannot call): the schema and CEL name the same fields as it does.
    let operator_cases = [
        (
            json!({"training": {"targetMeanReturn": null}}),
            "spec.training.targetMeanReturn",
        ),
        (json!({"minReputation": 1.5}), "spec.minReputation"),
        (json!({"payment": {"amountWei": "1e18"}}), "spec.payment.amountWei"),
        (json!({"resources": {"cpu": "0"}}), "spec.resources.cpu"),
        (json!({"resources": {"cpu": "0m"}}), "spec.resources.cpu"),
        (json!({"resources": {"cpu": "0.0001"}}), "spec.resources.cpu"),
        (json!({"resources": {"cpu": "1.5m"}}), "spec.resources.cpu"),
        (json!({"resources": {"cpu": "lots"}}), "spec.resources.cpu"),
        (json!({"resources": {"cpu": "4294968"}}), "spec.resources.cpu"),
        (json!({"resources": {"cpu": "4294967296m"}}), "spec.resources.cpu"),
        (json!({"resources": {"memory": "0"}}), "spec.resources.memory"),
        (json!({"resources": {"memory": "0.0Gi"}}), "spec.resources.memory"),
        (json!({"resources": {"memory": "4ki"}}), "spec.resources.memory"),
        (json!({"resources": {"memory": "4GB"}}), "spec.resources.memory"),
    ];
    for (changes, field) in &operator_cases {
        let refused = admission_errors(&spec_with(changes.clone()));
        assert!(
            refused.iter().any(|e| e.starts_with(&format!("{field}:"))),
            "admission must refuse {changes} naming {field}, said {refused:#?}"
        );
    }
}

#[test]
fn the_bounds_themselves_are_accepted_by_both() {
    let cases = [
        json!({"training": {"seed": drlaas_crds::training::MAX_SEED, "totalEnvSteps": 10_000_000_000u64}}),
        json!({"training": {"evalEpisodes": 1, "returnWindow": 100_000, "targetMeanReturn": 2_147_483.647}}),
        json!({"training": {"targetMeanReturn": -2_147_483.648}}),
        json!({"training": {"ppo": {"numEnvs": 1, "numSteps": 16, "numMinibatches": 16, "entCoef": 0.0, "targetKl": 10.0, "learningRate": 1.0}}}),
        json!({"training": {"algorithm": "dqn", "dqn": {"batchSize": 10_000, "bufferSize": 10_000, "tau": 0.0}}}),
        json!({"training": {"network": {"hidden": vec![4096; 8], "convChannels": []}}}),
        json!({"training": {"environment": {"kind": "maze-cleaning", "grid": 4, "agents": 11}}}),
        json!({"training": {"environment": {"kind": "maze-cleaning", "grid": 5, "agents": 9}}}),
        json!({"training": {"environment": {"kind": "maze-cleaning", "grid": 64, "agents": 64}}}),
        json!({"training": {"environment": {"kind": "maze-cleaning", "agents": 31}}}),
        json!({"training": {"environment": {"kind": "target-localization", "grid": 4, "wallDensity": 0.5, "agents": 4, "targets": 4}}}),
        json!({"training": {"environment": {"kind": "target-localization", "grid": 4, "wallDensity": 0.5, "targets": 6}}}),
        json!({"training": {"environment": {"kind": "target-localization"}}}),
        json!({"training": {"environment": {"kind": "fleet-coordination", "grid": 4, "agents": 16, "requestRate": 1.0}}}),
        json!({"training": {"environment": {"kind": "fleet-coordination"}}}),
        json!({"training": {"environment": {"kind": "cartpole", "horizon": 100_000}}}),
        json!({"training": {"environment": {"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [4], "actions": 2}}}),
        json!({"training": {"environment": {"kind": "gymnasium", "id": "my_envs:Warehouse-v0", "kwargs": {"max_episode_steps": 200, "layout": {"aisles": [3, 4]}},
                                            "observationShape": [4, 256, 256], "actions": 65_536}}}),
        json!({"training": {"environment": {"kind": "gymnasium", "id": "x", "observationShape": [262_144], "actions": 2}}}),
        json!({"training": {"environment": {"kind": "gymnasium", "id": "x", "observationShape": [8, 8, 8, 512], "actions": 2}}}),
        json!({"resources": {"cpu": "1m", "memory": "1"}}),
        json!({"resources": {"cpu": "0.001", "memory": "512Ki"}}),
        json!({"resources": {"cpu": "4294967", "memory": "0.5"}}),
        json!({"resources": {"cpu": "4294967295m", "memory": "1G"}}),
    ];
    for changes in cases {
        let spec = spec_with(changes.clone());
        assert_eq!(admission_errors(&spec), Vec::<String>::new(), "{changes}");
        assert_eq!(rust_refusal(&spec), None, "{changes}");
    }
}

#[test]
fn every_example_task_is_admitted() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/examples");
    let mut tasks = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let text = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
        if !text.contains("kind: DRLTask") {
            continue;
        }
        let object = example(&name);
        tasks += 1;
        assert_eq!(admission_errors(&object["spec"]), Vec::<String>::new(), "{name}");
        assert_eq!(rust_refusal(&object["spec"]), None, "{name}");
    }
    assert!(tasks >= 5, "{tasks} example tasks");
}

#[test]
fn every_tuned_trainer_spec_is_admitted() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../trainer-image/specs");
    let mut specs = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let training: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut spec = good_spec();
        spec["training"] = training;
        if spec["training"].get("targetMeanReturn").is_none() {
            spec["training"]["targetMeanReturn"] = json!(1.0);
        }
        specs += 1;
        assert_eq!(admission_errors(&spec), Vec::<String>::new(), "{}", path.display());
        assert_eq!(rust_refusal(&spec), None, "{}", path.display());
    }
    assert!(specs >= 5, "{specs} specs");
}
