//! What the chart's RBAC lets the operator's ServiceAccount do, decided the way the API server's
//! RBAC authorizer does for the rules the chart uses: a Role grants in its own namespace, a
//! ClusterRole bound by a ClusterRoleBinding grants everywhere, and a rule matches on API group,
//! resource (or `resource/subresource`) and verb. The operator's tests ask it about every request
//! the operator made, so a permission the chart forgot fails a test instead of a cluster.

use serde_json::Value;

/// One API request, as the authorizer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub verb: String,
    pub group: String,
    /// `pods`, or `pods/log` for a subresource.
    pub resource: String,
    /// `None` for a cluster-scoped resource or a request across all namespaces.
    pub namespace: Option<String>,
}

impl Access {
    /// `verb` on `resource` of API `group` in `namespace`, or across all namespaces (`None`).
    pub fn new(verb: &str, group: &str, resource: &str, namespace: Option<&str>) -> Access {
        Access {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            namespace: namespace.map(String::from),
        }
    }

    /// The access of a request line `METHOD /path?query`; `None` for a path that is not a resource
    /// (discovery, `/version`).
    pub fn of_request(line: &str) -> Option<Access> {
        let (method, target) = line.split_once(' ')?;
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (group, rest) = match segments.as_slice() {
            ["api", _version, rest @ ..] => ("", rest),
            ["apis", group, _version, rest @ ..] => (*group, rest),
            _ => return None,
        };
        let (namespace, rest) = match rest {
            ["namespaces", namespace, rest @ ..] if !rest.is_empty() => (Some(namespace.to_string()), rest),
            rest => (None, rest),
        };
        let (resource, name, subresource) = match rest {
            [resource] => (*resource, None, None),
            [resource, name] => (*resource, Some(*name), None),
            [resource, name, subresource] => (*resource, Some(*name), Some(*subresource)),
            _ => return None,
        };
        let watching = query.split('&').any(|p| p == "watch=true" || p == "watch=1");
        let verb = match (method, name) {
            ("GET", Some(_)) => "get",
            ("GET", None) if watching => "watch",
            ("GET", None) => "list",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", Some(_)) => "delete",
            ("DELETE", None) => "deletecollection",
            _ => return None,
        };
        Some(Access {
            verb: verb.into(),
            group: group.into(),
            resource: match subresource {
                Some(sub) => format!("{resource}/{sub}"),
                None => resource.into(),
            },
            namespace,
        })
    }
}

/// The permissions of one ServiceAccount in a set of rendered objects.
#[derive(Debug, Clone)]
pub struct Permissions {
    /// (namespace the grant holds in, or `None` for everywhere; the rules)
    grants: Vec<(Option<String>, Vec<Value>)>,
}

impl Permissions {
    /// The grants of ServiceAccount `namespace/name` among `objects` (the chart's rendering).
    pub fn of_service_account(objects: &[Value], namespace: &str, name: &str) -> Permissions {
        let role = |kind: &str, role_namespace: Option<&str>, role_name: &str| {
            objects.iter().find(|o| {
                o["kind"] == kind
                    && o["metadata"]["name"] == role_name
                    && role_namespace.is_none_or(|ns| o["metadata"]["namespace"] == ns)
            })
        };
        let mut grants = Vec::new();
        for binding in objects
            .iter()
            .filter(|o| o["kind"] == "RoleBinding" || o["kind"] == "ClusterRoleBinding")
        {
            let bound = binding["subjects"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| s["kind"] == "ServiceAccount" && s["name"] == name && s["namespace"] == namespace);
            if !bound {
                continue;
            }
            let binding_namespace = binding["metadata"]["namespace"].as_str();
            let role_name = binding["roleRef"]["name"].as_str().unwrap_or_default();
            let (role, scope) = match (binding["kind"].as_str(), binding["roleRef"]["kind"].as_str()) {
                (Some("ClusterRoleBinding"), Some("ClusterRole")) => (role("ClusterRole", None, role_name), None),
                (Some("RoleBinding"), Some("ClusterRole")) => (
                    role("ClusterRole", None, role_name),
                    binding_namespace.map(String::from),
                ),
                (Some("RoleBinding"), Some("Role")) => (
                    role("Role", binding_namespace, role_name),
                    binding_namespace.map(String::from),
                ),
                _ => (None, None),
            };
            if let Some(role) = role {
                grants.push((scope, role["rules"].as_array().cloned().unwrap_or_default()));
            }
        }
        Permissions { grants }
    }

