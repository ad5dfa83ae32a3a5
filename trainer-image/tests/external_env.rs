//! Training on an external environment: Gymnasium's own `CartPole-v1`, served by the environment
//! server (envserver/) and stepped over the environment protocol, learned by the same PPO as the
//! built-in environments; `Pendulum-v1`'s continuous actions learned by PPO's Gaussian policy with
//! normalized observations and scaled rewards; DQN refusing continuous actions; and an environment
//! that crashes mid-run failing the run with its message.
//!
//! Needs `DRLAAS_ENV_PYTHON` (`source tools/envserver-env.sh`; tools/test.sh does).

mod common;

use std::path::PathBuf;
use std::process::Command;

use drlaas_crds::trainer_output::FailureReport;
use drlaas_trainer::evaluate::{self, ActionSelection, Policy};
use drlaas_trainer::progress::Collect;
use drlaas_trainer::train;
use tch::Device;

/// CartPole-v1 from Gymnasium, with the shipped cartpole spec's PPO settings.
const GYMNASIUM_CARTPOLE: &str = r#"{
  "environment": {"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [4], "actions": 2},
  "algorithm": "ppo",
  "ppo": {"numEnvs": 8, "numSteps": 32, "numMinibatches": 1, "updateEpochs": 5, "learningRate": 0.003,
          "gamma": 0.98, "gaeLambda": 0.8, "entCoef": 0.0, "clipVloss": false},
  "totalEnvSteps": 120000,
  "targetMeanReturn": 200,
  "seed": 1,
  "checkpointEvery": 0,
  "evalEpisodes": 20,
  "network": {"hidden": [32, 32]}
}"#;

#[test]
fn ppo_learns_gymnasium_cartpole_through_the_environment_server() {
    assert!(
        std::env::var_os("DRLAAS_ENV_PYTHON").is_some(),
        "DRLAAS_ENV_PYTHON: source tools/envserver-env.sh"
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = common::spec(GYMNASIUM_CARTPOLE);
    let result = common::train_to_end(&spec, dir.path());
    let reached = result.target_reached.as_ref().unwrap_or_else(|| panic!("{result:?}"));
    assert!(reached.env_steps <= 120_000, "took {} env steps", reached.env_steps);

    // The saved model plays Gymnasium's CartPole from disk, far above a random policy.
    let (policy, manifest) = Policy::load(&common::model_path(dir.path()), Device::Cpu).unwrap();
    assert_eq!(manifest.environment, spec.environment);
    let evaluation = policy
        .evaluate(&manifest.environment, ActionSelection::Sample, 20, 7)
        .unwrap();
    let random = evaluate::evaluate_random(&manifest.environment, 20, 7).unwrap();
    assert!(random.mean_return < 50.0, "{random:?}");
    assert!(
        evaluation.mean_return >= 200.0,
        "{evaluation:?} against random {random:?}"
    );
}

/// Pendulum-v1 with the settings of deploy/examples/gymnasium-pendulum.yaml and a shorter window.
const GYMNASIUM_PENDULUM: &str = r#"{
  "environment": {"kind": "gymnasium", "id": "Pendulum-v1", "observationShape": [3], "continuousActions": 1},
  "ppo": {"numEnvs": 4, "numSteps": 1024, "numMinibatches": 16, "updateEpochs": 10, "learningRate": 0.001,
          "gamma": 0.9, "gaeLambda": 0.95, "entCoef": 0.0},
  "totalEnvSteps": 200000,
  "targetMeanReturn": -400,
  "returnWindow": 20,
  "evalEpisodes": 20,
  "seed": 1,
  "checkpointEvery": 0
}"#;

