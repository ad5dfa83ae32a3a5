//! The two experiments of the research drlaas reproduces (docs/architecture.md#overview), as a bench:
//! `cargo bench -p drlaas-operator --bench experiments` prints
//!
//! 1. **Recruitment** (simulated outcomes, real policies): the same batch of tasks on the same worker
//!    pool, recruited by the QoS greedy of `core::recruitment` and by the baselines of `core::policies`
//!    (random, reputation only, cheapest first). The recruitment decisions are the operator's own
//!    functions; what happens after an assignment is a discrete-event simulation: every worker has
//!    hidden truths (a real speed against the estimate recruitment sees, a real skill per environment
//!    kind against the level it declares) drawn once per market seed. Reputation and expertise only
//!    estimate them (reputation comes from a simulated history, declared levels are biased and noisy).
//!    An attempt's training time is `work / (estimated throughput × hidden speed)`, shortened by a warm
//!    start (`× (1 − 0.3·S)`, S = best similarity of the worker's models: those it lists at the start,
//!    then also each task it completed, as the operator reads them from chain); its outcome quality is the
//!    worker's hidden skill plus noise (the same noise for the same task, worker and attempt under every
//!    policy); it passes verification when the quality reaches the task's requirement before the
//!    deadline. Passing pays the worker its price; failing refunds the requester, excludes the worker
//!    from that task, and the task is recruited again (3 attempts at most). Reputation moves with the
//!    on-chain rule (η = 0.1) as tasks settle, so every policy sees the market it shaped. "QoS greedy
//!    without S" is the greedy with the similarity term's weight at 0 (what the operator did while it
//!    gave recruitment no models): the same run shows what the term changes.
//! 2. **Knowledge transfer** (real training): env steps to the target return from scratch against
//!    warm-started (`drlaas-trainer train --warm-start PATH`) from models trained on environments of
//!    high, medium and low similarity (`core::similarity`) to the target's. Source models are trained
//!    first (once per run of the bench), then every start is trained with several seeds. Steps to
//!    target: the env steps of the first progress line whose mean return (last 100 episodes) reaches the
//!    target; a run that never does counts as its budget (printed with `>`).
//!
//! Flags: `--seeds N` market seeds (default 25), `--tasks N` tasks per batch (default: a batch of 20,
//! then one of 60), `--workers N` workers (16), `--transfer-seeds N` training seeds per start (5),
//! `--jobs N` trainer processes at once (2), `--quick` (CartPole transfer only, 2 seeds, 5 markets),
//! `--skip-recruitment`, `--skip-transfer`. The trainer: `DRLAAS_TRAINER_BIN`, else `drlaas-trainer`
//! next to the bench (`locate_trainer`: under `cargo bench`, the release build's).

#[path = "support.rs"]
mod bench_support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;

use bench_support::{arg, flag, median};
use drlaas_core::policies::{Policy, splitmix64};
use drlaas_core::recruitment::{Resources, TaskDemand, WorkerOffer, estimated_throughput};
use drlaas_core::similarity::similarity;
use drlaas_crds::trainer_output::{ProgressLine, TrainResult};
use drlaas_envs::descriptor::EnvDescriptor;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------------
// Recruitment: a discrete-event simulation of a market whose workers' truths are hidden.
// ---------------------------------------------------------------------------------------------------

const KINDS: [&str; 4] = ["cartpole", "target-localization", "maze-cleaning", "fleet-coordination"];
/// Reputation step of the on-chain rule (docs/architecture.md#recruitment).
const ETA: f64 = 0.1;
/// Attempts per task before it is given up.
const MAX_ATTEMPTS: u32 = 3;
/// How much a warm start from an identical environment shortens training (assumed, see the module doc).
const WARM_START_SAVING: f64 = 0.3;
/// Wei per price unit (0.001 ETH).
const UNIT_WEI: f64 = 1e15;

/// A small seeded generator over [`splitmix64`].
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn unit(&mut self) -> f64 {
        (splitmix64(&mut self.0) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    fn below(&mut self, n: usize) -> usize {
        (splitmix64(&mut self.0) % n as u64) as usize
    }

    /// A standard normal draw (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-12);
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * self.unit()).cos()
    }
}

