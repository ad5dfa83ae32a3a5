//! `drlaas-trainer`: the command a trainer pod or local process runs (docs/architecture.md#the-trainer-contract).
//!
//! Exit codes: 0 the model was written (and, with `--store`, stored under its CID); 2 the input is wrong (task spec, arguments, an incompatible
//! warm-start model or checkpoint): retrying will not help; 3 stopped early on purpose
//! (`--stop-after-updates`), resume from the last checkpoint; 1 anything else (I/O, a crash): a retry
//! may. The outputs are the types of `drlaas_crds::trainer_output`, which every reader shares: a
//! `TrainResult`, an `EvaluationReport`, or on failure a `FailureReport` in the termination log.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand, ValueEnum};
use drlaas_crds::TrainingSpec;
use drlaas_crds::trainer_output::{EvaluationReport, FailureReport};
use drlaas_trainer::evaluate::{self, ActionSelection, Policy};
use drlaas_trainer::progress::{Bar, JsonLines, ProgressSink, Silent};
use drlaas_trainer::store::{ModelRef, ModelStore, OpenError};
use drlaas_trainer::train::{self, TrainError, TrainOptions, TrainResult};
use drlaas_trainer::{artifact, device, env_package};

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
        /// Initialize every matching tensor from this model (knowledge transfer): a file, or a CID
        /// fetched from --store.
        #[arg(long, value_name = "CID|PATH")]
        warm_start: Option<String>,
        /// Continue from this checkpoint (same task spec): a file, or a CID fetched from --store.
        #[arg(long, value_name = "CID|PATH")]
        resume: Option<String>,
        #[command(flatten)]
        store: StoreArg,
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
        /// Model: a file, or a CID fetched from --store.
        #[arg(long, value_name = "CID|PATH")]
        model: String,
        #[command(flatten)]
        store: StoreArg,
        /// Episodes to play.
        #[arg(long, default_value_t = 100)]
        episodes: u32,
        /// Evaluation seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// How actions are chosen; default: sample for PPO models, greedy for DQN models; `random` gives
        /// the baseline on the model's environment.
        #[arg(long, value_parser = action_selection())]
        policy: Option<ActionSelection>,
        /// Also write the evaluation (or error) here, e.g. /dev/termination-log.
        #[arg(long, value_name = "PATH")]
        termination_log: Option<PathBuf>,
        #[command(flatten)]
        runtime: Runtime,
    },
    /// Fetch an environment package's wheel from the content store, checked against its CID, into
    /// a folder (the init container of a pod whose environment sidecar installs it).
    FetchPackage {
        /// The wheel's content identifier (`environment.package.cid`).
        #[arg(long)]
        cid: String,
        /// The wheel's file name (`environment.package.wheel`).
        #[arg(long)]
        wheel: String,
        /// The folder to write it into.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Print a model's manifest and tensors as JSON.
    Inspect {
        /// Model or checkpoint: a file, or a CID fetched from --store.
        #[arg(long, value_name = "CID|PATH")]
        model: String,
        #[command(flatten)]
        store: StoreArg,
    },
}

#[derive(Debug, clap::Args)]
struct StoreArg {
    /// Content store for models and checkpoints: an IPFS API (`http://HOST:5001`, `https://…` verified
    /// against the system's roots or $SSL_CERT_FILE, or `/ip4/HOST/tcp/5001`) or a local store
    /// directory. With it, `train` stores the model and each checkpoint and reports their CIDs, and CIDs
    /// are accepted wherever a model is read.
    #[arg(long, alias = "ipfs-api", value_name = "ADDRESS", env = "DRLAAS_STORE")]
    store: Option<String>,
}

