//! Status conditions that keep their `lastTransitionTime` while their status does not change, as
//! Kubernetes API conventions ask.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// A condition of `type_` with the given status, reason and message; its transition time is kept
/// from `previous` when the status is the same there, and is `now` otherwise.
pub fn condition(
    previous: &[Condition],
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    observed_generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if status { "True" } else { "False" };
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation,
        last_transition_time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transition_time_moves_only_when_the_status_does() {
        let t0: Timestamp = "2026-11-24T10:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-11-24T11:00:00Z".parse().unwrap();
        let first = condition(&[], "Registered", true, "Registered", "", Some(1), t0);
        let same = condition(
            std::slice::from_ref(&first),
            "Registered",
            true,
            "Registered",
            "again",
            Some(2),
            t1,
        );
        assert_eq!(same.last_transition_time, Time(t0));
        let flipped = condition(&[same], "Registered", false, "NotRegistered", "", Some(2), t1);
        assert_eq!(flipped.last_transition_time, Time(t1));
    }
}
