//! The container init: what the forked child does, from an OCI [`Spec`], before it execs the
//! container's process. Joins or creates namespaces, builds the mount tree on the overlay root,
//! pivots into it, masks paths, then sets rlimits, user and capabilities. Every call goes through
//! [`Syscall`], so the order and content of the plan are unit-tested with the recording fake.

use std::collections::HashSet;
use std::fs;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use caps::{CapSet, CapsHashSet};
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::resource::Resource;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::beneath::Root;
use crate::mounts::{mount_flags, mount_overlay, Overlay, Tree};
use crate::sys::{SysError, Syscall};

/// Errors while setting up a container.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A system call failed.
    #[error(transparent)]
    Sys(#[from] SysError),
    /// The spec lacks a part.
    #[error("spec has no {0}")]
    Spec(&'static str),
    /// A namespace file could not be opened.
    #[error("namespace {path}: {source}")]
    Ns {
        /// The path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Capability name not understood.
    #[error("unknown capability {0}")]
    Cap(String),
    /// The executable was not found.
    #[error("executable {0} not found in the container's PATH")]
    NotFound(String),
    /// The seccomp section could not be turned into a filter.
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    /// Building the mount tree failed.
    #[error(transparent)]
    Mount(#[from] crate::mounts::MountError),
    /// A path the init opens.
    #[error("{path}: {source}")]
    Path {
        /// The path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

fn ns_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Time => CloneFlags::empty(),
    }
}

/// Joins (path given) or creates the network, IPC and UTS namespaces of the spec, and always a
/// new mount namespace. PID namespaces are handled by the forking parent (they apply to
/// children only).
pub fn enter_namespaces(sys: &dyn Syscall, spec: &Spec) -> Result<(), InitError> {
    let nss = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let mut new = CloneFlags::empty();
    for ns in &nss {
        let t = ns.typ();
        // PID: the forking parent's; cgroup: after the monitor placed the init, see
        // [`enter_cgroup_namespace`]; user: the very last step (crate::userns).
        if matches!(
            t,
            LinuxNamespaceType::Pid
                | LinuxNamespaceType::Mount
                | LinuxNamespaceType::Cgroup
                | LinuxNamespaceType::User
        ) {
            continue;
        }
        match ns.path() {
            Some(p) => {
                let f = fs::File::open(p).map_err(|source| InitError::Ns {
                    path: p.clone(),
                    source,
                })?;
                sys.setns(f.as_fd(), ns_flag(t))?;
            }
            None => new |= ns_flag(t),
        }
    }
    sys.unshare(new | CloneFlags::CLONE_NEWNS)?;
    if new.contains(CloneFlags::CLONE_NEWNET) {
        sys.loopback_up()?;
    }
    Ok(())
}

/// Creates (or joins) the container's cgroup namespace once the init sits in its own cgroups,
/// so the container sees its cgroup as the root (`0::/` in /proc/self/cgroup) and nothing of
/// the node's hierarchy; then mounts the spec's cgroup filesystems (after pivot_root: the
/// destinations are inside the container's own /sys).
pub fn enter_cgroup_namespace(sys: &dyn Syscall, spec: &Spec) -> Result<(), InitError> {
    let nss = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let Some(ns) = nss.iter().find(|n| n.typ() == LinuxNamespaceType::Cgroup) else {
        return Ok(());
    };
    match ns.path() {
        Some(p) => {
            let f = fs::File::open(p).map_err(|source| InitError::Ns {
                path: p.clone(),
                source,
            })?;
            sys.setns(f.as_fd(), CloneFlags::CLONE_NEWCGROUP)?;
        }
        None => sys.unshare(CloneFlags::CLONE_NEWCGROUP)?,
    }
    for m in spec.mounts().as_deref().unwrap_or_default() {
        let typ = m.typ().clone().unwrap_or_default();
        if typ != "cgroup2" {
            continue;
        }
        let (flags, _, ro) = mount_flags(&m.options().clone().unwrap_or_default());
        let f = if ro {
            flags | MsFlags::MS_RDONLY
        } else {
            flags
        };
        sys.mount(
            Some(Path::new("cgroup2")),
            m.destination(),
            Some("cgroup2"),
            f,
            None,
        )?;
    }
    Ok(())
}

/// The user namespace the spec joins, if any (a pod with `hostUsers: false`).
pub fn user_namespace(spec: &Spec) -> Option<PathBuf> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::User)
        .and_then(|n| n.path().clone())
}

/// Whether the spec asks for a new UTS namespace.
fn new_uts(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::Uts && n.path().is_none())
}

