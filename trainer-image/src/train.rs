//! The training run: iterations, checkpoints, resume, warm start, early stop, final evaluation and the
//! model artifact.
//!
//! Checkpoints are segment boundaries. Every `checkpointEvery` iterations the environments are
//! re-seeded from `(seed, segment)`, whether or not a file is written, so the environment state after a
//! boundary depends only on the seed. Together with the parameters, Adam moments, sampler RNG, replay
//! buffer and episode window stored in the checkpoint, a resumed run replays the uninterrupted run
//! exactly on a CPU (GPU kernels are not bit-reproducible). The cost is that episodes running at a
//! boundary are cut short, once every `checkpointEvery` iterations.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Instant;

use drlaas_crds::trainer_output::{ModelManifest, ModelMetrics};
use drlaas_crds::{Algorithm, TrainingSpec};
use drlaas_envs::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tch::Device;

use crate::artifact;
use crate::dqn::Dqn;
use crate::evaluate::{self, ActionSelection, Actor, Evaluation};
use crate::learner::{EnvRunner, Learner, Schedule};
use crate::normalize::Normalization;
use crate::ppo::Ppo;
use crate::progress::{ProgressLine, ProgressSink};

/// File name of the final model in the output directory.
pub const MODEL_FILE: &str = "model.safetensors";
/// File name of the result in the output directory.
pub const RESULT_FILE: &str = "result.json";

/// How to run, beyond the spec.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Output directory (model, checkpoints, result).
    pub out_dir: PathBuf,
    /// Where the networks run.
    pub device: Device,
    /// A model to initialize matching tensors from, and the name (CID or path) to record as parent.
    pub warm_start: Option<(PathBuf, String)>,
    /// A checkpoint to continue from.
    pub resume: Option<PathBuf>,
    /// Stop after this many iterations in total, without evaluating or writing a model (tests of
    /// resume; a preempted pod behaves the same).
    pub stop_after: Option<u64>,
}

/// Why a run failed. `Spec` errors are the requester's (exit code 2), the others the worker's.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The spec, a warm-start model or a checkpoint does not fit.
    #[error("{0}")]
    Spec(String),
    /// Reading or writing files failed.
    #[error("{0}")]
    Io(String),
    /// An external environment's server refused, crashed or hung.
    #[error("the environment failed: {0}")]
    Environment(String),
}

/// The result of a run, printed last on stdout and written to `result.json`, and its parts.
pub use drlaas_crds::trainer_output::{TargetReached, TrainResult, WarmStart};

/// Loop state that a checkpoint carries besides the learner's.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunState {
    spec: TrainingSpec,
    iteration: u64,
    env_steps: u64,
    episodes: u64,
    window: VecDeque<f32>,
    wall_seconds: f64,
    target_reached: Option<TargetReached>,
    checkpoint_paths: Vec<String>,
    parent_model: Option<String>,
    warm_start: Option<WarmStart>,
    /// Observation and reward statistics, exact (the model's tensors of them are `f32`).
    #[serde(default)]
    normalization: Normalization,
}

