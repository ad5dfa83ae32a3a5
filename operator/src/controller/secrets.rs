//! Signing keys held in Secrets: a requester's wallet (`DRLTask.spec.payment.walletSecretRef`) and a
//! worker's result key (`Worker.spec.keySecretRef`). Keys are read when a transaction is about to be
//! sent and never kept, logged or written to a status.

use std::sync::Arc;

use drlaas_chain::alloy::primitives::Address;
use drlaas_chain::alloy::signers::local::PrivateKeySigner;
use drlaas_chain::{Market, devnet};
use drlaas_crds::task::{DRLTask, Payment, SecretKeyRef};
use drlaas_crds::worker::Worker;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use super::{Context, Error, namespace_of};

/// The key `key.key` of Secret `key.name` in `namespace`, as a signer.
pub async fn signer(client: &kube::Client, namespace: &str, key: &SecretKeyRef) -> Result<PrivateKeySigner, Error> {
    let fail = |message: String| Error::Secret {
        namespace: namespace.into(),
        name: key.name.clone(),
        message,
    };
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(&key.name)
        .await?
        .ok_or_else(|| fail("not found".into()))?;
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&key.key))
        .map(|b| b.0.clone())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(&key.key))
                .map(|s| s.clone().into_bytes())
        })
        .ok_or_else(|| fail(format!("has no key {:?}", key.key)))?;
    let text = String::from_utf8(bytes).map_err(|_| fail(format!("{:?} is not text", key.key)))?;
    text.trim()
        .parse::<PrivateKeySigner>()
        .map_err(|_| fail(format!("{:?} is not a hex secp256k1 private key", key.key)))
}

/// A client of the market that signs with the wallet of `task` (its `payment.walletSecretRef`, in
/// the task's namespace), and the wallet's address.
pub async fn requester_wallet(
    ctx: &Context,
    task: &DRLTask,
    payment: &Payment,
) -> Result<(Arc<Market>, Address), Error> {
    let key = signer(&ctx.client, &namespace_of(task), &payment.wallet_secret_ref).await?;
    Ok(market_as(&ctx.market, key))
}

/// A client of the market that signs with `worker`'s key (its `keySecretRef`, in the operator's
/// namespace), which must be the key of `assigned`, the account the chain assigned.
pub async fn worker_wallet(ctx: &Context, worker: &Worker, assigned: Address) -> Result<(Arc<Market>, Address), Error> {
    let key = signer(&ctx.client, &ctx.settings.namespace, &worker.spec.key_secret_ref).await?;
    if key.address() != assigned {
        return Err(Error::Secret {
            namespace: ctx.settings.namespace.clone(),
            name: worker.spec.key_secret_ref.name.clone(),
            message: format!("holds the key of {}, but the worker is {assigned}", key.address()),
        });
    }
    Ok(market_as(&ctx.market, key))
}

/// A client of `market`'s deployment that signs with `signer`, and the signer's address.
pub fn market_as(market: &Market, signer: PrivateKeySigner) -> (Arc<Market>, Address) {
    let address = signer.address();
    let client = Market::connect(
        market.provider().clone(),
        devnet::wallet([signer]),
        *market.deployment(),
    );
    (Arc::new(client), address)
}
