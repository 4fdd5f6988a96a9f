//! Pod volumes on the node: emptyDir (disk or tmpfs), hostPath, configMap, secret, downwardAPI,
//! projected and persistentVolumeClaim, under `<pod dir>/volumes/<name>`. Secret and projected
//! volumes are on a tmpfs of their own (never on the node's disk). Payload volumes are
//! written like upstream's AtomicWriter: a timestamped directory, a `..data` symlink swapped
//! atomically, and one symlink per top-level entry pointing through `..data`, so a running
//! container sees an update all at once.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{
    ConfigMap, DownwardAPIVolumeFile, KeyToPath, Pod, Secret, Volume,
};

/// Errors of volume set-up (the pod stays ContainerCreating with the message as an event).
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A filesystem operation failed.
    #[error("volume {volume}: {path}: {source}")]
    Io {
        volume: String,
        path: String,
        source: std::io::Error,
    },
    /// A referenced object is missing.
    #[error("volume {volume}: {kind} \"{name}\" not found")]
    NotFound {
        volume: String,
        kind: &'static str,
        name: String,
    },
    /// A referenced key is missing.
    #[error("volume {volume}: configmap or secret \"{name}\" has no key {key}")]
    MissingKey {
        volume: String,
        name: String,
        key: String,
    },
    /// A hostPath of type Directory/File/... does not match.
    #[error("volume {volume}: hostPath {path} is not a {kind}")]
    HostPathType {
        volume: String,
        path: String,
        kind: String,
    },
    /// A path in items escapes the volume.
    #[error("volume {volume}: invalid path {path}")]
    BadPath { volume: String, path: String },
    /// A kind of volume this kubelet does not support.
    #[error("volume {volume}: unsupported volume type")]
    Unsupported { volume: String },
    /// A downward API field could not be resolved.
    #[error("volume {volume}: {source}")]
    Field {
        volume: String,
        source: crate::env::EnvError,
    },
}

type Result<T, E = VolumeError> = std::result::Result<T, E>;

/// Mount operations the volumes need (tmpfs for memory-backed emptyDirs, secrets and
/// projected volumes).
pub trait Mounter: Send + Sync {
    /// Mounts a tmpfs at `path` with an optional size in bytes and root directory mode.
    fn mount_tmpfs(&self, path: &Path, size: Option<u64>, mode: Option<u32>)
        -> std::io::Result<()>;
    /// Unmounts `path` (lazily).
    fn unmount(&self, path: &Path) -> std::io::Result<()>;
    /// Whether `path` is a mount point.
    fn is_mount_point(&self, path: &Path) -> bool;
}

/// [`Mounter`] with real mount(2)/umount2(2) calls.
pub struct SystemMounter;

impl Mounter for SystemMounter {
    fn mount_tmpfs(
        &self,
        path: &Path,
        size: Option<u64>,
        mode: Option<u32>,
    ) -> std::io::Result<()> {
        let opts: Vec<String> = size
            .map(|s| format!("size={s}"))
            .into_iter()
            .chain(mode.map(|m| format!("mode={m:o}")))
            .collect();
        let data = (!opts.is_empty()).then(|| opts.join(","));
        nix::mount::mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
            data.as_deref(),
        )
        .map_err(std::io::Error::from)
    }

    fn unmount(&self, path: &Path) -> std::io::Result<()> {
        nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH).map_err(std::io::Error::from)
    }

    fn is_mount_point(&self, path: &Path) -> bool {
        let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
            return false;
        };
        let want = path.to_string_lossy();
        text.lines()
            .filter_map(|l| l.split(' ').nth(4))
            .any(|m| m == want)
    }
}

/// The objects payload volumes read.
#[derive(Debug, Default, Clone)]
pub struct VolumeSources {
    /// ConfigMaps of the pod's namespace.
    pub config_maps: BTreeMap<String, ConfigMap>,
    /// Secrets of the pod's namespace.
    pub secrets: BTreeMap<String, Secret>,
    /// Node directories of bound PersistentVolumeClaims by claim name.
    pub claims: BTreeMap<String, PathBuf>,
    /// status.hostIP and status.podIP for downwardAPI.
    pub host_ip: String,
    /// The pod's IP.
    pub pod_ip: String,
    /// ServiceAccount tokens of projected volumes, by [`token_key`].
    pub tokens: BTreeMap<String, String>,
}

