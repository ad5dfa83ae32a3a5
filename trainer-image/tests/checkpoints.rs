//! Checkpoints, resume and warm start.

mod common;

use std::collections::HashMap;
use std::path::Path;

use drlaas_crds::TrainingSpec;
use drlaas_trainer::artifact;
use drlaas_trainer::progress::Silent;
use drlaas_trainer::train::{self, TrainError, TrainOptions};
use tch::Tensor;

fn tensors(path: &Path) -> HashMap<String, Tensor> {
    artifact::read(path).unwrap().tensors
}

/// Trains `spec` in one go and again stopped after `stop` updates then resumed from the last
/// checkpoint; the two models must be bit-identical.
fn resume_matches_uninterrupted(spec: &TrainingSpec, stop: u64) {
    let whole = tempfile::tempdir().unwrap();
    let uninterrupted = common::train_to_end(spec, whole.path());

    let split = tempfile::tempdir().unwrap();
    let mut options = common::options(split.path());
    options.stop_after = Some(stop);
    assert!(
        train::train(spec, &options, &mut Silent).unwrap().is_none(),
        "stopped early"
    );
    let every = u64::from(spec.checkpoint_every);
    let last = split
        .path()
        .join(format!("checkpoints/ckpt-{:06}.safetensors", stop / every * every));
    assert!(last.exists(), "{} was written", last.display());
    options.stop_after = None;
    options.resume = Some(last);
    let resumed = train::train(spec, &options, &mut Silent).unwrap().unwrap();

    assert_eq!(resumed.env_steps, uninterrupted.env_steps);
    assert_eq!(resumed.train_episodes, uninterrupted.train_episodes);
    assert_eq!(resumed.train_mean_return, uninterrupted.train_mean_return);
    assert_eq!(resumed.mean_return, uninterrupted.mean_return);
    let (a, b) = (
        tensors(&common::model_path(whole.path())),
        tensors(&common::model_path(split.path())),
    );
    assert_eq!(a.len(), b.len());
    for (name, t) in &a {
        assert!(t.equal(&b[name]), "{name} differs after resume");
    }
}

#[test]
fn ppo_resume_equals_uninterrupted() {
    let spec = common::spec(
        r#"{"environment": {"kind": "cartpole"},
            "ppo": {"numEnvs": 4, "numSteps": 32, "numMinibatches": 2, "updateEpochs": 3},
            "totalEnvSteps": 1280, "checkpointEvery": 3, "evalEpisodes": 5, "seed": 5}"#,
    );
    resume_matches_uninterrupted(&spec, 7);
}

#[test]
fn dqn_resume_equals_uninterrupted() {
    let spec = common::spec(
        r#"{"environment": {"kind": "maze-cleaning", "grid": 5, "agents": 2, "horizon": 30}, "algorithm": "dqn",
            "dqn": {"numEnvs": 2, "learningStarts": 100, "bufferSize": 600, "batchSize": 16,
                    "targetNetworkFrequency": 200, "trainFrequency": 8, "tau": 0.5},
            "network": {"convChannels": [4], "hidden": [16]},
            "totalEnvSteps": 1536, "checkpointEvery": 2, "evalEpisodes": 2, "seed": 9}"#,
    );
    resume_matches_uninterrupted(&spec, 5);
}

