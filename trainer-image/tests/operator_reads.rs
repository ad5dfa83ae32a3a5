//! The trainer's outputs, from the real binary, read the way the operator reads them: the progress
//! lines of a running trainer's log, the result in its termination log, the verifier's evaluation,
//! a failure, and the manifest the model market reads from a model file. The writer and the readers
//! share the types of `drlaas_crds::trainer_output`; this checks they also agree on where each output
//! goes (docs/architecture.md#the-trainer-contract).

use std::path::Path;
use std::process::{Command, Output};

use drlaas_core::next_step::{ChainTask, Observed, PodState, Step, next_step};
use drlaas_core::reports::{evaluated_return, finished_progress, trained_model, training_progress};
use drlaas_core::settlement::ChainStatus;
use drlaas_core::verification::Verdict;
use drlaas_crds::trainer_output::{EvaluationReport, MANIFEST_KEY, ModelManifest, ProgressLine, TrainResult};
use drlaas_envs::EnvDescriptor;
use safetensors::SafeTensors;

const TOTAL_ENV_STEPS: u64 = 640;

fn trainer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drlaas-trainer"))
        .args(args)
        .env_remove("DRLAAS_STORE")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// How the operator sees a submitted task whose evaluator pod ended as `evaluator`.
fn verify(cid: &str, seed: u64, trainer: &PodState, evaluator: &PodState) -> Step {
    next_step(&Observed {
        chain: ChainTask {
            status: ChainStatus::Submitted,
            attempts: 1,
            deadline: 1_000,
            verification_window: 100,
            submitted_block: Some(10),
            my_vote: None,
        },
        worker_here: true,
        now: 500,
        head: 100,
        trainer,
        evaluator,
        submitted_cid: Some(cid),
        seed: Some(seed),
        target: Some(1.0),
        environment: &cartpole(),
    })
}

