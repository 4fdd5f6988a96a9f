//! Pulls from an OCI distribution registry with oci-client, honouring imagePullPolicy.
//!
//! The pulled manifest, config and layers are written as an OCI image layout and loaded through
//! [`ImageStore::load`], so pulled images get exactly the verification (every blob against its
//! digest, every layer against its diff id) and the unpacking of loaded ones.

use std::path::Path;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{manifest, Client, Reference};
use sha2::{Digest, Sha256};

use super::store::{normalize_ref, ImageError, ImageRecord, ImageStore};

/// When to contact the registry (Kubernetes' imagePullPolicy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PullPolicy {
    /// Always pull.
    Always,
    /// Pull only when the image is not in the store.
    IfNotPresent,
    /// Never pull: the image must be present.
    Never,
}

fn pull_err(reference: &str, e: impl std::fmt::Display) -> ImageError {
    ImageError::Pull {
        reference: reference.to_string(),
        reason: e.to_string(),
    }
}

/// Pulls `reference` (e.g. `127.0.0.1:5000/busybox:latest`) according to `policy`.
/// `insecure` uses plain HTTP (loopback test registries).
pub fn pull(
    store: &ImageStore,
    reference: &str,
    policy: PullPolicy,
    insecure: bool,
) -> Result<ImageRecord, ImageError> {
    match (policy, store.resolve(reference)) {
        (PullPolicy::Never, r) => return r,
        (PullPolicy::IfNotPresent, Ok(img)) => return Ok(img),
        _ => {}
    }
    let parsed: Reference = reference.parse().map_err(|e| pull_err(reference, e))?;
    let client = Client::new(ClientConfig {
        protocol: if insecure {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        ..Default::default()
    });
    // A current-thread runtime: no threads beyond the blocking pool, and only for this call.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| pull_err(reference, e))?;
    let data = rt
        .block_on(client.pull(
            &parsed,
            &RegistryAuth::Anonymous,
            vec![
                manifest::IMAGE_LAYER_MEDIA_TYPE,
                manifest::IMAGE_LAYER_GZIP_MEDIA_TYPE,
                "application/vnd.oci.image.layer.v1.tar+zstd",
                manifest::IMAGE_DOCKER_LAYER_TAR_MEDIA_TYPE,
                manifest::IMAGE_DOCKER_LAYER_GZIP_MEDIA_TYPE,
            ],
        ))
        .map_err(|e| pull_err(reference, e))?;
    drop(rt);
    let m = data
        .manifest
        .ok_or_else(|| pull_err(reference, "registry returned no manifest"))?;
    // Write an OCI layout: blobs under the digests the manifest declares (load verifies them).
    let staging = tempfile::Builder::new()
        .prefix("pull-")
        .tempdir_in(store.root().join("tmp"))
        .map_err(|e| pull_err(reference, e))?;
    let dir = staging.path().join("layout");
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(|e| pull_err(reference, e))?;
    let put = |digest: &str, data: &[u8]| -> Result<(), ImageError> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| pull_err(reference, format!("unsupported digest {digest}")))?;
        std::fs::write(blobs.join(hex), data).map_err(|e| pull_err(reference, e))
    };
    put(&m.config.digest, &data.config.data)?;
    if m.layers.len() != data.layers.len() {
        return Err(pull_err(reference, "layer count differs from the manifest"));
    }
    for (desc, layer) in m.layers.iter().zip(&data.layers) {
        put(&desc.digest, &layer.data)?;
    }
    let mbytes = serde_json::to_vec(&m).map_err(|e| pull_err(reference, e))?;
    let mdigest = format!("sha256:{}", hex::encode(Sha256::digest(&mbytes)));
    put(&mdigest, &mbytes)?;
    let name = normalize_ref(reference);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": manifest::OCI_IMAGE_MEDIA_TYPE,
            "digest": mdigest,
            "size": mbytes.len(),
            "annotations": {"io.containerd.image.name": name},
        }],
    });
    std::fs::write(dir.join("index.json"), index.to_string())
        .map_err(|e| pull_err(reference, e))?;
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .map_err(|e| pull_err(reference, e))?;
    let tarball = staging.path().join("image.tar");
    tar_dir(&dir, &tarball).map_err(|e| pull_err(reference, e))?;
    let report = store.load(&tarball, Some(&name))?;
    report
        .images
        .into_iter()
        .next()
        .ok_or_else(|| pull_err(reference, "nothing loaded"))
}

fn tar_dir(dir: &Path, out: &Path) -> std::io::Result<()> {
    let mut b = tar::Builder::new(std::fs::File::create(out)?);
    b.append_dir_all(".", dir)?;
    b.finish()
}
