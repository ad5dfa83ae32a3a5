//! The Helm chart, rendered by the pinned helm with its default values and with every option on
//! (`ci/full-values.yaml`): lint, Kubernetes schemas, CRDs, RBAC, the pods' security, the values
//! schema. (The dashboard is checked against the metrics in the operator's tests.) RBAC is also decided request by request (`drlaas_chart::rbac`) in each
//! of the chart's modes: the release namespace only (the default), watched namespaces, and
//! `clusterWide`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use drlaas_chart::rbac::{Access, Permissions};
use drlaas_chart::{Helm, chart_dir, check_object, describe, repo_root};
use serde_json::Value;

static HELM: LazyLock<Helm> = LazyLock::new(Helm::pinned);

fn full_values() -> PathBuf {
    chart_dir().join("ci/full-values.yaml")
}

/// The rendered objects with default values and with the full values, each with its label.
fn renders() -> Vec<(&'static str, Vec<Value>)> {
    let full = full_values();
    vec![
        (
            "default values",
            HELM.template(&[]).expect("renders with default values"),
        ),
        (
            "full values",
            HELM.template(&[&full]).expect("renders with full values"),
        ),
    ]
}

/// The rendered objects with the values file `values` (YAML text).
fn template_with(values: &str) -> Result<Vec<Value>, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.yaml");
    std::fs::write(&file, values).unwrap();
    HELM.template(&[&file])
}

/// The NOTES helm prints after installing the chart with `values` (a client-side dry run).
fn notes_with(values: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.yaml");
    std::fs::write(&file, values).unwrap();
    let chart = chart_dir();
    let out = HELM.run([
        "install".as_ref(),
        "drlaas".as_ref(),
        chart.as_os_str(),
        "--namespace".as_ref(),
        "drlaas-system".as_ref(),
        "--dry-run=client".as_ref(),
        "--values".as_ref(),
        file.as_os_str(),
    ]);
    assert!(
        out.success,
        "helm install --dry-run=client ({values:?}):\n{}",
        out.stderr
    );
    let (_, notes) = out.stdout.split_once("\nNOTES:\n").expect("helm prints the NOTES");
    notes.to_string()
}

/// What the operator's ServiceAccount (release `drlaas` in `drlaas-system`) may do.
fn operator_permissions(objects: &[Value]) -> Permissions {
    let account = of_kind(objects, "ServiceAccount")[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    Permissions::of_service_account(objects, "drlaas-system", &account)
}

/// The operator's DRLAAS_WATCH_NAMESPACES.
fn watched(objects: &[Value]) -> String {
    let deployment = of_kind(objects, "Deployment")[0];
    let env = &deployment["spec"]["template"]["spec"]["containers"][0]["env"];
    env.as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "DRLAAS_WATCH_NAMESPACES")
        .expect("DRLAAS_WATCH_NAMESPACES is set")["value"]
        .as_str()
        .unwrap()
        .to_string()
}

/// What the operator does in a namespace tasks run in: (verb, API group, resource).
const TASK_ACCESSES: [(&str, &str, &str); 14] = [
    ("get", "", "secrets"),
    ("list", "", "pods"),
    ("watch", "", "pods"),
    ("create", "", "pods"),
    ("delete", "", "pods"),
    ("deletecollection", "", "pods"),
    ("get", "", "pods/log"),
    ("create", "", "configmaps"),
    ("delete", "", "configmaps"),
    ("create", "events.k8s.io", "events"),
    ("list", "drlaas.io", "drltasks"),
    ("watch", "drlaas.io", "drltasks"),
    ("create", "drlaas.io", "drltasks"),
    ("patch", "drlaas.io", "drltasks/status"),
];

