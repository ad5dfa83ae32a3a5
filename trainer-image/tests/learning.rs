//! PPO and DQN learn: seeded runs on the CPU reach fixed criteria within bounded env steps, and the
//! saved models reproduce the result when evaluated from disk.

mod common;

use drlaas_trainer::evaluate::{self, ActionSelection, Policy};
use tch::Device;

#[test]
fn ppo_solves_cartpole_and_the_saved_model_confirms_it() {
    let dir = tempfile::tempdir().unwrap();
    let spec = common::shipped_spec("cartpole.json");
    let result = common::train_to_end(&spec, dir.path());
    let reached = result
        .target_reached
        .expect("mean of the last 100 training episodes reached 475");
    assert!(reached.env_steps <= 150_000, "took {} env steps", reached.env_steps);
    assert!(result.train_mean_return.unwrap() >= 475.0);

    let (policy, manifest) = Policy::load(&common::model_path(dir.path()), Device::Cpu).unwrap();
    assert_eq!(manifest.environment, spec.environment);
    let evaluation = policy
        .evaluate(&manifest.environment, ActionSelection::Sample, 100, 7)
        .unwrap();
    assert!(evaluation.mean_return >= 475.0, "{evaluation:?}");
    let random = evaluate::evaluate_random(&manifest.environment, 100, 7).unwrap();
    assert!(random.mean_return < 50.0, "{random:?}");
}

#[test]
fn dqn_learns_cartpole() {
    let dir = tempfile::tempdir().unwrap();
    let spec = common::shipped_spec("cartpole-dqn.json");
    let result = common::train_to_end(&spec, dir.path());
    assert_eq!(
        result.env_steps, 40_448,
        "whole iterations of 128 vector steps × 4 envs"
    );
    // A random policy averages about 22; DQN gets several times that within 40k steps.
    assert!(result.train_mean_return.unwrap() >= 60.0, "{result:?}");
    assert!(result.mean_return >= 60.0, "{result:?}");
}

#[test]
fn ppo_learns_multi_agent_maze_cleaning_with_a_cnn() {
    let dir = tempfile::tempdir().unwrap();
    let spec = common::spec(
        r#"{
            "environment": {"kind": "maze-cleaning", "grid": 6, "agents": 2, "horizon": 50},
            "ppo": {"numEnvs": 16, "numSteps": 32, "numMinibatches": 4, "updateEpochs": 4, "learningRate": 0.002},
            "network": {"convChannels": [8, 16]},
            "totalEnvSteps": 24576,
            "evalEpisodes": 32,
            "seed": 3
        }"#,
    );
    let result = common::train_to_end(&spec, dir.path());
    let random = evaluate::evaluate_random(&spec.environment, 32, 3).unwrap();
    assert!(
        result.mean_return > random.mean_return + 2.0,
        "trained {} vs random {}",
        result.mean_return,
        random.mean_return
    );
}

#[test]
fn same_seed_same_model() {
    let spec = common::spec(
        r#"{"environment": {"kind": "target-localization", "grid": 6}, "ppo": {"numEnvs": 4, "numSteps": 16},
            "totalEnvSteps": 128, "evalEpisodes": 2, "seed": 11}"#,
    );
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    common::train_to_end(&spec, a.path());
    common::train_to_end(&spec, b.path());
    let load = |dir: &tempfile::TempDir| drlaas_trainer::artifact::read(&common::model_path(dir.path())).unwrap();
    let (ma, mb) = (load(&a), load(&b));
    assert_eq!(ma.tensors.len(), mb.tensors.len());
    for (name, t) in &ma.tensors {
        assert!(t.equal(&mb.tensors[name]), "{name} differs");
    }
}
