//! Typed bindings generated at compile time from the committed artifacts (`chain/artifacts/*.json`,
//! `{abi, bytecode}` written by `scripts/build-contracts.sh`), so building this crate needs no Solidity
//! toolchain. Each module has the call/event/error types and a `deploy` with the bytecode.

#![allow(missing_docs, clippy::too_many_arguments, missing_debug_implementations)]

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    UMC,
    "artifacts/UMC.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    TMC,
    "artifacts/TMC.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    MMC,
    "artifacts/MMC.json"
);
