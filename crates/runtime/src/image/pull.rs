//! Pulls from an OCI distribution registry with oci-client, honouring imagePullPolicy.
//!
//! The manifest and config are fetched first; the layers' declared sizes are checked against
//! the image limit before any is fetched, and each layer is streamed to disk (never held in
//! memory), capped at its declared size. The result is an OCI image layout loaded through
//! [`ImageStore::load_layout`], so pulled images get exactly the verification (every blob
//! against its digest, every layer against its diff id) and the unpacking of loaded ones.

use std::pin::Pin;
use std::task::{Context, Poll};

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
    let (m, _, config) = rt
        .block_on(client.pull_manifest_and_config(&parsed, &RegistryAuth::Anonymous))
        .map_err(|e| pull_err(reference, e))?;
    for l in &m.layers {
        if !LAYER_TYPES.contains(&l.media_type.as_str()) {
            return Err(pull_err(
                reference,
                format!(
                    "layer {} has unsupported media type {}",
                    l.digest, l.media_type
                ),
            ));
        }
    }
    // The declared sizes are checked before anything is fetched; each blob is then streamed
    // to disk and may not run past its declared size (oci-client checks its digest).
    let limit = store.limits().max_bytes;
    let declared: u64 = m.layers.iter().map(|l| l.size.max(0) as u64).sum();
    if declared > limit {
        return Err(pull_err(
            reference,
            format!("layers of {declared} bytes exceed the image limit of {limit} bytes"),
        ));
    }
    // Write an OCI layout: blobs under the digests the manifest declares (load verifies them).
    let staging = tempfile::Builder::new()
        .prefix("pull-")
        .tempdir_in(store.root().join("tmp"))
        .map_err(|e| pull_err(reference, e))?;
    let dir = staging.path().join("layout");
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(|e| pull_err(reference, e))?;
    let blob_path = |digest: &str| -> Result<std::path::PathBuf, ImageError> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| pull_err(reference, format!("unsupported digest {digest}")))?;
        Ok(blobs.join(hex))
    };
    std::fs::write(blob_path(&m.config.digest)?, config.as_bytes())
        .map_err(|e| pull_err(reference, e))?;
    for desc in &m.layers {
        let path = blob_path(&desc.digest)?;
        rt.block_on(async {
            let file = tokio::fs::File::create(&path).await?;
            let capped = Capped {
                inner: file,
                left: desc.size.max(0) as u64,
            };
            client
                .pull_blob(&parsed, desc, capped)
                .await
                .map_err(std::io::Error::other)
        })
        .map_err(|e| pull_err(reference, format!("layer {}: {e}", desc.digest)))?;
    }
    drop(rt);
    let mbytes = serde_json::to_vec(&m).map_err(|e| pull_err(reference, e))?;
    let mdigest = format!("sha256:{}", hex::encode(Sha256::digest(&mbytes)));
    std::fs::write(blob_path(&mdigest)?, &mbytes).map_err(|e| pull_err(reference, e))?;
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
    let report = store.load_layout(&dir, Some(&name))?;
    report
        .images
        .into_iter()
        .next()
        .ok_or_else(|| pull_err(reference, "nothing loaded"))
}

/// The layer media types a pull accepts.
const LAYER_TYPES: [&str; 5] = [
    manifest::IMAGE_LAYER_MEDIA_TYPE,
    manifest::IMAGE_LAYER_GZIP_MEDIA_TYPE,
    "application/vnd.oci.image.layer.v1.tar+zstd",
    manifest::IMAGE_DOCKER_LAYER_TAR_MEDIA_TYPE,
    manifest::IMAGE_DOCKER_LAYER_GZIP_MEDIA_TYPE,
];

/// A writer that refuses bytes past the blob's declared size: a registry cannot make a pull
/// write more than the manifest promised.
struct Capped {
    inner: tokio::fs::File,
    left: u64,
}

impl tokio::io::AsyncWrite for Capped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if buf.len() as u64 > self.left {
            return Poll::Ready(Err(std::io::Error::other(
                "registry sent more bytes than the manifest declares",
            )));
        }
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.left -= n as u64;
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
