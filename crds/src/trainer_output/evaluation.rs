//! The trainer's evaluation: a model played for a number of episodes on a seed. The operator's
//! verifier runs it on a seed the worker could not know and pays or fails the attempt on its mean
//! return; the CLI shows it.

use std::fmt;
use std::str::FromStr;

use drlaas_envs::EnvDescriptor;
use serde::{Deserialize, Serialize};

use super::{fit_termination_log, lenient};
use crate::Algorithm;

/// Outcome of an evaluation. The verdict reads the mean return, the episodes and the seed; the
/// spread and the lengths may be absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    /// Mean team return.
    pub mean_return: f64,
    /// Standard deviation of the returns.
    #[serde(default)]
    pub std_return: f64,
    /// Episodes played.
    pub episodes: u32,
    /// Mean episode length.
    #[serde(default)]
    pub mean_length: f64,
    /// Evaluation seed.
    pub seed: u64,
}

/// What `drlaas-trainer evaluate` prints and writes to its termination log: the [`Evaluation`] and
/// what was evaluated, where and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationReport {
    #[serde(flatten)]
    pub evaluation: Evaluation,
    /// The model evaluated, as given on the command line (a CID, or a path): the verifier checks it
    /// is the one submitted on chain.
    pub model: String,
    /// The environment played (the model's own). The verifier requires it to be the task's; `None`
    /// when this reader cannot read it (a newer trainer's environment parameters), which fails
    /// verification with that reason, since what was played cannot be checked.
    #[serde(deserialize_with = "lenient", default)]
    pub environment: Option<EnvDescriptor>,
    /// Device the network ran on (`cpu`, `cuda:0`).
    #[serde(default)]
    pub device: String,
    /// How actions were chosen; `None` when this reader does not know the mode.
    #[serde(deserialize_with = "lenient", default)]
    pub policy: Option<ActionSelection>,
    /// Mean return of uniformly random actions on the same environment, seed and number of
    /// episodes: the baseline the model is compared with. `None` when the evaluation was itself of
    /// random actions, or came from a trainer that does not measure it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_mean_return: Option<f64>,
}

impl EvaluationReport {
    /// The report as one line of JSON, as printed on stdout and written to the termination log (it
    /// is far below the limit; cut to it all the same).
    pub fn to_json_line(&self) -> String {
        fit_termination_log(serde_json::to_string(self).expect("an evaluation serializes"))
    }
}

/// How a network's outputs become actions during evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionSelection {
    /// The highest output (Q-values; deterministic policies), or a Gaussian policy's mean.
    Greedy,
    /// A sample from softmax(logits), or from a Gaussian policy, seeded (stochastic policies: PPO's
    /// argmax can loop forever in a maze that its sampled policy clears).
    Sample,
    /// Uniformly random actions, ignoring the network: the baseline to compare a model with.
    Random,
}

impl ActionSelection {
    /// Every mode, as the command line lists them.
    pub const ALL: [Self; 3] = [Self::Greedy, Self::Sample, Self::Random];

    /// How a model trained by `algorithm` acts: PPO samples its policy over discrete actions and
    /// takes the mean of its Gaussian over `continuous` ones (the noise is for exploring), DQN is
    /// greedy.
    pub fn for_model(algorithm: Algorithm, continuous: bool) -> Self {
        match algorithm {
            Algorithm::Ppo if continuous => Self::Greedy,
            Algorithm::Ppo => Self::Sample,
            Algorithm::Dqn => Self::Greedy,
        }
    }

    /// The name, as in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Greedy => "greedy",
            Self::Sample => "sample",
            Self::Random => "random",
        }
    }
}

impl fmt::Display for ActionSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ActionSelection {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not an action selection (greedy, sample or random)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> EvaluationReport {
        EvaluationReport {
            evaluation: Evaluation {
                mean_return: 20.5,
                std_return: 3.0,
                episodes: 100,
                mean_length: 20.5,
                seed: 7,
            },
            model: "bafy1".into(),
            environment: Some(serde_json::from_str(r#"{"kind": "cartpole"}"#).unwrap()),
            device: "cpu".into(),
            policy: Some(ActionSelection::Sample),
            random_mean_return: Some(22.0),
        }
    }

    /// The keys are the contract with readers outside this workspace; a rename must be deliberate.
    #[test]
    fn the_wire_keys_are_the_documented_ones() {
        let json: serde_json::Value = serde_json::from_str(&report().to_json_line()).unwrap();
        let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "device",
                "environment",
                "episodes",
                "meanLength",
                "meanReturn",
                "model",
                "policy",
                "randomMeanReturn",
                "seed",
                "stdReturn"
            ]
        );
        assert_eq!(
            (&json["policy"], &json["environment"]["kind"]),
            (&"sample".into(), &"cartpole".into())
        );
        assert_eq!(serde_json::from_value::<EvaluationReport>(json).unwrap(), report());
    }

    #[test]
    fn what_the_verdict_does_not_need_is_read_leniently() {
        // Foreign input: a newer trainer's environment parameter and action selection.
        let mut json = serde_json::to_value(report()).unwrap();
        json["environment"]["gravityWells"] = 3.into();
        json["policy"] = "beam-search".into();
        let read: EvaluationReport = serde_json::from_value(json).unwrap();
        assert_eq!((read.environment, read.policy), (None, None));
        assert_eq!(read.evaluation, report().evaluation);
    }

    #[test]
    fn action_selections_read_back_their_names() {
        for a in ActionSelection::ALL {
            assert_eq!(a.to_string().parse::<ActionSelection>(), Ok(a));
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
        assert!("best".parse::<ActionSelection>().is_err());
    }
}