/// The key of a projected ServiceAccount token in [`VolumeSources::tokens`].
pub fn token_key(audience: Option<&str>, expiration: i64) -> String {
    format!("{}|{expiration}", audience.unwrap_or(""))
}

/// The (audience, expirationSeconds) of every projected ServiceAccount token the pod mounts;
/// the default lifetime is upstream's 3600 s.
pub fn token_requests(pod: &Pod) -> Vec<(Option<String>, i64)> {
    let mut out = Vec::new();
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        for s in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            if let Some(t) = &s.service_account_token {
                let want = (
                    t.audience.clone().filter(|a| !a.is_empty()),
                    t.expiration_seconds.unwrap_or(3600),
                );
                if !out.contains(&want) {
                    out.push(want);
                }
            }
        }
    }
    out
}

/// The ConfigMaps, Secrets and claims a pod's volumes refer to.
pub fn referenced_objects(pod: &Pod) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut cms = Vec::new();
    let mut secrets = Vec::new();
    let mut claims = Vec::new();
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        if let Some(c) = &v.config_map {
            cms.push(c.name.clone());
        }
        if let Some(s) = &v.secret {
            secrets.extend(s.secret_name.clone());
        }
        if let Some(p) = &v.persistent_volume_claim {
            claims.push(p.claim_name.clone());
        }
        if let Some(p) = &v.projected {
            for s in p.sources.iter().flatten() {
                if let Some(c) = &s.config_map {
                    cms.push(c.name.clone());
                }
                if let Some(c) = &s.secret {
                    secrets.push(c.name.clone());
                }
            }
        }
    }
    (cms, secrets, claims)
}

/// Whether the pod's volume `name` is a payload volume (configMap, secret, downwardAPI,
/// projected): the kubelet writes those, so containers get them read-only whatever they ask,
/// as upstream since CVE-2017-1002102 (a container writing a symlink into one could steer the
/// kubelet's next update).
pub fn is_read_only(pod: &Pod, name: &str) -> bool {
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .find(|v| v.name == name)
        .is_some_and(|v| {
            v.config_map.is_some()
                || v.secret.is_some()
                || v.downward_api.is_some()
                || v.projected.is_some()
        })
}

/// One file of a payload volume: bytes and mode.
#[derive(Debug, Clone, PartialEq)]
pub struct PayloadFile {
    /// Content.
    pub data: Vec<u8>,
    /// Permission bits.
    pub mode: u32,
}

/// Relative path → file.
pub type Payload = BTreeMap<String, PayloadFile>;

fn check_rel(volume: &str, p: &str) -> Result<()> {
    let path = Path::new(p);
    let ok = !p.is_empty()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(n) if !n.to_string_lossy().starts_with("..")));
    if ok {
        Ok(())
    } else {
        Err(VolumeError::BadPath {
            volume: volume.to_string(),
            path: p.to_string(),
        })
    }
}

fn keyed_payload(
    volume: &str,
    object: &str,
    data: BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
    default_mode: u32,
    optional: bool,
    out: &mut Payload,
) -> Result<()> {
    match items {
        Some(items) if !items.is_empty() => {
            for it in items {
                check_rel(volume, &it.path)?;
                match data.get(&it.key) {
                    Some(d) => {
                        out.insert(
                            it.path.clone(),
                            PayloadFile {
                                data: d.clone(),
                                mode: it.mode.map(|m| m as u32).unwrap_or(default_mode),
                            },
                        );
                    }
                    None if optional => {}
                    None => {
                        return Err(VolumeError::MissingKey {
                            volume: volume.to_string(),
                            name: object.to_string(),
                            key: it.key.clone(),
                        })
                    }
                }
            }
        }
        _ => {
            for (k, d) in data {
                check_rel(volume, &k)?;
                out.insert(
                    k,
                    PayloadFile {
                        data: d,
                        mode: default_mode,
                    },
                );
            }
        }
    }
    Ok(())
}

