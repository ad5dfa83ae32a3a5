//! Which namespaces the operator watches (`drlaas operator --watch-namespaces`).
//!
//! By default it watches DRLTasks and their pods in every namespace, which takes a ClusterRole. A
//! cluster admin can name namespaces instead: every list and watch of a namespaced resource then
//! goes to those namespaces' URLs only (`/apis/drlaas.io/v1alpha1/namespaces/NS/drltasks`), so the
//! operator needs namespaced Roles for them. The operator's own namespace, where tasks mirrored
//! from the chain and the worker key Secrets live, is always one of them.
//!
//! Workers and DRLModels are cluster-scoped and are always read cluster-wide.

use std::fmt;

use k8s_openapi::NamespaceResourceScope;
use kube::api::ListParams;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

/// The namespaces whose DRLTasks and pods the operator lists and watches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum WatchScope {
    /// Every namespace: one cluster-wide list or watch per resource.
    #[default]
    All,
    /// These namespaces only (never empty, no duplicates): one list or watch per namespace.
    Namespaces(Vec<String>),
}

impl WatchScope {
    /// The scope of `--watch-namespaces` (`watch`) for an operator living in `own`: every namespace
    /// when `watch` names none, else the named ones (in their order, blanks and repeats dropped)
    /// and `own`.
    pub fn new(watch: &[String], own: &str) -> Self {
        let mut namespaces: Vec<String> = Vec::new();
        for namespace in watch.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            if !namespaces.iter().any(|n| n == namespace) {
                namespaces.push(namespace.to_string());
            }
        }
        if namespaces.is_empty() {
            return WatchScope::All;
        }
        if !namespaces.iter().any(|n| n == own) {
            namespaces.push(own.to_string());
        }
        WatchScope::Namespaces(namespaces)
    }

    /// Whether objects in `namespace` are in scope.
    pub fn contains(&self, namespace: &str) -> bool {
        match self {
            WatchScope::All => true,
            WatchScope::Namespaces(namespaces) => namespaces.iter().any(|n| n == namespace),
        }
    }

    /// The APIs to list and watch `K` through: `Api::all` for every namespace, else one
    /// `Api::namespaced` per namespace, in the scope's order.
    pub fn apis<K>(&self, client: &Client) -> Vec<Api<K>>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match self {
            WatchScope::All => vec![Api::all(client.clone())],
            WatchScope::Namespaces(namespaces) => namespaces
                .iter()
                .map(|namespace| Api::namespaced(client.clone(), namespace))
                .collect(),
        }
    }

    /// Every `K` in scope that `params` selects: one list call per API of [`WatchScope::apis`].
    pub async fn list<K>(&self, client: &Client, params: &ListParams) -> Result<Vec<K>, kube::Error>
    where
        K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + fmt::Debug,
        K::DynamicType: Default,
    {
        let mut items = Vec::new();
        for api in self.apis::<K>(client) {
            items.extend(api.list(params).await?.items);
        }
        Ok(items)
    }
}

impl fmt::Display for WatchScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchScope::All => f.write_str("all namespaces"),
            WatchScope::Namespaces(namespaces) => write!(f, "namespaces {}", namespaces.join(", ")),
        }
    }
}

/// Checks one `--watch-namespaces` entry: a namespace name (an RFC 1123 label), or blank (skipped,
/// so that an empty `DRLAAS_WATCH_NAMESPACES` means every namespace).
pub fn parse_namespace(text: &str) -> Result<String, String> {
    let name = text.trim();
    let valid = name.is_empty()
        || (name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-'));
    if valid {
        Ok(name.to_string())
    } else {
        Err(format!(
            "{name:?} is not a namespace name (lowercase letters, digits and '-', at most 63, starting and ending \
             with a letter or digit)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn no_namespace_named_is_every_namespace() {
        assert_eq!(WatchScope::new(&[], "drlaas-system"), WatchScope::All);
        assert_eq!(WatchScope::new(&names(&["", " "]), "drlaas-system"), WatchScope::All);
        assert!(WatchScope::All.contains("anything"));
        assert_eq!(WatchScope::All.to_string(), "all namespaces");
    }

    #[test]
    fn named_namespaces_keep_their_order_and_add_the_operators_own() {
        let scope = WatchScope::new(&names(&["team-b", "team-a", "team-b", ""]), "drlaas-system");
        assert_eq!(
            scope,
            WatchScope::Namespaces(names(&["team-b", "team-a", "drlaas-system"]))
        );
        assert!(scope.contains("team-a") && scope.contains("drlaas-system"));
        assert!(!scope.contains("team-c"));
        assert_eq!(scope.to_string(), "namespaces team-b, team-a, drlaas-system");
        let with_own = WatchScope::new(&names(&["drlaas-system", "team-a"]), "drlaas-system");
        assert_eq!(with_own, WatchScope::Namespaces(names(&["drlaas-system", "team-a"])));
    }

    #[test]
    fn namespace_names_are_checked() {
        assert_eq!(parse_namespace(" team-a ").unwrap(), "team-a");
        assert_eq!(parse_namespace("").unwrap(), "");
        for bad in ["Team-A", "team_a", "-team", "team-", "a/b", &"a".repeat(64)] {
            assert!(parse_namespace(bad).is_err(), "{bad:?} accepted");
        }
    }
}
