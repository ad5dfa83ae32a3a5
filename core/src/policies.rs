//! Baseline recruitment policies, to measure QoS-greedy recruitment ([`recruitment::assign`]) against
//! the selection rules of plain crowdsourcing platforms (the experiments bench,
//! `cargo bench -p drlaas-operator --bench experiments`):
//!
//! - [`assign_random`]: any feasible worker, uniformly (seeded);
//! - [`assign_by_reputation`]: the feasible worker with the highest reputation;
//! - [`assign_cheapest`]: the feasible worker with the lowest price;
//! - [`assign_without_similarity`]: the QoS greedy without its similarity term (an ablation: what
//!   recruitment chose while the operator gave it no models), to measure what the term changes.
//!
//! They share everything with the greedy except the choice itself: the same task order (highest
//! budget first, then oldest, then id), the same feasibility rules ([`recruitment::feasible`]), capacity
//! reserved as tasks are assigned, and a decision per task with the reasons of the infeasible workers.
//! Each chosen worker carries the QoS it has for the task ([`recruitment::qos`]), so the policies can be
//! compared on it. The same inputs (and seed) always give the same assignment, whatever the order of
//! the workers.
//!
//! [`recruitment::assign`]: super::recruitment::assign
//! [`recruitment::feasible`]: super::recruitment::feasible
//! [`recruitment::qos`]: super::recruitment::qos

use super::recruitment::{self, Decision, QosWeights, TaskDemand, WEIGHTS, WorkerOffer, assign_weighted, assign_with};

/// A recruitment policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// The QoS-greedy recruitment (docs/architecture.md#recruitment) ([`recruitment::assign`]).
    QosGreedy,
    /// A uniformly random feasible worker.
    Random {
        /// Seeds the choices: the same seed, the same assignment.
        seed: u64,
    },
    /// The feasible worker with the highest reputation.
    ReputationOnly,
    /// The cheapest feasible worker.
    CheapestFirst,
    /// The QoS greedy with the similarity term's weight set to 0.
    QosWithoutSimilarity,
}

impl Policy {
    /// Every policy, the random one with `seed`.
    pub fn all(seed: u64) -> [Policy; 5] {
        [
            Policy::QosGreedy,
            Policy::QosWithoutSimilarity,
            Policy::Random { seed },
            Policy::ReputationOnly,
            Policy::CheapestFirst,
        ]
    }

    /// A short name for tables.
    pub fn name(&self) -> &'static str {
        match self {
            Policy::QosGreedy => "QoS greedy",
            Policy::Random { .. } => "random",
            Policy::ReputationOnly => "reputation only",
            Policy::CheapestFirst => "cheapest first",
            Policy::QosWithoutSimilarity => "QoS greedy without S",
        }
    }

    /// Assigns `tasks` to `workers` with this policy.
    pub fn assign(&self, tasks: &[TaskDemand], workers: &[WorkerOffer]) -> Vec<Decision> {
        match *self {
            Policy::QosGreedy => recruitment::assign(tasks, workers),
            Policy::Random { seed } => assign_random(tasks, workers, seed),
            Policy::ReputationOnly => assign_by_reputation(tasks, workers),
            Policy::CheapestFirst => assign_cheapest(tasks, workers),
            Policy::QosWithoutSimilarity => assign_without_similarity(tasks, workers),
        }
    }
}

/// The QoS greedy choosing on every term but the similarity of the workers' models (weight 0, the
/// other weights as they are). Each decision carries the chosen worker's full QoS, S included.
pub fn assign_without_similarity(tasks: &[TaskDemand], workers: &[WorkerOffer]) -> Vec<Decision> {
    let weights = QosWeights {
        similarity: 0.0,
        ..WEIGHTS
    };
    assign_weighted(tasks, workers, &weights)
}

/// Each task takes a uniformly random feasible worker; `seed` fixes the choices.
pub fn assign_random(tasks: &[TaskDemand], workers: &[WorkerOffer], seed: u64) -> Vec<Decision> {
    let mut state = seed;
    assign_with(tasks, workers, |_, candidates| {
        (splitmix64(&mut state) % candidates.len() as u64) as usize
    })
}

/// Each task takes the feasible worker with the highest reputation; ties go to the cheaper, then the
/// lower id.
pub fn assign_by_reputation(tasks: &[TaskDemand], workers: &[WorkerOffer]) -> Vec<Decision> {
    assign_with(tasks, workers, |_, candidates| {
        best_index(candidates, |a, b| {
            a.reputation
                .total_cmp(&b.reputation)
                .then(b.price_wei.cmp(&a.price_wei))
                .then(b.id.cmp(&a.id))
        })
    })
}

