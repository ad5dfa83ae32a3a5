//! Trainer benchmarks (issue: trainer). Prints every figure; medians over several runs.
//!
//! ```text
//! cargo bench -p drlaas-trainer --bench trainer                 # all sections
//! cargo bench -p drlaas-trainer --bench trainer -- cartpole     # one section: cartpole | curves | threads | gpu
//! ```
//!
//! - `cartpole`: PPO with `specs/cartpole.json`, seeds 1–5 (and held-out seeds 6–10), one thread: seconds
//!   and env steps until the mean of the last 100 training-episode returns reaches 475, counted from the
//!   start of training.
//! - `curves`: PPO on the three multi-agent environments (`specs/<kind>.json`): learning curves as CSV
//!   and PNG under `target/drlaas-bench/`, and the final evaluation next to a random policy's.
//! - `threads`: training env steps per second with 1 and 2 libtorch threads (maze-cleaning, CNN).
//! - `gpu`: the same on CUDA against the CPU, when a GPU is visible.
//!
//! Environment steps per second alone: `cargo bench -p drlaas-envs`.

use std::path::{Path, PathBuf};

use drlaas_crds::TrainingSpec;
use drlaas_trainer::evaluate;
use drlaas_trainer::progress::{Collect, ProgressLine, Silent};
use drlaas_trainer::train::{self, TrainOptions, TrainResult};
use tch::Device;