fn config_map_data(cm: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut m: BTreeMap<String, Vec<u8>> = cm
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    for (k, v) in cm.binary_data.clone().unwrap_or_default() {
        m.insert(k, v.0);
    }
    m
}

fn secret_data(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut m: BTreeMap<String, Vec<u8>> = s
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    for (k, v) in s.string_data.clone().unwrap_or_default() {
        m.insert(k, v.into_bytes());
    }
    m
}

fn downward_payload(
    volume: &str,
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    default_mode: u32,
    src: &VolumeSources,
    out: &mut Payload,
) -> Result<()> {
    for it in items {
        check_rel(volume, &it.path)?;
        let value = if let Some(f) = &it.field_ref {
            crate::env::field_value(pod, &f.field_path, &src.host_ip, &src.pod_ip)
        } else if let Some(r) = &it.resource_field_ref {
            let spec = pod.spec.clone().unwrap_or_default();
            let c = spec
                .containers
                .iter()
                .find(|c| Some(c.name.as_str()) == r.container_name.as_deref())
                .or(spec.containers.first())
                .cloned()
                .unwrap_or_default();
            crate::env::resource_value(
                &c,
                &r.resource,
                r.divisor.as_ref().map(|q| q.0.as_str()),
                &BTreeMap::new(),
            )
        } else {
            Ok(String::new())
        }
        .map_err(|source| VolumeError::Field {
            volume: volume.to_string(),
            source,
        })?;
        out.insert(
            it.path.clone(),
            PayloadFile {
                data: value.into_bytes(),
                mode: it.mode.map(|m| m as u32).unwrap_or(default_mode),
            },
        );
    }
    Ok(())
}

/// The keys of ConfigMap or Secret `object` (kind `kind`) into `out`: all of them, or `items`;
/// a missing object is an error unless `optional`.
#[allow(clippy::too_many_arguments)]
fn object_payload(
    volume: &str,
    kind: &'static str,
    object: &str,
    data: Option<BTreeMap<String, Vec<u8>>>,
    items: Option<&Vec<KeyToPath>>,
    mode: u32,
    optional: bool,
    out: &mut Payload,
) -> Result<()> {
    match data {
        Some(d) => keyed_payload(volume, object, d, items, mode, optional, out),
        None if optional => Ok(()),
        None => Err(VolumeError::NotFound {
            volume: volume.into(),
            kind,
            name: object.to_string(),
        }),
    }
}

