//! Recruitment of many tasks in one pass.
//!
//! When a funded task asks for a worker, [`Recruiter::choose`] runs [`assign`] over every funded
//! task in the watch cache at once and keeps the answer for each as a hold on its worker's
//! capacity. The reconciles of the other tasks then take their hold without a pass of their own,
//! and every task sends its `assign` transaction concurrently with the others (the chain client
//! gives each its own nonce). So the number of passes grows with the batches in which tasks
//! arrive, not with the tasks, and no reconcile waits for another's transaction.
//!
//! A hold counts against its worker until the watch cache shows the task holding that worker
//! (its status names the worker in phase Assigned or later), so two passes never give the same
//! free slot twice even while the cache is a moment behind. A hold that is not taken within
//! [`UNTAKEN`] (its task was deleted) or whose transaction failed is dropped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drlaas_crds::task::{DRLTask, TaskPhase};
use drlaas_crds::worker::Worker;
use kube::ResourceExt;
use tokio::sync::Mutex;

use super::{Context, Error};
use crate::core::admission::{ChainRecord, parse_wei, task_demand, task_resources, worker_offer};
use crate::core::recruitment::{Resources, assign};

/// How long a hold waits for its task's reconcile to take it.
pub const UNTAKEN: Duration = Duration::from_secs(60);
/// How long a taken hold waits for the cache to show the assignment (a safety net: the cache
/// normally shows it within a second).
const UNSEEN: Duration = Duration::from_secs(600);

/// The recruiter of one operator process (the leader's).
#[derive(Debug, Default)]
pub struct Recruiter {
    book: Mutex<Book>,
}

/// Capacity promised by passes and not yet visible in the cache, by task (`namespace/name`).
#[derive(Debug, Default)]
struct Book {
    holds: HashMap<String, Hold>,
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
        let mut book = self.book.lock().await;
        if let Some(hold) = book.holds.get_mut(&this)
            && !hold.taken
            && hold.made.elapsed() < UNTAKEN
        {
            hold.taken = true;
            return Ok(Choice::Assign {
                worker: hold.worker.clone(),
                qos: hold.qos,
            });
        }
        let tasks = ctx.caches.tasks(&ctx.client, &ctx.settings.scope).await?;
        let workers = ctx.caches.workers(&ctx.client).await?;
        book.forget(&tasks);
        book.holds.remove(&this);

        let decisions = pass(&tasks, &workers, &book, task, &this, budget);
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

impl Book {
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
/// registered Worker, with what assigned tasks and holds already take counted. Each decision comes
/// with the resources its task asks for.
fn pass(
    tasks: &[Arc<DRLTask>],
    workers: &[Arc<Worker>],
    book: &Book,
    this_task: &DRLTask,
    this: &str,
    budget: u128,
) -> Vec<(crate::core::recruitment::Decision, Resources)> {
    let mut in_use: BTreeMap<String, (Resources, u32)> = BTreeMap::new();
    let mut take = |worker: &str, r: Resources| {
        let entry = in_use.entry(worker.to_string()).or_default();
        entry.0 = Resources {
            gpus: entry.0.gpus + r.gpus,
            cpu_millis: entry.0.cpu_millis + r.cpu_millis,
            memory_mib: entry.0.memory_mib + r.memory_mib,
        };
        entry.1 += 1;
    };
    for t in tasks.iter().filter(|t| task_key(t) != this) {
        if let (Some(worker), Ok(r)) = (holding(t), task_resources(&t.spec)) {
            take(worker, r);
        }
    }
    for hold in book.holds.values() {
        take(&hold.worker, hold.resources);
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
            let (used, running) = in_use.get(&w.name_any()).cloned().unwrap_or_default();
            worker_offer(w.name_any(), &w.spec, &record, used, running, Vec::new()).ok()
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
