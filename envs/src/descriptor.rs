//! Environment descriptors: what a task asks to train on, as plain serde data.
//!
//! The operator (which must not link torch) reads descriptors from task specs, validates them and
//! compares them for recruitment (docs/architecture.md#recruitment: similarity is 0 unless kind and observation/action shapes
//! match, then a weighted sum over [`EnvDescriptor::features`]). The trainer turns the same descriptor
//! into a running [`VecEnv`] with [`EnvDescriptor::make`]. JSON form:
//! `{"kind": "maze-cleaning", "grid": 8, "agents": 2, "horizon": 200}`; omitted fields take the
//! documented defaults, unknown fields are rejected so a typo never silently trains the default.

use serde::{Deserialize, Serialize};

pub use crate::external::{
    ENV_PACKAGES, ENV_PYTHON, EnvPackage, GymnasiumParams, MAX_ACTIONS, MAX_CONTINUOUS_ACTIONS, MAX_EXTERNAL_OBS,
    PettingZooParams,
};

use crate::cartpole::CartPole;
use crate::fleet_coordination::FleetCoordination;
use crate::maze_cleaning::{MazeCleaning, guaranteed_free_cells};
use crate::target_localization::TargetLocalization;
use crate::vec_env::VecEnv;

/// Smallest grid side accepted (smaller grids leave no room for a maze or a search).
pub const MIN_GRID: u32 = 4;
/// Largest grid side accepted (64×64 planes are already 16 KiB per channel per agent).
pub const MAX_GRID: u32 = 64;
/// Largest horizon accepted (an episode must end in a bounded time for evaluation).
pub const MAX_HORIZON: u32 = 100_000;
/// Most agents per environment.
pub const MAX_AGENTS: u32 = 64;

/// An invalid descriptor: which field (as a path in the task spec) and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {message}")]
pub struct EnvError {
    /// The offending field, e.g. `environment.grid`.
    pub field: String,
    /// What was expected instead.
    pub message: String,
}

impl EnvError {
    pub(crate) fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: format!("environment.{field}"),
            message: message.into(),
        }
    }
}

/// One similarity feature of a descriptor.
#[derive(Debug, Clone, PartialEq)]
pub enum Feature {
    /// Compared by equality.
    Categorical(String),
    /// Compared by `min / max`.
    Numeric(f64),
}

/// Which environment, with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum EnvDescriptor {
    /// Classic CartPole-v1.
    Cartpole(CartpoleParams),
    /// Agents search a walled grid for radiation sources.
    TargetLocalization(TargetLocalizationParams),
    /// Agents clean every cell of a maze.
    MazeCleaning(MazeCleaningParams),
    /// Vehicles serve pickup/drop-off requests on a road grid.
    FleetCoordination(FleetCoordinationParams),
    /// A registered Gymnasium environment, stepped through an environment server
    /// ([`crate::remote`]).
    Gymnasium(GymnasiumParams),
    /// A PettingZoo parallel environment, stepped through an environment server, its agents acting
    /// with one shared policy.
    #[serde(rename = "pettingzoo")]
    PettingZoo(PettingZooParams),
}

/// The descriptor's schema for Kubernetes: one object with every parameter of every kind (a CRD
/// schema must be structural, so the kinds cannot each have their own `horizon` with its own
/// default), the kind as an enum, CEL rules that keep each kind to its own parameters, and the
/// bounds `validate` enforces. Omitted parameters take the kind's defaults when the task is read.
#[cfg(feature = "schema")]
mod schema {
    use super::{
        EnvDescriptor, MAX_ACTIONS, MAX_AGENTS, MAX_CONTINUOUS_ACTIONS, MAX_EXTERNAL_OBS, MAX_GRID, MAX_HORIZON,
        MIN_GRID,
    };

