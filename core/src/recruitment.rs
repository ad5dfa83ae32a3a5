//! Recruitment (docs/architecture.md#recruitment): which worker trains which task.
//!
//! For a task `t` and a feasible worker `w`, every term in `[0, 1]`:
//!
//! `QoS(w, t) = 0.30·R + 0.25·E + 0.25·C + 0.10·S + 0.10·(1 − price/budget)`
//!
//! - `R`: the worker's on-chain reputation;
//! - `E`: its declared expertise level for the task's environment kind, discounted by its record:
//!   `level · (completed + 1) / (completed + failed + 1)` (no record: no discount);
//! - `C`: compute fit, the worker's estimated throughput for this task relative to the best feasible
//!   candidate's ([`estimated_throughput`]);
//! - `S`: the best [`similarity`] between the task's environment and the worker's own models (it can
//!   warm-start from them): the models it lists on the market and those of the tasks it completed
//!   ([`super::admission::WorkerHistory`]), 0 for a worker without any;
//! - the last term prefers cheaper workers, relative to what the task pays.
//!
//! [`assign`] is greedy over all pending tasks: highest budget first (then oldest, then id), each
//! takes its highest-QoS feasible worker and reserves that worker's capacity; ties go to the lower
//! price, then the lower worker id. The same inputs always give the same assignment, capacity is never
//! oversubscribed, and an infeasible worker is never chosen. A task left unassigned carries, per
//! worker, the reason it could not go there.

use std::collections::BTreeMap;
use std::fmt;

use drlaas_envs::descriptor::EnvDescriptor;
use serde::{Deserialize, Serialize};

use super::similarity::similarity;

/// Weights of the QoS terms (they sum to 1).
pub const WEIGHTS: QosWeights = QosWeights {
    reputation: 0.30,
    expertise: 0.25,
    compute: 0.25,
    similarity: 0.10,
    price: 0.10,
};

/// Weights of the QoS terms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QosWeights {
    pub reputation: f64,
    pub expertise: f64,
    pub compute: f64,
    pub similarity: f64,
    pub price: f64,
}

/// How much faster a GPU trains a convolutional policy than the CPU share a task gets (the research
/// drlaas reproduces measured up to 19×; this is a conservative planning figure).
pub const GPU_SPEEDUP_CNN: f64 = 8.0;
/// The same for a small MLP policy, where kernel launches dominate.
pub const GPU_SPEEDUP_MLP: f64 = 1.5;
/// Exponent of CPU scaling: `throughput ∝ cores^0.44` gives the measured 2.5× from 2 to 16 cores.
pub const CPU_SCALING: f64 = 0.44;

/// Resources a task's trainer pod asks for, or a worker has free.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// Whole GPUs.
    pub gpus: u32,
    /// CPU in millicores.
    pub cpu_millis: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
}

impl Resources {
    fn fits_in(&self, free: &Resources) -> Option<&'static str> {
        if self.gpus > free.gpus {
            Some("gpus")
        } else if self.cpu_millis > free.cpu_millis {
            Some("cpu")
        } else if self.memory_mib > free.memory_mib {
            Some("memory")
        } else {
            None
        }
    }

    fn take(&mut self, used: &Resources) {
        self.gpus -= used.gpus;
        self.cpu_millis -= used.cpu_millis;
        self.memory_mib -= used.memory_mib;
    }
}

/// A task waiting for a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDemand {
    /// Unique, stable id (orders ties).
    pub id: String,
    /// What to train on.
    pub environment: EnvDescriptor,
    /// Escrowed payment in wei.
    pub budget_wei: u128,
    /// Admission order: lower is older.
    pub admitted_seq: u64,
    /// What the trainer pod needs.
    pub resources: Resources,
    /// Lowest acceptable reputation, in `[0, 1]`.
    pub min_reputation: f64,
    /// Workers that already failed this task: a retry goes elsewhere.
    pub excluded: Vec<String>,
}

