//! The chain watcher's event cursor, kept in the cluster: a ConfigMap in the operator's namespace.
//!
//! The operator's pod has no durable disk, and a new leader may start on another node, so the cursor
//! lives where every replica can read it. One ConfigMap, one key: the cursor is small and written
//! once per acknowledged event, well within what the API server is built for.

use drlaas_chain::ChainError;
use drlaas_chain::cursor::{Cursor, CursorStore};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use super::FIELD_MANAGER;

/// Name of the ConfigMap holding the cursor.
pub const CURSOR_CONFIGMAP: &str = "drlaas-chain-cursor";

/// The key of [`CURSOR_CONFIGMAP`] whose value is the cursor as JSON.
pub const CURSOR_KEY: &str = "cursor.json";

/// A [`CursorStore`] in ConfigMap [`CURSOR_CONFIGMAP`] of one namespace.
#[derive(Clone, Debug)]
pub struct ConfigMapCursor {
    api: Api<ConfigMap>,
    namespace: String,
}

impl ConfigMapCursor {
    /// The cursor of ConfigMap [`CURSOR_CONFIGMAP`] in `namespace` (the operator's).
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        ConfigMapCursor {
            api: Api::namespaced(client, namespace),
            namespace: namespace.into(),
        }
    }

    /// Where the cursor lives, as errors name it: `configmap NS/NAME`.
    pub fn location(&self) -> String {
        format!("configmap {}/{CURSOR_CONFIGMAP}", self.namespace)
    }

    /// The trait speaks chain errors (a file cursor is the other implementation), so API failures are
    /// carried as text with the ConfigMap they concern.
    fn err(&self, e: impl std::fmt::Display) -> ChainError {
        ChainError::Cursor {
            path: self.location(),
            message: e.to_string(),
        }
    }
}

impl CursorStore for ConfigMapCursor {
    /// No ConfigMap, or one without the key, is a first start. Unparseable JSON is an error rather
    /// than a silent restart from the deployment block: someone edited it, and should know.
    async fn load(&mut self) -> drlaas_chain::Result<Option<Cursor>> {
        let Some(map) = self.api.get_opt(CURSOR_CONFIGMAP).await.map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        match map.data.as_ref().and_then(|d| d.get(CURSOR_KEY)) {
            None => Ok(None),
            Some(text) => serde_json::from_str(text)
                .map(Some)
                .map_err(|e| self.err(format!("key {CURSOR_KEY} is not a cursor: {e}"))),
        }
    }

    /// Server-side apply, forced: the operator owns the ConfigMap, and a leader that took over must
    /// not fail on its predecessor's field ownership. The API server has stored it when this returns.
    async fn save(&mut self, cursor: &Cursor) -> drlaas_chain::Result<()> {
        let text = serde_json::to_string(cursor).map_err(|e| self.err(e))?;
        let patch = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": CURSOR_CONFIGMAP,
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/managed-by": FIELD_MANAGER},
            },
            "data": {CURSOR_KEY: text},
        });
        self.api
            .patch(
                CURSOR_CONFIGMAP,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}
