//! Recruitment of many tasks in one pass.
//!
//! When a funded task asks for a worker, [`Recruiter::choose`] runs [`assign`] over every funded
//! task in the watch cache at once and keeps the answer for each as a hold on its worker's
//! capacity. The reconciles of the other tasks then take their hold without a pass of their own,
//! and every task sends its `assign` transaction concurrently with the others (the chain client
//! gives each its own nonce). So the number of passes grows with the batches in which tasks
//! arrive, not with the tasks, and no reconcile waits for another's transaction.
//!
//! Each worker comes with its models (the environments of its listings and completed tasks) from
//! [`Caches`](super::Caches), where the Worker controller keeps them current
//! ([`super::worker::refresh_models`]): a pass reads them from memory. Only a worker whose models
//! were never read in this process, or whose record shows a completed task or a listing they lack,
//! is read first, once, before the pass.
//!
//! A pass waits for the Worker controller's first look at each Worker (its status): a Worker without
//! one may be the best for the task, and a task given meanwhile to another worker stays there. The
//! wait is bounded by [`FIRST_CHECK`] per Worker, so a Worker whose reconcile keeps failing does not
//! hold recruitment up.
//!
//! A hold counts against its worker until the watch cache shows the task holding that worker
//! (its status names the worker in phase Assigned or later), so two passes never give the same
//! free slot twice even while the cache is a moment behind. A hold that is not taken within
//! [`UNTAKEN`] (its task was deleted) or whose transaction failed is dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drlaas_chain::alloy::primitives::Address;
use drlaas_crds::task::{DRLTask, TaskPhase};
use drlaas_crds::worker::Worker;
use drlaas_envs::descriptor::EnvDescriptor;
use futures::StreamExt;
use kube::ResourceExt;
use tokio::sync::Mutex;

use super::worker::{MODELS_MIN_INTERVAL, refresh_models};
use super::{Context, Error};
use drlaas_core::admission::{ChainRecord, parse_wei, task_demand, task_resources, worker_offer};
use drlaas_core::capacity::UsedCapacity;
use drlaas_core::recruitment::{Resources, assign};

/// How long a hold waits for its task's reconcile to take it.
pub const UNTAKEN: Duration = Duration::from_secs(60);
/// How long a taken hold waits for the cache to show the assignment (a safety net: the cache
/// normally shows it within a second).
const UNSEEN: Duration = Duration::from_secs(600);
/// How long passes wait for a new Worker's first status before they go on without it.
pub const FIRST_CHECK: Duration = Duration::from_secs(20);

/// The recruiter of one operator process (the leader's).
#[derive(Debug, Default)]
pub struct Recruiter {
    book: Mutex<Book>,
}

/// Capacity promised by passes and not yet visible in the cache, by task (`namespace/name`).
#[derive(Debug, Default)]
struct Book {
    holds: HashMap<String, Hold>,
    /// Workers without a status yet, with when a pass first saw them so.
    unchecked: HashMap<String, Instant>,
}

#[derive(Debug, Clone)]
struct Hold {
    worker: String,
    resources: Resources,
    qos: f64,
    made: Instant,
    taken: bool,
}

/// What recruitment says for one task.
#[derive(Debug, Clone, PartialEq)]
pub enum Choice {
    /// Assign this worker (its QoS for the task).
    Assign { worker: String, qos: f64 },
    /// No worker can take it now; why.
    Wait(String),
    /// These Workers have not been checked by the Worker controller yet: ask again in a moment.
    Unchecked(Vec<String>),
}

impl Choice {
    /// Why the task has no worker yet (empty for `Assign`), for its status message.
    pub fn reason(&self) -> String {
        match self {
            Choice::Assign { .. } => String::new(),
            Choice::Wait(why) => why.clone(),
            Choice::Unchecked(workers) => {
                format!("the Worker controller has not checked {} yet", workers.join(", "))
            }
        }
    }
}

/// `namespace/name`: how tasks are told apart in a pass.
pub fn task_key(task: &DRLTask) -> String {
    format!("{}/{}", task.namespace().unwrap_or_default(), task.name_any())
}

/// Whether `task`'s status shows it holding a worker's capacity (assigned or training).
fn holding(task: &DRLTask) -> Option<&str> {
    let status = task.status.as_ref()?;
    match status.phase {
        Some(TaskPhase::Assigned | TaskPhase::Training) => status.worker.as_deref(),
        _ => None,
    }
}

