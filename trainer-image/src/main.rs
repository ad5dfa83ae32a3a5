//! `drlaas-trainer`: the command a trainer pod or local process runs (DESIGN §5).
//!
//! Exit codes: 0 the model was stored; 2 the input is wrong (task spec, arguments, an incompatible
//! warm-start model or checkpoint): retrying will not help; 3 stopped early on purpose
//! (`--stop-after-updates`), resume from the last checkpoint; 1 anything else (I/O, a crash): a retry
//! may. On failure the termination log holds `{"error": ...}`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use drlaas_crds::TrainingSpec;
use drlaas_trainer::evaluate::{ActionSelection, Policy};
use drlaas_trainer::progress::{Bar, JsonLines, ProgressSink, Silent};
use drlaas_trainer::train::{self, TrainError, TrainOptions, TrainResult};
use drlaas_trainer::{artifact, device};

/// Kubernetes reads at most 4 KiB of a termination log.
const TERMINATION_LOG_LIMIT: usize = 4096;

#[derive(Debug, Parser)]
#[command(
    name = "drlaas-trainer",
    version,
    about = "Train and evaluate drlaas models (PPO, DQN on libtorch)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train a model from a task spec; prints the result JSON last on stdout.
    Train {
        /// Task spec JSON (the training part of a DRLTask spec).
        #[arg(long)]
        task: PathBuf,
        /// Output directory: model.safetensors, checkpoints/, result.json.
        #[arg(long)]
        out: PathBuf,
        /// Initialize every matching tensor from this model (knowledge transfer).
        #[arg(long, value_name = "PATH")]
        warm_start: Option<PathBuf>,
        /// Continue from this checkpoint (same task spec).
        #[arg(long, value_name = "PATH")]
        resume: Option<PathBuf>,
        /// Also write the compact result (or error) here, e.g. /dev/termination-log.
        #[arg(long, value_name = "PATH")]
        termination_log: Option<PathBuf>,
        #[command(flatten)]
        runtime: Runtime,
        /// Progress output on stderr: a bar on a terminal, JSON lines otherwise.
        #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
        progress: ProgressMode,
        /// Stop after this many updates without writing a model (to test resuming).
        #[arg(long, hide = true)]
        stop_after_updates: Option<u64>,
    },
    /// Play episodes with a model and print the mean return as JSON.
    Evaluate {
        /// Model file.
        #[arg(long, value_name = "PATH")]
        model: PathBuf,
        /// Episodes to play.
        #[arg(long, default_value_t = 100)]
        episodes: u32,
        /// Evaluation seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// How actions are chosen; default: sample for PPO models, greedy for DQN models; `random` gives
        /// the baseline on the model's environment.
        #[arg(long, value_enum)]
        policy: Option<ActionSelection>,
        #[command(flatten)]
        runtime: Runtime,
    },
    /// Print a model's manifest and tensors as JSON.
    Inspect {
        /// Model or checkpoint file.
        #[arg(long, value_name = "PATH")]
        model: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct Runtime {
    /// Where the networks run.
    #[arg(long, value_enum, default_value_t = device::DeviceChoice::Auto)]
    device: device::DeviceChoice,
    /// Intra-op threads of libtorch (1 is fastest for small networks).
    #[arg(long, default_value_t = 1)]
    threads: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProgressMode {
    Auto,
    Json,
    Bar,
    None,
}

/// A failure with its exit code.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn input(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }
    fn runtime(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }
}

impl From<TrainError> for Failure {
    fn from(e: TrainError) -> Self {
        match e {
            TrainError::Spec(m) => Self::input(m),
            TrainError::Io(m) => Self::runtime(m),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let termination_log = match &cli.command {
        Command::Train { termination_log, .. } => termination_log.clone(),
        _ => None,
    };
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            if let Some(path) = termination_log {
                let text = serde_json::json!({ "error": failure.message }).to_string();
                let _ = std::fs::write(path, truncate(text));
            }
            ExitCode::from(failure.code)
        }
    }
}

fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Train {
            task,
            out,
            warm_start,
            resume,
            termination_log,
            runtime,
            progress,
            stop_after_updates,
        } => {
            let text = std::fs::read_to_string(&task)
                .map_err(|e| Failure::input(format!("--task {}: {e}", task.display())))?;
            let spec =
                TrainingSpec::from_json(&text).map_err(|e| Failure::input(format!("{}: {e}", task.display())))?;
            let device = runtime.apply()?;
            let options = TrainOptions {
                out_dir: out,
                device,
                warm_start: warm_start.map(|p| {
                    let name = p.display().to_string();
                    (p, name)
                }),
                resume,
                stop_after: stop_after_updates,
            };
            let mut sink: Box<dyn ProgressSink> = match progress {
                ProgressMode::Auto if std::io::stderr().is_terminal() => Box::new(Bar::new(spec.total_env_steps)),
                ProgressMode::Auto | ProgressMode::Json => Box::new(JsonLines),
                ProgressMode::Bar => Box::new(Bar::new(spec.total_env_steps)),
                ProgressMode::None => Box::new(Silent),
            };
            let Some(result) = train::train(&spec, &options, sink.as_mut())? else {
                return Err(Failure {
                    code: 3,
                    message: format!(
                        "stopped after {} updates as asked, no model written; resume from the last checkpoint",
                        stop_after_updates.unwrap_or(0)
                    ),
                });
            };
            if let Some(path) = termination_log {
                std::fs::write(&path, termination_summary(&result))
                    .map_err(|e| Failure::runtime(format!("--termination-log {}: {e}", path.display())))?;
            }
            println!("{}", serde_json::to_string(&result).expect("result serializes"));
            Ok(())
        }
        Command::Evaluate {
            model,
            episodes,
            seed,
            policy: selection,
            runtime,
        } => {
            let device = runtime.apply()?;
            let (policy, manifest) = Policy::load(&model, device).map_err(Failure::input)?;
            let selection = selection.unwrap_or(ActionSelection::for_algorithm(manifest.algorithm));
            let evaluation = policy
                .evaluate(&manifest.environment, selection, episodes, seed)
                .map_err(Failure::input)?;
            let mut json = serde_json::to_value(&evaluation).expect("evaluation serializes");
            json["model"] = model.display().to_string().into();
            json["environment"] = serde_json::to_value(&manifest.environment).expect("descriptor serializes");
            json["device"] = train::device_name(device).into();
            json["policy"] = serde_json::to_value(selection).expect("selection serializes");
            println!("{json}");
            Ok(())
        }
        Command::Inspect { model } => {
            println!("{}", inspect(&model)?);
            Ok(())
        }
    }
}