#[test]
fn resume_refuses_another_spec_and_plain_models() {
    let dir = tempfile::tempdir().unwrap();
    let json = r#"{"environment": {"kind": "cartpole"}, "ppo": {"numEnvs": 2, "numSteps": 8},
                   "totalEnvSteps": 64, "checkpointEvery": 2, "evalEpisodes": 1}"#;
    let spec = common::spec(json);
    common::train_to_end(&spec, dir.path());
    let checkpoint = dir.path().join("checkpoints/ckpt-000002.safetensors");
    assert!(checkpoint.exists());

    let other = common::spec(&json.replace(r#""evalEpisodes": 1"#, r#""evalEpisodes": 1, "seed": 4"#));
    let mut options = common::options(&dir.path().join("again"));
    options.resume = Some(checkpoint);
    let err = train::train(&other, &options, &mut Silent).unwrap_err();
    assert!(
        matches!(&err, TrainError::Spec(m) if m.contains("different task spec")),
        "{err}"
    );

    options.resume = Some(common::model_path(dir.path()));
    let err = train::train(&spec, &options, &mut Silent).unwrap_err();
    assert!(err.to_string().contains("it is a model, not a checkpoint"), "{err}");
}

#[test]
fn a_bought_model_that_already_meets_the_target_is_delivered_without_training() {
    // A parent that has barely trained: it plays CartPole about as long as random actions (~22 steps).
    let parent_dir = tempfile::tempdir().unwrap();
    let parent = common::spec(r#"{"environment": {"kind": "cartpole"}, "totalEnvSteps": 16, "evalEpisodes": 1}"#);
    common::train_to_end(&parent, parent_dir.path());
    let parent_model = common::model_path(parent_dir.path());
    let warm = |target: f64| {
        let dir = tempfile::tempdir().unwrap();
        let mut options: TrainOptions = common::options(dir.path());
        options.warm_start = Some((parent_model.clone(), "bafyparent".into()));
        let spec = common::spec(&format!(
            r#"{{"environment": {{"kind": "cartpole"}}, "totalEnvSteps": 4096, "evalEpisodes": 20, "targetMeanReturn": {target}}}"#
        ));
        (train::train(&spec, &options, &mut Silent).unwrap().unwrap(), dir)
    };

    // A target it meets: not one update, and the delivered policy is the parent's.
    let (met, dir) = warm(5.0);
    assert_eq!(met.env_steps, 0, "{met:?}");
    assert_eq!(met.target_reached.as_ref().map(|t| t.env_steps), Some(0), "{met:?}");
    assert!(met.mean_return >= 5.0, "{met:?}");
    let (delivered, bought) = (tensors(&common::model_path(dir.path())), tensors(&parent_model));
    for (name, tensor) in bought.iter().filter(|(name, _)| name.starts_with("policy.")) {
        assert!(tensor.equal(&delivered[name]), "{name} changed");
    }

    // A target it does not meet: trained as before.
    let (trained, _dir) = warm(400.0);
    assert_eq!(trained.env_steps, 4096, "{trained:?}");
}

#[test]
fn warm_start_reuses_matching_tensors_and_records_the_parent() {
    let parent_dir = tempfile::tempdir().unwrap();
    let parent = common::spec(
        r#"{"environment": {"kind": "maze-cleaning", "grid": 6, "agents": 2}, "ppo": {"numEnvs": 2, "numSteps": 8},
            "totalEnvSteps": 16, "evalEpisodes": 1}"#,
    );
    common::train_to_end(&parent, parent_dir.path());
    let parent_model = common::model_path(parent_dir.path());

    let warm = |json: &str| {
        let dir = tempfile::tempdir().unwrap();
        let mut options: TrainOptions = common::options(dir.path());
        options.warm_start = Some((parent_model.clone(), "bafyparent".into()));
        train::train(&common::spec(json), &options, &mut Silent).map(|r| (r.unwrap(), dir))
    };
    // Same observation and action shapes (more agents): every tensor is reused.
    let (result, dir) = warm(
        r#"{"environment": {"kind": "maze-cleaning", "grid": 6, "agents": 3}, "ppo": {"numEnvs": 2, "numSteps": 8},
            "totalEnvSteps": 16, "evalEpisodes": 1}"#,
    )
    .unwrap();
    let ws = result.warm_start.unwrap();
    assert_eq!(
        (ws.reused, ws.total),
        (20, 20),
        "2 convolutions, 2 hidden layers, 1 output of 2 networks"
    );
    assert_eq!(result.parent_model_cid.as_deref(), Some("bafyparent"));
    let manifest = artifact::read(&common::model_path(dir.path())).unwrap().manifest;
    assert_eq!(manifest.parent_model.as_deref(), Some("bafyparent"));

    // A narrower second hidden layer: the convolutions and first hidden layer still transfer.
    let (result, _dir) = warm(
        r#"{"environment": {"kind": "maze-cleaning", "grid": 6, "agents": 2}, "ppo": {"numEnvs": 2, "numSteps": 8},
            "network": {"hidden": [64, 32]}, "totalEnvSteps": 16, "evalEpisodes": 1}"#,
    )
    .unwrap();
    let ws = result.warm_start.unwrap();
    assert_eq!(
        (ws.reused, ws.total),
        (14, 20),
        "both convolutions, the first hidden layer and the output biases of policy and value"
    );

    // Nothing in common: a clear error, no silent cold start.
    let err = warm(r#"{"environment": {"kind": "cartpole"}, "totalEnvSteps": 16, "evalEpisodes": 1}"#).unwrap_err();
    assert!(err.to_string().contains("shares no tensor with this network"), "{err}");
}
