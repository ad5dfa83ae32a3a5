//! Plain Rust views of on-chain state, free of ABI details: what callers of [`crate::Market`] read and pass.

use std::{collections::BTreeMap, fmt, str::FromStr};

use alloy::primitives::{Address, B256, U256, aliases::U40};
use serde::{Deserialize, Serialize};

use crate::bindings::{MMC, TMC, UMC};

/// Id of a task in TMC (1-based).
pub type TaskId = u64;
/// Id of a model listing in MMC (1-based).
pub type ListingId = u64;

/// Reputation in parts per million, as UMC stores it (1.0 = 1_000_000).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Reputation(pub u32);

impl Reputation {
    /// Fixed-point 1.0.
    pub const ONE: u32 = 1_000_000;

    /// The reputation as a fraction in [0, 1].
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / f64::from(Self::ONE)
    }
}

impl fmt::Display for Reputation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.4}", self.as_f64())
    }
}

/// The environment kinds, numbered as on chain: byte `i` of a worker's expertise and a listing's
/// `envKind` refer to kind `i`. New kinds are appended, never renumbered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnvKind {
    /// Classic control, to compare with the DRL libraries everyone knows.
    Cartpole = 0,
    /// N agents search a walled grid for K radiation sources.
    TargetLocalization = 1,
    /// N agents clean every free cell of a maze.
    MazeCleaning = 2,
    /// N vehicles serve pickup/drop-off requests on a road grid.
    FleetCoordination = 3,
    /// A Gymnasium environment served by an environment server (its id and spaces are in the task's
    /// spec; expertise in it is expertise in running requesters' own environments).
    Gymnasium = 4,
    /// A PettingZoo parallel environment served by an environment server (its factory, agents and
    /// spaces are in the task's spec).
    PettingZoo = 5,
}

impl EnvKind {
    /// Every kind, in on-chain order.
    pub const ALL: [EnvKind; 6] = [
        EnvKind::Cartpole,
        EnvKind::TargetLocalization,
        EnvKind::MazeCleaning,
        EnvKind::FleetCoordination,
        EnvKind::Gymnasium,
        EnvKind::PettingZoo,
    ];

    /// The on-chain index.
    pub fn index(self) -> u8 {
        self as u8
    }

    /// The kind with on-chain index `index`, if known.
    pub fn from_index(index: u8) -> Option<Self> {
        Self::ALL.get(usize::from(index)).copied()
    }

    /// The name used in task specs and YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            EnvKind::Cartpole => "cartpole",
            EnvKind::TargetLocalization => "target-localization",
            EnvKind::MazeCleaning => "maze-cleaning",
            EnvKind::FleetCoordination => "fleet-coordination",
            EnvKind::Gymnasium => "gymnasium",
            EnvKind::PettingZoo => "pettingzoo",
        }
    }
}

impl fmt::Display for EnvKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EnvKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            let known: Vec<_> = Self::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown environment kind `{s}`: expected one of {}", known.join(", "))
        })
    }
}

/// A worker's self-declared expertise: a level 1..=255 per environment kind (absent = none).
/// On chain it is one `bytes32`, byte `i` holding the level for kind `i`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expertise(pub BTreeMap<EnvKind, u8>);

impl Expertise {
    /// Expertise from `(kind, level)` pairs; level 0 means none.
    pub fn from_levels(levels: impl IntoIterator<Item = (EnvKind, u8)>) -> Self {
        Self(levels.into_iter().filter(|(_, l)| *l > 0).collect())
    }

    /// The level for `kind` (0 = none).
    pub fn level(&self, kind: EnvKind) -> u8 {
        self.0.get(&kind).copied().unwrap_or(0)
    }

    /// The on-chain encoding.
    pub fn to_bytes32(&self) -> B256 {
        let mut b = [0u8; 32];
        for (kind, level) in &self.0 {
            b[usize::from(kind.index())] = *level;
        }
        B256::from(b)
    }

    /// Decode the on-chain encoding; bytes of kinds this version does not know are ignored.
    pub fn from_bytes32(b: B256) -> Self {
        Self::from_levels(
            b.iter()
                .enumerate()
                .filter_map(|(i, l)| EnvKind::from_index(i as u8).map(|k| (k, *l))),
        )
    }
}

