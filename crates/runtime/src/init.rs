//! The container init: what the forked child does, from an OCI [`Spec`], before it execs the
//! container's process. Joins or creates namespaces, builds the mount tree on the overlay root,
//! pivots into it, masks paths, then sets rlimits, user and capabilities. Every call goes through
//! [`Syscall`], so the order and content of the plan are unit-tested with the recording fake.

use std::collections::HashSet;
use std::fs;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use caps::{CapSet, CapsHashSet};
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::resource::Resource;
use nix::sys::stat::{Mode, SFlag};
use oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};
use serde::{Deserialize, Serialize};

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
}

/// The overlay root of a container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Overlay {
    /// Lower dirs, top layer first.
    pub lower: Vec<PathBuf>,
    /// Upper dir.
    pub upper: PathBuf,
    /// Work dir.
    pub work: PathBuf,
}

/// Mounts the overlay `o` on `target`.
pub fn mount_overlay(sys: &dyn Syscall, o: &Overlay, target: &Path) -> Result<(), InitError> {
    let lower: Vec<String> = o.lower.iter().map(|p| p.display().to_string()).collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        o.upper.display(),
        o.work.display()
    );
    sys.mount(
        Some(Path::new("overlay")),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(&data),
    )?;
    Ok(())
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
        if matches!(t, LinuxNamespaceType::Pid | LinuxNamespaceType::Mount) {
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

/// Whether the spec asks for a new UTS namespace.
fn new_uts(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::Uts && n.path().is_none())
}

fn mount_flags(opts: &[String]) -> (MsFlags, Vec<String>, bool) {
    let mut f = MsFlags::empty();
    let mut data = Vec::new();
    let mut ro = false;
    for o in opts {
        match o.as_str() {
            "ro" => ro = true,
            "rw" => {}
            "nosuid" => f |= MsFlags::MS_NOSUID,
            "noexec" => f |= MsFlags::MS_NOEXEC,
            "nodev" => f |= MsFlags::MS_NODEV,
            "strictatime" => f |= MsFlags::MS_STRICTATIME,
            "bind" => f |= MsFlags::MS_BIND,
            "rbind" => f |= MsFlags::MS_BIND | MsFlags::MS_REC,
            "rprivate" | "private" => {}
            other => data.push(other.to_string()),
        }
    }
    (f, data, ro)
}

/// Resolves `path` (absolute, in the container) under `rootfs` following symlinks as if
/// `rootfs` were `/`, so an image's symlink cannot point a mount outside its root (a simple
/// securejoin). Missing components are taken literally.
pub fn secure_join(rootfs: &Path, path: &Path) -> PathBuf {
    use std::path::Component;
    let mut parts: Vec<std::ffi::OsString> = Vec::new();
    let mut todo: Vec<std::ffi::OsString> = path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            parts.pop();
            continue;
        }
        let cur: PathBuf = parts.iter().collect();
        let full = rootfs.join(&cur).join(&c);
        match fs::read_link(&full) {
            Ok(target) if hops < 40 => {
                hops += 1;
                if target.is_absolute() {
                    parts.clear();
                }
                for t in target.components().rev() {
                    match t {
                        Component::Normal(n) => todo.push(n.to_os_string()),
                        Component::ParentDir => todo.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => parts.push(c),
        }
    }
    let rel: PathBuf = parts.iter().collect();
    rootfs.join(rel)
}

fn mount_one(sys: &dyn Syscall, rootfs: &Path, m: &Mount) -> Result<(), InitError> {
    let dest = secure_join(rootfs, m.destination());
    let typ = m.typ().clone().unwrap_or_default();
    let opts = m.options().clone().unwrap_or_default();
    let (flags, data, ro) = mount_flags(&opts);
    let src = m.source().clone().unwrap_or_default();
    if typ == "cgroup" || typ == "cgroup2" {
        return Ok(());
    }
    if flags.contains(MsFlags::MS_BIND) || typ == "bind" {
        if fs::metadata(&src).map(|md| md.is_dir()).unwrap_or(true) {
            sys.create_dir_all(&dest)?;
        } else {
            sys.ensure_file(&dest)?;
        }
        let f = flags | MsFlags::MS_BIND;
        sys.mount(Some(&src), &dest, None, f, None)?;
        sys.mount(
            None,
            &dest,
            None,
            MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            None,
        )?;
        if ro {
            sys.mount(
                None,
                &dest,
                None,
                f | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None,
            )?;
        }
        return Ok(());
    }
    sys.create_dir_all(&dest)?;
    let f = if ro {
        flags | MsFlags::MS_RDONLY
    } else {
        flags
    };
    let d = data.join(",");
    sys.mount(
        Some(&src),
        &dest,
        Some(typ.as_str()),
        f,
        (!d.is_empty()).then_some(d.as_str()),
    )?;
    if typ == "tmpfs" && m.destination() == Path::new("/dev") {
        make_devices(sys, &dest)?;
    }
    Ok(())
}

/// The standard devices and /dev symlinks.
fn make_devices(sys: &dyn Syscall, dev: &Path) -> Result<(), InitError> {
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        sys.mknod(
            &dev.join(name),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(major, minor),
        )?;
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
        ("core", "/proc/kcore"),
    ] {
        sys.symlink(Path::new(target), &dev.join(link))?;
    }
    Ok(())
}

