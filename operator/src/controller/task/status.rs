//! The status writer: what one reconcile found out and did, written back to the task as its status
//! (by server-side apply) and as Events. The phase, the outcome and the conditions all come from
//! one [`TaskState`], the core's phase model, so they never disagree.

use drlaas_chain::TxOutcome;
use drlaas_crds::task::{DRLTask, DRLTaskStatus, TaskPhase};
use drlaas_crds::transactions::TxAction;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::super::conditions::condition;
use super::super::{Context, Error, FIELD_MANAGER};
use super::namespaced;
use super::observe::Observation;
use drlaas_core::lifecycle::{TaskState, phase_name};

/// Longest Event note: the API server refuses longer ones.
const MAX_NOTE: usize = 1024;

/// An Event to record: its type, reason and note.
type Note = (EventType, &'static str, String);

/// The status and Events of one task as one reconcile leaves them, written by [`StatusWriter::write`].
pub(super) struct StatusWriter<'a> {
    task: &'a DRLTask,
    /// The status being written; its phase, outcome and conditions are set from `state` when it is.
    pub status: DRLTaskStatus,
    state: TaskState,
    events: Vec<Note>,
}

impl<'a> StatusWriter<'a> {
    /// Starts from the status the task shows.
    pub fn new(task: &'a DRLTask) -> Self {
        let status = task.status.clone().unwrap_or_default();
        let state = TaskState {
            phase: status.phase.unwrap_or(TaskPhase::Pending),
            outcome: status.outcome,
        };
        StatusWriter {
            task,
            status,
            state,
            events: Vec::new(),
        }
    }

    /// Where the task is, as the status will show it.
    pub fn state(&self) -> TaskState {
        self.state
    }

    /// The task is now at `state` (a transaction this reconcile sent has moved it).
    pub fn set_state(&mut self, state: TaskState) {
        self.state = state;
    }

    /// Records what was observed: where the task is, its escrow, attempts, worker and model.
    pub fn observed(&mut self, seen: &Observation) {
        self.state = seen.state();
        self.status.budget_wei = Some(seen.info.budget.to_string());
        self.status.attempts = seen.attempt();
        if let Some(worker) = seen.worker_name() {
            self.status.worker = Some(worker);
        }
        if let Some(cid) = &seen.submitted_cid {
            self.status.model_cid = Some(cid.clone());
        }
    }

    /// An Event to record; its note is also the status's message.
    pub fn event(&mut self, type_: EventType, reason: &'static str, note: impl Into<String>) {
        let note = note.into();
        self.status.message = Some(note.clone());
        self.events.push((type_, reason, note));
    }

    /// A transaction that landed for `action`: its hash in the status, its gas in the metrics.
    pub fn tx(&mut self, ctx: &Context, action: TxAction, outcome: &TxOutcome) {
        ctx.health
            .metrics
            .chain_tx_gas
            .get_or_create(&crate::metrics::ActionLabels {
                action: action.name().split('-').next().unwrap_or_default().to_string(),
            })
            .observe(outcome.gas_used as f64);
        self.status
            .transactions
            .insert(action.to_string(), outcome.hash.to_string());
    }

    /// The worker of the current attempt failed it: recruitment does not offer it the task again.
    pub fn worker_failed(&mut self) {
        if let Some(worker) = self.status.worker.clone()
            && !self.status.failed_workers.contains(&worker)
        {
            self.status.failed_workers.push(worker);
        }
    }

    /// The status and Events to send, at time `now`.
    fn finish(mut self, now: Timestamp) -> (DRLTaskStatus, Vec<Note>) {
        let previous = self.task.status.clone().unwrap_or_default();
        self.status.phase = Some(self.state.phase);
        self.status.outcome = self.state.outcome;
        let message = self.status.message.clone().unwrap_or_default();
        let generation = self.task.metadata.generation;
        self.status.conditions = conditions(&previous.conditions, self.state, &message, generation, now);
        self.status.observed_generation = generation;
        if let Some(event) = phase_event(previous.phase, self.state, &message, &self.events) {
            self.events.insert(0, event);
        }
        (self.status, self.events)
    }

    /// Writes the status, if it changed, and records the Events.
    pub async fn write(self, ctx: &Context) -> Result<(), Error> {
        let task = self.task;
        let previous = task.status.clone().unwrap_or_default();
        let (status, events) = self.finish(Timestamp::now());
        let uid = task.uid().unwrap_or_default();
        if status != previous && !ctx.caches.already_applied(&uid, &status) {
            let patch = json!({"apiVersion": "drlaas.io/v1alpha1", "kind": "DRLTask", "status": status});
            namespaced::<DRLTask>(ctx, task)
                .patch_status(
                    &task.name_any(),
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&patch),
                )
                .await?;
            ctx.caches.applied(&uid, Some(&status));
        }
        if events.is_empty() {
            return Ok(());
        }
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: None,
        };
        let recorder = Recorder::new(ctx.client.clone(), reporter);
        let reference = task.object_ref(&());
        for (type_, reason, note) in events {
            let event = Event {
                type_,
                reason: reason.into(),
                note: Some(truncate(note, MAX_NOTE)),
                action: "Reconcile".into(),
                secondary: None,
            };
            if let Err(e) = recorder.publish(&event, &reference).await {
                tracing::warn!(task = %task.name_any(), error = %e, "could not record an Event");
            }
        }
        Ok(())
    }
}

