//! Descriptors of external environments, served by an environment server ([`crate::remote`]): a
//! registered Gymnasium environment, or a PettingZoo parallel environment from its factory.
//!
//! The requester declares the spaces (one observation's shape, the actions, the agents of a
//! PettingZoo environment), so that the operator can check, price and compare a task without
//! running it; serving one ([`GymnasiumParams::serve`], [`PettingZooParams::serve`]) checks them
//! against what the server says before a step is taken.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::descriptor::{ActionSpace, EnvError, MAX_AGENTS};
use crate::remote::{EnvSpec, Launcher, RemoteVecEnv, Sidecar, Space, Timeouts};

/// The Python that runs environment servers: `DRLAAS_ENV_PYTHON`, else `python3` on the `PATH`.
pub const ENV_PYTHON: &str = "DRLAAS_ENV_PYTHON";

/// Largest observation accepted from an external environment, in `f32`s (a 1 MiB row).
pub const MAX_EXTERNAL_OBS: u32 = 1 << 18;

/// Most discrete actions of an external environment.
pub const MAX_ACTIONS: u32 = 1 << 16;

/// Most components of an external environment's continuous (box) action.
pub const MAX_CONTINUOUS_ACTIONS: u32 = 1024;

/// Where environment packages are installed, one folder per CID: `DRLAAS_ENV_PACKAGES`, else
/// `drlaas-env-packages` in the temporary directory.
pub const ENV_PACKAGES: &str = "DRLAAS_ENV_PACKAGES";

/// A requester's environment code in the content store: one wheel, named by its CID (so the worker
/// and the verifier run the same bytes) and its file name (which pip reads the package's name and
/// version from). The trainer fetches and installs it, without any package index, before the
/// environment server starts; the server then imports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvPackage {
    /// The wheel's content identifier (`Qm…` or `b…`).
    pub cid: String,
    /// The wheel's file name, e.g. `shelves_env-0.1.0-py3-none-any.whl`.
    pub wheel: String,
}

impl EnvPackage {
    /// Checks the CID's and the file name's form.
    pub fn validate(&self) -> Result<(), EnvError> {
        let cid_ok = (self.cid.starts_with("Qm") || self.cid.starts_with('b'))
            && (46..=128).contains(&self.cid.len())
            && self.cid.chars().all(|c| c.is_ascii_alphanumeric());
        if !cid_ok {
            return Err(EnvError::new(
                "package.cid",
                format!("the wheel's content identifier (Qm… or b…), got {:?}", self.cid),
            ));
        }
        let name_ok = self.wheel.len() > 4
            && self.wheel.ends_with(".whl")
            && self
                .wheel
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.+-".contains(c));
        if !name_ok {
            return Err(EnvError::new(
                "package.wheel",
                format!(
                    "the wheel's file name, such as my_env-0.1.0-py3-none-any.whl, got {:?}",
                    self.wheel
                ),
            ));
        }
        Ok(())
    }

    /// The folder it is installed in: `$DRLAAS_ENV_PACKAGES/<cid>`.
    pub fn installed_dir(&self) -> PathBuf {
        std::env::var_os(ENV_PACKAGES)
            .map_or_else(|| std::env::temp_dir().join("drlaas-env-packages"), PathBuf::from)
            .join(&self.cid)
    }
}

/// A Gymnasium environment: `gymnasium.make(id, **kwargs)` in an environment server, with the spaces
/// the requester declares. Exactly one of `actions` (a Discrete action space) and
/// `continuousActions` (a Box) is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GymnasiumParams {
    /// The registered id, e.g. `CartPole-v1`.
    pub id: String,
    /// Keyword arguments of `gymnasium.make`.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub kwargs: serde_json::Map<String, serde_json::Value>,
    /// The shape of one observation as the server sends it (a box's shape; `[n]` for a discrete
    /// observation, one-hot).
    pub observation_shape: Vec<u32>,
    /// Discrete actions, for a Discrete action space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<u32>,
    /// Real-valued action components, for a Box action space (the product of its shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuous_actions: Option<u32>,
    /// The requester's code, when the environment is not in the environment image: a wheel whose
    /// import registers the id (`id: my_package:MyEnv-v0` imports it first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<EnvPackage>,
    /// The requester's own environment image, by digest (`registry/name@sha256:…`), run as the
    /// environment sidecar of the trainer and evaluator pods instead of the standard one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// A PettingZoo parallel environment: `factory(**kwargs)` in an environment server, every agent
