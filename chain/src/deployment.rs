//! A [`Deployment`] as a file: what `drlaas chain deploy` writes and what the operator and the
//! people's commands read (`--deployment`). One JSON object with `chainId`, `umc`, `tmc`, `mmc` and
//! `block`; a file that is not one is refused with its path and the field that is wrong.

use std::path::{Path, PathBuf};

use crate::market::Deployment;

/// The fields of a deployment file, as errors name them.
pub const DEPLOYMENT_FIELDS: &str = "chainId, umc, tmc, mmc, block";

/// Why a deployment file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentFileError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What reading it said.
        source: std::io::Error,
    },
    /// The file is not a deployment: not JSON, a field missing, or a field of the wrong shape.
    #[error("{}: not a deployment ({DEPLOYMENT_FIELDS}): {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field when one is.
        reason: String,
    },
}

/// The deployment in the file at `path`.
pub fn read_deployment(path: &Path) -> Result<Deployment, DeploymentFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| DeploymentFileError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    parse_deployment(&text).map_err(|reason| DeploymentFileError::Invalid {
        path: path.to_path_buf(),
        reason,
    })
}

/// The deployment in `text` (a deployment file's JSON); the error names the wrong field.
pub fn parse_deployment(text: &str) -> Result<Deployment, String> {
    let mut json = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut json).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        // A missing field is named by serde itself; a wrong one by its path.
        if field == "." || field.is_empty() {
            inner.to_string()
        } else {
            format!("field `{field}`: {inner}")
        }
    })
}

impl Deployment {
    /// The deployment as its file holds it: pretty JSON and a final newline.
    pub fn to_file_text(&self) -> String {
        format!(
            "{}\n",
            serde_json::to_string_pretty(self).expect("a deployment serializes")
        )
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::Address;

    use super::*;

    fn deployment() -> Deployment {
        Deployment {
            chain_id: 31337,
            umc: Address::repeat_byte(1),
            tmc: Address::repeat_byte(2),
            mmc: Address::repeat_byte(3),
            block: 7,
        }
    }

    #[test]
    fn a_written_deployment_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deployment.json");
        std::fs::write(&path, deployment().to_file_text()).unwrap();
        assert_eq!(read_deployment(&path).unwrap(), deployment());
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = read_deployment(Path::new("/nowhere/deployment.json")).unwrap_err();
        assert!(matches!(err, DeploymentFileError::Unreadable { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.starts_with("/nowhere/deployment.json: ") && message.contains("No such file"),
            "{message}"
        );
    }

    #[test]
    fn bad_json_names_the_file_and_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deployment.json");
        let shown = path.display().to_string();
        let mut json = serde_json::to_value(deployment()).unwrap();

        // A field of the wrong shape is named by its path.
        json["tmc"] = "0x1234".into();
        std::fs::write(&path, json.to_string()).unwrap();
        let message = read_deployment(&path).unwrap_err().to_string();
        assert!(
            message.starts_with(&format!(
                "{shown}: not a deployment (chainId, umc, tmc, mmc, block): field `tmc`: "
            )),
            "{message}"
        );

        // A missing field is named too.
        json.as_object_mut().unwrap().remove("block");
        json["tmc"] = serde_json::to_value(deployment().tmc).unwrap();
        std::fs::write(&path, json.to_string()).unwrap();
        let message = read_deployment(&path).unwrap_err().to_string();
        assert!(message.contains("missing field `block`"), "{message}");

        // Not JSON at all.
        std::fs::write(&path, "chain: 1").unwrap();
        let message = read_deployment(&path).unwrap_err().to_string();
        assert!(message.starts_with(&format!("{shown}: not a deployment")), "{message}");
    }
}