    /// Keyword arguments are the requester's, of any shape: an object whose fields the API server
    /// keeps as they are.
    fn kwargs_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
        })
    }

    #[derive(schemars::JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    // `package` is a CEL reserved word: rules name the field `self.__package__`, the escaped form
    // that Kubernetes documents. The API server also takes the plain form; the CEL evaluator of the
    // in-memory API server (kube-cel) does not see the field under it, so a plain-form rule would
    // pass there and fail on a real cluster.
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self.kind != 'cartpole' || !has(self.grid) && !has(self.agents) && !has(self.targets) && !has(self.wallDensity) && !has(self.requestRate) && !has(self.maxWaiting)",
         "message": "cartpole takes only horizon"},
        {"rule": "self.kind != 'maze-cleaning' || !has(self.targets) && !has(self.wallDensity) && !has(self.requestRate) && !has(self.maxWaiting)",
         "message": "maze-cleaning takes grid, agents and horizon"},
        {"rule": "self.kind != 'target-localization' || !has(self.requestRate) && !has(self.maxWaiting)",
         "message": "target-localization takes grid, agents, targets, wallDensity and horizon"},
        {"rule": "self.kind != 'fleet-coordination' || !has(self.targets) && !has(self.wallDensity)",
         "message": "fleet-coordination takes grid, agents, requestRate, maxWaiting and horizon"},
        {"rule": "self.kind == 'gymnasium' || self.kind == 'pettingzoo' || !has(self.kwargs) && !has(self.observationShape) && !has(self.actions) && !has(self.continuousActions) && !has(self.__package__) && !has(self.image)",
         "message": "kwargs, observationShape, actions, continuousActions, package and image are for kinds gymnasium and pettingzoo"},
        {"rule": "!has(self.__package__) || !has(self.image)",
         "message": "one of image (the environment's own image) and package (a wheel for the standard environment image), not both",
         "fieldPath": ".image",
         "reason": "FieldValueInvalid"},
        {"rule": "self.kind == 'gymnasium' || !has(self.id)",
         "message": "id is for kind gymnasium"},
        {"rule": "self.kind == 'pettingzoo' || !has(self.factory)",
         "message": "factory is for kind pettingzoo"},
        {"rule": "self.kind != 'pettingzoo' || has(self.factory) && has(self.agents) && has(self.observationShape)",
         "message": "pettingzoo needs factory, agents, observationShape and actions or continuousActions (the factory of a parallel environment, its agents and one agent's spaces)"},
        {"rule": "self.kind != 'pettingzoo' || !has(self.grid) && !has(self.targets) && !has(self.wallDensity) && !has(self.requestRate) && !has(self.maxWaiting) && !has(self.horizon)",
         "message": "pettingzoo takes factory, kwargs, agents, observationShape and actions or continuousActions (an episode's length is the environment's own)"},
        {"rule": "self.kind != 'gymnasium' || has(self.id) && has(self.observationShape)",
         "message": "gymnasium needs id, observationShape and actions or continuousActions (the shape of one observation and the action space)"},
        {"rule": "self.kind != 'gymnasium' && self.kind != 'pettingzoo' || has(self.actions) != has(self.continuousActions)",
         "message": "one of actions (the number of discrete actions) and continuousActions (the components of a box action)",
         "fieldPath": ".actions",
         "reason": "FieldValueInvalid"},
        {"rule": "self.kind != 'gymnasium' || !has(self.grid) && !has(self.agents) && !has(self.targets) && !has(self.wallDensity) && !has(self.requestRate) && !has(self.maxWaiting) && !has(self.horizon)",
         "message": "gymnasium takes id, kwargs, observationShape and actions or continuousActions (an episode's length is the environment's own: pass max_episode_steps in kwargs to change it)"},
        // The product of at most four axes, each factor checked before the next multiplication so
        // that no product overflows.
        {"rule": "!has(self.observationShape) || size(self.observationShape) < 2 || self.observationShape[0] * self.observationShape[1] <= 262144 && (size(self.observationShape) < 3 || self.observationShape[0] * self.observationShape[1] * self.observationShape[2] <= 262144 && (size(self.observationShape) < 4 || self.observationShape[0] * self.observationShape[1] * self.observationShape[2] * self.observationShape[3] <= 262144))",
         "message": "one observation holds at most 262144 values (the product of observationShape)",
         "fieldPath": ".observationShape",
         "reason": "FieldValueInvalid"},
        // The agents must fit the free cells, as `EnvDescriptor::validate` checks (with each kind's
        // defaults for omitted parameters; a grid out of range is left to its own bound).
        {"rule": "self.kind != 'maze-cleaning' || (has(self.grid) ? self.grid : 8) < 4 || (has(self.grid) ? self.grid : 8) > 64 || (has(self.agents) ? self.agents : 2) <= ((has(self.grid) ? self.grid : 8) % 2 == 1 ? ((has(self.grid) ? self.grid : 8) + 1) / 2 * (((has(self.grid) ? self.grid : 8) + 1) / 2) : (has(self.grid) ? self.grid : 8) / 2 * ((has(self.grid) ? self.grid : 8) / 2) + 2 * (has(self.grid) ? self.grid : 8) - 1)",
         "message": "agents must fit the free cells of the maze: at most ((grid+1)/2)² for an odd grid, (grid/2)² + 2·grid − 1 for an even one (defaults: grid 8, agents 2)",
         "fieldPath": ".agents",
         "reason": "FieldValueInvalid"},
        {"rule": "self.kind != 'target-localization' || (has(self.grid) ? self.grid : 8) < 4 || (has(self.grid) ? self.grid : 8) > 64 || (has(self.wallDensity) ? self.wallDensity : 0.1) < 0.0 || (has(self.wallDensity) ? self.wallDensity : 0.1) > 0.5 || (has(self.agents) ? self.agents : 2) + (has(self.targets) ? self.targets : 2) <= ((has(self.grid) ? self.grid : 8) * (has(self.grid) ? self.grid : 8) - int((has(self.wallDensity) ? self.wallDensity : 0.1) * double((has(self.grid) ? self.grid : 8) * (has(self.grid) ? self.grid : 8))))",
         "message": "agents + targets must fit the free cells: at most grid² − int(wallDensity × grid²) (defaults: grid 8, agents 2, targets 2, wallDensity 0.1)",
         "fieldPath": ".agents",
         "reason": "FieldValueInvalid"},
        {"rule": "self.kind != 'fleet-coordination' || (has(self.grid) ? self.grid : 8) < 4 || (has(self.grid) ? self.grid : 8) > 64 || (has(self.agents) ? self.agents : 3) <= (has(self.grid) ? self.grid : 8) * (has(self.grid) ? self.grid : 8)",
         "message": "agents (vehicles) must be at most grid², one per cell (defaults: grid 8, agents 3)",
         "fieldPath": ".agents",
         "reason": "FieldValueInvalid"}
    ]))]
    struct Descriptor {
        /// The environment: `cartpole`, `target-localization`, `maze-cleaning`,
        /// `fleet-coordination`, `gymnasium` (a registered Gymnasium environment) or `pettingzoo` (a
        /// PettingZoo parallel environment), the last two served by an environment server.
        kind: Kind,
        /// Grid side G (grid kinds). Default 8.
        #[schemars(range(min = MIN_GRID, max = MAX_GRID))]
        #[serde(skip_serializing_if = "Option::is_none")]
        grid: Option<u32>,
        /// Agents (vehicles) per environment (grid kinds; default 2, fleet 3), or a PettingZoo
        /// environment's agents (pettingzoo, required).
        #[schemars(range(min = 1, max = MAX_AGENTS))]
        #[serde(skip_serializing_if = "Option::is_none")]
        agents: Option<u32>,
        /// Radiation sources (target-localization). Default 2.
        #[schemars(range(min = 1, max = MAX_AGENTS))]
        #[serde(skip_serializing_if = "Option::is_none")]
        targets: Option<u32>,
        /// Upper bound on the fraction of wall cells (target-localization). Default 0.1.
        #[schemars(range(min = 0.0, max = 0.5))]
        #[serde(skip_serializing_if = "Option::is_none")]
        wall_density: Option<f64>,
        /// Probability of a new request per step (fleet-coordination). Default 0.2.
        #[schemars(range(min = 0.0, max = 1.0))]
        #[serde(skip_serializing_if = "Option::is_none")]
        request_rate: Option<f64>,
        /// Most requests waiting at once (fleet-coordination). Default 4.
        #[schemars(range(min = 1, max = 1024))]
        #[serde(skip_serializing_if = "Option::is_none")]
        max_waiting: Option<u32>,
        /// Steps before an episode is truncated. Default by kind: cartpole 500, target-localization
        /// 100, maze-cleaning and fleet-coordination 200.
        #[schemars(range(min = 1, max = MAX_HORIZON))]
        #[serde(skip_serializing_if = "Option::is_none")]
        horizon: Option<u32>,
        /// The registered Gymnasium id (gymnasium), e.g. `CartPole-v1`; `module:Id` imports
        /// `module` first (where a package registers its environments).
        #[schemars(length(min = 1, max = 253), regex(pattern = r"^\S+$"))]
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// Keyword arguments of `gymnasium.make` (gymnasium), e.g. `{max_episode_steps: 200}`.
        #[schemars(schema_with = "kwargs_schema")]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kwargs: Option<serde_json::Map<String, serde_json::Value>>,
        /// The factory of a PettingZoo parallel environment (pettingzoo), `module:function`, e.g.
        /// `pettingzoo.butterfly.pistonball_v6:parallel_env`.
        #[schemars(length(min = 3, max = 253), regex(pattern = r"^[A-Za-z0-9_.]+:[A-Za-z0-9_]+$"))]
        #[serde(skip_serializing_if = "Option::is_none")]
        factory: Option<String>,
        /// The requester's code (gymnasium, pettingzoo): a wheel in the content store, installed
        /// before the environment server starts.
        #[serde(skip_serializing_if = "Option::is_none")]
        package: Option<PackageSchema>,
        /// The requester's own environment image (gymnasium, pettingzoo), by digest:
        /// `registry/name@sha256:<64 hex digits>`. It runs as the environment sidecar of the
        /// trainer and evaluator pods (drlaas-envserver on its PATH, a non-root user) instead of the
        /// deployment's standard environment image.
        #[schemars(
            length(min = 73, max = 327),
            regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._/:-]*@sha256:[0-9a-f]{64}$")
        )]
        #[serde(skip_serializing_if = "Option::is_none")]
        image: Option<String>,
        /// The shape of one observation (gymnasium), as the environment server sends it: a box's
        /// shape, `[n]` for a discrete observation (one-hot). The trainer checks it against the
        /// environment's.
        #[schemars(length(min = 1, max = 4), inner(range(min = 1, max = MAX_EXTERNAL_OBS)))]
        #[serde(skip_serializing_if = "Option::is_none")]
        observation_shape: Option<Vec<u32>>,
        /// Discrete actions (gymnasium, a Discrete action space). The trainer checks it against
        /// the environment's.
        #[schemars(range(min = 2, max = MAX_ACTIONS))]
        #[serde(skip_serializing_if = "Option::is_none")]
        actions: Option<u32>,
        /// Real-valued action components (gymnasium, a Box action space: the product of its
        /// shape), e.g. 1 for Pendulum-v1. The trainer checks it against the environment's and
        /// clips each action to the box's bounds. PPO only.
        #[schemars(range(min = 1, max = MAX_CONTINUOUS_ACTIONS))]
        #[serde(skip_serializing_if = "Option::is_none")]
        continuous_actions: Option<u32>,
    }

    /// An environment package: a wheel by CID.
    #[derive(schemars::JsonSchema)]
    #[allow(dead_code)]
    struct PackageSchema {
        /// The wheel's content identifier (`Qm…` or `b…`).
        #[schemars(length(min = 46, max = 128), regex(pattern = r"^(Qm|b)[A-Za-z0-9]+$"))]
        cid: String,
        /// The wheel's file name, e.g. `my_env-0.1.0-py3-none-any.whl`.
        #[schemars(length(min = 5, max = 253), regex(pattern = r"^[A-Za-z0-9_.+-]+\.whl$"))]
        wheel: String,
    }

    #[derive(schemars::JsonSchema)]
    #[serde(rename_all = "kebab-case")]
    #[allow(dead_code)]
    enum Kind {
        Cartpole,
        TargetLocalization,
        MazeCleaning,
        FleetCoordination,
        Gymnasium,
        #[serde(rename = "pettingzoo")]
        PettingZoo,
    }

    impl schemars::JsonSchema for EnvDescriptor {
        fn schema_name() -> std::borrow::Cow<'static, str> {
            "EnvDescriptor".into()
        }

        fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
            Descriptor::json_schema(generator)
        }
    }
}

