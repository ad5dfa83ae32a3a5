//! Single-thread throughput of every environment: `cargo bench -p drlaas-envs --bench envs`.
//!
//! Random actions are generated before timing; each run steps for about one second; the median of
//! five runs is reported. Cartpole counts env-steps (target ≥ 10M/s at 256 envs), grid environments
//! count agent-steps (target ≥ 1M/s at default sizes, 64 envs).

use std::hint::black_box;
use std::time::{Duration, Instant};

use drlaas_envs::{EnvDescriptor, Rng, obs_len};

const RUNS: usize = 5;
const RUN_TIME: Duration = Duration::from_secs(1);
/// Distinct pre-generated action batches cycled through during timing.
const ACTION_BATCHES: usize = 1024;

fn bench(json: &str, num_envs: usize, target: f64, unit: &str) {
    let d: EnvDescriptor = serde_json::from_str(json).expect("descriptor");
    let mut env = d.make(num_envs, 1).expect("valid descriptor");
    let rows = env.num_envs() * env.agents();
    let mut obs = vec![0.0f32; rows * obs_len(env.as_ref())];
    let (mut rewards, mut dones) = (vec![0.0f32; rows], vec![false; rows]);
    let mut rng = Rng::new(7);
    let actions: Vec<u32> = (0..ACTION_BATCHES * rows)
        .map(|_| rng.index(env.num_actions()) as u32)
        .collect();
    env.reset(1, &mut obs);
    let per_step = if unit == "env-steps" { num_envs } else { rows };

    let mut rates = Vec::with_capacity(RUNS);
    let mut episodes = 0usize;
    for _ in 0..RUNS {
        let start = Instant::now();
        let mut steps = 0usize;
        while start.elapsed() < RUN_TIME {
            for _ in 0..64 {
                let batch = &actions[(steps % ACTION_BATCHES) * rows..][..rows];
                env.step(black_box(batch), &mut obs, &mut rewards, &mut dones);
                steps += 1;
            }
            episodes += env.drain_finished().len();
        }
        rates.push((steps * per_step) as f64 / start.elapsed().as_secs_f64());
        black_box(&obs);
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[RUNS / 2];
    let verdict = if median >= target {
        "MET".to_owned()
    } else {
        format!("MISSED by {:.0}%", 100.0 * (1.0 - median / target))
    };
    println!(
        "{:<20} envs={num_envs:<4} agents={:<2} obs={:<12} {:>7.2}M {unit}/s (median of {RUNS}; min {:.2}M, max {:.2}M; {episodes} episodes)  target {:.0}M: {verdict}",
        d.kind_name(),
        env.agents(),
        format!("{:?}", env.obs_shape()),
        median / 1e6,
        rates[0] / 1e6,
        rates[RUNS - 1] / 1e6,
        target / 1e6,
    );
}

fn main() {
    bench(r#"{"kind":"cartpole"}"#, 256, 10e6, "env-steps");
    bench(r#"{"kind":"target-localization"}"#, 64, 1e6, "agent-steps");
    bench(r#"{"kind":"maze-cleaning"}"#, 64, 1e6, "agent-steps");
    bench(r#"{"kind":"fleet-coordination"}"#, 64, 1e6, "agent-steps");
}