/// Builds the mount tree and pivots into it. `overlay` is mounted on the spec's root path first.
/// With `idmap` (the pod's user namespace, joined later) the layers and every bind are
/// idmapped views.
pub fn setup_rootfs(
    sys: &dyn Syscall,
    spec: &Spec,
    overlay: Option<&Overlay>,
    idmap: Option<BorrowedFd<'_>>,
) -> Result<(), InitError> {
    let root = spec.root().as_ref().ok_or(InitError::Spec("root"))?;
    let rootfs = root.path().clone();
    sys.mount(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )?;
    if new_uts(spec) {
        if let Some(h) = spec.hostname() {
            sys.sethostname(h)?;
        }
    }
    if let Some(o) = overlay {
        mount_overlay(sys, o, &rootfs, idmap)?;
    } else {
        sys.mount(
            Some(&rootfs),
            &rootfs,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
    }
    // Every destination is resolved from a handle on the (now mounted) root.
    let root_dir = Root::open(&rootfs).map_err(|e| InitError::Path {
        path: rootfs.clone(),
        source: e,
    })?;
    let tree = Tree {
        sys,
        root: &root_dir,
        rootfs: &rootfs,
        idmap,
    };
    for m in spec.mounts().as_deref().unwrap_or_default() {
        tree.mount_one(m)?;
    }
    drop(root_dir);
    // pivot_root(".", ".") then detach the old root (runc's trick: no put_old dir needed).
    sys.chdir(&rootfs)?;
    sys.pivot_root(Path::new("."), Path::new("."))?;
    sys.umount2(Path::new("."), MntFlags::MNT_DETACH)?;
    sys.chdir(Path::new("/"))?;
    let linux = spec.linux().as_ref();
    for p in linux
        .and_then(|l| l.masked_paths().clone())
        .unwrap_or_default()
    {
        let p = PathBuf::from(p);
        match fs::symlink_metadata(&p) {
            Ok(md) if md.is_dir() => sys.mount(
                Some(Path::new("tmpfs")),
                &p,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None,
            )?,
            Ok(_) => sys.mount(
                Some(Path::new("/dev/null")),
                &p,
                None,
                MsFlags::MS_BIND,
                None,
            )?,
            Err(_) => {}
        }
    }
    for p in linux
        .and_then(|l| l.readonly_paths().clone())
        .unwrap_or_default()
    {
        let p = PathBuf::from(p);
        if fs::symlink_metadata(&p).is_err() {
            continue;
        }
        sys.mount(Some(&p), &p, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
        sys.mount(
            None,
            &p,
            None,
            MsFlags::MS_BIND
                | MsFlags::MS_REC
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            None,
        )?;
    }
    if root.readonly() == Some(true) {
        sys.mount(
            None,
            Path::new("/"),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None,
        )?;
    }
    Ok(())
}

fn rlimit_resource(t: &str) -> Option<Resource> {
    Some(match t {
        "RLIMIT_NOFILE" => Resource::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => Resource::RLIMIT_NPROC,
        "RLIMIT_CORE" => Resource::RLIMIT_CORE,
        "RLIMIT_STACK" => Resource::RLIMIT_STACK,
        "RLIMIT_MEMLOCK" => Resource::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => Resource::RLIMIT_AS,
        "RLIMIT_CPU" => Resource::RLIMIT_CPU,
        "RLIMIT_FSIZE" => Resource::RLIMIT_FSIZE,
        "RLIMIT_NICE" => Resource::RLIMIT_NICE,
        _ => return None,
    })
}

fn cap_set(v: &Option<HashSet<oci_spec::runtime::Capability>>) -> Result<CapsHashSet, InitError> {
    let mut out = CapsHashSet::new();
    for c in v.iter().flatten() {
        let name = serde_json::to_value(c)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        out.insert(name.parse().map_err(|_| InitError::Cap(name.clone()))?);
    }
    Ok(out)
}

/// rlimits, the seccomp filter, groups/uid/gid, capabilities and no_new_privs (in the order
/// that keeps them valid), then the working directory.
pub fn setup_process(sys: &dyn Syscall, spec: &Spec) -> Result<(), InitError> {
    let p = spec.process().as_ref().ok_or(InitError::Spec("process"))?;
    // The runtime itself runs with umask 077; the container gets its own (022 by default, as
    // runc and crun).
    sys.set_umask(p.user().umask().unwrap_or(0o022));
    for r in p.rlimits().as_deref().unwrap_or_default() {
        let name = serde_json::to_value(r.typ())
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        if let Some(res) = rlimit_resource(&name) {
            sys.setrlimit(res, r.soft(), r.hard())?;
        }
    }
    let caps = p.capabilities().as_ref();
    let bounding = cap_set(&caps.and_then(|c| c.bounding().clone()))?;
    for c in caps::all() {
        if !bounding.contains(&c) {
            sys.drop_bounding(c)?;
        }
    }
    // Seccomp while this process still has CAP_SYS_ADMIN (no_new_privs may not be set); the
    // default profile refuses none of the calls that follow (setgroups, setuid, capset, prctl,
    // chdir, execve).
    if let Some(profile) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        for program in crate::seccomp::compile(profile)? {
            sys.apply_seccomp(&program)?;
        }
    }
    let u = p.user();
    let gids: Vec<u32> = u.additional_gids().clone().unwrap_or_default();
    sys.setgroups(&gids)?;
    sys.set_keep_caps(true)?;
    sys.setgid(u.gid())?;
    sys.setuid(u.uid())?;
    sys.set_keep_caps(false)?;
    sys.set_caps(
        CapSet::Effective,
        &cap_set(&caps.and_then(|c| c.effective().clone()))?,
    )?;
    sys.set_caps(
        CapSet::Permitted,
        &cap_set(&caps.and_then(|c| c.permitted().clone()))?,
    )?;
    sys.set_caps(
        CapSet::Inheritable,
        &cap_set(&caps.and_then(|c| c.inheritable().clone()))?,
    )?;
    if p.no_new_privileges() == Some(true) {
        sys.set_no_new_privs()?;
    }
    if sys.chdir(p.cwd()).is_err() {
        sys.create_dir_all(p.cwd())?;
        sys.chdir(p.cwd())?;
    }
    Ok(())
}

/// Finds `argv0` in the container's PATH (already inside the container's root).
pub fn find_executable(argv0: &str, env: &[String]) -> Result<PathBuf, InitError> {
    if argv0.contains('/') {
        return Ok(PathBuf::from(argv0));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':') {
        let cand = Path::new(dir).join(argv0);
        if let Ok(md) = fs::metadata(&cand) {
            use std::os::unix::fs::PermissionsExt;
            if md.is_file() && md.permissions().mode() & 0o111 != 0 {
                return Ok(cand);
            }
        }
    }
    Err(InitError::NotFound(argv0.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::config::ResolvedProcess;
    use crate::spec::{build_spec, ContainerConfig, Namespaces, Ns, SecurityConfig, SpecInput};
    use crate::sys::RecordingSyscall;

    /// A rootfs directory and a pod file to bind, in a temp dir (the init resolves both
    /// for real, even when the mounts are only recorded).
    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            fs::create_dir(dir.path().join("rootfs")).unwrap();
            fs::write(dir.path().join("hosts"), b"127.0.0.1 localhost\n").unwrap();
            Fixture { dir }
        }
        fn rootfs(&self) -> PathBuf {
            self.dir.path().join("rootfs")
        }
        fn spec(&self, sec: SecurityConfig) -> Spec {
            spec_at(&self.rootfs(), &self.dir.path().join("hosts"), sec)
        }
    }

    fn spec(sec: SecurityConfig) -> Spec {
        spec_at(Path::new("/run/x/rootfs"), Path::new("/pod/hosts"), sec)
    }

    fn spec_at(rootfs: &Path, hosts: &Path, sec: SecurityConfig) -> Spec {
        let p = ResolvedProcess {
            args: vec!["sh".into()],
            env: vec![],
            cwd: "/".into(),
            user: None,
        };
        let cfg = ContainerConfig {
            security: sec,
            ..Default::default()
        };
        build_spec(&SpecInput {
            process: &p,
            user: (1000, 2000),
            config: &cfg,
            rootfs,
            hostname: Some("mypod"),
            namespaces: &Namespaces {
                net: Ns::New,
                ipc: Ns::New,
                uts: Ns::New,
                pid: Ns::New,
                user: Ns::Host,
            },
            etc_files: &[(hosts.to_path_buf(), "/etc/hosts")],
            cgroup: "minicluster/p/c",
            cgroup2_mount: true,
        })
        .unwrap()
    }

    #[test]
    fn rootfs_plan_order() {
        let sys = RecordingSyscall::new();
        let fx = Fixture::new();
        let s = fx.spec(SecurityConfig {
            read_only_root_filesystem: true,
            ..Default::default()
        });
        enter_namespaces(&sys, &s).unwrap();
        let ov = Overlay {
            lower: vec!["/s/2".into(), "/s/1".into()],
            upper: "/u".into(),
            work: "/w".into(),
        };
        setup_rootfs(&sys, &s, Some(&ov), None).unwrap();
        let calls = sys.calls();
        let pos = |needle: &str| {
            calls
                .iter()
                .position(|c| c.contains(needle))
                .unwrap_or_else(|| panic!("{needle} not in {calls:#?}"))
        };
        let r = fx.rootfs().display().to_string();
        assert!(calls[0].starts_with("unshare") && calls[0].contains("CLONE_NEWNET"));
        assert!(calls[0].contains("CLONE_NEWNS"));
        assert_eq!(calls[1], "loopback_up");
        assert!(pos("sethostname mypod") < pos("overlay"));
        assert!(pos("lowerdir=/s/2:/s/1,upperdir=/u,workdir=/w") < pos(&format!("{r}/proc proc")));
        assert!(pos(&format!("{r}/dev/null")) > pos(&format!("{r}/dev tmpfs")));
        // /etc/hosts: a detached copy of the pod file, attached onto the file made in the root.
        assert!(pos(&format!("open_tree {}/hosts", fx.dir.path().display())) < pos("pivot_root"));
        assert!(pos(&format!("move_mount {r}/etc/hosts")) < pos("pivot_root"));
        assert!(fx.rootfs().join("etc/hosts").is_file());
        assert!(pos("pivot_root . .") < pos("umount . "));
        let last = calls.last().unwrap();
        assert!(
            last.contains("MS_REMOUNT") && last.contains("MS_RDONLY") && last.contains(" / "),
            "{last}"
        );
    }

    #[test]
    fn mount_destinations_stay_in_the_root() {
        let sys = RecordingSyscall::new();
        let fx = Fixture::new();
        let outside = tempfile::tempdir().unwrap();
        // The image makes /etc a link to a host directory and /data a link out of the root.
        std::os::unix::fs::symlink(outside.path(), fx.rootfs().join("etc")).unwrap();
        std::os::unix::fs::symlink("../../../../..", fx.rootfs().join("data")).unwrap();
        let mut s = fx.spec(SecurityConfig::default());
        let mut mounts = s.mounts().clone().unwrap();
        let vol = tempfile::tempdir().unwrap();
        mounts.push(
            serde_json::from_value(serde_json::json!({
                "destination": "/data/sub", "type": "bind",
                "source": vol.path(), "options": ["rbind", "ro"],
            }))
            .unwrap(),
        );
        s.set_mounts(Some(mounts));
        setup_rootfs(&sys, &s, None, None).unwrap();
        // Nothing was created outside: /etc/hosts and /data/sub landed inside the root.
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
        let in_root = fx.rootfs().join(outside.path().strip_prefix("/").unwrap());
        assert!(in_root.join("hosts").is_file(), "{}", in_root.display());
        assert!(fx.rootfs().join("sub").is_dir());
        let calls = sys.calls().join("\n");
        assert!(calls.contains("mount_setattr set=0x1"), "{calls}");
    }

    #[test]
    fn subpath_through_a_link_out_of_the_volume_is_refused() {
        let vol = tempfile::tempdir().unwrap();
        fs::create_dir_all(vol.path().join("a/b")).unwrap();
        std::os::unix::fs::symlink("/", vol.path().join("esc")).unwrap();
        std::os::unix::fs::symlink("../..", vol.path().join("a/up")).unwrap();
        std::os::unix::fs::symlink("b", vol.path().join("a/inside")).unwrap();
        use crate::mounts::{open_bind_source, MountError};
        open_bind_source(vol.path(), Some(Path::new("a/b"))).unwrap();
        open_bind_source(vol.path(), Some(Path::new("a/inside"))).unwrap();
        for sub in ["esc", "esc/etc", "a/up", "a/up/x"] {
            let e = open_bind_source(vol.path(), Some(Path::new(sub))).unwrap_err();
            assert!(matches!(e, MountError::SubPath { .. }), "{sub}: {e}");
        }
    }

    #[test]
    fn joined_namespaces_use_setns() {
        let sys = RecordingSyscall::new();
        let mut s = spec(SecurityConfig::default());
        // Join the test process's own namespaces (readable without privileges).
        let mut linux = s.linux().clone().unwrap();
        let nss: Vec<_> = linux
            .namespaces()
            .clone()
            .unwrap()
            .into_iter()
            .map(|mut n| {
                if n.typ() == LinuxNamespaceType::Network {
                    n.set_path(Some("/proc/self/ns/net".into()));
                }
                n
            })
            .collect();
        linux.set_namespaces(Some(nss));
        s.set_linux(Some(linux));
        enter_namespaces(&sys, &s).unwrap();
        let c = sys.calls();
        assert!(
            c[0].starts_with("setns") && c[0].contains("CLONE_NEWNET"),
            "{c:?}"
        );
        assert!(
            !c[1].contains("CLONE_NEWNET") && c[1].contains("CLONE_NEWIPC"),
            "{c:?}"
        );
    }

    #[test]
    fn process_plan_switches_user_then_caps() {
        let sys = RecordingSyscall::new();
        let s = spec(SecurityConfig {
            supplemental_groups: vec![5, 6],
            allow_privilege_escalation: Some(false),
            capabilities_drop: vec!["ALL".into()],
            capabilities_add: vec!["NET_BIND_SERVICE".into()],
            ..Default::default()
        });
        setup_process(&sys, &s).unwrap();
        let c = sys.calls();
        let pos = |n: &str| c.iter().position(|x| x.starts_with(n)).unwrap();
        assert!(c.iter().any(|x| x.starts_with("setrlimit RLIMIT_NOFILE")));
        assert!(c.iter().any(|x| x == "capbset_drop CAP_SYS_ADMIN"));
        assert!(!c.iter().any(|x| x == "capbset_drop CAP_NET_BIND_SERVICE"));
        assert!(pos("capbset_drop") < pos("setuid"));
        assert_eq!(c[pos("setgroups")], "setgroups [5, 6]");
        assert!(pos("keepcaps true") < pos("setgid 2000"));
        assert!(pos("setgid") < pos("setuid 1000"));
        assert!(c
            .iter()
            .any(|x| x == "capset Effective CAP_NET_BIND_SERVICE"));
        assert!(pos("setuid") < pos("capset Effective"));
        assert!(c.iter().any(|x| x == "no_new_privs"));
    }

    #[test]
    fn seccomp_is_loaded_before_the_capabilities_go_and_only_when_asked() {
        let sys = RecordingSyscall::new();
        setup_process(&sys, &spec(SecurityConfig::default())).unwrap();
        assert!(!sys.calls().iter().any(|x| x.starts_with("seccomp")));
        let sys = RecordingSyscall::new();
        let s = spec(SecurityConfig {
            seccomp: crate::spec::SeccompMode::RuntimeDefault,
            ..Default::default()
        });
        setup_process(&sys, &s).unwrap();
        let c = sys.calls();
        let filters: Vec<usize> = (0..c.len())
            .filter(|i| c[*i].starts_with("seccomp"))
            .collect();
        // the EPERM list and clone3's ENOSYS
        assert_eq!(filters.len(), 2, "{c:?}");
        let pos = |n: &str| c.iter().position(|x| x.starts_with(n)).unwrap();
        assert!(
            filters[1] < pos("setgroups") && filters[1] < pos("capset"),
            "{c:?}"
        );
        // privileged containers stay unconfined
        let sys = RecordingSyscall::new();
        let s = spec(SecurityConfig {
            seccomp: crate::spec::SeccompMode::RuntimeDefault,
            privileged: true,
            ..Default::default()
        });
        setup_process(&sys, &s).unwrap();
        assert!(!sys.calls().iter().any(|x| x.starts_with("seccomp")));
    }

    #[test]
    fn failing_call_is_reported() {
        let sys = RecordingSyscall::failing(vec!["pivot_root"]);
        let fx = Fixture::new();
        let e = setup_rootfs(&sys, &fx.spec(SecurityConfig::default()), None, None).unwrap_err();
        assert!(e.to_string().contains("pivot_root"), "{e}");
    }
}