/// A seed from a few numbers and strings: the common random numbers of one (task, worker, attempt).
fn mix(seed: u64, parts: &[&str]) -> u64 {
    let mut state = seed;
    for part in parts {
        for byte in part.bytes() {
            state ^= u64::from(byte);
            splitmix64(&mut state);
        }
        state ^= 0xff;
        splitmix64(&mut state);
    }
    state
}

fn random_env(kind: &str, rng: &mut Rng) -> EnvDescriptor {
    let value = match kind {
        "cartpole" => json!({"kind": kind, "horizon": 200 + 300 * rng.below(2)}),
        "target-localization" => json!({"kind": kind, "grid": 6 + 2 * rng.below(3), "agents": 1 + rng.below(3),
                                         "targets": 1 + rng.below(3)}),
        "maze-cleaning" => json!({"kind": kind, "grid": 6 + 2 * rng.below(3), "agents": 1 + rng.below(3),
                                   "horizon": 80 + 40 * rng.below(3)}),
        _ => json!({"kind": kind, "grid": 6 + 2 * rng.below(3), "agents": 1 + rng.below(3),
                    "horizon": 100 + 50 * rng.below(3)}),
    };
    serde_json::from_value(value).expect("a valid descriptor")
}

/// What recruitment cannot see about a worker.
#[derive(Debug, Clone)]
struct Hidden {
    /// Real throughput over the estimate (older GPUs, shared nodes, or better than declared).
    speed: f64,
    /// Probability-like skill per declared kind: the mean quality of its trained models.
    skill: BTreeMap<String, f64>,
}

#[derive(Debug, Clone)]
struct SimTask {
    demand: TaskDemand,
    /// Reference minutes of training on a pool that delivers the estimated throughput.
    work: f64,
    /// Minutes from the start of an attempt to its deadline.
    deadline: f64,
    /// Model quality the target return needs (hidden scale of `Hidden::skill`).
    required: f64,
}

#[derive(Debug, Clone)]
struct Market {
    tasks: Vec<SimTask>,
    workers: Vec<WorkerOffer>,
    hidden: Vec<Hidden>,
}

fn market(seed: u64, tasks: usize, workers: usize) -> Market {
    let mut rng = Rng::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5eed);
    let mut offers = Vec::new();
    let mut hidden = Vec::new();
    for w in 0..workers {
        let gpus = [0, 0, 1, 2][rng.below(4)];
        let cores = [4, 8, 16, 32][rng.below(4)];
        let slots = 1 + rng.below(3) as u32;
        let mut kinds: Vec<&str> = KINDS.iter().copied().filter(|_| rng.unit() < 0.6).collect();
        if kinds.is_empty() {
            kinds.push(KINDS[rng.below(KINDS.len())]);
        }
        // Most workers overstate their expertise, some a lot.
        let bias = rng.range(-0.05, 0.35);
        let mut skill = BTreeMap::new();
        let mut expertise = BTreeMap::new();
        for kind in &kinds {
            let s = rng.range(0.25, 0.95);
            skill.insert(kind.to_string(), s);
            expertise.insert(kind.to_string(), (s + bias + 0.1 * rng.normal()).clamp(0.05, 1.0));
        }
        // Reputation from a history of earlier tasks, settled with the chain's rule: they passed as
        // often as the worker is skilled, less often when it is slow (missed deadlines).
        let speed = (0.35 * rng.normal()).exp();
        let mean_skill = skill.values().sum::<f64>() / skill.len() as f64;
        let on_time = speed.min(1.0).sqrt();
        let (mut reputation, mut completed, mut failed) = (0.5, 0, 0);
        for _ in 0..rng.below(31) {
            if rng.unit() < mean_skill * on_time {
                reputation += ETA * (1.0 - reputation);
                completed += 1;
            } else {
                reputation -= ETA * reputation;
                failed += 1;
            }
        }
        let declared = expertise.values().sum::<f64>() / expertise.len() as f64;
        let price = (0.4 + declared + 0.3 * f64::from(gpus)) * rng.range(0.7, 1.3);
        let models = (0..rng.below(3))
            .map(|_| random_env(kinds[rng.below(kinds.len())], &mut rng))
            .collect();
        offers.push(WorkerOffer {
            id: format!("w{w:02}"),
            reputation,
            expertise,
            completed,
            failed,
            price_wei: (price * UNIT_WEI) as u128,
            free: Resources {
                gpus,
                cpu_millis: cores * 1000,
                memory_mib: 65_536,
            },
            free_slots: slots,
            node_cpu_cores: cores,
            models,
        });
        hidden.push(Hidden { speed, skill });
    }
    let tasks = (0..tasks)
        .map(|i| {
            let kind = KINDS[rng.below(KINDS.len())];
            let work = rng.range(30.0, 180.0);
            SimTask {
                demand: TaskDemand {
                    id: format!("t{i:03}"),
                    environment: random_env(kind, &mut rng),
                    budget_wei: (rng.range(1.5, 4.0) * UNIT_WEI) as u128,
                    admitted_seq: i as u64,
                    resources: Resources {
                        gpus: u32::from(kind != "cartpole" && rng.unit() < 0.35),
                        cpu_millis: [1000, 2000, 4000][rng.below(3)],
                        memory_mib: 2048,
                    },
                    min_reputation: 0.0,
                    excluded: Vec::new(),
                },
                work,
                deadline: work * rng.range(1.3, 2.5),
                required: rng.range(0.35, 0.75),
            }
        })
        .collect();
    Market {
        tasks,
        workers: offers,
        hidden,
    }
}

