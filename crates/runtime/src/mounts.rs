//! The container's mount tree, built by its init before pivot_root: the overlay root, the
//! spec's filesystems, and bind mounts made through fds, never through a path looked up twice.
//!
//! Every destination is resolved inside the rootfs ([`Resolve::InRoot`]) and every subPath
//! beneath its volume ([`Resolve::Beneath`]); binds are a detached copy of the source
//! (open_tree), set up while detached (mount_setattr: private, read-only, idmapped for a pod
//! user namespace), then attached onto the resolved destination (move_mount). This closes runc
//! CVE-2021-30465 (a swap between two containers sharing a volume) and CVE-2017-1002101's
//! subPath class. With a pod user namespace the overlay layers are idmapped views too.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::stat::{Mode, SFlag};
use oci_spec::runtime::Mount;
use serde::{Deserialize, Serialize};

use crate::beneath::{proc_fd_path, BeneathError, Resolve, Root};
use crate::sys::{MountAttr, SysError, Syscall, MOUNT_ATTR_IDMAP, MOUNT_ATTR_RDONLY};

/// Why the mount tree could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// A system call failed.
    #[error(transparent)]
    Sys(#[from] SysError),
    /// A path that is opened or created.
    #[error("{path}: {source}")]
    Path {
        /// The path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A mount destination could not be resolved inside the rootfs.
    #[error("mount destination {dest:?}: {source}")]
    Dest {
        /// The destination in the container.
        dest: PathBuf,
        /// Cause.
        #[source]
        source: BeneathError,
    },
    /// A subPath that is missing or leaves its volume.
    #[error("subPath {sub_path:?}: {source}")]
    SubPath {
        /// The subPath.
        sub_path: PathBuf,
        /// Cause.
        #[source]
        source: BeneathError,
    },
    /// The kernel cannot make an idmapped view of a filesystem a pod user namespace needs.
    #[error(
        "{path}: this kernel cannot make idmapped mounts of it, which hostUsers: false needs \
         (Linux 5.19+ for ext4/xfs/btrfs and overlay layers, 6.3+ for tmpfs): {source}"
    )]
    Idmap {
        /// The filesystem's path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: SysError,
    },
}

type Result<T> = std::result::Result<T, MountError>;

fn path_err(path: &Path) -> impl FnOnce(nix::errno::Errno) -> MountError + '_ {
    move |e| MountError::Path {
        path: path.to_path_buf(),
        source: e.into(),
    }
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

/// Mounts the overlay `o` on `target`. With `idmap` (a pod user namespace) the lower layers
/// are idmapped views attached on a private tmpfs next to the upper dir, so what root owns on
/// disk is the pod's root inside. The upper dir stays a plain directory that the runtime gave
/// to the pod's root (overlayfs writes it with the mounter's credentials, host root, which an
/// idmapped upper could not represent).
pub fn mount_overlay(
    sys: &dyn Syscall,
    o: &Overlay,
    target: &Path,
    idmap: Option<BorrowedFd<'_>>,
) -> Result<()> {
    let lowers = match idmap {
        Some(userns) => idmapped_lowers(sys, o, userns)?,
        None => o.lower.clone(),
    };
    let lower: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
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

/// Idmapped views of `o`'s lower layers, attached under `<upper's dir>/idmap` on a tmpfs of
/// this mount namespace (gone with it).
fn idmapped_lowers(sys: &dyn Syscall, o: &Overlay, userns: BorrowedFd<'_>) -> Result<Vec<PathBuf>> {
    let scratch = o.upper.parent().unwrap_or(Path::new("/")).join("idmap");
    std::fs::create_dir_all(&scratch).map_err(|source| MountError::Path {
        path: scratch.clone(),
        source,
    })?;
    sys.mount(
        Some(Path::new("tmpfs")),
        &scratch,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=700"),
    )?;
    let views = Root::open(&scratch).map_err(|source| MountError::Path {
        path: scratch.clone(),
        source,
    })?;
    let mut lower = Vec::new();
    for (i, src) in o.lower.iter().enumerate() {
        let name = format!("l{i}");
        let dir = views
            .mkdir_all(
                Path::new(&name),
                Resolve::NoSymlinks,
                Mode::from_bits_truncate(0o700),
            )
            .map_err(|source| MountError::Dest {
                dest: scratch.join(&name),
                source,
            })?;
        let fd = nix::fcntl::open(src, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(path_err(src))?;
        let tree = sys.clone_mount(fd.as_fd(), false)?;
        sys.mount_setattr(tree.as_fd(), &idmapped(userns), false)
            .map_err(|source| MountError::Idmap {
                path: src.to_path_buf(),
                source,
            })?;
        sys.move_mount(tree.as_fd(), dir.as_fd())?;
        lower.push(scratch.join(name));
    }
    Ok(lower)
}

fn idmapped(userns: BorrowedFd<'_>) -> MountAttr {
    use std::os::fd::AsRawFd;
    MountAttr {
        set: MOUNT_ATTR_IDMAP,
        userns_fd: Some(userns.as_raw_fd()),
        ..MountAttr::default()
    }
}

/// Mount options → flags, data and read-only.
pub(crate) fn mount_flags(opts: &[String]) -> (MsFlags, Vec<String>, bool) {
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
            "relatime" => f |= MsFlags::MS_RELATIME,
            "bind" => f |= MsFlags::MS_BIND,
            "rbind" => f |= MsFlags::MS_BIND | MsFlags::MS_REC,
            "rprivate" | "private" => {}
            other => data.push(other.to_string()),
        }
    }
    (f, data, ro)
}

