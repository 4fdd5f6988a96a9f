//! User namespaces for pods (`hostUsers: false`, Kubernetes 1.33 beta): the pod's processes
//! are root inside a user namespace that maps it to an unprivileged range of host ids.
//!
//! How a sandbox gets one: a short-lived holder process (forked from `minirun`) unshares a
//! user namespace, `minirun` writes its uid and gid maps, and the holder then creates the
//! pod's network, IPC and UTS namespaces inside it (so the pod's root has its capabilities
//! over them: binding port 80, setting the hostname), sets the hostname and brings `lo` up.
//! The pause container joins those namespaces and keeps them; the holder exits. Containers
//! join them through the pause process as usual.
//!
//! Each container's init does its mounts as host root in a mount namespace of the host's user
//! namespace, with every layer and volume an idmapped mount (the pod's mapping), so files
//! owned by root on disk are root's inside; then it joins the user namespace last. Kernels
//! without idmapped mounts for a filesystem refuse the pod with a clear error. This is the
//! containerd 2 / runc model (KEP-127).

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::process::{self, Forked};
use crate::sys::Syscall;

/// The ids a pod's user namespace maps: container ids `0..size` are host ids
/// `host_id..host_id + size`, for users and groups alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMapping {
    /// First host id.
    pub host_id: u32,
    /// How many ids (65536 for pods, as upstream).
    pub size: u32,
}

impl IdMapping {
    /// The `/proc/<pid>/uid_map` (and `gid_map`) line.
    pub fn map_line(&self) -> String {
        format!("0 {} {}\n", self.host_id, self.size)
    }

    /// Refuses mappings that would give the pod host root (or overflow).
    pub fn validate(&self) -> Result<(), String> {
        if self.host_id == 0 {
            return Err("a pod's user namespace may not map host id 0".into());
        }
        if self.size == 0 || self.host_id.checked_add(self.size).is_none() {
            return Err(format!(
                "id mapping {}+{} is empty or overflows",
                self.host_id, self.size
            ));
        }
        Ok(())
    }
}

