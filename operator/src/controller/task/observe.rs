//! Observing a task: its record on chain and the pods of its current attempt, read and turned into
//! the core's inputs. Every fact the core decides from comes through [`observe`], and the other reads
//! the steps need (the Workers, a trainer's log, a block's time) are here too; only the write-ahead
//! post ([`super::post`]) and the withdrawal of unrecorded posts ([`super::cleanup`]) read what their
//! own protocol needs: the posts the chain holds of a document.
use drlaas_chain::alloy::primitives::Address;
use drlaas_chain::{BlockRef, TaskInfo};
use drlaas_crds::task::{DRLTask, Progress};
use drlaas_crds::worker::Worker;
use drlaas_envs::EnvDescriptor;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::LogParams;

use super::super::chain_status::chain_status;
use super::super::consortium::Membership;
use super::super::{Context, Error, namespace_of};
use super::namespaced;
use crate::pods::{evaluator_pod_name, trainer_pod_name};
use drlaas_core::lifecycle::TaskState;
use drlaas_core::mirror::{LABEL_CHAIN_ID, LABEL_CHAIN_TASK};
use drlaas_core::next_step::{ChainTask, Observed, PodState};
use drlaas_core::reports::training_progress;
use drlaas_core::settlement::{ChainStatus, ChainView, attempt_limit};
use drlaas_core::verification::{evaluation_seed, seed_block};

/// What one reconcile read about a task bound to a chain task: the core's inputs, and the objects
/// the steps act on.
#[derive(Debug, Clone)]
pub(super) struct Observation {
    /// The task's record on chain.
    pub info: TaskInfo,
    /// The chain's latest block.
    pub head: BlockRef,
    /// TMC's verification window, in seconds after the deadline.
    pub verification_window: u64,
    /// The attempts the task gets: its own limit within the contract's.
    pub max_attempts: u8,
    /// The Worker object whose account the chain names, if any does.
    pub worker: Option<Worker>,
    /// The current attempt's trainer pod, and when it was created.
    pub trainer: PodState,
    pub trainer_created: Option<Timestamp>,
    /// The current attempt's evaluator pod.
    pub evaluator: PodState,
    /// The model CID on chain for the current result.
    pub submitted_cid: Option<String>,
    /// The evaluation seed, once its block exists.
    pub seed: Option<u64>,
    /// The task's target mean return.
    pub target: Option<f64>,
    /// The task's environment.
    pub environment: EnvDescriptor,
    /// The oracle set and this operator's seat.
    pub membership: Membership,
}

impl Observation {
    /// The core's input.
    pub fn core(&self) -> Observed<'_> {
        Observed {
            chain: ChainTask {
                status: self.chain_status(),
                attempts: self.info.attempts,
                deadline: self.info.deadline,
                verification_window: self.verification_window,
                submitted_block: self.info.submitted_block,
                my_vote: self.membership.my_vote(&self.info.votes),
            },
            // In a consortium the worker's pool may be another member's; alone, the Worker must be here.
            worker_here: self.worker.is_some() || self.membership.is_single(),
            now: self.head.timestamp,
            head: self.head.number,
            trainer: &self.trainer,
            evaluator: &self.evaluator,
            submitted_cid: self.submitted_cid.as_deref(),
            seed: self.seed,
            target: self.target,
            environment: &self.environment,
        }
    }

    /// The core's name for the chain status.
    pub fn chain_status(&self) -> ChainStatus {
        chain_status(self.info.status)
    }

    /// Where the task is.
    pub fn state(&self) -> TaskState {
        self.core().state()
    }

    /// The chain state a settlement is judged against.
    pub fn chain_view(&self) -> ChainView {
        self.core().chain_view(self.max_attempts)
    }

    /// The current attempt's number (0 before the first assignment).
    pub fn attempt(&self) -> u32 {
        u32::from(self.info.attempts)
    }

    /// The block whose hash seeds the evaluation of the current result, once one is submitted.
    pub fn seed_block(&self) -> Option<u64> {
        self.info.submitted_block.map(seed_block)
    }

    /// The worker the status shows: the Worker object's name, or the account the chain names when
    /// no Worker object has it.
    pub fn worker_name(&self) -> Option<String> {
        (self.info.worker != Address::ZERO).then(|| {
            self.worker
                .as_ref()
                .map_or_else(|| self.info.worker.to_string(), |w| w.name_any())
        })
    }

    /// The Worker the chain assigned the task to; an error when no Worker object names its
    /// account (the steps of an attempt need its pool and its key).
    pub fn assigned_worker(&self) -> Result<&Worker, Error> {
        self.worker.as_ref().ok_or_else(|| Error::Invalid {
            field: "status.worker",
            message: format!(
                "chain task {} is assigned to {}, which no Worker names",
                self.info.id, self.info.worker
            ),
        })
    }
}

