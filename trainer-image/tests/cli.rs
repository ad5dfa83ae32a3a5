//! The trainer's command-line contract (docs/architecture.md#the-trainer-contract): result JSON last on stdout and in result.json,
//! compact result in the termination log, JSON progress lines on stderr, exit codes. Every output is
//! read with the types its readers share (`drlaas_crds::trainer_output`).

use std::path::Path;
use std::process::{Command, Output};

use drlaas_crds::Algorithm;
use drlaas_crds::trainer_output::{
    ActionSelection, EvaluationReport, FailureReport, ModelManifest, ProgressLine, TrainResult,
};
use serde_json::Value;

fn trainer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drlaas-trainer"))
        .args(args)
        .output()
        .unwrap()
}

fn write_spec(dir: &Path, json: &str) -> String {
    let path = dir.join("task.json");
    std::fs::write(&path, json).unwrap();
    path.display().to_string()
}

#[test]
fn train_evaluate_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let task = write_spec(
        dir.path(),
        r#"{"environment": {"kind": "cartpole"}, "ppo": {"numEnvs": 4, "numSteps": 16}, "totalEnvSteps": 640,
            "checkpointEvery": 4, "evalEpisodes": 3}"#,
    );
    let out = dir.path().join("out");
    let log = dir.path().join("termination-log");
    let run = trainer(&[
        "train",
        "--task",
        &task,
        "--out",
        out.to_str().unwrap(),
        "--termination-log",
        log.to_str().unwrap(),
        "--progress",
        "json",
        "--device",
        "cpu",
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));

    let stdout = String::from_utf8(run.stdout).unwrap();
    let result: TrainResult = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!((result.env_steps, result.device.as_str()), (640, "cpu"));
    assert_eq!(
        (result.model_cid.as_deref(), result.eval_episodes),
        (None, 3),
        "no store, no CID"
    );
    assert_eq!(result.checkpoint_paths.len(), 2, "after updates 4 and 8 of 10");
    let file: TrainResult = serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(file, result);
    let termination = std::fs::read_to_string(&log).unwrap();
    assert!(termination.len() <= 4096 && !termination.contains('\n'));
    assert_eq!(serde_json::from_str::<TrainResult>(&termination).unwrap(), result);

    let stderr = String::from_utf8(run.stderr).unwrap();
    let lines: Vec<ProgressLine> = stderr.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 10, "one line per update, and nothing else");
    let last = &lines[9];
    assert_eq!((last.update, last.updates, last.env_steps), (10, 10, 640));
    assert!(
        last.episodes > 0 && last.mean_return.is_some() && last.sps > 0.0,
        "{last:?}"
    );
    let ppo = &last.stats;
    assert!(ppo.learning_rate > 0.0);
    for figure in [
        ppo.policy_loss,
        ppo.value_loss,
        ppo.entropy,
        ppo.approx_kl,
        ppo.clip_fraction,
        ppo.explained_variance,
    ] {
        assert!(figure.is_some(), "PPO's progress lacks a diagnostic: {last:?}");
    }
    assert_eq!((ppo.td_loss, ppo.epsilon), (None, None), "DQN's figures are not PPO's");

    let model = result.model_path.as_str();
    let eval_log = dir.path().join("evaluation-log");
    let eval = trainer(&[
        "evaluate",
        "--model",
        model,
        "--episodes",
        "4",
        "--seed",
        "1",
        "--termination-log",
        eval_log.to_str().unwrap(),
    ]);
    assert!(eval.status.success());
    let eval: EvaluationReport = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(
        serde_json::from_str::<EvaluationReport>(&std::fs::read_to_string(&eval_log).unwrap()).unwrap(),
        eval,
        "the evaluator pod reports through its termination message"
    );
    assert_eq!((eval.evaluation.episodes, eval.evaluation.seed), (4, 1));
    assert_eq!(
        (eval.policy, eval.model.as_str()),
        (Some(ActionSelection::Sample), model)
    );
    assert_eq!(eval.environment.as_ref().map(|e| e.kind_name()), Some("cartpole"));
    assert!(eval.evaluation.mean_return >= 1.0);
    // The baseline, measured with the same episodes and seed as `--policy random` would.
    let random = trainer(&[
        "evaluate",
        "--model",
        model,
        "--episodes",
        "4",
        "--seed",
        "1",
        "--policy",
        "random",
    ]);
    assert!(random.status.success());
    let random: EvaluationReport = serde_json::from_slice(&random.stdout).unwrap();
    assert_eq!(random.random_mean_return, None, "no baseline of the baseline");
    assert_eq!(eval.random_mean_return, Some(random.evaluation.mean_return));

    let inspect = trainer(&["inspect", "--model", model]);
    assert!(inspect.status.success());
    let inspect: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let manifest: ModelManifest = serde_json::from_value(inspect["manifest"].clone()).unwrap();
    assert_eq!(
        (manifest.environment.kind_name(), manifest.algorithm, manifest.obs_shape),
        ("cartpole", Algorithm::Ppo, vec![4])
    );
    assert_eq!(manifest.metrics.mean_return, Some(result.mean_return));
    assert_eq!(inspect["sha256"], result.model_sha256.as_str());
    assert_eq!(inspect["checkpoint"], false);
}