/// CartPole parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CartpoleParams {
    /// Steps after which an episode is truncated. Default 500 (CartPole-v1).
    pub horizon: u32,
}

impl Default for CartpoleParams {
    fn default() -> Self {
        Self { horizon: 500 }
    }
}

/// Target-localization parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TargetLocalizationParams {
    /// Grid side G. Default 8.
    pub grid: u32,
    /// Searching agents N. Default 2.
    pub agents: u32,
    /// Radiation sources K. Default 2.
    pub targets: u32,
    /// Fraction of cells turned into walls, in [0, 0.5]; walls that would disconnect the free cells are
    /// skipped, so this is an upper bound. Default 0.1.
    pub wall_density: f64,
    /// Steps before truncation. Default 100.
    pub horizon: u32,
}

impl Default for TargetLocalizationParams {
    fn default() -> Self {
        Self {
            grid: 8,
            agents: 2,
            targets: 2,
            wall_density: 0.1,
            horizon: 100,
        }
    }
}

/// Maze-cleaning parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct MazeCleaningParams {
    /// Grid side G. Default 8.
    pub grid: u32,
    /// Cleaning agents N. Default 2.
    pub agents: u32,
    /// Steps before truncation. Default 200.
    pub horizon: u32,
}

impl Default for MazeCleaningParams {
    fn default() -> Self {
        Self {
            grid: 8,
            agents: 2,
            horizon: 200,
        }
    }
}

