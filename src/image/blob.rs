//! `BlobWriter`: hashes while it writes to a temp file and names the blob by
//! its digest only when complete, so a blob path always holds whole content.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::digest::{Digest, HashingWriter};
use super::error::StoreError;
use crate::state::atomic;

pub struct BlobWriter {
    blobs_dir: PathBuf,
    tmp: PathBuf,
    /// `None` once finished; a writer dropped unfinished removes its temp file.
    out: Option<HashingWriter<io::BufWriter<File>>>,
}

impl BlobWriter {
    pub(super) fn new(blobs_dir: &Path) -> Result<BlobWriter, StoreError> {
        let tmp = atomic::temp_path_for(&blobs_dir.join("blob"));
        let file = File::create(&tmp).map_err(StoreError::io("create", &tmp))?;
        Ok(BlobWriter { blobs_dir: blobs_dir.to_owned(), tmp, out: Some(HashingWriter::new(io::BufWriter::with_capacity(1 << 20, file))) })
    }

    /// Syncs and names the blob. Writing content the store already has
    /// keeps the existing blob and drops the temp file.
    pub fn finish(mut self) -> Result<(Digest, u64), StoreError> {
        let (buffered, digest, size) = self.out.take().expect("finish runs once").finish();
        let named = (|| {
            let file = buffered.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            let path = self.blobs_dir.join(digest.hex());
            if path.exists() {
                fs::remove_file(&self.tmp)
            } else {
                fs::rename(&self.tmp, &path)?;
                atomic::sync_dir(&self.blobs_dir)
            }
        })();
        if named.is_err() {
            let _ = fs::remove_file(&self.tmp);
        }
        named.map_err(StoreError::io("write blob", &self.tmp))?;
        Ok((digest, size))
    }

    /// Names the blob only if its content hashes to `expected`: how imports
    /// verify what they were given before anything can reference it.
    pub fn finish_expecting(self, expected: &Digest) -> Result<u64, StoreError> {
        let got = self.out.as_ref().expect("not finished").digest();
        if got != *expected {
            return Err(StoreError::DigestMismatch { expected: expected.clone(), got });
        }
        Ok(self.finish()?.1)
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.out.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.as_mut().expect("not finished").write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.as_mut().expect("not finished").flush()
    }
}
