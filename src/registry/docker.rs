//! Docker's image format (schema 2) beside OCI's, as skopeo converts them:
//! what most registries serve, and what some only take. The layers are the
//! same gzip tars in both; only the media types differ, and Docker's config
//! carries fields OCI has no place for. On the way in an image becomes OCI
//! (a new config without Docker's extras, a new manifest, the layer blobs
//! unchanged); on the way out the OCI manifest is restated in Docker's
//! media types over the same blobs.

use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest, ImageManifestBuilder, MediaType};

use super::RegistryError;
use crate::image::store::descriptor;
use crate::image::{Digest, Image};

pub const MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The largest image config read to convert: configs are kilobytes.
pub const CONFIG_CAP: u64 = 4 << 20;

fn unreadable(reference: &str, what: &str) -> RegistryError {
    RegistryError::Unsupported { reference: reference.to_owned(), why: format!("a docker image whose {what} berth cannot read") }
}

/// The OCI manifest and config for a Docker schema 2 manifest and its
/// config (fetched and verified): the config restated without Docker's
/// extras, the layers unchanged under OCI's media type.
pub fn to_oci(reference: &str, docker_manifest: &[u8], docker_config: &[u8]) -> Result<(Vec<u8>, Vec<u8>), RegistryError> {
    // Parse errors are not quoted: they would echo the server's bytes.
    let manifest: ImageManifest = serde_json::from_slice(docker_manifest).map_err(|_| unreadable(reference, "manifest"))?;
    let config: ImageConfiguration = serde_json::from_slice(docker_config).map_err(|_| unreadable(reference, "config"))?;
    let config_bytes = serde_json::to_vec(&config).map_err(|_| unreadable(reference, "config"))?;
    let layers: Vec<Descriptor> = manifest
        .layers()
        .iter()
        .map(|layer| Ok(descriptor(MediaType::ImageLayerGzip, &Digest::try_from(layer.digest())?, layer.size())))
        .collect::<Result<_, RegistryError>>()?;
    let oci = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(MediaType::ImageConfig, &Digest::of(&config_bytes), config_bytes.len() as u64))
        .layers(layers)
        .build()
        .expect("a manifest has its fields");
    Ok((serde_json::to_vec(&oci).expect("a manifest serialises"), config_bytes))
}

/// The image's manifest in Docker schema 2: the same config and layer
/// blobs under Docker's media types (Docker reads an OCI config as its own).
pub fn to_docker(image: &Image) -> Result<Vec<u8>, RegistryError> {
    let restate = |d: &Descriptor, media_type: &str| -> Result<Descriptor, RegistryError> {
        Ok(descriptor(MediaType::Other(media_type.to_owned()), &Digest::try_from(d.digest())?, d.size()))
    };
    let layers = image.manifest.layers().iter().map(|l| restate(l, LAYER)).collect::<Result<Vec<_>, _>>()?;
    let docker = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::Other(MANIFEST.to_owned()))
        .config(restate(image.manifest.config(), CONFIG)?)
        .layers(layers)
        .build()
        .expect("a manifest has its fields");
    Ok(serde_json::to_vec(&docker).expect("a manifest serialises"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_docker_image_becomes_oci_over_the_same_layers() {
        let layer = Digest::of(b"not really a layer");
        let docker_config = br#"{"architecture":"amd64","os":"linux","docker_version":"24.0.7","container_config":{"Cmd":null},"config":{"Cmd":["python","app.py"],"ExposedPorts":{"5000/tcp":{}}},"rootfs":{"type":"layers","diff_ids":["sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"]}}"#;
        let config = Digest::of(docker_config);
        let docker_manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","config":{{"mediaType":"{CONFIG}","size":{},"digest":"{config}"}},"layers":[{{"mediaType":"{LAYER}","size":18,"digest":"{layer}"}}]}}"#,
            docker_config.len()
        );
        let (manifest, new_config) = to_oci("r/x:1", docker_manifest.as_bytes(), docker_config).unwrap();
        let oci: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        assert_eq!(oci["mediaType"], "application/vnd.oci.image.manifest.v1+json");
        assert_eq!(oci["config"]["mediaType"], "application/vnd.oci.image.config.v1+json");
        assert_eq!(oci["config"]["digest"], Digest::of(&new_config).to_string());
        assert_ne!(oci["config"]["digest"], config.to_string(), "Docker's extras are gone from the config");
        assert_eq!(oci["layers"][0]["digest"], layer.to_string(), "the layer blob is the same");
        assert_eq!(oci["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
        let new_config: serde_json::Value = serde_json::from_slice(&new_config).unwrap();
        assert_eq!(new_config["config"]["Cmd"][0], "python");
        assert!(new_config.get("docker_version").is_none());
        assert!(
            to_oci("r/x:1", docker_manifest.as_bytes(), b"not json").unwrap_err().to_string().contains("whose config berth cannot read")
        );
        assert!(
            to_oci("r/x:1", b"{\"schemaVersion\": \"evil\"}", docker_config)
                .unwrap_err()
                .to_string()
                .contains("whose manifest berth cannot read")
        );
    }
}
