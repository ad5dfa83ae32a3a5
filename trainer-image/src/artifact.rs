//! The model artifact: one safetensors file whose metadata carries the manifest (docs/architecture.md#the-trainer-contract), so one
//! content identifier names both the weights and what they mean.
//!
//! Tensors are little-endian `F32`, named like the parameters (`policy.0.weight`, ...). Metadata keys:
//! [`MANIFEST_KEY`] (JSON [`ModelManifest`], the type every reader of a model file shares) always,
//! [`CHECKPOINT_KEY`] (JSON training state) only in checkpoints, whose extra tensors are named
//! `train.*`. Any safetensors reader can open the file.

use std::collections::HashMap;
use std::path::Path;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use sha2::{Digest, Sha256};
use tch::{Device, Kind, Tensor};

pub use drlaas_crds::trainer_output::{MANIFEST_KEY, ModelManifest};

/// Metadata key of a checkpoint's training state (read by this trainer alone).
pub const CHECKPOINT_KEY: &str = "drlaas.checkpoint";

/// A model or checkpoint read back from disk.
#[derive(Debug)]
pub struct Artifact {
    /// Its manifest.
    pub manifest: ModelManifest,
    /// Every tensor by name, on the CPU.
    pub tensors: HashMap<String, Tensor>,
    /// Training state, for checkpoints.
    pub checkpoint: Option<serde_json::Value>,
}

/// A model file that cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a safetensors file, or a tensor we cannot use.
    #[error("{path}: not a drlaas model: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// Writes `tensors` with `manifest` (and checkpoint state) to `path` atomically; returns the file's
/// SHA-256 in hex.
pub fn write(
    path: &Path,
    manifest: &ModelManifest,
    tensors: &[(String, Tensor)],
    checkpoint: Option<&serde_json::Value>,
) -> Result<String, ArtifactError> {
    let invalid = |message: String| ArtifactError::Invalid {
        path: path.display().to_string(),
        message,
    };
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, t)| {
            let t = t.detach().to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
            let shape = t.size().iter().map(|&d| d as usize).collect();
            let values = crate::learner::to_vec(&t);
            let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (name.clone(), shape, bytes)
        })
        .collect();
    let views = data
        .iter()
        .map(|(name, shape, bytes)| Ok((name.as_str(), TensorView::new(Dtype::F32, shape.clone(), bytes)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| invalid(e.to_string()))?;
    let mut metadata = HashMap::new();
    metadata.insert(MANIFEST_KEY.to_owned(), manifest.to_json());
    if let Some(state) = checkpoint {
        metadata.insert(CHECKPOINT_KEY.to_owned(), state.to_string());
    }
    let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| invalid(e.to_string()))?;
    let io = |source| ArtifactError::Io {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("safetensors.tmp");
    std::fs::write(&tmp, &bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(hex(&Sha256::digest(&bytes)))
}

/// Reads a model or checkpoint written by [`write()`].
pub fn read(path: &Path) -> Result<Artifact, ArtifactError> {
    let bytes = std::fs::read(path).map_err(|source| ArtifactError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(&bytes).map_err(|message| ArtifactError::Invalid {
        path: path.display().to_string(),
        message,
    })
}

/// Parses the bytes of a model or checkpoint.
pub fn parse(bytes: &[u8]) -> Result<Artifact, String> {
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(|e| format!("not safetensors ({e})"))?;
    let meta = metadata.metadata().clone().unwrap_or_default();
    let manifest_json = meta
        .get(MANIFEST_KEY)
        .ok_or_else(|| format!("no `{MANIFEST_KEY}` metadata"))?;
    let manifest = ModelManifest::from_json(manifest_json)?;
    let checkpoint = meta
        .get(CHECKPOINT_KEY)
        .map(|s| serde_json::from_str(s).map_err(|e| format!("bad checkpoint state: {e}")))
        .transpose()?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| format!("not safetensors ({e})"))?;
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(format!("tensor `{name}` is {:?}, expected F32", view.dtype()));
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        tensors.insert(name, Tensor::from_slice(&values).view(shape.as_slice()));
    }
    Ok(Artifact {
        manifest,
        tensors,
        checkpoint,
    })
}

/// SHA-256 of a file, in hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    Ok(hex(&Sha256::digest(std::fs::read(path)?)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
