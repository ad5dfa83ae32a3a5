//! Errors of the chain client. Contract reverts are decoded into their custom error with named
//! arguments (`TMC.InvalidStatus(taskId: 3, current: Completed)`), so a caller sees why, not a hex blob.

use std::fmt;

use alloy::{
    dyn_abi::{DynSolValue, JsonAbiExt},
    primitives::{B256, Bytes, Selector},
    sol_types::{SolError, SolInterface},
    transports::{RpcError, TransportErrorKind},
};

use crate::types::TaskStatus;

/// Errors of [`crate::Market`] and [`crate::EventStream`].
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// A contract call reverted with a custom error (or a panic/require message).
    #[error("{0}")]
    Reverted(Revert),
    /// A transaction was mined but failed, and re-running it gave no reason.
    #[error("transaction {hash} reverted on chain (block {block}) without a reason")]
    TxFailed {
        /// Transaction hash.
        hash: B256,
        /// Block it was mined in.
        block: u64,
    },
    /// A transaction was not mined in time.
    #[error("transaction {hash} was not mined within {seconds} s")]
    TxTimeout {
        /// Transaction hash.
        hash: B256,
        /// How long we waited.
        seconds: u64,
    },
    /// The RPC endpoint could not be reached or failed at the transport level (after retries).
    #[error("RPC error: {0}")]
    Rpc(String),
    /// The node answered with an error that is not a contract revert (insufficient funds, bad nonce, ...).
    #[error("the node rejected the request: {0}")]
    Rejected(String),
    /// Chain state does not match what the caller expected (wrong chain id, missing event, ...).
    #[error("{0}")]
    Inconsistent(String),
    /// The event cursor could not be read or written.
    #[error("event cursor at {path}: {message}")]
    Cursor {
        /// Where the cursor lives.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A caller-supplied value is invalid before anything was sent.
    #[error("invalid {field}: {message}")]
    InvalidInput {
        /// The field, as the caller named it.
        field: &'static str,
        /// What was expected.
        message: String,
    },
}

/// Result with [`ChainError`].
pub type Result<T, E = ChainError> = std::result::Result<T, E>;

impl ChainError {
    /// The decoded revert, when this error is one.
    pub fn revert(&self) -> Option<&Revert> {
        match self {
            ChainError::Reverted(r) => Some(r),
            _ => None,
        }
    }

    /// The custom error name of a revert (`"InvalidStatus"`), when this error is one.
    pub fn revert_name(&self) -> Option<&str> {
        self.revert().map(|r| r.name.as_str())
    }

    /// Decode the revert as one of a contract's typed errors (e.g. `TMC::TMCErrors`).
    pub fn decode_revert<E: SolInterface>(&self) -> Option<E> {
        self.revert().and_then(|r| E::abi_decode(&r.data).ok())
    }

    /// Whether retrying the same request might succeed (connection or server trouble, not a revert).
    pub fn is_transient(&self) -> bool {
        matches!(self, ChainError::Rpc(_) | ChainError::TxTimeout { .. })
    }

    pub(crate) fn from_rpc(contract: &'static str, err: RpcError<TransportErrorKind>) -> Self {
        match err.as_error_resp() {
            Some(resp) => match resp.as_revert_data() {
                Some(data) => ChainError::Reverted(Revert::decode(contract, data)),
                None => ChainError::Rejected(resp.to_string()),
            },
            // reqwest's message names only the URL: the causes say what failed (refused, certificate).
            None => ChainError::Rpc(drlaas_http::describe(&err)),
        }
    }

    pub(crate) fn from_contract(contract: &'static str, err: alloy::contract::Error) -> Self {
        if let Some(data) = err.as_revert_data() {
            return ChainError::Reverted(Revert::decode(contract, data));
        }
        match err {
            alloy::contract::Error::TransportError(e) => ChainError::from_rpc(contract, e),
            other => ChainError::Rejected(other.to_string()),
        }
    }
}

