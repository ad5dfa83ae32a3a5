//! The trainer's result: what a finished `train` run produced. The operator submits its model CID
//! on chain (with the hash of this JSON) and shows its figures in the task's status.

use serde::{Deserialize, Serialize};

use super::{TERMINATION_LOG_LIMIT, fit_termination_log};

/// The result of a run, printed last on stdout and written to `result.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrainResult {
    /// CID of the stored model (set once the model is added to the content store; a result without
    /// one cannot be submitted).
    #[serde(default)]
    pub model_cid: Option<String>,
    /// Path of the model file.
    pub model_path: String,
    /// SHA-256 of the model file.
    pub model_sha256: String,
    /// Mean team return of the final evaluation.
    pub mean_return: f64,
    /// Episodes of that evaluation.
    pub eval_episodes: u32,
    /// Mean team return of the last `returnWindow` training episodes.
    #[serde(default)]
    pub train_mean_return: Option<f64>,
    /// Env steps trained.
    pub env_steps: u64,
    /// Training episodes finished.
    pub train_episodes: u64,
    /// Seconds of training (across resumes), evaluation excluded.
    pub wall_seconds: f64,
    /// Env steps per second of training.
    pub sps: f64,
    /// Device the networks ran on (`cpu`, `cuda:0`).
    pub device: String,
    /// Set when `targetMeanReturn` was reached.
    #[serde(default)]
    pub target_reached: Option<TargetReached>,
    /// CIDs of the checkpoints this process wrote, in order, once stored (empty without a store;
    /// checkpoints from before a resume keep the CIDs their own run reported).
    #[serde(default)]
    pub checkpoint_cids: Vec<String>,
    /// Paths of the checkpoints written.
    #[serde(default)]
    pub checkpoint_paths: Vec<String>,
    /// CID or path of the warm-start model.
    #[serde(default)]
    pub parent_model_cid: Option<String>,
    /// Tensors reused by the warm start.
    #[serde(default)]
    pub warm_start: Option<WarmStart>,
}

/// How many tensors a warm start reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WarmStart {
    /// Tensors copied from the parent model.
    pub reused: usize,
    /// Tensors of this run's networks.
    pub total: usize,
}

/// When the early-stop criterion was first met.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetReached {
    /// Env steps from the start of training.
    pub env_steps: u64,
    /// Seconds from the start of training.
    pub wall_seconds: f64,
}

impl TrainResult {
    /// The result as one line of JSON, as printed on stdout.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("a result serializes")
    }

    /// The result for the termination log, which Kubernetes cuts at 4 KiB: the whole result when it
    /// fits, else without the checkpoint lists (which grow with the run; the operator needs neither).
    pub fn termination_summary(&self) -> String {
        let text = self.to_json_line();
        if text.len() <= TERMINATION_LOG_LIMIT {
            return text;
        }
        let short = TrainResult {
            checkpoint_paths: Vec::new(),
            checkpoint_cids: Vec::new(),
            ..self.clone()
        };
        fit_termination_log(short.to_json_line())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result() -> TrainResult {
        TrainResult {
            model_cid: Some("bafy1".into()),
            model_path: "/work/out/model.safetensors".into(),
            model_sha256: "ab".repeat(32),
            mean_return: 21.5,
            eval_episodes: 10,
            train_mean_return: Some(19.0),
            env_steps: 640,
            train_episodes: 30,
            wall_seconds: 1.5,
            sps: 900.0,
            device: "cpu".into(),
            target_reached: None,
            checkpoint_cids: vec!["bafy-ckpt".into()],
            checkpoint_paths: vec!["/work/out/checkpoints/ckpt-000004.safetensors".into()],
            parent_model_cid: None,
            warm_start: Some(WarmStart { reused: 4, total: 6 }),
        }
    }

    /// The keys are the contract with readers outside this workspace; a rename must be deliberate.
    #[test]
    fn the_wire_keys_are_the_documented_ones() {
        let json: serde_json::Value = serde_json::from_str(&result().to_json_line()).unwrap();
        let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "checkpointCids",
                "checkpointPaths",
                "device",
                "envSteps",
                "evalEpisodes",
                "meanReturn",
                "modelCid",
                "modelPath",
                "modelSha256",
                "parentModelCid",
                "sps",
                "targetReached",
                "trainEpisodes",
                "trainMeanReturn",
                "wallSeconds",
                "warmStart"
            ]
        );
        assert_eq!(json["warmStart"], serde_json::json!({"reused": 4, "total": 6}));
    }

    #[test]
    fn a_long_result_drops_its_checkpoint_lists_in_the_termination_log() {
        let short = result();
        assert_eq!(short.termination_summary(), short.to_json_line());
        let long = TrainResult {
            checkpoint_paths: vec!["/work/out/checkpoints/ckpt-000004.safetensors".into(); 200],
            ..result()
        };
        let summary = long.termination_summary();
        assert!(summary.len() <= TERMINATION_LOG_LIMIT);
        let read: TrainResult = serde_json::from_str(&summary).unwrap();
        assert_eq!(
            read,
            TrainResult {
                checkpoint_paths: Vec::new(),
                checkpoint_cids: Vec::new(),
                ..long
            }
        );
    }

    #[test]
    fn a_newer_trainers_extra_fields_are_ignored() {
        let mut json = serde_json::to_value(result()).unwrap();
        json["gpuMemoryBytes"] = serde_json::json!(1 << 30);
        assert_eq!(serde_json::from_value::<TrainResult>(json).unwrap(), result());
    }
}