/// The files of a configMap/secret/downwardAPI/projected volume (None for other kinds).
pub fn payload(pod: &Pod, v: &Volume, src: &VolumeSources) -> Result<Option<Payload>> {
    let name = v.name.as_str();
    let cm_data = |n: &str| src.config_maps.get(n).map(config_map_data);
    let secret = |n: &str| src.secrets.get(n).map(secret_data);
    let mut out = Payload::new();
    if let Some(c) = &v.config_map {
        let mode = c.default_mode.unwrap_or(0o644) as u32;
        let optional = c.optional == Some(true);
        let data = cm_data(&c.name);
        object_payload(
            name,
            "configmap",
            &c.name,
            data,
            c.items.as_ref(),
            mode,
            optional,
            &mut out,
        )?;
        return Ok(Some(out));
    }
    if let Some(s) = &v.secret {
        let sname = s.secret_name.clone().unwrap_or_default();
        let mode = s.default_mode.unwrap_or(0o644) as u32;
        let optional = s.optional == Some(true);
        let data = secret(&sname);
        object_payload(
            name,
            "secret",
            &sname,
            data,
            s.items.as_ref(),
            mode,
            optional,
            &mut out,
        )?;
        return Ok(Some(out));
    }
    if let Some(d) = &v.downward_api {
        let mode = d.default_mode.unwrap_or(0o644) as u32;
        let items = d.items.as_deref().unwrap_or_default();
        downward_payload(name, pod, items, mode, src, &mut out)?;
        return Ok(Some(out));
    }
    if let Some(p) = &v.projected {
        let mode = p.default_mode.unwrap_or(0o644) as u32;
        for s in p.sources.iter().flatten() {
            if let Some(c) = &s.config_map {
                let optional = c.optional == Some(true);
                let data = cm_data(&c.name);
                object_payload(
                    name,
                    "configmap",
                    &c.name,
                    data,
                    c.items.as_ref(),
                    mode,
                    optional,
                    &mut out,
                )?;
            }
            if let Some(c) = &s.secret {
                let optional = c.optional == Some(true);
                let data = secret(&c.name);
                object_payload(
                    name,
                    "secret",
                    &c.name,
                    data,
                    c.items.as_ref(),
                    mode,
                    optional,
                    &mut out,
                )?;
            }
            if let Some(d) = &s.downward_api {
                let items = d.items.as_deref().unwrap_or_default();
                downward_payload(name, pod, items, mode, src, &mut out)?;
            }
            if let Some(t) = &s.service_account_token {
                check_rel(name, &t.path)?;
                let key = token_key(
                    t.audience.as_deref().filter(|a| !a.is_empty()),
                    t.expiration_seconds.unwrap_or(3600),
                );
                let token = src.tokens.get(&key).ok_or_else(|| VolumeError::NotFound {
                    volume: name.into(),
                    kind: "serviceaccount token for",
                    name: key.clone(),
                })?;
                out.insert(
                    t.path.clone(),
                    PayloadFile {
                        data: token.clone().into_bytes(),
                        mode,
                    },
                );
            }
        }
        return Ok(Some(out));
    }
    Ok(None)
}

fn io(volume: &str, path: &Path) -> impl FnOnce(std::io::Error) -> VolumeError {
    let volume = volume.to_string();
    let path = path.display().to_string();
    move |source| VolumeError::Io {
        volume,
        path,
        source,
    }
}

fn read_payload_dir(dir: &Path, base: &Path, out: &mut Payload) -> std::io::Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        let p = e.path();
        let meta = fs::symlink_metadata(&p)?;
        if meta.is_dir() {
            read_payload_dir(&p, base, out)?;
        } else {
            let rel = p
                .strip_prefix(base)
                .expect("under base")
                .to_string_lossy()
                .to_string();
            out.insert(
                rel,
                PayloadFile {
                    data: fs::read(&p)?,
                    mode: meta.permissions().mode() & 0o7777,
                },
            );
        }
    }
    Ok(())
}

/// Writes `payload` into `dir` atomically; returns whether anything changed.
pub fn write_atomically(volume: &str, dir: &Path, payload: &Payload) -> Result<bool> {
    fs::create_dir_all(dir).map_err(io(volume, dir))?;
    // The volume's root is the mount point's view in the container.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(io(volume, dir))?;
    let data_link = dir.join("..data");
    let current = fs::read_link(&data_link).ok();
    if let Some(cur) = &current {
        let mut existing = Payload::new();
        let cur_dir = dir.join(cur);
        if read_payload_dir(&cur_dir, &cur_dir, &mut existing).is_ok() && &existing == payload {
            return Ok(false);
        }
    }
    let stamp = format!(
        "..{}",
        jiff::Timestamp::now().strftime("%Y_%m_%d_%H_%M_%S.%f")
    );
    let new_dir = dir.join(&stamp);
    // Directories 0755 whatever the umask: readable by every user of the pod, writable by none.
    let mkdir = |d: &Path| {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(d)
            .and_then(|()| {
                let mut cur = d;
                while cur.starts_with(dir) && cur != dir {
                    fs::set_permissions(cur, fs::Permissions::from_mode(0o755))?;
                    cur = cur.parent().unwrap_or(dir);
                }
                Ok(())
            })
            .map_err(io(volume, d))
    };
    mkdir(&new_dir)?;
    for (rel, f) in payload {
        let p = new_dir.join(rel);
        if let Some(parent) = p.parent() {
            mkdir(parent)?;
        }
        fs::write(&p, &f.data).map_err(io(volume, &p))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(f.mode)).map_err(io(volume, &p))?;
    }
    let tmp = dir.join("..data_tmp");
    let _ = fs::remove_file(&tmp);
    symlink(&stamp, &tmp).map_err(io(volume, &tmp))?;
    fs::rename(&tmp, &data_link).map_err(io(volume, &data_link))?;
    // One symlink per top-level entry, through ..data.
    let tops: std::collections::BTreeSet<String> = payload
        .keys()
        .map(|k| k.split('/').next().unwrap_or(k).to_string())
        .collect();
    for t in &tops {
        let link = dir.join(t);
        if fs::symlink_metadata(&link).is_err() {
            symlink(Path::new("..data").join(t), &link).map_err(io(volume, &link))?;
        }
    }
    for e in fs::read_dir(dir).map_err(io(volume, dir))?.flatten() {
        let n = e.file_name().to_string_lossy().to_string();
        if n.starts_with("..") {
            if n != "..data" && n != stamp {
                let _ = fs::remove_dir_all(e.path());
            }
        } else if !tops.contains(&n) {
            let _ = fs::remove_file(e.path());
        }
    }
    Ok(true)
}