/// A decoded revert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revert {
    /// The contract that was called (`UMC`, `TMC`, `MMC`); the error may come from one it called.
    pub contract: &'static str,
    /// Error name (`InvalidStatus`), `Error` for require strings, `Panic` for panics.
    pub name: String,
    /// Named arguments, rendered.
    pub args: Vec<(String, String)>,
    /// The raw revert data.
    pub data: Bytes,
}

impl Revert {
    /// Decode revert data of a call to `contract` against the custom errors of all three contracts
    /// (a call may revert with an error of a contract it called).
    pub fn decode(contract: &'static str, data: Bytes) -> Self {
        let unknown = |name: &str| Revert {
            contract,
            name: name.to_string(),
            args: vec![],
            data: data.clone(),
        };
        if data.len() < 4 {
            return unknown("EmptyRevert");
        }
        let selector = Selector::from_slice(&data[..4]);
        if let Some(err) = crate::abi::error(selector)
            && let Ok(values) = err.abi_decode_input(&data[4..])
        {
            let args = err
                .inputs
                .iter()
                .zip(values)
                .map(|(p, v)| (p.name.clone(), render(&p.name, &v)))
                .collect();
            return Revert {
                contract,
                name: err.name.clone(),
                args,
                data,
            };
        }
        if let Ok(msg) = alloy::sol_types::Revert::abi_decode(&data) {
            return Revert {
                contract,
                name: "Error".into(),
                args: vec![("message".into(), format!("{:?}", msg.reason))],
                data,
            };
        }
        if let Ok(panic) = alloy::sol_types::Panic::abi_decode(&data) {
            return Revert {
                contract,
                name: "Panic".into(),
                args: vec![("code".into(), panic.to_string())],
                data,
            };
        }
        unknown("UnknownError")
    }
}

impl Revert {
    /// What the error means, in words, for the errors whose name and arguments do not say it alone
    /// (the consortium's votes and governance, and stake bonded per task); `Display` appends it.
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self.name.as_str() {
            "AlreadyVoted" => {
                "this oracle already cast this vote (for an assignment: the same worker and maximum price) in this \
                 round of the task; the other oracles' votes decide it"
            }
            "PriceAboveMax" => {
                "the worker's price is now above the most the oracles accepted when they chose it (it raised its \
                 price meanwhile); choose again"
            }
            "WorkerFailedTask" => "this worker already failed an attempt at this task and cannot be assigned it again",
            "NotGovernance" => {
                "this change is governed: the admin schedules it and anyone executes it after the governance delay \
                 (bindMarket only binds a registry that has no market yet)"
            }
            "ChangeNotReady" => {
                "the change is scheduled but its governance delay is not over yet (readyAt is unix time)"
            }
            "NotScheduled" => {
                "no change with exactly this call is scheduled (never scheduled, cancelled, or already executed)"
            }
            "AlreadyScheduled" => "this exact change is already scheduled; execute it once ready, or cancel it first",
            "InvalidOracleSet" => "an oracle set is 1 to 32 distinct accounts and its quorum a majority of them",
            "InsufficientStake" => {
                "a worker must keep the minimum stake bonded for every task it holds at once (required = minStake \
                 x tasks, this one included)"
            }
            "NotMarket" => "only the task market UMC is bound to may report tasks to the registry",
            _ => return None,
        })
    }
}

impl fmt::Display for Revert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} reverted: {}(", self.contract, self.name)?;
        for (i, (k, v)) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}: {v}")?;
        }
        f.write_str(")")?;
        if let Some(hint) = self.hint() {
            write!(f, ": {hint}")?;
        }
        Ok(())
    }
}

