//! The local-mode benchmark: the README's demo (after its build), several times, each on a fresh
//! data directory: `drlaas local run` of the CartPole and two-agent maze tasks, then of the
//! model-sharing task. Prints the median wall time of the demo and, per task, the median time from
//! submission to settlement (from the tasks' `Settled` conditions) and the median of the
//! operator's evaluated return.
//!
//! `cargo run -p drlaas-e2e --bin drlaas-e2e-demo -- --runs 3` (needs `target/debug/drlaas` and
//! `target/debug/drlaas-trainer`: `cargo build -p drlaas-operator -p drlaas-trainer`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use clap::Parser;
use drlaas_cli::local::outcomes::Row;
use drlaas_e2e::quantile;

#[derive(Debug, Parser)]
#[command(about = "Run the local-mode demo N times and print its wall time and each task's time to settle")]
struct Args {
    /// Runs of the whole demo.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

/// A binary of this workspace beside this one.
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the running binary has a path");
    let path = exe.with_file_name(name);
    assert!(
        path.is_file(),
        "{} is built (cargo build -p drlaas-operator -p drlaas-trainer)",
        path.display()
    );
    path
}

fn drlaas(data_dir: &Path, args: &[&str]) {
    let status = Command::new(binary("drlaas"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("DRLAAS_TRAINER_BIN", binary("drlaas-trainer"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("drlaas starts");
    assert!(
        status.success(),
        "drlaas {args:?} failed; see {}",
        data_dir.join("drlaas.log").display()
    );
}

fn main() {
    let args = Args::parse();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    let example = |name: &str| examples.join(name).display().to_string();
    let mut walls = Vec::new();
    let mut settle: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut returns: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for run in 1..=args.runs {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let started = Instant::now();
        drlaas(
            dir.path(),
            &[
                "local",
                "run",
                &example("cartpole.yaml"),
                &example("maze-cleaning.yaml"),
            ],
        );
        drlaas(dir.path(), &["local", "run", &example("model-sharing.yaml")]);
        let wall = started.elapsed().as_secs_f64();
        drlaas(dir.path(), &["local", "stop"]);
        walls.push(wall);
        let report: Vec<Row> =
            serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).expect("the run wrote its report"))
                .expect("the report holds the run's rows");
        let mut line = format!("run {run}: demo {wall:.1} s;");
        for row in report {
            let task = row.task.clone();
            assert_eq!(row.outcome, "Paid", "{task} was not paid: {row:?}");
            if let Some(seconds) = row.seconds_to_settle {
                settle.entry(task.clone()).or_default().push(seconds as f64);
                line.push_str(&format!(" {task} {seconds} s"));
            }
            if let Some(r) = row.mean_return {
                returns.entry(task).or_default().push(r);
            }
        }
        println!("{line}");
    }
    println!("\nmedian of {} runs:", args.runs);
    println!(
        "  demo wall time (both `drlaas local run`s): {:.1} s",
        quantile(&walls, 0.5)
    );
    for (task, seconds) in &settle {
        println!(
            "  {task:<28} submit → settled {:>5.1} s   evaluated return {:.1}",
            quantile(seconds, 0.5),
            quantile(returns.get(task).map_or(&[][..], Vec::as_slice), 0.5)
        );
    }
}
