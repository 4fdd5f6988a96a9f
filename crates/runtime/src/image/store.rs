//! The content-addressed image store: blobs, image records, name:tag references, snapshots.
//!
//! Layout under the store root:
//! - `blobs/sha256/<hex>`: verified manifests, configs and (compressed) layers
//! - `images/<config-hex>.json`: one [`ImageRecord`] per image (id = config digest)
//! - `refs.json`: `name:tag` → image id
//! - `snapshots/<diff-id-hex>/`: each layer unpacked once, an overlay lower dir
//! - `tmp/`: staging; everything is renamed into place only once verified

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::staging::{stage, Staged};
use super::unpack::{self, Budget, UnpackError, UnpackLimits};
use crate::sys::Syscall;

/// Errors of the image store.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// I/O on a store path failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// A blob's content does not match its digest.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// Which blob.
        what: String,
        /// Declared digest.
        expected: String,
        /// Computed digest.
        actual: String,
    },
    /// A blob's size does not match the descriptor.
    #[error("size mismatch for {what}: expected {expected}, got {actual}")]
    SizeMismatch {
        /// Which blob.
        what: String,
        /// Declared size.
        expected: u64,
        /// Actual size.
        actual: u64,
    },
    /// The tarball is neither OCI layout nor docker-save, or misses a part.
    #[error("invalid image archive {path}: {reason}")]
    Invalid {
        /// The archive.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A JSON document could not be parsed.
    #[error("parsing {what}: {source}")]
    Json {
        /// Which document.
        what: String,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// A layer could not be unpacked.
    #[error("layer {digest}: {source}")]
    Layer {
        /// Layer digest.
        digest: String,
        /// Cause.
        #[source]
        source: UnpackError,
    },
    /// The archive itself is hostile or corrupt.
    #[error("archive {path}: {source}")]
    Archive {
        /// The archive.
        path: PathBuf,
        /// Cause.
        #[source]
        source: UnpackError,
    },
    /// No image with that name or id.
    #[error("image {0} not found")]
    NotFound(String),
    /// No linux/amd64 manifest in an index.
    #[error("no linux/amd64 image in {0}")]
    NoPlatform(String),
    /// Pulling from a registry failed.
    #[error("pulling {reference}: {reason}")]
    Pull {
        /// The image reference.
        reference: String,
        /// Why.
        reason: String,
    },
    /// The image is used by a container.
    #[error("image {0} is in use by a container")]
    InUse(String),
}

/// Result of an image store operation.
pub type Result<T> = std::result::Result<T, ImageError>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The parts of an image config that the runtime applies.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    /// Entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Cmd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// Env (`K=V`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    /// WorkingDir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// User (`uid[:gid]` or names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawConfig {
    #[serde(default)]
    config: Option<ImageConfig>,
    #[serde(default)]
    rootfs: Option<RawRootfs>,
    #[serde(default)]
    architecture: Option<String>,
    #[serde(default)]
    os: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawRootfs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: Option<String>,
    digest: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    platform: Option<Platform>,
    #[serde(default)]
    annotations: Option<HashMap<String, String>>,
}

#[derive(Debug, Deserialize)]
struct Platform {
    architecture: String,
    os: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestOrIndex {
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// One layer of an image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LayerRecord {
    /// Digest of the blob as stored (maybe compressed).
    pub digest: String,
    /// Digest of the uncompressed tar: names the snapshot.
    pub diff_id: String,
}

/// An image in the store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageRecord {
    /// Image id: the config digest (`sha256:…`).
    pub id: String,
    /// Manifest digest when loaded from OCI layout (the repo digest).
    #[serde(default)]
    pub manifest_digest: Option<String>,
    /// name:tag references.
    pub names: Vec<String>,
    /// Layers, bottom first.
    pub layers: Vec<LayerRecord>,
    /// The runtime part of the config.
    pub config: ImageConfig,
    /// Sum of the blob sizes.
    pub size: u64,
}

/// What a load did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadReport {
    /// Images loaded (ids and names).
    pub images: Vec<ImageRecord>,
    /// Layers unpacked now.
    pub unpacked: usize,
    /// Layers already present as snapshots.
    pub reused: usize,
}