/// A worker's offer: what it is, what it has free now, what it charges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerOffer {
    /// Unique, stable id (its address or name; orders ties).
    pub id: String,
    /// On-chain reputation in `[0, 1]`.
    pub reputation: f64,
    /// Declared expertise level in `[0, 1]` per environment kind.
    pub expertise: BTreeMap<String, f64>,
    /// Tasks completed successfully.
    pub completed: u32,
    /// Tasks failed or expired.
    pub failed: u32,
    /// Price per task in wei.
    pub price_wei: u128,
    /// Free resources of its node pool now.
    pub free: Resources,
    /// Further tasks it accepts now (its concurrency limit minus running tasks).
    pub free_slots: u32,
    /// CPU cores of one node of its pool.
    pub node_cpu_cores: u32,
    /// Environments of the models it owns.
    pub models: Vec<EnvDescriptor>,
}

/// Why a worker cannot take a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "reason")]
pub enum Infeasible {
    /// It failed this task before.
    FailedBefore,
    /// It runs as many tasks as it accepts.
    NoFreeSlot,
    /// Not enough of a resource is free.
    NoCapacity { resource: String },
    /// It declares no expertise in the environment kind.
    NoExpertise { kind: String },
    /// Its price is above the task's budget.
    PriceAboveBudget { price_wei: String, budget_wei: String },
    /// Its reputation is below the task's minimum.
    ReputationTooLow { reputation: String, minimum: String },
}

impl fmt::Display for Infeasible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Infeasible::FailedBefore => write!(f, "failed this task before"),
            Infeasible::NoFreeSlot => write!(f, "runs as many tasks as it accepts"),
            Infeasible::NoCapacity { resource } => write!(f, "not enough free {resource}"),
            Infeasible::NoExpertise { kind } => write!(f, "no expertise in {kind}"),
            Infeasible::PriceAboveBudget { price_wei, budget_wei } => {
                write!(f, "price {price_wei} wei above the budget of {budget_wei} wei")
            }
            Infeasible::ReputationTooLow { reputation, minimum } => {
                write!(f, "reputation {reputation} below the minimum {minimum}")
            }
        }
    }
}

/// The terms of one worker's QoS for one task, and their weighted sum.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Qos {
    pub reputation: f64,
    pub expertise: f64,
    pub compute: f64,
    pub similarity: f64,
    pub price: f64,
    pub total: f64,
}

/// Checks whether `worker` can take `task` with what it has free.
pub fn feasible(worker: &WorkerOffer, task: &TaskDemand) -> Result<(), Infeasible> {
    if task.excluded.contains(&worker.id) {
        return Err(Infeasible::FailedBefore);
    }
    if worker.free_slots == 0 {
        return Err(Infeasible::NoFreeSlot);
    }
    if let Some(resource) = task.resources.fits_in(&worker.free) {
        return Err(Infeasible::NoCapacity {
            resource: resource.into(),
        });
    }
    let kind = task.environment.kind_name();
    if worker.expertise.get(kind).copied().unwrap_or(0.0) <= 0.0 {
        return Err(Infeasible::NoExpertise { kind: kind.into() });
    }
    if worker.price_wei > task.budget_wei {
        return Err(Infeasible::PriceAboveBudget {
            price_wei: worker.price_wei.to_string(),
            budget_wei: task.budget_wei.to_string(),
        });
    }
    if worker.reputation < task.min_reputation {
        return Err(Infeasible::ReputationTooLow {
            reputation: format!("{:.3}", worker.reputation),
            minimum: format!("{:.3}", task.min_reputation),
        });
    }
    Ok(())
}

/// Relative training throughput of `worker` on `task`: the CPU share the pod gets, scaled
/// sublinearly, times the GPU speed-up when the task gets a GPU (large for convolutional policies,
/// small for MLPs). Units are arbitrary; only ratios between workers matter.
pub fn estimated_throughput(worker: &WorkerOffer, task: &TaskDemand) -> f64 {
    let requested_cores = (f64::from(task.resources.cpu_millis) / 1000.0).max(1.0);
    let cores = requested_cores.min(f64::from(worker.node_cpu_cores.max(1)));
    let cpu = cores.powf(CPU_SCALING);
    if task.resources.gpus == 0 {
        return cpu;
    }
    let convolutional = task.environment.obs_shape().len() == 3;
    cpu * if convolutional {
        GPU_SPEEDUP_CNN
    } else {
        GPU_SPEEDUP_MLP
    }
}