    /// Whether the grants allow `access`.
    pub fn allows(&self, access: &Access) -> bool {
        self.grants.iter().any(|(scope, rules)| {
            let in_scope = match (scope, &access.namespace) {
                (None, _) => true,
                (Some(granted), Some(asked)) => granted == asked,
                (Some(_), None) => false,
            };
            in_scope && rules.iter().any(|rule| rule_matches(rule, access))
        })
    }

    /// The request lines (`METHOD /path?query`) among `requests` the grants do not allow.
    pub fn denied<'a>(&self, requests: &'a [String]) -> Vec<&'a String> {
        requests
            .iter()
            .filter(|line| Access::of_request(line).is_some_and(|access| !self.allows(&access)))
            .collect()
    }
}

fn rule_matches(rule: &Value, access: &Access) -> bool {
    let has = |field: &str, wanted: &str| {
        rule[field]
            .as_array()
            .is_some_and(|items| items.iter().any(|i| i == wanted || i == "*"))
    };
    has("apiGroups", &access.group) && has("resources", &access.resource) && has("verbs", &access.verb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_are_read_as_the_authorizer_reads_them() {
        let cases = [
            (
                "GET /api/v1/pods?watch=true&labelSelector=a",
                Access::new("watch", "", "pods", None),
            ),
            (
                "GET /api/v1/namespaces/a/pods",
                Access::new("list", "", "pods", Some("a")),
            ),
            (
                "GET /api/v1/namespaces/a/pods/p/log?container=x",
                Access::new("get", "", "pods/log", Some("a")),
            ),
            (
                "DELETE /api/v1/namespaces/a/pods?labelSelector=x",
                Access::new("deletecollection", "", "pods", Some("a")),
            ),
            (
                "PATCH /apis/drlaas.io/v1alpha1/namespaces/a/drltasks/t/status",
                Access::new("patch", "drlaas.io", "drltasks/status", Some("a")),
            ),
            (
                "PUT /apis/coordination.k8s.io/v1/namespaces/s/leases/l",
                Access::new("update", "coordination.k8s.io", "leases", Some("s")),
            ),
            (
                "GET /apis/drlaas.io/v1alpha1/workers",
                Access::new("list", "drlaas.io", "workers", None),
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(Access::of_request(line), Some(expected), "{line}");
        }
        assert_eq!(Access::of_request("GET /version"), None);
    }

    #[test]
    fn roles_grant_in_their_namespace_and_cluster_roles_everywhere() {
        let objects = vec![
            json!({"kind": "Role", "metadata": {"name": "r", "namespace": "a"},
                   "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]}),
            json!({"kind": "RoleBinding", "metadata": {"name": "r", "namespace": "a"},
                   "roleRef": {"kind": "Role", "name": "r"},
                   "subjects": [{"kind": "ServiceAccount", "name": "op", "namespace": "sys"}]}),
            json!({"kind": "ClusterRole", "metadata": {"name": "c"},
                   "rules": [{"apiGroups": ["drlaas.io"], "resources": ["workers"], "verbs": ["watch"]}]}),
            json!({"kind": "ClusterRoleBinding", "metadata": {"name": "c"},
                   "roleRef": {"kind": "ClusterRole", "name": "c"},
                   "subjects": [{"kind": "ServiceAccount", "name": "op", "namespace": "sys"}]}),
        ];
        let p = Permissions::of_service_account(&objects, "sys", "op");
        assert!(p.allows(&Access::new("list", "", "pods", Some("a"))));
        assert!(!p.allows(&Access::new("list", "", "pods", Some("b"))));
        assert!(
            !p.allows(&Access::new("list", "", "pods", None)),
            "a Role never grants across namespaces"
        );
        assert!(!p.allows(&Access::new("get", "", "pods", Some("a"))));
        assert!(p.allows(&Access::new("watch", "drlaas.io", "workers", None)));
        let other = Permissions::of_service_account(&objects, "sys", "someone-else");
        assert!(!other.allows(&Access::new("list", "", "pods", Some("a"))));
    }
}