/// Normalises an image reference: `docker.io/library/x` → `x`, a missing tag → `:latest`.
pub fn normalize_ref(r: &str) -> String {
    let r = r
        .strip_prefix("docker.io/library/")
        .or_else(|| r.strip_prefix("docker.io/"))
        .unwrap_or(r);
    if r.contains('@') {
        return r.to_string();
    }
    let last = r.rsplit('/').next().unwrap_or(r);
    if last.contains(':') {
        r.to_string()
    } else {
        format!("{r}:latest")
    }
}

fn hex_of(digest: &str) -> Option<&str> {
    let h = digest.strip_prefix("sha256:")?;
    (h.len() == 64
        && h.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    .then_some(h)
}

/// A reader that hashes what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    /// Reads the rest and returns (`sha256:<hex>`, bytes).
    pub fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.count,
        ))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// sha256 of a file.
pub fn file_digest(path: &Path) -> io::Result<(String, u64)> {
    HashingReader::new(io::BufReader::new(fs::File::open(path)?)).finish()
}

/// Opens a possibly compressed layer blob (gzip, zstd or plain tar, by magic bytes).
fn open_layer(path: &Path) -> io::Result<Box<dyn Read>> {
    let mut f = fs::File::open(path)?;
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic)?;
    use io::Seek;
    f.seek(io::SeekFrom::Start(0))?;
    let f = io::BufReader::new(f);
    if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Ok(Box::new(flate2::read::GzDecoder::new(f)))
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Ok(Box::new(zstd::stream::read::Decoder::new(f)?))
    } else {
        Ok(Box::new(f))
    }
}

/// The image store rooted at a directory.
pub struct ImageStore {
    root: PathBuf,
    sys: Box<dyn Syscall>,
    limits: UnpackLimits,
}

impl ImageStore {
    /// Opens (creating) the store at `root`.
    pub fn open(root: impl Into<PathBuf>, sys: Box<dyn Syscall>) -> Result<Self> {
        let root = root.into();
        for d in ["blobs/sha256", "images", "snapshots", "tmp"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        Ok(Self {
            root,
            sys,
            limits: UnpackLimits::default(),
        })
    }

    /// Sets the caps on what one image may unpack to.
    pub fn set_limits(&mut self, limits: UnpackLimits) {
        self.limits = limits;
    }

    /// The caps on what one image may unpack to.
    pub fn limits(&self) -> UnpackLimits {
        self.limits
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Snapshot directory of a layer diff id.
    pub fn snapshot_dir(&self, diff_id: &str) -> PathBuf {
        self.root
            .join("snapshots")
            .join(hex_of(diff_id).unwrap_or("invalid"))
    }

    fn tmpdir(&self, prefix: &str) -> Result<PathBuf> {
        let p = self
            .root
            .join("tmp")
            .join(format!("{prefix}-{}", crate::util::random_id()));
        fs::create_dir_all(&p).map_err(io_err(&p))?;
        Ok(p)
    }

    fn refs_path(&self) -> PathBuf {
        self.root.join("refs.json")
    }

    /// name:tag → image id.
    pub fn refs(&self) -> Result<BTreeMap<String, String>> {
        let p = self.refs_path();
        match fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| ImageError::Json {
                what: p.display().to_string(),
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(io_err(&p)(e)),
        }
    }

    fn save_refs(&self, refs: &BTreeMap<String, String>) -> Result<()> {
        crate::util::write_atomic(
            &self.refs_path(),
            &serde_json::to_vec_pretty(refs).unwrap_or_default(),
        )
        .map_err(io_err(&self.refs_path()))
    }

    fn record_path(&self, id: &str) -> PathBuf {
        self.root
            .join("images")
            .join(format!("{}.json", hex_of(id).unwrap_or("invalid")))
    }

    /// All images.
    pub fn list(&self) -> Result<Vec<ImageRecord>> {
        let dir = self.root.join("images");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let e = e.map_err(io_err(&dir))?;
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json") {
                let b = fs::read(&p).map_err(io_err(&p))?;
                out.push(
                    serde_json::from_slice(&b).map_err(|source| ImageError::Json {
                        what: p.display().to_string(),
                        source,
                    })?,
                );
            }
        }
        out.sort_by(|a: &ImageRecord, b| a.names.cmp(&b.names));
        Ok(out)
    }