/// The environment of the tests' task.
fn cartpole() -> EnvDescriptor {
    serde_json::from_str(r#"{"kind": "cartpole"}"#).unwrap()
}

#[test]
fn what_the_trainer_writes_the_operator_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let task = path("task.json");
    std::fs::write(
        &task,
        format!(
            r#"{{"environment": {{"kind": "cartpole"}}, "ppo": {{"numEnvs": 4, "numSteps": 16}},
                "totalEnvSteps": {TOTAL_ENV_STEPS}, "checkpointEvery": 4, "evalEpisodes": 3}}"#
        ),
    )
    .unwrap();
    let (store, out, log) = (path("store"), path("out"), path("train-log"));
    let run = trainer(&[
        "train",
        "--task",
        &task,
        "--out",
        &out,
        "--store",
        &store,
        "--termination-log",
        &log,
        "--progress",
        "json",
        "--device",
        "cpu",
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let (stdout, stderr) = (text(&run.stdout), text(&run.stderr));

    // While it trains: the pod's log holds the progress lines, and the status shows the latest.
    let lines: Vec<ProgressLine> = ProgressLine::all_in(&stderr).collect();
    assert_eq!(lines.len(), 10, "one line per update");
    let halfway: String = stderr.lines().take(5).collect::<Vec<_>>().join("\n");
    let progress = training_progress(&halfway, TOTAL_ENV_STEPS).unwrap();
    assert_eq!((progress.env_steps, progress.total_env_steps), (320, TOTAL_ENV_STEPS));
    assert_eq!(
        (progress.mean_return, progress.sps),
        (lines[4].mean_return, lines[4].sps)
    );
    assert!(progress.eta_seconds.is_some_and(|s| s >= 1), "{progress:?}");
    let last = training_progress(&stderr, TOTAL_ENV_STEPS).unwrap();
    assert_eq!((last.env_steps, last.eta_seconds), (TOTAL_ENV_STEPS, Some(0)));

    // Done: the termination log holds the result, the same as stdout's last line and result.json.
    let (result, cid) = trained_model(&std::fs::read_to_string(&log).unwrap()).unwrap();
    let printed: TrainResult = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let file: TrainResult =
        serde_json::from_str(&std::fs::read_to_string(Path::new(&out).join("result.json")).unwrap()).unwrap();
    assert_eq!(result, printed);
    assert_eq!(result, file);
    assert_eq!(Some(&cid), result.model_cid.as_ref());
    assert_eq!(result.checkpoint_cids.len(), 2, "the checkpoints were stored too");
    let done = finished_progress(&result, TOTAL_ENV_STEPS);
    assert_eq!(
        (done.env_steps, done.mean_return),
        (TOTAL_ENV_STEPS, Some(result.mean_return))
    );

    // The model market reads the model's environment from the manifest in its header.
    let bytes = std::fs::read(&result.model_path).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let manifest = &header.metadata().as_ref().unwrap()[MANIFEST_KEY];
    assert_eq!(ModelManifest::environment_of(manifest).unwrap().kind_name(), "cartpole");
    let manifest = ModelManifest::from_json(manifest).unwrap();
    assert_eq!(manifest.metrics.mean_return, Some(result.mean_return));

    // Verification: the evaluator, run as the operator runs it, reports on the submitted model and seed.
    let eval_log = path("eval-log");
    let eval = trainer(&[
        "evaluate",
        "--model",
        &cid,
        "--store",
        &store,
        "--episodes",
        "5",
        "--seed",
        "7",
        "--device",
        "cpu",
        "--termination-log",
        &eval_log,
    ]);
    assert!(eval.status.success(), "{}", text(&eval.stderr));
    let message = std::fs::read_to_string(&eval_log).unwrap();
    let measured = evaluated_return(&message, &cid, 7, &cartpole()).unwrap();
    let printed: EvaluationReport = serde_json::from_str(text(&eval.stdout).trim()).unwrap();
    assert_eq!(
        (
            measured.mean_return,
            measured.random_mean_return,
            printed.evaluation.episodes
        ),
        (printed.evaluation.mean_return, printed.random_mean_return, 5)
    );
    assert!(measured.random_mean_return.is_some(), "the baseline is measured");
    assert!(
        evaluated_return(&message, &cid, 8, &cartpole()).is_err(),
        "another seed's evaluation does not count"
    );
    let trained = PodState::Succeeded(std::fs::read_to_string(&log).unwrap());
    let Step::Settle { verdict, .. } = verify(&cid, 7, &trained, &PodState::Succeeded(message)) else {
        panic!("an evaluation settles the task");
    };
    assert_eq!(
        verdict,
        Some(Verdict::Pass {
            mean_return: measured.mean_return,
            random_mean_return: measured.random_mean_return
        }),
        "judged on its return"
    );

    // An evaluator that cannot use the model says so in its termination log: the model is wrong.
    let refused_log = path("refused-log");
    let refused = trainer(&["evaluate", "--model", &task, "--termination-log", &refused_log]);
    assert_eq!(refused.status.code(), Some(2));
    let message = std::fs::read_to_string(&refused_log).unwrap();
    assert!(
        evaluated_return(&message, &cid, 7, &cartpole())
            .unwrap_err()
            .starts_with("the evaluation failed: "),
        "{message}"
    );
    let Step::Settle { verdict, .. } = verify(&cid, 7, &trained, &PodState::Failed(message)) else {
        panic!("a refused model settles the task");
    };
    assert_eq!(verdict, Some(Verdict::WrongModel));
}

#[test]
fn a_trainer_that_fails_says_why_in_its_termination_log() {
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("task.json");
    std::fs::write(&task, r#"{"environment": {"kind": "maze-cleaning", "grid": 0}}"#).unwrap();
    let log = dir.path().join("termination-log");
    let run = trainer(&[
        "train",
        "--task",
        task.to_str().unwrap(),
        "--out",
        dir.path().join("out").to_str().unwrap(),
        "--termination-log",
        log.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(2));
    let reason = trained_model(&std::fs::read_to_string(&log).unwrap()).unwrap_err();
    assert!(
        reason.starts_with("the trainer failed: ") && reason.contains("environment.grid"),
        "{reason}"
    );
}