/// Asserts that the operator may do every task access in each namespace of `granted`, and none in
/// a namespace of `denied` nor across all namespaces.
fn assert_task_namespaces(label: &str, permissions: &Permissions, granted: &[&str], denied: &[&str]) {
    for (verb, group, resource) in TASK_ACCESSES {
        for namespace in granted {
            let asked = Access::new(verb, group, resource, Some(namespace));
            assert!(permissions.allows(&asked), "{label}: {asked:?} is denied");
        }
        for namespace in denied.iter().copied().map(Some).chain([None]) {
            let asked = Access::new(verb, group, resource, namespace);
            assert!(!permissions.allows(&asked), "{label}: {asked:?} is granted");
        }
    }
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn helm_lint_passes_with_default_and_full_values() {
    let chart = chart_dir();
    for extra in [vec![], vec!["--values".into(), full_values()]] {
        let mut args: Vec<PathBuf> = vec!["lint".into(), "--strict".into(), chart.clone()];
        args.extend(extra);
        let out = HELM.run(&args);
        assert!(out.success, "helm {args:?} failed:\n{}{}", out.stdout, out.stderr);
        assert!(out.stdout.contains("0 chart(s) failed"), "{}", out.stdout);
    }
}

#[test]
fn every_rendered_object_matches_its_kubernetes_schema() {
    for (label, objects) in renders() {
        let problems: Vec<String> = objects.iter().filter_map(|o| check_object(o).err()).collect();
        assert!(problems.is_empty(), "{label}:\n{}", problems.join("\n"));
        assert!(objects.len() >= 10, "{label}: only {} objects rendered", objects.len());
    }
}

#[test]
fn the_chart_crds_are_the_generated_crds() {
    let chart = std::fs::read_to_string(chart_dir().join("crds/drlaas.io.yaml")).unwrap();
    let generated = std::fs::read_to_string(repo_root().join("crds/generated/drlaas.io.yaml")).unwrap();
    assert!(
        chart == generated,
        "charts/drlaas/crds/drlaas.io.yaml differs from crds/generated/drlaas.io.yaml: run \
         `DRLAAS_UPDATE_CRDS=1 cargo test -p drlaas-crds --features kube --test schema`"
    );
    // And helm installs them: they are in the rendered output with --include-crds.
    let objects = HELM.template(&[]).unwrap();
    let names: BTreeSet<&str> = of_kind(&objects, "CustomResourceDefinition")
        .iter()
        .filter_map(|c| c["metadata"]["name"].as_str())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["drlmodels.drlaas.io", "drltasks.drlaas.io", "workers.drlaas.io"])
    );
}

/// The verbs the operator's calls need; anything else (escalate, bind, impersonate, `*`) is refused.
const ALLOWED_VERBS: [&str; 8] = [
    "get",
    "list",
    "watch",
    "create",
    "patch",
    "update",
    "delete",
    "deletecollection",
];

#[test]
fn rbac_has_no_wildcards_and_only_the_verbs_the_operator_uses() {
    for (label, objects) in renders() {
        let roles: Vec<&Value> = objects
            .iter()
            .filter(|o| o["kind"] == "Role" || o["kind"] == "ClusterRole")
            .collect();
        assert!(!roles.is_empty(), "{label}: no roles");
        for role in roles {
            for rule in role["rules"].as_array().unwrap() {
                let what = format!("{label}: {} rule {rule}", describe(role));
                for field in ["apiGroups", "resources", "verbs"] {
                    assert!(!strings(&rule[field]).contains(&"*"), "{what}: wildcard in {field}");
                }
                assert!(rule.get("nonResourceURLs").is_none(), "{what}: non-resource URLs");
                for verb in strings(&rule["verbs"]) {
                    assert!(ALLOWED_VERBS.contains(&verb), "{what}: verb {verb}");
                }
                if strings(&rule["resources"]).contains(&"secrets") {
                    assert_eq!(strings(&rule["verbs"]), ["get"], "{what}: secrets are only read");
                }
            }
        }
    }
}

/// The resources of the operator's ClusterRoles: what it may touch in every namespace.
fn cluster_wide_resources(objects: &[Value]) -> BTreeSet<&str> {
    of_kind(objects, "ClusterRole")
        .into_iter()
        .flat_map(|r| r["rules"].as_array().unwrap())
        .flat_map(|rule| strings(&rule["resources"]))
        .collect()
}

