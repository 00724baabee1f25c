//! A cap on decompressed bytes: a 3 MB gzip may expand to terabytes, so
//! every stream berth decompresses from outside counts what it yields and
//! fails once it passes the configured limit.

use std::io::{self, Read};

/// What the error of a capped stream says: the limit, never the content.
#[derive(Debug, thiserror::Error)]
#[error("{what} expands to more than {limit} bytes (the limit; raise [limits] in config.toml if it is genuine)")]
pub struct TooBig {
    pub what: &'static str,
    pub limit: u64,
}

/// Reads through `inner` until `limit` bytes have passed, then fails.
pub struct Capped<R> {
    inner: R,
    left: u64,
    limit: u64,
    what: &'static str,
}

impl<R: Read> Capped<R> {
    pub fn new(inner: R, limit: u64, what: &'static str) -> Self {
        Capped { inner, left: limit, limit, what }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // One byte past the limit is enough to know.
        let want = buf.len().min(usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            return Err(io::Error::other(TooBig { what: self.what, limit: self.limit }));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_up_to_the_limit_and_fails_past_it() {
        let mut out = Vec::new();
        Capped::new(&[7u8; 100][..], 100, "x").read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 100);
        let err = Capped::new(&[7u8; 101][..], 100, "the layer").read_to_end(&mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("the layer expands to more than 100 bytes"));
    }
}