/// Render one argument; task status arguments (`current`, `previous`) print their name.
fn render(name: &str, v: &DynSolValue) -> String {
    match v {
        DynSolValue::Uint(n, 8) if name == "current" || name == "previous" => TaskStatus::from_u8(n.to::<u8>())
            .map(|s| s.to_string())
            .unwrap_or_else(|| n.to_string()),
        DynSolValue::Uint(n, _) => n.to_string(),
        DynSolValue::Int(n, _) => n.to_string(),
        DynSolValue::Address(a) => a.to_string(),
        DynSolValue::Bool(b) => b.to_string(),
        DynSolValue::String(s) => format!("{s:?}"),
        DynSolValue::FixedBytes(b, _) => b.to_string(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::{MMC, TMC};
    use alloy::primitives::U256;

    #[test]
    fn custom_errors_decode_with_named_arguments() {
        let data = TMC::InvalidStatus {
            taskId: U256::from(3),
            current: 4,
        }
        .abi_encode();
        let r = Revert::decode("TMC", data.into());
        assert_eq!(
            r.to_string(),
            "TMC reverted: InvalidStatus(taskId: 3, current: Completed)"
        );
        let data = MMC::WrongPayment {
            sent: U256::from(1),
            price: U256::from(2),
        }
        .abi_encode();
        assert_eq!(
            Revert::decode("MMC", data.into()).to_string(),
            "MMC reverted: WrongPayment(sent: 1, price: 2)"
        );
    }

    #[test]
    fn vote_and_governance_errors_say_what_they_mean() {
        let oracle = alloy::primitives::Address::repeat_byte(1);
        let r = Revert::decode(
            "TMC",
            TMC::AlreadyVoted {
                taskId: U256::from(7),
                oracle,
            }
            .abi_encode()
            .into(),
        );
        assert_eq!(
            r.to_string(),
            format!(
                "TMC reverted: AlreadyVoted(taskId: 7, oracle: {oracle}): this oracle already cast this vote (for an \
                 assignment: the same worker and maximum price) in this round of the task; the other oracles' votes \
                 decide it"
            )
        );
        let id = B256::repeat_byte(2);
        let r = Revert::decode(
            "UMC",
            TMC::ChangeNotReady {
                id,
                readyAt: U256::from(1_700_000_000u64),
            }
            .abi_encode()
            .into(),
        );
        assert!(
            r.to_string().starts_with(&format!(
                "UMC reverted: ChangeNotReady(id: {id}, readyAt: 1700000000): "
            )),
            "{r}"
        );
        for (name, data) in [
            (
                "PriceAboveMax",
                TMC::PriceAboveMax {
                    taskId: U256::from(1),
                    price: U256::from(3),
                    maxPrice: U256::from(2),
                }
                .abi_encode(),
            ),
            (
                "WorkerFailedTask",
                TMC::WorkerFailedTask {
                    taskId: U256::from(1),
                    worker: oracle,
                }
                .abi_encode(),
            ),
            ("NotGovernance", TMC::NotGovernance { caller: oracle }.abi_encode()),
            ("NotScheduled", TMC::NotScheduled { id }.abi_encode()),
            ("AlreadyScheduled", TMC::AlreadyScheduled { id }.abi_encode()),
            (
                "InvalidOracleSet",
                TMC::InvalidOracleSet {
                    reason: "1 to 32 oracles".into(),
                }
                .abi_encode(),
            ),
        ] {
            let r = Revert::decode("TMC", data.into());
            assert_eq!(r.name, name);
            assert!(r.hint().is_some() && r.to_string().ends_with(r.hint().unwrap()), "{r}");
        }
        let data = MMC::WrongPayment {
            sent: U256::from(1),
            price: U256::from(2),
        }
        .abi_encode();
        assert_eq!(
            Revert::decode("MMC", data.into()).hint(),
            None,
            "self-explanatory errors get none"
        );
    }

    #[test]
    fn require_strings_panics_and_garbage_are_named() {
        let data = alloy::sol_types::Revert::from("boom").abi_encode();
        assert_eq!(
            Revert::decode("TMC", data.into()).to_string(),
            "TMC reverted: Error(message: \"boom\")"
        );
        let data = alloy::sol_types::Panic::from(0x11).abi_encode();
        let r = Revert::decode("UMC", data.into());
        assert_eq!(r.name, "Panic");
        assert!(r.args[0].1.contains("overflow"), "{:?}", r.args);
        assert_eq!(Revert::decode("UMC", Bytes::from_static(&[1, 2])).name, "EmptyRevert");
        assert_eq!(
            Revert::decode("UMC", Bytes::from_static(&[1, 2, 3, 4, 5])).name,
            "UnknownError"
        );
    }
}