/// Builds the mount tree and pivots into it. `overlay` is mounted on the spec's root path first.
pub fn setup_rootfs(
    sys: &dyn Syscall,
    spec: &Spec,
    overlay: Option<&Overlay>,
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
        mount_overlay(sys, o, &rootfs)?;
    } else {
        sys.mount(
            Some(&rootfs),
            &rootfs,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
    }
    for m in spec.mounts().as_deref().unwrap_or_default() {
        mount_one(sys, &rootfs, m)?;
    }
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

    fn spec(sec: SecurityConfig) -> Spec {
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
            rootfs: Path::new("/run/x/rootfs"),
            hostname: Some("mypod"),
            namespaces: &Namespaces {
                net: Ns::New,
                ipc: Ns::New,
                uts: Ns::New,
                pid: Ns::New,
            },
            etc_files: &[(PathBuf::from("/pod/hosts"), "/etc/hosts")],
            cgroup: "minicluster/p/c",
        })
        .unwrap()
    }

    #[test]
    fn secure_join_stays_in_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::os::unix::fs::symlink("/proc/1/root/etc/shadow", r.join("etc/resolv.conf")).unwrap();
        std::os::unix::fs::symlink("../../../..", r.join("up")).unwrap();
        assert_eq!(
            secure_join(r, Path::new("/etc/resolv.conf")),
            r.join("proc/1/root/etc/shadow")
        );
        assert_eq!(secure_join(r, Path::new("/up/x")), r.join("x"));
        assert_eq!(secure_join(r, Path::new("/../../a/b")), r.join("a/b"));
        assert_eq!(secure_join(r, Path::new("/etc/hosts")), r.join("etc/hosts"));
    }

    #[test]
    fn rootfs_plan_order() {
        let sys = RecordingSyscall::new();
        let s = spec(SecurityConfig {
            read_only_root_filesystem: true,
            ..Default::default()
        });
        enter_namespaces(&sys, &s).unwrap();
        let ov = Overlay {
            lower: vec!["/s/2".into(), "/s/1".into()],
            upper: "/u".into(),
            work: "/w".into(),
        };
        setup_rootfs(&sys, &s, Some(&ov)).unwrap();
        let calls = sys.calls();
        let pos = |needle: &str| {
            calls
                .iter()
                .position(|c| c.contains(needle))
                .unwrap_or_else(|| panic!("{needle} not in {calls:#?}"))
        };
        assert!(calls[0].starts_with("unshare") && calls[0].contains("CLONE_NEWNET"));
        assert!(calls[0].contains("CLONE_NEWNS"));
        assert_eq!(calls[1], "loopback_up");
        assert!(pos("sethostname mypod") < pos("overlay"));
        assert!(pos("lowerdir=/s/2:/s/1,upperdir=/u,workdir=/w") < pos("/run/x/rootfs/proc proc"));
        assert!(pos("/run/x/rootfs/dev/null") > pos("/run/x/rootfs/dev tmpfs"));
        assert!(pos("/pod/hosts /run/x/rootfs/etc/hosts") < pos("pivot_root"));
        assert!(pos("pivot_root . .") < pos("umount . "));
        let last = calls.last().unwrap();
        assert!(
            last.contains("MS_REMOUNT") && last.contains("MS_RDONLY") && last.contains(" / "),
            "{last}"
        );
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
        let e = setup_rootfs(&sys, &spec(SecurityConfig::default()), None).unwrap_err();
        assert!(e.to_string().contains("pivot_root"), "{e}");
    }
}