/// Sets up (or refreshes) every volume of `pod` under `pod_dir/volumes`; returns each volume's
/// node path. Idempotent: payload volumes are rewritten only when their content changed.
pub fn setup(
    pod: &Pod,
    pod_dir: &Path,
    src: &VolumeSources,
    mounter: &dyn Mounter,
) -> Result<BTreeMap<String, PathBuf>> {
    let mut paths = BTreeMap::new();
    let base = pod_dir.join("volumes");
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let name = v.name.as_str();
        let dir = base.join(name);
        if let Some(e) = &v.empty_dir {
            fs::create_dir_all(&dir).map_err(io(name, &dir))?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).map_err(io(name, &dir))?;
            if e.medium.as_deref() == Some("Memory") && !mounter.is_mount_point(&dir) {
                let size = e
                    .size_limit
                    .as_ref()
                    .map(|q| crate::resources::quantity_to_f64(&q.0) as u64);
                mounter
                    .mount_tmpfs(&dir, size, None)
                    .map_err(io(name, &dir))?;
            }
            paths.insert(name.to_string(), dir);
        } else if let Some(h) = &v.host_path {
            let p = PathBuf::from(&h.path);
            let kind = h.type_.clone().unwrap_or_default();
            let mismatch = |k: &str| VolumeError::HostPathType {
                volume: name.into(),
                path: h.path.clone(),
                kind: k.into(),
            };
            match kind.as_str() {
                "DirectoryOrCreate" if !p.exists() => {
                    fs::create_dir_all(&p).map_err(io(name, &p))?;
                    fs::set_permissions(&p, fs::Permissions::from_mode(0o755))
                        .map_err(io(name, &p))?;
                }
                "FileOrCreate" if !p.exists() => {
                    if let Some(parent) = p.parent() {
                        fs::create_dir_all(parent).map_err(io(name, parent))?;
                    }
                    fs::write(&p, b"").map_err(io(name, &p))?;
                    fs::set_permissions(&p, fs::Permissions::from_mode(0o644))
                        .map_err(io(name, &p))?;
                }
                "Directory" if !p.is_dir() => return Err(mismatch("directory")),
                "File" if !p.is_file() => return Err(mismatch("file")),
                "Socket" | "CharDevice" | "BlockDevice" if !p.exists() => {
                    return Err(mismatch(&kind))
                }
                _ => {}
            }
            paths.insert(name.to_string(), p);
        } else if let Some(c) = &v.persistent_volume_claim {
            let p =
                src.claims
                    .get(&c.claim_name)
                    .cloned()
                    .ok_or_else(|| VolumeError::NotFound {
                        volume: name.into(),
                        kind: "bound persistentvolumeclaim",
                        name: c.claim_name.clone(),
                    })?;
            fs::create_dir_all(&p).map_err(io(name, &p))?;
            paths.insert(name.to_string(), p);
        } else if let Some(payload) = payload(pod, v, src)? {
            // Secrets (and projected volumes, which carry tokens and secrets) live on a tmpfs
            // of their own, never on the node's disk; its root is not world-writable.
            if (v.secret.is_some() || v.projected.is_some()) && !mounter.is_mount_point(&dir) {
                fs::create_dir_all(&dir).map_err(io(name, &dir))?;
                mounter
                    .mount_tmpfs(&dir, None, Some(0o755))
                    .map_err(io(name, &dir))?;
            }
            write_atomically(name, &dir, &payload)?;
            paths.insert(name.to_string(), dir);
        } else {
            return Err(VolumeError::Unsupported {
                volume: name.into(),
            });
        }
    }
    Ok(paths)
}

