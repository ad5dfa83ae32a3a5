//! What the trainer and the evaluator report (docs/architecture.md#the-trainer-contract): their
//! termination messages and the trainer's progress lines, read with the types the trainer writes
//! them with (`drlaas_crds::trainer_output`). Those types ignore fields they do not know, so a newer
//! trainer image with more fields still works.

use drlaas_crds::task::Progress;
use drlaas_crds::trainer_output::{EvaluationReport, ProgressLine, ReportError, TrainResult, read_report};
use drlaas_envs::EnvDescriptor;

/// A trainer that exited 0: its result and the model it stored, or why its message is unusable.
pub fn trained_model(message: &str) -> Result<(TrainResult, String), String> {
    let result: TrainResult = read_report(message).map_err(|e| match e {
        ReportError::Failed(error) => format!("the trainer failed: {error}"),
        ReportError::Unreadable(e) => format!("the trainer's termination message is not its result JSON: {e}"),
    })?;
    let cid = result
        .model_cid
        .clone()
        .filter(|c| !c.is_empty())
        .ok_or("the trainer reported no model CID: the model was not stored")?;
    Ok((result, cid))
}

/// What an evaluator measured: the model's mean return, and random actions' on the same seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    pub mean_return: f64,
    /// `None` from an evaluator that does not measure the baseline.
    pub random_mean_return: Option<f64>,
}

/// An evaluator that exited 0: what it measured on `seed`, or why its message is unusable (which
/// makes the verdict `WrongModel`: nothing trustworthy was evaluated). The evaluator plays the
/// environment the model was trained on (its manifest's); that must be the task's `environment`,
/// or a worker could train on an easier variant and be judged on it.
pub fn evaluated_return(
    message: &str,
    model_cid: &str,
    seed: u64,
    environment: &EnvDescriptor,
) -> Result<Measured, String> {
    let report: EvaluationReport = read_report(message).map_err(|e| match e {
        ReportError::Failed(error) => format!("the evaluation failed: {error}"),
        ReportError::Unreadable(e) => {
            format!("the evaluator's termination message is not its evaluation JSON: {e}")
        }
    })?;
    if report.model != model_cid || report.evaluation.seed != seed {
        return Err(format!(
            "the evaluation is of {} on seed {}, not of {model_cid} on seed {seed}",
            report.model, report.evaluation.seed
        ));
    }
    match &report.environment {
        Some(played) if played == environment => {}
        Some(played) => {
            return Err(format!(
                "the model was trained on {}, not on the task's environment {}",
                serde_json::to_string(played).unwrap_or_default(),
                serde_json::to_string(environment).unwrap_or_default()
            ));
        }
        None => {
            return Err(
                "the evaluation does not say which environment it played (a trainer this operator cannot read)".into(),
            );
        }
    }
    Ok(Measured {
        mean_return: report.evaluation.mean_return,
        random_mean_return: report.random_mean_return.filter(|r| r.is_finite()),
    })
}

/// A running trainer's progress for the task's status, from the latest progress line of its log
/// (`None` before the first), with the time left at its current speed.
pub fn training_progress(log: &str, total_env_steps: u64) -> Option<Progress> {
    let line = ProgressLine::last_in(log)?;
    let left = total_env_steps.saturating_sub(line.env_steps);
    Some(Progress {
        env_steps: line.env_steps,
        total_env_steps,
        mean_return: line.mean_return,
        sps: line.sps,
        eta_seconds: (line.sps > 0.0).then(|| (left as f64 / line.sps).ceil() as u64),
    })
}

