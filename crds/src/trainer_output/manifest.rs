//! The model manifest: what a model file says about itself, in the metadata of its safetensors
//! header, so that one content identifier names both the weights and what they mean. The trainer
//! writes it and reads it back (evaluation, warm starts); the operator reads a listed model's
//! environment from it to pick a warm start.

use drlaas_envs::EnvDescriptor;
use serde::{Deserialize, Serialize};

use crate::{Algorithm, NetworkConfig};

/// The safetensors metadata key holding a model's manifest (as JSON).
pub const MANIFEST_KEY: &str = "drlaas.manifest";

/// What a model is: enough to rebuild its network, compare its environment and trace its lineage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelManifest {
    /// Always [`ModelManifest::FORMAT`] for models this version reads.
    pub format: String,
    /// The environment it was trained on.
    pub environment: EnvDescriptor,
    /// The algorithm that trained it.
    pub algorithm: Algorithm,
    /// Network shape.
    pub network: NetworkConfig,
    /// One agent's observation shape.
    pub obs_shape: Vec<usize>,
    /// Discrete actions per agent.
    pub num_actions: usize,
    /// How it performed.
    pub metrics: ModelMetrics,
    /// CID or path of the model it was warm-started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_model: Option<String>,
    /// Seed of the run.
    pub seed: u64,
    /// Version of the trainer that wrote it.
    pub trainer_version: String,
}

/// Training and evaluation figures recorded in the manifest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelMetrics {
    /// Mean team return of the final evaluation (absent in checkpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_return: Option<f64>,
    /// Episodes of that evaluation.
    pub eval_episodes: u32,
    /// Mean team return of the last training episodes (the early-stop window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_mean_return: Option<f64>,
    /// Env steps trained.
    pub env_steps: u64,
    /// Training episodes finished.
    pub train_episodes: u64,
    /// Seconds of training.
    pub wall_seconds: f64,
}

/// Only the parts of a manifest a market reader needs: see [`ModelManifest::environment_of`].
#[derive(Deserialize)]
struct EnvironmentOnly {
    format: String,
    environment: EnvDescriptor,
}

impl ModelManifest {
    /// Format tag in every manifest; bumped on incompatible changes.
    pub const FORMAT: &str = "drlaas-model/1";

    /// The manifest as the JSON stored under [`MANIFEST_KEY`].
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a manifest serializes")
    }

    /// Reads the JSON stored under [`MANIFEST_KEY`]; a model of another format is refused (its
    /// network cannot be rebuilt from what this version knows).
    pub fn from_json(json: &str) -> Result<Self, String> {
        let manifest: Self = serde_json::from_str(json).map_err(|e| format!("bad manifest: {e}"))?;
        check_format(&manifest.format)?;
        Ok(manifest)
    }

    /// The environment a model was trained on, from the JSON stored under [`MANIFEST_KEY`], reading
    /// nothing else: a market reader compares environments, and a newer trainer's network options
    /// need not stop it from doing so.
    pub fn environment_of(json: &str) -> Result<EnvDescriptor, String> {
        let manifest: EnvironmentOnly = serde_json::from_str(json).map_err(|e| format!("bad manifest: {e}"))?;
        check_format(&manifest.format)?;
        Ok(manifest.environment)
    }
}

fn check_format(format: &str) -> Result<(), String> {
    if format == ModelManifest::FORMAT {
        Ok(())
    } else {
        Err(format!(
            "format `{format}`, this version reads `{}`",
            ModelManifest::FORMAT
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> ModelManifest {
        let environment: EnvDescriptor = serde_json::from_str(r#"{"kind": "cartpole"}"#).unwrap();
        ModelManifest {
            format: ModelManifest::FORMAT.into(),
            obs_shape: environment.obs_shape(),
            num_actions: environment.num_actions(),
            environment,
            algorithm: Algorithm::Ppo,
            network: NetworkConfig::default(),
            metrics: ModelMetrics {
                mean_return: Some(200.0),
                eval_episodes: 10,
                ..ModelMetrics::default()
            },
            parent_model: None,
            seed: 3,
            trainer_version: "0.1.0".into(),
        }
    }

    /// The key and the manifest's keys are the contract with every reader of a model file (any
    /// safetensors reader can open one); a rename must be deliberate.
    #[test]
    fn the_wire_keys_are_the_documented_ones() {
        assert_eq!(MANIFEST_KEY, "drlaas.manifest");
        let json: serde_json::Value = serde_json::from_str(&manifest().to_json()).unwrap();
        let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "algorithm",
                "environment",
                "format",
                "metrics",
                "network",
                "numActions",
                "obsShape",
                "seed",
                "trainerVersion"
            ]
        );
        assert_eq!(json["format"], "drlaas-model/1");
        assert_eq!(json["metrics"]["meanReturn"], 200.0);
    }

    #[test]
    fn a_manifest_reads_back_and_other_formats_are_refused() {
        let m = manifest();
        assert_eq!(ModelManifest::from_json(&m.to_json()), Ok(m.clone()));
        assert_eq!(ModelManifest::environment_of(&m.to_json()), Ok(m.environment.clone()));
        let other = ModelManifest {
            format: "drlaas-model/2".into(),
            ..m
        };
        assert!(
            ModelManifest::from_json(&other.to_json())
                .unwrap_err()
                .contains("drlaas-model/2")
        );
        assert!(ModelManifest::environment_of(&other.to_json()).is_err());
    }

    #[test]
    fn the_environment_reads_whatever_else_a_newer_manifest_holds() {
        // Foreign input: a newer trainer's network option.
        let mut json = serde_json::to_value(manifest()).unwrap();
        json["network"]["dropout"] = 0.1.into();
        assert!(ModelManifest::from_json(&json.to_string()).is_err());
        assert_eq!(
            ModelManifest::environment_of(&json.to_string()),
            Ok(manifest().environment)
        );
    }
}
