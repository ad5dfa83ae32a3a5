//! The trainer's progress line: one JSON object per iteration, one per line, which the operator
//! turns into a task's `status.progress`, the local mode into learning curves, and the CLI into
//! `drlaas task show`.

use serde::{Deserialize, Serialize};

/// One iteration's progress, as `drlaas-trainer train --progress json` prints it.
///
/// A reader takes a log line for a progress line when it is JSON with `envSteps`; the other fields
/// may be absent (they read as zero), so a line from another trainer version still counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressLine {
    /// Iterations done (1-based).
    #[serde(default)]
    pub update: u64,
    /// Iterations the run has.
    #[serde(default)]
    pub updates: u64,
    /// Env steps so far.
    pub env_steps: u64,
    /// Training episodes finished so far.
    #[serde(default)]
    pub episodes: u64,
    /// Mean team return over the last `returnWindow` training episodes (`null` before the first).
    #[serde(default)]
    pub mean_return: Option<f64>,
    /// Env steps per second over the run so far.
    #[serde(default)]
    pub sps: f64,
    /// Seconds since the run started (including time before a resume).
    #[serde(default)]
    pub wall_seconds: f64,
    /// The algorithm's diagnostics.
    #[serde(flatten)]
    pub stats: UpdateStats,
}

/// Diagnostics of one iteration, in the progress line beside its counters. A field is absent when
/// the algorithm has no such figure (PPO has no TD loss, DQN no clip fraction).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UpdateStats {
    /// Learning rate used.
    pub learning_rate: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entropy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approx_kl: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip_fraction: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explained_variance: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub td_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<f64>,
    /// A Gaussian policy's standard deviation after the update, the mean over action components
    /// (continuous actions): how much it still explores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_std: Option<f64>,
}

impl ProgressLine {
    /// The line as the trainer prints it: one line of JSON.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("a progress line serializes")
    }

    /// `line` of a log, when it is a progress line.
    pub fn parse(line: &str) -> Option<Self> {
        let line = line.trim();
        if !line.starts_with('{') {
            return None;
        }
        serde_json::from_str(line).ok()
    }

    /// The progress lines of a log, in order; every other line is skipped.
    pub fn all_in(log: &str) -> impl Iterator<Item = Self> + '_ {
        log.lines().filter_map(Self::parse)
    }

    /// The last progress line of a log.
    pub fn last_in(log: &str) -> Option<Self> {
        log.lines().rev().find_map(Self::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> ProgressLine {
        ProgressLine {
            update: 2,
            updates: 4,
            env_steps: 320,
            episodes: 9,
            mean_return: Some(12.5),
            sps: 1000.0,
            wall_seconds: 0.3,
            stats: UpdateStats {
                learning_rate: 3e-4,
                policy_loss: Some(0.1),
                ..UpdateStats::default()
            },
        }
    }

    /// The keys are the contract with readers outside this workspace (dashboards, scripts): a
    /// rename must be deliberate.
    #[test]
    fn the_wire_keys_are_the_documented_ones() {
        let json: serde_json::Value = serde_json::from_str(&line().to_json_line()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"update": 2, "updates": 4, "envSteps": 320, "episodes": 9, "meanReturn": 12.5,
                "sps": 1000.0, "wallSeconds": 0.3, "learningRate": 3e-4, "policyLoss": 0.1})
        );
        let first = ProgressLine {
            mean_return: None,
            ..line()
        };
        assert!(first.to_json_line().contains("\"meanReturn\":null"));
    }

    #[test]
    fn a_log_yields_its_progress_lines_only() {
        let a = line();
        let b = ProgressLine {
            update: 4,
            env_steps: 640,
            mean_return: None,
            ..line()
        };
        let log = format!(
            "starting\n{}\n{{\"warning\": \"store unavailable\"}}\n  {}\n{{not json\n",
            a.to_json_line(),
            b.to_json_line()
        );
        assert_eq!(ProgressLine::all_in(&log).collect::<Vec<_>>(), [a, b.clone()]);
        assert_eq!(ProgressLine::last_in(&log), Some(b));
        assert_eq!(ProgressLine::last_in("no progress yet"), None);
    }

    #[test]
    fn a_line_with_fewer_or_more_fields_still_reads() {
        // Foreign input: an older trainer's sparse line and a newer one's extra field.
        let sparse = ProgressLine::parse(r#"{"envSteps": 2048, "meanReturn": 21.5}"#).unwrap();
        assert_eq!(
            (sparse.env_steps, sparse.mean_return, sparse.update),
            (2048, Some(21.5), 0)
        );
        let newer = ProgressLine::parse(r#"{"envSteps": 64, "gradNorm": 0.5, "learningRate": 0.001}"#).unwrap();
        assert_eq!((newer.env_steps, newer.stats.learning_rate), (64, 0.001));
    }
}
