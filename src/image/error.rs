//! The store's error: what reading, writing and verifying blobs and the
//! index can fail with. Its own module, so the blob writer and the store
//! share it without depending on each other.

use std::io;
use std::path::{Path, PathBuf};

use super::digest::{Digest, InvalidDigest};
use crate::state::atomic::WriteError;
use crate::state::lock::LockError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Io(#[from] crate::state::PathIo),
    #[error("content does not match its digest: expected {expected}, got {got}")]
    DigestMismatch { expected: Digest, got: Digest },
    #[error("blob {0} is not in the store")]
    MissingBlob(Digest),
    #[error("no image tagged {0}")]
    NoSuchTag(String),
    #[error("{what} {digest} is not valid JSON of its kind: {source}")]
    Json {
        what: &'static str,
        digest: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("store index {path} is not valid: {why}")]
    Index { path: PathBuf, why: String },
    #[error(transparent)]
    Digest(#[from] InvalidDigest),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Lock(#[from] LockError),
}

impl StoreError {
    pub fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError + use<> {
        let path = path.to_owned();
        move |source| StoreError::Io(crate::state::PathIo { action, path, source })
    }
}