/// Reads what the core decides from, for `task` bound to chain task `id`.
pub(super) async fn observe(task: &DRLTask, ctx: &Context, id: u64) -> Result<Observation, Error> {
    let info = ctx.market.task(id).await?;
    let head = ctx.market.block(None).await?;
    // The terms the task was posted under: a later change of the contract's terms does not apply.
    let terms = ctx.market.task_terms(id).await?;
    let (verification_window, contract_attempts) = (terms.verification_window, terms.max_attempts);
    let membership = ctx.consortium.membership(&ctx.market, ctx.settings.oracle).await?;
    let worker = match info.worker {
        Address::ZERO => None,
        address => worker_by_address(ctx, address).await?,
    };
    let ((trainer, trainer_created), (evaluator, _)) = match u32::from(info.attempts) {
        0 => ((PodState::Absent, None), (PodState::Absent, None)),
        n => (
            pod(ctx, task, &trainer_pod_name(task, n)).await?,
            pod(ctx, task, &evaluator_pod_name(task, n)).await?,
        ),
    };
    let submitted = chain_status(info.status) == ChainStatus::Submitted;
    let submitted_cid = match submitted {
        true => ctx.market.task_result(id).await?.map(|(cid, _)| cid),
        false => None,
    };
    let seed = match info.submitted_block.map(seed_block) {
        Some(block) if submitted && head.number >= block => {
            Some(evaluation_seed(&ctx.market.block(Some(block)).await?.hash.0, id))
        }
        _ => None,
    };
    Ok(Observation {
        max_attempts: attempt_limit(contract_attempts, task.spec.max_attempts),
        info,
        head,
        verification_window,
        worker,
        trainer,
        trainer_created,
        evaluator,
        submitted_cid,
        seed,
        target: task.spec.training.target_mean_return,
        environment: task.spec.training.environment.clone(),
        membership,
    })
}

/// The chain task `task` stands for: the one its status records, the one its spec mirrors, or
/// the one its labels name (its status may have been lost after the post landed: a failed write,
/// a restore from backup). `None` for a task not posted yet.
pub(super) fn bound_chain_task(task: &DRLTask, ctx: &Context, recorded: Option<u64>) -> Option<u64> {
    recorded.or(task.spec.chain_task_id).or_else(|| {
        let chain = ctx.market.deployment().chain_id.to_string();
        task.labels()
            .get(LABEL_CHAIN_TASK)
            .and_then(|id| id.parse::<u64>().ok())
            .filter(|_| task.labels().get(LABEL_CHAIN_ID) == Some(&chain))
    })
}

/// Whether a DRLTask other than `this` already stands for chain task `id`.
pub(super) async fn chain_task_is_bound(ctx: &Context, id: u64, this: &DRLTask) -> Result<bool, Error> {
    let chain = ctx.market.deployment().chain_id.to_string();
    let id = id.to_string();
    let tasks = ctx.caches.tasks(&ctx.client, &ctx.settings.scope).await?;
    Ok(tasks.iter().any(|t| {
        t.uid() != this.uid()
            && t.labels().get(LABEL_CHAIN_ID) == Some(&chain)
            && t.labels().get(LABEL_CHAIN_TASK) == Some(&id)
    }))
}

