//! mini-cluster's container runtime library, the engine behind the `minirun` binary.
//!
//! The kubelet never forks: it runs `minirun` (see src/main.rs for the CLI contract), a fresh
//! single-threaded process that uses this library.
//!
//! - [`image`]: the content-addressed image store. `load` of OCI image-layout and docker-save
//!   tarballs with sha256 verification of every blob, linux/amd64 picked from indexes,
//!   `name:tag` references, layers unpacked once each (gzip, zstd, plain) into snapshot dirs with
//!   OCI whiteouts turned into overlayfs ones, hostile archives refused, `rmi` and GC; and the
//!   image config applied the Kubernetes way ([`image::config`]).
//! - [`spec`]: the kubelet-facing `SandboxConfig` / `ContainerConfig` and their translation into
//!   an OCI runtime [`oci_spec::runtime::Spec`] (containerd's default capabilities, masked and
//!   read-only paths, rlimits, user, no_new_privs, namespaces, resources).
//! - [`init`]: what the container's init does from that spec: join or create namespaces,
//!   the mount tree ([`mounts`]: overlay root, /proc, /sys, /dev, binds through fds),
//!   pivot_root, masked paths, rlimits, user, capabilities.
//! - [`cgroup`]: the cgroup v2 driver and the v1 driver for hybrid hosts, detected at start.
//! - [`runtime`]: sandboxes, containers, exec, stop, remove, state on disk.
//! - [`monitor`]: the pod monitor (the shim role), one process per sandbox that creates, logs,
//!   reaps and records every container of the pod, driven over a socket in the pod dir.
//! - [`logs`]: CRI-format log files with size rotation.
//! - [`sys`] and [`process`]: every Linux call behind the [`sys::Syscall`] trait (a real
//!   implementation and a recording fake for unit tests), fork and exec; the only `unsafe`.
//! - [`userns`]: pod user namespaces (`hostUsers: false`) with idmapped mounts.
//! - [`beneath`]: fd-relative path resolution that cannot leave a root (openat2), used for
//!   layer unpacking, mount destinations and subPath.

pub mod beneath;
pub mod cgroup;
pub mod image;
pub mod init;
pub mod logs;
pub mod monitor;
pub mod mounts;
pub mod process;
pub mod runtime;
pub mod seccomp;
pub mod spec;
pub mod sys;
pub mod userns;
pub mod util;