impl Runtime {
    /// Sets the thread count and resolves the device.
    fn apply(&self) -> Result<tch::Device, Failure> {
        if self.threads == 0 {
            return Err(Failure::input("--threads: at least 1 thread"));
        }
        tch::set_num_threads(self.threads as i32);
        device::resolve(self.device).map_err(Failure::input)
    }
}

fn inspect(path: &Path) -> Result<String, Failure> {
    let art = artifact::read(path).map_err(|e| Failure::input(e.to_string()))?;
    let mut tensors: Vec<(String, Vec<i64>)> = art.tensors.iter().map(|(n, t)| (n.clone(), t.size())).collect();
    tensors.sort();
    let parameters: i64 = tensors
        .iter()
        .filter(|(n, _)| !n.starts_with("train."))
        .map(|(_, s)| s.iter().product::<i64>())
        .sum();
    let json = serde_json::json!({
        "manifest": art.manifest,
        "checkpoint": art.checkpoint.is_some(),
        "parameters": parameters,
        "tensors": tensors.into_iter().map(|(n, s)| serde_json::json!({"name": n, "shape": s})).collect::<Vec<_>>(),
        "sha256": artifact::sha256_file(path).map_err(|e| Failure::runtime(e.to_string()))?,
    });
    Ok(serde_json::to_string_pretty(&json).expect("inspect serializes"))
}

/// The result for the termination log: compact, and without the checkpoint lists if it would exceed
/// Kubernetes' 4 KiB.
fn termination_summary(result: &TrainResult) -> String {
    let text = serde_json::to_string(result).expect("result serializes");
    if text.len() <= TERMINATION_LOG_LIMIT {
        return text;
    }
    let mut short = result.clone();
    short.checkpoint_paths.clear();
    short.checkpoint_cids.clear();
    truncate(serde_json::to_string(&short).expect("result serializes"))
}

fn truncate(mut text: String) -> String {
    if text.len() > TERMINATION_LOG_LIMIT {
        let mut end = TERMINATION_LOG_LIMIT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}
