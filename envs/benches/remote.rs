//! The environment protocol's overhead: `cargo bench -p drlaas-envs --bench remote` (with
//! `DRLAAS_ENV_PYTHON` from `source tools/envserver-env.sh`).
//!
//! Steps per second of Gymnasium's `CartPole-v1` stepped by the trainer through environment servers
//! (1 and 2 server processes), against Gymnasium's own vectors in Python with the same number of
//! environments, measured in the same run: `SyncVectorEnv` (in process, the floor) and
//! `AsyncVectorEnv` with `shared_memory=True` (a process per environment, observations through shared
//! memory and commands through pipes: the shared-memory design, as Gymnasium ships it). Random
//! actions; each run steps for about one second; the median of five runs is printed, with the ratio
//! to `SyncVectorEnv`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use drlaas_envs::remote::{EnvSpec, Launcher, RemoteVecEnv, Timeouts};
use drlaas_envs::{Rng, VecEnv, obs_len};

const RUNS: usize = 5;
const RUN_TIME: Duration = Duration::from_secs(1);

/// A Gymnasium vector (`sync`: `SyncVectorEnv`; `shm`: `AsyncVectorEnv` over shared memory)
/// stepping `n` CartPole-v1 copies with random actions for about `seconds`, printing env-steps per
/// second.
const GYMNASIUM_VECTOR: &str = r#"
import sys, time
import gymnasium as gym
import numpy as np
kind, n, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
fns = [lambda: gym.make("CartPole-v1") for _ in range(n)]
env = gym.vector.SyncVectorEnv(fns) if kind == "sync" else gym.vector.AsyncVectorEnv(fns, shared_memory=True)
env.reset(seed=1)
actions = np.random.default_rng(7).integers(0, 2, size=(1024, n))
steps, start = 0, time.perf_counter()
while time.perf_counter() - start < seconds:
    for i in range(64):
        env.step(actions[(steps + i) % 1024])
    steps += 64
print(steps * n / (time.perf_counter() - start))
env.close()
"#;

fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn python() -> PathBuf {
    std::env::var_os("DRLAAS_ENV_PYTHON")
        .expect("DRLAAS_ENV_PYTHON: source tools/envserver-env.sh")
        .into()
}

/// Gymnasium's own vector of `kind` (`sync` or `shm`), stepped in Python.
fn gymnasium_vector(kind: &str, num_envs: usize) -> f64 {
    median(
        (0..RUNS)
            .map(|_| {
                let out = Command::new(python())
                    .args([
                        "-c",
                        GYMNASIUM_VECTOR,
                        kind,
                        &num_envs.to_string(),
                        &RUN_TIME.as_secs_f64().to_string(),
                    ])
                    .output()
                    .expect("python runs");
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                String::from_utf8_lossy(&out.stdout).trim().parse().expect("a rate")
            })
            .collect(),
    )
}

fn through_servers(num_envs: usize, servers: usize) -> f64 {
    let spec: EnvSpec = serde_json::from_str(r#"{"gymnasium": "CartPole-v1"}"#).unwrap();
    let mut env = RemoteVecEnv::spawn(&Launcher::new(python()), &spec, num_envs, servers, Timeouts::default())
        .expect("the servers start");
    let rows = env.num_envs();
    let mut obs = vec![0.0f32; rows * obs_len(&env)];
    let (mut rewards, mut dones) = (vec![0.0f32; rows], vec![false; rows]);
    let mut rng = Rng::new(7);
    let actions: Vec<u32> = (0..1024 * rows).map(|_| rng.index(2) as u32).collect();
    env.reset(1, &mut obs);
    let rates = (0..RUNS)
        .map(|_| {
            let (start, mut steps) = (Instant::now(), 0usize);
            while start.elapsed() < RUN_TIME {
                for _ in 0..64 {
                    let batch = &actions[(steps % 1024) * rows..][..rows];
                    env.step(batch, &mut obs, &mut rewards, &mut dones);
                    steps += 1;
                }
                assert_eq!(env.failure(), None);
            }
            (steps * num_envs) as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    median(rates)
}

fn main() {
    println!("CartPole-v1 env-steps/s, median of {RUNS} runs of ~{RUN_TIME:?}, random actions");
    for num_envs in [8, 64] {
        let floor = gymnasium_vector("sync", num_envs);
        println!(
            "  envs={num_envs:<3} gymnasium SyncVectorEnv (Python)      {:>9.0}/s",
            floor
        );
        let shared = gymnasium_vector("shm", num_envs);
        println!(
            "  envs={num_envs:<3} gymnasium AsyncVectorEnv, shared memory {:>9.0}/s  {:.2}x SyncVectorEnv",
            shared,
            shared / floor
        );
        for servers in [1, 2] {
            let rate = through_servers(num_envs, servers);
            println!(
                "  envs={num_envs:<3} trainer via {servers} environment server(s) {:>9.0}/s  {:.2}x SyncVectorEnv",
                rate,
                rate / floor
            );
        }
    }
}
