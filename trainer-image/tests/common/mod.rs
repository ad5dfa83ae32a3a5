//! Helpers shared by the trainer's integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use drlaas_crds::TrainingSpec;
use drlaas_trainer::progress::Silent;
use drlaas_trainer::train::{self, TrainOptions, TrainResult};

/// A spec shipped in `trainer-image/specs/`.
pub fn shipped_spec(name: &str) -> TrainingSpec {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs").join(name);
    TrainingSpec::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// A spec from inline JSON.
pub fn spec(json: &str) -> TrainingSpec {
    TrainingSpec::from_json(json).unwrap()
}

/// CPU options writing to `out`.
pub fn options(out: &Path) -> TrainOptions {
    tch::set_num_threads(1);
    TrainOptions {
        out_dir: out.to_path_buf(),
        device: tch::Device::Cpu,
        warm_start: None,
        resume: None,
        stop_after: None,
    }
}

/// Trains to the end on the CPU.
pub fn train_to_end(spec: &TrainingSpec, out: &Path) -> TrainResult {
    train::train(spec, &options(out), &mut Silent)
        .unwrap()
        .expect("ran to the end")
}

/// The model file of a finished run.
pub fn model_path(out: &Path) -> PathBuf {
    out.join(train::MODEL_FILE)
}