/// The pod `name` of `task` as the core sees it, and when it was created.
async fn pod(ctx: &Context, task: &DRLTask, name: &str) -> Result<(PodState, Option<Timestamp>), Error> {
    let pod = ctx.caches.pod(&ctx.client, &namespace_of(task), name).await?;
    Ok(match pod {
        Some(pod) => (pod_state(&pod), pod.metadata.creation_timestamp.as_ref().map(|t| t.0)),
        None => (PodState::Absent, None),
    })
}

/// How a pod's status reads to the core: a failure carries every reason the pod gives, so the
/// Event that reports it says what happened.
fn pod_state(pod: &Pod) -> PodState {
    let status = pod.status.clone().unwrap_or_default();
    // The trainer's end; else, for a pod whose init container failed (the package fetch), that one's:
    // the trainer then never ran.
    let failed_init = || {
        status.init_container_statuses.iter().flatten().find_map(|c| {
            let t = c.state.as_ref()?.terminated.as_ref()?;
            (t.exit_code != 0).then(|| k8s_openapi::api::core::v1::ContainerStateTerminated {
                reason: Some(format!(
                    "init container {} {}",
                    c.name,
                    t.reason.as_deref().unwrap_or("failed")
                )),
                ..t.clone()
            })
        })
    };
    let terminated = status
        .container_statuses
        .as_ref()
        .and_then(|c| c.first())
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.clone())
        .or_else(failed_init);
    let message = terminated.as_ref().and_then(|t| t.message.clone()).unwrap_or_default();
    match status.phase.as_deref() {
        Some("Running") => PodState::Running,
        Some("Succeeded") => PodState::Succeeded(message),
        Some("Failed") => {
            let reason = [
                terminated.as_ref().and_then(|t| t.reason.clone()),
                status.reason.clone(),
                (!message.is_empty()).then_some(message),
                terminated.as_ref().map(|t| format!("exit code {}", t.exit_code)),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(": ");
            PodState::Failed(if reason.is_empty() { "failed".into() } else { reason })
        }
        _ => stuck(&status).map_or(PodState::Pending, PodState::Failed),
    }
}

/// Restarts of a pod's environment sidecar after which it counts as broken: it only exits when it
/// cannot start (an install that fails is answered to the trainer instead), so a sidecar that keeps
/// exiting would hold the pod before its trainer until the task's deadline.
const SIDECAR_RESTARTS: i32 = 2;

/// Why a pod that is not running yet never will, if it says so: an image name the runtime refuses,
/// or an init container (the environment sidecar, the package fetch) that keeps failing. Such a pod
/// would otherwise sit in `Pending` until the task's deadline, its worker's slot held for nothing.
/// Image pulls that fail are not counted: a registry can come back.
fn stuck(status: &k8s_openapi::api::core::v1::PodStatus) -> Option<String> {
    let statuses = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    for container in statuses {
        let Some(waiting) = container.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
            continue;
        };
        let reason = waiting.reason.as_deref().unwrap_or_default();
        let crash_looping = reason == "CrashLoopBackOff" && container.restart_count >= SIDECAR_RESTARTS;
        if !(crash_looping || matches!(reason, "InvalidImageName" | "ErrImageNeverPull")) {
            continue;
        }
        let last = container
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .map(|t| {
                let said = t.message.as_deref().or(t.reason.as_deref()).unwrap_or_default();
                format!(": exit code {}: {}", t.exit_code, said.trim())
            })
            .unwrap_or_default();
        let message = waiting
            .message
            .as_deref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default();
        return Some(format!(
            "container {} cannot start: {reason}{message}, {} restarts{last}",
            container.name, container.restart_count
        ));
    }
    None
}