#[test]
fn ppo_learns_pendulum_s_continuous_actions_and_the_model_carries_its_observation_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let spec = common::spec(GYMNASIUM_PENDULUM);
    let mut lines = Collect::default();
    let result = train::train(&spec, &common::options(dir.path()), &mut lines)
        .unwrap()
        .unwrap();
    let reached = result.target_reached.as_ref().unwrap_or_else(|| panic!("{result:?}"));
    assert!(reached.env_steps <= 200_000, "took {} env steps", reached.env_steps);
    // Every progress line says how widely the Gaussian still explores, and it narrows as it learns.
    let spread: Vec<f64> = lines.0.iter().filter_map(|l| l.stats.action_std).collect();
    assert_eq!(spread.len(), lines.0.len(), "an actionStd in every line");
    assert!(spread.last() < spread.first(), "{spread:?}");

    // The model keeps the Gaussian's spread and the observation and reward statistics.
    let model = drlaas_trainer::artifact::read(&common::model_path(dir.path())).unwrap();
    for name in [
        "policy.log_std",
        "normalize.obs.mean",
        "normalize.obs.var",
        "normalize.reward.var",
    ] {
        assert!(model.tensors.contains_key(name), "{name} in {:?}", model.tensors.keys());
    }
    // Played from disk on other seeds with its mean action, far above random torques.
    let (policy, manifest) = Policy::load(&common::model_path(dir.path()), Device::Cpu).unwrap();
    let evaluation = policy
        .evaluate(&manifest.environment, ActionSelection::Greedy, 20, 7)
        .unwrap();
    let random = evaluate::evaluate_random(&manifest.environment, 20, 7).unwrap();
    assert!(random.mean_return < -900.0, "{random:?}");
    assert!(
        evaluation.mean_return >= -400.0,
        "{evaluation:?} against random {random:?}"
    );
    // Without the statistics it was trained with, the same weights do not hold the pendulum up:
    // they are part of the model.
    let mut bare = model;
    bare.tensors.retain(|name, _| !name.starts_with("normalize."));
    let unnormalized = Policy::from_artifact(&bare, Device::Cpu)
        .unwrap()
        .evaluate(&manifest.environment, ActionSelection::Greedy, 20, 7)
        .unwrap();
    assert!(
        unnormalized.mean_return < evaluation.mean_return - 100.0,
        "{unnormalized:?} against {evaluation:?}"
    );
}

#[test]
fn dqn_refuses_a_continuous_action_space_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("task.json");
    std::fs::write(
        &task,
        r#"{"environment": {"kind": "gymnasium", "id": "Pendulum-v1", "observationShape": [3], "continuousActions": 1},
            "algorithm": "dqn"}"#,
    )
    .unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_drlaas-trainer"))
        .args(["train", "--task", task.to_str().unwrap(), "--out"])
        .arg(dir.path().join("out"))
        .args(["--device", "cpu"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "a requester's error");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("invalid algorithm: dqn acts in discrete action spaces only, and Pendulum-v1 has continuous actions of 1 component: use algorithm ppo"),
        "{stderr}"
    );
}

#[test]
fn an_environment_that_crashes_mid_run_fails_the_run_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("task.json");
    // `envs_for_tests:` makes Gymnasium import the server tests' module, which registers the id.
    std::fs::write(
        &task,
        r#"{"environment": {"kind": "gymnasium", "id": "envs_for_tests:drlaas-tests/Crashing-v0",
                            "observationShape": [3], "actions": 3},
            "ppo": {"numEnvs": 2, "numSteps": 16}, "totalEnvSteps": 3200}"#,
    )
    .unwrap();
    let log = dir.path().join("termination-log");
    let out = dir.path().join("out");
    let tests = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../envserver/tests");
    let run = Command::new(env!("CARGO_BIN_EXE_drlaas-trainer"))
        .env("PYTHONPATH", &tests)
        .args([
            "train",
            "--task",
            task.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(["--termination-log", log.to_str().unwrap(), "--device", "cpu"])
        .output()
        .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    let failure = FailureReport::from_message(&std::fs::read_to_string(&log).unwrap()).unwrap();
    for expected in [
        "the environment failed",
        "environment.step",
        "the simulator exploded at step 40",
    ] {
        assert!(
            failure.error.contains(expected),
            "{expected:?} in {failure:?}\n{stderr}"
        );
    }
    assert!(!out.join("model.safetensors").exists(), "no model from a failed run");
}