/// acting with one shared policy (as the built-in multi-agent environments do), so every agent must
/// have the same spaces; the declared spaces are one agent's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PettingZooParams {
    /// The factory of the parallel environment, `module:function`, e.g.
    /// `pettingzoo.butterfly.pistonball_v6:parallel_env`.
    pub factory: String,
    /// Keyword arguments of the factory.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub kwargs: serde_json::Map<String, serde_json::Value>,
    /// Agents of one environment (its `possible_agents`).
    pub agents: u32,
    /// The shape of one agent's observation as the server sends it.
    pub observation_shape: Vec<u32>,
    /// Discrete actions of one agent, for a Discrete action space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<u32>,
    /// Real-valued action components of one agent, for a Box action space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuous_actions: Option<u32>,
    /// The requester's code, when the factory is not in the environment image: a wheel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<EnvPackage>,
    /// The requester's own environment image, by digest, instead of the standard one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

impl GymnasiumParams {
    /// Checks every field; the error names the first offending one.
    pub fn validate(&self) -> Result<(), EnvError> {
        if self.id.trim().is_empty() || self.id.chars().any(char::is_whitespace) {
            return Err(EnvError::new(
                "id",
                format!("a registered Gymnasium id such as CartPole-v1, got {:?}", self.id),
            ));
        }
        check_spaces(&self.observation_shape, self.actions, self.continuous_actions)?;
        check_code(self.package.as_ref(), self.image.as_deref())
    }

    /// The actions of the environment, as declared.
    pub fn action_space(&self) -> ActionSpace {
        action_space(self.actions, self.continuous_actions)
    }

    /// `num_envs` copies served by environment servers (the pod's sidecar, else processes of
    /// [`ENV_PYTHON`]), checked against the declared spaces.
    pub fn serve(&self, num_envs: usize) -> Result<RemoteVecEnv, EnvError> {
        let spec = EnvSpec {
            gymnasium: Some(self.id.clone()),
            kwargs: self.kwargs.clone(),
            ..EnvSpec::default()
        };
        let declared = Declared {
            name: &self.id,
            field: "id",
            observation_shape: &self.observation_shape,
            actions: self.action_space(),
            agents: 1,
            package: self.package.as_ref(),
            image: self.image.as_deref(),
        };
        serve(&spec, num_envs, &declared)
    }
}

impl PettingZooParams {
    /// Checks every field; the error names the first offending one.
    pub fn validate(&self) -> Result<(), EnvError> {
        let valid_name =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        match self.factory.split_once(':') {
            Some((module, function)) if valid_name(module) && valid_name(function) => {}
            _ => {
                return Err(EnvError::new(
                    "factory",
                    format!(
                        "a parallel environment's factory as module:function, such as pettingzoo.butterfly.pistonball_v6:parallel_env, got {:?}",
                        self.factory
                    ),
                ));
            }
        }
        if !(1..=MAX_AGENTS).contains(&self.agents) {
            return Err(EnvError::new(
                "agents",
                format!("between 1 and {MAX_AGENTS} agents, got {}", self.agents),
            ));
        }
        check_spaces(&self.observation_shape, self.actions, self.continuous_actions)?;
        check_code(self.package.as_ref(), self.image.as_deref())
    }

    /// One agent's actions, as declared.
    pub fn action_space(&self) -> ActionSpace {
        action_space(self.actions, self.continuous_actions)
    }