    /// Finds an image by name:tag, full id, or unique id prefix.
    pub fn resolve(&self, reference: &str) -> Result<ImageRecord> {
        let refs = self.refs()?;
        let norm = normalize_ref(reference);
        let id = if let Some(id) = refs.get(&norm) {
            id.clone()
        } else {
            let want = reference.strip_prefix("sha256:").unwrap_or(reference);
            let matches: Vec<_> = self
                .list()?
                .into_iter()
                .filter(|i| want.len() >= 6 && i.id.trim_start_matches("sha256:").starts_with(want))
                .collect();
            if matches.len() != 1 {
                return Err(ImageError::NotFound(reference.to_string()));
            }
            matches[0].id.clone()
        };
        let p = self.record_path(&id);
        let b = fs::read(&p).map_err(|_| ImageError::NotFound(reference.to_string()))?;
        serde_json::from_slice(&b).map_err(|source| ImageError::Json {
            what: p.display().to_string(),
            source,
        })
    }

    /// Snapshot dirs of an image, bottom layer first.
    pub fn snapshot_dirs(&self, img: &ImageRecord) -> Vec<PathBuf> {
        img.layers
            .iter()
            .map(|l| self.snapshot_dir(&l.diff_id))
            .collect()
    }

    /// Loads an OCI image-layout or docker-save tarball. `name` names an image whose archive
    /// carries no name.
    pub fn load(&self, tarball: &Path, name: Option<&str>) -> Result<LoadReport> {
        let staging = self.tmpdir("load")?;
        let res = stage(tarball, &staging).and_then(|st| self.load_staged(tarball, &st, name));
        let _ = fs::remove_dir_all(&staging);
        res
    }

    /// Loads the OCI image layout that this process wrote into `dir` (a pull's staging
    /// directory under the store's `tmp/`), with the same verification as [`Self::load`].
    pub fn load_layout(&self, dir: &Path, name: Option<&str>) -> Result<LoadReport> {
        let staged = Staged::from_dir(dir)?;
        self.load_staged(dir, &staged, name)
    }

    fn load_staged(
        &self,
        tarball: &Path,
        staged: &Staged,
        name: Option<&str>,
    ) -> Result<LoadReport> {
        let invalid = |reason: &str| ImageError::Invalid {
            path: tarball.to_path_buf(),
            reason: reason.to_string(),
        };
        let mut report = LoadReport::default();
        if let Some(index) = staged.get("index.json") {
            let idx: ManifestOrIndex = read_json(&index)?;
            let mut found = Vec::new();
            self.collect_manifests(staged, &idx, None, &mut found, 0)?;
            if found.is_empty() {
                return Err(ImageError::NoPlatform(tarball.display().to_string()));
            }
            for (mdigest, mut names) in found {
                if names.is_empty() {
                    if let Some(n) = name {
                        names.push(normalize_ref(n));
                    }
                }
                let mblob = self.verified_blob(staged, &mdigest, None)?;
                let m: ManifestOrIndex = read_json(&mblob)?;
                let cdesc = m.config.ok_or_else(|| invalid("manifest without config"))?;
                let layers: Vec<(String, PathBuf)> = m
                    .layers
                    .unwrap_or_default()
                    .iter()
                    .map(|l| {
                        Ok((
                            l.digest.clone(),
                            self.verified_blob(staged, &l.digest, l.size)?,
                        ))
                    })
                    .collect::<Result<_>>()?;
                let cpath = self.verified_blob(staged, &cdesc.digest, cdesc.size)?;
                let rec = self.import(
                    &cpath,
                    &cdesc.digest,
                    layers,
                    names,
                    Some(mdigest),
                    &mblob,
                    &mut report,
                )?;
                report.images.push(rec);
            }
        } else if let Some(manifest) = staged.get("manifest.json") {
            let ms: Vec<DockerManifest> = read_json(&manifest)?;
            for m in ms {
                let cpath = staged
                    .get(&m.config)
                    .ok_or_else(|| invalid(&format!("missing {}", m.config)))?;
                let (cdigest, _) = file_digest(&cpath).map_err(io_err(&cpath))?;
                // Config files are named by their digest: check it when it is.
                let stem = Path::new(&m.config)
                    .file_name()
                    .map(|f| f.to_string_lossy().trim_end_matches(".json").to_string())
                    .unwrap_or_default();
                if stem.len() == 64 && format!("sha256:{stem}") != cdigest {
                    return Err(ImageError::DigestMismatch {
                        what: m.config.clone(),
                        expected: format!("sha256:{stem}"),
                        actual: cdigest,
                    });
                }
                let mut layers = Vec::new();
                for l in &m.layers {
                    let p = staged
                        .get(l)
                        .ok_or_else(|| invalid(&format!("missing {l}")))?;
                    let (d, _) = file_digest(&p).map_err(io_err(&p))?;
                    layers.push((d, p));
                }
                let mut names: Vec<String> = m
                    .repo_tags
                    .unwrap_or_default()
                    .iter()
                    .map(|t| normalize_ref(t))
                    .collect();
                if names.is_empty() {
                    if let Some(n) = name {
                        names.push(normalize_ref(n));
                    }
                }
                let rec = self.import(
                    &cpath,
                    &cdigest,
                    layers,
                    names,
                    None,
                    &manifest,
                    &mut report,
                )?;
                report.images.push(rec);
            }
        } else {
            return Err(invalid(
                "neither index.json (OCI layout) nor manifest.json (docker save)",
            ));
        }
        Ok(report)
    }

