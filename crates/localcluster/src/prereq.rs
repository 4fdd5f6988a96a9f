//! Prerequisites of `cluster up`: root, the system tools it runs (found on PATH), and the
//! component binaries and images, each missing one named with how to install it.

use std::path::{Path, PathBuf};

use crate::StoreKind;

/// A missing prerequisite.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PrereqError {
    #[error("cluster up must run as root (network namespaces, mounts, cgroups): run it with sudo")]
    NotRoot,
    #[error("missing prerequisite: {tool} not found on PATH; install it with `{install}`")]
    MissingTool { tool: String, install: String },
    #[error("missing component binary {path}; build it with `{build}` or pass --bin-dir")]
    MissingBinary { path: PathBuf, build: String },
    #[error("missing image tarball {path}; build the images with `scripts/build-images.sh --out DIR` and pass --images DIR")]
    MissingImage { path: PathBuf },
}

/// System tools and the Debian packages providing them.
const TOOLS: &[(&str, &str)] = &[
    ("ip", "apt-get install iproute2"),
    ("nsenter", "apt-get install util-linux"),
    ("iptables", "apt-get install iptables"),
    ("iptables-restore", "apt-get install iptables"),
];

/// The component binaries (in the bin dir) and the cargo command building each.
pub const BINARIES: &[(&str, &str)] = &[
    ("mini-apiserver", "cargo build -p apiserver"),
    ("mini-controller-manager", "cargo build -p controllers"),
    ("mini-scheduler", "cargo build -p scheduler"),
    ("mini-kubelet", "cargo build -p kubelet"),
    ("minirun", "cargo build -p runtime"),
    ("mini-proxy", "cargo build -p proxy"),
];

/// Finds `program` on the PATH given (colon-separated), like a shell does.
pub fn find_on_path(program: &str, path_var: &str) -> Option<PathBuf> {
    path_var
        .split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The system tools `cluster up` needs for `store`, checked against `path_var`.
pub fn check_tools(store: StoreKind, path_var: &str) -> Result<(), PrereqError> {
    let etcd = [("etcd", "apt-get install etcd-server")];
    let extra: &[(&str, &str)] = if store == StoreKind::Etcd { &etcd } else { &[] };
    for (tool, install) in TOOLS.iter().chain(extra) {
        if find_on_path(tool, path_var).is_none() {
            return Err(PrereqError::MissingTool {
                tool: tool.to_string(),
                install: install.to_string(),
            });
        }
    }
    Ok(())
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Every prerequisite of `cluster up`: root, tools, binaries in `bin_dir`, and the pause image
/// (plus mini-dns when the DNS add-on is deployed) in `images`.
pub fn check_all(
    store: StoreKind,
    bin_dir: &Path,
    images: &Path,
    with_dns: bool,
) -> Result<(), PrereqError> {
    let path_var = std::env::var("PATH").unwrap_or_default();
    check_tools(store, &path_var)?;
    if !is_root() {
        return Err(PrereqError::NotRoot);
    }
    for (binary, build) in BINARIES {
        let path = bin_dir.join(binary);
        if !is_executable(&path) {
            return Err(PrereqError::MissingBinary {
                path,
                build: build.to_string(),
            });
        }
    }
    let mut needed = vec!["pause_latest.tar"];
    if with_dns {
        needed.push("mini-dns_latest.tar");
    }
    for image in needed {
        let path = images.join(image);
        if !path.exists() {
            return Err(PrereqError::MissingImage { path });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_tool(dir: &Path, name: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn a_missing_tool_is_named_with_its_package() {
        let dir = tempfile::tempdir().unwrap();
        for tool in ["nsenter", "iptables", "iptables-restore"] {
            fake_tool(dir.path(), tool);
        }
        let path_var = dir.path().to_string_lossy().to_string();
        let err = check_tools(StoreKind::Embedded, &path_var).unwrap_err();
        assert_eq!(
            err,
            PrereqError::MissingTool {
                tool: "ip".into(),
                install: "apt-get install iproute2".into()
            }
        );
        assert!(
            err.to_string().contains("apt-get install iproute2"),
            "{err}"
        );
        fake_tool(dir.path(), "ip");
        assert_eq!(check_tools(StoreKind::Embedded, &path_var), Ok(()));
        let err = check_tools(StoreKind::Etcd, &path_var).unwrap_err();
        assert!(err.to_string().contains("etcd-server"), "{err}");
    }

    #[test]
    fn a_non_executable_file_is_not_a_tool() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ip"), "").unwrap();
        assert_eq!(find_on_path("ip", &dir.path().to_string_lossy()), None);
    }
}
