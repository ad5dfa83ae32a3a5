//! Adam over a [`ParamStore`]'s flat buffer, with global gradient-norm clipping.
//!
//! Our own rather than `tch::nn::Optimizer` for two reasons: its moment estimates are plain tensors we
//! can put in a checkpoint (so a resumed run continues bit-for-bit), and one flat buffer makes a step a
//! dozen whole-buffer kernels instead of a dozen per layer.

use tch::{Kind, Tensor};

use crate::params::ParamStore;

/// Adam state: first and second moment estimates and the step count.
#[derive(Debug)]
pub struct Adam {
    m: Tensor,
    v: Tensor,
    step: u64,
    beta1: f64,
    beta2: f64,
    eps: f64,
}

impl Adam {
    /// Zeroed moments for `store` with β = (0.9, 0.999) and ε = 1e-5 (the PPO implementations' ε).
    pub fn new(store: &ParamStore) -> Self {
        let zeros = store.flat().zeros_like();
        Self {
            m: zeros.copy(),
            v: zeros,
            step: 0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-5,
        }
    }

    /// Computes gradients of `loss`, clips them to `max_grad_norm` and takes one step of size `lr`.
    pub fn minimize(&mut self, store: &ParamStore, loss: &Tensor, lr: f64, max_grad_norm: f64) {
        let mut grad = store.gradient(loss);
        let flat = store.flat().shallow_clone();
        // Written to launch few kernels (each costs microseconds of overhead on small networks).
        tch::no_grad(|| {
            // Clip: scale = max / max(‖g‖, max), i.e. min(1, max / ‖g‖).
            let scale = grad.norm().clamp_min(max_grad_norm).reciprocal() * max_grad_norm;
            grad *= scale;
            self.step += 1;
            let t = self.step as i32;
            let _ = self.m.lerp_(&grad, 1.0 - self.beta1);
            let _ = self.v.g_mul_scalar_(self.beta2);
            let _ = self.v.addcmul_(&grad, &(&grad * (1.0 - self.beta2)));
            let bias1 = 1.0 - self.beta1.powi(t);
            let bias2 = 1.0 - self.beta2.powi(t);
            let mut denom = self.v.sqrt();
            let _ = denom.g_div_scalar_(bias2.sqrt());
            let _ = denom.g_add_scalar_(self.eps);
            let mut params = flat;
            let _ = params.addcdiv_(&(&self.m * (-lr / bias1)), &denom);
        });
    }

    /// Moments and step count, for a checkpoint: `(m, v, step)`.
    pub fn state(&self) -> (Tensor, Tensor, u64) {
        (self.m.detach().copy(), self.v.detach().copy(), self.step)
    }

    /// Restores [`Adam::state`]; the tensors must match the store's length.
    pub fn restore(&mut self, m: &Tensor, v: &Tensor, step: u64) -> Result<(), String> {
        if m.size() != self.m.size() || v.size() != self.v.size() {
            return Err(format!(
                "optimizer state has {:?} elements, the network {:?}",
                m.size(),
                self.m.size()
            ));
        }
        let device = self.m.device();
        self.m = m.to_kind(Kind::Float).to_device(device);
        self.v = v.to_kind(Kind::Float).to_device(device);
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Init;
    use crate::params::ParamBuilder;
    use tch::Device;

    #[test]
    fn minimizes_a_quadratic() {
        let mut b = ParamBuilder::default();
        b.add("x".into(), vec![2], Init::Const(3.0));
        let store = b.build(Device::Cpu, 0);
        let mut adam = Adam::new(&store);
        for _ in 0..500 {
            let x = &store.leaves()[0];
            let loss = (x - Tensor::from_slice(&[1.0f32, -2.0])).square().sum(Kind::Float);
            adam.minimize(&store, &loss, 0.05, 100.0);
        }
        let x = Vec::<f32>::try_from(store.flat()).unwrap();
        assert!((x[0] - 1.0).abs() < 1e-2 && (x[1] + 2.0).abs() < 1e-2, "{x:?}");
    }

    #[test]
    fn clips_the_global_norm() {
        let mut b = ParamBuilder::default();
        b.add("x".into(), vec![1], Init::Const(0.0));
        let store = b.build(Device::Cpu, 0);
        let mut adam = Adam::new(&store);
        let loss = &store.leaves()[0] * 1000.0;
        adam.minimize(&store, &loss.sum(Kind::Float), 0.1, 0.5);
        // Clipped to norm 0.5, Adam's first step moves by lr whatever the scale: check the clip on m.
        let m = f64::try_from(&adam.m).unwrap();
        assert!((m - 0.05).abs() < 1e-6, "{m}");
    }
}
