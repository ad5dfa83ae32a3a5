//! The trainer's edge to the content store: the model and checkpoints go in under their CIDs, and a
//! model or checkpoint named by CID (warm start, resume, evaluate) comes out verified against it.
//!
//! The store is an IPFS API (`http://…` or a multiaddr; Kubo in a cluster) or a local store
//! directory (the embedded default), as [`drlaas_store::Store::open`] reads the address.

use std::path::{Path, PathBuf};

use drlaas_store::{Cid, ContentStore, Store};

/// A content store with the runtime its calls need (the trainer itself is synchronous).
#[derive(Debug)]
pub struct ModelStore {
    runtime: tokio::runtime::Runtime,
    store: Store,
    address: String,
}

impl ModelStore {
    /// Opens the store at `address` and, for an IPFS API, checks that the node answers, so a run
    /// does not train for an hour to find it cannot store its model.
    pub fn open(address: &str) -> Result<Self, OpenError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| OpenError::Unavailable(format!("cannot start the store client: {e}")))?;
        // Building the HTTP client of an IPFS store wants the runtime entered.
        let store = runtime
            .block_on(async { Store::open(address) })
            .map_err(|e| OpenError::Address(format!("--store {address}: {e}")))?;
        if let Store::Ipfs(ipfs) = &store {
            runtime
                .block_on(ipfs.client().version())
                .map_err(|e| OpenError::Unavailable(format!("--store {address}: {e}")))?;
        }
        Ok(ModelStore {
            runtime,
            store,
            address: address.to_string(),
        })
    }

    /// Where the store is, as given.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Stores the file at `path` and pins it; returns its CID.
    pub fn put(&self, path: &Path) -> Result<String, String> {
        self.runtime
            .block_on(self.store.put_file(path))
            .map(|stored| stored.cid.to_string())
            .map_err(|e| format!("storing {} in {}: {e}", path.display(), self.address))
    }

    /// Fetches `cid` into `dir/<cid>.safetensors`, verified; returns the path.
    pub fn fetch(&self, cid: &Cid, dir: &Path) -> Result<PathBuf, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(format!("{cid}.safetensors"));
        self.fetch_to(cid, &path)?;
        Ok(path)
    }

    /// Fetches `cid` into the file `path`, verified against the CID.
    pub fn fetch_to(&self, cid: &Cid, path: &Path) -> Result<(), String> {
        self.runtime
            .block_on(self.store.get_to_file(cid, path))
            .map(|_| ())
            .map_err(|e| format!("fetching {cid} from {}: {e}", self.address))
    }
}

/// Why a store could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// The address is malformed or names an unusable directory: retrying will not help.
    Address(String),
    /// The store is not answering now: a retry may.
    Unavailable(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Address(m) | OpenError::Unavailable(m) => f.write_str(m),
        }
    }
}

/// A model or checkpoint on the command line: an existing file, or else a CID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRef {
    /// A file on disk.
    Path(PathBuf),
    /// Content to fetch from the store.
    Cid(Cid),
}

impl ModelRef {
    /// Reads `arg`: a path when such a file exists, a CID when it parses as one, otherwise a path
    /// (whose absence the reader reports).
    pub fn parse(arg: &str) -> ModelRef {
        let path = PathBuf::from(arg);
        if path.exists() {
            return ModelRef::Path(path);
        }
        match drlaas_store::cid::parse(arg) {
            Ok(cid) => ModelRef::Cid(cid),
            Err(_) => ModelRef::Path(path),
        }
    }

    /// A local file for this reference, fetching a CID into `dir`; and the name to record for it
    /// (the CID, or the path as given). `flag` names the option in errors.
    pub fn resolve(&self, store: Option<&ModelStore>, dir: &Path, flag: &str) -> Result<(PathBuf, String), String> {
        match self {
            ModelRef::Path(path) => Ok((path.clone(), path.display().to_string())),
            ModelRef::Cid(cid) => {
                let store = store.ok_or_else(|| {
                    format!("{flag} {cid} is a CID and no file of that name exists: pass --store (an IPFS API or a store directory) to fetch it")
                })?;
                Ok((
                    store.fetch(cid, dir).map_err(|e| format!("{flag}: {e}"))?,
                    cid.to_string(),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_is_a_file_when_one_exists_and_a_cid_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let cid_text = "bafkreiee3cmhp4guaqppw27zdilpajepf7kxhzvpaxaz7fv63opyql3yqi";
        assert!(matches!(ModelRef::parse(cid_text), ModelRef::Cid(_)));
        let file = dir.path().join(cid_text);
        std::fs::write(&file, b"x").unwrap();
        assert_eq!(ModelRef::parse(file.to_str().unwrap()), ModelRef::Path(file));
        assert!(matches!(ModelRef::parse("model.safetensors"), ModelRef::Path(_)));
    }

    #[test]
    fn a_cid_without_a_store_says_how_to_fetch_it() {
        let cid = ModelRef::parse("QmdwoTaJBH7iW2cvDs94iNZBVnJwa12rjNAZ9G9XoHgbij");
        let err = cid
            .resolve(None, Path::new("/nonexistent"), "--warm-start")
            .unwrap_err();
        assert!(
            err.starts_with("--warm-start QmdwoTaJ") && err.contains("pass --store"),
            "{err}"
        );
    }

    #[test]
    fn models_round_trip_through_a_local_store_under_their_cid() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::open(dir.path().join("store").to_str().unwrap()).unwrap();
        let model = dir.path().join("model.safetensors");
        std::fs::write(&model, b"weights").unwrap();
        let cid = store.put(&model).unwrap();
        let (path, name) = ModelRef::parse(&cid)
            .resolve(Some(&store), &dir.path().join("in"), "--model")
            .unwrap();
        assert_eq!(name, cid);
        assert_eq!(std::fs::read(path).unwrap(), b"weights");
    }
}
