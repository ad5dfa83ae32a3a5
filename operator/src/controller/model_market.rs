//! The model market's edge for `warmStart: auto` and model-sharing tasks: reads the active MMC
//! listings of the task's environment kind, learns each model's environment from its manifest
//! (only the model file's header is fetched), lets [`choose_model`] pick, and buys the choice.
//!
//! The purchase is checked on chain before it is sent (MMC refuses a second one), so a restart
//! between buying and recording never pays twice.

use drlaas_chain::alloy::primitives::Address;
use drlaas_chain::{Market, TxOutcome};
use drlaas_crds::task::{DRLTask, WarmStartChoice};
use drlaas_crds::trainer_output::{MANIFEST_KEY, ModelManifest};
use drlaas_envs::descriptor::EnvDescriptor;
use drlaas_store::{Cid, ContentStore, Store};
use futures::StreamExt;

use super::secrets::requester_wallet;
use super::{Context, Error};
use drlaas_core::model_choice::{Candidate, choose_model};

/// Largest safetensors header read to find a manifest.
const MAX_HEADER_BYTES: u64 = 1 << 20;

/// What the market offered: the choice for the status, and the purchase, if one was sent.
#[derive(Debug, Clone, PartialEq)]
pub struct WarmStart {
    pub choice: WarmStartChoice,
    pub purchase: Option<TxOutcome>,
}

/// Finds and buys the model `task` starts from. The requester pays from its wallet, up to the
/// task's budget; a task posted on chain by someone else (no wallet here) can only take free
/// models, bought by the operator's account.
pub async fn buy_warm_start(ctx: &Context, task: &DRLTask, budget_wei: u128) -> Result<WarmStart, Error> {
    let environment = &task.spec.training.environment;
    let mut candidates = Vec::new();
    for id in 1..=ctx.market.listing_count().await? {
        let listing = ctx.market.listing(id).await?;
        let same_kind = listing.env_kind.map(|k| k.as_str()) == Some(environment.kind_name());
        if !listing.active || !same_kind {
            continue;
        }
        match manifest_environment(&ctx.store, &listing.model_cid).await {
            Ok(model_environment) => candidates.push(Candidate {
                listing_id: id,
                model_cid: listing.model_cid.clone(),
                environment: model_environment,
                price_wei: u128::try_from(listing.price).unwrap_or(u128::MAX),
                rating: listing.mean_rating(),
            }),
            Err(reason) => tracing::info!(listing = id, %reason, "listed model skipped"),
        }
    }
    let (buyer_market, buyer, max_price): (std::sync::Arc<Market>, Address, u128) = match &task.spec.payment {
        Some(payment) => {
            let (market, address) = requester_wallet(ctx, task, payment).await?;
            (market, address, budget_wei)
        }
        None => (ctx.market.clone(), ctx.settings.oracle, 0),
    };
    let Some(choice) = choose_model(environment, &candidates, max_price) else {
        return Ok(WarmStart {
            choice: WarmStartChoice {
                reason: format!(
                    "none of the {} listed {} models is similar enough (≥ 0.5) at a price the task can pay",
                    candidates.len(),
                    environment.kind_name()
                ),
                ..WarmStartChoice::default()
            },
            purchase: None,
        });
    };
    let id = choice.candidate.listing_id;
    let owner = ctx.market.listing(id).await?.owner;
    let purchase = if owner == buyer || ctx.market.has_purchased(id, buyer).await? {
        None
    } else {
        Some(buyer_market.purchase(buyer, id).await?)
    };
    Ok(WarmStart {
        choice: WarmStartChoice {
            model_cid: Some(choice.candidate.model_cid.clone()),
            listing_id: Some(id),
            similarity: Some(choice.similarity),
            reason: format!(
                "listing {id} ({} wei): the most similar listed model, similarity {:.2}",
                choice.candidate.price_wei, choice.similarity
            ),
        },
        purchase,
    })
}

/// The environment a stored model was trained on, from the manifest in its safetensors header.
pub async fn manifest_environment(store: &Store, model_cid: &str) -> Result<EnvDescriptor, String> {
    let cid: Cid = model_cid
        .parse()
        .map_err(|e| format!("{model_cid} is not a CID: {e}"))?;
    let mut stream = store.get(&cid);
    let mut head = Vec::new();
    let mut needed = 8u64;
    while (head.len() as u64) < needed {
        let Some(chunk) = stream.next().await else {
            return Err(format!("{model_cid} ends inside its header"));
        };
        head.extend_from_slice(&chunk.map_err(|e| format!("{model_cid}: {e}"))?);
        if head.len() >= 8 && needed == 8 {
            let len = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
            if len > MAX_HEADER_BYTES {
                return Err(format!("{model_cid} has a {len}-byte header: not a drlaas model"));
            }
            needed = 8 + len;
        }
    }
    let header: serde_json::Value = serde_json::from_slice(&head[8..needed as usize])
        .map_err(|e| format!("{model_cid}: the safetensors header is not JSON: {e}"))?;
    let manifest = header["__metadata__"][MANIFEST_KEY]
        .as_str()
        .ok_or_else(|| format!("{model_cid} has no drlaas manifest"))?;
    ModelManifest::environment_of(manifest).map_err(|e| format!("{model_cid}: {e}"))
}