#[test]
fn the_default_values_grant_nothing_namespaced_outside_the_release_namespace() {
    let objects = HELM.template(&[]).unwrap();
    let permissions = operator_permissions(&objects);
    // kube-system: a pod there may run as any of its ServiceAccounts, a Secret there may be one's token.
    for (verb, resource, namespace) in [
        ("get", "secrets", Some("kube-system")),
        ("list", "secrets", Some("kube-system")),
        ("watch", "secrets", Some("kube-system")),
        ("create", "pods", Some("kube-system")),
        ("delete", "pods", Some("kube-system")),
        ("deletecollection", "pods", Some("kube-system")),
        ("create", "configmaps", Some("kube-system")),
        ("create", "pods", Some("default")),
        ("get", "secrets", Some("default")),
        ("get", "secrets", Some("team-a")),
        ("create", "pods", Some("team-a")),
        ("list", "secrets", None),
        ("list", "pods", None),
    ] {
        let asked = Access::new(verb, "", resource, namespace);
        assert!(!permissions.allows(&asked), "the default values grant {asked:?}");
    }
    assert_task_namespaces(
        "default values",
        &permissions,
        &["drlaas-system"],
        &["kube-system", "kube-public", "default", "team-a"],
    );
    // What stays cluster-wide is cluster-scoped, and the Lease is the release namespace's.
    for (verb, group, resource, namespace) in [
        ("watch", "drlaas.io", "workers", None),
        ("patch", "drlaas.io", "workers/status", None),
        ("create", "drlaas.io", "drlmodels", None),
        ("update", "coordination.k8s.io", "leases", Some("drlaas-system")),
    ] {
        let asked = Access::new(verb, group, resource, namespace);
        assert!(permissions.allows(&asked), "the default values deny {asked:?}");
    }
    assert!(!permissions.allows(&Access::new(
        "update",
        "coordination.k8s.io",
        "leases",
        Some("kube-system")
    )));
    // The operator is told the same namespace: an empty list would make it watch every namespace.
    assert_eq!(watched(&objects), "drlaas-system");
    for kind in ["Role", "RoleBinding"] {
        for object in of_kind(&objects, kind) {
            assert_eq!(object["metadata"]["namespace"], "drlaas-system", "{}", describe(object));
        }
    }
}

#[test]
fn watched_namespaces_are_granted_and_no_other() {
    let objects = template_with("watchNamespaces: [team-a]\n").unwrap();
    assert_task_namespaces(
        "watchNamespaces: [team-a]",
        &operator_permissions(&objects),
        &["team-a", "drlaas-system"],
        &["kube-system", "default", "team-b"],
    );
    assert_eq!(watched(&objects), "team-a,drlaas-system");
    let full = HELM.template(&[&full_values()]).unwrap();
    assert_task_namespaces(
        "full values",
        &operator_permissions(&full),
        &["team-a", "team-b", "drlaas-system"],
        &["kube-system", "default", "team-c"],
    );
    assert_eq!(watched(&full), "team-a,team-b,drlaas-system");
}

#[test]
fn unless_cluster_wide_nothing_namespaced_is_granted_cluster_wide() {
    let cluster_scoped = BTreeSet::from(["drlmodels", "drlmodels/status", "workers", "workers/status"]);
    for (label, objects) in renders() {
        assert_eq!(
            cluster_wide_resources(&objects),
            cluster_scoped,
            "{label}: only the cluster-scoped drlaas resources are cluster-wide"
        );
        let task_role_namespaces: BTreeSet<&str> = of_kind(&objects, "Role")
            .iter()
            .filter(|r| r["metadata"]["name"].as_str().unwrap().ends_with("-tasks"))
            .map(|r| r["metadata"]["namespace"].as_str().unwrap())
            .collect();
        let watched = watched(&objects);
        let expected: BTreeSet<&str> = watched.split(',').collect();
        assert_eq!(
            task_role_namespaces, expected,
            "{label}: a Role where the operator watches"
        );
        // Every Role has its binding to the operator's service account.
        let account = of_kind(&objects, "ServiceAccount")[0]["metadata"]["name"].clone();
        for role in of_kind(&objects, "Role") {
            let binding = of_kind(&objects, "RoleBinding")
                .into_iter()
                .find(|b| {
                    b["metadata"]["namespace"] == role["metadata"]["namespace"]
                        && b["roleRef"]["name"] == role["metadata"]["name"]
                })
                .unwrap_or_else(|| panic!("{label}: {} has no RoleBinding", describe(role)));
            assert_eq!(binding["subjects"][0]["name"], account, "{label}");
            assert_eq!(binding["subjects"][0]["namespace"], "drlaas-system", "{label}");
        }
    }
}

