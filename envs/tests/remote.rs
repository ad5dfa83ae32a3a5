//! External environments through the real environment server (`python -m drlaas_envserver`, from
//! envserver/, with real Gymnasium): spaces, stepping across several servers, determinism,
//! truncation with final observations, box actions, and the failures a trainer must report.
//!
//! Needs `DRLAAS_ENV_PYTHON`: `source tools/envserver-env.sh` (tools/test.sh does).

use std::path::PathBuf;
use std::time::Duration;

use drlaas_envs::VecEnv;
use drlaas_envs::remote::protocol::Actions;
use drlaas_envs::remote::{EnvSpec, Launcher, RemoteVecEnv, Space, Timeouts};
use drlaas_envs::rng::Rng;

fn launcher() -> Launcher {
    let python = std::env::var_os("DRLAAS_ENV_PYTHON")
        .expect("DRLAAS_ENV_PYTHON: source tools/envserver-env.sh (it installs the environment server's Python)");
    let mut launcher = Launcher::new(python);
    // The requester-style environments of the server's own tests (envs_for_tests:Name).
    launcher
        .python_path
        .push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../envserver/tests"));
    launcher
}

fn spec(json: &str) -> EnvSpec {
    serde_json::from_str(json).unwrap()
}

fn spawn(json: &str, num_envs: usize, servers: usize) -> Result<RemoteVecEnv, String> {
    RemoteVecEnv::spawn(&launcher(), &spec(json), num_envs, servers, Timeouts::default())
}

struct Buffers {
    obs: Vec<f32>,
    rewards: Vec<f32>,
    dones: Vec<bool>,
}

impl Buffers {
    fn for_env(env: &RemoteVecEnv) -> Buffers {
        let rows = env.num_envs() * env.agents();
        Buffers {
            obs: vec![f32::NAN; rows * drlaas_envs::obs_len(env)],
            rewards: vec![f32::NAN; rows],
            dones: vec![false; rows],
        }
    }
}