/// Each task takes the cheapest feasible worker; ties go to the higher reputation, then the lower id.
pub fn assign_cheapest(tasks: &[TaskDemand], workers: &[WorkerOffer]) -> Vec<Decision> {
    assign_with(tasks, workers, |_, candidates| {
        best_index(candidates, |a, b| {
            b.price_wei
                .cmp(&a.price_wei)
                .then(a.reputation.total_cmp(&b.reputation))
                .then(b.id.cmp(&a.id))
        })
    })
}

/// The index of the greatest candidate under `cmp`.
fn best_index(candidates: &[&WorkerOffer], cmp: impl Fn(&WorkerOffer, &WorkerOffer) -> std::cmp::Ordering) -> usize {
    (0..candidates.len())
        .max_by(|&i, &j| cmp(candidates[i], candidates[j]))
        .unwrap_or(0)
}

/// SplitMix64: a small, fast, well-mixed generator (enough for picking workers; not for keys).
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::recruitment::{Resources, feasible};
    use drlaas_envs::descriptor::EnvDescriptor;
    use proptest::prelude::*;

    fn maze() -> EnvDescriptor {
        serde_json::from_str(r#"{"kind": "maze-cleaning", "grid": 8, "agents": 2}"#).unwrap()
    }

    fn task(id: &str, budget: u128) -> TaskDemand {
        TaskDemand {
            id: id.into(),
            environment: maze(),
            budget_wei: budget,
            admitted_seq: 0,
            resources: Resources {
                gpus: 0,
                cpu_millis: 2000,
                memory_mib: 2048,
            },
            min_reputation: 0.0,
            excluded: Vec::new(),
        }
    }

    fn worker(id: &str, reputation: f64, price: u128, slots: u32) -> WorkerOffer {
        WorkerOffer {
            id: id.into(),
            reputation,
            expertise: BTreeMap::from([("maze-cleaning".to_string(), 0.8)]),
            completed: 0,
            failed: 0,
            price_wei: price,
            free: Resources {
                gpus: 0,
                cpu_millis: 8000,
                memory_mib: 16384,
            },
            free_slots: slots,
            node_cpu_cores: 8,
            models: Vec::new(),
        }
    }

    fn chosen(decisions: &[Decision]) -> Vec<Option<String>> {
        decisions
            .iter()
            .map(|d| d.assigned.as_ref().map(|(w, _)| w.clone()))
            .collect()
    }

    #[test]
    fn each_baseline_picks_what_it_says() {
        let workers = [
            worker("cheap", 0.2, 10, 1),
            worker("famous", 0.9, 90, 1),
            worker("middle", 0.5, 50, 1),
        ];
        let tasks = [task("t", 100)];
        assert_eq!(chosen(&assign_by_reputation(&tasks, &workers)), [Some("famous".into())]);
        assert_eq!(chosen(&assign_cheapest(&tasks, &workers)), [Some("cheap".into())]);
        // The chosen worker carries its QoS for the task, as the greedy's does.
        let d = &assign_cheapest(&tasks, &workers)[0];
        let q = d.assigned.as_ref().unwrap().1;
        assert!((q.reputation - 0.2).abs() < 1e-12 && (q.price - 0.9).abs() < 1e-12);
        // The greedy through the same entry point.
        assert_eq!(
            Policy::QosGreedy.assign(&tasks, &workers),
            recruitment::assign(&tasks, &workers)
        );
    }

    #[test]
    fn without_similarity_the_models_stop_deciding() {
        let tasks = [task("t", 100)];
        let mut close = worker("b", 0.5, 10, 1);
        close.models.push(maze());
        let workers = [worker("a", 0.5, 10, 1), close];
        assert_eq!(chosen(&recruitment::assign(&tasks, &workers)), [Some("b".into())]);
        let d = assign_without_similarity(&tasks, &workers);
        assert_eq!(chosen(&d), [Some("a".into())], "a tie without S: the lower id");
        let q = d[0].assigned.as_ref().unwrap().1;
        assert_eq!((q.similarity, q.total), (0.0, q.weighted(&WEIGHTS)));
        // With the similarity weight at 0 and nothing else changed, the same choices as the greedy
        // whenever no worker has models.
        let plain = [worker("a", 0.4, 10, 1), worker("b", 0.6, 30, 1), worker("c", 0.5, 5, 1)];
        assert_eq!(
            assign_without_similarity(&tasks, &plain),
            recruitment::assign(&tasks, &plain)
        );
    }

    #[test]
    fn ties_break_on_price_then_reputation_then_id() {
        let tasks = [task("t", 100)];
        let same_rep = [worker("b", 0.5, 10, 1), worker("a", 0.5, 20, 1)];
        assert_eq!(chosen(&assign_by_reputation(&tasks, &same_rep)), [Some("b".into())]);
        let same_price = [
            worker("b", 0.5, 10, 1),
            worker("a", 0.4, 10, 1),
            worker("c", 0.5, 10, 1),
        ];
        assert_eq!(chosen(&assign_cheapest(&tasks, &same_price)), [Some("b".into())]);
        let all_same = [worker("b", 0.5, 10, 1), worker("a", 0.5, 10, 1)];
        assert_eq!(chosen(&assign_cheapest(&tasks, &all_same)), [Some("a".into())]);
        assert_eq!(chosen(&assign_by_reputation(&tasks, &all_same)), [Some("a".into())]);
    }

    #[test]
    fn the_best_by_reputation_fills_up_then_the_next_one_serves() {
        let tasks = [task("t1", 30), task("t2", 20), task("t3", 10)];
        let workers = [worker("famous", 0.9, 10, 2), worker("other", 0.3, 10, 5)];
        assert_eq!(
            chosen(&assign_by_reputation(&tasks, &workers)),
            [Some("famous".into()), Some("famous".into()), Some("other".into())]
        );
    }

    #[test]
    fn random_depends_on_the_seed_only() {
        let tasks: Vec<TaskDemand> = (0..8).map(|i| task(&format!("t{i}"), 100 - i)).collect();
        let workers: Vec<WorkerOffer> = (0..6).map(|i| worker(&format!("w{i}"), 0.5, 10, 8)).collect();
        let a = assign_random(&tasks, &workers, 7);
        assert_eq!(a, assign_random(&tasks, &workers, 7));
        let picked: BTreeSet<Option<String>> = chosen(&a).into_iter().collect();
        assert!(picked.len() > 1, "eight tasks over six equal workers: {picked:?}");
        let differs = (0..20).any(|s| chosen(&assign_random(&tasks, &workers, s)) != chosen(&a));
        assert!(differs, "other seeds choose differently");
    }

    #[test]
    fn nobody_feasible_gives_reasons() {
        let mut t = task("t", 5);
        t.excluded = vec!["b".into()];
        for policy in Policy::all(3) {
            let d = &policy.assign(
                std::slice::from_ref(&t),
                &[worker("a", 0.9, 10, 1), worker("b", 0.9, 1, 1)],
            )[0];
            assert!(d.assigned.is_none(), "{}", policy.name());
            assert_eq!(d.infeasible.len(), 2);
        }
    }

    fn arb_worker() -> impl Strategy<Value = WorkerOffer> {
        (0.0f64..1.0, 0u128..200, 0u32..3, 0u32..3, 0u32..16_000, any::<bool>()).prop_map(
            |(rep, price, gpus, slots, cpu, expert)| {
                let mut w = worker("w", rep, price, slots);
                w.free.gpus = gpus;
                w.free.cpu_millis = cpu;
                if !expert {
                    w.expertise.clear();
                }
                w
            },
        )
    }

    fn arb_task() -> impl Strategy<Value = TaskDemand> {
        (0u128..300, 0u32..2, 500u32..6000, 0.0f64..0.6).prop_map(|(budget, gpus, cpu, min_rep)| {
            let mut t = task("t", budget);
            t.resources.gpus = gpus;
            t.resources.cpu_millis = cpu;
            t.min_reputation = min_rep;
            t
        })
    }

    proptest! {
        #[test]
        fn baselines_are_deterministic_feasible_and_never_oversubscribe(
            tasks in prop::collection::vec(arb_task(), 0..10),
            workers in prop::collection::vec(arb_worker(), 0..6),
            seed in any::<u64>(),
        ) {
            let tasks: Vec<TaskDemand> = tasks.into_iter().enumerate().map(|(i, mut t)| { t.id = format!("t{i}"); t.admitted_seq = i as u64; t }).collect();
            let workers: Vec<WorkerOffer> = workers.into_iter().enumerate().map(|(i, mut w)| { w.id = format!("w{i}"); w }).collect();
            let mut reversed = workers.clone();
            reversed.reverse();
            for policy in Policy::all(seed) {
                let decisions = policy.assign(&tasks, &workers);
                prop_assert_eq!(&decisions, &policy.assign(&tasks, &workers), "deterministic");
                prop_assert_eq!(&decisions, &policy.assign(&tasks, &reversed), "worker order does not matter");
                prop_assert_eq!(decisions.len(), tasks.len());
                let mut used: BTreeMap<String, (Resources, u32)> = BTreeMap::new();
                for d in &decisions {
                    let t = tasks.iter().find(|t| t.id == d.task).unwrap();
                    if let Some((w, q)) = &d.assigned {
                        let offer = workers.iter().find(|o| &o.id == w).unwrap();
                        prop_assert!(feasible(offer, t).is_ok(), "{}: an infeasible worker was chosen", policy.name());
                        prop_assert!((0.0..=1.0 + 1e-12).contains(&q.total));
                        let entry = used.entry(w.clone()).or_default();
                        entry.0.gpus += t.resources.gpus;
                        entry.0.cpu_millis += t.resources.cpu_millis;
                        entry.0.memory_mib += t.resources.memory_mib;
                        entry.1 += 1;
                    } else {
                        prop_assert_eq!(d.infeasible.len(), workers.len(), "a task is left only when nobody can take it");
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
}