/// Label of a device in results.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Runs `spec` to the end (or to `stop_after`); `Ok(None)` when stopped early by `stop_after`.
pub fn train(
    spec: &TrainingSpec,
    options: &TrainOptions,
    progress: &mut dyn ProgressSink,
) -> Result<Option<TrainResult>, TrainError> {
    spec.validate().map_err(|e| TrainError::Spec(e.to_string()))?;
    let io = |what: &str, e: std::io::Error| TrainError::Io(format!("{what}: {e}"));
    let checkpoint_dir = options.out_dir.join("checkpoints");
    std::fs::create_dir_all(&checkpoint_dir).map_err(|e| io(&checkpoint_dir.display().to_string(), e))?;

    let env = &spec.environment;
    let mut learner: Box<dyn Learner> = match spec.algorithm {
        Algorithm::Ppo => Box::new(Ppo::new(
            spec.ppo_config(),
            &spec.network,
            env,
            spec.seed,
            options.device,
        )),
        Algorithm::Dqn => Box::new(Dqn::new(
            spec.dqn_config(),
            &spec.network,
            env,
            spec.seed,
            options.device,
        )),
    };
    let steps_per_iteration = learner.env_steps_per_iteration();
    let iterations = spec.total_env_steps.div_ceil(steps_per_iteration);

    let mut state = RunState {
        spec: spec.clone(),
        iteration: 0,
        env_steps: 0,
        episodes: 0,
        window: VecDeque::new(),
        wall_seconds: 0.0,
        target_reached: None,
        checkpoint_paths: Vec::new(),
        parent_model: None,
        warm_start: None,
        normalization: normalization(spec),
    };
    if let Some((path, name)) = &options.warm_start {
        state.warm_start = Some(warm_start(learner.as_mut(), &mut state.normalization, path)?);
        state.parent_model = Some(name.clone());
    }
    if let Some(path) = &options.resume {
        state = resume(learner.as_mut(), path, spec)?;
    }

    let mut runner = EnvRunner::new(
        env.make(learner.num_envs(), spec.seed)
            .map_err(|e| TrainError::Spec(e.to_string()))?,
    )
    .with_normalization(state.normalization.clone());
    let selection = ActionSelection::for_model(spec.algorithm, env.action_space().is_continuous());
    let started = Instant::now();
    let elapsed = |state: &RunState| state.wall_seconds + started.elapsed().as_secs_f64();
    let window_len = spec.return_window as usize;
    // A model bought for this task (a warm start) that already meets the target on the task's own
    // evaluation is delivered as it is, without an update: the same gate as during training, on
    // seeds of its own, before the first iteration. Training it further could only spend the budget
    // and, as often as not, lower its return.
    if state.warm_start.is_some()
        && options.resume.is_none()
        && let Some(target) = spec.target_mean_return
        && gate(
            learner.as_ref(),
            &runner,
            spec,
            selection,
            Rng::stream(eval_seed(spec.seed), u64::MAX).next_u64(),
            options.device,
            target,
        )?
    {
        state.target_reached = Some(TargetReached {
            env_steps: 0,
            wall_seconds: elapsed(&state),
        });
    }
    while state.iteration < iterations && state.target_reached.is_none() {
        if options.stop_after.is_some_and(|n| state.iteration >= n) {
            return Ok(None);
        }
        if let Some(segment) = segment_start(state.iteration, spec.checkpoint_every) {
            runner.reset(Rng::stream(spec.seed, segment).next_u64());
        }
        let schedule = Schedule {
            iteration: state.iteration,
            iterations,
            env_steps: state.env_steps,
            total_env_steps: spec.total_env_steps,
        };
        let stats = learner.iterate(&mut runner, schedule);
        if let Some(failure) = runner.failure() {
            return Err(TrainError::Environment(failure.to_string()));
        }
        state.iteration += 1;
        state.env_steps += steps_per_iteration;
        for episode_return in runner.drain_finished() {
            state.episodes += 1;
            state.window.push_back(episode_return);
            if state.window.len() > window_len {
                state.window.pop_front();
            }
        }
        let mean_return = window_mean(&state.window);
        let wall_seconds = elapsed(&state);
        // The training window reaching the target is not enough to stop: the model is judged by a
        // greedy evaluation on seeds it never saw (the operator's verification). So every
        // GATE_EVERY updates while the window is at the target, the greedy policy plays
        // `evalEpisodes` episodes of its own, and training stops only if their mean clears the
        // target by two standard errors and GATE_MARGIN of it. Without the margin, the first of
        // several gates to pass is the luckiest, and verifiers on other seeds measured 149.6
        // against 150; with one standard error alone, 145.6. The gate's iterations and seeds depend only on the
        // iteration, so a resumed run stops where an uninterrupted one does.
        if let (Some(target), Some(mean)) = (spec.target_mean_return, mean_return)
            && state.window.len() == window_len
            && mean >= target
            && state.iteration.is_multiple_of(GATE_EVERY)
            && gate(
                learner.as_ref(),
                &runner,
                spec,
                selection,
                Rng::stream(eval_seed(spec.seed), state.iteration).next_u64(),
                options.device,
                target,
            )?
        {
            state.target_reached = Some(TargetReached {
                env_steps: state.env_steps,
                wall_seconds: elapsed(&state),
            });
        }
        progress.update(&ProgressLine {
            update: state.iteration,
            updates: iterations,
            env_steps: state.env_steps,
            episodes: state.episodes,
            mean_return,
            sps: state.env_steps as f64 / wall_seconds.max(1e-9),
            wall_seconds,
            stats,
        });
        if spec.checkpoint_every > 0
            && state.iteration.is_multiple_of(u64::from(spec.checkpoint_every))
            && state.iteration < iterations
            && state.target_reached.is_none()
        {
            let path = checkpoint_dir.join(format!("ckpt-{:06}.safetensors", state.iteration));
            let mut saved = state.clone();
            saved.wall_seconds = wall_seconds;
            saved.normalization = runner.normalization.clone();
            saved.checkpoint_paths.push(path.display().to_string());
            write_checkpoint(learner.as_ref(), &saved, &path)?;
            state.checkpoint_paths = saved.checkpoint_paths;
            progress.checkpoint(&path);
        }
    }
    progress.finish();
    let wall_seconds = elapsed(&state);

    let evaluation = evaluate::evaluate(
        &actor(learner.as_ref(), &runner, options.device),
        env,
        selection,
        spec.eval_episodes.max(1),
        eval_seed(spec.seed),
    )
    .map_err(TrainError::Spec)?;
    let model_path = options.out_dir.join(MODEL_FILE);
    let manifest = manifest(spec, &state, Some(&evaluation), wall_seconds);
    let mut tensors = learner.params().named("");
    tensors.extend(runner.normalization.tensors());
    let model_sha256 =
        artifact::write(&model_path, &manifest, &tensors, None).map_err(|e| TrainError::Io(e.to_string()))?;
    let result = TrainResult {
        model_cid: None,
        model_path: model_path.display().to_string(),
        model_sha256,
        mean_return: evaluation.mean_return,
        eval_episodes: evaluation.episodes,
        train_mean_return: window_mean(&state.window),
        env_steps: state.env_steps,
        train_episodes: state.episodes,
        wall_seconds,
        sps: state.env_steps as f64 / wall_seconds.max(1e-9),
        device: device_name(options.device),
        target_reached: state.target_reached,
        checkpoint_cids: Vec::new(),
        checkpoint_paths: state.checkpoint_paths,
        parent_model_cid: state.parent_model,
        warm_start: state.warm_start,
    };
    write_result(&options.out_dir, &result)?;
    Ok(Some(result))
}

