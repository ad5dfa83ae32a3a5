//! All trainable parameters of a learner in one flat buffer.
//!
//! Small RL networks spend more time in per-tensor bookkeeping than in arithmetic. Every parameter is a
//! leaf tensor that shares its storage with one contiguous 1-D buffer, so the optimizer, gradient
//! clipping, target-network copies and checkpoints are a handful of whole-buffer operations whatever
//! the number of layers, while autograd still sees ordinary leaves (no per-step view bookkeeping in
//! the backward pass). Names (`policy.0.weight`, `value.2.bias`, ...) are kept for the artifact and for
//! warm starts.

use drlaas_envs::Rng;
use tch::{Device, Kind, Tensor};

/// One named parameter: where it lives in the flat buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamEntry {
    /// Name in the model artifact, e.g. `policy.0.weight`.
    pub name: String,
    /// Shape of the parameter.
    pub shape: Vec<i64>,
    /// Offset of its first element in the flat buffer.
    pub offset: i64,
}

impl ParamEntry {
    /// Number of elements.
    pub fn numel(&self) -> i64 {
        self.shape.iter().product()
    }
}

/// How a parameter starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// A (semi-)orthogonal matrix scaled by `gain` (Saxe et al. 2014), over the first dimension against
    /// the others.
    Orthogonal {
        /// Scale of the matrix.
        gain: f64,
    },
    /// Every element equal to this.
    Const(f64),
}

/// Collects parameter declarations before the flat buffer is allocated.
#[derive(Debug, Default)]
pub struct ParamBuilder {
    entries: Vec<ParamEntry>,
    inits: Vec<Init>,
    len: i64,
}

impl ParamBuilder {
    /// Declares a parameter; returns its index for [`ParamStore::leaves`].
    pub fn add(&mut self, name: String, shape: Vec<i64>, init: Init) -> usize {
        let entry = ParamEntry {
            name,
            shape,
            offset: self.len,
        };
        self.len += entry.numel();
        self.entries.push(entry);
        self.inits.push(init);
        self.entries.len() - 1
    }

    /// Allocates and initializes the buffer on the CPU from `seed`, then moves it to `device`.
    ///
    /// The random numbers come from our own generator, not torch's global one, so the same seed gives
    /// the same weights on every device and whatever else runs in the process.
    pub fn build(self, device: Device, seed: u64) -> ParamStore {
        let mut rng = Rng::stream(seed, 0x494e_4954);
        let parts: Vec<Tensor> = self
            .entries
            .iter()
            .zip(&self.inits)
            .map(|(e, &init)| initial_values(init, &e.shape, &mut rng))
            .collect();
        let flat = if parts.is_empty() {
            Tensor::zeros([0], (Kind::Float, Device::Cpu))
        } else {
            Tensor::cat(&parts, 0)
        };
        let flat = flat.to_device(device);
        let leaves = self
            .entries
            .iter()
            .map(|e| {
                flat.narrow(0, e.offset, e.numel())
                    .view(e.shape.as_slice())
                    .detach()
                    .set_requires_grad(true)
            })
            .collect();
        ParamStore {
            flat,
            leaves,
            entries: self.entries,
        }
    }
}

/// Flat initial values of one parameter.
fn initial_values(init: Init, shape: &[i64], rng: &mut Rng) -> Tensor {
    let numel: i64 = shape.iter().product();
    match init {
        Init::Const(value) => Tensor::full([numel], value, (Kind::Float, Device::Cpu)),
        Init::Orthogonal { gain } => {
            let rows = shape[0];
            let cols = numel / rows.max(1);
            let normal: Vec<f32> = (0..numel).map(|_| rng.normal_f32()).collect();
            let mut a = Tensor::from_slice(&normal).view([rows, cols]);
            if rows < cols {
                a = a.tr();
            }
            let (q, r) = Tensor::linalg_qr(&a, "reduced");
            // Fixing the signs by R's diagonal makes Q uniformly distributed (Mezzadri 2007).
            let mut q = q * r.diag(0).sign();
            if rows < cols {
                q = q.tr();
            }
            (q * gain).contiguous().view([numel])
        }
    }
}

/// The flat parameter buffer, its leaves and their names.
#[derive(Debug)]
pub struct ParamStore {
    /// The values (no gradient tracking); `leaves` alias slices of it.
    flat: Tensor,
    leaves: Vec<Tensor>,
    entries: Vec<ParamEntry>,
}

impl ParamStore {
    /// The 1-D buffer. Writing to it (under `no_grad`) changes the leaves.
    pub fn flat(&self) -> &Tensor {
        &self.flat
    }