#[test]
fn cluster_wide_is_on_only_when_asked_and_warned_about() {
    // Not asked: neither by default, nor with namespaces, nor with clusterWide: false.
    for values in ["{}\n", "clusterWide: false\n", "watchNamespaces: [team-a]\n"] {
        let objects = template_with(values).unwrap();
        let permissions = operator_permissions(&objects);
        for namespace in [Some("kube-system"), None] {
            let asked = Access::new("get", "", "secrets", namespace);
            assert!(!permissions.allows(&asked), "{values:?} grants {asked:?}");
        }
        assert!(
            !watched(&objects).is_empty(),
            "{values:?}: the operator watches every namespace"
        );
        let notes = notes_with(values);
        assert!(!notes.contains("WARNING"), "{values:?}:\n{notes}");
        assert!(notes.contains("Tasks:   namespaces "), "{values:?}:\n{notes}");
    }
    // Asked: every namespace, as the operator is told, and the NOTES say what it costs.
    let objects = template_with("clusterWide: true\n").unwrap();
    assert_eq!(
        watched(&objects),
        "",
        "an empty DRLAAS_WATCH_NAMESPACES is every namespace"
    );
    let permissions = operator_permissions(&objects);
    for namespace in ["kube-system", "default", "team-a"] {
        for (verb, group, resource) in TASK_ACCESSES {
            let asked = Access::new(verb, group, resource, Some(namespace));
            assert!(permissions.allows(&asked), "clusterWide: {asked:?} is denied");
        }
    }
    for (verb, resource) in [("watch", "drltasks"), ("list", "drltasks")] {
        assert!(permissions.allows(&Access::new(verb, "drlaas.io", resource, None)));
    }
    assert!(cluster_wide_resources(&objects).contains("secrets"));
    let notes = notes_with("clusterWide: true\n");
    assert!(
        notes.contains("Tasks:   every namespace (clusterWide)")
            && notes.contains("WARNING: clusterWide is on")
            && notes.contains("kube-system"),
        "{notes}"
    );
}

#[test]
fn the_dev_quick_start_watches_the_dev_requesters_namespace() {
    // deploy/dev puts the requester's wallet in team-a; the default values do not watch it, and the
    // NOTES say how to.
    let notes = notes_with("{}\n");
    assert!(notes.contains("--set watchNamespaces={team-a}"), "{notes}");
    let notes = notes_with("watchNamespaces: [team-a]\n");
    assert!(!notes.contains("--set watchNamespaces={team-a}"), "{notes}");
    assert!(notes.contains("Tasks:   namespaces team-a, drlaas-system"), "{notes}");
    let dev = std::fs::read_to_string(repo_root().join("deploy/dev/dev-keys.yaml")).unwrap();
    let wallets: Vec<Value> = drlaas_chart::documents(&dev)
        .unwrap()
        .into_iter()
        .filter(|o| o["metadata"]["name"] == "requester-wallet")
        .collect();
    assert_eq!(wallets.len(), 1);
    assert_eq!(wallets[0]["metadata"]["namespace"], "team-a");
}

#[test]
fn the_operator_runs_unprivileged_with_probes_and_limits() {
    for (label, objects) in renders() {
        let deployments = of_kind(&objects, "Deployment");
        assert_eq!(deployments.len(), 1, "{label}");
        let pod = &deployments[0]["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{label}");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{label}"
        );
        for key in ["hostNetwork", "hostPID", "hostIPC"] {
            assert!(pod.get(key).is_none(), "{label}: {key}");
        }
        for volume in pod["volumes"].as_array().unwrap() {
            assert!(volume.get("hostPath").is_none(), "{label}: hostPath volume {volume}");
        }
        let oracle = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "oracle-key")
            .unwrap();
        assert_eq!(
            oracle["secret"]["defaultMode"], 0o400,
            "{label}: the oracle key is readable by its owner only"
        );
        let container = &pod["containers"][0];
        let security = &container["securityContext"];
        assert_eq!(security["allowPrivilegeEscalation"], false, "{label}");
        assert_eq!(security["readOnlyRootFilesystem"], true, "{label}");
        assert_eq!(strings(&security["capabilities"]["drop"]), ["ALL"], "{label}");
        assert!(security["capabilities"].get("add").is_none(), "{label}");
        assert!(security.get("privileged").is_none_or(|p| p == false), "{label}");
        assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz", "{label}");
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz", "{label}");
        assert!(container["resources"]["requests"]["memory"].is_string(), "{label}");
        assert!(container["resources"]["limits"]["memory"].is_string(), "{label}");
    }
}

