//! `RemoteRef`: an image in a registry, `SERVER/REPOSITORY[:TAG|@DIGEST]`.
//! The server is the first path part when it holds a dot or a colon or is
//! `localhost` (docker's rule); berth always wants one named.

use std::fmt;

use super::RegistryError;
use crate::image::Digest;
use crate::image::reference::ImageRef;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Tag(String),
    Digest(Digest),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRef {
    pub server: String,
    pub repository: String,
    pub target: Target,
}

/// `host[:port]`: letters, digits, dots and dashes, then digits.
pub fn valid_server(s: &str) -> bool {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    !host.is_empty()
        && host.len() <= 253
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && !host.starts_with(['-', '.'])
        && port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok())
}

impl RemoteRef {
    pub fn parse(text: &str) -> Result<RemoteRef, RegistryError> {
        let bad = |why: &str| RegistryError::BadRef(format!("{text:?} is not a registry image reference: {why}"));
        let (server, rest) = text.split_once('/').ok_or_else(|| bad("use SERVER/NAME[:TAG], e.g. 127.0.0.1:5000/catmeow:3"))?;
        if !(server.contains('.') || server.contains(':') || server == "localhost") || !valid_server(server) {
            return Err(bad("it must start with the registry's host[:port]"));
        }
        let (name, target) = if let Some((name, digest)) = rest.split_once('@') {
            (name, Target::Digest(digest.parse::<Digest>().map_err(|_| bad("the digest is not sha256:<64 hex>"))?))
        } else {
            // Parsed as a store name: the same rules for repository and tag.
            let local: ImageRef = rest.parse().map_err(|_| bad("the name is a-z, 0-9, '.', '_', '-' and '/', the tag [A-Za-z0-9_.-]"))?;
            return Ok(RemoteRef {
                server: server.to_owned(),
                repository: local.repository().to_owned(),
                target: Target::Tag(local.tag().to_owned()),
            });
        };
        let local: ImageRef = format!("{name}:x").parse().map_err(|_| bad("the name is a-z, 0-9, '.', '_', '-' and '/'"))?;
        Ok(RemoteRef { server: server.to_owned(), repository: local.repository().to_owned(), target })
    }

    pub fn with_tag(&self, tag: &str) -> Result<RemoteRef, RegistryError> {
        RemoteRef::parse(&format!("{}/{}:{tag}", self.server, self.repository))
    }

    /// The tag or digest as the API's `manifests/<reference>` wants it.
    pub fn reference(&self) -> String {
        match &self.target {
            Target::Tag(t) => t.clone(),
            Target::Digest(d) => d.to_string(),
        }
    }

    /// The name a pulled image gets in the store: `REPOSITORY:TAG`
    /// (`REPOSITORY:sha256-<12 hex>` for a digest).
    pub fn local_name(&self) -> ImageRef {
        let tag = match &self.target {
            Target::Tag(t) => t.clone(),
            Target::Digest(d) => format!("sha256-{}", &d.hex()[..12]),
        };
        ImageRef::new(&self.repository, &tag).expect("parts already checked")
    }
}

impl fmt::Display for RemoteRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Tag(t) => write!(f, "{}/{}:{t}", self.server, self.repository),
            Target::Digest(d) => write!(f, "{}/{}@{d}", self.server, self.repository),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_repository_and_target() {
        let r = RemoteRef::parse("127.0.0.1:5000/team/catmeow:3").unwrap();
        assert_eq!((r.server.as_str(), r.repository.as_str(), r.reference()), ("127.0.0.1:5000", "team/catmeow", "3".to_owned()));
        assert_eq!(r.local_name().to_string(), "team/catmeow:3");
        assert_eq!(RemoteRef::parse("localhost/x").unwrap().reference(), "latest");
        let pinned = format!("registry.example.com/x@sha256:{}", "a".repeat(64));
        assert_eq!(RemoteRef::parse(&pinned).unwrap().to_string(), pinned);
        for bad in ["catmeow:3", "x/catmeow", "127.0.0.1:5000/", "127.0.0.1:99999/x", "a.b/X", "a.b/x:$(id)", "a b.c/x", "a.b/x@sha256:12"]
        {
            assert!(RemoteRef::parse(bad).is_err(), "{bad}");
        }
    }
}