/// The best [`similarity`] of `models` to `environment` (0 for none). Models of another kind score 0
/// and are skipped without comparing features, and an identical one ends the search: recruitment
/// asks this for every task and candidate.
pub fn best_similarity(models: &[EnvDescriptor], environment: &EnvDescriptor) -> f64 {
    let kind = environment.kind_name();
    let mut best = 0.0;
    for model in models.iter().filter(|m| m.kind_name() == kind) {
        best = f64::max(best, similarity(model, environment));
        if best >= 1.0 {
            break;
        }
    }
    best
}

/// The QoS of a feasible `worker` for `task`, given the best throughput among the candidates.
pub fn qos(worker: &WorkerOffer, task: &TaskDemand, best_throughput: f64) -> Qos {
    let kind = task.environment.kind_name();
    let level = worker.expertise.get(kind).copied().unwrap_or(0.0).clamp(0.0, 1.0);
    let record = f64::from(worker.completed + 1) / f64::from(worker.completed + worker.failed + 1);
    let expertise = level * record;
    let compute = if best_throughput > 0.0 {
        estimated_throughput(worker, task) / best_throughput
    } else {
        0.0
    };
    let similarity = best_similarity(&worker.models, &task.environment);
    let price = if task.budget_wei == 0 {
        0.0
    } else {
        1.0 - worker.price_wei as f64 / task.budget_wei as f64
    };
    let reputation = worker.reputation.clamp(0.0, 1.0);
    let mut q = Qos {
        reputation,
        expertise,
        compute,
        similarity,
        price,
        total: 0.0,
    };
    q.total = q.weighted(&WEIGHTS);
    q
}

impl Qos {
    /// The sum of the terms under other `weights` (the price term clamped to `[0, 1]`, as in
    /// `total`).
    pub fn weighted(&self, weights: &QosWeights) -> f64 {
        weights.reputation * self.reputation
            + weights.expertise * self.expertise
            + weights.compute * self.compute
            + weights.similarity * self.similarity
            + weights.price * self.price.clamp(0.0, 1.0)
    }
}

/// What recruitment decided for one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// The task.
    pub task: String,
    /// The chosen worker and its QoS, if any worker could take the task.
    pub assigned: Option<(String, Qos)>,
    /// Why each other worker could not, by worker id (for the task's status).
    pub infeasible: BTreeMap<String, Infeasible>,
}

impl Decision {
    /// One line for a status message: who was chosen, or why nobody was.
    pub fn summary(&self) -> String {
        match &self.assigned {
            Some((worker, q)) => format!("assigned to {worker} (QoS {:.3})", q.total),
            None if self.infeasible.is_empty() => "no workers are registered".into(),
            None => {
                let reasons: Vec<String> = self.infeasible.iter().map(|(w, r)| format!("{w}: {r}")).collect();
                format!("no feasible worker ({})", reasons.join("; "))
            }
        }
    }
}

/// Assigns pending `tasks` to `workers` greedily (see the module docs). Returns one decision per task,
/// in the order they were considered.
pub fn assign(tasks: &[TaskDemand], workers: &[WorkerOffer]) -> Vec<Decision> {
    assign_weighted(tasks, workers, &WEIGHTS)
}