impl Recruiter {
    /// The worker for `task` (funded with `budget` wei), from a pass over every funded task or from
    /// the hold an earlier pass left for it. A returned worker is held for the task until
    /// [`Recruiter::release`] or until the cache shows the assignment.
    pub async fn choose(&self, ctx: &Context, task: &DRLTask, budget: u128) -> Result<Choice, Error> {
        let this = task_key(task);
        if let Some(choice) = self.book.lock().await.take_hold(&this) {
            return Ok(choice);
        }
        let workers = ctx.caches.workers(&ctx.client).await?;
        // Outside the book's lock: a read from chain here must not hold up other tasks' holds.
        let models = workers_models(ctx, &workers).await;
        let mut book = self.book.lock().await;
        // A pass that ran meanwhile may have decided for this task.
        if let Some(choice) = book.take_hold(&this) {
            return Ok(choice);
        }
        let unchecked = book.unchecked(&workers, Instant::now());
        if !unchecked.is_empty() {
            return Ok(Choice::Unchecked(unchecked));
        }
        let tasks = ctx.caches.tasks(&ctx.client, &ctx.settings.scope).await?;
        book.forget(&tasks);
        book.holds.remove(&this);

        let decisions = pass(&tasks, &workers, &models, &book, task, &this, budget);
        let mut choice = Choice::Wait("no registered Worker yet".into());
        for (decision, resources) in decisions {
            let Some((worker, qos)) = decision.assigned.clone() else {
                if decision.task == this {
                    choice = Choice::Wait(decision.summary());
                }
                continue;
            };
            let mine = decision.task == this;
            if mine {
                choice = Choice::Assign {
                    worker: worker.clone(),
                    qos: qos.total,
                };
            }
            book.holds.insert(
                decision.task,
                Hold {
                    worker,
                    resources,
                    qos: qos.total,
                    made: Instant::now(),
                    taken: mine,
                },
            );
        }
        Ok(choice)
    }

    /// The assignment of `task` did not happen (its transaction failed): its hold goes.
    pub async fn release(&self, task: &DRLTask) {
        self.book.lock().await.holds.remove(&task_key(task));
    }
}

/// The models of every registered Worker, by name: from the caches, after reading those that
/// must be read ([`super::cache::WorkerModels::needs_read`]; several at once). A worker whose read
/// fails keeps what was read before (nothing, the first time): the similarity term is a preference,
/// and recruitment must not wait for the chain to say it.
async fn workers_models(ctx: &Context, workers: &[Arc<Worker>]) -> HashMap<String, Arc<Vec<EnvDescriptor>>> {
    let registered: Vec<(String, Address, u32)> = workers
        .iter()
        .filter_map(|w| {
            let status = w.status.as_ref().filter(|s| s.registered)?;
            let address = w.spec.address.parse::<Address>().ok()?;
            Some((w.name_any(), address, status.completed_tasks))
        })
        .collect();
    let to_read: Vec<Address> = registered
        .iter()
        .filter(|(_, address, completed)| ctx.caches.models_need_read(*address, *completed, MODELS_MIN_INTERVAL).0)
        .map(|(_, address, _)| *address)
        .collect();
    futures::stream::iter(to_read)
        .for_each_concurrent(8, |address| async move {
            if let Err(e) = refresh_models(ctx, address).await {
                tracing::warn!(worker = %address, kind = e.kind(), error = %e, "recruitment without the worker's latest models");
            }
        })
        .await;
    registered
        .into_iter()
        .map(|(name, address, _)| (name, ctx.caches.models_of(address)))
        .collect()
}

impl Book {
    /// Takes the hold an earlier pass left for task `key`, if any is still good.
    fn take_hold(&mut self, key: &str) -> Option<Choice> {
        let hold = self.holds.get_mut(key)?;
        if hold.taken || hold.made.elapsed() >= UNTAKEN {
            return None;
        }
        hold.taken = true;
        Some(Choice::Assign {
            worker: hold.worker.clone(),
            qos: hold.qos,
        })
    }

    /// The Workers a pass at `now` waits for: those without a status, first seen so less than
    /// [`FIRST_CHECK`] ago. Forgets the ones that have a status now or are gone.
    fn unchecked(&mut self, workers: &[Arc<Worker>], now: Instant) -> Vec<String> {
        let without_status: Vec<String> = workers
            .iter()
            .filter(|w| w.status.is_none())
            .map(|w| w.name_any())
            .collect();
        self.unchecked.retain(|name, _| without_status.contains(name));
        without_status
            .into_iter()
            .filter(|name| {
                let since = *self.unchecked.entry(name.clone()).or_insert(now);
                now.saturating_duration_since(since) < FIRST_CHECK
            })
            .collect()
    }

    /// Drops the holds the cache now shows (the task holds its worker, or has moved on) and the
    /// stale ones.
    fn forget(&mut self, tasks: &[Arc<DRLTask>]) {
        let phases: HashMap<String, (Option<TaskPhase>, Option<&str>)> = tasks
            .iter()
            .map(|t| {
                let status = t.status.as_ref();
                (
                    task_key(t),
                    (status.and_then(|s| s.phase), status.and_then(|s| s.worker.as_deref())),
                )
            })
            .collect();
        self.holds.retain(|key, hold| {
            let shown = phases.get(key).is_some_and(|(phase, worker)| {
                phase.is_some_and(|p| p >= TaskPhase::Assigned) && *worker == Some(hold.worker.as_str())
            });
            let stale = if hold.taken {
                hold.made.elapsed() > UNSEEN
            } else {
                hold.made.elapsed() > UNTAKEN
            };
            !shown && !stale
        });
    }
}