/// Unmounts tmpfs volumes and removes the pod's volume directories.
pub fn teardown(pod_dir: &Path, mounter: &dyn Mounter) -> std::io::Result<()> {
    let base = pod_dir.join("volumes");
    if let Ok(rd) = fs::read_dir(&base) {
        for e in rd.flatten() {
            if mounter.is_mount_point(&e.path()) {
                mounter.unmount(&e.path())?;
            }
        }
    }
    match fs::remove_dir_all(&base) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ConfigMapVolumeSource, EmptyDirVolumeSource, PodSpec, SecretVolumeSource,
    };
    use k8s_openapi::ByteString;
    use std::sync::Mutex;

    #[derive(Default)]
    struct FakeMounter {
        calls: Mutex<Vec<String>>,
    }

    impl Mounter for FakeMounter {
        fn mount_tmpfs(
            &self,
            path: &Path,
            size: Option<u64>,
            mode: Option<u32>,
        ) -> std::io::Result<()> {
            let mode = mode.map(|m| format!(" mode={m:o}")).unwrap_or_default();
            self.calls
                .lock()
                .unwrap()
                .push(format!("tmpfs {} {size:?}{mode}", path.display()));
            Ok(())
        }
        fn unmount(&self, path: &Path) -> std::io::Result<()> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("umount {}", path.display()));
            Ok(())
        }
        fn is_mount_point(&self, _: &Path) -> bool {
            false
        }
    }

    fn pod(volumes: Vec<Volume>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                volumes: Some(volumes),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn cm(data: &[(&str, &str)]) -> ConfigMap {
        ConfigMap {
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn configmap_update_swaps_data_link_atomically() {
        let tmp = tempfile::tempdir().unwrap();
        let p = pod(vec![Volume {
            name: "cfg".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: "app".into(),
                ..Default::default()
            }),
            ..Default::default()
        }]);
        let mut src = VolumeSources::default();
        src.config_maps
            .insert("app".into(), cm(&[("color", "blue")]));
        let m = FakeMounter::default();
        let paths = setup(&p, tmp.path(), &src, &m).unwrap();
        let dir = &paths["cfg"];
        assert_eq!(fs::read_to_string(dir.join("color")).unwrap(), "blue");
        let first = fs::read_link(dir.join("..data")).unwrap();
        // Unchanged content: nothing rewritten.
        setup(&p, tmp.path(), &src, &m).unwrap();
        assert_eq!(fs::read_link(dir.join("..data")).unwrap(), first);
        src.config_maps
            .insert("app".into(), cm(&[("color", "green"), ("size", "xl")]));
        setup(&p, tmp.path(), &src, &m).unwrap();
        assert_ne!(fs::read_link(dir.join("..data")).unwrap(), first);
        assert_eq!(fs::read_to_string(dir.join("color")).unwrap(), "green");
        assert_eq!(fs::read_to_string(dir.join("size")).unwrap(), "xl");
        assert!(!dir.join(&first).exists(), "old payload removed");
        src.config_maps.insert("app".into(), cm(&[("size", "s")]));
        setup(&p, tmp.path(), &src, &m).unwrap();
        assert!(fs::symlink_metadata(dir.join("color")).is_err());
    }

    #[test]
    fn secret_items_modes_and_missing_objects() {
        let tmp = tempfile::tempdir().unwrap();
        let p = pod(vec![Volume {
            name: "creds".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some("db".into()),
                default_mode: Some(0o400),
                items: Some(vec![KeyToPath {
                    key: "password".into(),
                    path: "nested/pw".into(),
                    mode: None,
                }]),
                optional: None,
            }),
            ..Default::default()
        }]);
        let m = FakeMounter::default();
        let err = setup(&p, tmp.path(), &VolumeSources::default(), &m).unwrap_err();
        assert_eq!(err.to_string(), "volume creds: secret \"db\" not found");
        let mut src = VolumeSources::default();
        src.secrets.insert(
            "db".into(),
            Secret {
                data: Some([("password".to_string(), ByteString(b"hunter2".to_vec()))].into()),
                ..Default::default()
            },
        );
        let paths = setup(&p, tmp.path(), &src, &m).unwrap();
        let f = paths["creds"].join("nested/pw");
        assert_eq!(fs::read_to_string(&f).unwrap(), "hunter2");
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o400
        );
        // The secret's directory was a tmpfs (mode 0755) before anything was written to it.
        let calls = m.calls.lock().unwrap().clone();
        assert_eq!(
            calls,
            vec![format!("tmpfs {} None mode=755", paths["creds"].display())]
        );
        let nested = paths["creds"].join("nested");
        assert_eq!(
            fs::metadata(nested).unwrap().permissions().mode() & 0o002,
            0,
            "payload directories are not world-writable"
        );
    }

    #[test]
    fn item_paths_cannot_escape() {
        let tmp = tempfile::tempdir().unwrap();
        let p = pod(vec![Volume {
            name: "cfg".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: "app".into(),
                items: Some(vec![KeyToPath {
                    key: "k".into(),
                    path: "../../etc/passwd".into(),
                    mode: None,
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }]);
        let mut src = VolumeSources::default();
        src.config_maps.insert("app".into(), cm(&[("k", "v")]));
        let err = setup(&p, tmp.path(), &src, &FakeMounter::default()).unwrap_err();
        assert!(matches!(err, VolumeError::BadPath { .. }));
    }

    #[test]
    fn memory_empty_dir_is_a_sized_tmpfs() {
        let tmp = tempfile::tempdir().unwrap();
        let p = pod(vec![Volume {
            name: "scratch".into(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".into()),
                size_limit: Some(k8s_openapi::apimachinery::pkg::api::resource::Quantity(
                    "16Mi".into(),
                )),
            }),
            ..Default::default()
        }]);
        let m = FakeMounter::default();
        setup(&p, tmp.path(), &VolumeSources::default(), &m).unwrap();
        let calls = m.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 1);
        assert!(
            calls[0].ends_with("volumes/scratch Some(16777216)"),
            "{calls:?}"
        );
    }

    #[test]
    fn projected_tokens_land_in_the_volume_with_the_ca_and_namespace() {
        let tmp = tempfile::tempdir().unwrap();
        let mut p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "team"},
            "spec": {"containers": [], "volumes": [{"name": "kube-api-access-abcde", "projected": {
                "defaultMode": 420,
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                ]}}]}
        }))
        .unwrap();
        assert_eq!(token_requests(&p), vec![(None, 3607)]);
        let mut src = VolumeSources::default();
        src.config_maps
            .insert("kube-root-ca.crt".into(), cm(&[("ca.crt", "CA")]));
        // Without its token the volume is not written.
        let m = FakeMounter::default();
        assert!(setup(&p, tmp.path(), &src, &m).is_err());
        src.tokens
            .insert(token_key(None, 3607), "eyJ.tok.en".into());
        let paths = setup(&p, tmp.path(), &src, &m).unwrap();
        let dir = &paths["kube-api-access-abcde"];
        assert_eq!(fs::read_to_string(dir.join("token")).unwrap(), "eyJ.tok.en");
        assert_eq!(fs::read_to_string(dir.join("ca.crt")).unwrap(), "CA");
        assert_eq!(fs::read_to_string(dir.join("namespace")).unwrap(), "team");
        // Projected volumes are tmpfs.
        assert!(m.calls.lock().unwrap()[0].starts_with("tmpfs"));
        p.spec.as_mut().unwrap().volumes = None;
        assert!(token_requests(&p).is_empty());
    }
}