    fn collect_manifests(
        &self,
        staged: &Staged,
        idx: &ManifestOrIndex,
        inherited: Option<Vec<String>>,
        out: &mut Vec<(String, Vec<String>)>,
        depth: usize,
    ) -> Result<()> {
        if depth > 4 {
            return Ok(());
        }
        for d in idx.manifests.as_deref().unwrap_or_default() {
            if let Some(p) = &d.platform {
                if p.os != "linux" || p.architecture != "amd64" {
                    continue;
                }
            }
            let mut names = inherited.clone().unwrap_or_default();
            if let Some(a) = &d.annotations {
                if let Some(n) = a.get("io.containerd.image.name") {
                    names.push(normalize_ref(n));
                } else if let Some(n) = a.get("org.opencontainers.image.ref.name") {
                    if n.contains(':') || n.contains('/') {
                        names.push(normalize_ref(n));
                    }
                }
            }
            names.dedup();
            let mt = d.media_type.as_deref().unwrap_or_default();
            if mt.contains("index") || mt.contains("manifest.list") {
                let p = self.verified_blob(staged, &d.digest, d.size)?;
                let sub: ManifestOrIndex = read_json(&p)?;
                self.collect_manifests(staged, &sub, Some(names), out, depth + 1)?;
            } else {
                // Config platform is re-checked in import.
                out.push((d.digest.clone(), names));
            }
        }
        Ok(())
    }

    /// Finds `blobs/sha256/<hex>` in the staged archive and verifies digest and size.
    fn verified_blob(&self, staged: &Staged, digest: &str, size: Option<u64>) -> Result<PathBuf> {
        let hex = hex_of(digest).ok_or_else(|| ImageError::Invalid {
            path: staged.dir.clone(),
            reason: format!("unsupported digest {digest}"),
        })?;
        let p = staged
            .get(&format!("blobs/sha256/{hex}"))
            .ok_or_else(|| ImageError::Invalid {
                path: staged.dir.clone(),
                reason: format!("missing blob {digest}"),
            })?;
        let (actual, n) = file_digest(&p).map_err(io_err(&p))?;
        if actual != digest {
            return Err(ImageError::DigestMismatch {
                what: format!("blob {digest}"),
                expected: digest.to_string(),
                actual,
            });
        }
        if let Some(s) = size {
            if s != n {
                return Err(ImageError::SizeMismatch {
                    what: format!("blob {digest}"),
                    expected: s,
                    actual: n,
                });
            }
        }
        Ok(p)
    }

    fn put_blob(&self, src: &Path, digest: &str) -> Result<u64> {
        let dst = self
            .root
            .join("blobs/sha256")
            .join(hex_of(digest).unwrap_or("invalid"));
        let len = fs::metadata(src).map_err(io_err(src))?.len();
        if !dst.exists() && fs::rename(src, &dst).is_err() {
            fs::copy(src, &dst).map_err(io_err(&dst))?;
        }
        Ok(len)
    }

