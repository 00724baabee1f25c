//! `ImageRef`: a tag name in the store, `repository[:tag]`, validated once.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
#[error("{shown} is not a valid image reference: use name[:tag] with a-z, 0-9, '.', '_', '-' and '/' in the name")]
pub struct InvalidRef {
    shown: String,
}

/// `berth/stack-run:bookworm`; a missing tag means `latest`. The full text
/// is what the store records as `org.opencontainers.image.ref.name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageRef {
    repository: String,
    tag: String,
}

impl ImageRef {
    pub fn new(repository: &str, tag: &str) -> Result<ImageRef, InvalidRef> {
        format!("{repository}:{tag}").parse()
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }
}

fn valid_repository(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.split('/').all(|part| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && part.as_bytes()[0].is_ascii_alphanumeric()
        })
}

fn valid_tag(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.as_bytes()[0] != b'.'
        && s.as_bytes()[0] != b'-'
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl FromStr for ImageRef {
    type Err = InvalidRef;
    fn from_str(s: &str) -> Result<ImageRef, InvalidRef> {
        // A colon after the last slash starts the tag (a colon before it
        // would be a registry port, which store names never have).
        let last_slash = s.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match s[last_slash..].find(':') {
            Some(i) => (&s[..last_slash + i], &s[last_slash + i + 1..]),
            None => (s, "latest"),
        };
        if valid_repository(repository) && valid_tag(tag) {
            Ok(ImageRef { repository: repository.to_owned(), tag: tag.to_owned() })
        } else {
            Err(InvalidRef { shown: format!("{s:?}") })
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_tags() {
        let r: ImageRef = "berth/stack-run:bookworm".parse().unwrap();
        assert_eq!((r.repository(), r.tag()), ("berth/stack-run", "bookworm"));
        assert_eq!("catmeow".parse::<ImageRef>().unwrap().to_string(), "catmeow:latest");
        for bad in ["", "Cat", "a//b", "/abs", "a:", "a:b:c", "../x", "a b", "a:$(id)", "a:-x"] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad}");
        }
    }
}