/// The mount option that carries a volume mount's subPath from the kubelet to the init (never
/// passed to mount(2)): the source is the volume root, the subPath is resolved below it.
pub const SUBPATH_OPTION: &str = "minirun.subpath=";

/// Opens a bind mount's source: the path the kubelet gave (its own directories, trusted), and
/// below it the subPath, which a pod may have planted symlinks in: resolved beneath the volume
/// root ([`Resolve::Beneath`]), so a link out of the volume is refused, and returned as an fd,
/// so what is mounted is what was checked.
pub fn open_bind_source(src: &Path, sub_path: Option<&Path>) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(src, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(path_err(src))?;
    let Some(sub) = sub_path else {
        return Ok(fd);
    };
    Root::from_fd(fd, src)
        .open_at(sub, Resolve::Beneath, OFlag::O_PATH)
        .map_err(|e| MountError::SubPath {
            sub_path: sub.to_path_buf(),
            source: e,
        })
}

/// What [`mount_one`] needs besides the mount itself.
pub struct Tree<'a> {
    /// The system calls.
    pub sys: &'a dyn Syscall,
    /// A handle on the mounted root, every destination is resolved from.
    pub root: &'a Root,
    /// The root's path (for the fallback without the new mount API).
    pub rootfs: &'a Path,
    /// A pod user namespace: binds become idmapped views.
    pub idmap: Option<BorrowedFd<'a>>,
}