    #[allow(clippy::too_many_arguments)]
    fn import(
        &self,
        config_path: &Path,
        config_digest: &str,
        layers: Vec<(String, PathBuf)>,
        names: Vec<String>,
        manifest_digest: Option<String>,
        manifest_path: &Path,
        report: &mut LoadReport,
    ) -> Result<ImageRecord> {
        let raw: RawConfig = read_json(config_path)?;
        if let (Some(os), Some(arch)) = (&raw.os, &raw.architecture) {
            if os != "linux" || arch != "amd64" {
                return Err(ImageError::NoPlatform(config_digest.to_string()));
            }
        }
        let diff_ids = raw.rootfs.map(|r| r.diff_ids).unwrap_or_default();
        if diff_ids.len() != layers.len() {
            return Err(ImageError::Invalid {
                path: config_path.to_path_buf(),
                reason: format!("{} layers but {} diff_ids", layers.len(), diff_ids.len()),
            });
        }
        let mut recs = Vec::new();
        let mut budget = Budget::new(self.limits);
        for ((digest, path), diff_id) in layers.iter().zip(&diff_ids) {
            if hex_of(diff_id).is_none() {
                return Err(ImageError::Invalid {
                    path: config_path.to_path_buf(),
                    reason: format!("bad diff_id {diff_id}"),
                });
            }
            if self.snapshot_dir(diff_id).is_dir() {
                report.reused += 1;
            } else {
                self.unpack_snapshot(path, digest, diff_id, &mut budget)?;
                report.unpacked += 1;
            }
            recs.push(LayerRecord {
                digest: digest.clone(),
                diff_id: diff_id.clone(),
            });
        }
        let mut size = 0;
        for (digest, path) in &layers {
            size += self.put_blob(path, digest)?;
        }
        if let Some(md) = &manifest_digest {
            self.put_blob(manifest_path, md)?;
        }
        size += self.put_blob(config_path, config_digest)?;
        let id = config_digest.to_string();
        // Merge names with an existing record; move names away from other images.
        let mut refs = self.refs()?;
        let mut all_names: BTreeSet<String> = names.into_iter().collect();
        if let Ok(old) = fs::read(self.record_path(&id)) {
            if let Ok(old) = serde_json::from_slice::<ImageRecord>(&old) {
                all_names.extend(old.names);
            }
        }
        for n in &all_names {
            if let Some(prev) = refs.insert(n.clone(), id.clone()) {
                if prev != id {
                    self.drop_name(&prev, n)?;
                }
            }
        }
        self.save_refs(&refs)?;
        let rec = ImageRecord {
            id: id.clone(),
            manifest_digest,
            names: all_names.into_iter().collect(),
            layers: recs,
            config: raw.config.unwrap_or_default(),
            size,
        };
        let rp = self.record_path(&id);
        crate::util::write_atomic(&rp, &serde_json::to_vec_pretty(&rec).unwrap_or_default())
            .map_err(io_err(&rp))?;
        Ok(rec)
    }

    fn drop_name(&self, id: &str, name: &str) -> Result<()> {
        let rp = self.record_path(id);
        if let Ok(b) = fs::read(&rp) {
            if let Ok(mut r) = serde_json::from_slice::<ImageRecord>(&b) {
                r.names.retain(|n| n != name);
                crate::util::write_atomic(&rp, &serde_json::to_vec_pretty(&r).unwrap_or_default())
                    .map_err(io_err(&rp))?;
            }
        }
        Ok(())
    }

    /// Unpacks one layer blob into its snapshot, verifying the diff id of the uncompressed tar.
    fn unpack_snapshot(
        &self,
        blob: &Path,
        digest: &str,
        diff_id: &str,
        budget: &mut Budget,
    ) -> Result<()> {
        let layer_err = |source| ImageError::Layer {
            digest: digest.to_string(),
            source,
        };
        let tmp = self.tmpdir("snap")?;
        let res = (|| {
            let r = open_layer(blob).map_err(io_err(blob))?;
            let mut hr = HashingReader::new(r);
            unpack::unpack_layer_within(self.sys.as_ref(), &mut hr, &tmp, budget)
                .map_err(layer_err)?;
            let (actual, _) = hr.finish().map_err(|source| {
                layer_err(UnpackError::Read {
                    what: digest.to_string(),
                    source,
                })
            })?;
            if actual != diff_id {
                return Err(ImageError::DigestMismatch {
                    what: format!("layer {digest} (uncompressed)"),
                    expected: diff_id.to_string(),
                    actual,
                });
            }
            let dst = self.snapshot_dir(diff_id);
            fs::rename(&tmp, &dst).map_err(io_err(&dst))
        })();
        if res.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        res
    }