/// Writes `result.json` into the output directory (again, once the model's CID is known).
pub fn write_result(out_dir: &Path, result: &TrainResult) -> Result<(), TrainError> {
    let result_path = out_dir.join(RESULT_FILE);
    let text = serde_json::to_string_pretty(result).expect("result serializes");
    std::fs::write(&result_path, text).map_err(|e| TrainError::Io(format!("{}: {e}", result_path.display())))
}

/// The learner's policy as it plays now: its parameters and the runner's observation statistics.
fn actor<'a>(learner: &'a dyn Learner, runner: &'a EnvRunner, device: Device) -> Actor<'a> {
    Actor {
        network: learner.policy(),
        params: learner.params(),
        obs_norm: runner.normalization.obs.as_ref(),
        device,
    }
}

/// Whether the learner's policy, played for `evalEpisodes` episodes from `seed`, clears `target`
/// by two standard errors and [`GATE_MARGIN`] of it: the early-stop gate.
fn gate(
    learner: &dyn Learner,
    runner: &EnvRunner,
    spec: &TrainingSpec,
    selection: ActionSelection,
    seed: u64,
    device: Device,
    target: f64,
) -> Result<bool, TrainError> {
    let evaluation = evaluate::evaluate(
        &actor(learner, runner, device),
        &spec.environment,
        selection,
        spec.eval_episodes.max(1),
        seed,
    )
    .map_err(TrainError::Spec)?;
    let standard_error = evaluation.std_return / f64::from(evaluation.episodes).sqrt();
    Ok(evaluation.mean_return - 2.0 * standard_error - GATE_MARGIN * target.abs() >= target)
}

/// What the spec asks to normalize (PPO's `normObs` and `normReward`, by default on for continuous
/// actions; DQN never does).
fn normalization(spec: &TrainingSpec) -> Normalization {
    let env = &spec.environment;
    let continuous = env.action_space().is_continuous();
    match spec.algorithm {
        Algorithm::Ppo => {
            let ppo = spec.ppo_config();
            Normalization::new(
                ppo.normalizes_observations(continuous),
                ppo.scales_rewards(continuous),
                env.obs_shape().iter().product(),
                ppo.gamma,
            )
        }
        Algorithm::Dqn => Normalization::default(),
    }
}

/// Updates between two early-stop evaluations of the greedy policy.
const GATE_EVERY: u64 = 4;
/// How far above the target (as a fraction of it) an early-stop evaluation must be.
const GATE_MARGIN: f64 = 0.05;

