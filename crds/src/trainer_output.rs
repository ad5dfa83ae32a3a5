//! What the trainer image prints and writes, defined once for its writer (the `drlaas-trainer`
//! binary) and for every reader (the operator's core, the local mode, the CLI, the benches), so that
//! a field renamed on one side cannot go unnoticed on the other (docs/architecture.md#the-trainer-contract).
//!
//! - [`ProgressLine`]: one JSON line per iteration (`--progress json`), in the trainer pod's log.
//! - [`TrainResult`]: `train`'s result, last on stdout and in `result.json`; its
//!   [`TrainResult::termination_summary`] goes to the termination log, where the operator reads it.
//! - [`EvaluationReport`]: `evaluate`'s output, on stdout and in the evaluator's termination log.
//! - [`FailureReport`]: what either writes to its termination log when it fails.
//! - [`ModelManifest`]: what a model file says about itself, in its safetensors metadata under
//!   [`MANIFEST_KEY`].
//!
//! How readers tolerate other trainer versions: fields they do not know are ignored (no
//! `deny_unknown_fields` in these types), so an operator keeps working with a newer trainer image
//! that reports more, and optional and list fields may be absent. The evaluation decides whether a
//! worker is paid, so there more is tolerated: what the verdict does not use may be absent, and a
//! field whose type grows with the trainer (an environment descriptor, an action-selection mode)
//! reads as `None` when this reader cannot read it, rather than rejecting the report as unreadable.
//! The verdict does use the environment (it must be the task's), so an unreadable one fails
//! verification with that reason.

mod evaluation;
mod manifest;
mod progress;
mod result;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

pub use evaluation::{ActionSelection, Evaluation, EvaluationReport};
pub use manifest::{MANIFEST_KEY, ModelManifest, ModelMetrics};
pub use progress::{ProgressLine, UpdateStats};
pub use result::{TargetReached, TrainResult, WarmStart};

/// The most of a termination log Kubernetes reads: 4 KiB.
pub const TERMINATION_LOG_LIMIT: usize = 4096;

/// Cuts `text` to [`TERMINATION_LOG_LIMIT`] bytes (at a character boundary). The writers shorten
/// their JSON first ([`TrainResult::termination_summary`], [`FailureReport::termination_log`]), so
/// this is the last resort.
pub fn fit_termination_log(mut text: String) -> String {
    if text.len() > TERMINATION_LOG_LIMIT {
        let mut end = TERMINATION_LOG_LIMIT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// What the trainer writes to its termination log when `train` or `evaluate` fails (with exit code
/// 1 or 2), instead of its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureReport {
    /// What went wrong, for a person.
    pub error: String,
}

impl FailureReport {
    /// `message` as a failure report, when it is one.
    pub fn from_message(message: &str) -> Option<Self> {
        serde_json::from_str(message.trim()).ok()
    }

    /// The report as one line of JSON that fits a termination log: a long message is shortened, so
    /// the JSON stays whole.
    pub fn termination_log(&self) -> String {
        let mut report = self.clone();
        loop {
            let text = serde_json::to_string(&report).expect("a failure report serializes");
            let over = text.len().saturating_sub(TERMINATION_LOG_LIMIT);
            if over == 0 || report.error.is_empty() {
                return fit_termination_log(text);
            }
            // Escapes can make the JSON longer than the message: cut at least what is over, then
            // check again.
            let mut keep = report.error.len().saturating_sub(over + 1);
            while !report.error.is_char_boundary(keep) {
                keep -= 1;
            }
            report.error.truncate(keep);
            report.error.push('…');
        }
    }
}

/// Why a termination message is not the report a reader expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The program said it failed: its [`FailureReport`]'s message.
    #[error("{0}")]
    Failed(String),
    /// Neither the expected report nor a failure report (a crash, a truncated message, another
    /// program's output).
    #[error("{0}")]
    Unreadable(String),
}

/// Reads a termination message that holds either a `T` (a [`TrainResult`], an
/// [`EvaluationReport`]) or a [`FailureReport`].
pub fn read_report<T: DeserializeOwned>(message: &str) -> Result<T, ReportError> {
    if let Some(failure) = FailureReport::from_message(message) {
        return Err(ReportError::Failed(failure.error));
    }
    serde_json::from_str(message.trim()).map_err(|e| ReportError::Unreadable(e.to_string()))
}

/// Deserializes a field a reader does not act on: a value it cannot read (a newer trainer's) is
/// `None` instead of an error for the whole report.
fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(deserializer: D) -> Result<Option<T>, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_report_is_told_apart_from_a_result() {
        let failure = FailureReport {
            error: "--task: no such file".into(),
        };
        let text = failure.termination_log();
        assert_eq!(FailureReport::from_message(&text), Some(failure));
        assert_eq!(
            read_report::<TrainResult>(&text),
            Err(ReportError::Failed("--task: no such file".into()))
        );
        assert!(matches!(
            read_report::<TrainResult>("Killed"),
            Err(ReportError::Unreadable(_))
        ));
        assert_eq!(FailureReport::from_message("Evicted"), None);
    }

    #[test]
    fn a_long_failure_stays_whole_json_in_the_termination_log() {
        let failure = FailureReport {
            error: "\"é\" ".repeat(2000),
        };
        let text = failure.termination_log();
        assert!(text.len() <= TERMINATION_LOG_LIMIT, "{}", text.len());
        let read = FailureReport::from_message(&text).expect("still JSON");
        assert!(read.error.ends_with('…') && failure.error.starts_with(read.error.trim_end_matches('…')));
    }

    #[test]
    fn fit_cuts_at_a_character_boundary() {
        let text = fit_termination_log("é".repeat(TERMINATION_LOG_LIMIT));
        assert_eq!(text.len(), TERMINATION_LOG_LIMIT);
        assert!(fit_termination_log("short".into()) == "short");
    }
}