/// One policy on one market: the figures of the batch.
#[derive(Debug, Clone, Default)]
struct Outcome {
    mean_qos: f64,
    /// Mean similarity term (S) of the assignments: how close the chosen worker's best model was.
    mean_similarity: f64,
    mean_settle_minutes: f64,
    makespan_minutes: f64,
    /// Mean over tasks of the final attempt's return relative to the target (≥ 1: target met;
    /// a task nobody could take counts 0).
    return_to_target: f64,
    /// Share of the batch whose target was met.
    met: f64,
    failed_attempts: f64,
    /// Paid to workers per task whose target was met, in 0.001 ETH.
    paid_per_success: f64,
}

#[derive(Debug)]
struct Run {
    task: usize,
    worker: usize,
    end: f64,
    passed: bool,
    achieved: f64,
}

fn simulate(market: &Market, policy: Policy, seed: u64) -> Outcome {
    let mut offers = market.workers.clone();
    let index: BTreeMap<String, usize> = offers.iter().enumerate().map(|(i, w)| (w.id.clone(), i)).collect();
    let n = market.tasks.len();
    let mut excluded: Vec<Vec<String>> = vec![Vec::new(); n];
    let mut attempts = vec![0u32; n];
    let mut settled_at = vec![f64::NAN; n];
    let mut achieved = vec![0.0; n];
    let mut met = vec![false; n];
    let mut pending: Vec<usize> = (0..n).collect();
    let mut running: Vec<Run> = Vec::new();
    let (mut qos_sum, mut assignments, mut failures, mut paid) = (0.0, 0usize, 0usize, 0.0);
    let mut similarity_sum = 0.0;
    let mut now = 0.0;
    let mut round = 0u64;
    loop {
        if !pending.is_empty() {
            let demands: Vec<TaskDemand> = pending
                .iter()
                .map(|&t| TaskDemand {
                    excluded: excluded[t].clone(),
                    ..market.tasks[t].demand.clone()
                })
                .collect();
            let policy = match policy {
                Policy::Random { seed } => Policy::Random {
                    seed: seed.wrapping_mul(1_000_003).wrapping_add(round),
                },
                other => other,
            };
            round += 1;
            for decision in policy.assign(&demands, &offers) {
                let Some((worker_id, qos)) = decision.assigned else {
                    continue;
                };
                let t: usize = decision.task[1..].parse().expect("task ids are t<index>");
                let w = index[&worker_id];
                let task = &market.tasks[t];
                // What the worker really delivers.
                let offer = &offers[w];
                let reference = reference_throughput(&task.demand);
                let warm = offer
                    .models
                    .iter()
                    .map(|m| similarity(m, &task.demand.environment))
                    .fold(0.0, f64::max);
                let minutes = task.work * reference
                    / (estimated_throughput(offer, &task.demand) * market.hidden[w].speed)
                    * (1.0 - WARM_START_SAVING * warm);
                let mut luck = Rng::new(mix(seed, &[&decision.task, &worker_id, &attempts[t].to_string()]));
                let skill = market.hidden[w].skill[task.demand.environment.kind_name()];
                let quality = (skill + 0.08 * luck.normal()).clamp(0.0, 1.0);
                let run = if minutes > task.deadline {
                    Run {
                        task: t,
                        worker: w,
                        end: now + task.deadline,
                        passed: false,
                        achieved: quality * task.deadline / minutes / task.required,
                    }
                } else {
                    Run {
                        task: t,
                        worker: w,
                        end: now + minutes,
                        passed: quality >= task.required,
                        achieved: quality / task.required,
                    }
                };
                let offer = &mut offers[w];
                offer.free.gpus -= task.demand.resources.gpus;
                offer.free.cpu_millis -= task.demand.resources.cpu_millis;
                offer.free.memory_mib -= task.demand.resources.memory_mib;
                offer.free_slots -= 1;
                qos_sum += qos.total;
                similarity_sum += qos.similarity;
                assignments += 1;
                attempts[t] += 1;
                pending.retain(|&p| p != t);
                running.push(run);
            }
        }
        // The next attempt to end (ties: the lower task index).
        let Some(next) = (0..running.len()).min_by(|&a, &b| {
            running[a]
                .end
                .total_cmp(&running[b].end)
                .then(running[a].task.cmp(&running[b].task))
        }) else {
            break;
        };
        let run = running.swap_remove(next);
        now = run.end;
        let task = &market.tasks[run.task];
        let offer = &mut offers[run.worker];
        offer.free.gpus += task.demand.resources.gpus;
        offer.free.cpu_millis += task.demand.resources.cpu_millis;
        offer.free.memory_mib += task.demand.resources.memory_mib;
        offer.free_slots += 1;
        achieved[run.task] = run.achieved;
        if run.passed {
            offer.reputation += ETA * (1.0 - offer.reputation);
            offer.completed += 1;
            // The model it trained is one of its models from now on (the operator reads it from
            // the chain's TaskCompleted event and the task's document).
            if !offer.models.contains(&task.demand.environment) {
                offer.models.push(task.demand.environment.clone());
            }
            paid += offer.price_wei as f64 / UNIT_WEI;
            met[run.task] = true;
            settled_at[run.task] = now;
        } else {
            offer.reputation -= ETA * offer.reputation;
            offer.failed += 1;
            failures += 1;
            excluded[run.task].push(offer.id.clone());
            if attempts[run.task] >= MAX_ATTEMPTS {
                settled_at[run.task] = now;
            } else {
                pending.push(run.task);
            }
        }
    }
    // Tasks nobody could take any more are given up when the market goes quiet.
    for t in pending {
        settled_at[t] = now;
    }
    let successes = met.iter().filter(|m| **m).count();
    Outcome {
        mean_qos: qos_sum / assignments.max(1) as f64,
        mean_similarity: similarity_sum / assignments.max(1) as f64,
        mean_settle_minutes: settled_at.iter().sum::<f64>() / n as f64,
        makespan_minutes: now,
        return_to_target: achieved.iter().sum::<f64>() / n as f64,
        met: successes as f64 / n as f64,
        failed_attempts: failures as f64,
        paid_per_success: paid / successes.max(1) as f64,
    }
}