/// Observations and finished episode lengths of `steps` steps of CartPole with actions from a
/// seeded generator.
fn cartpole_run(num_envs: usize, servers: usize, steps: usize) -> (Vec<f32>, Vec<u32>) {
    let mut env = spawn(r#"{"gymnasium": "CartPole-v1"}"#, num_envs, servers).unwrap();
    let mut b = Buffers::for_env(&env);
    env.reset(7, &mut b.obs);
    let mut trace = b.obs.clone();
    let mut rng = Rng::new(3);
    let mut lengths = Vec::new();
    for _ in 0..steps {
        let actions: Vec<u32> = (0..num_envs).map(|_| rng.index(2) as u32).collect();
        env.step(&actions, &mut b.obs, &mut b.rewards, &mut b.dones);
        assert_eq!(env.failure(), None);
        assert!(b.rewards.iter().all(|r| *r == 1.0), "{:?}", b.rewards);
        trace.extend_from_slice(&b.obs);
        lengths.extend(env.drain_finished().iter().map(|e| {
            assert_eq!(e.episode_return, e.length as f32, "CartPole pays 1 a step");
            e.length
        }));
    }
    (trace, lengths)
}

#[test]
fn cartpole_through_two_servers_is_gymnasium_s_and_the_same_seeds_give_the_same_episodes() {
    let env = spawn(r#"{"gymnasium": "CartPole-v1"}"#, 5, 2).unwrap();
    assert_eq!((env.num_envs(), env.agents(), env.num_actions()), (5, 1, 2));
    assert_eq!(env.obs_shape(), [4]);
    assert_eq!(env.spaces().max_episode_steps, Some(500));
    assert!(matches!(&env.spaces().observation_space, Space::Box { shape, .. } if shape == &[4]));
    drop(env);

    let (trace, lengths) = cartpole_run(5, 2, 200);
    assert!(
        lengths.len() >= 20,
        "random play ends CartPole episodes quickly: {lengths:?}"
    );
    assert!(lengths.iter().all(|l| (8..=200).contains(l)), "{lengths:?}");
    // The same seeds and actions on one server instead of two: the same observations, to the bit.
    let (again, lengths_again) = cartpole_run(5, 1, 200);
    assert_eq!(trace, again);
    assert_eq!(lengths, lengths_again);
    // Other seeds, other episodes.
    let mut env = spawn(r#"{"gymnasium": "CartPole-v1"}"#, 5, 1).unwrap();
    let mut b = Buffers::for_env(&env);
    env.reset(8, &mut b.obs);
    assert_ne!(b.obs, trace[..20]);
}

#[test]
fn a_time_limit_is_a_truncation_and_its_final_observation_comes_back() {
    let mut env = spawn(
        r#"{"gymnasium": "CartPole-v1", "kwargs": {"max_episode_steps": 5}}"#,
        3,
        1,
    )
    .unwrap();
    let mut b = Buffers::for_env(&env);
    env.reset(1, &mut b.obs);
    for t in 0..5 {
        // Alternating pushes keep the pole up for five steps.
        let actions = vec![(t % 2) as u32; 3];
        let before = b.obs.clone();
        env.step(&actions, &mut b.obs, &mut b.rewards, &mut b.dones);
        if t < 4 {
            assert_eq!(b.dones, [false; 3]);
            assert!(env.final_observations().is_empty());
            continue;
        }
        assert_eq!(b.dones, [true; 3]);
        assert_eq!(env.truncated(), [true; 3], "a time limit is not a terminal state");
        let finals = env.final_observations();
        assert_eq!(finals.iter().map(|(e, _)| *e).collect::<Vec<_>>(), [0, 1, 2]);
        for (e, last) in finals {
            // The final observation continues the episode; the returned one starts the next.
            let moved = (last[0] - before[e * 4]).abs();
            assert!(moved < 0.1, "env {e}: {last:?} after {:?}", &before[e * 4..e * 4 + 4]);
            assert_ne!(last.as_slice(), &b.obs[e * 4..e * 4 + 4]);
            assert!(b.obs[e * 4..e * 4 + 4].iter().all(|x| x.abs() <= 0.05), "a fresh start");
        }
        let lengths: Vec<u32> = env.drain_finished().iter().map(|e| e.length).collect();
        assert_eq!(lengths, [5, 5, 5]);
    }
}

#[test]
fn continuous_actions_are_clipped_to_the_box_before_they_are_sent() {
    let mut env = spawn(r#"{"class": "envs_for_tests:EchoBoxEnv"}"#, 2, 1).unwrap();
    assert_eq!(env.continuous_actions(), 3);
    let inf = f32::INFINITY;
    assert_eq!(env.action_bounds(), [(-1.0, 2.0), (-inf, 0.5), (-inf, inf)]);
    let mut b = Buffers::for_env(&env);
    env.reset(0, &mut b.obs);
    // Row 0 outside every bound it has, row 1 inside: the environment sees (echoes) what was sent.
    let actions = [-5.0, 9.0, 1e30, 1.5, -1e30, -7.0];
    env.step_continuous(&actions, &mut b.obs, &mut b.rewards, &mut b.dones);
    assert_eq!(env.failure(), None);
    assert_eq!(b.obs, [-1.0, 0.5, 1e30, 1.5, -1e30, -7.0]);
}

#[test]
fn pendulum_takes_continuous_actions() {
    let mut env = spawn(r#"{"gymnasium": "Pendulum-v1"}"#, 2, 1).unwrap();
    assert_eq!(env.num_actions(), 0, "a box action space has no discrete count");
    match &env.spaces().action_space {
        Space::Box { shape, low, high } => {
            assert_eq!(shape, &[1]);
            assert_eq!((low[0], high[0]), (Some(-2.0), Some(2.0)));
        }
        other => panic!("{other:?}"),
    }
    let mut b = Buffers::for_env(&env);
    env.reset(0, &mut b.obs);
    let mut episodes = Vec::new();
    for t in 0..200 {
        let torque = [2.0_f32 * ((t as f32) / 10.0).sin(), -1.5];
        env.step_actions(Actions::Floats(&torque), &mut b.obs, &mut b.rewards, &mut b.dones);
        assert_eq!(env.failure(), None);
        assert!(b.rewards.iter().all(|r| *r <= 0.0 && *r > -17.0), "{:?}", b.rewards);
        episodes.extend(env.drain_finished());
    }
    assert_eq!(env.truncated(), [true, true], "Pendulum ends by its time limit only");
    assert_eq!(episodes.iter().map(|e| e.length).collect::<Vec<_>>(), [200, 200]);
    // The discrete interface refuses to send to a box action space, and says so.
    env.step(&[0, 0], &mut b.obs, &mut b.rewards, &mut b.dones);
    assert!(
        env.failure().unwrap().contains("discrete actions only"),
        "{:?}",
        env.failure()
    );
}

#[test]
fn an_unknown_environment_is_refused_with_the_field_named() {
    let e = spawn(r#"{"gymnasium": "CartPole-v999"}"#, 1, 1).unwrap_err();
    assert!(
        e.contains("environment.gymnasium") && e.contains("CartPole-v999"),
        "{e}"
    );
    let e = spawn(r#"{"class": "no_such_module:Env"}"#, 1, 1).unwrap_err();
    assert!(e.contains("environment.class") && e.contains("no_such_module"), "{e}");
    let e = spawn(r#"{"gymnasium": "CartPole-v1", "kwargs": {"gravity_wells": 3}}"#, 1, 1).unwrap_err();
    assert!(e.contains("environment.kwargs"), "{e}");
}

/// Steps `env` (discrete, one row per environment) until it fails; returns the failure.
fn step_until_failure(env: &mut RemoteVecEnv) -> String {
    let mut b = Buffers::for_env(env);
    env.reset(0, &mut b.obs);
    let actions = vec![1; env.num_envs()];
    for _ in 0..10 {
        env.step(&actions, &mut b.obs, &mut b.rewards, &mut b.dones);
        if let Some(failure) = env.failure() {
            assert_eq!(
                b.dones,
                vec![true; env.num_envs()],
                "a failed vector ends every episode"
            );
            return failure.to_string();
        }
    }
    panic!("the environment never failed");
}

#[test]
fn an_environment_that_raises_fails_the_vector_with_its_exception() {
    let mut env = spawn(
        r#"{"class": "envs_for_tests:CrashingEnv", "kwargs": {"crash_at": 3}}"#,
        2,
        2,
    )
    .unwrap();
    let failure = step_until_failure(&mut env);
    assert!(failure.contains("environment.step"), "{failure}");
    assert!(failure.contains("the simulator exploded at step 3"), "{failure}");
}

#[test]
fn a_server_that_dies_is_reported_with_its_last_words() {
    let mut env = spawn(r#"{"class": "envs_for_tests:DyingEnv"}"#, 1, 1).unwrap();
    let failure = step_until_failure(&mut env);
    assert!(failure.contains("closed the connection"), "{failure}");
    assert!(failure.contains("simulator: fatal error, core dumped"), "{failure}");
}

#[test]
fn a_server_that_hangs_is_an_error_after_the_reply_timeout() {
    let timeouts = Timeouts {
        reply: Duration::from_secs(2),
        ..Timeouts::default()
    };
    let hanging = spec(r#"{"class": "envs_for_tests:HangingEnv"}"#);
    let mut env = RemoteVecEnv::spawn(&launcher(), &hanging, 1, 1, timeouts).unwrap();
    let failure = step_until_failure(&mut env);
    assert!(failure.contains("did not answer in time"), "{failure}");
}

/// A scratch folder of this test process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("drlaas-envs-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A requester's own environment as a package: `warehouse_env.Shelves`, which pays 1 for picking the
/// shelf its observation points at.
const WAREHOUSE_PYPROJECT: &str = r#"
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "warehouse-env"
version = "0.1.0"
"#;

const WAREHOUSE_ENV: &str = r#"
import gymnasium
import numpy as np
from gymnasium import spaces


class Shelves(gymnasium.Env):
    def __init__(self, shelves=2, length=10):
        self.shelves, self.length = shelves, length
        self.observation_space = spaces.Box(0.0, 1.0, shape=(shelves,), dtype=np.float32)
        self.action_space = spaces.Discrete(shelves)

    def _obs(self):
        obs = np.zeros(self.shelves, dtype=np.float32)
        obs[self.wanted] = 1.0
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.wanted = 0, int(self.np_random.integers(self.shelves))
        return self._obs(), {}

    def step(self, action):
        reward = 1.0 if action == self.wanted else 0.0
        self.t += 1
        self.wanted = int(self.np_random.integers(self.shelves))
        return self._obs(), reward, False, self.t >= self.length, {}
"#;

#[test]
fn a_requester_s_environment_shipped_as_a_wheel_is_served_without_any_download() {
    let python = launcher().python;
    let dir = scratch("wheel");
    let source = dir.join("source");
    std::fs::create_dir_all(source.join("warehouse_env")).unwrap();
    std::fs::write(source.join("pyproject.toml"), WAREHOUSE_PYPROJECT).unwrap();
    std::fs::write(source.join("warehouse_env/__init__.py"), WAREHOUSE_ENV).unwrap();
    let wheelhouse = dir.join("wheelhouse");
    let built = std::process::Command::new(&python)
        .args([
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
        ])
        .arg(&wheelhouse)
        .arg(&source)
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));

    // Not installed: the server cannot find it, and says which field and module.
    let e = spawn(r#"{"class": "warehouse_env:Shelves"}"#, 1, 1).unwrap_err();
    assert!(e.contains("environment.class") && e.contains("warehouse_env"), "{e}");

    let installed = drlaas_envs::remote::package::install(&python, &wheelhouse, &dir.join("site")).unwrap();
    assert!(installed.join("warehouse_env/__init__.py").is_file());
    let mut launcher = launcher();
    launcher.python_path.push(installed);
    let spec = spec(r#"{"class": "warehouse_env:Shelves", "kwargs": {"shelves": 3}}"#);
    let mut env = RemoteVecEnv::spawn(&launcher, &spec, 4, 2, Timeouts::default()).unwrap();
    assert_eq!((env.obs_shape(), env.num_actions()), (vec![3], 3));
    let mut b = Buffers::for_env(&env);
    env.reset(5, &mut b.obs);
    let mut episodes = Vec::new();
    for _ in 0..10 {
        // Pick the shelf each observation points at: every step pays 1.
        let actions: Vec<u32> = b
            .obs
            .chunks(3)
            .map(|o| o.iter().position(|x| *x == 1.0).unwrap() as u32)
            .collect();
        env.step(&actions, &mut b.obs, &mut b.rewards, &mut b.dones);
        assert_eq!(env.failure(), None);
        assert_eq!(b.rewards, [1.0; 4]);
        episodes.extend(env.drain_finished());
    }
    assert_eq!(episodes.len(), 4);
    assert!(
        episodes.iter().all(|e| e.episode_return == 10.0 && e.length == 10),
        "{episodes:?}"
    );

    // What is not a package is refused before anything runs.
    std::fs::write(dir.join("env.py"), WAREHOUSE_ENV).unwrap();
    let e = drlaas_envs::remote::package::install(&python, &dir.join("env.py"), &dir.join("other")).unwrap_err();
    assert!(e.contains("is not a wheel"), "{e}");
    let e = drlaas_envs::remote::package::install(&python, &source, &dir.join("other")).unwrap_err();
    assert!(e.contains("holds no wheel"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_gymnasium_descriptor_builds_a_served_vector_checked_against_its_declared_spaces() {
    use drlaas_envs::EnvDescriptor;
    // The descriptor reads the server's Python from DRLAAS_ENV_PYTHON, as the trainer does.
    assert!(std::env::var_os(drlaas_envs::descriptor::ENV_PYTHON).is_some());
    let descriptor = |json: &str| serde_json::from_str::<EnvDescriptor>(json).unwrap();
    let cartpole = descriptor(r#"{"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [4], "actions": 2}"#);
    cartpole.validate().unwrap();
    assert_eq!(
        (cartpole.obs_shape(), cartpole.num_actions(), cartpole.agents()),
        (vec![4], 2, 1)
    );
    let mut env = cartpole.make(20, 3).unwrap();
    assert_eq!((env.num_envs(), env.obs_shape(), env.num_actions()), (20, vec![4], 2));
    let mut obs = vec![0.0; 20 * 4];
    let (mut rewards, mut dones) = (vec![0.0; 20], vec![false; 20]);
    env.reset(3, &mut obs);
    env.step(&[1; 20], &mut obs, &mut rewards, &mut dones);
    assert_eq!((env.failure(), rewards), (None, vec![1.0; 20]));

    // Declared spaces that are not the environment's are refused, naming the field.
    let wrong = descriptor(r#"{"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [6], "actions": 2}"#);
    let e = wrong.make(2, 0).unwrap_err();
    assert_eq!(e.field, "environment.observationShape", "{e}");
    assert!(e.message.contains("[4]"), "{e}");
    let wrong = descriptor(r#"{"kind": "gymnasium", "id": "Acrobot-v1", "observationShape": [6], "actions": 2}"#);
    assert_eq!(
        wrong.make(1, 0).unwrap_err().to_string(),
        "invalid environment.actions: Acrobot-v1 has 3 discrete actions, not 2 discrete actions"
    );
    let continuous = descriptor(r#"{"kind": "gymnasium", "id": "Pendulum-v1", "observationShape": [3], "actions": 2}"#);
    assert_eq!(
        continuous.make(1, 0).unwrap_err().to_string(),
        "invalid environment.actions: Pendulum-v1 has continuous actions of 1 component, not 2 discrete actions"
    );
    let discrete =
        descriptor(r#"{"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [4], "continuousActions": 1}"#);
    assert_eq!(
        discrete.make(1, 0).unwrap_err().to_string(),
        "invalid environment.continuousActions: CartPole-v1 has 2 discrete actions, not continuous actions of 1 component"
    );
    let pendulum =
        descriptor(r#"{"kind": "gymnasium", "id": "Pendulum-v1", "observationShape": [3], "continuousActions": 1}"#);
    let env = pendulum.make(3, 0).unwrap();
    assert_eq!((env.continuous_actions(), env.num_actions()), (1, 0));
    assert_eq!(env.action_bounds(), [(-2.0, 2.0)]);
    let unknown = descriptor(r#"{"kind": "gymnasium", "id": "NoSuchEnv-v0", "observationShape": [1], "actions": 2}"#);
    let e = unknown.make(1, 0).unwrap_err();
    assert!(e.message.contains("NoSuchEnv-v0"), "{e}");
}
