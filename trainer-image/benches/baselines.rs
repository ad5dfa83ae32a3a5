//! The trainer against Stable-Baselines3 on Gymnasium's own environments, in one run on this machine.
//!
//! ```text
//! source tools/torch-env.sh && source tools/envserver-env.sh && source tools/baselines-env.sh
//! cargo bench -p drlaas-trainer --bench baselines                 # both sections
//! cargo bench -p drlaas-trainer --bench baselines -- cartpole     # one: cartpole | pendulum
//! ```
//!
//! Each section trains with seeds 1–3 on one thread, both sides: the drlaas trainer on the
//! environment served by envserver/ over the environment protocol, and SB3's PPO with RL-Zoo's
//! hyperparameters (`sb3_ppo.py`, the Python of tools/baselines-env.sh) on the same Gymnasium in
//! process. It prints seconds and environment steps until the mean return of the last 100 training
//! episodes first reaches the solved criterion (`CartPole-v1`: 475; `Pendulum-v1`: −400), their
//! medians, and SB3's median time over the trainer's.

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
    let mut sink = FirstSolved {
        threshold: section.solved,
        solved: None,
    };
    train::train(&spec, &options, &mut sink).unwrap();
    (sink.solved.map(|s| s.0), sink.solved.map(|s| s.1))
}

/// SB3 on `section` with `seed`, in its own process.
fn sb3(section: &Section, seed: u64, python: &str) -> (Option<f64>, Option<u64>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/sb3_ppo.py");
    let started = Instant::now();
    let out = Command::new(python)
        .arg(&script)
        .args(["--env", section.id, "--seed", &seed.to_string()])
        .args([
            "--threshold",
            &section.solved.to_string(),
            "--window",
            &WINDOW.to_string(),
        ])
        .args(["--max-steps", &section.max_steps.to_string(), "--threads", "1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sb3_ppo.py failed after {:.0} s:\n{}",
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let result: serde_json::Value = serde_json::from_str(line.lines().last().unwrap_or_default()).unwrap();
    (result["seconds"].as_f64(), result["envSteps"].as_u64())
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}
