//! Verification decisions (docs/architecture.md#verification): the evaluation a submitted model gets and its verdict.
//!
//! The worker must not be able to tune its model to the evaluation, so the evaluation's seed comes
//! from the hash of a block mined after the result was submitted ([`SEED_BLOCK_DELAY`] blocks later):
//! unknown when the worker trained, and the same for every verifier that checks it afterwards.

use drlaas_crds::task::Evaluation;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::reports::Measured;

/// Blocks between the submission and the block whose hash seeds the evaluation.
pub const SEED_BLOCK_DELAY: u64 = 2;
/// Fewest episodes a verification plays, whatever the task asks for (fewer make the mean noisy).
pub const MIN_EPISODES: u32 = 100;

/// The block whose hash seeds the evaluation of a result submitted in `submitted_block`.
pub fn seed_block(submitted_block: u64) -> u64 {
    submitted_block + SEED_BLOCK_DELAY
}

/// The evaluation seed for on-chain task `task_id`, from the hash of its seed block. Different tasks
/// seeded by the same block get different seeds.
pub fn evaluation_seed(block_hash: &[u8; 32], task_id: u64) -> u64 {
    let digest = Sha256::new()
        .chain_update(b"drlaas/evaluation-seed/v1")
        .chain_update(block_hash)
        .chain_update(task_id.to_be_bytes())
        .finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("a sha256 digest has 8 bytes"))
}

/// Episodes the verifier plays for a task that asks for `eval_episodes`.
pub fn episodes(eval_episodes: u32) -> u32 {
    eval_episodes.max(MIN_EPISODES)
}

/// What the verifier concluded.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "verdict")]
pub enum Verdict {
    /// The model reaches the target on the verifier's own evaluation. `random_mean_return` is
    /// what random actions scored on the same seed (when the evaluator measured it).
    Pass {
        mean_return: f64,
        #[serde(default)]
        random_mean_return: Option<f64>,
    },
    /// It does not.
    Fail {
        mean_return: f64,
        target: f64,
        #[serde(default)]
        random_mean_return: Option<f64>,
    },
    /// The submitted CID is not the model the trainer reported (or cannot be fetched): nothing to
    /// evaluate, the attempt fails.
    WrongModel,
}

impl Verdict {
    /// Whether the worker is paid.
    pub fn passed(&self) -> bool {
        matches!(self, Verdict::Pass { .. })
    }
}

/// The verdict on a model whose evaluation measured `measured`, for a task whose target is
/// `target` (no target: any finite return passes, the task only asked for training to finish).
/// `submitted_cid` is what the worker put on chain, `reported_cid` what its trainer reported.
pub fn verdict(submitted_cid: &str, reported_cid: Option<&str>, measured: Measured, target: Option<f64>) -> Verdict {
    let Measured {
        mean_return,
        random_mean_return,
    } = measured;
    if reported_cid.is_some_and(|r| r != submitted_cid) || !mean_return.is_finite() {
        return Verdict::WrongModel;
    }
    match target {
        Some(target) if mean_return < target => Verdict::Fail {
            mean_return,
            target,
            random_mean_return,
        },
        _ => Verdict::Pass {
            mean_return,
            random_mean_return,
        },
    }
}

/// The evaluation the status shows for `verdict`, on a task that asks for `eval_episodes` and
/// whose result was submitted in `submitted_block`. A wrong model was not evaluated: its mean
/// return shows as 0.
pub fn evaluation(verdict: Verdict, eval_episodes: u32, submitted_block: Option<u64>) -> Evaluation {
    let (mean_return, random_mean_return) = match verdict {
        Verdict::Pass {
            mean_return,
            random_mean_return,
        }
        | Verdict::Fail {
            mean_return,
            random_mean_return,
            ..
        } if mean_return.is_finite() => (mean_return, random_mean_return),
        _ => (0.0, None),
    };
    Evaluation {
        mean_return,
        random_mean_return,
        episodes: episodes(eval_episodes),
        seed_block: submitted_block.map(seed_block).unwrap_or_default(),
        passed: verdict.passed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_depend_on_the_block_and_the_task() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_eq!(evaluation_seed(&a, 7), evaluation_seed(&a, 7));
        assert_ne!(evaluation_seed(&a, 7), evaluation_seed(&b, 7));
        assert_ne!(evaluation_seed(&a, 7), evaluation_seed(&a, 8));
        assert_eq!(seed_block(100), 102);
    }

    #[test]
    fn the_target_decides_and_a_swapped_model_fails() {
        let measured = |mean_return: f64| Measured {
            mean_return,
            random_mean_return: Some(9.0),
        };
        assert!(verdict("Qm1", Some("Qm1"), measured(21.0), Some(20.0)).passed());
        assert_eq!(
            verdict("Qm1", Some("Qm1"), measured(19.5), Some(20.0)),
            Verdict::Fail {
                mean_return: 19.5,
                target: 20.0,
                random_mean_return: Some(9.0)
            }
        );
        assert_eq!(
            verdict("Qm2", Some("Qm1"), measured(99.0), Some(20.0)),
            Verdict::WrongModel
        );
        assert_eq!(verdict("Qm1", None, measured(f64::NAN), None), Verdict::WrongModel);
        assert!(verdict("Qm1", None, measured(-3.0), None).passed());
        assert_eq!(episodes(10), 100);
        assert_eq!(episodes(500), 500);
    }

    #[test]
    fn the_status_shows_what_was_evaluated() {
        let passed = evaluation(
            Verdict::Pass {
                mean_return: 21.0,
                random_mean_return: Some(9.5),
            },
            10,
            Some(40),
        );
        assert_eq!(
            (
                passed.mean_return,
                passed.random_mean_return,
                passed.episodes,
                passed.seed_block,
                passed.passed
            ),
            (21.0, Some(9.5), 100, 42, true)
        );
        let wrong = evaluation(Verdict::WrongModel, 500, None);
        assert_eq!(
            (
                wrong.mean_return,
                wrong.random_mean_return,
                wrong.episodes,
                wrong.seed_block,
                wrong.passed
            ),
            (0.0, None, 500, 0, false)
        );
    }
}
