//! The trainer against Stable-Baselines3 on Gymnasium's own environments, in one run on this machine.
//!
//! ```text
//! source tools/torch-env.sh && source tools/envserver-env.sh && source tools/baselines-env.sh
//! cargo bench -p drlaas-trainer --bench baselines                 # both sections
//! cargo bench -p drlaas-trainer --bench baselines -- cartpole     # one: cartpole | pendulum | halfcheetah
//! ```
//!
//! Each section trains with seeds 1–3 on one thread, both sides: the drlaas trainer on the
//! environment served by envserver/ over the environment protocol, and SB3's PPO with RL-Zoo's
//! hyperparameters (`sb3_ppo.py`, the Python of tools/baselines-env.sh) on the same Gymnasium in
//! process. `cartpole` and `pendulum` print seconds and environment steps until the mean return of
//! the last 100 training episodes first reaches the solved criterion (`CartPole-v1`: 475;
//! `Pendulum-v1`: −400), their medians, and SB3's median time over the trainer's. `halfcheetah`
//! (MuJoCo's `HalfCheetah-v5`, 1M steps; not run unless named, it takes about an hour) prints each
//! side's wall time for the whole budget and the mean return of 10 episodes of the final policy's
//! mean action, their means over the seeds, and the ratios. The trainer's time includes its own
//! final evaluation (10 episodes, a few seconds); SB3's does not. `only:drlaas` or `only:sb3` runs
//! one side of it (two such runs, one per core, take the time of the slower side instead of both).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use drlaas_crds::TrainingSpec;
use drlaas_trainer::progress::{ProgressLine, ProgressSink};
use drlaas_trainer::train::{self, TrainOptions};
use tch::Device;

const SEEDS: [u64; 3] = [1, 2, 3];
/// Episodes in the solved criterion's window (SB3 keeps the last 100 too).
const WINDOW: u32 = 100;

/// One section: a Gymnasium id, the drlaas spec, the solved return and a step budget.
struct Section {
    name: &'static str,
    id: &'static str,
    spec: &'static str,
    solved: f64,
    max_steps: u64,
}

const SECTIONS: [Section; 2] = [
    // specs/cartpole.json's PPO settings on Gymnasium's CartPole instead of the built-in one.
    Section {
        name: "cartpole",
        id: "CartPole-v1",
        spec: r#"{
          "environment": {"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [4], "actions": 2},
          "ppo": {"numEnvs": 8, "numSteps": 32, "numMinibatches": 1, "updateEpochs": 5, "learningRate": 0.003,
                  "gamma": 0.98, "gaeLambda": 0.8, "entCoef": 0.0, "clipVloss": false},
          "network": {"hidden": [32, 32]}
        }"#,
        solved: 475.0,
        max_steps: 300_000,
    },
    // deploy/examples/gymnasium-pendulum.yaml's settings.
    Section {
        name: "pendulum",
        id: "Pendulum-v1",
        spec: r#"{
          "environment": {"kind": "gymnasium", "id": "Pendulum-v1", "observationShape": [3], "continuousActions": 1},
          "ppo": {"numEnvs": 4, "numSteps": 1024, "numMinibatches": 16, "updateEpochs": 10, "learningRate": 0.001,
                  "gamma": 0.9, "gaeLambda": 0.95, "entCoef": 0.0}
        }"#,
        solved: -400.0,
        max_steps: 300_000,
    },
];

/// A fixed budget: train `steps` steps, then evaluate the final policy.
struct Budget {
    name: &'static str,
    id: &'static str,
    spec: &'static str,
    steps: u64,
    eval_episodes: u32,
}

const BUDGETS: [Budget; 1] = [
    // RL-Zoo's HalfCheetah settings (the competitor's), as the trainer's spec.
    Budget {
        name: "halfcheetah",
        id: "HalfCheetah-v5",
        spec: r#"{
          "environment": {"kind": "gymnasium", "id": "HalfCheetah-v5", "observationShape": [17], "continuousActions": 6},
          "ppo": {"numEnvs": 1, "numSteps": 512, "numMinibatches": 8, "updateEpochs": 20,
                  "learningRate": 2.0633e-05, "annealLr": false, "gamma": 0.98, "gaeLambda": 0.92,
                  "entCoef": 0.000401762, "clipCoef": 0.1, "clipVloss": false, "vfCoef": 0.58096,
                  "maxGradNorm": 0.8, "logStdInit": -2.0, "normObs": true, "normReward": true},
          "network": {"hidden": [256, 256], "activation": "relu"}
        }"#,
        steps: 1_000_000,
        eval_episodes: 10,
    },
];

