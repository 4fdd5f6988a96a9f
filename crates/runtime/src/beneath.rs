//! Path resolution that cannot leave a root directory: every lookup starts at a directory fd
//! and goes through openat2(2) with `RESOLVE_NO_SYMLINKS`, `RESOLVE_BENEATH` or
//! `RESOLVE_IN_ROOT`, so neither a symlink nor `..` planted by an image or a pod can steer it
//! to the host. On a kernel without openat2 (before 5.6) every mode falls back to a walk of
//! `O_NOFOLLOW` opens that refuses any symlink, which is stricter, never looser.
//!
//! Used by the layer unpacker ([`crate::image::unpack`]), the init's mount destinations and
//! subPath sources ([`crate::init`]), and the kubelet's subPath checks. The model is runc's
//! filepath-securejoin / libpathrs and upstream kubelet's `doSafeOpen` (subpath_linux.go).
//! Like [`crate::sys`], this is one of the runtime's system-level modules.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};

/// How symlinks met on the way are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    /// No symlink anywhere on the path (layer unpacking: an archive never writes through one).
    NoSymlinks,
    /// Symlinks are followed while they stay below the root; one that would leave it (an
    /// absolute target, too many `..`) is refused (subPath, as upstream after CVE-2017-1002101).
    Beneath,
    /// Symlinks are resolved as if the root were `/` (mount destinations inside a rootfs, as
    /// runc's securejoin does).
    InRoot,
}