/// Throughput of a 32-core pool with a GPU when the task asks one: the work's reference.
fn reference_throughput(task: &TaskDemand) -> f64 {
    let reference = WorkerOffer {
        id: String::new(),
        reputation: 0.0,
        expertise: BTreeMap::new(),
        completed: 0,
        failed: 0,
        price_wei: 0,
        free: Resources::default(),
        free_slots: 0,
        node_cpu_cores: 32,
        models: Vec::new(),
    };
    estimated_throughput(&reference, task)
}

/// `median [min – max]` of the values.
fn spread(values: &[f64], decimals: usize) -> String {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.d$} [{lo:.d$}–{hi:.d$}]", median(values.to_vec()), d = decimals)
}

fn bench_recruitment(seeds: usize, tasks: usize, workers: usize) {
    let start = Instant::now();
    println!(
        "### A batch of {tasks} tasks on {workers} workers, {seeds} market seeds; each cell: median [min–max] over the seeds"
    );
    println!();
    println!(
        "| policy | mean QoS | mean S | time to settle, mean (min) | makespan (min) | return / target | target met | failed attempts | paid per met task (mETH) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut by_policy: Vec<(Policy, Vec<Outcome>)> = Policy::all(0).iter().map(|p| (*p, Vec::new())).collect();
    for seed in 1..=seeds as u64 {
        let m = market(seed, tasks, workers);
        for (policy, outcomes) in &mut by_policy {
            let policy = match policy {
                Policy::Random { .. } => Policy::Random { seed },
                other => *other,
            };
            outcomes.push(simulate(&m, policy, seed));
        }
    }
    for (policy, outcomes) in &by_policy {
        let column = |f: fn(&Outcome) -> f64| outcomes.iter().map(f).collect::<Vec<f64>>();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            policy.name(),
            spread(&column(|o| o.mean_qos), 3),
            spread(&column(|o| o.mean_similarity), 2),
            spread(&column(|o| o.mean_settle_minutes), 0),
            spread(&column(|o| o.makespan_minutes), 0),
            spread(&column(|o| o.return_to_target), 2),
            spread(&column(|o| 100.0 * o.met), 0) + " %",
            spread(&column(|o| o.failed_attempts), 0),
            spread(&column(|o| o.paid_per_success), 2),
        );
    }
    println!();
    // Paired over the same markets: on how many did the greedy do strictly better?
    let greedy = &by_policy[0].1;
    for (policy, outcomes) in &by_policy[1..] {
        let better = |f: fn(&Outcome) -> f64, higher: bool| {
            greedy
                .iter()
                .zip(outcomes)
                .filter(|(g, o)| if higher { f(g) > f(o) } else { f(g) < f(o) })
                .count()
        };
        println!(
            "QoS greedy vs {}: higher return in {}/{seeds} markets, more targets met in {}/{seeds}, fewer failed attempts in {}/{seeds}, faster settling in {}/{seeds}, cheaper per met task in {}/{seeds}",
            policy.name(),
            better(|o| o.return_to_target, true),
            better(|o| o.met, true),
            better(|o| o.failed_attempts, false),
            better(|o| o.mean_settle_minutes, false),
            better(|o| o.paid_per_success, false),
        );
    }
    // What the similarity term changes: the greedy against itself without it, market by market.
    let without = &by_policy
        .iter()
        .find(|(p, _)| *p == Policy::QosWithoutSimilarity)
        .expect("the ablation runs")
        .1;
    let ratio = |f: fn(&Outcome) -> f64| {
        let ratios: Vec<f64> = greedy.iter().zip(without).map(|(g, o)| f(g) / f(o)).collect();
        format!("{:.3}", median(ratios))
    };
    let fewer_failures: Vec<f64> = greedy
        .iter()
        .zip(without)
        .map(|(g, o)| o.failed_attempts - g.failed_attempts)
        .collect();
    let changed = greedy
        .iter()
        .zip(without)
        .filter(|(g, o)| g.mean_qos != o.mean_qos)
        .count();
    println!(
        "Similarity term, with/without (median over the markets of the per-market ratio): mean S ×{}, time to settle ×{}, makespan ×{}, return/target ×{}; failed attempts {:+.0} (median difference); the choices differed (another mean QoS) in {changed}/{seeds} markets",
        ratio(|o| o.mean_similarity),
        ratio(|o| o.mean_settle_minutes),
        ratio(|o| o.makespan_minutes),
        ratio(|o| o.return_to_target),
        -median(fewer_failures) + 0.0,
    );
    println!("(simulation: {:.1} s)", start.elapsed().as_secs_f64());
    println!();
}