/// Seed of the final evaluation: distinct from every training segment's.
pub fn eval_seed(seed: u64) -> u64 {
    Rng::stream(seed, u64::MAX).next_u64()
}

/// The segment that starts at `iteration`, if one does.
fn segment_start(iteration: u64, checkpoint_every: u32) -> Option<u64> {
    match checkpoint_every {
        0 => (iteration == 0).then_some(0),
        every => iteration
            .is_multiple_of(u64::from(every))
            .then(|| iteration / u64::from(every)),
    }
}

fn window_mean(window: &VecDeque<f32>) -> Option<f64> {
    (!window.is_empty()).then(|| window.iter().map(|&r| f64::from(r)).sum::<f64>() / window.len() as f64)
}

fn manifest(
    spec: &TrainingSpec,
    state: &RunState,
    evaluation: Option<&Evaluation>,
    wall_seconds: f64,
) -> ModelManifest {
    ModelManifest {
        format: ModelManifest::FORMAT.into(),
        environment: spec.environment.clone(),
        algorithm: spec.algorithm,
        network: spec.network.clone(),
        obs_shape: spec.environment.obs_shape(),
        num_actions: spec.environment.num_actions(),
        metrics: ModelMetrics {
            mean_return: evaluation.map(|e| e.mean_return),
            eval_episodes: evaluation.map_or(0, |e| e.episodes),
            train_mean_return: window_mean(&state.window),
            env_steps: state.env_steps,
            train_episodes: state.episodes,
            wall_seconds,
        },
        parent_model: state.parent_model.clone(),
        seed: spec.seed,
        trainer_version: env!("CARGO_PKG_VERSION").into(),
    }
}

fn write_checkpoint(learner: &dyn Learner, state: &RunState, path: &Path) -> Result<(), TrainError> {
    let learner_state = learner.save_state();
    let mut tensors = learner.params().named("");
    tensors.extend(state.normalization.tensors());
    tensors.extend(learner_state.tensors);
    let values = json!({ "run": state, "learner": learner_state.values });
    let manifest = manifest(&state.spec, state, None, state.wall_seconds);
    artifact::write(path, &manifest, &tensors, Some(&values)).map_err(|e| TrainError::Io(e.to_string()))?;
    Ok(())
}

fn resume(learner: &mut dyn Learner, path: &Path, spec: &TrainingSpec) -> Result<RunState, TrainError> {
    let bad = |message: String| TrainError::Spec(format!("cannot resume from {}: {message}", path.display()));
    let art = artifact::read(path).map_err(|e| TrainError::Spec(e.to_string()))?;
    let values = art
        .checkpoint
        .ok_or_else(|| bad("it is a model, not a checkpoint".into()))?;
    let state: RunState =
        serde_json::from_value(values["run"].clone()).map_err(|e| bad(format!("bad run state: {e}")))?;
    if &state.spec != spec {
        return Err(bad("it was written for a different task spec".into()));
    }
    let names: Vec<String> = learner.params().entries().iter().map(|e| e.name.clone()).collect();
    for name in names {
        let tensor = art
            .tensors
            .get(&name)
            .ok_or_else(|| bad(format!("lacks tensor `{name}`")))?;
        if !learner.params_mut().load_named(&name, tensor) {
            return Err(bad(format!("tensor `{name}` has the wrong shape")));
        }
    }
    learner.restore_state(&art.tensors, &values["learner"]).map_err(bad)?;
    Ok(state)
}

/// Loads the tensors of the model at `path` that fit this learner, and the observation and reward
/// statistics it was trained with where this run keeps them too.
fn warm_start(
    learner: &mut dyn Learner,
    normalization: &mut Normalization,
    path: &Path,
) -> Result<WarmStart, TrainError> {
    let art = artifact::read(path).map_err(|e| TrainError::Spec(format!("warm start: {e}")))?;
    let total = learner.params().entries().len();
    let mut reused = 0;
    for (name, tensor) in &art.tensors {
        if !name.starts_with("train.") && learner.params_mut().load_named(name, tensor) {
            reused += 1;
        }
    }
    normalization.load(&art.tensors);
    if reused == 0 {
        return Err(TrainError::Spec(format!(
            "warm start: {} shares no tensor with this network (it was trained on {} with observations {:?} and {} actions)",
            path.display(),
            art.manifest.environment.kind_name(),
            art.manifest.obs_shape,
            art.manifest.num_actions,
        )));
    }
    learner.params_loaded();
    Ok(WarmStart { reused, total })
}