fn main() {
    let sections: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let baselines = std::env::var("DRLAAS_BASELINES_PYTHON")
        .expect("DRLAAS_BASELINES_PYTHON: source tools/torch-env.sh && source tools/baselines-env.sh");
    assert!(
        std::env::var_os("DRLAAS_ENV_PYTHON").is_some(),
        "DRLAAS_ENV_PYTHON: source tools/envserver-env.sh"
    );
    println!(
        "machine: {} CPUs; both sides on 1 thread; solved = mean of the last {WINDOW} training episodes",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for section in SECTIONS
        .iter()
        .filter(|s| sections.is_empty() || sections.iter().any(|w| w == s.name))
    {
        compare(section, &baselines);
    }
    // Only when asked for by name: an hour of training.
    let only = sections.iter().find_map(|s| s.strip_prefix("only:"));
    for budget in BUDGETS.iter().filter(|b| sections.iter().any(|w| w == b.name)) {
        compare_budget(budget, &baselines, only);
    }
}

/// `budget` on both sides, or on the one side `only` names (`drlaas` or `sb3`).
fn compare_budget(budget: &Budget, baselines: &str, only: Option<&str>) {
    println!(
        "\n== {}: {} env steps, then {} episodes of the policy's mean action",
        budget.id, budget.steps, budget.eval_episodes
    );
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for seed in SEEDS {
        if only != Some("sb3") {
            let (secs, ret) = drlaas_budget(budget, seed);
            println!("drlaas seed {seed}: {secs:.1} s, evaluation mean return {ret:.1}");
            ours.push((secs, ret));
        }
        if only != Some("drlaas") {
            let (secs, ret) = sb3_budget(budget, seed, baselines);
            println!("SB3    seed {seed}: {secs:.1} s, evaluation mean return {ret:.1}");
            theirs.push((secs, ret));
        }
    }
    let mean = |xs: &[(f64, f64)], f: fn(&(f64, f64)) -> f64| xs.iter().map(f).sum::<f64>() / xs.len() as f64;
    for (side, runs) in [("drlaas", &ours), ("SB3", &theirs)] {
        if !runs.is_empty() {
            println!(
                "{side}: mean {:.1} s, mean evaluation return {:.1}",
                mean(runs, |x| x.0),
                mean(runs, |x| x.1)
            );
        }
    }
    if ours.is_empty() || theirs.is_empty() {
        return;
    }
    let (our_secs, our_ret) = (mean(&ours, |x| x.0), mean(&ours, |x| x.1));
    let (their_secs, their_ret) = (mean(&theirs, |x| x.0), mean(&theirs, |x| x.1));
    println!(
        "{}: mean {our_secs:.1} s and return {our_ret:.1} drlaas (through the environment server), \
         {their_secs:.1} s and return {their_ret:.1} SB3 PPO (RL-Zoo): SB3 / drlaas time = {:.2}x, return drlaas − SB3 = {:.1}",
        budget.id,
        their_secs / our_secs,
        our_ret - their_ret
    );
}

/// The trainer on `budget` with `seed`: seconds for the whole run and the final evaluation's mean return.
fn drlaas_budget(budget: &Budget, seed: u64) -> (f64, f64) {
    let mut spec: serde_json::Value = serde_json::from_str(budget.spec).unwrap();
    spec["totalEnvSteps"] = budget.steps.into();
    spec["evalEpisodes"] = budget.eval_episodes.into();
    let started = Instant::now();
    let result = train_on_one_thread(spec, seed, &mut drlaas_trainer::progress::Silent).expect("a model");
    (started.elapsed().as_secs_f64(), result.mean_return)
}

/// SB3 on `budget` with `seed`, in its own process.
fn sb3_budget(budget: &Budget, seed: u64, python: &str) -> (f64, f64) {
    let result = run_sb3(
        python,
        budget.id,
        seed,
        budget.steps,
        &["--budget", "--eval-episodes", &budget.eval_episodes.to_string()],
    );
    (
        result["seconds"].as_f64().unwrap(),
        result["evalMeanReturn"].as_f64().unwrap(),
    )
}

/// The trainer on `spec` with `seed`, on one thread, on the CPU, without checkpoints.
fn train_on_one_thread(
    mut spec: serde_json::Value,
    seed: u64,
    sink: &mut dyn ProgressSink,
) -> Option<train::TrainResult> {
    spec["seed"] = seed.into();
    spec["checkpointEvery"] = 0.into();
    let spec: TrainingSpec = serde_json::from_value(spec).unwrap();
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let options = TrainOptions {
        out_dir: dir.path().to_path_buf(),
        device: Device::Cpu,
        warm_start: None,
        resume: None,
        stop_after: None,
    };
    train::train(&spec, &options, sink).unwrap()
}

/// `sb3_ppo.py` on `id` with `seed` and `max_steps`, one thread, in its own process: its JSON line.
fn run_sb3(python: &str, id: &str, seed: u64, max_steps: u64, extra: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/sb3_ppo.py");
    let started = Instant::now();
    let out = Command::new(python)
        .arg(&script)
        .args(["--env", id, "--seed", &seed.to_string()])
        .args(["--max-steps", &max_steps.to_string(), "--threads", "1"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sb3_ppo.py failed after {:.0} s:\n{}",
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.lines().last().unwrap_or_default()).unwrap()
}

/// Records when the training window first reaches the solved return.
struct FirstSolved {
    threshold: f64,
    solved: Option<(f64, u64)>,
}

impl ProgressSink for FirstSolved {
    fn update(&mut self, line: &ProgressLine) {
        if self.solved.is_none()
            && line.episodes >= u64::from(WINDOW)
            && line.mean_return.is_some_and(|m| m >= self.threshold)
        {
            self.solved = Some((line.wall_seconds, line.env_steps));
        }
    }
}

fn compare(section: &Section, baselines: &str) {
    println!(
        "\n== {} until the last {WINDOW} training episodes average {}",
        section.id, section.solved
    );
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for seed in SEEDS {
        let (secs, steps) = drlaas(section, seed);
        println!("drlaas seed {seed}: {}", describe(secs, steps));
        ours.push(secs.unwrap_or(f64::INFINITY));
        let (secs, steps) = sb3(section, seed, baselines);
        println!("SB3    seed {seed}: {}", describe(secs, steps));
        theirs.push(secs.unwrap_or(f64::INFINITY));
    }
    let (ours, theirs) = (median(ours), median(theirs));
    println!(
        "{}: median {ours:.1} s drlaas (through the environment server), {theirs:.1} s SB3 PPO (RL-Zoo): SB3 / drlaas = {:.2}x",
        section.id,
        theirs / ours
    );
}

fn describe(secs: Option<f64>, steps: Option<u64>) -> String {
    match (secs, steps) {
        (Some(secs), Some(steps)) => format!("solved in {secs:.1} s, {steps} env steps"),
        _ => "not solved within the step budget".into(),
    }
}

/// The trainer on `section` with `seed`: seconds and env steps to the solved criterion.
fn drlaas(section: &Section, seed: u64) -> (Option<f64>, Option<u64>) {
    let mut spec: serde_json::Value = serde_json::from_str(section.spec).unwrap();
    spec["totalEnvSteps"] = section.max_steps.into();
    // The trainer stops once its window is solved and a greedy evaluation agrees.
    spec["targetMeanReturn"] = section.solved.into();
    spec["returnWindow"] = WINDOW.into();
    let mut sink = FirstSolved {
        threshold: section.solved,
        solved: None,
    };
    train_on_one_thread(spec, seed, &mut sink);
    (sink.solved.map(|s| s.0), sink.solved.map(|s| s.1))
}

/// SB3 on `section` with `seed`, in its own process.
fn sb3(section: &Section, seed: u64, python: &str) -> (Option<f64>, Option<u64>) {
    let (threshold, window) = (section.solved.to_string(), WINDOW.to_string());
    let result = run_sb3(
        python,
        section.id,
        seed,
        section.max_steps,
        &["--threshold", &threshold, "--window", &window],
    );
    (result["seconds"].as_f64(), result["envSteps"].as_u64())
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}