/// Fleet-coordination parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct FleetCoordinationParams {
    /// Grid side G. Default 8.
    pub grid: u32,
    /// Vehicles N. Default 3.
    pub agents: u32,
    /// Probability that a new request appears each step, in [0, 1]. Default 0.2.
    pub request_rate: f64,
    /// Most requests waiting at once; new ones are dropped beyond it. Default 4.
    pub max_waiting: u32,
    /// Episode length (fleet episodes only end at the horizon). Default 200.
    pub horizon: u32,
}

impl Default for FleetCoordinationParams {
    fn default() -> Self {
        Self {
            grid: 8,
            agents: 3,
            request_rate: 0.2,
            max_waiting: 4,
            horizon: 200,
        }
    }
}

/// The actions a policy takes in an environment, per agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionSpace {
    /// One of `n` actions.
    Discrete(usize),
    /// `n` real numbers (a box, flattened row-major), each clipped to the environment's bounds.
    Continuous(usize),
}

impl ActionSpace {
    /// Outputs of a policy head: one logit per discrete action, or one mean per component.
    pub fn outputs(self) -> usize {
        match self {
            Self::Discrete(n) | Self::Continuous(n) => n,
        }
    }

    /// Whether the actions are real numbers.
    pub fn is_continuous(self) -> bool {
        matches!(self, Self::Continuous(_))
    }
}

impl std::fmt::Display for ActionSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Discrete(n) => write!(f, "{n} discrete actions"),
            Self::Continuous(n) => write!(
                f,
                "continuous actions of {n} component{}",
                if *n == 1 { "" } else { "s" }
            ),
        }
    }
}

fn check_grid(grid: u32) -> Result<(), EnvError> {
    if !(MIN_GRID..=MAX_GRID).contains(&grid) {
        return Err(EnvError::new(
            "grid",
            format!("a grid side between {MIN_GRID} and {MAX_GRID}, got {grid}"),
        ));
    }
    Ok(())
}

fn check_agents(agents: u32) -> Result<(), EnvError> {
    if !(1..=MAX_AGENTS).contains(&agents) {
        return Err(EnvError::new(
            "agents",
            format!("between 1 and {MAX_AGENTS} agents, got {agents}"),
        ));
    }
    Ok(())
}

fn check_horizon(horizon: u32) -> Result<(), EnvError> {
    if !(1..=MAX_HORIZON).contains(&horizon) {
        return Err(EnvError::new(
            "horizon",
            format!("between 1 and {MAX_HORIZON} steps, got {horizon}"),
        ));
    }
    Ok(())
}

/// Free cells a target-localization grid always keeps (walls are at most `floor(density·G²)`).
pub(crate) fn tl_min_free_cells(grid: u32, wall_density: f64) -> u64 {
    let cells = u64::from(grid) * u64::from(grid);
    cells - (wall_density * cells as f64).floor() as u64
}

