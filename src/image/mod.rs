//! The OCI image store: blobs, layers, manifests, tags, unpack cache,
//! integrity checks and archives. Knows nothing of containers or apps.

pub mod archive;
pub mod blob;
pub mod digest;
pub mod error;
pub mod layer;
pub mod limit;
pub mod maintenance;
pub mod reference;
pub mod store;
pub mod unpack;

pub use digest::Digest;
pub use reference::ImageRef;
pub use store::{Image, LayerInfo, Store, StoreError};
