//! Environment similarity (docs/architecture.md#recruitment): how much of a model trained on one environment should carry
//! over to another. It ranks shared models for warm starts and gives recruitment its S term.
//!
//! Two descriptors are comparable only when a policy for one can act in the other: same kind, same
//! number of actions, same observation channels. Grid sides may differ: the convolution layers of a
//! model still transfer (the warm start copies every tensor whose name and shape match), and the
//! grid-area feature scores the difference. Comparable descriptors score
//! `Σ ω_i s_i` over their features: `s_i = 1[a_i = b_i]` for categorical features and `min/max` for
//! numeric ones (1 when both are 0), with equal weights `ω_i` over the kind's features.
//!
//! Gymnasium environments are comparable only with the same id and the same observation shape and
//! actions (discrete with discrete of the same count, continuous with continuous of the same
//! components); they then score 1 with the same keyword arguments and 0.5 with others.

use drlaas_envs::descriptor::{EnvDescriptor, Feature};

/// Similarity of `a` and `b` in `[0, 1]`: 1 for equal descriptors, 0 when a policy cannot transfer.
/// Symmetric.
pub fn similarity(a: &EnvDescriptor, b: &EnvDescriptor) -> f64 {
    if !comparable(a, b) {
        return 0.0;
    }
    let (fa, fb) = (a.features(), b.features());
    // Same kind: the same features in the same order. The kind itself is the first one.
    let scores: Vec<f64> = fa
        .iter()
        .zip(&fb)
        .skip(1)
        .map(|((_, x), (_, y))| feature_score(x, y))
        .collect();
    if scores.is_empty() {
        return 1.0;
    }
    scores.iter().sum::<f64>() / scores.len() as f64
}

/// Whether a policy trained on `a` can act in `b` at all.
pub fn comparable(a: &EnvDescriptor, b: &EnvDescriptor) -> bool {
    if a.kind_name() != b.kind_name() || a.action_space() != b.action_space() {
        return false;
    }
    match (a, b) {
        // A Gymnasium environment is its id: another id is another problem however alike its
        // spaces look, and nothing says how a requester's observations line up, so the whole
        // shape must match. Other keyword arguments of the same id are a related environment.
        (EnvDescriptor::Gymnasium(x), EnvDescriptor::Gymnasium(y)) => {
            x.id == y.id && x.observation_shape == y.observation_shape
        }
        // Likewise a PettingZoo environment is its factory (any number of agents).
        (EnvDescriptor::PettingZoo(x), EnvDescriptor::PettingZoo(y)) => {
            x.factory == y.factory && x.observation_shape == y.observation_shape
        }
        _ => a.obs_shape().first() == b.obs_shape().first(),
    }
}