// ---------------------------------------------------------------------------------------------------
// Knowledge transfer: real training with the trainer binary.
// ---------------------------------------------------------------------------------------------------

/// One environment family: a target task and source environments of decreasing similarity.
#[derive(Debug)]
struct Family {
    name: &'static str,
    /// The task spec without environment, seed, budget and target.
    spec: Value,
    target_env: Value,
    target_return: f64,
    /// Env steps of a training run on the target (the cap of steps to target).
    target_budget: u64,
    /// Env steps each source model trains for.
    source_budget: u64,
    /// (label, environment, the source's own stopping return if any).
    sources: Vec<(&'static str, Value, Option<f64>)>,
}

fn families(quick: bool) -> Vec<Family> {
    let cartpole = Family {
        name: "cartpole",
        spec: json!({"algorithm": "ppo",
                     "ppo": {"numEnvs": 8, "numSteps": 32, "numMinibatches": 1, "updateEpochs": 5,
                             "learningRate": 0.003, "gamma": 0.98, "gaeLambda": 0.8, "entCoef": 0.0,
                             "clipVloss": false},
                     "network": {"hidden": [32, 32]}}),
        target_env: json!({"kind": "cartpole", "horizon": 500}),
        target_return: 475.0,
        target_budget: 200_000,
        source_budget: 200_000,
        sources: vec![
            ("high", json!({"kind": "cartpole", "horizon": 400}), Some(380.0)),
            ("medium", json!({"kind": "cartpole", "horizon": 200}), Some(190.0)),
            ("low", json!({"kind": "cartpole", "horizon": 50}), Some(47.5)),
        ],
    };
    let fleet = Family {
        name: "fleet-coordination",
        spec: json!({"algorithm": "ppo",
                     "ppo": {"numEnvs": 16, "numSteps": 64, "numMinibatches": 4, "updateEpochs": 4,
                             "learningRate": 0.001, "gamma": 0.95}}),
        target_env: json!({"kind": "fleet-coordination", "grid": 6, "agents": 2, "horizon": 100}),
        target_return: 0.5,
        target_budget: 102_400,
        source_budget: 61_440,
        sources: vec![
            (
                "high",
                json!({"kind": "fleet-coordination", "grid": 6, "agents": 2, "requestRate": 0.25, "horizon": 80}),
                None,
            ),
            (
                "medium",
                json!({"kind": "fleet-coordination", "grid": 6, "agents": 1, "requestRate": 0.1, "horizon": 50}),
                None,
            ),
            (
                "low",
                json!({"kind": "fleet-coordination", "grid": 8, "agents": 1, "requestRate": 0.05, "maxWaiting": 8,
                       "horizon": 25}),
                None,
            ),
        ],
    };
    if quick { vec![cartpole] } else { vec![cartpole, fleet] }
}

/// What one training run reported.
#[derive(Debug, Clone, Default)]
struct Trained {
    /// Env steps of the first update whose mean return reached the target.
    steps_to_target: Option<u64>,
    env_steps: u64,
    last_mean_return: Option<f64>,
    /// Tensors the warm start reused, of the network's total.
    reused: Option<(u64, u64)>,
    model: PathBuf,
    seconds: f64,
}

fn train(trainer: &Path, spec: &Value, out: &Path, warm: Option<&Path>, target: Option<f64>) -> Trained {
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out).expect("output directory");
    let spec_path = out.join("task.json");
    std::fs::write(&spec_path, serde_json::to_vec_pretty(spec).unwrap()).unwrap();
    let mut command = Command::new(trainer);
    command
        .args([
            "train",
            "--progress",
            "json",
            "--threads",
            "1",
            "--device",
            "cpu",
            "--task",
        ])
        .arg(&spec_path)
        .arg("--out")
        .arg(out.join("run"))
        .env_remove("DRLAAS_STORE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(warm) = warm {
        command.arg("--warm-start").arg(warm);
    }
    let start = Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("{} does not start: {e}", trainer.display()));
    let mut trained = Trained::default();
    let mut tail = Vec::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap_or_default();
        let Some(progress) = ProgressLine::parse(&line) else {
            tail.push(line);
            continue;
        };
        let steps = progress.env_steps;
        trained.env_steps = steps;
        if let Some(mean) = progress.mean_return {
            trained.last_mean_return = Some(mean);
            if trained.steps_to_target.is_none() && target.is_some_and(|t| mean >= t) {
                trained.steps_to_target = Some(steps);
            }
        }
    }
    let status = child.wait().unwrap();
    trained.seconds = start.elapsed().as_secs_f64();
    assert!(status.success(), "the trainer failed ({status}): {}", tail.join("\n"));
    let result: TrainResult =
        serde_json::from_slice(&std::fs::read(out.join("run/result.json")).expect("result.json")).unwrap();
    trained.reused = result.warm_start.map(|w| (w.reused as u64, w.total as u64));
    trained.model = out.join("run/model.safetensors");
    trained
}