/// Summary of the compute a worker contributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hardware {
    /// GPUs in the node pool.
    pub gpus: u16,
    /// CPU cores in the node pool.
    pub cpu_cores: u16,
    /// Memory in GiB.
    pub memory_gib: u32,
}

impl From<Hardware> for UMC::Hardware {
    fn from(h: Hardware) -> Self {
        UMC::Hardware {
            gpus: h.gpus,
            cpuCores: h.cpu_cores,
            memoryGiB: h.memory_gib,
        }
    }
}

impl From<UMC::Hardware> for Hardware {
    fn from(h: UMC::Hardware) -> Self {
        Hardware {
            gpus: h.gpus,
            cpu_cores: h.cpuCores,
            memory_gib: h.memoryGiB,
        }
    }
}

/// What a worker registers (or updates) in UMC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerProfile {
    /// Levels per environment kind.
    pub expertise: Expertise,
    /// The node pool's compute.
    pub hardware: Hardware,
    /// Wei charged per task.
    pub price_per_task: U256,
    /// IPFS CID of the worker's public profile.
    pub metadata_cid: String,
}

/// A worker as UMC records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerInfo {
    /// The worker's account.
    pub address: Address,
    /// Bonded stake in wei.
    pub stake: U256,
    /// Its profile.
    pub profile: WorkerProfile,
    /// Reputation (starts at 0: it is earned by completed tasks paid at least the reputation floor).
    pub reputation: Reputation,
    /// Tasks assigned and not yet settled, under the current market (UMC's `activeTasksOf`).
    pub active_tasks: u32,
    /// Tasks completed successfully.
    pub completed_tasks: u32,
    /// Tasks failed or expired while assigned.
    pub failed_tasks: u32,
    /// Unix time of registration.
    pub registered_at: u64,
    /// Stake waiting for the cooldown (0 = none).
    pub unstake_amount: U256,
    /// Unix time from which the pending unstake can be withdrawn (0 = none): the cooldown in force
    /// when it was requested, which a later change of the cooldown does not move.
    pub unstake_available_at: u64,
}

impl WorkerInfo {
    /// `w` as UMC's `getWorker` returns it; `active_tasks` as `activeTasksOf` counts them (the raw
    /// counter of `w` is void under a later market).
    pub(crate) fn from_chain(address: Address, w: UMC::Worker, active_tasks: u32) -> Self {
        WorkerInfo {
            address,
            stake: U256::from(w.stake),
            profile: WorkerProfile {
                expertise: Expertise::from_bytes32(w.expertise),
                hardware: w.hardware.into(),
                price_per_task: U256::from(w.pricePerTask),
                metadata_cid: w.metadataCid,
            },
            reputation: Reputation(w.reputation),
            active_tasks,
            completed_tasks: w.completedTasks,
            failed_tasks: w.failedTasks,
            registered_at: w.registeredAt.to::<u64>(),
            unstake_amount: U256::from(w.unstakeAmount),
            unstake_available_at: w.unstakeAvailableAt.to::<u64>(),
        }
    }
}

/// What a requester buys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskKind {
    /// Train a policy that reaches the target.
    Training = 0,
    /// Deliver an existing model (possibly fine-tuned) that reaches the target.
    ModelSharing = 1,
}

impl TaskKind {
    pub(crate) fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(TaskKind::Training),
            1 => Some(TaskKind::ModelSharing),
            _ => None,
        }
    }
}

/// Where a task is in its life on chain (TMC.Status).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskStatus {
    /// No such task.
    None = 0,
    /// Escrow funded, waiting for a worker.
    Posted = 1,
    /// A worker is on it.
    Assigned = 2,
    /// The worker submitted a result; oracles verify it.
    Submitted = 3,
    /// Verified and paid.
    Completed = 4,
    /// Failed and refunded.
    Failed = 5,
    /// Cancelled (or withdrawn) by the requester: before assignment the whole budget was refunded,
    /// after it the worker was released and credited the withdrawal fee and the requester the rest.
    Cancelled = 6,
    /// Deadline passed unsettled, refunded.
    Expired = 7,
}

impl TaskStatus {
    /// Status from its on-chain number.
    pub fn from_u8(v: u8) -> Option<Self> {
        use TaskStatus::*;
        [None, Posted, Assigned, Submitted, Completed, Failed, Cancelled, Expired]
            .get(usize::from(v))
            .copied()
    }

