//! Volume mount subPaths, checked and prepared the way upstream's kubelet does after
//! CVE-2017-1002101 (pkg/volume/util/subpath/subpath_linux.go, kubelet_pods.go `makeMounts`):
//! the subPath is resolved below the volume root through directory fds, a symlink a pod
//! planted that leads out of the volume is refused, and a missing subPath directory is created
//! component by component with the volume root's mode. The authoritative check happens again
//! in the container's init, which mounts the fd it resolved (see `runtime::init`), so a swap
//! between this check and the mount cannot redirect it; this one gives the user upstream's
//! CreateContainerConfigError before anything is started.

use std::os::fd::AsFd;
use std::path::Path;

use k8s_openapi::api::core::v1::Container;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use runtime::beneath::{BeneathError, Resolve, Root};
use runtime::spec::ContainerConfig;

/// Why a subPath cannot be used. The messages are upstream's: they name the volume mount and
/// the container, never the host path (the cause is logged, not shown to the user).
#[derive(Debug, thiserror::Error)]
pub enum SubPathError {
    /// The subPath exists but cannot be used (it leaves the volume, say).
    #[error("failed to prepare subPath for volumeMount {mount:?} of container {container:?}")]
    Prepare {
        /// The volume mount's name.
        mount: String,
        /// The container's name.
        container: String,
        /// The cause (logged).
        #[source]
        source: BeneathError,
    },
    /// The subPath is missing and could not be created inside the volume.
    #[error(
        "failed to create subPath directory for volumeMount {mount:?} of container {container:?}"
    )]
    Create {
        /// The volume mount's name.
        mount: String,
        /// The container's name.
        container: String,
        /// The cause (logged).
        #[source]
        source: BeneathError,
    },
}

/// Checks that `sub` resolves inside the volume at `volume` (symlinks that stay inside are
/// followed) and creates it as a directory when it is missing.
pub fn prepare(
    volume: &Path,
    sub: &Path,
    mount: &str,
    container: &str,
) -> Result<(), SubPathError> {
    let prepare_err = |source| SubPathError::Prepare {
        mount: mount.to_string(),
        container: container.to_string(),
        source,
    };
    let root = Root::open(volume).map_err(|e| {
        prepare_err(BeneathError::Io {
            path: sub.to_path_buf(),
            root: volume.display().to_string(),
            source: e,
        })
    })?;
    match root.open_at(sub, Resolve::Beneath, OFlag::O_PATH) {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => {
            // Upstream creates it with the volume root's permissions.
            let mode = root
                .open_at(Path::new(""), Resolve::Beneath, OFlag::O_PATH)
                .ok()
                .and_then(|fd| nix::sys::stat::fstat(fd.as_fd()).ok())
                .map(|st| Mode::from_bits_truncate(st.st_mode & 0o7777))
                .unwrap_or(Mode::from_bits_truncate(0o755));
            root.mkdir_all(sub, Resolve::Beneath, mode)
                .map(drop)
                .map_err(|source| SubPathError::Create {
                    mount: mount.to_string(),
                    container: container.to_string(),
                    source,
                })
        }
        Err(e) => Err(prepare_err(e)),
    }
}

/// The waiting reason and message for a container the runtime would not create: when the
/// init refused one of its subPaths (swapped for a link out of the volume after [`prepare`]),
/// upstream's CreateContainerConfigError naming the volume mount; otherwise
/// CreateContainerError with the runtime's message.
pub fn create_failure(c: &Container, cfg: &ContainerConfig, error: &str) -> (&'static str, String) {
    let refused = cfg.mounts.iter().find(|m| {
        m.sub_path
            .as_ref()
            .is_some_and(|sp| error.contains(&format!("subPath {sp:?}")))
    });
    let mount = refused.and_then(|m| {
        c.volume_mounts
            .iter()
            .flatten()
            .find(|vm| Path::new(&vm.mount_path) == m.container_path)
    });
    match mount {
        Some(vm) => (
            "CreateContainerConfigError",
            format!(
                "failed to prepare subPath for volumeMount {:?} of container {:?}",
                vm.name, c.name
            ),
        ),
        None => ("CreateContainerError", error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn links_out_of_the_volume_are_refused_with_upstreams_message() {
        let vol = tempfile::tempdir().unwrap();
        symlink("/", vol.path().join("esc")).unwrap();
        symlink("../../../..", vol.path().join("up")).unwrap();
        for sub in ["esc", "esc/etc", "up", "up/new"] {
            let e = prepare(vol.path(), Path::new(sub), "v", "c").unwrap_err();
            assert_eq!(
                e.to_string(),
                "failed to prepare subPath for volumeMount \"v\" of container \"c\"",
                "{sub}"
            );
        }
        assert!(!Path::new("/new").exists());
    }

    #[test]
    fn missing_subpaths_are_made_inside_with_the_volume_mode() {
        let vol = tempfile::tempdir().unwrap();
        fs::set_permissions(vol.path(), fs::Permissions::from_mode(0o751)).unwrap();
        fs::create_dir(vol.path().join("real")).unwrap();
        symlink("real", vol.path().join("inside")).unwrap();
        prepare(vol.path(), Path::new("a/b"), "v", "c").unwrap();
        let md = fs::metadata(vol.path().join("a/b")).unwrap();
        assert!(md.is_dir());
        assert_eq!(md.permissions().mode() & 0o7777, 0o751);
        // A link that stays inside is followed, and what is missing is made behind it.
        prepare(vol.path(), Path::new("inside/x"), "v", "c").unwrap();
        assert!(vol.path().join("real/x").is_dir());
    }

    #[test]
    fn an_init_refusal_names_the_volume_mount() {
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c",
            "volumeMounts": [{"name": "data", "mountPath": "/d", "subPath": "esc"}],
        }))
        .unwrap();
        let cfg = ContainerConfig {
            mounts: vec![runtime::spec::MountConfig {
                host_path: "/vol".into(),
                container_path: "/d".into(),
                readonly: false,
                sub_path: Some("esc".into()),
            }],
            ..Default::default()
        };
        let init = "container c: subPath \"esc\": \"esc\" resolves outside /vol";
        assert_eq!(
            create_failure(&c, &cfg, init),
            (
                "CreateContainerConfigError",
                "failed to prepare subPath for volumeMount \"data\" of container \"c\"".into()
            )
        );
        assert_eq!(
            create_failure(&c, &cfg, "no space").0,
            "CreateContainerError"
        );
    }
}
