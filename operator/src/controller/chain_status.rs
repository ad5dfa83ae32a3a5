//! The chain client's task enums as the core's, and back: the one place they meet.

use drlaas_chain::{TaskKind as ChainTaskKind, TaskStatus};
use drlaas_core::settlement::ChainStatus;
use drlaas_crds::task::TaskKind;

/// The core's name for what TMC says of a task.
pub fn chain_status(status: TaskStatus) -> ChainStatus {
    match status {
        TaskStatus::None => ChainStatus::None,
        TaskStatus::Posted => ChainStatus::Posted,
        TaskStatus::Assigned => ChainStatus::Assigned,
        TaskStatus::Submitted => ChainStatus::Submitted,
        TaskStatus::Completed => ChainStatus::Completed,
        TaskStatus::Failed => ChainStatus::Failed,
        TaskStatus::Cancelled => ChainStatus::Cancelled,
        TaskStatus::Expired => ChainStatus::Expired,
    }
}

/// TMC's name for a task's kind.
pub fn chain_kind(kind: TaskKind) -> ChainTaskKind {
    match kind {
        TaskKind::Training => ChainTaskKind::Training,
        TaskKind::ModelSharing => ChainTaskKind::ModelSharing,
    }
}