impl Tree<'_> {
    fn dest_err(dest: &Path) -> impl FnOnce(BeneathError) -> MountError + '_ {
        move |source| MountError::Dest {
            dest: dest.to_path_buf(),
            source,
        }
    }

    /// The object a bind mount goes onto, resolved inside the rootfs ([`Resolve::InRoot`]: an
    /// image's symlink points inside its own root, never the host's), created when missing (a
    /// directory for a directory source, an empty file otherwise).
    fn bind_target(&self, dest: &Path, dir: bool) -> Result<OwnedFd> {
        match self.root.open_at(dest, Resolve::InRoot, OFlag::O_PATH) {
            Ok(fd) => return Ok(fd),
            Err(e) if !e.is_not_found() => return Err(Self::dest_err(dest)(e)),
            Err(_) => {}
        }
        let mode = Mode::from_bits_truncate(0o755);
        if dir {
            return self
                .root
                .mkdir_all(dest, Resolve::InRoot, mode)
                .map_err(Self::dest_err(dest));
        }
        let (parent, name) = self
            .root
            .parent_of(dest, Resolve::InRoot, Some(mode))
            .map_err(Self::dest_err(dest))?;
        let made = nix::fcntl::openat(
            parent.as_fd(),
            name.as_os_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        );
        made.and_then(|_| {
            nix::fcntl::openat(
                parent.as_fd(),
                name.as_os_str(),
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
        })
        .map_err(path_err(dest))
    }

    /// Bind-mounts the object `src` onto the object `dest`, both fds: a detached copy of the
    /// source (open_tree), made private, read-only and idmapped while still detached
    /// (mount_setattr), then attached onto the resolved destination (move_mount). Kernels
    /// before 5.12 get mount(2) through `/proc/self/fd`, with the read-only remount by path
    /// (and no user namespaces).
    fn bind_fds(
        &self,
        src: BorrowedFd<'_>,
        dest: BorrowedFd<'_>,
        recursive: bool,
        ro: bool,
        dest_path: &Path,
    ) -> Result<()> {
        let sys = self.sys;
        match sys.clone_mount(src, recursive) {
            Ok(tree) => {
                let private = MountAttr {
                    propagation: MsFlags::MS_PRIVATE.bits(),
                    ..MountAttr::default()
                };
                sys.mount_setattr(tree.as_fd(), &private, true)?;
                if let Some(userns) = self.idmap {
                    sys.mount_setattr(tree.as_fd(), &idmapped(userns), recursive)
                        .map_err(|source| MountError::Idmap {
                            path: crate::sys::fd_path(src),
                            source,
                        })?;
                }
                if ro {
                    let rdonly = MountAttr {
                        set: MOUNT_ATTR_RDONLY,
                        ..MountAttr::default()
                    };
                    sys.mount_setattr(tree.as_fd(), &rdonly, false)?;
                }
                sys.move_mount(tree.as_fd(), dest)?;
                Ok(())
            }
            Err(e) if e.source.raw_os_error() == Some(libc::ENOSYS) && self.idmap.is_none() => {
                let mut f = MsFlags::MS_BIND;
                if recursive {
                    f |= MsFlags::MS_REC;
                }
                sys.mount(Some(&proc_fd_path(src)), &proc_fd_path(dest), None, f, None)?;
                let private = MsFlags::MS_PRIVATE | MsFlags::MS_REC;
                sys.mount(None, dest_path, None, private, None)?;
                if ro {
                    let f = f | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
                    sys.mount(None, dest_path, None, f, None)?;
                }
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Mounts one of the spec's mounts (cgroup filesystems are left to the init, which mounts
    /// them once in its cgroup namespace).
    pub fn mount_one(&self, m: &Mount) -> Result<()> {
        let typ = m.typ().clone().unwrap_or_default();
        let mut opts = m.options().clone().unwrap_or_default();
        let sub_path = opts
            .iter()
            .find_map(|o| o.strip_prefix(SUBPATH_OPTION).map(PathBuf::from));
        opts.retain(|o| !o.starts_with(SUBPATH_OPTION));
        let (flags, data, ro) = mount_flags(&opts);
        let src = m.source().clone().unwrap_or_default();
        if typ == "cgroup" || typ == "cgroup2" {
            return Ok(());
        }
        let dest = m.destination();
        if flags.contains(MsFlags::MS_BIND) || typ == "bind" {
            let src_fd = open_bind_source(&src, sub_path.as_deref())?;
            let is_dir = nix::sys::stat::fstat(src_fd.as_fd())
                .map(|st| crate::beneath::is_kind(&st, SFlag::S_IFDIR))
                .unwrap_or(false);
            let dest_fd = self.bind_target(dest, is_dir)?;
            let recursive = flags.contains(MsFlags::MS_REC);
            let dest_path = crate::sys::under(self.rootfs, dest);
            return self.bind_fds(src_fd.as_fd(), dest_fd.as_fd(), recursive, ro, &dest_path);
        }
        let dest_fd = self
            .root
            .mkdir_all(dest, Resolve::InRoot, Mode::from_bits_truncate(0o755))
            .map_err(Self::dest_err(dest))?;
        let f = if ro {
            flags | MsFlags::MS_RDONLY
        } else {
            flags
        };
        let d = data.join(",");
        self.sys.mount(
            Some(&src),
            &proc_fd_path(dest_fd.as_fd()),
            Some(typ.as_str()),
            f,
            (!d.is_empty()).then_some(d.as_str()),
        )?;
        if typ == "tmpfs" && dest == Path::new("/dev") {
            // The fresh tmpfs, looked up again from the root (the lookup crosses onto it).
            let dev = self
                .root
                .open_at(dest, Resolve::InRoot, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                .map_err(Self::dest_err(dest))?;
            make_devices(self.sys, dev.as_fd())?;
        }
        Ok(())
    }
}

/// The standard devices and /dev symlinks, in the container's fresh /dev tmpfs.
fn make_devices(sys: &dyn Syscall, dev: BorrowedFd<'_>) -> Result<()> {
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        sys.mknodat(
            dev,
            OsStr::new(name),
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
        let p = PathBuf::from("/dev").join(link);
        nix::unistd::symlinkat(target, dev, link).map_err(path_err(&p))?;
    }
    Ok(())
}