    /// Whether the task is settled (no escrow left).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled | TaskStatus::Expired
        )
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A task to post on TMC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewTask {
    /// IPFS CID of the task spec JSON.
    pub spec_cid: String,
    /// Training or model sharing.
    pub kind: TaskKind,
    /// Mean return to reach, in thousandths.
    pub target_milli: i32,
    /// Unix time by which the result must be submitted.
    pub deadline: u64,
    /// Wei put in escrow.
    pub budget: U256,
}

/// A task as TMC records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskInfo {
    /// Its id.
    pub id: TaskId,
    /// Who posted it.
    pub requester: Address,
    /// Budget in escrow while the task is live.
    pub budget: U256,
    /// The assigned worker's price, fixed at assignment (zero when unassigned).
    pub price: U256,
    /// Assigned worker (zero when none).
    pub worker: Address,
    /// Unix deadline.
    pub deadline: u64,
    /// Lifecycle status.
    pub status: TaskStatus,
    /// Training or model sharing.
    pub kind: TaskKind,
    /// Assignments made so far.
    pub attempts: u8,
    /// Target mean return in thousandths.
    pub target_milli: i32,
    /// Block in which the current result was submitted (None before submission).
    pub submitted_block: Option<u64>,
    /// The oracles' votes on the current round of the task.
    pub votes: TaskVotes,
}

impl TaskInfo {
    pub(crate) fn from_chain(id: TaskId, t: TMC::Task) -> Self {
        TaskInfo {
            id,
            requester: t.requester,
            budget: U256::from(t.budget),
            price: U256::from(t.price),
            worker: t.worker,
            deadline: t.deadline.to::<u64>(),
            status: TaskStatus::from_u8(t.status).unwrap_or(TaskStatus::None),
            kind: TaskKind::from_u8(t.kind).unwrap_or(TaskKind::Training),
            attempts: t.attempts,
            target_milli: t.targetMilli,
            submitted_block: (t.submittedBlock != U40::ZERO).then(|| t.submittedBlock.to::<u64>()),
            votes: TaskVotes {
                assign: t.assignVotes,
                complete: t.completeVotes,
                fail: t.failVotes,
                epoch: t.voteEpoch,
            },
        }
    }

    /// Target mean return as a float.
    pub fn target(&self) -> f64 {
        f64::from(self.target_milli) / 1000.0
    }
}

/// How an oracle voted on a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VoteKind {
    /// For assigning the task (to some worker at some maximum price).
    Assign,
    /// For accepting the submitted result.
    Complete,
    /// For failing the current attempt.
    Fail,
}

/// The oracles' votes on a task's current round, as TMC stores them: one bit per oracle seat (bit
/// `i` = seat `i`, see [`crate::Market::seat_of`]) in each mask. Votes are counted only under the
/// oracle set they were cast under: `epoch` is the `oracleEpoch` of these masks, and when the
/// oracle set has changed since, none of them counts any more. Assignment votes are cleared when the
/// task is assigned, completion and failure votes when a result is submitted or an attempt ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TaskVotes {
    /// Seats that voted in the current assignment round (for whichever worker and maximum price; an
    /// oracle may back several proposals, see [`crate::Market::assign_proposals`]).
    pub assign: u32,
    /// Seats that voted to complete the current attempt.
    pub complete: u32,
    /// Seats that voted to fail the current attempt.
    pub fail: u32,
    /// The oracle epoch the masks were cast under.
    pub epoch: u16,
}

impl TaskVotes {
    /// How the oracle in `seat` voted, counted under oracle epoch `epoch` (the current one, from
    /// [`crate::Market::consortium`]); `None` when that seat has no vote that counts: it did not
    /// vote, or the masks are of another epoch.
    pub fn cast(&self, seat: u8, epoch: u16) -> Option<VoteKind> {
        if self.epoch != epoch || seat >= 32 {
            return None;
        }
        let bit = 1u32 << seat;
        if self.assign & bit != 0 {
            Some(VoteKind::Assign)
        } else if self.complete & bit != 0 {
            Some(VoteKind::Complete)
        } else if self.fail & bit != 0 {
            Some(VoteKind::Fail)
        } else {
            None
        }
    }
}