/// One pass: every funded task without a hold (and `this`, funded with `budget`) against every
/// registered Worker with its `models`, with what assigned tasks and holds already take counted.
/// Each decision comes with the resources its task asks for.
fn pass(
    tasks: &[Arc<DRLTask>],
    workers: &[Arc<Worker>],
    models: &HashMap<String, Arc<Vec<EnvDescriptor>>>,
    book: &Book,
    this_task: &DRLTask,
    this: &str,
    budget: u128,
) -> Vec<(drlaas_core::recruitment::Decision, Resources)> {
    let mut in_use = UsedCapacity::default();
    for t in tasks.iter().filter(|t| task_key(t) != this) {
        if let (Some(worker), Ok(r)) = (holding(t), task_resources(&t.spec)) {
            in_use.hold(worker, r);
        }
    }
    for hold in book.holds.values() {
        in_use.hold(&hold.worker, hold.resources);
    }
    let offers: Vec<_> = workers
        .iter()
        .filter_map(|w| {
            let status = w.status.as_ref().filter(|s| s.registered)?;
            let record = ChainRecord {
                reputation: status.reputation.unwrap_or_default(),
                completed: status.completed_tasks,
                failed: status.failed_tasks,
            };
            let name = w.name_any();
            let (used, running) = in_use.of(&name);
            let own = models.get(&name).map(|m| m.to_vec()).unwrap_or_default();
            worker_offer(name, &w.spec, &record, used, running, own).ok()
        })
        .collect();

    let admitted = |t: &DRLTask| {
        t.metadata
            .creation_timestamp
            .as_ref()
            .map_or(0, |ts| ts.0.as_second().max(0) as u64)
    };
    let mut demands = Vec::new();
    let mut resources = HashMap::new();
    let this_in_cache = tasks.iter().any(|t| task_key(t) == this);
    let candidates = tasks
        .iter()
        .map(|t| t.as_ref())
        .chain((!this_in_cache).then_some(this_task));
    for t in candidates {
        let key = task_key(t);
        let mine = key == this;
        let funded = t.status.as_ref().and_then(|s| s.phase) == Some(TaskPhase::Funded);
        if !(mine || funded) || t.metadata.deletion_timestamp.is_some() || book.holds.contains_key(&key) {
            continue;
        }
        // This task's status may be older than the chain record its reconcile just read.
        let source = if mine { this_task } else { t };
        let status = source.status.clone().unwrap_or_default();
        let task_budget = if mine {
            budget
        } else {
            status
                .budget_wei
                .as_deref()
                .and_then(|b| parse_wei(b).ok())
                .unwrap_or_default()
        };
        if let Ok(d) = task_demand(
            key.clone(),
            &source.spec,
            task_budget,
            admitted(source),
            status.failed_workers,
        ) {
            resources.insert(key, d.resources);
            demands.push(d);
        }
    }
    assign(&demands, &offers)
        .into_iter()
        .map(|d| {
            let r = resources.get(&d.task).copied().unwrap_or_default();
            (d, r)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use drlaas_crds::worker::WorkerStatus;
    use serde_json::json;

    fn worker(name: &str, checked: bool) -> Arc<Worker> {
        let mut w: Worker = serde_json::from_value(json!({
            "apiVersion": "drlaas.io/v1alpha1", "kind": "Worker",
            "metadata": {"name": name},
            "spec": {"address": "0x0000000000000000000000000000000000000001",
                     "capacity": {"cpuCores": 1, "memoryGib": 1},
                     "pricePerTaskWei": "1", "keySecretRef": {"name": "k"}},
        }))
        .unwrap();
        w.status = checked.then(WorkerStatus::default);
        Arc::new(w)
    }

    #[test]
    fn a_pass_waits_for_a_worker_s_first_status_but_not_forever() {
        let mut book = Book::default();
        let start = Instant::now();
        let workers = [worker("a", true), worker("b", false)];
        assert_eq!(book.unchecked(&workers, start), ["b"]);
        assert_eq!(book.unchecked(&workers, start + FIRST_CHECK / 2), ["b"]);
        // Still without a status after FIRST_CHECK: passes go on without it.
        assert!(book.unchecked(&workers, start + FIRST_CHECK).is_empty());
        // Once checked it is forgotten; a new Worker gets its own wait.
        let workers = [worker("a", true), worker("b", true), worker("c", false)];
        let later = start + FIRST_CHECK * 2;
        assert_eq!(book.unchecked(&workers, later), ["c"]);
        assert_eq!(book.unchecked.keys().collect::<Vec<_>>(), ["c"]);
    }
}