fn spec_for(family: &Family, env: &Value, seed: u64, budget: u64, target: Option<f64>) -> Value {
    let mut spec = family.spec.clone();
    spec["environment"] = env.clone();
    spec["seed"] = json!(seed);
    spec["totalEnvSteps"] = json!(budget);
    spec["evalEpisodes"] = json!(10);
    spec["checkpointEvery"] = json!(0);
    if let Some(target) = target {
        // The trainer stops at the target: steps after it would not change the figure.
        spec["targetMeanReturn"] = json!(target);
    }
    spec
}

/// Runs `jobs` closures on `threads` threads; results in the jobs' order.
fn parallel<T: Send>(threads: usize, jobs: Vec<Box<dyn FnOnce() -> T + Send + '_>>) -> Vec<T> {
    let n = jobs.len();
    let queue = Mutex::new(jobs.into_iter().enumerate().collect::<Vec<_>>());
    let results = Mutex::new((0..n).map(|_| None).collect::<Vec<Option<T>>>());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let Some((i, job)) = ({
                        let mut q = queue.lock().unwrap();
                        if q.is_empty() { None } else { Some(q.remove(0)) }
                    }) else {
                        break;
                    };
                    let out = job();
                    results.lock().unwrap()[i] = Some(out);
                }
            });
        }
    });
    results.into_inner().unwrap().into_iter().map(|r| r.unwrap()).collect()
}