/// An assignment some oracle voted for and that still has votes: the worker and the most it may be
/// paid ([`crate::Market::assign_proposals`]). Another oracle seconds it by voting for exactly the same
/// worker and maximum price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignProposal {
    /// The proposed worker.
    pub worker: Address,
    /// The most the task may pay it, in wei.
    pub max_price: U256,
    /// The oracle that proposed it (voted for it first).
    pub oracle: Address,
    /// Seats that vote for it now (bit `i` = seat `i`).
    pub support: u32,
}

impl AssignProposal {
    /// Oracles that vote for it now.
    pub fn votes(&self) -> u32 {
        self.support.count_ones()
    }
}

/// The oracle set of TMC: who votes, how many votes must agree, and the set's epoch (bumped by
/// every change of the set; votes of an earlier epoch no longer count).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsortiumInfo {
    /// The oracles, by seat (seat `i` votes with bit `i`).
    pub oracles: Vec<Address>,
    /// Votes that must agree before a task is assigned, completed or failed (a majority).
    pub quorum: u8,
    /// TMC's `oracleEpoch`.
    pub epoch: u16,
}

/// The lifecycle terms a task is settled under, fixed when it is posted (TMC's `Terms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Terms {
    /// Seconds after the deadline during which oracles may still settle a submitted result.
    pub verification_window: u64,
    /// Attempts (assignments) a task gets before a failure refunds it.
    pub max_attempts: u8,
    /// Share of the worker's bonded stake slashed on a failed or abandoned attempt, in basis points.
    pub slash_bps: u16,
    /// Lowest price at which a completed task raises the worker's reputation, in wei.
    pub reputation_floor: U256,
}

impl From<TMC::Terms> for Terms {
    fn from(t: TMC::Terms) -> Self {
        Terms {
            verification_window: t.verificationWindow.to::<u64>(),
            max_attempts: t.maxAttempts,
            slash_bps: t.slashBps,
            reputation_floor: U256::from(t.reputationFloor),
        }
    }
}

/// A model to list on MMC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewListing {
    /// IPFS CID of the model artifact.
    pub model_cid: String,
    /// Environment kind it was trained on.
    pub env_kind: EnvKind,
    /// keccak256 of the canonical environment descriptor JSON.
    pub env_descriptor_hash: B256,
    /// Wei per purchase.
    pub price: U256,
    /// Listing it was warm-started from (royalty goes there).
    pub parent: Option<ListingId>,
    /// Royalty this listing asks of derived models, in basis points (≤ 3000).
    pub royalty_bps: u16,
}

/// A listing as MMC records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListingInfo {
    /// Its id.
    pub id: ListingId,
    /// Who listed it.
    pub owner: Address,
    /// Wei per purchase.
    pub price: U256,
    /// Parent listing, if warm-started from one.
    pub parent: Option<ListingId>,
    /// Royalty asked of derived models, in basis points.
    pub royalty_bps: u16,
    /// Environment kind (None if this version does not know the index).
    pub env_kind: Option<EnvKind>,
    /// Whether it can be bought.
    pub active: bool,
    /// Purchases so far.
    pub purchases: u32,
    /// Sum and count of star ratings.
    pub rating_sum: u32,
    /// Number of ratings.
    pub rating_count: u32,
    /// Unix time of listing.
    pub listed_at: u64,
    /// keccak256 of the environment descriptor.
    pub env_descriptor_hash: B256,
    /// IPFS CID of the model.
    pub model_cid: String,
}

impl ListingInfo {
    pub(crate) fn from_chain(id: ListingId, l: MMC::Listing) -> Self {
        ListingInfo {
            id,
            owner: l.owner,
            price: U256::from(l.price),
            parent: (l.parentId != 0).then_some(l.parentId),
            royalty_bps: l.royaltyBps,
            env_kind: EnvKind::from_index(l.envKind),
            active: l.active,
            purchases: l.purchases,
            rating_sum: l.ratingSum,
            rating_count: l.ratingCount,
            listed_at: l.listedAt.to::<u64>(),
            env_descriptor_hash: l.envDescriptorHash,
            model_cid: l.modelCid,
        }
    }

    /// Mean star rating, if rated.
    pub fn mean_rating(&self) -> Option<f64> {
        (self.rating_count > 0).then(|| f64::from(self.rating_sum) / f64::from(self.rating_count))
    }
}