impl StoreArg {
    fn open(&self) -> Result<Option<ModelStore>, Failure> {
        self.store
            .as_deref()
            .map(ModelStore::open)
            .transpose()
            .map_err(|e| match e {
                OpenError::Address(m) => Failure::input(m),
                OpenError::Unavailable(m) => Failure::runtime(m),
            })
    }
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
            TrainError::Environment(_) => Self::runtime(e.to_string()),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let termination_log = match &cli.command {
        Command::Train { termination_log, .. } | Command::Evaluate { termination_log, .. } => termination_log.clone(),
        Command::Inspect { .. } | Command::FetchPackage { .. } => None,
    };
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            if let Some(path) = termination_log {
                let report = FailureReport { error: failure.message };
                let _ = std::fs::write(path, report.termination_log());
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
            store,
            termination_log,
            runtime,
            progress,
            stop_after_updates,
        } => {
            let store = store.open()?;
            let inputs = out.join("inputs");
            let warm_start = warm_start
                .map(|arg| ModelRef::parse(&arg).resolve(store.as_ref(), &inputs, "--warm-start"))
                .transpose()
                .map_err(Failure::input)?;
            let resume = resume
                .map(|arg| ModelRef::parse(&arg).resolve(store.as_ref(), &inputs, "--resume"))
                .transpose()
                .map_err(Failure::input)?
                .map(|(path, _)| path);
            let text = std::fs::read_to_string(&task)
                .map_err(|e| Failure::input(format!("--task {}: {e}", task.display())))?;
            let spec =
                TrainingSpec::from_json(&text).map_err(|e| Failure::input(format!("{}: {e}", task.display())))?;
            env_package::install(&spec.environment, store.as_ref(), &inputs).map_err(Failure::input)?;
            let device = runtime.apply()?;
            let options = TrainOptions {
                out_dir: out.clone(),
                device,
                warm_start,
                resume,
                stop_after: stop_after_updates,
            };
            let sink: Box<dyn ProgressSink> = match progress {
                ProgressMode::Auto if std::io::stderr().is_terminal() => Box::new(Bar::new(spec.total_env_steps)),
                ProgressMode::Auto | ProgressMode::Json => Box::new(JsonLines),
                ProgressMode::Bar => Box::new(Bar::new(spec.total_env_steps)),
                ProgressMode::None => Box::new(Silent),
            };
            let mut sink = Storing::new(sink, store.as_ref());
            let Some(mut result) = train::train(&spec, &options, &mut sink)? else {
                return Err(Failure {
                    code: 3,
                    message: format!(
                        "stopped after {} updates as asked, no model written; resume from the last checkpoint",
                        stop_after_updates.unwrap_or(0)
                    ),
                });
            };
            if let Some(store) = &store {
                sink.store_outputs(store, &mut result).map_err(Failure::runtime)?;
                train::write_result(&out, &result)?;
            }
            if let Some(path) = termination_log {
                std::fs::write(&path, result.termination_summary())
                    .map_err(|e| Failure::runtime(format!("--termination-log {}: {e}", path.display())))?;
            }
            println!("{}", result.to_json_line());
            Ok(())
        }
        Command::FetchPackage { cid, wheel, out, store } => {
            let package = drlaas_envs::descriptor::EnvPackage { cid, wheel };
            let path = env_package::fetch(&package, store.open()?.as_ref(), &out).map_err(Failure::input)?;
            eprintln!("fetched {} ({}) into {}", package.wheel, package.cid, path.display());
            Ok(())
        }
        Command::Evaluate {
            model,
            episodes,
            seed,
            policy: selection,
            termination_log,
            runtime,
            store,
        } => {
            let device = runtime.apply()?;
            let (path, name) = fetch_model(&model, &store)?;
            let (policy, manifest) = Policy::load(&path, device).map_err(Failure::input)?;
            let scratch = std::env::temp_dir().join(format!("drlaas-trainer-{}", std::process::id()));
            env_package::install(&manifest.environment, store.open()?.as_ref(), &scratch).map_err(Failure::input)?;
            let continuous = manifest.environment.action_space().is_continuous();
            let selection = selection.unwrap_or(ActionSelection::for_model(manifest.algorithm, continuous));
            let evaluation = policy
                .evaluate(&manifest.environment, selection, episodes, seed)
                .map_err(Failure::input)?;
            // The baseline on the same environment, seed and episodes, so that every evaluation
            // says how far the model is from acting at random.
            let random_mean_return = match selection {
                ActionSelection::Random => None,
                _ => Some(
                    evaluate::evaluate_random(&manifest.environment, episodes, seed)
                        .map_err(Failure::input)?
                        .mean_return,
                ),
            };
            let report = EvaluationReport {
                evaluation,
                model: name,
                environment: Some(manifest.environment),
                device: train::device_name(device),
                policy: Some(selection),
                random_mean_return,
            }
            .to_json_line();
            if let Some(path) = termination_log {
                std::fs::write(&path, &report)
                    .map_err(|e| Failure::runtime(format!("--termination-log {}: {e}", path.display())))?;
            }
            println!("{report}");
            Ok(())
        }
        Command::Inspect { model, store } => {
            let (path, name) = fetch_model(&model, &store)?;
            println!("{}", inspect(&path, &name)?);
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

/// The file for a `--model` argument, fetched into a temporary directory when it is a CID, and the
/// name to report (the CID, or the path as given).
fn fetch_model(arg: &str, store: &StoreArg) -> Result<(PathBuf, String), Failure> {
    let store = store.open()?;
    let dir = std::env::temp_dir().join(format!("drlaas-trainer-{}", std::process::id()));
    let resolved = ModelRef::parse(arg)
        .resolve(store.as_ref(), &dir, "--model")
        .map_err(Failure::input)?;
    Ok(resolved)
}

fn inspect(path: &Path, name: &str) -> Result<String, Failure> {
    let art = artifact::read(path).map_err(|e| Failure::input(e.to_string()))?;
    let mut tensors: Vec<(String, Vec<i64>)> = art.tensors.iter().map(|(n, t)| (n.clone(), t.size())).collect();
    tensors.sort();
    let parameters: i64 = tensors
        .iter()
        .filter(|(n, _)| !n.starts_with("train."))
        .map(|(_, s)| s.iter().product::<i64>())
        .sum();
    let json = serde_json::json!({
        "model": name,
        "manifest": art.manifest,
        "checkpoint": art.checkpoint.is_some(),
        "parameters": parameters,
        "tensors": tensors.into_iter().map(|(n, s)| serde_json::json!({"name": n, "shape": s})).collect::<Vec<_>>(),
        "sha256": artifact::sha256_file(path).map_err(|e| Failure::runtime(e.to_string()))?,
    });
    Ok(serde_json::to_string_pretty(&json).expect("inspect serializes"))
}

/// `--policy`: one of [`ActionSelection::ALL`], by name.
fn action_selection() -> impl TypedValueParser<Value = ActionSelection> {
    PossibleValuesParser::new(ActionSelection::ALL.map(ActionSelection::as_str))
        .map(|name| name.parse::<ActionSelection>().expect("a listed name"))
}

/// Passes progress on, and stores each checkpoint as soon as it is written when a store is given, so
/// that a run cut short can resume from its last checkpoint's CID on another machine. A checkpoint
/// that cannot be stored now is retried once training is over.
struct Storing<'a> {
    inner: Box<dyn ProgressSink>,
    store: Option<&'a ModelStore>,
    /// The checkpoints this process wrote, in order, with their CIDs once stored.
    written: Vec<(PathBuf, Option<String>)>,
}

impl<'a> Storing<'a> {
    fn new(inner: Box<dyn ProgressSink>, store: Option<&'a ModelStore>) -> Self {
        Storing {
            inner,
            store,
            written: Vec::new(),
        }
    }

    /// Stores the model and any checkpoint of this process not stored yet, and records their CIDs
    /// (checkpoints from before a resume were stored by the run that wrote them).
    fn store_outputs(&mut self, store: &ModelStore, result: &mut TrainResult) -> Result<(), String> {
        let mut cids = Vec::new();
        for (path, cid) in &mut self.written {
            if cid.is_none() {
                *cid = Some(store.put(path)?);
            }
            cids.extend(cid.clone());
        }
        result.checkpoint_cids = cids;
        result.model_cid = Some(store.put(Path::new(&result.model_path))?);
        Ok(())
    }
}

impl ProgressSink for Storing<'_> {
    fn update(&mut self, line: &drlaas_trainer::progress::ProgressLine) {
        self.inner.update(line);
    }

    fn checkpoint(&mut self, path: &Path) {
        self.inner.checkpoint(path);
        let Some(store) = self.store else { return };
        let cid = match store.put(path) {
            Ok(cid) => Some(cid),
            Err(e) => {
                eprintln!("{}", serde_json::json!({ "warning": e, "retry": "after training" }));
                None
            }
        };
        self.written.push((path.to_path_buf(), cid));
    }

    fn finish(&mut self) {
        self.inner.finish();
    }
}