/// Why a path could not be resolved below its root.
#[derive(Debug, thiserror::Error)]
pub enum BeneathError {
    /// A symlink on the path, where none is allowed.
    #[error("{path:?} goes through a symlink")]
    Symlink {
        /// The path, relative to the root.
        path: PathBuf,
    },
    /// The path (through a symlink or `..`) would resolve outside the root.
    #[error("{path:?} resolves outside {root}")]
    Escapes {
        /// The path, relative to the root.
        path: PathBuf,
        /// The root, for the message.
        root: String,
    },
    /// Any other failure of the lookup or of the operation.
    #[error("{path:?} under {root}: {source}")]
    Io {
        /// The path, relative to the root.
        path: PathBuf,
        /// The root, for the message.
        root: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

impl BeneathError {
    /// Whether the path (or one of its parents) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, BeneathError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// Result of a lookup below a root.
pub type Result<T> = std::result::Result<T, BeneathError>;

/// Set once openat2 answered ENOSYS: every later lookup walks instead.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// How many times a lookup is retried when openat2 reports a concurrent rename (EAGAIN).
const RETRIES: usize = 32;

/// A directory every lookup is relative to.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

impl Root {
    /// Opens the root directory itself. The root's own path is trusted (the caller chose it);
    /// nothing below it is.
    pub fn open(path: &Path) -> io::Result<Root> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// A root from a directory fd already open (its path is only used in messages).
    pub fn from_fd(fd: OwnedFd, path: impl Into<PathBuf>) -> Root {
        Root {
            fd,
            path: path.into(),
        }
    }

    /// The root's path, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, rel: &Path, how: Resolve, e: Errno) -> BeneathError {
        let path = rel.to_path_buf();
        let root = self.path.display().to_string();
        match e {
            Errno::ELOOP if how == Resolve::NoSymlinks => BeneathError::Symlink { path },
            Errno::EXDEV => BeneathError::Escapes { path, root },
            e => BeneathError::Io {
                path,
                root,
                source: e.into(),
            },
        }
    }

    /// Opens `rel` below the root with `flags` (`O_CLOEXEC` is added, and `O_NOCTTY` unless
    /// `O_PATH`). A
    /// trailing symlink is followed only in the modes that follow symlinks; with
    /// [`Resolve::NoSymlinks`] it is refused, also for `O_PATH`.
    pub fn open_at(&self, rel: &Path, how: Resolve, flags: OFlag) -> Result<OwnedFd> {
        let comps = components(rel, how).map_err(|e| self.error(rel, how, e))?;
        // openat2 refuses O_PATH with any flag beyond O_DIRECTORY, O_NOFOLLOW and O_CLOEXEC.
        let flags = if flags.contains(OFlag::O_PATH) {
            flags | OFlag::O_CLOEXEC
        } else {
            flags | OFlag::O_CLOEXEC | OFlag::O_NOCTTY
        };
        self.lookup(&comps, how, flags)
            .map_err(|e| self.error(rel, how, e))
    }

    fn lookup(&self, comps: &[&OsStr], how: Resolve, flags: OFlag) -> nix::Result<OwnedFd> {
        if !NO_OPENAT2.load(Ordering::Relaxed) {
            let path = join(comps);
            let resolve = match how {
                Resolve::NoSymlinks => ResolveFlag::RESOLVE_NO_SYMLINKS,
                Resolve::Beneath => ResolveFlag::RESOLVE_BENEATH,
                Resolve::InRoot => ResolveFlag::RESOLVE_IN_ROOT,
            } | ResolveFlag::RESOLVE_NO_MAGICLINKS;
            for _ in 0..RETRIES {
                let open = OpenHow::new().flags(flags).resolve(resolve);
                match nix::fcntl::openat2(self.fd.as_fd(), path.as_os_str(), open) {
                    Err(Errno::EAGAIN) => continue,
                    Err(Errno::ENOSYS) => {
                        NO_OPENAT2.store(true, Ordering::Relaxed);
                        return self.walk(comps, flags);
                    }
                    Ok(fd) if flags.contains(OFlag::O_PATH) && how == Resolve::NoSymlinks => {
                        return refuse_symlink(fd);
                    }
                    other => return other,
                }
            }
            return Err(Errno::EAGAIN);
        }
        self.walk(comps, flags)
    }

    /// The fallback: one `O_NOFOLLOW` open per component, refusing every symlink.
    fn walk(&self, comps: &[&OsStr], flags: OFlag) -> nix::Result<OwnedFd> {
        let dir = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let Some((last, parents)) = comps.split_last() else {
            return nix::fcntl::openat(self.fd.as_fd(), ".", flags, Mode::empty());
        };
        let mut cur: Option<OwnedFd> = None;
        for c in parents {
            let at = cur.as_ref().map(|f| f.as_fd()).unwrap_or(self.fd.as_fd());
            cur = Some(
                nix::fcntl::openat(at, *c, dir, Mode::empty()).map_err(|e| symlink_or(at, c, e))?,
            );
        }
        let at = cur.as_ref().map(|f| f.as_fd()).unwrap_or(self.fd.as_fd());
        let fd = nix::fcntl::openat(at, *last, flags | OFlag::O_NOFOLLOW, Mode::empty())
            .map_err(|e| symlink_or(at, last, e))?;
        if flags.contains(OFlag::O_PATH) {
            return refuse_symlink(fd);
        }
        Ok(fd)
    }

    /// Opens (creating when missing, like `mkdir -p`) the directory `rel` and returns a
    /// read-only handle on it, usable as the dir fd of `*at` calls and for `fsetxattr`.
    /// Components that exist are resolved with `how`; each one it creates gets exactly `mode`
    /// (whatever the umask) and is opened with `O_NOFOLLOW`, so one swapped for a symlink
    /// after its creation is refused rather than followed.
    pub fn mkdir_all(&self, rel: &Path, how: Resolve, mode: Mode) -> Result<OwnedFd> {
        self.mkdir_all_from(rel, how, mode, 0)
            .map_err(|e| self.error(rel, how, e))
    }

    fn mkdir_all_from(
        &self,
        rel: &Path,
        how: Resolve,
        mode: Mode,
        hops: u32,
    ) -> nix::Result<OwnedFd> {
        let dir = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let comps = components(rel, how)?;
        if comps.iter().any(|c| c.as_bytes() == b"..") {
            return Err(Errno::EXDEV);
        }
        // The deepest part that exists.
        let mut have = comps.len();
        let mut cur = loop {
            match self.lookup(&comps[..have], how, dir) {
                Ok(fd) => break fd,
                Err(Errno::ENOENT) if have > 0 => have -= 1,
                Err(e) => return Err(e),
            }
        };
        for (i, c) in comps.iter().enumerate().skip(have) {
            let made = match nix::sys::stat::mkdirat(cur.as_fd(), *c, mode) {
                Ok(()) => true,
                Err(Errno::EEXIST) => false,
                Err(e) => return Err(e),
            };
            match nix::fcntl::openat(cur.as_fd(), *c, dir | OFlag::O_NOFOLLOW, Mode::empty()) {
                Ok(fd) => cur = fd,
                Err(e) => match symlink_or(cur.as_fd(), c, e) {
                    // A dangling link where symlinks are followed: go on at its target, by
                    // the same rules (so it stays inside), as securejoin's MkdirAll does.
                    Errno::ELOOP if how != Resolve::NoSymlinks && hops < 40 => {
                        let next = self.through_link(cur.as_fd(), c, &comps[i + 1..], how)?;
                        return self.mkdir_all_from(&next, how, mode, hops + 1);
                    }
                    e => return Err(e),
                },
            }
            if made {
                nix::sys::stat::fchmod(cur.as_fd(), mode)?;
            }
        }
        Ok(cur)
    }

    /// The path, relative to the root, that the symlink `name` in the directory `dir` names
    /// followed by `rest`: absolute targets start again at the root ([`Resolve::InRoot`]) or
    /// are refused; `..` stops at the root (in the root) or is refused past it (beneath).
    fn through_link(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        rest: &[&OsStr],
        how: Resolve,
    ) -> nix::Result<PathBuf> {
        let target = PathBuf::from(nix::fcntl::readlinkat(dir, name)?);
        let real =
            |fd: BorrowedFd<'_>| std::fs::read_link(proc_fd_path(fd)).map_err(|_| Errno::EIO);
        let base = real(dir)?;
        let root = real(self.fd.as_fd())?;
        let mut out: Vec<OsString> = Vec::new();
        if !target.is_absolute() {
            let inside = base.strip_prefix(&root).map_err(|_| Errno::EXDEV)?;
            out.extend(inside.components().map(|c| c.as_os_str().to_os_string()));
        } else if how != Resolve::InRoot {
            return Err(Errno::EXDEV);
        }
        for c in target
            .components()
            .map(|c| c.as_os_str())
            .chain(rest.iter().copied())
        {
            match c.as_bytes() {
                b"/" | b"." => {}
                b".." if out.pop().is_some() || how == Resolve::InRoot => {}
                b".." => return Err(Errno::EXDEV),
                _ => out.push(c.to_os_string()),
            }
        }
        Ok(out.iter().collect())
    }

    /// The directory holding `rel`'s last component (created when `create` gives a mode), as a
    /// read-only handle, and that component's name, so the caller acts on the name relative to
    /// a handle that can no longer move. `rel` must name something below the root.
    pub fn parent_of(
        &self,
        rel: &Path,
        how: Resolve,
        create: Option<Mode>,
    ) -> Result<(OwnedFd, OsString)> {
        let comps = components(rel, how).map_err(|e| self.error(rel, how, e))?;
        let Some((name, parents)) = comps.split_last() else {
            return Err(self.error(rel, how, Errno::EINVAL));
        };
        if name.as_bytes() == b".." {
            return Err(self.error(rel, how, Errno::EXDEV));
        }
        let parent: PathBuf = join(parents);
        let fd = match create {
            Some(mode) => self.mkdir_all(&parent, how, mode)?,
            None => self.open_at(&parent, how, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?,
        };
        Ok((fd, name.to_os_string()))
    }
}

/// `rel`'s normal components; `..` is kept for openat2 to judge, a root or prefix is dropped
/// only in [`Resolve::InRoot`] (container paths are absolute there).
fn components(rel: &Path, how: Resolve) -> nix::Result<Vec<&OsStr>> {
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir
                if how != Resolve::NoSymlinks && !NO_OPENAT2.load(Ordering::Relaxed) =>
            {
                out.push(OsStr::new(".."))
            }
            Component::ParentDir => return Err(Errno::EXDEV),
            Component::RootDir if how == Resolve::InRoot => {}
            Component::RootDir | Component::Prefix(_) => return Err(Errno::EXDEV),
        }
    }
    Ok(out)
}

fn join(comps: &[&OsStr]) -> PathBuf {
    if comps.is_empty() {
        return PathBuf::from(".");
    }
    comps.iter().collect()
}

/// ELOOP when `name` in `dir` is a symlink (what an `O_NOFOLLOW | O_DIRECTORY` open of one
/// reports as ENOTDIR), else `e`.
fn symlink_or(dir: BorrowedFd<'_>, name: &OsStr, e: Errno) -> Errno {
    if e == Errno::ENOTDIR
        && matches!(stat_at(dir, name), Ok(Some(st)) if is_kind(&st, SFlag::S_IFLNK))
    {
        return Errno::ELOOP;
    }
    e
}

/// An `O_PATH | O_NOFOLLOW` open returns the symlink itself: refuse it.
fn refuse_symlink(fd: OwnedFd) -> nix::Result<OwnedFd> {
    let st = nix::sys::stat::fstat(fd.as_fd())?;
    if is_kind(&st, SFlag::S_IFLNK) {
        return Err(Errno::ELOOP);
    }
    Ok(fd)
}

/// Whether a stat result is of file type `kind`.
pub fn is_kind(st: &FileStat, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == kind
}

/// lstat of `name` in `dir`; `None` when nothing is there.
pub fn stat_at(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<Option<FileStat>> {
    match nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes whatever `name` in `dir` is, directories with everything below them, never
/// following a symlink (each level is opened `O_NOFOLLOW` relative to its parent's fd).
pub fn remove_at(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<()> {
    use nix::unistd::{unlinkat, UnlinkatFlags};
    let Some(st) = stat_at(dir, name)? else {
        return Ok(());
    };
    if !is_kind(&st, SFlag::S_IFDIR) {
        return unlinkat(dir, name, UnlinkatFlags::NoRemoveDir);
    }
    let fd = nix::fcntl::openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let sub = fd
        .try_clone()
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))?;
    let mut listing = nix::dir::Dir::from_fd(fd)?;
    let names: Vec<OsString> = listing
        .iter()
        .filter_map(|e| e.ok())
        .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_os_string())
        .filter(|n| n != "." && n != "..")
        .collect();
    drop(listing);
    for n in names {
        remove_at(sub.as_fd(), &n)?;
    }
    unlinkat(dir, name, UnlinkatFlags::RemoveDir)
}

/// The `/proc/self/fd/N` path of an open fd: how mount(2) is pointed at an object resolved
/// through an fd, so a swap between the check and the mount cannot redirect it.
pub fn proc_fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("a/b")).unwrap();
        fs::write(t.path().join("a/b/f"), b"x").unwrap();
        symlink("/", t.path().join("abs")).unwrap();
        symlink("../..", t.path().join("a/up")).unwrap();
        symlink("b/f", t.path().join("a/rel")).unwrap();
        symlink("/a/b", t.path().join("inroot")).unwrap();
        t
    }

    fn read(fd: OwnedFd) -> String {
        let mut s = String::new();
        io::Read::read_to_string(&mut fs::File::from(fd), &mut s).unwrap();
        s
    }

    #[test]
    fn no_symlinks_refuses_every_link() {
        let t = tree();
        let r = Root::open(t.path()).unwrap();
        let fd = r
            .open_at(Path::new("a/b/f"), Resolve::NoSymlinks, OFlag::O_RDONLY)
            .unwrap();
        assert_eq!(read(fd), "x");
        for p in ["abs", "abs/etc", "a/rel", "a/up/x"] {
            let e = r
                .open_at(Path::new(p), Resolve::NoSymlinks, OFlag::O_PATH)
                .unwrap_err();
            assert!(matches!(e, BeneathError::Symlink { .. }), "{p}: {e}");
        }
        assert!(r
            .open_at(Path::new("../x"), Resolve::NoSymlinks, OFlag::O_PATH)
            .is_err());
    }

    #[test]
    fn beneath_follows_links_that_stay_inside_only() {
        let t = tree();
        let r = Root::open(t.path()).unwrap();
        let fd = r
            .open_at(Path::new("a/rel"), Resolve::Beneath, OFlag::O_RDONLY)
            .unwrap();
        assert_eq!(read(fd), "x");
        for p in ["abs", "abs/etc/passwd", "a/up/x", "inroot"] {
            let e = r
                .open_at(Path::new(p), Resolve::Beneath, OFlag::O_PATH)
                .unwrap_err();
            assert!(matches!(e, BeneathError::Escapes { .. }), "{p}: {e}");
        }
    }

    #[test]
    fn in_root_resolves_absolute_links_against_the_root() {
        let t = tree();
        let r = Root::open(t.path()).unwrap();
        let fd = r
            .open_at(Path::new("/inroot/f"), Resolve::InRoot, OFlag::O_RDONLY)
            .unwrap();
        assert_eq!(read(fd), "x");
        // `/` through the link is the root itself, not the host's root.
        let fd = r
            .open_at(Path::new("abs/a/b/f"), Resolve::InRoot, OFlag::O_RDONLY)
            .unwrap();
        assert_eq!(read(fd), "x");
        assert!(r
            .open_at(
                Path::new("abs/etc/passwd"),
                Resolve::InRoot,
                OFlag::O_RDONLY
            )
            .unwrap_err()
            .is_not_found());
    }

    #[test]
    fn mkdir_all_creates_inside_and_never_through_a_link() {
        let t = tree();
        let r = Root::open(t.path()).unwrap();
        r.mkdir_all(
            Path::new("a/b/c/d"),
            Resolve::NoSymlinks,
            Mode::from_bits_truncate(0o755),
        )
        .unwrap();
        assert!(t.path().join("a/b/c/d").is_dir());
        // In the root: the absolute link is re-rooted, the directory lands inside.
        r.mkdir_all(
            Path::new("/abs/made"),
            Resolve::InRoot,
            Mode::from_bits_truncate(0o755),
        )
        .unwrap();
        assert!(t.path().join("made").is_dir());
        assert!(!Path::new("/made").exists());
        let e = r
            .mkdir_all(
                Path::new("abs/x"),
                Resolve::NoSymlinks,
                Mode::from_bits_truncate(0o755),
            )
            .unwrap_err();
        assert!(matches!(e, BeneathError::Symlink { .. }), "{e}");
    }

    #[test]
    fn parent_of_splits_the_last_name() {
        let t = tree();
        let r = Root::open(t.path()).unwrap();
        let (dir, name) = r
            .parent_of(Path::new("a/b/new"), Resolve::NoSymlinks, None)
            .unwrap();
        assert_eq!(name, "new");
        nix::sys::stat::mkdirat(
            dir.as_fd(),
            name.as_os_str(),
            Mode::from_bits_truncate(0o700),
        )
        .unwrap();
        assert!(t.path().join("a/b/new").is_dir());
        assert!(r
            .parent_of(Path::new(""), Resolve::NoSymlinks, None)
            .is_err());
    }

    #[test]
    fn remove_at_removes_trees_without_following_links() {
        let t = tree();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("keep"), b"k").unwrap();
        symlink(outside.path(), t.path().join("a/b/out")).unwrap();
        let r = Root::open(t.path()).unwrap();
        remove_at(r.fd.as_fd(), OsStr::new("a")).unwrap();
        assert!(!t.path().join("a").exists());
        assert_eq!(fs::read(outside.path().join("keep")).unwrap(), b"k");
        remove_at(r.fd.as_fd(), OsStr::new("missing")).unwrap();
    }

    #[test]
    fn the_walk_is_as_strict_as_no_symlinks() {
        let t = tree();
        let r = Root::open(t.path()).unwrap();
        let comps = |p: &'static str| -> Vec<&'static OsStr> {
            Path::new(p).components().map(|c| c.as_os_str()).collect()
        };
        let fd = r.walk(&comps("a/b/f"), OFlag::O_RDONLY).unwrap();
        assert_eq!(read(fd), "x");
        assert_eq!(
            r.walk(&comps("abs/etc"), OFlag::O_PATH).unwrap_err(),
            Errno::ELOOP
        );
        assert_eq!(
            r.walk(&comps("a/rel"), OFlag::O_PATH).unwrap_err(),
            Errno::ELOOP
        );
        assert_eq!(
            r.walk(&comps("a/rel"), OFlag::O_RDONLY).unwrap_err(),
            Errno::ELOOP
        );
    }
}
