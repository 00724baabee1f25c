//! Crafted OCI archives for tests: one image of one layer, tagged as asked,
//! with whatever the layer's tar holds (hostile or not).

use std::io::Write;

use sha2::Digest as _;

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

pub fn sha(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// An OCI archive of one image, tagged `name`, whose single layer is `layer_tar`.
pub fn oci_archive(layer_tar: &[u8], name: &str) -> Vec<u8> {
    let layer = gzip(layer_tar);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", sha(layer_tar))]},
        "config": {}
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{}", sha(&config)), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": format!("sha256:{}", sha(&layer)), "size": layer.len()}]
    }))
    .unwrap();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{}", sha(&manifest)), "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": name}}]
    }))
    .unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, data).unwrap();
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    add("index.json", &index);
    for blob in [&layer, &config, &manifest] {
        add(&format!("blobs/sha256/{}", sha(blob)), blob);
    }
    tar.into_inner().unwrap()
}