fn main() {
    let sections: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wants = |name: &str| sections.is_empty() || sections.iter().any(|s| s == name);
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/drlaas-bench");
    std::fs::create_dir_all(&out).unwrap();
    println!("machine: {} CPUs, CUDA {}", num_cpus(), tch::Cuda::is_available());
    if wants("cartpole") {
        cartpole();
    }
    if wants("curves") {
        curves(&out);
    }
    if wants("threads") {
        threads();
    }
    if wants("gpu") {
        gpu();
    }
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn spec(name: &str) -> TrainingSpec {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs").join(name);
    TrainingSpec::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn run(
    spec: &TrainingSpec,
    device: Device,
    threads: i32,
    progress: &mut dyn drlaas_trainer::progress::ProgressSink,
) -> TrainResult {
    tch::set_num_threads(threads);
    let dir = tempfile::tempdir().unwrap();
    let options = TrainOptions {
        out_dir: dir.path().to_path_buf(),
        device,
        warm_start: None,
        resume: None,
        stop_after: None,
    };
    train::train(spec, &options, progress).unwrap().unwrap()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn cartpole() {
    println!(
        "\n== CartPole PPO until solved (mean of last 100 training returns >= 475), 1 thread, specs/cartpole.json"
    );
    // Seeds 1-5 are the figure; 6-10 were never used for tuning and show whether it generalizes.
    for (label, seeds) in [("seeds 1-5", 1..=5), ("held-out seeds 6-10", 6..=10)] {
        let (mut secs, mut steps) = (Vec::new(), Vec::new());
        for seed in seeds {
            let mut s = spec("cartpole.json");
            s.seed = seed;
            let r = run(&s, Device::Cpu, 1, &mut Silent);
            match r.target_reached {
                Some(t) => {
                    println!(
                        "seed {seed}: solved in {:.2} s, {} env steps ({:.0} env steps/s); eval {:.1}",
                        t.wall_seconds, t.env_steps, r.sps, r.mean_return
                    );
                    secs.push(t.wall_seconds);
                    steps.push(t.env_steps as f64);
                }
                None => {
                    println!("seed {seed}: NOT solved within {} env steps", r.env_steps);
                    secs.push(f64::INFINITY);
                    steps.push(f64::INFINITY);
                }
            }
        }
        println!(
            "cartpole solve, {label}: median {:.2} s, median {:.0} env steps",
            median(secs),
            median(steps)
        );
    }
}

fn curves(out: &Path) {
    println!("\n== multi-agent learning curves (PPO, shared policy, CNN), 1 thread");
    let mut csv = String::from("environment,update,envSteps,episodes,meanReturn\n");
    let mut series = Vec::new();
    for kind in ["maze-cleaning", "target-localization", "fleet-coordination"] {
        let s = spec(&format!("{kind}.json"));
        let mut lines = Collect::default();
        let r = run(&s, Device::Cpu, 1, &mut lines);
        let random = evaluate::evaluate_random(&s.environment, s.eval_episodes, train::eval_seed(s.seed)).unwrap();
        println!(
            "{kind}: trained {:.2} vs random {:.2} (eval mean team return, {} episodes); last-100 training mean {:.2}; {} env steps in {:.1} s ({:.0} env steps/s)",
            r.mean_return,
            random.mean_return,
            r.eval_episodes,
            r.train_mean_return.unwrap_or(f64::NAN),
            r.env_steps,
            r.wall_seconds,
            r.sps
        );
        for l in &lines.0 {
            if let Some(m) = l.mean_return {
                csv.push_str(&format!("{kind},{},{},{},{m}\n", l.update, l.env_steps, l.episodes));
            }
        }
        series.push((kind, lines.0, random.mean_return));
    }
    let csv_path = out.join("learning-curves.csv");
    std::fs::write(&csv_path, csv).unwrap();
    println!("wrote {}", csv_path.display());
    match plot(&out.join("learning-curves.png"), &series) {
        Ok(path) => println!("wrote {}", path.display()),
        Err(e) => println!("no plot: {e}"),
    }
}

/// One panel per environment: training mean return against env steps, with the random policy's mean.
fn plot(path: &Path, series: &[(&str, Vec<ProgressLine>, f64)]) -> Result<PathBuf, String> {
    use plotters::prelude::*;
    let font = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"]
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .ok_or("no DejaVuSans.ttf for labels")?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(font.into_boxed_slice()))
        .map_err(|_| "bad font")?;
    let root = BitMapBackend::new(path, (1500, 450)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let panels = root.split_evenly((1, series.len()));
    for ((kind, lines, random), panel) in series.iter().zip(panels) {
        let points: Vec<(f64, f64)> = lines
            .iter()
            .filter_map(|l| l.mean_return.map(|m| (l.env_steps as f64, m)))
            .collect();
        let x_max = points.last().map_or(1.0, |p| p.0);
        let ys = points.iter().map(|p| p.1).chain([*random]);
        let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| (a.min(y), b.max(y)));
        let pad = ((hi - lo) * 0.1).max(0.1);
        let mut chart = ChartBuilder::on(&panel)
            .caption(*kind, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..x_max, (lo - pad)..(hi + pad))
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("env steps")
            .y_desc("mean team return (last 100 episodes)")
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(points, BLUE.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label("PPO")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
        chart
            .draw_series(LineSeries::new([(0.0, *random), (x_max, *random)], RED))
            .map_err(|e| e.to_string())?
            .label("random policy")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED));
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE)
            .position(SeriesLabelPosition::LowerRight)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(path.to_path_buf())
}

/// A short maze-cleaning run whose env steps/s is compared across thread counts and devices.
fn throughput_spec(num_envs: u32) -> TrainingSpec {
    let mut s = spec("maze-cleaning.json");
    s.total_env_steps = 8192;
    s.eval_episodes = 1;
    if let Some(ppo) = s.ppo.as_mut() {
        ppo.num_envs = num_envs;
    }
    s
}

fn sps(spec: &TrainingSpec, device: Device, threads: i32) -> f64 {
    median((0..3).map(|_| run(spec, device, threads, &mut Silent).sps).collect())
}

fn threads() {
    println!("\n== libtorch threads (maze-cleaning PPO, CNN, 16 envs x 2 agents; median of 3)");
    let s = throughput_spec(16);
    let one = sps(&s, Device::Cpu, 1);
    let two = sps(&s, Device::Cpu, 2);
    println!(
        "1 thread: {one:.0} env steps/s; 2 threads: {two:.0} env steps/s; speed-up {:.2}x",
        two / one
    );
}

fn gpu() {
    if !tch::Cuda::is_available() {
        println!("\n== GPU vs CPU: skipped, no CUDA device visible");
        return;
    }
    println!("\n== GPU vs CPU (maze-cleaning PPO, CNN; median of 3)");
    for envs in [16, 64] {
        let s = throughput_spec(envs);
        let cpu = sps(&s, Device::Cpu, num_cpus() as i32);
        let cuda = sps(&s, Device::Cuda(0), 1);
        println!(
            "{envs} envs: CPU ({} threads) {cpu:.0} env steps/s; CUDA {cuda:.0} env steps/s; speed-up {:.2}x",
            num_cpus(),
            cuda / cpu
        );
    }
}
