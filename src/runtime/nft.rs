//! Applying an nftables script in one transaction (`nft -f -`): the
//! balancer's routes and the services' firewall both go through here.

use std::io::Write;
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("cannot run nft (install Debian's nftables): {0}")]
    Spawn(#[source] std::io::Error),
    #[error("nftables refused berth's rules: {0}")]
    Refused(String),
}

/// Runs `script` through `nft -f -`; all of it applies or none does.
pub fn apply(script: &str) -> Result<(), NftError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NftError::Spawn)?;
    let written = child.stdin.take().expect("piped").write_all(script.as_bytes());
    let out = child.wait_with_output().map_err(NftError::Spawn)?;
    written.map_err(NftError::Spawn)?;
    if out.status.success() { Ok(()) } else { Err(NftError::Refused(String::from_utf8_lossy(&out.stderr).trim().to_owned())) }
}