#[test]
fn the_operator_is_configured_from_the_values() {
    let objects = HELM.template(&[&full_values()]).unwrap();
    let deployment = of_kind(&objects, "Deployment")[0];
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let env: Vec<(&str, &str)> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| Some((e["name"].as_str()?, e["value"].as_str()?)))
        .collect();
    for expected in [
        ("DRLAAS_RPC_URL", "https://rpc.consortium.example.org"),
        ("DRLAAS_CONFIRMATIONS", "6"),
        ("DRLAAS_PROPOSAL_TURN_SECONDS", "60"),
        ("DRLAAS_STORE", "http://kubo.ipfs.svc.cluster.local:5001"),
        ("DRLAAS_POD_STORE", "http://kubo-gateway.ipfs.svc.cluster.local:5002"),
        ("DRLAAS_TRAINER_IMAGE", "registry.example.org/drlaas/trainer:0.1.0"),
        (
            "DRLAAS_ENVIRONMENT_IMAGE",
            "registry.example.org/drlaas/environment@sha256:0f3c5a1e9b7d4c2a8e6f1b3d5c7a9e2f4b6d8c0a1e3f5b7d9c2e4a6f8b0d1c3e",
        ),
        ("DRLAAS_ENVIRONMENT_CPU", "500m"),
        ("DRLAAS_ENVIRONMENT_MEMORY", "2Gi"),
        ("DRLAAS_ENVIRONMENT_SERVERS", "2"),
        ("DRLAAS_ORACLE_KEY_FILE", "/var/run/secrets/drlaas/oracle/oracle.key"),
        ("DRLAAS_LISTEN", "0.0.0.0:9090"),
        ("SSL_CERT_FILE", "/etc/drlaas/ca/bundle.pem"),
    ] {
        assert!(env.contains(&expected), "{expected:?} not in {env:?}");
    }
    // By default the standard environment image serves gymnasium and pettingzoo tasks; an empty
    // one leaves the flag out, and such tasks wait.
    let env_of = |objects: &[serde_json::Value]| {
        of_kind(objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"].clone()
    };
    let image_of = |env: &serde_json::Value| {
        env.as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "DRLAAS_ENVIRONMENT_IMAGE")
            .map(|e| e["value"].as_str().unwrap().to_string())
    };
    let defaults = HELM.template(&[]).unwrap();
    assert_eq!(
        image_of(&env_of(&defaults)).as_deref(),
        Some("drlaas/environment:0.1.0")
    );
    let dir = tempfile::tempdir().unwrap();
    let no_image = dir.path().join("no-image.yaml");
    std::fs::write(&no_image, "environment:\n  image: \"\"\n").unwrap();
    let without = HELM.template(&[Path::new(&no_image)]).unwrap();
    assert_eq!(image_of(&env_of(&without)), None);
    let args = strings(&container["args"]);
    assert_eq!(
        args,
        [
            "operator",
            "--lease-name=drlaas-consortium",
            "--lease-seconds=30",
            "--no-chain-admission"
        ]
    );
    // The deployment file the operator reads is built from the chain values.
    let config = of_kind(&objects, "ConfigMap")
        .into_iter()
        .find(|c| c["metadata"]["name"] == "drlaas-deployment")
        .unwrap();
    let deployment_json: drlaas_chain_deployment::Deployment =
        serde_json::from_str(config["data"]["deployment.json"].as_str().unwrap()).unwrap();
    assert_eq!(deployment_json.chain_id, 4242);
    assert_eq!(deployment_json.block, 1_200_345);
    assert_eq!(deployment_json.tmc, "0x2222222222222222222222222222222222222222");
}

/// The deployment file's shape as the operator reads it (drlaas_chain::Deployment, camelCase).
mod drlaas_chain_deployment {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Deployment {
        pub chain_id: u64,
        #[allow(dead_code)]
        pub umc: String,
        pub tmc: String,
        #[allow(dead_code)]
        pub mmc: String,
        pub block: u64,
    }
}

/// The ports a NetworkPolicy lets its pods reach.
fn egress_ports(policy: &Value) -> BTreeSet<i64> {
    policy["spec"]["egress"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rule| rule["ports"].as_array().unwrap())
        .map(|p| p["port"].as_i64().unwrap())
        .collect()
}