/// A finished trainer's progress for the task's status, from its result.
pub fn finished_progress(result: &TrainResult, total_env_steps: u64) -> Progress {
    Progress {
        env_steps: result.env_steps,
        total_env_steps,
        mean_return: Some(result.mean_return),
        sps: result.sps,
        eta_seconds: Some(0),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use drlaas_crds::trainer_output::{Evaluation, FailureReport, UpdateStats};

    use super::*;

    /// The environment of the tests' task (and of the models their evaluations played).
    pub(crate) fn cartpole() -> EnvDescriptor {
        serde_json::from_str(r#"{"kind": "cartpole"}"#).unwrap()
    }

    pub(crate) fn result(model_cid: Option<&str>) -> TrainResult {
        TrainResult {
            model_cid: model_cid.map(str::to_string),
            model_path: "/work/out/model.safetensors".into(),
            model_sha256: "ab".repeat(32),
            mean_return: 21.5,
            eval_episodes: 10,
            train_mean_return: Some(19.0),
            env_steps: 640,
            train_episodes: 30,
            wall_seconds: 0.7,
            sps: 900.0,
            device: "cpu".into(),
            target_reached: None,
            checkpoint_cids: Vec::new(),
            checkpoint_paths: Vec::new(),
            parent_model_cid: None,
            warm_start: None,
        }
    }

    pub(crate) fn evaluation(model: &str, seed: u64, mean_return: f64) -> String {
        EvaluationReport {
            evaluation: Evaluation {
                mean_return,
                std_return: 1.0,
                episodes: 100,
                mean_length: mean_return,
                seed,
            },
            model: model.into(),
            environment: Some(cartpole()),
            device: "cpu".into(),
            policy: None,
            random_mean_return: Some(mean_return / 4.0),
        }
        .to_json_line()
    }

    pub(crate) fn failure(error: &str) -> String {
        FailureReport { error: error.into() }.termination_log()
    }

    #[test]
    fn a_result_needs_a_stored_model() {
        let (read, cid) = trained_model(&result(Some("bafy1")).termination_summary()).unwrap();
        assert_eq!((cid.as_str(), read), ("bafy1", result(Some("bafy1"))));
        assert!(
            trained_model(&result(None).termination_summary())
                .unwrap_err()
                .contains("no model CID")
        );
        assert!(
            trained_model(&failure("--task: no such file"))
                .unwrap_err()
                .contains("no such file")
        );
        assert!(trained_model("Killed").unwrap_err().contains("not its result JSON"));
    }

    #[test]
    fn an_evaluation_counts_only_for_the_model_and_seed_asked_for() {
        let msg = evaluation("bafy1", 7, 20.5);
        let task = cartpole();
        assert_eq!(
            evaluated_return(&msg, "bafy1", 7, &task),
            Ok(Measured {
                mean_return: 20.5,
                random_mean_return: Some(5.125)
            })
        );
        assert!(evaluated_return(&msg, "bafy2", 7, &task).is_err());
        assert!(evaluated_return(&msg, "bafy1", 8, &task).is_err());
        assert!(
            evaluated_return(&failure("not a model"), "bafy1", 7, &task)
                .unwrap_err()
                .contains("the evaluation failed: not a model")
        );
        // A model trained on another environment than the task's does not count, however well it
        // plays its own; nor does an evaluation that does not say what it played.
        let other: EnvDescriptor = serde_json::from_str(r#"{"kind": "cartpole", "horizon": 200}"#).unwrap();
        let err = evaluated_return(&msg, "bafy1", 7, &other).unwrap_err();
        assert!(
            err.contains(r#"trained on {"kind":"cartpole","horizon":500}, not on the task's environment {"kind":"cartpole","horizon":200}"#),
            "{err}"
        );
        let mut unnamed: EvaluationReport = serde_json::from_str(&msg).unwrap();
        unnamed.environment = None;
        assert!(evaluated_return(&unnamed.to_json_line(), "bafy1", 7, &task).is_err());
    }

    #[test]
    fn progress_comes_from_the_latest_progress_line() {
        let line = |env_steps, mean_return| ProgressLine {
            update: env_steps / 160,
            updates: 4,
            env_steps,
            episodes: 3,
            mean_return,
            sps: 160.0,
            wall_seconds: 1.0,
            stats: UpdateStats::default(),
        };
        let log = format!(
            "{}\n{}\nnot progress\n",
            line(160, None).to_json_line(),
            line(320, Some(12.5)).to_json_line()
        );
        assert_eq!(
            training_progress(&log, 640),
            Some(Progress {
                env_steps: 320,
                total_env_steps: 640,
                mean_return: Some(12.5),
                sps: 160.0,
                eta_seconds: Some(2),
            })
        );
        assert_eq!(training_progress("starting", 640), None);
        assert_eq!(
            finished_progress(&result(Some("bafy1")), 640),
            Progress {
                env_steps: 640,
                total_env_steps: 640,
                mean_return: Some(21.5),
                sps: 900.0,
                eta_seconds: Some(0),
            }
        );
    }
}