fn feature_score(a: &Feature, b: &Feature) -> f64 {
    match (a, b) {
        (Feature::Categorical(x), Feature::Categorical(y)) => f64::from(u8::from(x == y)),
        (Feature::Numeric(x), Feature::Numeric(y)) => {
            let (lo, hi) = (x.abs().min(y.abs()), x.abs().max(y.abs()));
            if hi == 0.0 { 1.0 } else { lo / hi }
        }
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env(json: &str) -> EnvDescriptor {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn gymnasium_environments_are_alike_only_with_the_same_id_and_spaces() {
        let gym = |id: &str, kwargs: &str, shape: &str, actions: u32| {
            env(&format!(
                r#"{{"kind": "gymnasium", "id": "{id}", "kwargs": {kwargs}, "observationShape": {shape}, "actions": {actions}}}"#
            ))
        };
        let cartpole = gym("CartPole-v1", "{}", "[4]", 2);
        assert_eq!(similarity(&cartpole, &cartpole), 1.0);
        let longer = gym("CartPole-v1", r#"{"max_episode_steps": 1000}"#, "[4]", 2);
        assert_eq!(similarity(&cartpole, &longer), 0.5);
        // Another id with the same spaces, the same id with other spaces, the built-in cartpole.
        assert_eq!(similarity(&cartpole, &gym("Other-v0", "{}", "[4]", 2)), 0.0);
        assert_eq!(similarity(&cartpole, &gym("CartPole-v1", "{}", "[4, 1]", 2)), 0.0);
        assert_eq!(similarity(&cartpole, &env(r#"{"kind": "cartpole"}"#)), 0.0);
        // Two discrete actions are not a continuous action of two components.
        let continuous =
            env(r#"{"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [4], "continuousActions": 2}"#);
        assert_eq!(similarity(&cartpole, &continuous), 0.0);
        assert_eq!(similarity(&continuous, &continuous), 1.0);
    }

    #[test]
    fn pettingzoo_environments_are_alike_only_with_the_same_factory_and_spaces() {
        let team = |factory: &str, agents: u32, shape: &str| {
            env(&format!(
                r#"{{"kind": "pettingzoo", "factory": "{factory}", "agents": {agents}, "observationShape": {shape}, "actions": 3}}"#
            ))
        };
        let three = team("envs:team", 3, "[3]");
        assert_eq!(similarity(&three, &three), 1.0);
        // Another number of agents: the shared policy still acts for each (kwargs 1, agents 2/3).
        let two = team("envs:team", 2, "[3]");
        assert!((similarity(&three, &two) - (1.0 + 1.0 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        assert_eq!(similarity(&three, &team("other:team", 3, "[3]")), 0.0);
        assert_eq!(similarity(&three, &team("envs:team", 3, "[4]")), 0.0);
    }

    #[test]
    fn equal_descriptors_score_one_and_other_kinds_zero() {
        let maze = env(r#"{"kind": "maze-cleaning", "grid": 8, "agents": 2}"#);
        assert_eq!(similarity(&maze, &maze), 1.0);
        let fleet = env(r#"{"kind": "fleet-coordination", "grid": 8, "agents": 2}"#);
        assert_eq!(similarity(&maze, &fleet), 0.0);
        assert_eq!(similarity(&env(r#"{"kind": "cartpole"}"#), &maze), 0.0);
    }

    #[test]
    fn closer_parameters_score_higher() {
        let base = env(r#"{"kind": "maze-cleaning", "grid": 8, "agents": 2, "horizon": 200}"#);
        let near = env(r#"{"kind": "maze-cleaning", "grid": 8, "agents": 3, "horizon": 200}"#);
        let far = env(r#"{"kind": "maze-cleaning", "grid": 16, "agents": 6, "horizon": 50}"#);
        let (s_near, s_far) = (similarity(&base, &near), similarity(&base, &far));
        assert!(1.0 > s_near && s_near > s_far && s_far > 0.0, "{s_near} {s_far}");
        // agents 2 vs 3 scores 2/3, the other two features 1: (1 + 2/3 + 1) / 3.
        assert!((s_near - 8.0 / 9.0).abs() < 1e-12);
    }

    fn descriptor() -> impl Strategy<Value = EnvDescriptor> {
        prop_oneof![
            (1u32..500).prop_map(|h| env(&format!(r#"{{"kind": "cartpole", "horizon": {h}}}"#))),
            (4u32..20, 1u32..4, 1u32..300).prop_map(|(g, a, h)| env(&format!(
                r#"{{"kind": "maze-cleaning", "grid": {g}, "agents": {a}, "horizon": {h}}}"#
            ))),
            (6u32..20, 1u32..4, 1u32..4, 0.0f64..0.3).prop_map(|(g, a, t, d)| env(&format!(
                r#"{{"kind": "target-localization", "grid": {g}, "agents": {a}, "targets": {t}, "wallDensity": {d}}}"#
            ))),
            (4u32..20, 1u32..5, 0.0f64..1.0).prop_map(|(g, a, r)| env(&format!(
                r#"{{"kind": "fleet-coordination", "grid": {g}, "agents": {a}, "requestRate": {r}}}"#
            ))),
            (0usize..2, 1u32..4, 2u32..4, any::<bool>()).prop_map(|(f, a, n, continuous)| {
                let actions = if continuous { "continuousActions" } else { "actions" };
                env(&format!(
                    r#"{{"kind": "pettingzoo", "factory": "envs:team_{f}", "agents": {a}, "observationShape": [3], "{actions}": {n}}}"#
                ))
            }),
            (0usize..2, 2u32..4).prop_map(|(i, n)| env(&format!(
                r#"{{"kind": "gymnasium", "id": "Env-v{i}", "observationShape": [4], "actions": {n}}}"#
            ))),
        ]
    }

    proptest! {
        #[test]
        fn similarity_is_a_symmetric_score_in_the_unit_interval(a in descriptor(), b in descriptor()) {
            let s = similarity(&a, &b);
            prop_assert!((0.0..=1.0).contains(&s));
            prop_assert_eq!(s, similarity(&b, &a));
            prop_assert_eq!(similarity(&a, &a), 1.0);
            if a.kind_name() != b.kind_name() {
                prop_assert_eq!(s, 0.0);
            }
        }
    }
}