#[test]
fn network_policies_open_only_the_ports_in_use() {
    let objects = HELM.template(&[&full_values()]).unwrap();
    let policies = of_kind(&objects, "NetworkPolicy");
    let operator = policies.iter().find(|p| p["metadata"]["name"] == "drlaas").unwrap();
    // DNS, the API server (443), the chain (https: 443), the store (5001), the extra rule (8546).
    assert_eq!(egress_ports(operator), BTreeSet::from([53, 443, 5001, 8546]));
    assert_eq!(operator["spec"]["ingress"][0]["ports"][0]["port"], 9090);
    // Trainer and evaluator pods in each watched namespace reach only DNS and the pods' store.
    let task_pods: Vec<&&Value> = policies
        .iter()
        .filter(|p| p["metadata"]["name"] == "drlaas-task-pods")
        .collect();
    assert_eq!(task_pods.len(), 3);
    for policy in task_pods {
        assert!(policy["spec"].get("ingress").is_none(), "no ingress: {policy}");
        assert_eq!(egress_ports(policy), BTreeSet::from([53, 5002]));
    }
    // By default the task pods are the release namespace's; with clusterWide their namespaces are
    // not known, so none has a policy.
    let task_pod_namespaces = |objects: &[Value]| -> Vec<String> {
        of_kind(objects, "NetworkPolicy")
            .into_iter()
            .filter(|p| p["metadata"]["name"] == "drlaas-task-pods")
            .map(|p| p["metadata"]["namespace"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(task_pod_namespaces(&HELM.template(&[]).unwrap()), ["drlaas-system"]);
    assert!(task_pod_namespaces(&template_with("clusterWide: true\n").unwrap()).is_empty());
}

#[test]
fn optional_parts_follow_their_switches() {
    let default = HELM.template(&[]).unwrap();
    let full = HELM.template(&[&full_values()]).unwrap();
    assert!(of_kind(&default, "ServiceMonitor").is_empty(), "off by default");
    assert_eq!(of_kind(&full, "ServiceMonitor").len(), 1, "on with full values");
    let dashboards = |objects: &[Value]| {
        of_kind(objects, "ConfigMap")
            .into_iter()
            .filter(|c| c["metadata"]["name"] == "drlaas-dashboard")
            .count()
    };
    assert_eq!(dashboards(&default), 0);
    assert_eq!(dashboards(&full), 1);
    let pdb = of_kind(&full, "PodDisruptionBudget");
    assert_eq!(pdb[0]["spec"]["minAvailable"], 2);
    let monitor = of_kind(&full, "ServiceMonitor")[0];
    assert_eq!(monitor["metadata"]["labels"]["release"], "kube-prometheus-stack");
    assert_eq!(monitor["spec"]["endpoints"][0]["honorLabels"], true);
}

#[test]
fn a_bad_values_file_is_refused_naming_the_field() {
    let cases = [
        (
            "chain:\n  contracts:\n    tmc: \"0x123\"\n",
            "/chain/contracts/tmc",
            "does not match pattern",
        ),
        ("chain:\n  confirmations: two\n", "/chain/confirmations", "want integer"),
        ("watchNamespace: [team-a]\n", "watchNamespace", "not allowed"),
        (
            "watchNamespaces: [Team_A]\n",
            "/watchNamespaces/0",
            "does not match pattern",
        ),
        (
            "store:\n  apiUrl: kubo:5001\n",
            "/store/apiUrl",
            "does not match pattern",
        ),
        (
            "chain:\n  rpcUrl: wss://rpc.example.org\n",
            "/chain/rpcUrl",
            "does not match pattern",
        ),
        ("oracle:\n  existingSecret: \"\"\n", "/oracle/existingSecret", ""),
        ("replicaCount: 0\n", "/replicaCount", "minimum"),
        ("environment:\n  servers: 0\n", "/environment/servers", "minimum"),
        ("clusterWide: \"yes\"\n", "/clusterWide", "want boolean"),
        // Every namespace and a list of namespaces: each of the two fields is named.
        (
            "clusterWide: true\nwatchNamespaces: [team-a]\n",
            "/watchNamespaces",
            "maxItems: got 1, want 0",
        ),
        (
            "clusterWide: true\nwatchNamespaces: [team-a]\n",
            "/clusterWide",
            "value must be false",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, (values, field, reason)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("bad-{i}.yaml"));
        std::fs::write(&file, values).unwrap();
        let err = HELM
            .template(&[Path::new(&file)])
            .expect_err(&format!("{values:?} must be refused"));
        assert!(
            err.contains("values don't meet the specifications of the schema")
                && err.contains(field)
                && err.contains(reason),
            "{values:?}: the error must name {field} ({reason}):\n{err}"
        );
    }
}

#[test]
fn cluster_wide_with_namespaces_is_refused_even_without_the_schema() {
    let chart = chart_dir();
    let out = HELM.run([
        "template".as_ref(),
        "drlaas".as_ref(),
        chart.as_os_str(),
        "--skip-schema-validation".as_ref(),
        "--set".as_ref(),
        "clusterWide=true,watchNamespaces={team-a}".as_ref(),
    ]);
    assert!(!out.success, "rendered:\n{}", out.stdout);
    assert!(
        out.stderr
            .contains("clusterWide: true runs tasks in every namespace, so watchNamespaces must be empty"),
        "{}",
        out.stderr
    );
}