/// The status conditions of a task at `state`, keeping each one's transition time from `previous`
/// while its status does not change.
fn conditions(
    previous: &[Condition],
    state: TaskState,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    state
        .conditions()
        .iter()
        .map(|c| condition(previous, c.type_, c.status, c.reason, message, generation, now))
        .collect()
}

/// The Event of a phase change, when the reconcile recorded none of its own: a more specific one
/// (`Posted`, `WorkerAssigned`, ...) already says it, and every Event is a request to the API
/// server. A task that ended unpaid gets a Warning.
fn phase_event(previous: Option<TaskPhase>, state: TaskState, message: &str, recorded: &[Note]) -> Option<Note> {
    if previous == Some(state.phase) || !recorded.is_empty() {
        return None;
    }
    let type_ = if state.ended_unpaid() {
        EventType::Warning
    } else {
        EventType::Normal
    };
    Some((type_, phase_name(state.phase), message.to_string()))
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use drlaas_core::lifecycle::Outcome;
    use drlaas_core::next_step::PodState;
    use drlaas_core::settlement::ChainStatus;

    fn task(status: serde_json::Value) -> DRLTask {
        serde_json::from_value(json!({
            "apiVersion": "drlaas.io/v1alpha1", "kind": "DRLTask",
            "metadata": {"name": "t", "namespace": "team-a", "generation": 2},
            "spec": {"training": {"environment": {"kind": "cartpole"}}},
            "status": status,
        }))
        .unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn phase_outcome_and_conditions_come_from_one_state() {
        let task = task(json!({"phase": "Verifying", "attempts": 1}));
        let mut writer = StatusWriter::new(&task);
        assert_eq!(writer.state().phase, TaskPhase::Verifying);
        writer.set_state(TaskState::observed(ChainStatus::Failed, &PodState::Absent));
        let (status, events) = writer.finish(at("2026-01-01T00:00:00Z"));
        assert_eq!(
            (status.phase, status.outcome),
            (Some(TaskPhase::Settled), Some(Outcome::Refunded))
        );
        assert_eq!(status.observed_generation, Some(2));
        let shown: Vec<_> = status
            .conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                ("EscrowFunded", "True", "EscrowFunded"),
                ("WorkerAssigned", "False", "NotYet"),
                ("Training", "False", "NotYet"),
                ("Verifying", "False", "NotYet"),
                ("Settled", "True", "Settled"),
            ]
        );
        // Settled without pay, and nothing more specific said: a Warning named after the phase.
        assert_eq!(events.len(), 1);
        assert_eq!((&events[0].0, events[0].1), (&EventType::Warning, "Settled"));
    }

    #[test]
    fn a_specific_event_replaces_the_phase_change_event() {
        let task = task(json!({"phase": "Funded"}));
        let mut writer = StatusWriter::new(&task);
        writer.set_state(TaskState::observed(ChainStatus::Assigned, &PodState::Absent));
        writer.event(EventType::Normal, "WorkerAssigned", "lab-a recruited");
        let (status, events) = writer.finish(at("2026-01-01T00:00:00Z"));
        assert_eq!(status.phase, Some(TaskPhase::Assigned));
        assert_eq!(status.message.as_deref(), Some("lab-a recruited"));
        assert_eq!(events.iter().map(|e| e.1).collect::<Vec<_>>(), ["WorkerAssigned"]);
    }

    #[test]
    fn an_unchanged_phase_keeps_its_conditions_transition_times() {
        let first = {
            let task = task(json!({}));
            let mut writer = StatusWriter::new(&task);
            writer.set_state(TaskState::observed(ChainStatus::Posted, &PodState::Absent));
            writer.finish(at("2026-01-01T00:00:00Z")).0
        };
        let task = task(serde_json::to_value(&first).unwrap());
        let mut writer = StatusWriter::new(&task);
        writer.set_state(TaskState::observed(ChainStatus::Posted, &PodState::Absent));
        let (again, events) = writer.finish(at("2026-01-01T01:00:00Z"));
        assert_eq!(again.conditions, first.conditions);
        assert!(events.is_empty(), "no phase change, no Event");
    }

    #[test]
    fn a_failed_worker_is_recorded_once_and_notes_are_cut_on_a_character() {
        let task = task(json!({"worker": "lab-a", "failedWorkers": ["lab-a"]}));
        let mut writer = StatusWriter::new(&task);
        writer.worker_failed();
        assert_eq!(writer.status.failed_workers, ["lab-a"]);
        assert_eq!(truncate("aé".into(), 2), "a");
        assert_eq!(truncate("abc".into(), 5), "abc");
    }
}