    /// The parameters as shaped leaves that require grad, indexed like [`ParamBuilder::add`]'s return
    /// values.
    pub fn leaves(&self) -> &[Tensor] {
        &self.leaves
    }

    /// Gradient of `loss` with respect to every parameter, as one flat tensor laid out like the buffer.
    pub fn gradient(&self, loss: &Tensor) -> Tensor {
        let grads = Tensor::run_backward(&[loss], &self.leaves, false, false);
        // A parameter the loss does not touch gets an undefined gradient: count it as zero.
        let flat: Vec<Tensor> = grads
            .iter()
            .zip(&self.leaves)
            .map(|(g, leaf)| {
                if g.defined() {
                    g.flatten(0, -1)
                } else {
                    leaf.zeros_like().flatten(0, -1)
                }
            })
            .collect();
        Tensor::cat(&flat, 0)
    }

    /// The named entries, in declaration order.
    pub fn entries(&self) -> &[ParamEntry] {
        &self.entries
    }

    /// Shaped views of another buffer with the same layout (a target network's copy).
    pub fn views_of(&self, flat: &Tensor) -> Vec<Tensor> {
        self.entries
            .iter()
            .map(|e| flat.narrow(0, e.offset, e.numel()).view(e.shape.as_slice()))
            .collect()
    }

    /// A copy of the buffer.
    pub fn snapshot(&self) -> Tensor {
        self.flat.copy()
    }

    /// Named CPU copies of every parameter whose name starts with `prefix`.
    pub fn named(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let cpu = self.flat.to_device(Device::Cpu);
        self.entries
            .iter()
            .filter(|e| e.name.starts_with(prefix))
            .map(|e| {
                (
                    e.name.clone(),
                    cpu.narrow(0, e.offset, e.numel()).view(e.shape.as_slice()),
                )
            })
            .collect()
    }

    /// Copies `tensor` into the entry called `name` when it exists with the same shape; returns whether
    /// it did (warm starts reuse whatever layers match).
    pub fn load_named(&mut self, name: &str, tensor: &Tensor) -> bool {
        let Some(e) = self.entries.iter().find(|e| e.name == name) else {
            return false;
        };
        if tensor.size() != e.shape {
            return false;
        }
        let src = tensor.to_kind(Kind::Float).to_device(self.flat.device()).flatten(0, -1);
        tch::no_grad(|| self.flat.narrow(0, e.offset, e.numel()).copy_(&src));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_alias_the_flat_buffer_and_names_round_trip() {
        let mut b = ParamBuilder::default();
        let w = b.add("policy.0.weight".into(), vec![3, 2], Init::Orthogonal { gain: 1.0 });
        let bias = b.add("policy.0.bias".into(), vec![3], Init::Const(0.5));
        let mut store = b.build(Device::Cpu, 0);
        assert_eq!(store.flat().size(), vec![9]);
        // Orthogonal: WᵀW = I for the 3×2 weight.
        let weight = &store.leaves()[w];
        let gram = Vec::<f32>::try_from(weight.tr().matmul(weight).flatten(0, -1)).unwrap();
        for (got, want) in gram.iter().zip([1.0, 0.0, 0.0, 1.0]) {
            assert!((got - want).abs() < 1e-5, "{gram:?}");
        }
        let leaves = store.leaves();
        assert_eq!(leaves[w].size(), vec![3, 2]);
        assert!(leaves[w].requires_grad());
        assert_eq!(Vec::<f32>::try_from(&leaves[bias]).unwrap(), vec![0.5; 3]);
        let loss = (&leaves[bias] * 2.0).sum(Kind::Float);
        assert_eq!(
            Vec::<f32>::try_from(&store.gradient(&loss)).unwrap(),
            [[0.0; 6].as_slice(), &[2.0; 3]].concat()
        );

        let named = store.named("policy.");
        assert_eq!(named.len(), 2);
        assert!(store.load_named("policy.0.bias", &Tensor::from_slice(&[1.0f32, 2.0, 3.0])));
        assert!(
            !store.load_named("policy.0.bias", &Tensor::from_slice(&[1.0f32])),
            "shape mismatch"
        );
        assert!(!store.load_named("value.0.bias", &Tensor::from_slice(&[1.0f32, 2.0, 3.0])));
        assert_eq!(
            Vec::<f32>::try_from(&store.leaves()[bias]).unwrap(),
            vec![1.0, 2.0, 3.0]
        );
    }
}
