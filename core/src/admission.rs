//! From resources to the core's inputs: a `DRLTask` checked field by field before any escrow moves,
//! and turned into a [`TaskDemand`]; a `Worker` with what the chain and the cluster say about it
//! turned into a [`WorkerOffer`], its models ([`WorkerHistory::models`]) among it.
//!
//! The CRD schema already rejects most bad input at the API server; these checks are the ones a
//! schema cannot express (an environment's cells must fit its agents, quantities must parse) and
//! they also guard tasks that arrive from chain, where no schema ran.

use std::collections::BTreeMap;

use drlaas_crds::task::DRLTaskSpec;
use drlaas_crds::worker::WorkerSpec;
use drlaas_envs::descriptor::EnvDescriptor;

use super::recruitment::{Resources, TaskDemand, WorkerOffer};

/// A field of a task or worker that is wrong, as a path in the object and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {message}")]
pub struct FieldError {
    /// e.g. `spec.training.environment.grid`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Checks a task spec; the error names the first wrong field by its path in the object.
pub fn validate_task(spec: &DRLTaskSpec) -> Result<Resources, FieldError> {
    spec.training
        .validate()
        .map_err(|e| FieldError::new(format!("spec.training.{}", e.field), e.message))?;
    let resources = task_resources(spec)?;
    if !(0.0..=1.0).contains(&spec.min_reputation) {
        return Err(FieldError::new(
            "spec.minReputation",
            format!("a reputation in [0, 1], got {}", spec.min_reputation),
        ));
    }
    if let Some(payment) = &spec.payment {
        parse_wei(&payment.amount_wei).map_err(|m| FieldError::new("spec.payment.amountWei", m))?;
    }
    paid_target_milli(spec)?;
    Ok(resources)
}

/// A valid task that this deployment's trainer pods cannot run (the spec is not wrong: the
/// deployment lacks something).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Unrunnable {
    /// What in the task needs it, e.g. `spec.training.environment.kind`.
    pub field: String,
    /// What is missing.
    pub message: String,
}

/// Whether the pods of this deployment can run the task's environment. A `gymnasium` or
/// `pettingzoo` environment runs in an environment server, the pods' environment sidecar: the
/// task's own image (`environment.image`), else the deployment's standard environment image
/// (`standard_image`: whether it has one). Held before anything is posted or recruited, so that a
/// task no pod can run waits with this message instead of failing (and slashing) the worker it is
/// given.
pub fn check_runnable(spec: &DRLTaskSpec, standard_image: bool) -> Result<(), Unrunnable> {
    let environment = &spec.training.environment;
    if standard_image || !environment.is_external() || environment.image().is_some() {
        return Ok(());
    }
    Err(Unrunnable {
        field: "spec.training.environment.kind".into(),
        message: "gymnasium and pettingzoo environments run in an environment sidecar, and this operator has no \
                  standard environment image (--environment-image, the chart's environment.image); name the \
                  environment's own image (environment.image, by digest), or run it in the local mode (drlaas local run)"
            .into(),
    })
}

/// Episodes of random actions that admission plays to estimate an environment's floor.
pub const RANDOM_BASELINE_EPISODES: usize = 32;
/// The most agent-steps that estimate may take; a larger environment is not measured here (the
/// evaluator still reports its random baseline beside the model's return).
const RANDOM_BASELINE_BUDGET: u64 = 2_000_000;

/// A paid task whose target random actions already reach: a worker could be paid for a policy that
/// ignores what it observes.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetAtRandom {
    /// The task's `targetMeanReturn`.
    pub target: f64,
    /// What uniformly random actions scored, the mean of [`RANDOM_BASELINE_EPISODES`] episodes.
    pub random_mean_return: f64,
}

impl std::fmt::Display for TargetAtRandom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "spec.training.targetMeanReturn {} is not above what random actions score on this environment \
             ({:.1}, the mean of {RANDOM_BASELINE_EPISODES} episodes): a policy that ignores what it observes \
             would pass verification and be paid; a target above {:.1} asks for learning",
            self.target, self.random_mean_return, self.random_mean_return
        )
    }
}