#[test]
fn bad_input_exits_2_and_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("termination-log");
    let cases = [
        (
            r#"{"environment": {"kind": "maze-cleaning", "grid": 0}}"#,
            "environment.grid",
        ),
        (
            r#"{"environment": {"kind": "target-localization", "grid": 4, "agents": 20}}"#,
            "environment.agents",
        ),
        (
            r#"{"environment": {"kind": "cartpole"}, "ppo": {"learingRate": 0.1}}"#,
            "unknown field `learingRate`",
        ),
        (
            r#"{"environment": {"kind": "cartpole"}, "algorithm": "dqn", "dqn": {"batchSize": 0}}"#,
            "dqn.batchSize",
        ),
        (r#"{"environment": {"kind": "cartpole"}"#, "EOF"),
    ];
    for (json, expected) in cases {
        let task = write_spec(dir.path(), json);
        let out = dir.path().join("out");
        let run = trainer(&[
            "train",
            "--task",
            &task,
            "--out",
            out.to_str().unwrap(),
            "--termination-log",
            log.to_str().unwrap(),
        ]);
        assert_eq!(run.status.code(), Some(2), "{json}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains(expected), "{json}: {stderr}");
        let termination = FailureReport::from_message(&std::fs::read_to_string(&log).unwrap()).unwrap();
        assert!(termination.error.contains(expected));
        assert!(!out.join("model.safetensors").exists());
    }

    let missing = trainer(&["evaluate", "--model", "/nonexistent/model.safetensors"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/model.safetensors"));

    let not_a_model = dir.path().join("task.json");
    let run = trainer(&["inspect", "--model", not_a_model.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("not a drlaas model"));
}

#[test]
fn cuda_request_without_a_gpu_is_an_input_error() {
    if tch::Cuda::is_available() {
        return; // Nothing to check on a GPU machine: the request succeeds there.
    }
    let dir = tempfile::tempdir().unwrap();
    let task = write_spec(
        dir.path(),
        r#"{"environment": {"kind": "cartpole"}, "totalEnvSteps": 16}"#,
    );
    let run = trainer(&[
        "train",
        "--task",
        &task,
        "--out",
        dir.path().to_str().unwrap(),
        "--device",
        "cuda",
    ]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("no CUDA device is visible"));
}

#[test]
fn stop_early_then_resume() {
    let dir = tempfile::tempdir().unwrap();
    let task = write_spec(
        dir.path(),
        r#"{"environment": {"kind": "cartpole"}, "ppo": {"numEnvs": 2, "numSteps": 8}, "totalEnvSteps": 160,
            "checkpointEvery": 2, "evalEpisodes": 1}"#,
    );
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let stopped = trainer(&[
        "train",
        "--task",
        &task,
        "--out",
        out,
        "--stop-after-updates",
        "5",
        "--progress",
        "none",
    ]);
    assert_eq!(stopped.status.code(), Some(3), "stopped on purpose is not success");
    assert!(!Path::new(out).join("model.safetensors").exists());
    let checkpoint = format!("{out}/checkpoints/ckpt-000004.safetensors");
    let resumed = trainer(&[
        "train",
        "--task",
        &task,
        "--out",
        out,
        "--resume",
        &checkpoint,
        "--progress",
        "none",
    ]);
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    let result: TrainResult = serde_json::from_slice(&resumed.stdout).unwrap();
    assert_eq!(result.env_steps, 160);
    assert_eq!(result.checkpoint_paths.len(), 4, "updates 2, 4, 6, 8 of 10");
}