/// The Worker object whose account is `address`.
async fn worker_by_address(ctx: &Context, address: Address) -> Result<Option<Worker>, Error> {
    let workers = ctx.caches.workers(&ctx.client).await?;
    Ok(workers
        .iter()
        .find(|w| w.spec.address.parse::<Address>().ok() == Some(address))
        .map(|w| Worker::clone(w)))
}

/// The Worker object named `name`.
pub(super) async fn worker_named(ctx: &Context, name: &str) -> Result<Option<Worker>, Error> {
    let workers = ctx.caches.workers(&ctx.client).await?;
    Ok(workers.iter().find(|w| w.name_any() == name).map(|w| Worker::clone(w)))
}

/// The pool the evaluation runs on: a registered worker other than the one that trained, so the
/// trainer's own nodes never judge its model; any node when there is none.
pub(super) async fn verifier_pool(ctx: &Context, trainer: Option<&Worker>) -> Result<Option<Worker>, Error> {
    let mut workers = ctx.caches.workers(&ctx.client).await?;
    workers.sort_by_key(|w| w.name_any());
    Ok(workers
        .into_iter()
        .find(|w| {
            Some(w.name_any()) != trainer.map(|t| t.name_any()) && w.status.as_ref().is_some_and(|s| s.registered)
        })
        .map(|w| Worker::clone(&w)))
}

/// Training progress from the trainer's latest JSON progress line
/// (docs/architecture.md#the-trainer-contract); `None` while it has printed none, or when its log
/// cannot be read (progress is shown, not decided on).
pub(super) async fn trainer_progress(ctx: &Context, task: &DRLTask, attempt: u32) -> Option<Progress> {
    let params = LogParams {
        tail_lines: Some(5),
        ..LogParams::default()
    };
    let logs = namespaced::<Pod>(ctx, task)
        .logs(&trainer_pod_name(task, attempt), &params)
        .await
        .ok()?;
    training_progress(&logs, task.spec.training.total_env_steps)
}

