//! What the trainer and the evaluator report in their termination messages (DESIGN §5): the
//! operator reads only the fields it acts on, and tolerates any others, so a newer trainer image
//! with more fields still works.

use serde::Deserialize;

/// A trainer's termination message: its result, or `{"error": ...}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrainerReport {
    /// The stored model. A result without one cannot be submitted.
    #[serde(default)]
    pub model_cid: Option<String>,
    /// The trainer's own evaluation of the model.
    #[serde(default)]
    pub mean_return: Option<f64>,
    #[serde(default)]
    pub env_steps: u64,
    #[serde(default)]
    pub sps: f64,
    /// Why the trainer gave up.
    #[serde(default)]
    pub error: Option<String>,
}

/// An evaluator's termination message.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvaluatorReport {
    #[serde(default)]
    pub mean_return: Option<f64>,
    #[serde(default)]
    pub episodes: u32,
    #[serde(default)]
    pub seed: Option<u64>,
    /// The model it evaluated, as given on its command line.
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

/// A trainer that exited 0: the model it stored, or why its message is unusable.
pub fn trained_model(message: &str) -> Result<(TrainerReport, String), String> {
    let report: TrainerReport = serde_json::from_str(message.trim())
        .map_err(|e| format!("the trainer's termination message is not its result JSON: {e}"))?;
    if let Some(error) = &report.error {
        return Err(format!("the trainer failed: {error}"));
    }
    let cid = report
        .model_cid
        .clone()
        .filter(|c| !c.is_empty())
        .ok_or("the trainer reported no modelCid: the model was not stored")?;
    Ok((report, cid))
}

/// An evaluator that exited 0: the mean return it measured on `seed`, or why its message is
/// unusable (which makes the verdict `WrongModel`: nothing trustworthy was evaluated).
pub fn evaluated_return(message: &str, model_cid: &str, seed: u64) -> Result<f64, String> {
    let report: EvaluatorReport = serde_json::from_str(message.trim())
        .map_err(|e| format!("the evaluator's termination message is not its evaluation JSON: {e}"))?;
    if let Some(error) = report.error {
        return Err(format!("the evaluation failed: {error}"));
    }
    if report.model.as_deref() != Some(model_cid) || report.seed != Some(seed) {
        return Err(format!(
            "the evaluation is of {:?} on seed {:?}, not of {model_cid} on seed {seed}",
            report.model, report.seed
        ));
    }
    report
        .mean_return
        .ok_or_else(|| "the evaluation has no meanReturn".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_needs_a_stored_model() {
        let (report, cid) =
            trained_model(r#"{"modelCid":"bafy1","meanReturn":21.5,"envSteps":640,"sps":900.0,"device":"cpu"}"#)
                .unwrap();
        assert_eq!(
            (cid.as_str(), report.mean_return, report.env_steps),
            ("bafy1", Some(21.5), 640)
        );
        assert!(
            trained_model(r#"{"meanReturn":1.0}"#)
                .unwrap_err()
                .contains("no modelCid")
        );
        assert!(
            trained_model(r#"{"error":"--task: no such file"}"#)
                .unwrap_err()
                .contains("no such file")
        );
        assert!(trained_model("Killed").unwrap_err().contains("not its result JSON"));
    }

    #[test]
    fn an_evaluation_counts_only_for_the_model_and_seed_asked_for() {
        let msg = r#"{"meanReturn":20.5,"episodes":100,"seed":7,"model":"bafy1","device":"cpu"}"#;
        assert_eq!(evaluated_return(msg, "bafy1", 7), Ok(20.5));
        assert!(evaluated_return(msg, "bafy2", 7).is_err());
        assert!(evaluated_return(msg, "bafy1", 8).is_err());
        assert!(evaluated_return(r#"{"error":"not a model"}"#, "bafy1", 7).is_err());
    }
}