    /// Removes a name (or, given an id, the image with all its names), then GCs.
    /// `in_use` holds image ids used by containers.
    pub fn remove(&self, reference: &str, in_use: &BTreeSet<String>) -> Result<ImageRecord> {
        let img = self.resolve(reference)?;
        let norm = normalize_ref(reference);
        let mut refs = self.refs()?;
        let remove_all = !img.names.contains(&norm);
        let remaining: Vec<String> = if remove_all {
            vec![]
        } else {
            img.names.iter().filter(|n| **n != norm).cloned().collect()
        };
        if remaining.is_empty() && in_use.contains(&img.id) {
            return Err(ImageError::InUse(reference.to_string()));
        }
        refs.retain(|n, id| !(*id == img.id && (remove_all || *n == norm)));
        self.save_refs(&refs)?;
        let rp = self.record_path(&img.id);
        if remaining.is_empty() {
            fs::remove_file(&rp).map_err(io_err(&rp))?;
        } else {
            let mut r = img.clone();
            r.names = remaining;
            crate::util::write_atomic(&rp, &serde_json::to_vec_pretty(&r).unwrap_or_default())
                .map_err(io_err(&rp))?;
        }
        self.gc(in_use)?;
        Ok(img)
    }

    /// Deletes snapshots and blobs no image references (and images with no name that no
    /// container uses). Returns the number of snapshots removed.
    pub fn gc(&self, in_use: &BTreeSet<String>) -> Result<usize> {
        // Staging left by an interrupted load.
        let tmp = self.root.join("tmp");
        for e in fs::read_dir(&tmp).map_err(io_err(&tmp))?.flatten() {
            let _ = fs::remove_dir_all(e.path());
        }
        let mut keep_snap = BTreeSet::new();
        let mut keep_blob = BTreeSet::new();
        for img in self.list()? {
            if img.names.is_empty() && !in_use.contains(&img.id) {
                let rp = self.record_path(&img.id);
                let _ = fs::remove_file(rp);
                continue;
            }
            keep_blob.insert(img.id.clone());
            if let Some(m) = &img.manifest_digest {
                keep_blob.insert(m.clone());
            }
            for l in &img.layers {
                keep_blob.insert(l.digest.clone());
                keep_snap.insert(l.diff_id.clone());
            }
        }
        let mut removed = 0;
        let sd = self.root.join("snapshots");
        for e in fs::read_dir(&sd).map_err(io_err(&sd))?.flatten() {
            let name = format!("sha256:{}", e.file_name().to_string_lossy());
            if !keep_snap.contains(&name) {
                let _ = fs::remove_dir_all(e.path());
                removed += 1;
            }
        }
        let bd = self.root.join("blobs/sha256");
        for e in fs::read_dir(&bd).map_err(io_err(&bd))?.flatten() {
            let name = format!("sha256:{}", e.file_name().to_string_lossy());
            if !keep_blob.contains(&name) {
                let _ = fs::remove_file(e.path());
            }
        }
        Ok(removed)
    }
}

/// The largest index, manifest or config accepted (containerd's manifest limit is 4 MiB).
const MAX_JSON: u64 = 8 << 20;

fn read_json<T: serde::de::DeserializeOwned>(p: &Path) -> Result<T> {
    let f = fs::File::open(p).map_err(io_err(p))?;
    let mut b = Vec::new();
    f.take(MAX_JSON + 1)
        .read_to_end(&mut b)
        .map_err(io_err(p))?;
    if b.len() as u64 > MAX_JSON {
        return Err(ImageError::Invalid {
            path: p.to_path_buf(),
            reason: format!("JSON document larger than {MAX_JSON} bytes"),
        });
    }
    serde_json::from_slice(&b).map_err(|source| ImageError::Json {
        what: p.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_are_normalized() {
        assert_eq!(normalize_ref("busybox"), "busybox:latest");
        assert_eq!(normalize_ref("docker.io/library/busybox:1"), "busybox:1");
        assert_eq!(normalize_ref("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(normalize_ref("demo-web:v2"), "demo-web:v2");
    }
}