/// Plays the environment of a paid task with random actions and says whether its target is at or
/// below what they score. `None` when it is above, when the task is not paid or has no target, and
/// for environments not measured here (external ones, which need their server, and any whose
/// episodes would take more than the budget). Deterministic: the same spec, the same figure.
pub fn target_at_random(spec: &DRLTaskSpec) -> Option<TargetAtRandom> {
    let target = spec.training.target_mean_return.filter(|_| spec.payment.is_some())?;
    let environment = &spec.training.environment;
    let cost = u64::from(environment.horizon()?) * environment.agents() as u64 * RANDOM_BASELINE_EPISODES as u64;
    if cost > RANDOM_BASELINE_BUDGET {
        return None;
    }
    let random_mean_return =
        drlaas_envs::random_mean_return(environment, RANDOM_BASELINE_EPISODES, spec.training.seed).ok()??;
    (target <= random_mean_return).then_some(TargetAtRandom {
        target,
        random_mean_return,
    })
}

/// The target, in thousandths, that a task posted from Kubernetes puts on chain: required, since
/// the escrow is paid out against it. `None` for a task without `payment` (already on chain).
pub fn paid_target_milli(spec: &DRLTaskSpec) -> Result<Option<i32>, FieldError> {
    if spec.payment.is_none() {
        return Ok(None);
    }
    let field = "spec.training.targetMeanReturn";
    let target = spec
        .training
        .target_mean_return
        .ok_or_else(|| FieldError::new(field, "required for a paid task: the escrow is paid out against it"))?;
    let milli = (target * 1000.0).round();
    if !(f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&milli) {
        return Err(FieldError::new(
            field,
            format!("{target} does not fit the chain's target (thousandths in 32 bits: ±2,147,483)"),
        ));
    }
    Ok(Some(milli as i32))
}

/// The trainer pod's resources as numbers.
pub fn task_resources(spec: &DRLTaskSpec) -> Result<Resources, FieldError> {
    let r = &spec.resources;
    Ok(Resources {
        gpus: r.gpu,
        cpu_millis: parse_cpu_millis(&r.cpu).map_err(|m| FieldError::new("spec.resources.cpu", m))?,
        memory_mib: parse_memory_mib(&r.memory).map_err(|m| FieldError::new("spec.resources.memory", m))?,
    })
}

/// The recruitment view of a task.
pub fn task_demand(
    id: String,
    spec: &DRLTaskSpec,
    budget_wei: u128,
    admitted_seq: u64,
    failed_workers: Vec<String>,
) -> Result<TaskDemand, FieldError> {
    Ok(TaskDemand {
        id,
        environment: spec.training.environment.clone(),
        budget_wei,
        admitted_seq,
        resources: task_resources(spec)?,
        min_reputation: spec.min_reputation,
        excluded: failed_workers,
    })
}

/// What the chain says about a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainRecord {
    pub reputation: f64,
    pub completed: u32,
    pub failed: u32,
}

/// Where a worker's models come from, as the chain records them: the tasks it completed (it trained
/// a model of the task's environment, verified on chain) and the models it listed on the market
/// (MMC), each by its id with the environment read from the task's document or the model's manifest.
/// An id whose environment cannot be read (a document or a model that is not drlaas's) maps to
/// `None`: it is known, so it is not read again, and it counts for nothing.
///
/// Both records only grow on chain, so the edge keeps a history per worker and [`merge`]s what it
/// reads next into it.
///
/// [`merge`]: WorkerHistory::merge
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerHistory {
    /// Completed tasks by on-chain task id.
    pub completed: BTreeMap<u64, Option<EnvDescriptor>>,
    /// Listed models by MMC listing id.
    pub listed: BTreeMap<u64, Option<EnvDescriptor>>,
}

impl WorkerHistory {
    /// Adds what `newer` knows; an id already known keeps its environment unless only `newer`
    /// could read it.
    pub fn merge(&mut self, newer: WorkerHistory) {
        for (mine, theirs) in [(&mut self.completed, newer.completed), (&mut self.listed, newer.listed)] {
            for (id, environment) in theirs {
                let slot = mine.entry(id).or_default();
                if slot.is_none() {
                    *slot = environment;
                }
            }
        }
    }

