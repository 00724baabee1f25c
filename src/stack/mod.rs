//! Stacks: the run and build base images, made from a recipe in `stacks/`
//! with Debian's mmdebstrap, or moved in and out as OCI archives.

pub mod build;
pub mod recipe;

use std::fmt;

use crate::image::{ImageRef, Store, StoreError};

#[derive(Debug, thiserror::Error)]
#[error("stack name {0:?} is not valid: use a-z, 0-9 and -, starting with a letter")]
pub struct InvalidStackName(String);

/// Where service images (`kind = "service"` recipes) are tagged.
pub const SERVICE_REPOSITORY: &str = "berth/service";

/// A stack's name, e.g. `bookworm`: the tag of its two images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackName(String);

impl StackName {
    pub fn parse(raw: &str) -> Result<StackName, InvalidStackName> {
        let ok = raw.len() <= 64
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok { Ok(StackName(raw.to_owned())) } else { Err(InvalidStackName(raw.to_owned())) }
    }

    pub fn run_image(&self) -> ImageRef {
        ImageRef::new("berth/stack-run", &self.0).expect("stack names are valid tags")
    }

    pub fn build_image(&self) -> ImageRef {
        ImageRef::new("berth/stack-build", &self.0).expect("stack names are valid tags")
    }

    /// The image a service recipe of this name makes.
    pub fn service_image(&self) -> ImageRef {
        ImageRef::new(SERVICE_REPOSITORY, &self.0).expect("stack names are valid tags")
    }

    /// The images a recipe of this kind makes under this name.
    pub fn images(&self, kind: recipe::Kind) -> Vec<ImageRef> {
        match kind {
            recipe::Kind::Stack => vec![self.run_image(), self.build_image()],
            recipe::Kind::Service => vec![self.service_image()],
        }
    }
}

impl fmt::Display for StackName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The stacks in the store: every tag of `berth/stack-run` with its build image present.
pub fn list(store: &Store) -> Result<Vec<StackName>, StoreError> {
    let mut names: Vec<StackName> = store
        .tags()?
        .into_iter()
        .filter_map(|(tag, _)| tag.parse::<ImageRef>().ok())
        .filter(|r| r.repository() == "berth/stack-run")
        .filter_map(|r| StackName::parse(r.tag()).ok())
        .collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(names)
}
