//! Feed-forward networks over a [`ParamStore`](crate::params::ParamStore): an MLP for vector
//! observations, 3×3 convolutions then an MLP for grid observations `[C, G, G]`.
//!
//! A network is a list of layers holding indices into the store, so several networks (PPO's policy and
//! value function) share one flat buffer and one optimizer. Initialization follows the PPO
//! implementation details everyone reproduces: orthogonal weights with gain √2, zero biases, and a small
//! gain on the output layer (0.01 for policy logits, 1 for values).

use drlaas_crds::{Activation, NetworkConfig};
use tch::Tensor;

use crate::params::{Init, ParamBuilder};

#[derive(Debug, Clone, Copy)]
enum Layer {
    Conv { weight: usize, bias: usize, stride: i64 },
    Flatten,
    Linear { weight: usize, bias: usize },
    Activation(Activation),
}

/// A feed-forward network whose parameters live in a shared [`ParamStore`](crate::params::ParamStore).
#[derive(Debug, Clone)]
pub struct Network {
    layers: Vec<Layer>,
    obs_shape: Vec<i64>,
}

impl Network {
    /// Declares the parameters of a network `obs_shape → outputs` under `prefix` (`policy`, `value`).
    /// Layer `i` is named `{prefix}.{i}.weight` / `.bias`, so equal shapes mean reusable weights.
    pub fn declare(
        params: &mut ParamBuilder,
        prefix: &str,
        obs_shape: &[usize],
        config: &NetworkConfig,
        outputs: usize,
        output_gain: f64,
    ) -> Self {
        let mut layers = Vec::new();
        let mut index = 0;
        let name = |suffix: &str, index: usize| format!("{prefix}.{index}.{suffix}");
        let hidden_gain = std::f64::consts::SQRT_2;
        let mut width = obs_shape.iter().product::<usize>() as i64;
        if let [channels, height, width_px] = *obs_shape {
            let (mut c, mut h, mut w) = (channels as i64, height as i64, width_px as i64);
            for (i, &out) in config.conv_channels.iter().enumerate() {
                let out = i64::from(out);
                let stride = if i == 0 { 1 } else { 2 };
                let weight = params.add(
                    name("weight", index),
                    vec![out, c, 3, 3],
                    Init::Orthogonal { gain: hidden_gain },
                );
                let bias = params.add(name("bias", index), vec![out], Init::Const(0.0));
                layers.push(Layer::Conv { weight, bias, stride });
                layers.push(Layer::Activation(Activation::Relu));
                index += 1;
                (c, h, w) = (out, (h - 1) / stride + 1, (w - 1) / stride + 1);
            }
            layers.push(Layer::Flatten);
            width = c * h * w;
        }
        for &out in &config.hidden {
            let out = i64::from(out);
            let weight = params.add(
                name("weight", index),
                vec![out, width],
                Init::Orthogonal { gain: hidden_gain },
            );
            let bias = params.add(name("bias", index), vec![out], Init::Const(0.0));
            layers.push(Layer::Linear { weight, bias });
            layers.push(Layer::Activation(config.activation));
            index += 1;
            width = out;
        }
        let weight = params.add(
            name("weight", index),
            vec![outputs as i64, width],
            Init::Orthogonal { gain: output_gain },
        );
        let bias = params.add(name("bias", index), vec![outputs as i64], Init::Const(0.0));
        layers.push(Layer::Linear { weight, bias });
        Self {
            layers,
            obs_shape: obs_shape.iter().map(|&d| d as i64).collect(),
        }
    }

    /// Runs the network on a batch `[N, obs...]` (or flat `[N, obs_len]`) with `params`, the store's
    /// [`leaves`](crate::params::ParamStore::leaves) (or a target network's views).
    pub fn forward(&self, params: &[Tensor], obs: &Tensor) -> Tensor {
        let batch = obs.size()[0];
        let mut shape = vec![batch];
        shape.extend_from_slice(&self.obs_shape);
        let mut x = obs.view(shape.as_slice());
        for layer in &self.layers {
            x = match *layer {
                Layer::Conv { weight, bias, stride } => x.conv2d(
                    &params[weight],
                    Some(&params[bias]),
                    [stride, stride],
                    [1, 1],
                    [1, 1],
                    1,
                ),
                Layer::Flatten => x.flatten(1, -1),
                Layer::Linear { weight, bias } => x.linear(&params[weight], Some(&params[bias])),
                Layer::Activation(Activation::Tanh) => x.tanh(),
                Layer::Activation(Activation::Relu) => x.relu(),
            };
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn mlp_and_cnn_shapes() {
        let config = NetworkConfig::default();
        let mut params = ParamBuilder::default();
        let mlp = Network::declare(&mut params, "policy", &[4], &config, 2, 0.01);
        let cnn = Network::declare(&mut params, "value", &[3, 9, 9], &config, 1, 1.0);
        let store = params.build(Device::Cpu, 1);
        let names: Vec<&str> = store.entries().iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            &names[..6],
            [
                "policy.0.weight",
                "policy.0.bias",
                "policy.1.weight",
                "policy.1.bias",
                "policy.2.weight",
                "policy.2.bias"
            ]
        );
        // 9x9 → conv s1 → 9x9 → conv s2 → 5x5 with 32 channels.
        let first_hidden = store.entries().iter().find(|e| e.name == "value.2.weight").unwrap();
        assert_eq!(first_hidden.shape, vec![64, 32 * 5 * 5]);

        let views = store.leaves();
        let out = mlp.forward(views, &Tensor::zeros([5, 4], (Kind::Float, Device::Cpu)));
        assert_eq!(out.size(), vec![5, 2]);
        let out = cnn.forward(views, &Tensor::ones([7, 3 * 9 * 9], (Kind::Float, Device::Cpu)));
        assert_eq!(out.size(), vec![7, 1]);
    }
}