    /// The environments of the worker's models for recruitment's similarity term: its listings' and
    /// its completed tasks', each distinct environment once (recruitment takes the best similarity
    /// over them, so a repeat adds nothing but time), listings first, then tasks, each by id.
    pub fn models(&self) -> Vec<EnvDescriptor> {
        let mut models: Vec<EnvDescriptor> = Vec::new();
        for environment in self.listed.values().chain(self.completed.values()).flatten() {
            if !models.contains(environment) {
                models.push(environment.clone());
            }
        }
        models
    }
}

/// The recruitment view of a worker: `in_use` is what its running drlaas pods hold, `running` how
/// many tasks it runs, `models` the environments of the models it owns.
pub fn worker_offer(
    id: String,
    spec: &WorkerSpec,
    record: &ChainRecord,
    in_use: Resources,
    running: u32,
    models: Vec<EnvDescriptor>,
) -> Result<WorkerOffer, FieldError> {
    let capacity = &spec.capacity;
    let total = Resources {
        gpus: capacity.gpus,
        cpu_millis: capacity.cpu_cores.saturating_mul(1000),
        memory_mib: u64::from(capacity.memory_gib) * 1024,
    };
    Ok(WorkerOffer {
        id,
        reputation: record.reputation,
        expertise: spec.expertise.clone(),
        completed: record.completed,
        failed: record.failed,
        price_wei: parse_wei(&spec.price_per_task_wei).map_err(|m| FieldError::new("spec.pricePerTaskWei", m))?,
        free: Resources {
            gpus: total.gpus.saturating_sub(in_use.gpus),
            cpu_millis: total.cpu_millis.saturating_sub(in_use.cpu_millis),
            memory_mib: total.memory_mib.saturating_sub(in_use.memory_mib),
        },
        free_slots: capacity.concurrent_tasks.saturating_sub(running),
        node_cpu_cores: capacity.node_cpu_cores.unwrap_or(capacity.cpu_cores),
        models,
    })
}

/// A decimal wei amount.
pub fn parse_wei(text: &str) -> Result<u128, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("a decimal amount of wei, got {text:?}"));
    }
    text.parse::<u128>()
        .map_err(|_| format!("at most {} wei, got {text}", u128::MAX))
}

/// A Kubernetes CPU quantity (`2`, `0.5`, `500m`) in millicores.
pub fn parse_cpu_millis(text: &str) -> Result<u32, String> {
    let expected = || format!("a CPU quantity such as 2, 0.5 or 500m, got {text:?}");
    let millis = match text.strip_suffix('m') {
        Some(m) => m.parse::<u64>().map_err(|_| expected())?,
        None => {
            let cores: f64 = text.parse().map_err(|_| expected())?;
            if !cores.is_finite() || cores < 0.0 {
                return Err(expected());
            }
            (cores * 1000.0).round() as u64
        }
    };
    if millis == 0 {
        return Err(format!("more than 0 CPU, got {text:?}"));
    }
    u32::try_from(millis).map_err(|_| format!("at most 4294967 cores, got {text:?}"))
}