impl EnvDescriptor {
    /// The kind's name, as in JSON and on chain.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Cartpole(_) => "cartpole",
            Self::TargetLocalization(_) => "target-localization",
            Self::MazeCleaning(_) => "maze-cleaning",
            Self::FleetCoordination(_) => "fleet-coordination",
            Self::Gymnasium(_) => "gymnasium",
            Self::PettingZoo(_) => "pettingzoo",
        }
    }

    /// Checks every parameter; the error names the first offending field.
    pub fn validate(&self) -> Result<(), EnvError> {
        match self {
            Self::Cartpole(p) => check_horizon(p.horizon),
            Self::TargetLocalization(p) => {
                check_grid(p.grid)?;
                check_agents(p.agents)?;
                if p.targets == 0 || p.targets > MAX_AGENTS {
                    return Err(EnvError::new(
                        "targets",
                        format!("between 1 and {MAX_AGENTS} targets, got {}", p.targets),
                    ));
                }
                if !(0.0..=0.5).contains(&p.wall_density) {
                    return Err(EnvError::new(
                        "wallDensity",
                        format!("a density in [0, 0.5], got {}", p.wall_density),
                    ));
                }
                let free = tl_min_free_cells(p.grid, p.wall_density);
                if u64::from(p.agents) + u64::from(p.targets) > free {
                    return Err(EnvError::new(
                        "agents",
                        format!(
                            "agents + targets ({}) at most the {free} free cells a {g}x{g} grid with wall density {d} keeps",
                            p.agents + p.targets,
                            g = p.grid,
                            d = p.wall_density,
                        ),
                    ));
                }
                check_horizon(p.horizon)
            }
            Self::MazeCleaning(p) => {
                check_grid(p.grid)?;
                check_agents(p.agents)?;
                let free = guaranteed_free_cells(p.grid as usize);
                if p.agents as usize > free {
                    return Err(EnvError::new(
                        "agents",
                        format!(
                            "at most {free} agents (the free cells every {0}x{0} maze has), got {1}",
                            p.grid, p.agents
                        ),
                    ));
                }
                check_horizon(p.horizon)
            }
            Self::FleetCoordination(p) => {
                check_grid(p.grid)?;
                check_agents(p.agents)?;
                if p.agents > p.grid * p.grid {
                    return Err(EnvError::new(
                        "agents",
                        format!("at most {} vehicles (one per cell), got {}", p.grid * p.grid, p.agents),
                    ));
                }
                if !(0.0..=1.0).contains(&p.request_rate) {
                    return Err(EnvError::new(
                        "requestRate",
                        format!("a probability in [0, 1], got {}", p.request_rate),
                    ));
                }
                if !(1..=1024).contains(&p.max_waiting) {
                    return Err(EnvError::new(
                        "maxWaiting",
                        format!("between 1 and 1024, got {}", p.max_waiting),
                    ));
                }
                check_horizon(p.horizon)
            }
            Self::Gymnasium(p) => p.validate(),
            Self::PettingZoo(p) => p.validate(),
        }
    }

    /// Observation shape of one agent, without building the environment.
    pub fn obs_shape(&self) -> Vec<usize> {
        let planes = |c: usize, g: u32| vec![c, g as usize, g as usize];
        match self {
            Self::Cartpole(_) => vec![4],
            Self::TargetLocalization(p) => planes(crate::target_localization::CHANNELS, p.grid),
            Self::MazeCleaning(p) => planes(crate::maze_cleaning::CHANNELS, p.grid),
            Self::FleetCoordination(p) => planes(crate::fleet_coordination::CHANNELS, p.grid),
            Self::Gymnasium(p) => p.observation_shape.iter().map(|d| *d as usize).collect(),
            Self::PettingZoo(p) => p.observation_shape.iter().map(|d| *d as usize).collect(),
        }
    }

    /// The actions of one agent, without building the environment.
    pub fn action_space(&self) -> ActionSpace {
        match self {
            Self::Cartpole(_) => ActionSpace::Discrete(2),
            Self::Gymnasium(p) => p.action_space(),
            Self::PettingZoo(p) => p.action_space(),
            _ => ActionSpace::Discrete(crate::grid::NUM_MOVES),
        }
    }

    /// Outputs of a policy head for one agent: its discrete actions, or its continuous action's
    /// components ([`ActionSpace::outputs`]).
    pub fn num_actions(&self) -> usize {
        self.action_space().outputs()
    }

    /// Steps after which an episode is truncated; `None` for an external environment (its own).
    pub fn horizon(&self) -> Option<u32> {
        match self {
            Self::Cartpole(p) => Some(p.horizon),
            Self::TargetLocalization(p) => Some(p.horizon),
            Self::MazeCleaning(p) => Some(p.horizon),
            Self::FleetCoordination(p) => Some(p.horizon),
            Self::Gymnasium(_) | Self::PettingZoo(_) => None,
        }
    }

    /// The requester's code an external environment needs installed first, if any.
    pub fn package(&self) -> Option<&EnvPackage> {
        match self {
            Self::Gymnasium(p) => p.package.as_ref(),
            Self::PettingZoo(p) => p.package.as_ref(),
            _ => None,
        }
    }

    /// The requester's own environment image (by digest) of an external environment, if it names one.
    pub fn image(&self) -> Option<&str> {
        match self {
            Self::Gymnasium(p) => p.image.as_deref(),
            Self::PettingZoo(p) => p.image.as_deref(),
            _ => None,
        }
    }

    /// Whether the environment runs in an environment server (a requester's Gymnasium or
    /// PettingZoo environment) rather than in the trainer.
    pub fn is_external(&self) -> bool {
        matches!(self, Self::Gymnasium(_) | Self::PettingZoo(_))
    }

    /// Agents per environment, without building the environment.
    pub fn agents(&self) -> usize {
        match self {
            Self::Cartpole(_) | Self::Gymnasium(_) => 1,
            Self::TargetLocalization(p) => p.agents as usize,
            Self::MazeCleaning(p) => p.agents as usize,
            Self::FleetCoordination(p) => p.agents as usize,
            Self::PettingZoo(p) => p.agents as usize,
        }
    }

    /// The parameters that define similarity between two descriptors of the same kind (docs/architecture.md#recruitment).
    /// The kind itself is listed first as a categorical feature.
    pub fn features(&self) -> Vec<(&'static str, Feature)> {
        let mut f = vec![("kind", Feature::Categorical(self.kind_name().to_owned()))];
        let area = |g: u32| Feature::Numeric(f64::from(g) * f64::from(g));
        let num = |x: u32| Feature::Numeric(f64::from(x));
        // Keyword arguments and the requester's code (its package's CID or its image's digest)
        // together: another of either is a related environment, not the same one.
        let build =
            |kwargs: &serde_json::Map<String, serde_json::Value>, package: Option<&EnvPackage>, image: Option<&str>| {
                let kwargs = serde_json::Value::Object(kwargs.clone()).to_string();
                Feature::Categorical(match (package, image) {
                    (Some(p), _) => format!("{kwargs} {}", p.cid),
                    (None, Some(image)) => format!("{kwargs} {image}"),
                    (None, None) => kwargs,
                })
            };
        match self {
            Self::Cartpole(p) => f.push(("horizon", num(p.horizon))),
            Self::TargetLocalization(p) => f.extend([
                ("gridArea", area(p.grid)),
                ("agents", num(p.agents)),
                ("targets", num(p.targets)),
                ("wallDensity", Feature::Numeric(p.wall_density)),
                ("horizon", num(p.horizon)),
            ]),
            Self::MazeCleaning(p) => f.extend([
                ("gridArea", area(p.grid)),
                ("agents", num(p.agents)),
                ("horizon", num(p.horizon)),
            ]),
            Self::FleetCoordination(p) => f.extend([
                ("gridArea", area(p.grid)),
                ("agents", num(p.agents)),
                ("requestRate", Feature::Numeric(p.request_rate)),
                ("maxWaiting", num(p.max_waiting)),
                ("horizon", num(p.horizon)),
            ]),
            // The same id with the same keyword arguments is the same environment; other keyword
            // arguments (another gravity, another map) a related one.
            Self::Gymnasium(p) => f.extend([
                ("id", Feature::Categorical(p.id.clone())),
                ("kwargs", build(&p.kwargs, p.package.as_ref(), p.image.as_deref())),
            ]),
            // Likewise for a factory; another number of agents is a related environment (the
            // shared policy acts for each).
            Self::PettingZoo(p) => f.extend([
                ("factory", Feature::Categorical(p.factory.clone())),
                ("kwargs", build(&p.kwargs, p.package.as_ref(), p.image.as_deref())),
                ("agents", num(p.agents)),
            ]),
        }
        f
    }

    /// Validates, then builds `num_envs` copies seeded from `seed` (already reset).
    pub fn make(&self, num_envs: usize, seed: u64) -> Result<Box<dyn VecEnv>, EnvError> {
        self.validate()?;
        if num_envs == 0 {
            return Err(EnvError {
                field: "numEnvs".into(),
                message: "at least one environment".into(),
            });
        }
        Ok(match self {
            Self::Cartpole(p) => Box::new(CartPole::new(num_envs, p.horizon, seed)),
            Self::TargetLocalization(p) => Box::new(TargetLocalization::new(p, num_envs, seed)),
            Self::MazeCleaning(p) => Box::new(MazeCleaning::new(p, num_envs, seed)),
            Self::FleetCoordination(p) => Box::new(FleetCoordination::new(p, num_envs, seed)),
            Self::Gymnasium(p) => reset_served(p.serve(num_envs)?, seed, "id")?,
            Self::PettingZoo(p) => reset_served(p.serve(num_envs)?, seed, "factory")?,
        })
    }
}