/// [`assign`] with the choice made on the QoS terms under other `weights` (to measure what a term
/// changes; the decisions still carry each chosen worker's QoS under [`WEIGHTS`]).
pub fn assign_weighted(tasks: &[TaskDemand], workers: &[WorkerOffer], weights: &QosWeights) -> Vec<Decision> {
    assign_with(tasks, workers, |task, candidates| {
        let best_throughput = candidates
            .iter()
            .map(|w| estimated_throughput(w, task))
            .fold(0.0, f64::max);
        let scores: Vec<f64> = candidates
            .iter()
            .map(|w| qos(w, task, best_throughput).weighted(weights))
            .collect();
        (0..candidates.len())
            .max_by(|&i, &j| {
                let (a, b) = (candidates[i], candidates[j]);
                scores[i]
                    .total_cmp(&scores[j])
                    // On equal QoS the cheaper worker wins, then the lower id: reversed, as max_by
                    // keeps the greatest.
                    .then(b.price_wei.cmp(&a.price_wei))
                    .then(b.id.cmp(&a.id))
            })
            .unwrap_or(0)
    })
}

/// The greedy loop, with the choice left to `pick`: tasks by budget (highest first, then oldest,
/// then id); for each, the feasible workers (by id) are the candidates, `pick` returns the index of
/// one, and its capacity is reserved before the next task. The chosen worker's QoS is recorded
/// whatever the rule, so that policies can be compared on it (see [`super::policies`]).
pub fn assign_with(
    tasks: &[TaskDemand],
    workers: &[WorkerOffer],
    mut pick: impl FnMut(&TaskDemand, &[&WorkerOffer]) -> usize,
) -> Vec<Decision> {
    let mut order: Vec<&TaskDemand> = tasks.iter().collect();
    order.sort_by(|a, b| {
        b.budget_wei
            .cmp(&a.budget_wei)
            .then(a.admitted_seq.cmp(&b.admitted_seq))
            .then(a.id.cmp(&b.id))
    });
    let mut pool: Vec<WorkerOffer> = workers.to_vec();
    pool.sort_by(|a, b| a.id.cmp(&b.id));

    order
        .into_iter()
        .map(|task| {
            let mut infeasible = BTreeMap::new();
            let mut candidates = Vec::new();
            for (i, worker) in pool.iter().enumerate() {
                match feasible(worker, task) {
                    Ok(()) => candidates.push(i),
                    Err(reason) => {
                        infeasible.insert(worker.id.clone(), reason);
                    }
                }
            }
            let assigned = (!candidates.is_empty()).then(|| {
                let offers: Vec<&WorkerOffer> = candidates.iter().map(|&i| &pool[i]).collect();
                let best_throughput = offers.iter().map(|w| estimated_throughput(w, task)).fold(0.0, f64::max);
                let chosen = candidates[pick(task, &offers).min(offers.len() - 1)];
                let q = qos(&pool[chosen], task, best_throughput);
                let worker = &mut pool[chosen];
                worker.free.take(&task.resources);
                worker.free_slots -= 1;
                (worker.id.clone(), q)
            });
            Decision {
                task: task.id.clone(),
                assigned,
                infeasible,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn maze() -> EnvDescriptor {
        serde_json::from_str(r#"{"kind": "maze-cleaning", "grid": 8, "agents": 2}"#).unwrap()
    }

    fn task(id: &str, budget: u128, gpus: u32) -> TaskDemand {
        TaskDemand {
            id: id.into(),
            environment: maze(),
            budget_wei: budget,
            admitted_seq: 0,
            resources: Resources {
                gpus,
                cpu_millis: 2000,
                memory_mib: 2048,
            },
            min_reputation: 0.0,
            excluded: Vec::new(),
        }
    }

    fn worker(id: &str, reputation: f64, price: u128, gpus: u32) -> WorkerOffer {
        WorkerOffer {
            id: id.into(),
            reputation,
            expertise: BTreeMap::from([("maze-cleaning".to_string(), 0.8)]),
            completed: 0,
            failed: 0,
            price_wei: price,
            free: Resources {
                gpus,
                cpu_millis: 8000,
                memory_mib: 16384,
            },
            free_slots: 4,
            node_cpu_cores: 8,
            models: Vec::new(),
        }
    }

    #[test]
    fn the_best_worker_wins_and_reasons_name_the_rest() {
        let tasks = [task("t1", 100, 1)];
        let mut expert = worker("b-expert", 0.9, 50, 1);
        expert.models.push(maze());
        let workers = [worker("a-cpu-only", 0.9, 10, 0), expert, worker("c-novice", 0.2, 60, 1)];
        let decisions = assign(&tasks, &workers);
        let (chosen, q) = decisions[0].assigned.clone().unwrap();
        assert_eq!(chosen, "b-expert");
        assert_eq!(q.similarity, 1.0);
        assert_eq!(
            decisions[0].infeasible["a-cpu-only"],
            Infeasible::NoCapacity {
                resource: "gpus".into()
            }
        );
        assert!(decisions[0].summary().starts_with("assigned to b-expert"));
    }

    #[test]
    fn the_similarity_term_prefers_the_worker_with_the_closest_model() {
        let near: EnvDescriptor = serde_json::from_str(r#"{"kind": "maze-cleaning", "grid": 8, "agents": 3}"#).unwrap();
        let far: EnvDescriptor = serde_json::from_str(r#"{"kind": "maze-cleaning", "grid": 16, "agents": 6}"#).unwrap();
        let other: EnvDescriptor = serde_json::from_str(r#"{"kind": "cartpole"}"#).unwrap();
        assert_eq!(best_similarity(&[], &maze()), 0.0);
        assert_eq!(best_similarity(std::slice::from_ref(&other), &maze()), 0.0);
        assert_eq!(best_similarity(&[far.clone(), maze(), other.clone()], &maze()), 1.0);
        assert_eq!(
            best_similarity(&[far.clone(), near.clone()], &maze()),
            similarity(&near, &maze())
        );
        // Equal workers but for their models: the closer model wins, whatever the ids.
        let t = task("t", 100, 0);
        let mut a = worker("a", 0.5, 10, 0);
        let mut b = worker("b", 0.5, 10, 0);
        a.models = vec![far, other];
        b.models = vec![near];
        let d = &assign(std::slice::from_ref(&t), &[a.clone(), b.clone()])[0];
        assert_eq!(d.assigned.as_ref().unwrap().0, "b");
        std::mem::swap(&mut a.models, &mut b.models);
        let d = &assign(std::slice::from_ref(&t), &[a, b])[0];
        assert_eq!(d.assigned.as_ref().unwrap().0, "a");
    }

    #[test]
    fn nobody_feasible_says_why_for_each_worker() {
        let mut t = task("t1", 100, 0);
        t.min_reputation = 0.5;
        t.excluded = vec!["c".into()];
        let mut no_expertise = worker("d", 0.9, 10, 0);
        no_expertise.expertise.clear();
        let workers = [
            worker("a", 0.9, 500, 0),
            worker("b", 0.3, 10, 0),
            worker("c", 0.9, 10, 0),
            no_expertise,
        ];
        let d = &assign(&[t], &workers)[0];
        assert!(d.assigned.is_none());
        let summary = d.summary();
        for expected in [
            "a: price 500 wei above",
            "b: reputation 0.300 below",
            "c: failed this task before",
            "d: no expertise in maze-cleaning",
        ] {
            assert!(summary.contains(expected), "{summary}");
        }
    }

    #[test]
    fn richer_tasks_choose_first_and_capacity_is_reserved() {
        let tasks = [task("cheap", 10, 1), task("rich", 100, 1)];
        let workers = [worker("gpu", 0.9, 5, 1), worker("other", 0.1, 5, 1)];
        let d = assign(&tasks, &workers);
        assert_eq!(d[0].task, "rich");
        assert_eq!(d[0].assigned.as_ref().unwrap().0, "gpu");
        assert_eq!(
            d[1].assigned.as_ref().unwrap().0,
            "other",
            "the one GPU of `gpu` is taken"
        );
    }

    #[test]
    fn ties_go_to_the_cheaper_then_the_lower_id() {
        let t = task("t", 100, 0);
        // Same QoS needs the same price term, so equal prices: the lower id wins.
        let d = assign(
            std::slice::from_ref(&t),
            &[worker("b", 0.5, 10, 0), worker("a", 0.5, 10, 0)],
        );
        assert_eq!(d[0].assigned.as_ref().unwrap().0, "a");
    }

    #[test]
    fn a_gpu_counts_far_more_for_a_cnn_than_for_an_mlp() {
        let w = worker("w", 0.5, 0, 1);
        let cnn = task("cnn", 1, 1);
        let mut mlp = task("mlp", 1, 1);
        mlp.environment = serde_json::from_str(r#"{"kind": "cartpole"}"#).unwrap();
        let cpu = estimated_throughput(&w, &task("cpu", 1, 0));
        assert!(estimated_throughput(&w, &cnn) / cpu > estimated_throughput(&w, &mlp) / cpu);
        // 16 vs 2 cores: the research's 2.5×.
        let (mut big, mut small) = (task("b", 1, 0), task("s", 1, 0));
        big.resources.cpu_millis = 16_000;
        small.resources.cpu_millis = 2_000;
        let mut w16 = w.clone();
        w16.node_cpu_cores = 16;
        let ratio = estimated_throughput(&w16, &big) / estimated_throughput(&w16, &small);
        assert!((ratio - 2.5).abs() < 0.05, "{ratio}");
    }

    fn arb_worker() -> impl Strategy<Value = WorkerOffer> {
        (
            0u32..6,
            0.0f64..1.0,
            0u128..200,
            0u32..3,
            0u32..3,
            0u32..16_000,
            any::<bool>(),
        )
            .prop_map(|(n, rep, price, gpus, slots, cpu, expert)| {
                let mut w = worker(&format!("w{n}"), rep, price, gpus);
                w.free_slots = slots;
                w.free.cpu_millis = cpu;
                if !expert {
                    w.expertise.clear();
                }
                w
            })
    }

    fn arb_task() -> impl Strategy<Value = TaskDemand> {
        (0u32..12, 0u128..300, 0u32..2, 500u32..6000, 0.0f64..0.6).prop_map(|(n, budget, gpus, cpu, min_rep)| {
            let mut t = task(&format!("t{n}"), budget, gpus);
            t.resources.cpu_millis = cpu;
            t.min_reputation = min_rep;
            t.admitted_seq = u64::from(n);
            t
        })
    }

    proptest! {
        #[test]
        fn assignment_is_deterministic_feasible_and_never_oversubscribes(
            tasks in prop::collection::vec(arb_task(), 0..10),
            workers in prop::collection::btree_map(0u32..6, arb_worker(), 0..6),
        ) {
            // Unique task and worker ids.
            let tasks: Vec<TaskDemand> = tasks.into_iter().enumerate().map(|(i, mut t)| { t.id = format!("t{i}"); t }).collect();
            let workers: Vec<WorkerOffer> = workers.into_iter().map(|(n, mut w)| { w.id = format!("w{n}"); w }).collect();
            let decisions = assign(&tasks, &workers);
            let mut reversed = workers.clone();
            reversed.reverse();
            prop_assert_eq!(&decisions, &assign(&tasks, &reversed), "worker order does not matter");
            prop_assert_eq!(decisions.len(), tasks.len());

            let mut used: BTreeMap<String, (Resources, u32)> = BTreeMap::new();
            for d in &decisions {
                let t = tasks.iter().find(|t| t.id == d.task).unwrap();
                if let Some((w, q)) = &d.assigned {
                    let offer = workers.iter().find(|o| &o.id == w).unwrap();
                    prop_assert!(feasible(offer, t).is_ok(), "an infeasible worker was chosen");
                    prop_assert!((0.0..=1.0 + 1e-12).contains(&q.total));
                    let entry = used.entry(w.clone()).or_default();
                    entry.0.gpus += t.resources.gpus;
                    entry.0.cpu_millis += t.resources.cpu_millis;
                    entry.0.memory_mib += t.resources.memory_mib;
                    entry.1 += 1;
                }
            }
            for (w, (r, n)) in used {
                let offer = workers.iter().find(|o| o.id == w).unwrap();
                prop_assert!(r.gpus <= offer.free.gpus && r.cpu_millis <= offer.free.cpu_millis);
                prop_assert!(r.memory_mib <= offer.free.memory_mib && n <= offer.free_slots);
            }
        }
    }
}
