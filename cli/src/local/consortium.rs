//! The consortium of the local mode (`drlaas local run --oracles N --quorum K`): N members, each
//! with its own oracle key and its own operator runtime against the one local chain and content
//! store. Member 0 is the cluster of `drlaas local run` (the workers' pools, the requesters'
//! tasks); every other member has a cluster of its own (an API server journalled in
//! `member-N/api.jsonl` and a kubelet running its pods from `member-N/pods`) holding no Workers:
//! it mirrors the tasks posted on chain, seconds the assignments member 0 proposes after checking
//! them, evaluates every submitted model itself and votes. `--dishonest-oracles D` turns the last D
//! seats into an oracle that checks nothing, seconding every proposal and voting to pay every
//! result, to show that a quorum outvotes it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use drlaas_chain::alloy::primitives::Address;
use drlaas_chain::devnet::ORACLE;
use drlaas_chain::{Market, TaskStatus, VoteKind};
use drlaas_local::api_server::ApiServer;
use drlaas_local::kubelet::Kubelet;
use drlaas_local::local_pod::LocalPodRunner;
use drlaas_operator::runtime::{self, OperatorConfig, RunError};
use tokio::task::JoinHandle;

/// The dev accounts the members' oracles use, by seat: the operator's account, then three that
/// the local workers and the requester do not use.
pub const ORACLE_ACCOUNTS: [usize; 4] = [ORACLE, 7, 8, 9];

/// Seconds each member's turn to propose a worker lasts in the local mode (a block a second).
pub const LOCAL_PROPOSAL_TURN_SECONDS: u64 = 5;

/// The members' accounts, by seat, for a consortium of `oracles`.
pub fn oracle_accounts(oracles: u8) -> Result<Vec<usize>, String> {
    let n = usize::from(oracles);
    if n == 0 || n > ORACLE_ACCOUNTS.len() {
        return Err(format!(
            "--oracles {oracles}: the local mode runs 1 to {} oracles",
            ORACLE_ACCOUNTS.len()
        ));
    }
    Ok(ORACLE_ACCOUNTS[..n].to_vec())
}

/// The quorum of `oracles` members: `quorum` when it is a majority, else why not; by default the
/// smallest majority.
pub fn quorum(oracles: u8, quorum: Option<u8>) -> Result<u8, String> {
    let majority = oracles / 2 + 1;
    match quorum {
        None => Ok(majority),
        Some(k) if k >= majority && k <= oracles => Ok(k),
        Some(k) => Err(format!(
            "--quorum {k}: must be a majority of the {oracles} oracles ({majority} to {oracles})"
        )),
    }
}

/// A member other than the first, running until dropped.
pub struct Member {
    operator: JoinHandle<Result<(), RunError>>,
    kubelet: JoinHandle<()>,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("stopped", &self.stopped())
            .finish_non_exhaustive()
    }
}

impl Member {
    /// Starts member `index` with `config` (its oracle key, the chain, the store): its own API
    /// server kept in `data_dir/member-<index>`, its kubelet and its operator runtime.
    pub fn start(index: usize, config: OperatorConfig, trainer: PathBuf, data_dir: &Path) -> Result<Member, String> {
        let dir = data_dir.join(format!("member-{index}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let api = ApiServer::open(&dir.join("api.jsonl")).map_err(|e| format!("{}: {e}", dir.display()))?;
        let runner = LocalPodRunner::new(trainer, dir.join("pods"), config.store.clone(), 1);
        let logs_api = api.clone();
        let kubelet = Kubelet::new(api.client(), None, runner, 1).with_logs(std::sync::Arc::new(
            move |ns: &str, pod: &str, text: &str| logs_api.set_log(ns, pod, text.to_string()),
        ));
        Ok(Member {
            kubelet: tokio::spawn(kubelet.run()),
            operator: tokio::spawn(runtime::run_with(config, Some(api.client()))),
        })
    }

    /// Whether its operator stopped (it runs until the member is dropped).
    pub fn stopped(&self) -> bool {
        self.operator.is_finished()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.operator.abort();
        self.kubelet.abort();
    }
}

/// An oracle that checks nothing: every second it votes for every assignment another oracle
/// proposed and to pay every submitted result, on every open task. It stands for a member that
/// colludes with workers; the honest majority's votes decide regardless.
pub async fn dishonest_oracle(market: Market, oracle: Address) {
    loop {
        if let Err(e) = vote_for_everything(&market, oracle).await {
            tracing::debug!(%oracle, error = %e, "the dishonest oracle's round failed");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn vote_for_everything(market: &Market, oracle: Address) -> drlaas_chain::Result<()> {
    let consortium = market.consortium().await?;
    let Some(seat) = consortium.oracles.iter().position(|o| *o == oracle) else {
        return Ok(());
    };
    let seat = seat as u8;
    for id in 1..=market.task_count().await? {
        let task = market.task(id).await?;
        let voted = task.votes.cast(seat, consortium.epoch);
        match task.status {
            TaskStatus::Submitted if voted.is_none() => {
                let _ = market.complete(oracle, id).await;
            }
            TaskStatus::Posted if voted != Some(VoteKind::Assign) => {
                for p in market.assign_proposals(id, task.attempts + 1).await? {
                    if market.assign(oracle, id, p.worker, p.max_price).await.is_ok() {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quorum_must_be_a_majority() {
        assert_eq!(quorum(3, None), Ok(2));
        assert_eq!(quorum(1, None), Ok(1));
        assert_eq!(quorum(4, None), Ok(3));
        assert_eq!(quorum(3, Some(3)), Ok(3));
        assert!(
            quorum(3, Some(1))
                .unwrap_err()
                .contains("majority of the 3 oracles (2 to 3)")
        );
        assert!(quorum(3, Some(4)).is_err());
        assert!(oracle_accounts(5).unwrap_err().contains("1 to 4 oracles"));
        assert_eq!(oracle_accounts(3), Ok(vec![ORACLE, 7, 8]));
    }
}
