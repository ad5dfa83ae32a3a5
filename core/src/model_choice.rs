//! Which model a task starts from: none, the one its requester named, or (`warmStart: auto`, and
//! every model-sharing task) the most similar environment (docs/architecture.md#recruitment) among
//! the active listings the requester can afford, if it is similar enough to be worth more than a
//! fresh start.

use drlaas_crds::task::{DRLTaskSpec, TaskKind};
use drlaas_envs::descriptor::EnvDescriptor;

use super::similarity::similarity;

/// Where a task's initial weights come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarmStartWanted<'a> {
    /// Random initialization.
    None,
    /// The model the requester named, by CID.
    Model(&'a str),
    /// The most similar model on the market ([`choose_model`]).
    FromMarket,
}

/// Where `spec`'s initial weights come from. A model-sharing task delivers a model from the market
/// by definition, so it looks there even when it asks for no warm start.
pub fn warm_start_wanted(spec: &DRLTaskSpec) -> WarmStartWanted<'_> {
    match spec.warm_start.as_str() {
        "auto" => WarmStartWanted::FromMarket,
        "none" if spec.kind == TaskKind::ModelSharing => WarmStartWanted::FromMarket,
        "none" => WarmStartWanted::None,
        cid => WarmStartWanted::Model(cid),
    }
}

/// Below this similarity a bought model is not expected to beat random initialization.
pub const MIN_SIMILARITY: f64 = 0.5;

/// A model on the market, with the environment its manifest names.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub listing_id: u64,
    pub model_cid: String,
    pub environment: EnvDescriptor,
    pub price_wei: u128,
    /// Mean star rating, when rated.
    pub rating: Option<f64>,
}

/// The model chosen, and how similar it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub candidate: Candidate,
    pub similarity: f64,
}

/// The best candidate for a task on `environment` paying at most `max_price_wei` for a model:
/// highest similarity, then best rating, then lowest price, then the oldest listing. `None` when
/// nothing reaches [`MIN_SIMILARITY`] within the price. Deterministic for the same inputs.
pub fn choose_model(environment: &EnvDescriptor, candidates: &[Candidate], max_price_wei: u128) -> Option<Choice> {
    candidates
        .iter()
        .filter(|c| c.price_wei <= max_price_wei)
        .map(|c| Choice {
            similarity: similarity(environment, &c.environment),
            candidate: c.clone(),
        })
        .filter(|c| c.similarity >= MIN_SIMILARITY)
        .max_by(|a, b| {
            a.similarity
                .total_cmp(&b.similarity)
                .then(
                    a.candidate
                        .rating
                        .unwrap_or(0.0)
                        .total_cmp(&b.candidate.rating.unwrap_or(0.0)),
                )
                .then(b.candidate.price_wei.cmp(&a.candidate.price_wei))
                .then(b.candidate.listing_id.cmp(&a.candidate.listing_id))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(json: &str) -> EnvDescriptor {
        serde_json::from_str(json).unwrap()
    }

    fn candidate(id: u64, environment: &str, price: u128, rating: Option<f64>) -> Candidate {
        Candidate {
            listing_id: id,
            model_cid: format!("bafy{id}"),
            environment: env(environment),
            price_wei: price,
            rating,
        }
    }

    const MAZE8: &str = r#"{"kind": "maze-cleaning", "grid": 8, "agents": 2}"#;
    const MAZE10: &str = r#"{"kind": "maze-cleaning", "grid": 10, "agents": 2}"#;

    #[test]
    fn the_most_similar_affordable_model_wins() {
        let task = env(MAZE8);
        let candidates = [
            candidate(1, MAZE10, 10, None),
            candidate(2, MAZE8, 10, None),
            candidate(3, MAZE8, 1_000, Some(5.0)),
            candidate(4, r#"{"kind": "cartpole"}"#, 0, None),
        ];
        let choice = choose_model(&task, &candidates, 100).unwrap();
        assert_eq!((choice.candidate.listing_id, choice.similarity), (2, 1.0));
        // With money for the rated copy, the rating breaks the tie.
        assert_eq!(choose_model(&task, &candidates, 1_000).unwrap().candidate.listing_id, 3);
        // Only a different kind within budget: nothing.
        assert_eq!(choose_model(&task, &candidates, 0), None);
    }

    #[test]
    fn model_sharing_tasks_always_look_on_the_market() {
        let mut spec: DRLTaskSpec =
            serde_json::from_str(r#"{"training": {"environment": {"kind": "cartpole"}}}"#).unwrap();
        assert_eq!(warm_start_wanted(&spec), WarmStartWanted::None);
        spec.warm_start = "auto".into();
        assert_eq!(warm_start_wanted(&spec), WarmStartWanted::FromMarket);
        spec.warm_start = "bafy1".into();
        assert_eq!(warm_start_wanted(&spec), WarmStartWanted::Model("bafy1"));
        spec.kind = TaskKind::ModelSharing;
        assert_eq!(warm_start_wanted(&spec), WarmStartWanted::Model("bafy1"));
        spec.warm_start = "none".into();
        assert_eq!(warm_start_wanted(&spec), WarmStartWanted::FromMarket);
    }

    #[test]
    fn ties_go_to_the_cheaper_then_the_older_listing() {
        let task = env(MAZE8);
        let candidates = [
            candidate(7, MAZE8, 5, None),
            candidate(3, MAZE8, 5, None),
            candidate(9, MAZE8, 1, None),
        ];
        assert_eq!(choose_model(&task, &candidates, 10).unwrap().candidate.listing_id, 9);
        assert_eq!(
            choose_model(&task, &candidates[..2], 10).unwrap().candidate.listing_id,
            3
        );
    }
}