/// The time of block `number`, by the chain's clock.
pub(super) async fn block_time(ctx: &Context, number: u64) -> Result<u64, Error> {
    Ok(ctx.market.block(Some(number)).await?.timestamp)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use drlaas_chain::alloy::primitives::{B256, U256};
    use drlaas_chain::{ConsortiumInfo, TaskKind, TaskStatus, TaskVotes};
    use drlaas_core::lifecycle::Phase;
    use serde_json::json;

    /// A task on chain in `status`, with one attempt and the default limits.
    pub(in super::super) fn observation(status: TaskStatus, trainer: PodState) -> Observation {
        Observation {
            info: TaskInfo {
                id: 7,
                requester: Address::repeat_byte(1),
                budget: U256::from(1000),
                price: U256::from(100),
                worker: Address::repeat_byte(2),
                deadline: 1000,
                status,
                kind: TaskKind::Training,
                attempts: 1,
                target_milli: 20_000,
                submitted_block: Some(40),
                votes: TaskVotes::default(),
            },
            head: BlockRef {
                number: 50,
                hash: B256::ZERO,
                timestamp: 900,
            },
            verification_window: 100,
            max_attempts: 3,
            worker: None,
            trainer,
            trainer_created: None,
            evaluator: PodState::Absent,
            submitted_cid: Some("bafy1".into()),
            seed: Some(5),
            target: Some(20.0),
            environment: serde_json::from_value(json!({"kind": "cartpole"})).unwrap(),
            membership: Membership {
                info: ConsortiumInfo {
                    oracles: vec![Address::repeat_byte(9)],
                    quorum: 1,
                    epoch: 1,
                },
                seat: Some(0),
            },
        }
    }

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "status": status})).unwrap()
    }

    #[test]
    fn a_failed_pod_says_every_reason_it_has() {
        let failed = pod(json!({
            "phase": "Failed",
            "containerStatuses": [{
                "name": "trainer", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "message": "out of memory"}},
            }],
        }));
        assert_eq!(
            pod_state(&failed),
            PodState::Failed("OOMKilled: out of memory: exit code 137".into())
        );
        assert_eq!(
            pod_state(&pod(json!({"phase": "Failed"}))),
            PodState::Failed("failed".into())
        );
        assert_eq!(
            pod_state(&pod(json!({"phase": "Failed", "reason": "Evicted"}))),
            PodState::Failed("Evicted".into())
        );
        assert_eq!(pod_state(&pod(json!({"phase": "Running"}))), PodState::Running);
        assert_eq!(pod_state(&pod(json!({}))), PodState::Pending);
    }

    #[test]
    fn a_pod_whose_environment_sidecar_cannot_start_fails_instead_of_waiting_for_its_deadline() {
        let waiting = |reason: &str, restarts: i32| {
            pod(json!({
                "phase": "Pending",
                "initContainerStatuses": [{
                    "name": "environment", "image": "i", "imageID": "", "ready": false, "restartCount": restarts,
                    "state": {"waiting": {"reason": reason, "message": "back-off 20s restarting failed container"}},
                    "lastState": {"terminated": {"exitCode": 127, "reason": "Error",
                                                 "message": "exec: \"drlaas-envserver\": executable file not found"}},
                }],
            }))
        };
        let PodState::Failed(why) = pod_state(&waiting("CrashLoopBackOff", 2)) else {
            panic!("a crash-looping sidecar fails the pod");
        };
        assert!(
            why.starts_with("container environment cannot start: CrashLoopBackOff")
                && why.contains("exit code 127")
                && why.contains("drlaas-envserver"),
            "{why}"
        );
        assert_eq!(
            pod_state(&waiting("CrashLoopBackOff", 1)),
            PodState::Pending,
            "one more try"
        );
        assert!(matches!(
            pod_state(&waiting("InvalidImageName", 0)),
            PodState::Failed(_)
        ));
        // A registry may come back: pulls that fail are waited out (until the task's deadline).
        assert_eq!(pod_state(&waiting("ImagePullBackOff", 0)), PodState::Pending);
        assert_eq!(pod_state(&waiting("PodInitializing", 0)), PodState::Pending);
    }

    #[test]
    fn a_pod_whose_package_fetch_failed_says_so() {
        let failed = pod(json!({
            "phase": "Failed",
            "initContainerStatuses": [{
                "name": "env-package", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 2, "reason": "Error",
                                         "message": "error: invalid environment.package: not in the store"}},
            }],
            "containerStatuses": [{
                "name": "trainer", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "PodInitializing"}},
            }],
        }));
        assert_eq!(
            pod_state(&failed),
            PodState::Failed(
                "init container env-package Error: error: invalid environment.package: not in the store: exit code 2"
                    .into()
            )
        );
    }

    #[test]
    fn a_succeeded_pod_carries_its_termination_message() {
        let done = pod(json!({
            "phase": "Succeeded",
            "containerStatuses": [{
                "name": "trainer", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "message": "{\"modelCid\": \"bafy1\"}"}},
            }],
        }));
        assert_eq!(
            pod_state(&done),
            PodState::Succeeded("{\"modelCid\": \"bafy1\"}".into())
        );
    }

    #[test]
    fn the_observation_is_what_the_core_decides_from() {
        let seen = observation(TaskStatus::Assigned, PodState::Running);
        let core = seen.core();
        assert_eq!(core.chain.status, ChainStatus::Assigned);
        assert_eq!((core.now, core.head), (900, 50));
        assert_eq!(seen.state().phase, Phase::Training);
        assert_eq!(seen.seed_block(), Some(42));
        assert_eq!(seen.chain_view().max_attempts, 3);
        // The chain names an account no Worker object has: the status shows the account.
        assert_eq!(seen.worker_name(), Some(Address::repeat_byte(2).to_string()));
        assert!(seen.assigned_worker().is_err());
        let mut unassigned = observation(TaskStatus::Posted, PodState::Absent);
        unassigned.info.worker = Address::ZERO;
        assert_eq!(unassigned.worker_name(), None);
        assert_eq!(unassigned.state().phase, Phase::Funded);
    }
}