/// Why a pod's user namespace could not be made.
#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    /// The mapping is not acceptable.
    #[error("user namespace: {0}")]
    Mapping(String),
    /// A step failed.
    #[error("user namespace: {what}: {source}")]
    Step {
        /// What was done.
        what: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

fn step(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> UsernsError {
    let what = what.into();
    move |source| UsernsError::Step { what, source }
}

/// The holder of a new pod's user, network, IPC and UTS namespaces until the pause container
/// has joined them; dropping it ends the holder process.
pub struct NamespaceHolder {
    pid: Pid,
    release: Option<std::fs::File>,
}

impl NamespaceHolder {
    /// Forks the holder: a user namespace with `map`, and inside it new network (unless
    /// `host_network`... which hostUsers: false forbids), IPC and UTS namespaces, the hostname
    /// set and `lo` up. Returns once every namespace exists. Single-threaded callers only.
    pub fn create(
        sys: &dyn Syscall,
        map: IdMapping,
        hostname: &str,
    ) -> Result<NamespaceHolder, UsernsError> {
        map.validate().map_err(UsernsError::Mapping)?;
        let (ready_r, ready_w) = process::pipe().map_err(|e| step("pipe")(e.into()))?;
        let (go_r, go_w) = process::pipe().map_err(|e| step("pipe")(e.into()))?;
        match process::fork().map_err(|e| step("fork")(e.into()))? {
            Forked::Child => {
                drop((ready_r, go_w));
                let code = holder_child(sys, hostname, ready_w, go_r);
                process::exit_now(code)
            }
            Forked::Parent(pid) => {
                drop((ready_w, go_r));
                let mut holder = NamespaceHolder { pid, release: None };
                let mut ready = std::fs::File::from(ready_r);
                let mut go = std::fs::File::from(go_w);
                expect_byte(&mut ready, b'U', "the holder's user namespace")?;
                for (file, line) in [("uid_map", map.map_line()), ("gid_map", map.map_line())] {
                    let p = format!("/proc/{pid}/{file}");
                    std::fs::write(&p, line).map_err(step(p))?;
                }
                go.write_all(b"G").map_err(step("releasing the holder"))?;
                expect_byte(&mut ready, b'N', "the pod's namespaces")?;
                holder.release = Some(go);
                Ok(holder)
            }
        }
    }

    /// The path of one of the holder's namespaces (`user`, `net`, `ipc`, `uts`).
    pub fn ns_path(&self, ns: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/{ns}", self.pid))
    }
}

impl Drop for NamespaceHolder {
    fn drop(&mut self) {
        drop(self.release.take());
        let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
        let _ = process::wait_exit(self.pid);
    }
}

fn expect_byte(r: &mut std::fs::File, want: u8, what: &str) -> Result<(), UsernsError> {
    let mut b = [0u8; 1];
    match r.read(&mut b) {
        Ok(1) if b[0] == want => Ok(()),
        Ok(1) => {
            // The holder reports its failure after the byte 'E'.
            let mut msg = String::new();
            let _ = r.read_to_string(&mut msg);
            Err(step(what)(std::io::Error::other(msg)))
        }
        Ok(_) => Err(step(what)(std::io::Error::other("the holder exited"))),
        Err(e) => Err(step(what)(e)),
    }
}

/// The holder's side; returns its exit code.
fn holder_child(sys: &dyn Syscall, hostname: &str, ready: OwnedFd, go: OwnedFd) -> i32 {
    let mut ready = std::fs::File::from(ready);
    let mut go = std::fs::File::from(go);
    let fail = |ready: &mut std::fs::File, e: String| {
        let _ = ready.write_all(format!("E{e}").as_bytes());
        1
    };
    if let Err(e) = sys.unshare(CloneFlags::CLONE_NEWUSER) {
        return fail(&mut ready, e.to_string());
    }
    if ready.write_all(b"U").is_err() {
        return 1;
    }
    let mut b = [0u8; 1];
    if !matches!(go.read(&mut b), Ok(1)) {
        return 1;
    }
    let flags = CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS;
    let made = sys
        .unshare(flags)
        .and_then(|()| sys.sethostname(hostname))
        .and_then(|()| sys.loopback_up());
    if let Err(e) = made {
        return fail(&mut ready, e.to_string());
    }
    if ready.write_all(b"N").is_err() {
        return 1;
    }
    // Hold the namespaces until released (the pipe closes) or killed.
    let _ = go.read(&mut b);
    0
}

/// Opens the user namespace a container joins (`path` from its spec), unless it is this
/// process's own.
pub fn open(path: &Path) -> std::io::Result<Option<OwnedFd>> {
    let f = std::fs::File::open(path)?;
    let own = std::fs::metadata("/proc/self/ns/user")?;
    let theirs = f.metadata()?;
    use std::os::unix::fs::MetadataExt;
    if own.ino() == theirs.ino() && own.dev() == theirs.dev() {
        return Ok(None);
    }
    Ok(Some(OwnedFd::from(f)))
}

/// Joins the user namespace `fd`: the last step of a container's set-up, after every mount
/// (done as host root); the process then holds capabilities only inside it.
pub fn enter(sys: &dyn Syscall, fd: &OwnedFd) -> Result<(), crate::sys::SysError> {
    sys.setns(fd.as_fd(), CloneFlags::CLONE_NEWUSER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_never_include_host_root() {
        let ok = IdMapping {
            host_id: 65536,
            size: 65536,
        };
        assert_eq!(ok.map_line(), "0 65536 65536\n");
        assert!(ok.validate().is_ok());
        assert!(IdMapping {
            host_id: 0,
            size: 65536
        }
        .validate()
        .is_err());
        assert!(IdMapping {
            host_id: u32::MAX - 10,
            size: 65536
        }
        .validate()
        .is_err());
    }

    #[test]
    fn our_own_namespace_is_not_joined() {
        assert!(open(Path::new("/proc/self/ns/user")).unwrap().is_none());
    }
}