    /// `num_envs` copies served by environment servers (the pod's sidecar, else processes of
    /// [`ENV_PYTHON`]), checked against the declared spaces and agents.
    pub fn serve(&self, num_envs: usize) -> Result<RemoteVecEnv, EnvError> {
        let spec = EnvSpec {
            pettingzoo: Some(self.factory.clone()),
            kwargs: self.kwargs.clone(),
            ..EnvSpec::default()
        };
        let declared = Declared {
            name: &self.factory,
            field: "factory",
            observation_shape: &self.observation_shape,
            actions: self.action_space(),
            agents: self.agents as usize,
            package: self.package.as_ref(),
            image: self.image.as_deref(),
        };
        serve(&spec, num_envs, &declared)
    }
}

/// The declared action space: `continuousActions` when set, else `actions`.
fn action_space(actions: Option<u32>, continuous_actions: Option<u32>) -> ActionSpace {
    match continuous_actions {
        Some(n) => ActionSpace::Continuous(n as usize),
        None => ActionSpace::Discrete(actions.unwrap_or(0) as usize),
    }
}

/// The bounds of a declared observation shape and action space.
fn check_spaces(shape: &[u32], actions: Option<u32>, continuous_actions: Option<u32>) -> Result<(), EnvError> {
    if !(1..=4).contains(&shape.len()) {
        return Err(EnvError::new(
            "observationShape",
            format!("the shape of one observation, 1 to 4 axes, got {shape:?}"),
        ));
    }
    if let Some(axis) = shape.iter().position(|d| !(1..=MAX_EXTERNAL_OBS).contains(d)) {
        return Err(EnvError::new(
            &format!("observationShape[{axis}]"),
            format!("an axis of 1 to {MAX_EXTERNAL_OBS}, got {}", shape[axis]),
        ));
    }
    if shape.iter().map(|d| u64::from(*d)).product::<u64>() > u64::from(MAX_EXTERNAL_OBS) {
        return Err(EnvError::new(
            "observationShape",
            format!("one observation holds at most {MAX_EXTERNAL_OBS} values, got {shape:?}"),
        ));
    }
    match (actions, continuous_actions) {
        (Some(n), None) if !(2..=MAX_ACTIONS).contains(&n) => Err(EnvError::new(
            "actions",
            format!("between 2 and {MAX_ACTIONS} discrete actions, got {n}"),
        )),
        (None, Some(n)) if !(1..=MAX_CONTINUOUS_ACTIONS).contains(&n) => Err(EnvError::new(
            "continuousActions",
            format!("between 1 and {MAX_CONTINUOUS_ACTIONS} action components, got {n}"),
        )),
        (Some(_), None) | (None, Some(_)) => Ok(()),
        _ => Err(EnvError::new(
            "actions",
            "one of actions (the number of discrete actions) and continuousActions (the components of a box action)",
        )),
    }
}

/// Whether `image` names a container image by digest: `NAME@sha256:` and 64 lowercase hex digits
/// (a tag may stand before the `@`; the digest alone decides what runs).
pub fn is_image_by_digest(image: &str) -> bool {
    let Some((name, digest)) = image.split_once("@sha256:") else {
        return false;
    };
    !name.is_empty()
        && name.len() <= MAX_IMAGE_NAME
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "._/:-".contains(c))
        && digest.len() == 64
        && digest.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

/// Longest image name (before `@sha256:`) accepted.
pub const MAX_IMAGE_NAME: usize = 255;

/// The environment's code comes from at most one place: a wheel by CID (installed into the standard
/// environment image) or an image by digest.
fn check_code(package: Option<&EnvPackage>, image: Option<&str>) -> Result<(), EnvError> {
    if let Some(image) = image {
        if package.is_some() {
            return Err(EnvError::new(
                "image",
                "one of image (the environment's own image) and package (a wheel for the standard environment image), not both",
            ));
        }
        if !is_image_by_digest(image) {
            return Err(EnvError::new(
                "image",
                format!(
                    "a container image by digest, such as registry.example/my-env@sha256:<64 hex digits> (a tag alone can move, and the worker and the verifier must run the same code), got {image:?}"
                ),
            ));
        }
    }
    package.map_or(Ok(()), EnvPackage::validate)
}