fn descriptor(env: &Value) -> EnvDescriptor {
    serde_json::from_value(env.clone()).expect("a valid descriptor")
}

fn bench_transfer(trainer: &Path, family: &Family, seeds: u64, jobs: usize, scratch: &Path) {
    let start = Instant::now();
    let target = descriptor(&family.target_env);
    println!(
        "### {}: target {} (mean return ≥ {}), {seeds} seeds, budget {} env steps",
        family.name, family.target_env, family.target_return, family.target_budget
    );
    // Sources: trained once, on their own environments.
    let source_jobs: Vec<Box<dyn FnOnce() -> Trained + Send + '_>> = family
        .sources
        .iter()
        .enumerate()
        .map(|(i, (label, env, stop))| {
            let spec = spec_for(family, env, 1000 + i as u64, family.source_budget, *stop);
            let out = scratch.join(format!("{}-source-{label}", family.name));
            Box::new(move || train(trainer, &spec, &out, None, *stop)) as Box<dyn FnOnce() -> Trained + Send + '_>
        })
        .collect();
    let sources = parallel(jobs, source_jobs);

    // Every start × seed on the target.
    let mut starts: Vec<(String, Option<PathBuf>, f64)> = vec![("scratch".into(), None, f64::NAN)];
    for ((label, env, _), trained) in family.sources.iter().zip(&sources) {
        starts.push((
            label.to_string(),
            Some(trained.model.clone()),
            similarity(&descriptor(env), &target),
        ));
    }
    let mut target_jobs: Vec<Box<dyn FnOnce() -> Trained + Send + '_>> = Vec::new();
    for seed in 1..=seeds {
        for (label, model, _) in &starts {
            let spec = spec_for(
                family,
                &family.target_env,
                seed,
                family.target_budget,
                Some(family.target_return),
            );
            let out = scratch.join(format!("{}-{label}-{seed}", family.name));
            let model = model.clone();
            let target = family.target_return;
            target_jobs.push(Box::new(move || {
                train(trainer, &spec, &out, model.as_deref(), Some(target))
            }));
        }
    }
    let results = parallel(jobs, target_jobs);

    println!();
    println!(
        "| start | source environment | similarity | source's last training mean return (own env) | tensors reused | steps to target, median | per seed | vs scratch |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | --- | ---: |");
    let steps = |s: &Trained| s.steps_to_target.unwrap_or(family.target_budget) as f64;
    let cell = |s: &Trained| match s.steps_to_target {
        Some(n) => n.to_string(),
        None => format!(">{}", family.target_budget),
    };
    let mut scratch_median = f64::NAN;
    for (k, (label, _, sim)) in starts.iter().enumerate() {
        let runs: Vec<&Trained> = results.iter().skip(k).step_by(starts.len()).collect();
        let med = median(runs.iter().map(|r| steps(r)).collect());
        let censored = runs.iter().filter(|r| r.steps_to_target.is_none()).count() * 2 > runs.len();
        if k == 0 {
            scratch_median = med;
        }
        let (env, sim, source_return, reused) = if k == 0 {
            ("–".to_string(), "–".to_string(), "–".to_string(), "–".to_string())
        } else {
            let source = &sources[k - 1];
            let reused = runs[0].reused.map_or("?".into(), |(r, t)| format!("{r}/{t}"));
            (
                format!("`{}`", family.sources[k - 1].1),
                format!("{sim:.2}"),
                source.last_mean_return.map_or("–".into(), |m| format!("{m:.2}")),
                reused,
            )
        };
        println!(
            "| {label} | {env} | {sim} | {source_return} | {reused} | {}{med:.0} | {} | {:.2}× |",
            if censored { ">" } else { "" },
            runs.iter().map(|r| cell(r)).collect::<Vec<_>>().join(", "),
            scratch_median / med,
        );
    }
    let train_seconds: f64 = sources.iter().chain(&results).map(|r| r.seconds).sum();
    println!();
    println!(
        "({} training runs, {:.0} s of training, {:.0} s wall)",
        sources.len() + results.len(),
        train_seconds,
        start.elapsed().as_secs_f64()
    );
    println!();
}