/// A served vector, reset with `seed`; a server that fails the reset is blamed on `field`.
fn reset_served(mut env: crate::remote::RemoteVecEnv, seed: u64, field: &str) -> Result<Box<dyn VecEnv>, EnvError> {
    let rows = env.num_envs() * env.agents();
    let mut obs = vec![0.0; rows * crate::vec_env::obs_len(&env)];
    env.reset(seed, &mut obs);
    if let Some(failure) = env.failure() {
        return Err(EnvError::new(field, failure));
    }
    Ok(Box::new(env))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vec_env::obs_len;

    fn parse(json: &str) -> Result<EnvDescriptor, serde_json::Error> {
        serde_json::from_str(json)
    }

    fn invalid(json: &str) -> EnvError {
        parse(json).expect("parses").validate().expect_err(json)
    }

    #[test]
    fn an_environment_image_is_named_by_digest_and_is_part_of_the_environment() {
        let digest = "a".repeat(64);
        let with = |extra: &str| {
            format!(r#"{{"kind": "gymnasium", "id": "Shelves-v0", "observationShape": [3], "actions": 3{extra}}}"#)
        };
        let d = parse(&with(&format!(
            r#", "image": "reg.example:5000/team/shelves:1.2@sha256:{digest}""#
        )))
        .unwrap();
        d.validate().unwrap();
        assert_eq!(
            d.image(),
            Some(format!("reg.example:5000/team/shelves:1.2@sha256:{digest}").as_str())
        );
        let plain = parse(&with("")).unwrap();
        assert_ne!(
            d.features(),
            plain.features(),
            "another image is another environment's code"
        );
        for image in [
            "reg.example/shelves:1.2".to_string(),
            format!("reg.example/shelves@sha256:{}", "A".repeat(64)),
            format!("reg.example/shelves@sha256:{}", "a".repeat(63)),
            format!("@sha256:{digest}"),
            format!("reg example/shelves@sha256:{digest}"),
        ] {
            let e = invalid(&with(&format!(r#", "image": "{image}""#)));
            assert_eq!(e.field, "environment.image", "{image}: {e}");
        }
        let both = invalid(&with(&format!(
            r#", "image": "r/s@sha256:{digest}", "package": {{"cid": "Qm{}", "wheel": "s-0.1-py3-none-any.whl"}}"#,
            "x".repeat(44)
        )));
        assert!(
            both.field == "environment.image" && both.message.contains("not both"),
            "{both}"
        );
    }

    #[test]
    fn a_gymnasium_descriptor_declares_its_spaces_and_is_compared_by_id_and_kwargs() {
        let d = parse(r#"{"kind": "gymnasium", "id": "CartPole-v1", "kwargs": {"sutton_barto_reward": true}, "observationShape": [4], "actions": 2}"#).unwrap();
        d.validate().unwrap();
        assert_eq!(
            (d.kind_name(), d.obs_shape(), d.num_actions(), d.agents()),
            ("gymnasium", vec![4], 2, 1)
        );
        let features = d.features();
        assert_eq!(features[1], ("id", Feature::Categorical("CartPole-v1".into())));
        assert_eq!(
            features[2],
            ("kwargs", Feature::Categorical(r#"{"sutton_barto_reward":true}"#.into()))
        );
        for (json, field) in [
            (
                r#"{"kind": "gymnasium", "id": "", "observationShape": [4], "actions": 2}"#,
                "environment.id",
            ),
            (
                r#"{"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [], "actions": 2}"#,
                "environment.observationShape",
            ),
            (
                r#"{"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [4, 0], "actions": 2}"#,
                "environment.observationShape[1]",
            ),
            (
                r#"{"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [1024, 512], "actions": 2}"#,
                "environment.observationShape",
            ),
            (
                r#"{"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [4], "actions": 1}"#,
                "environment.actions",
            ),
            // Exactly one kind of action.
            (
                r#"{"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [4]}"#,
                "environment.actions",
            ),
            (
                r#"{"kind": "gymnasium", "id": "Pendulum-v1", "observationShape": [3], "actions": 2, "continuousActions": 1}"#,
                "environment.actions",
            ),
            (
                r#"{"kind": "gymnasium", "id": "Pendulum-v1", "observationShape": [3], "continuousActions": 0}"#,
                "environment.continuousActions",
            ),
            (
                r#"{"kind": "gymnasium", "id": "Pendulum-v1", "observationShape": [3], "continuousActions": 1025}"#,
                "environment.continuousActions",
            ),
        ] {
            assert_eq!(invalid(json).field, field, "{json}");
        }
        let pendulum =
            parse(r#"{"kind": "gymnasium", "id": "Pendulum-v1", "observationShape": [3], "continuousActions": 1}"#)
                .unwrap();
        pendulum.validate().unwrap();
        assert_eq!(pendulum.action_space(), ActionSpace::Continuous(1));
        assert_eq!(d.action_space(), ActionSpace::Discrete(2));
        // The spaces must be declared; an unknown field is refused.
        assert!(parse(r#"{"kind": "gymnasium", "id": "CartPole-v1"}"#).is_err());
        assert!(
            parse(r#"{"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [4], "actions": 2, "seed": 1}"#)
                .is_err()
        );
    }

    #[test]
    fn a_pettingzoo_descriptor_declares_its_agents_and_spaces() {
        let d = parse(
            r#"{"kind": "pettingzoo", "factory": "my_envs:parallel_env", "kwargs": {"n": 3}, "agents": 3, "observationShape": [3], "actions": 3}"#,
        )
        .unwrap();
        d.validate().unwrap();
        assert_eq!(
            (d.kind_name(), d.obs_shape(), d.action_space(), d.agents(), d.horizon()),
            ("pettingzoo", vec![3], ActionSpace::Discrete(3), 3, None)
        );
        assert!(d.is_external());
        assert_eq!(
            d.features()[1],
            ("factory", Feature::Categorical("my_envs:parallel_env".into()))
        );
        assert_eq!(d.features()[3], ("agents", Feature::Numeric(3.0)));
        for (json, field) in [
            (
                r#"{"kind": "pettingzoo", "factory": "parallel_env", "agents": 3, "observationShape": [3], "actions": 3}"#,
                "environment.factory",
            ),
            (
                r#"{"kind": "pettingzoo", "factory": "my envs:parallel_env", "agents": 3, "observationShape": [3], "actions": 3}"#,
                "environment.factory",
            ),
            (
                r#"{"kind": "pettingzoo", "factory": "my_envs:parallel_env", "agents": 0, "observationShape": [3], "actions": 3}"#,
                "environment.agents",
            ),
            (
                r#"{"kind": "pettingzoo", "factory": "my_envs:parallel_env", "agents": 3, "observationShape": [3]}"#,
                "environment.actions",
            ),
        ] {
            assert_eq!(invalid(json).field, field, "{json}");
        }
        // The agents are declared: a descriptor without them is refused.
        assert!(
            parse(
                r#"{"kind": "pettingzoo", "factory": "my_envs:parallel_env", "observationShape": [3], "actions": 3}"#
            )
            .is_err()
        );
    }

    #[test]
    fn kind_names_are_the_on_chain_names() {
        for (json, name) in [
            (r#"{"kind":"cartpole"}"#, "cartpole"),
            (r#"{"kind":"target-localization"}"#, "target-localization"),
            (r#"{"kind":"maze-cleaning"}"#, "maze-cleaning"),
            (r#"{"kind":"fleet-coordination"}"#, "fleet-coordination"),
        ] {
            let d = parse(json).unwrap();
            assert_eq!(d.kind_name(), name);
            assert_eq!(serde_json::to_value(&d).unwrap()["kind"], name);
        }
    }

    #[test]
    fn defaults_applied_and_json_round_trips() {
        let d = parse(r#"{"kind":"maze-cleaning","agents":3}"#).unwrap();
        assert_eq!(
            d,
            EnvDescriptor::MazeCleaning(MazeCleaningParams {
                grid: 8,
                agents: 3,
                horizon: 200
            })
        );
        let all = [
            EnvDescriptor::Cartpole(CartpoleParams::default()),
            EnvDescriptor::TargetLocalization(TargetLocalizationParams::default()),
            EnvDescriptor::MazeCleaning(MazeCleaningParams::default()),
            EnvDescriptor::FleetCoordination(FleetCoordinationParams::default()),
        ];
        for d in all {
            d.validate().expect("defaults are valid");
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(parse(&json).unwrap(), d, "{json}");
        }
        let json =
            serde_json::to_value(EnvDescriptor::TargetLocalization(TargetLocalizationParams::default())).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind":"target-localization","grid":8,"agents":2,"targets":2,"wallDensity":0.1,"horizon":100})
        );
        let json = serde_json::to_value(EnvDescriptor::FleetCoordination(FleetCoordinationParams::default())).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind":"fleet-coordination","grid":8,"agents":3,"requestRate":0.2,"maxWaiting":4,"horizon":200})
        );
    }

    #[test]
    fn unknown_fields_and_kinds_are_rejected() {
        let err = parse(r#"{"kind":"maze-cleaning","gird":8}"#).unwrap_err().to_string();
        assert!(err.contains("unknown field `gird`"), "{err}");
        let err = parse(r#"{"kind":"cartpole","wallDensity":0.1}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `wallDensity`"), "{err}");
        let err = parse(r#"{"kind":"pong"}"#).unwrap_err().to_string();
        assert!(err.contains("unknown variant `pong`"), "{err}");
        assert!(parse(r#"{"grid":8}"#).is_err());
    }

    #[test]
    fn each_rule_names_its_field() {
        let cases = [
            (r#"{"kind":"maze-cleaning","grid":0}"#, "environment.grid"),
            (r#"{"kind":"maze-cleaning","grid":3}"#, "environment.grid"),
            (r#"{"kind":"maze-cleaning","grid":65}"#, "environment.grid"),
            (r#"{"kind":"maze-cleaning","agents":0}"#, "environment.agents"),
            (r#"{"kind":"maze-cleaning","grid":4,"agents":12}"#, "environment.agents"),
            (r#"{"kind":"maze-cleaning","horizon":0}"#, "environment.horizon"),
            (r#"{"kind":"cartpole","horizon":0}"#, "environment.horizon"),
            (r#"{"kind":"cartpole","horizon":100001}"#, "environment.horizon"),
            (r#"{"kind":"target-localization","grid":100}"#, "environment.grid"),
            (r#"{"kind":"target-localization","agents":0}"#, "environment.agents"),
            (r#"{"kind":"target-localization","agents":65}"#, "environment.agents"),
            (r#"{"kind":"target-localization","targets":0}"#, "environment.targets"),
            (
                r#"{"kind":"target-localization","wallDensity":0.6}"#,
                "environment.wallDensity",
            ),
            (
                r#"{"kind":"target-localization","wallDensity":-0.1}"#,
                "environment.wallDensity",
            ),
            (
                r#"{"kind":"target-localization","grid":4,"wallDensity":0.5,"agents":4,"targets":5}"#,
                "environment.agents",
            ),
            (r#"{"kind":"target-localization","horizon":0}"#, "environment.horizon"),
            (r#"{"kind":"fleet-coordination","grid":2}"#, "environment.grid"),
            (r#"{"kind":"fleet-coordination","agents":0}"#, "environment.agents"),
            (
                r#"{"kind":"fleet-coordination","grid":4,"agents":17}"#,
                "environment.agents",
            ),
            (
                r#"{"kind":"fleet-coordination","requestRate":1.5}"#,
                "environment.requestRate",
            ),
            (
                r#"{"kind":"fleet-coordination","requestRate":-0.5}"#,
                "environment.requestRate",
            ),
            (
                r#"{"kind":"fleet-coordination","maxWaiting":0}"#,
                "environment.maxWaiting",
            ),
            (r#"{"kind":"fleet-coordination","horizon":0}"#, "environment.horizon"),
        ];
        for (json, field) in cases {
            let err = invalid(json);
            assert_eq!(err.field, field, "{json}");
            let text = err.to_string();
            assert!(text.starts_with(&format!("invalid {field}: ")), "{text}");
            assert!(!err.message.is_empty());
        }
        let err = invalid(r#"{"kind":"maze-cleaning","grid":0}"#);
        assert_eq!(
            err.to_string(),
            "invalid environment.grid: a grid side between 4 and 64, got 0"
        );
        // Boundaries that are allowed.
        for json in [
            r#"{"kind":"maze-cleaning","grid":4,"agents":11}"#,
            r#"{"kind":"maze-cleaning","grid":64}"#,
            r#"{"kind":"target-localization","grid":4,"wallDensity":0.5,"agents":4,"targets":4}"#,
            r#"{"kind":"fleet-coordination","grid":4,"agents":16,"requestRate":1.0}"#,
            r#"{"kind":"fleet-coordination","requestRate":0.0}"#,
        ] {
            parse(json)
                .unwrap()
                .validate()
                .unwrap_or_else(|e| panic!("{json}: {e}"));
        }
    }

    #[test]
    fn make_matches_static_shapes() {
        for json in [
            r#"{"kind":"cartpole"}"#,
            r#"{"kind":"target-localization","grid":4,"wallDensity":0.5,"agents":4,"targets":4}"#,
            r#"{"kind":"target-localization","grid":12,"agents":3}"#,
            r#"{"kind":"maze-cleaning","grid":4,"agents":11}"#,
            r#"{"kind":"maze-cleaning","grid":5,"agents":9}"#,
            r#"{"kind":"maze-cleaning","grid":64}"#,
            r#"{"kind":"fleet-coordination","grid":4,"agents":16}"#,
        ] {
            let d = parse(json).unwrap();
            let mut env = d.make(3, 1).unwrap();
            assert_eq!(env.obs_shape(), d.obs_shape(), "{json}");
            assert_eq!(env.num_actions(), d.num_actions());
            assert_eq!(env.agents(), d.agents());
            assert_eq!(env.num_envs(), 3);
            let rows = 3 * env.agents();
            let mut obs = vec![0.0; rows * obs_len(env.as_ref())];
            env.reset(2, &mut obs);
            let (mut r, mut dn) = (vec![0.0; rows], vec![false; rows]);
            for _ in 0..50 {
                env.step(&vec![1; rows], &mut obs, &mut r, &mut dn);
            }
        }
        assert_eq!(
            parse(r#"{"kind":"cartpole"}"#).unwrap().make(0, 1).unwrap_err().field,
            "numEnvs"
        );
        assert_eq!(
            parse(r#"{"kind":"maze-cleaning","grid":0}"#)
                .unwrap()
                .make(1, 1)
                .unwrap_err()
                .field,
            "environment.grid"
        );
    }

    #[test]
    fn features_describe_similarity_parameters() {
        let d = parse(r#"{"kind":"target-localization","grid":10}"#).unwrap();
        let f = d.features();
        let names: Vec<_> = f.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            ["kind", "gridArea", "agents", "targets", "wallDensity", "horizon"]
        );
        assert_eq!(f[0].1, Feature::Categorical("target-localization".into()));
        assert_eq!(f[1].1, Feature::Numeric(100.0));
        assert_eq!(f[4].1, Feature::Numeric(0.1));
        for json in [
            r#"{"kind":"cartpole"}"#,
            r#"{"kind":"maze-cleaning"}"#,
            r#"{"kind":"fleet-coordination"}"#,
        ] {
            let f = parse(json).unwrap().features();
            assert!(matches!(f[0].1, Feature::Categorical(_)));
            assert!(
                f[1..]
                    .iter()
                    .all(|(_, v)| matches!(v, Feature::Numeric(x) if *x >= 0.0))
            );
        }
    }

    #[test]
    fn grid_horizon_is_a_truncation_for_every_agent_row() {
        let d: EnvDescriptor =
            serde_json::from_str(r#"{"kind": "maze-cleaning", "grid": 8, "agents": 2, "horizon": 3}"#).unwrap();
        let mut env = d.make(2, 4).unwrap();
        let rows = 4;
        let mut obs = vec![0.0; rows * crate::obs_len(env.as_ref())];
        env.reset(4, &mut obs);
        let (mut rewards, mut dones) = (vec![0.0; rows], vec![false; rows]);
        for step in 1..=3 {
            env.step(&[0; 4], &mut obs, &mut rewards, &mut dones);
            assert_eq!(
                env.truncated(),
                [step == 3; 4],
                "an 8x8 maze is not clean after {step} steps"
            );
        }
    }
}
