//! The trainer with a content store: the model and every checkpoint are stored under CIDs that match
//! their files, and CIDs work wherever a model is read (warm start, resume, evaluate, inspect), on a
//! local store directory and on a real IPFS node (js-ipfs from `tools/`).

use std::path::Path;
use std::process::{Command, Output};

use drlaas_crds::trainer_output::{EvaluationReport, TrainResult};
use drlaas_store::devnode::DevNode;
use drlaas_store::{ContentStore, ImportOptions, IpfsStore, cid_of};
use serde::de::DeserializeOwned;
use serde_json::Value;

const SPEC: &str = r#"{"environment": {"kind": "cartpole"}, "ppo": {"numEnvs": 4, "numSteps": 16},
    "totalEnvSteps": 640, "checkpointEvery": 4, "evalEpisodes": 3}"#;

fn trainer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drlaas-trainer"))
        .args(args)
        .env_remove("DRLAAS_STORE")
        .output()
        .unwrap()
}

/// The last line of a successful run's stdout, as the output type its readers share.
fn last_json<T: DeserializeOwned>(output: &Output) -> T {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

/// The CID a file gets with the store's default import settings.
fn cid_of_file(path: &str) -> String {
    cid_of(&std::fs::read(path).unwrap(), ImportOptions::default())
        .unwrap()
        .to_string()
}

fn train(dir: &Path, out: &str, store: &str, extra: &[&str]) -> Output {
    let task = dir.join("task.json");
    std::fs::write(&task, SPEC).unwrap();
    let out = dir.join(out);
    let mut args = vec![
        "train",
        "--task",
        task.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(["--store", store, "--progress", "none", "--device", "cpu"]);
    args.extend(extra);
    trainer(&args)
}

#[test]
fn a_local_store_gets_the_model_and_checkpoints_and_serves_them_by_cid() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store = store.to_str().unwrap();

    let result: TrainResult = last_json(&train(dir.path(), "first", store, &[]));
    let model_cid = result.model_cid.clone().unwrap();
    assert_eq!(model_cid, cid_of_file(&result.model_path));
    let cids = &result.checkpoint_cids;
    assert_eq!(cids.len(), 2);
    for (path, cid) in result.checkpoint_paths.iter().zip(cids) {
        assert_eq!(*cid, cid_of_file(path));
    }
    let file: TrainResult =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("first/result.json")).unwrap()).unwrap();
    assert_eq!(file, result, "result.json carries the CIDs too");

    // Evaluate and inspect by CID.
    let evaluation: EvaluationReport = last_json(&trainer(&[
        "evaluate",
        "--model",
        &model_cid,
        "--store",
        store,
        "--episodes",
        "2",
    ]));
    assert_eq!(evaluation.model, model_cid);
    let inspected: Value =
        serde_json::from_slice(&trainer(&["inspect", "--model", &model_cid, "--ipfs-api", store]).stdout).unwrap();
    assert_eq!(inspected["model"], model_cid.as_str());
    assert_eq!(inspected["sha256"], result.model_sha256.as_str());

    // Warm start from the CID: the parent is recorded by CID.
    let warm: TrainResult = last_json(&train(dir.path(), "warm", store, &["--warm-start", &model_cid]));
    assert_eq!(warm.parent_model_cid.as_deref(), Some(model_cid.as_str()));
    let reuse = warm.warm_start.unwrap();
    assert_eq!(reuse.reused, reuse.total);

    // Resume from a checkpoint CID (as on another machine) finishes the run: same steps, and the
    // same evaluation as the uninterrupted run (the manifest's timings differ, so the files do too).
    let resumed: TrainResult = last_json(&train(dir.path(), "resumed", store, &["--resume", &cids[1]]));
    assert_eq!(resumed.env_steps, 640);
    assert_eq!(resumed.mean_return, result.mean_return);
    assert!(resumed.checkpoint_cids.is_empty(), "no checkpoint after update 8 of 10");
}

#[test]
fn cids_need_a_store_and_a_bad_store_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("task.json");
    std::fs::write(&task, SPEC).unwrap();
    let out = dir.path().join("out");
    let base = [
        "train",
        "--task",
        task.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--device",
        "cpu",
    ];

    let mut args = base.to_vec();
    args.extend([
        "--warm-start",
        "bafkreiee3cmhp4guaqppw27zdilpajepf7kxhzvpaxaz7fv63opyql3yqi",
    ]);
    let run = trainer(&args);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("pass --store"));

    let mut args = base.to_vec();
    args.extend(["--store", "/ip4/127.0.0.1/udp/5001"]);
    let run = trainer(&args);
    assert_eq!(run.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("ipfs api address"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    // Nothing listens on port 9: the run stops before training, and a retry may succeed (exit 1).
    let mut args = base.to_vec();
    args.extend(["--store", "http://127.0.0.1:9"]);
    let run = trainer(&args);
    assert_eq!(run.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("unreachable"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(!out.join("model.safetensors").exists());
}

#[test]
fn an_ipfs_node_gets_the_model_under_the_cid_computed_here() {
    let node = DevNode::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let result: TrainResult = last_json(&train(dir.path(), "out", node.api(), &[]));
    let model_cid = result.model_cid.clone().unwrap();
    assert_eq!(model_cid, cid_of_file(&result.model_path));
    assert_eq!(result.checkpoint_cids.len(), 2);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pinned = runtime.block_on(async {
        let store = IpfsStore::connect(node.api()).unwrap();
        store.has(&drlaas_store::cid::parse(&model_cid).unwrap()).await.unwrap()
    });
    assert!(pinned, "the model is pinned on the node");

    let evaluation: EvaluationReport = last_json(&trainer(&[
        "evaluate",
        "--model",
        &model_cid,
        "--ipfs-api",
        node.api(),
        "--episodes",
        "2",
    ]));
    assert_eq!(evaluation.model, model_cid);
}

#[test]
fn fetch_package_writes_the_wheel_by_cid_and_names_the_field_it_cannot_satisfy() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store = store.to_str().unwrap();
    // Any stored file stands for a wheel here: the fetch checks bytes against the CID, not content.
    let result: TrainResult = last_json(&train(dir.path(), "first", store, &[]));
    let cid = result.model_cid.unwrap();
    let out = dir.path().join("package");
    let fetch = |cid: &str, wheel: &str| {
        trainer(&[
            "fetch-package",
            "--cid",
            cid,
            "--wheel",
            wheel,
            "--out",
            out.to_str().unwrap(),
            "--store",
            store,
        ])
    };
    let fetched = fetch(&cid, "shelves_env-0.1.0-py3-none-any.whl");
    assert!(fetched.status.success(), "{}", String::from_utf8_lossy(&fetched.stderr));
    assert_eq!(
        std::fs::read(out.join("shelves_env-0.1.0-py3-none-any.whl")).unwrap(),
        std::fs::read(&result.model_path).unwrap()
    );

    let absent = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
    for (cid, wheel, field) in [
        (absent, "shelves_env-0.1.0-py3-none-any.whl", "environment.package"),
        (cid.as_str(), "../shelves.whl", "package.wheel"),
    ] {
        let refused = fetch(cid, wheel);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(field), "{field}: {stderr}");
    }
}
