//! What a local cluster (`cluster up`) may leave on the machine after `cluster down`: its lab
//! namespaces, mounts and processes under its state dir, its nodes' cgroups, the state dir.

use std::path::{Path, PathBuf};

/// Everything of cluster `name` (state in `state_dir`) still on the machine, one line each.
pub fn cluster(name: &str, state_dir: &Path) -> Vec<String> {
    let mut left = crate::netns::leftovers(&format!("mc-{name}-"));
    let needle = state_dir.to_string_lossy().to_string();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    left.extend(
        mountinfo
            .lines()
            .filter(|l| l.contains(&needle))
            .map(|l| format!("mount {l}")),
    );
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = entry.file_name().to_string_lossy().to_string();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
        if !zombie && cmdline.contains(&needle) {
            left.push(format!("process {pid}: {cmdline}"));
        }
    }
    // node cgroups are minicluster-<name>-n<i>, in the unified hierarchy or each v1 controller
    let cgroup_prefix = format!("minicluster-{name}-");
    for root in cgroup_roots() {
        for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(&cgroup_prefix)
            {
                left.push(format!("cgroup {}", entry.path().display()));
            }
        }
    }
    if state_dir.exists() {
        left.push(format!("state dir {}", state_dir.display()));
    }
    left
}

fn cgroup_roots() -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut roots = vec![base.to_path_buf()];
    for entry in std::fs::read_dir(base).into_iter().flatten().flatten() {
        if entry.path().is_dir() {
            roots.push(entry.path());
        }
    }
    roots
}
