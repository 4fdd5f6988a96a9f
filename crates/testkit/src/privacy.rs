//! The check that state files are private (issue 14): every directory and file the components
//! keep under their state roots is readable and writable by root alone (no group or other
//! bits), except what containers see, which is pod content by design and lives inside those
//! private directories: image snapshots, container layers and roots, pod volumes and claim
//! directories, and the pod files (hosts, hostname, resolv.conf) bind-mounted into containers.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Content a container sees: `dir/name` where `dir`'s own name is the first element.
const CONTENT_UNDER: &[(&str, &[&str])] = &[
    ("images", &["snapshots"]),
    ("volumes", &["*"]),
    ("local-path", &["*"]),
    ("idmap", &["*"]),
];

/// A container's directory entries that are its layers and root.
const CONTAINER_CONTENT: &[&str] = &["upper", "work", "rootfs", "idmap"];

/// A pod directory's files bind-mounted read-only into its containers.
const POD_FILES: &[&str] = &["hosts", "hostname", "resolv.conf"];

fn is_content(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let parent = path.parent();
    let pname = parent
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let gpname = parent
        .and_then(Path::parent)
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    if CONTENT_UNDER
        .iter()
        .any(|(dir, names)| pname == *dir && (names.contains(&"*") || names.contains(&name)))
    {
        return true;
    }
    // <runtime>/pods/<sandbox>/containers/<id>/{upper,work,rootfs}
    if gpname == "containers" && CONTAINER_CONTENT.contains(&name) {
        return true;
    }
    // <runtime>/pods/<sandbox>/{hosts,hostname,resolv.conf}
    gpname == "pods" && POD_FILES.contains(&name) && path.is_file()
}

/// Every entry under `roots` (the roots included) that another user could read, write or
/// enter, as `mode path` lines; empty when everything is private. Symlinks are not followed
/// (their own mode means nothing); content directories are not entered.
pub fn exposed(roots: &[PathBuf]) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo: Vec<PathBuf> = roots.to_vec();
    while let Some(p) = todo.pop() {
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if md.file_type().is_symlink() || is_content(&p) {
            continue;
        }
        let mode = md.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            out.push(format!("{mode:04o} {}", p.display()));
        }
        if md.is_dir() {
            for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                todo.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn private_trees_pass_and_exposed_entries_are_named() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        let set = |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
        fs::create_dir_all(root.join("pods/sb/containers/c/upper/etc")).unwrap();
        fs::create_dir_all(root.join("pods/sb/volumes/v")).unwrap();
        fs::write(root.join("pods/sb/hosts"), "127.0.0.1 localhost").unwrap();
        fs::write(root.join("pods/sb/sandbox.json"), "{}").unwrap();
        for p in [
            "",
            "pods",
            "pods/sb",
            "pods/sb/containers",
            "pods/sb/containers/c",
            "pods/sb/volumes",
        ] {
            set(&root.join(p), 0o700);
        }
        set(&root.join("pods/sb/sandbox.json"), 0o600);
        // Content: readable by all, even world-writable (an emptyDir), inside private dirs.
        set(&root.join("pods/sb/containers/c/upper"), 0o755);
        set(&root.join("pods/sb/volumes/v"), 0o777);
        set(&root.join("pods/sb/hosts"), 0o644);
        assert_eq!(exposed(std::slice::from_ref(&root)), Vec::<String>::new());
        set(&root.join("pods/sb/sandbox.json"), 0o644);
        set(&root.join("pods/sb"), 0o755);
        let e = exposed(std::slice::from_ref(&root));
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with("0644 ") && e[0].ends_with("sandbox.json"),
            "{e:?}"
        );
        assert!(
            e[1].starts_with("0755 ") && e[1].ends_with("pods/sb"),
            "{e:?}"
        );
    }
}
