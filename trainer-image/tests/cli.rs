//! The trainer's command-line contract (DESIGN §5): result JSON last on stdout and in result.json,
//! compact result in the termination log, JSON progress lines on stderr, exit codes.

use std::path::Path;
use std::process::{Command, Output};

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
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    for key in [
        "modelCid",
        "meanReturn",
        "evalEpisodes",
        "envSteps",
        "wallSeconds",
        "sps",
        "device",
        "checkpointCids",
        "parentModelCid",
        "modelPath",
        "modelSha256",
    ] {
        assert!(result.get(key).is_some(), "result lacks {key}: {result}");
    }
    assert_eq!(result["envSteps"], 640);
    assert_eq!(result["device"], "cpu");
    assert_eq!(
        result["checkpointPaths"].as_array().unwrap().len(),
        2,
        "after updates 4 and 8 of 10"
    );
    let file: Value = serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(file, result);
    let termination = std::fs::read_to_string(&log).unwrap();
    assert!(termination.len() <= 4096 && !termination.contains('\n'));
    assert_eq!(serde_json::from_str::<Value>(&termination).unwrap(), result);

    let stderr = String::from_utf8(run.stderr).unwrap();
    let lines: Vec<Value> = stderr.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 10, "one line per update");
    for key in [
        "envSteps",
        "episodes",
        "meanReturn",
        "sps",
        "policyLoss",
        "valueLoss",
        "entropy",
        "approxKl",
        "clipFraction",
        "explainedVariance",
        "learningRate",
    ] {
        assert!(lines[9].get(key).is_some(), "progress lacks {key}: {}", lines[9]);
    }

    let model = result["modelPath"].as_str().unwrap();
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
    let eval: Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&std::fs::read_to_string(&eval_log).unwrap()).unwrap(),
        eval,
        "the evaluator pod reports through its termination message"
    );
    assert_eq!(eval["episodes"], 4);
    assert_eq!(eval["policy"], "sample");
    assert!(eval["meanReturn"].as_f64().unwrap() >= 1.0);

    let inspect = trainer(&["inspect", "--model", model]);
    assert!(inspect.status.success());
    let inspect: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(inspect["manifest"]["environment"]["kind"], "cartpole");
    assert_eq!(inspect["manifest"]["algorithm"], "ppo");
    assert_eq!(inspect["manifest"]["obsShape"], serde_json::json!([4]));
    assert_eq!(inspect["sha256"], result["modelSha256"]);
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
        let termination: Value = serde_json::from_str(&std::fs::read_to_string(&log).unwrap()).unwrap();
        assert!(termination["error"].as_str().unwrap().contains(expected));
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
    let result: Value = serde_json::from_slice(&resumed.stdout).unwrap();
    assert_eq!(result["envSteps"], 160);
    assert_eq!(
        result["checkpointPaths"].as_array().unwrap().len(),
        4,
        "updates 2, 4, 6, 8 of 10"
    );
}