/// What a task declares of an external environment, to check the server's spaces against.
struct Declared<'a> {
    /// The id or factory, for messages.
    name: &'a str,
    /// The field a server that cannot start is blamed on.
    field: &'a str,
    observation_shape: &'a [u32],
    actions: ActionSpace,
    agents: usize,
    package: Option<&'a EnvPackage>,
    image: Option<&'a str>,
}

/// How long a pod's environment sidecar may take to listen: it installs the requester's package and
/// imports the environment's modules (a physics engine can take a while) before it is ready.
const SIDECAR_READY_WITHIN: Duration = Duration::from_secs(180);

/// `num_envs` copies of `spec` (one server per 16 environments, at most 4), refused with the field
/// named unless the server's spaces are the declared ones. The servers are the pod's environment
/// sidecar when the operator names one ([`Sidecar::from_env`]), else processes of [`ENV_PYTHON`]
/// started here (the trainer on its own, the tests).
fn serve(spec: &EnvSpec, num_envs: usize, declared: &Declared<'_>) -> Result<RemoteVecEnv, EnvError> {
    let servers = num_envs.div_ceil(16).clamp(1, 4);
    let env = match Sidecar::from_env().map_err(|e| EnvError::new(declared.field, e))? {
        Some(sidecar) => {
            // A sidecar that never listens is its image's fault when the task names one.
            let field = if declared.image.is_some() {
                "image"
            } else {
                declared.field
            };
            sidecar
                .wait_ready(SIDECAR_READY_WITHIN)
                .map_err(|e| EnvError::new(field, e))?;
            RemoteVecEnv::connect(sidecar.servers(servers), spec, num_envs, Timeouts::default())
        }
        None => {
            let launcher = local_launcher(declared.package)?;
            RemoteVecEnv::spawn(&launcher, spec, num_envs, servers, Timeouts::default())
        }
    }
    .map_err(|e| EnvError::new(declared.field, e))?;
    let spaces = env.spaces();
    let name = declared.name;
    let shape: Vec<usize> = declared.observation_shape.iter().map(|d| *d as usize).collect();
    if spaces.observation_shape != shape {
        return Err(EnvError::new(
            "observationShape",
            format!("{name} observations are {:?}, not {shape:?}", spaces.observation_shape),
        ));
    }
    if spaces.agents as usize != declared.agents {
        return Err(EnvError::new(
            "agents",
            format!(
                "{name} has {} agents ({:?}), not {}",
                spaces.agents, spaces.agent_ids, declared.agents
            ),
        ));
    }
    let found = match &spaces.action_space {
        Space::Discrete { n, .. } => Some(ActionSpace::Discrete(*n as usize)),
        Space::Box { shape, .. } => Some(ActionSpace::Continuous(shape.iter().product())),
        Space::MultiDiscrete { .. } => None,
    };
    let field = if declared.actions.is_continuous() {
        "continuousActions"
    } else {
        "actions"
    };
    match found {
        Some(found) if found == declared.actions => Ok(env),
        Some(found) => Err(EnvError::new(
            field,
            format!("{name} has {found}, not {}", declared.actions),
        )),
        None => Err(EnvError::new(
            field,
            format!(
                "{name}'s action space is {:?}: the trainer's learners act in Discrete and Box spaces",
                spaces.action_space
            ),
        )),
    }
}

/// The launcher of servers started here: [`ENV_PYTHON`], with the requester's package (installed by
/// the trainer beforehand) on its path.
fn local_launcher(package: Option<&EnvPackage>) -> Result<Launcher, EnvError> {
    let python = std::env::var_os(ENV_PYTHON).unwrap_or_else(|| "python3".into());
    let mut launcher = Launcher::new(python);
    if let Some(package) = package {
        let dir = package.installed_dir();
        if !dir.is_dir() {
            return Err(EnvError::new(
                "package",
                format!(
                    "{} ({}) is not installed in {}: drlaas-trainer installs it from the content store (DRLAAS_STORE) before it trains or evaluates",
                    package.wheel,
                    package.cid,
                    dir.display()
                ),
            ));
        }
        launcher.python_path.push(dir);
    }
    Ok(launcher)
}