/// A Kubernetes memory quantity (`512Mi`, `4Gi`, `1G`, `1000000`) in MiB, rounded up.
pub fn parse_memory_mib(text: &str) -> Result<u64, String> {
    let expected = || format!("a memory quantity such as 512Mi, 4Gi or 1G, got {text:?}");
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| expected())?;
    let bytes_per_unit: f64 = match unit {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(expected()),
    };
    let mib = (value * bytes_per_unit / (1024.0 * 1024.0)).ceil();
    if !mib.is_finite() || mib <= 0.0 {
        return Err(format!("more than 0 memory, got {text:?}"));
    }
    Ok(mib as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec_of(value: serde_json::Value) -> DRLTaskSpec {
        serde_json::from_value(value).unwrap()
    }

    fn spec(extra: serde_json::Value) -> DRLTaskSpec {
        let mut base = json!({
            "training": {"environment": {"kind": "maze-cleaning", "grid": 8, "agents": 2}, "targetMeanReturn": 20.0},
            "payment": {"amountWei": "1000", "walletSecretRef": {"name": "w"}},
        });
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn quantities_parse_like_kubernetes() {
        assert_eq!(parse_cpu_millis("2"), Ok(2000));
        assert_eq!(parse_cpu_millis("0.5"), Ok(500));
        assert_eq!(parse_cpu_millis("250m"), Ok(250));
        assert!(parse_cpu_millis("two").unwrap_err().contains("such as 2, 0.5 or 500m"));
        assert_eq!(parse_memory_mib("4Gi"), Ok(4096));
        assert_eq!(parse_memory_mib("512Mi"), Ok(512));
        assert_eq!(parse_memory_mib("1G"), Ok(954));
        assert!(parse_memory_mib("4GB").is_err());
        assert_eq!(parse_wei("1000000000000000000"), Ok(1_000_000_000_000_000_000));
        assert!(parse_wei("1e18").unwrap_err().contains("decimal amount of wei"));
    }

    #[test]
    fn errors_name_the_field_path() {
        let err = validate_task(&spec(
            json!({"training": {"environment": {"kind": "maze-cleaning", "grid": 4, "agents": 60}}}),
        ))
        .unwrap_err();
        assert_eq!(err.field, "spec.training.environment.agents", "{err}");
        let err = validate_task(&spec(json!({"resources": {"cpu": "lots"}}))).unwrap_err();
        assert_eq!(err.field, "spec.resources.cpu");
        assert!(
            err.to_string()
                .starts_with("invalid spec.resources.cpu: a CPU quantity")
        );
        let ok = validate_task(&spec(json!({"resources": {"gpu": 1, "cpu": "500m", "memory": "2Gi"}}))).unwrap();
        assert_eq!(
            ok,
            Resources {
                gpus: 1,
                cpu_millis: 500,
                memory_mib: 2048
            }
        );
    }

    #[test]
    fn a_target_that_random_actions_reach_is_told_with_both_numbers() {
        // Random CartPole lasts about 22 steps.
        let cartpole =
            |target: f64| json!({"training": {"environment": {"kind": "cartpole"}, "targetMeanReturn": target}});
        let low = target_at_random(&spec(cartpole(5.0))).expect("5 is below random");
        assert_eq!(low.target, 5.0);
        assert!((15.0..30.0).contains(&low.random_mean_return), "{low:?}");
        let message = low.to_string();
        assert!(
            message.starts_with("spec.training.targetMeanReturn 5 is not above what random actions score"),
            "{message}"
        );
        assert!(message.contains(&format!("{:.1}", low.random_mean_return)), "{message}");
        assert_eq!(target_at_random(&spec(cartpole(150.0))), None);
        // Not paid (already on chain), or an external environment: not measured here.
        let mut unpaid = spec(cartpole(5.0));
        unpaid.payment = None;
        assert_eq!(target_at_random(&unpaid), None);
        let gym = json!({"training": {"environment": {"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [4], "actions": 2}, "targetMeanReturn": 1.0}});
        assert_eq!(target_at_random(&spec(gym)), None);
        // Too large to play at admission: 64 agents for 100,000 steps.
        let huge = json!({"training": {"environment": {"kind": "fleet-coordination", "grid": 64, "agents": 64, "horizon": 100000}, "targetMeanReturn": -1e6}});
        assert_eq!(target_at_random(&spec(huge)), None);
    }

    #[test]
    fn a_paid_task_needs_a_target_the_chain_can_hold() {
        assert_eq!(paid_target_milli(&spec(json!({}))), Ok(Some(20_000)));
        let aimless = json!({"training": {"environment": {"kind": "cartpole"}}});
        let err = validate_task(&spec(aimless.clone())).unwrap_err();
        assert_eq!(err.field, "spec.training.targetMeanReturn");
        assert!(err.message.starts_with("required for a paid task"), "{err}");
        let huge = json!({"training": {"environment": {"kind": "cartpole"}, "targetMeanReturn": 3.0e6}});
        assert!(paid_target_milli(&spec(huge)).unwrap_err().message.contains("32 bits"));
        let mut mirrored = spec(aimless);
        mirrored.payment = None;
        mirrored.chain_task_id = Some(4);
        assert_eq!(
            paid_target_milli(&mirrored),
            Ok(None),
            "a chain task's target is the chain's"
        );
    }

    fn env(json: &str) -> EnvDescriptor {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_workers_models_are_its_listings_and_completed_tasks_each_once() {
        let maze = env(r#"{"kind": "maze-cleaning", "grid": 8, "agents": 2}"#);
        let cartpole = env(r#"{"kind": "cartpole"}"#);
        let mut history = WorkerHistory {
            completed: BTreeMap::from([(7, Some(maze.clone())), (9, None), (12, Some(maze.clone()))]),
            listed: BTreeMap::from([(3, Some(cartpole.clone()))]),
        };
        assert_eq!(history.models(), [cartpole.clone(), maze.clone()]);

        // Read later: a new task, and an environment that could not be read before.
        let fleet = env(r#"{"kind": "fleet-coordination"}"#);
        history.merge(WorkerHistory {
            completed: BTreeMap::from([(9, Some(fleet.clone())), (12, None), (15, Some(cartpole.clone()))]),
            listed: BTreeMap::new(),
        });
        assert_eq!(history.completed[&12], Some(maze.clone()), "a known environment stays");
        assert_eq!(history.completed.len(), 4);
        assert_eq!(history.models(), [cartpole, maze, fleet]);
        assert!(WorkerHistory::default().models().is_empty());
    }

    #[test]
    fn a_workers_models_decide_between_otherwise_equal_workers() {
        use crate::recruitment::assign;
        let spec: WorkerSpec = serde_json::from_value(json!({
            "address": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            "capacity": {"gpus": 0, "cpuCores": 8, "memoryGib": 16},
            "expertise": {"maze-cleaning": 0.8, "cartpole": 0.8},
            "pricePerTaskWei": "5",
            "keySecretRef": {"name": "k"},
        }))
        .unwrap();
        let record = ChainRecord {
            reputation: 0.55,
            completed: 1,
            failed: 0,
        };
        // lab-a completed a cartpole task, lab-b a maze like the one posted: without the models
        // the tie goes to the lower id, lab-a.
        let completed = |environment: &str| WorkerHistory {
            completed: BTreeMap::from([(1, Some(env(environment)))]),
            listed: BTreeMap::new(),
        };
        let offer = |name: &str, history: &WorkerHistory| {
            worker_offer(name.into(), &spec, &record, Resources::default(), 0, history.models()).unwrap()
        };
        let task = task_demand(
            "t".into(),
            &spec_of(json!({"training": {"environment": {"kind": "maze-cleaning", "grid": 8, "agents": 3}, "targetMeanReturn": 20.0}})),
            1000,
            0,
            Vec::new(),
        )
        .unwrap();
        let lab_a = completed(r#"{"kind": "cartpole"}"#);
        let lab_b = completed(r#"{"kind": "maze-cleaning", "grid": 8, "agents": 2}"#);
        let d = &assign(
            std::slice::from_ref(&task),
            &[offer("lab-a", &lab_a), offer("lab-b", &lab_b)],
        )[0];
        let (chosen, qos) = d.assigned.clone().unwrap();
        assert_eq!(chosen, "lab-b");
        assert!((qos.similarity - 8.0 / 9.0).abs() < 1e-12, "{qos:?}");
        let blind =
            |name: &str| worker_offer(name.into(), &spec, &record, Resources::default(), 0, Vec::new()).unwrap();
        let d = &assign(std::slice::from_ref(&task), &[blind("lab-a"), blind("lab-b")])[0];
        assert_eq!(d.assigned.as_ref().unwrap().0, "lab-a", "without models: the lower id");
    }

    #[test]
    fn a_workers_offer_is_its_capacity_minus_what_runs() {
        let spec: WorkerSpec = serde_json::from_value(json!({
            "address": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            "capacity": {"gpus": 2, "cpuCores": 16, "nodeCpuCores": 8, "memoryGib": 64, "concurrentTasks": 3},
            "expertise": {"maze-cleaning": 0.9},
            "pricePerTaskWei": "5",
            "keySecretRef": {"name": "k"},
        }))
        .unwrap();
        let record = ChainRecord {
            reputation: 0.6,
            completed: 4,
            failed: 1,
        };
        let used = Resources {
            gpus: 1,
            cpu_millis: 4000,
            memory_mib: 8192,
        };
        let offer = worker_offer("lab".into(), &spec, &record, used, 1, Vec::new()).unwrap();
        assert_eq!(
            offer.free,
            Resources {
                gpus: 1,
                cpu_millis: 12_000,
                memory_mib: 57_344
            }
        );
        assert_eq!((offer.free_slots, offer.node_cpu_cores, offer.price_wei), (2, 8, 5));
    }
}