fn main() {
    let quick = flag("--quick");
    let seeds = arg("--seeds", if quick { 5 } else { 25 });
    let tasks = flag("--tasks").then(|| arg("--tasks", 60));
    let workers = arg("--workers", 16);
    let transfer_seeds = arg("--transfer-seeds", if quick { 2 } else { 5 }) as u64;
    let jobs = arg("--jobs", 2);
    let start = Instant::now();
    if !flag("--skip-recruitment") {
        // A batch the pool can take almost at once, and one that queues (about 32 slots in 16 workers).
        let batches = match tasks {
            Some(tasks) => vec![tasks],
            None => vec![20, 60],
        };
        println!("## 1. Recruitment: QoS greedy against baselines (simulated outcomes)");
        println!();
        for tasks in batches {
            bench_recruitment(seeds, tasks, workers);
        }
    }
    if !flag("--skip-transfer") {
        let trainer = drlaas_local::local_pod::locate_trainer()
            .filter(|p| p.is_file())
            .expect("no trainer: build it (cargo build -p drlaas-trainer) or set DRLAAS_TRAINER_BIN");
        println!("## 2. Knowledge transfer: env steps to the target return (real training)");
        println!("trainer: {} ({jobs} at once, one thread each)", trainer.display());
        println!();
        let scratch = std::env::temp_dir().join(format!("drlaas-experiments-{}", std::process::id()));
        for family in families(quick) {
            bench_transfer(&trainer, &family, transfer_seeds, jobs, &scratch);
        }
        let _ = std::fs::remove_dir_all(&scratch);
    }
    println!("(whole bench: {:.0} s)", start.elapsed().as_secs_f64());
}