/// A model as its `ModelListed` event recorded it: what never changes about a listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedModel {
    /// The listing's id.
    pub id: ListingId,
    /// Environment kind it was trained on (None if this version does not know the index).
    pub env_kind: Option<EnvKind>,
    /// keccak256 of the environment descriptor.
    pub env_descriptor_hash: B256,
    /// IPFS CID of the model.
    pub model_cid: String,
    /// Block of the event.
    pub block: u64,
}

/// What a worker did on the market between two blocks, from the chain's events: the tasks it
/// completed (`TaskCompleted`) and the models it listed (`ModelListed`), oldest first. Both only
/// grow, so a reader can keep what it read and ask again from the next block.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerActivity {
    /// Tasks completed (verified and paid), with the block of each completion.
    pub completed: Vec<(TaskId, u64)>,
    /// Models listed.
    pub listed: Vec<ListedModel>,
}

/// Withdrawable credits of one account in each contract.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credits {
    /// Payments and refunds in TMC.
    pub tmc: U256,
    /// Slashed stake received in UMC.
    pub umc: U256,
    /// Sales and royalties in MMC.
    pub mmc: U256,
}

impl Credits {
    /// All credits together.
    pub fn total(&self) -> U256 {
        self.tmc + self.umc + self.mmc
    }
}

/// A block, as far as drlaas needs it: evaluation seeds come from its hash, deadlines compare with
/// its timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockRef {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// Unix time the block was built.
    pub timestamp: u64,
}

/// The result of one mined transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TxOutcome {
    /// Transaction hash.
    pub hash: B256,
    /// Block it was mined in.
    pub block: u64,
    /// Gas it used.
    pub gas_used: u64,
    /// Wei paid for gas (gas used × effective gas price).
    pub fee: U256,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expertise_round_trips_through_bytes32() {
        let e = Expertise::from_levels([
            (EnvKind::Cartpole, 7),
            (EnvKind::FleetCoordination, 255),
            (EnvKind::MazeCleaning, 0),
        ]);
        let b = e.to_bytes32();
        assert_eq!(b[0], 7);
        assert_eq!(b[3], 255);
        assert_eq!(b[2], 0);
        assert_eq!(Expertise::from_bytes32(b), e);
        assert_eq!(
            e.level(EnvKind::MazeCleaning),
            0,
            "level 0 means none and is not stored"
        );
    }

    #[test]
    fn unknown_env_kind_names_the_known_ones() {
        assert_eq!("maze-cleaning".parse::<EnvKind>(), Ok(EnvKind::MazeCleaning));
        let err = "mujoco".parse::<EnvKind>().unwrap_err();
        assert_eq!(
            err,
            "unknown environment kind `mujoco`: expected one of cartpole, target-localization, maze-cleaning, fleet-coordination, gymnasium, pettingzoo"
        );
        for k in EnvKind::ALL {
            assert_eq!(EnvKind::from_index(k.index()), Some(k));
        }
        assert_eq!(EnvKind::from_index(4), Some(EnvKind::Gymnasium));
        assert_eq!(EnvKind::from_index(5), Some(EnvKind::PettingZoo));
        assert_eq!("pettingzoo".parse::<EnvKind>(), Ok(EnvKind::PettingZoo));
        assert_eq!(EnvKind::from_index(6), None);
    }

    #[test]
    fn task_status_numbers_match_the_contract() {
        assert_eq!(TaskStatus::from_u8(3), Some(TaskStatus::Submitted));
        assert_eq!(TaskStatus::from_u8(7), Some(TaskStatus::Expired));
        assert_eq!(TaskStatus::from_u8(8), None);
        assert!(TaskStatus::Cancelled.is_final() && !TaskStatus::Assigned.is_final());
        assert_eq!(Reputation(550_000).to_string(), "0.5500");
    }

    #[test]
    fn a_seat_s_vote_counts_only_under_its_epoch() {
        let v = TaskVotes {
            assign: 0b001,
            complete: 0b010,
            fail: 0b100,
            epoch: 3,
        };
        assert_eq!(v.cast(0, 3), Some(VoteKind::Assign));
        assert_eq!(v.cast(1, 3), Some(VoteKind::Complete));
        assert_eq!(v.cast(2, 3), Some(VoteKind::Fail));
        assert_eq!(v.cast(3, 3), None, "seat 3 did not vote");
        assert_eq!(v.cast(0, 4), None, "votes of another oracle set never count");
        assert_eq!(v.cast(40, 3), None);
        assert_eq!(TaskVotes::default().cast(0, 0), None);
    }
}
