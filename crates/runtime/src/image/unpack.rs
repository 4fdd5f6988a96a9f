//! Safe unpacking of one image layer (a tar stream) into a snapshot directory.
//!
//! Hostile input is refused, never followed: absolute paths, `..`, writes through symlinks,
//! hardlinks to outside the layer, device nodes and oversized GNU/PAX headers are errors, and
//! an image past its [`UnpackLimits`] (bytes or entries) stops. Every name is resolved through
//! [`crate::beneath`] relative to the layer directory's fd, and every change is made relative
//! to a directory fd or through the new file's fd, never by a path that a later entry could
//! have turned into a symlink.
//! OCI whiteouts become overlayfs whiteouts (`.wh.x` → a 0/0 character device, `.wh..wh..opq` →
//! the `trusted.overlay.opaque` xattr), so the snapshot can be an overlay lower dir directly.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fchmodat, futimens, mkdirat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{linkat, symlinkat};
use tar::EntryType;

use crate::beneath::{is_kind, remove_at, stat_at, BeneathError, Resolve, Root};
use crate::sys::Syscall;

/// Largest GNU long name / long link or PAX extended header accepted.
pub const MAX_HEADER_DATA: u64 = 64 * 1024;

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The entry's path is absolute, contains `..`, or is otherwise unusable.
    #[error("unsafe path {0:?} in tar")]
    UnsafePath(String),
    /// The entry would be written through a symlink.
    #[error("path {0:?} in tar goes through a symlink")]
    ThroughSymlink(String),
    /// A hardlink points outside the layer or to something missing.
    #[error("link {path:?} in tar points to {target:?}, outside the archive or missing")]
    BadHardlink {
        /// The link.
        path: String,
        /// Its target.
        target: String,
    },
    /// Device nodes are not allowed in layers.
    #[error("device node {0:?} in tar refused")]
    DeviceNode(String),
    /// Unsupported entry type.
    #[error("unsupported tar entry type {kind:?} at {path:?}")]
    Unsupported {
        /// The entry path.
        path: String,
        /// Its type byte.
        kind: u8,
    },
    /// A GNU long name or PAX header larger than [`MAX_HEADER_DATA`].
    #[error("oversized tar header ({size} bytes) at {path:?}")]
    HugeHeader {
        /// Entry path.
        path: String,
        /// Declared size.
        size: u64,
    },
    /// Reading the stream failed (truncated, corrupt).
    #[error("reading tar {what}: {source}")]
    Read {
        /// What was read.
        what: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// Writing into the snapshot failed.
    #[error("writing {path}: {source}")]
    Write {
        /// Path written.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// A system call failed.
    #[error(transparent)]
    Sys(#[from] crate::sys::SysError),
    /// The image unpacks to more bytes than its limit (a decompression bomb stops here).
    #[error("image unpacks past the limit of {0} bytes (minirun --max-image-bytes)")]
    TooLarge(u64),
    /// The image holds more entries than its limit.
    #[error("image holds more than {0} entries (minirun --max-image-entries)")]
    TooManyEntries(u64),
}

/// Statistics of one unpack.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnpackStats {
    /// Entries written.
    pub entries: u64,
    /// Bytes of file data written.
    pub bytes: u64,
}

fn rd(what: &str) -> impl FnOnce(io::Error) -> UnpackError + '_ {
    move |source| UnpackError::Read {
        what: what.to_string(),
        source,
    }
}

fn wr(path: &Path) -> impl FnOnce(io::Error) -> UnpackError + '_ {
    move |source| UnpackError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Turns an entry name into a safe relative path (no root, no `..`); `None` for the root itself.
pub fn sanitize(name: &[u8]) -> Result<Option<PathBuf>, UnpackError> {
    let s = String::from_utf8_lossy(name).to_string();
    if name.contains(&0) {
        return Err(UnpackError::UnsafePath(s));
    }
    use std::os::unix::ffi::OsStrExt;
    let p = Path::new(std::ffi::OsStr::from_bytes(name));
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) | Component::ParentDir => {
                return Err(UnpackError::UnsafePath(s))
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Ok(None);
    }
    Ok(Some(out))
}

fn read_limited<R: Read>(r: &mut R, size: u64, path: &str) -> Result<Vec<u8>, UnpackError> {
    if size > MAX_HEADER_DATA {
        return Err(UnpackError::HugeHeader {
            path: path.to_string(),
            size,
        });
    }
    let mut v = Vec::with_capacity(size as usize);
    r.take(size).read_to_end(&mut v).map_err(rd(path))?;
    while v.last() == Some(&0) {
        v.pop();
    }
    Ok(v)
}

/// PAX records `len key=value\n` → (path, linkpath).
fn parse_pax(data: &[u8]) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let (mut path, mut link) = (None, None);
    let mut rest = data;
    while !rest.is_empty() {
        let Some(sp) = rest.iter().position(|b| *b == b' ') else {
            break;
        };
        let Some(len) = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            break;
        };
        if len <= sp + 1 || len > rest.len() {
            break;
        }
        let rec = &rest[sp + 1..len - 1];
        if let Some(eq) = rec.iter().position(|b| *b == b'=') {
            match &rec[..eq] {
                b"path" => path = Some(rec[eq + 1..].to_vec()),
                b"linkpath" => link = Some(rec[eq + 1..].to_vec()),
                _ => {}
            }
        }
        rest = &rest[len..];
    }
    (path, link)
}

/// Walks a tar stream entry by entry, resolving GNU long names/links and PAX `path`/`linkpath`
/// with a size limit; `f` gets the full name, the link target and the entry (positioned at its
/// data).
pub fn walk<R: Read>(
    r: R,
    mut f: impl FnMut(Vec<u8>, Option<Vec<u8>>, &mut tar::Entry<'_, R>) -> Result<(), UnpackError>,
) -> Result<(), UnpackError> {
    let mut archive = tar::Archive::new(r);
    let entries = archive.entries().map_err(rd("archive"))?.raw(true);
    let mut long_name: Option<Vec<u8>> = None;
    let mut long_link: Option<Vec<u8>> = None;
    for entry in entries {
        let mut entry = entry.map_err(rd("entry header"))?;
        let kind = entry.header().entry_type();
        let size = entry.header().entry_size().map_err(rd("entry size"))?;
        let raw_name = entry.path_bytes().to_vec();
        let shown = String::from_utf8_lossy(&raw_name).to_string();
        match kind {
            EntryType::GNULongName => {
                long_name = Some(read_limited(&mut entry, size, &shown)?);
                continue;
            }
            EntryType::GNULongLink => {
                long_link = Some(read_limited(&mut entry, size, &shown)?);
                continue;
            }
            EntryType::XHeader => {
                let data = read_limited(&mut entry, size, &shown)?;
                let (p, l) = parse_pax(&data);
                if p.is_some() {
                    long_name = p;
                }
                if l.is_some() {
                    long_link = l;
                }
                continue;
            }
            EntryType::XGlobalHeader => {
                read_limited(&mut entry, size, &shown)?;
                continue;
            }
            _ => {}
        }
        let name = long_name.take().unwrap_or(raw_name);
        let link = long_link
            .take()
            .or_else(|| entry.link_name_bytes().map(|l| l.to_vec()));
        f(name, link, &mut entry)?;
    }
    Ok(())
}

/// Caps on what one image may unpack to, all its layers together (`minirun
/// --max-image-bytes/--max-image-entries`). The defaults are generous: larger than the largest
/// common images (CUDA and PyTorch images unpack to 10-20 GB), small enough that a
/// decompression bomb stops long before it fills a node's disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Decompressed bytes of tar stream (headers, data and padding).
    pub max_bytes: u64,
    /// Tar entries.
    pub max_entries: u64,
}

impl Default for UnpackLimits {
    fn default() -> Self {
        UnpackLimits {
            max_bytes: 32 << 30,
            max_entries: 2_000_000,
        }
    }
}

/// What is left of an image's [`UnpackLimits`] while its layers are unpacked one by one.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    limits: UnpackLimits,
    bytes: u64,
    entries: u64,
}

impl Budget {
    /// A full budget.
    pub fn new(limits: UnpackLimits) -> Self {
        Budget {
            limits,
            bytes: 0,
            entries: 0,
        }
    }
}

/// Counts the decompressed bytes read and fails the read that would pass the budget, so a
/// bomb is cut off inside the decompressor, before its output reaches the disk.
struct Metered<'a, R> {
    inner: R,
    budget: &'a mut Budget,
    over: bool,
}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self
            .budget
            .limits
            .max_bytes
            .saturating_sub(self.budget.bytes);
        if left == 0 {
            // One more byte would be over: look ahead without consuming past the cap.
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            self.over = true;
            return Err(io::Error::other("image size limit"));
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.budget.bytes += n as u64;
        Ok(n)
    }
}

fn beneath_err(shown: &str) -> impl FnOnce(BeneathError) -> UnpackError + '_ {
    move |e| match e {
        BeneathError::Symlink { .. } | BeneathError::Escapes { .. } => {
            UnpackError::ThroughSymlink(shown.to_string())
        }
        BeneathError::Io { path, source, .. } => UnpackError::Write { path, source },
    }
}

fn at_err<'a>(
    dir: BorrowedFd<'a>,
    name: &'a OsStr,
) -> impl FnOnce(nix::errno::Errno) -> UnpackError + 'a {
    move |e| UnpackError::Write {
        path: crate::sys::fd_path(dir).join(name),
        source: e.into(),
    }
}

fn timespec(secs: u64) -> TimeSpec {
    TimeSpec::new(i64::try_from(secs).unwrap_or(i64::MAX), 0)
}

/// Unpacks one layer with a fresh budget of `UnpackLimits::default()`.
pub fn unpack_layer<R: Read>(
    sys: &dyn Syscall,
    r: R,
    dest: &Path,
) -> Result<UnpackStats, UnpackError> {
    unpack_layer_within(sys, r, dest, &mut Budget::new(UnpackLimits::default()))
}

/// Unpacks the (already decompressed) tar stream `r` into the directory `dest`, charging
/// `budget`. Every name is resolved relative to `dest`'s fd with no symlink allowed on the way
/// ([`Resolve::NoSymlinks`]), and every change (create, remove, owner, mode, time, xattr) is
/// made through a directory fd and a final name or through the new file's own fd, so no entry,
/// earlier or later, can make it act outside `dest`.
pub fn unpack_layer_within<R: Read>(
    sys: &dyn Syscall,
    r: R,
    dest: &Path,
    budget: &mut Budget,
) -> Result<UnpackStats, UnpackError> {
    let root = Root::open(dest).map_err(wr(dest))?;
    let mut stats = UnpackStats::default();
    let mut dirs: BTreeMap<PathBuf, (u32, u64)> = BTreeMap::new();
    let max_entries = budget.limits.max_entries;
    let mut entries = budget.entries;
    let mut metered = Metered {
        inner: r,
        budget,
        over: false,
    };
    let walked = walk(&mut metered, |name, link, entry| {
        entries += 1;
        if entries > max_entries {
            return Err(UnpackError::TooManyEntries(max_entries));
        }
        unpack_entry(sys, &root, &mut dirs, &mut stats, name, link, entry)
    });
    let (over, limit) = (metered.over, metered.budget.limits.max_bytes);
    metered.budget.entries = entries;
    match walked {
        Err(UnpackError::Read { .. }) if over => return Err(UnpackError::TooLarge(limit)),
        other => other?,
    }
    // Directory modes and times last, deepest first, so read-only directories do not block
    // their contents. Each is looked up again from the root: one a later entry replaced (by a
    // symlink, say) is no longer a directory below the root and is skipped.
    let mut order: Vec<_> = dirs.into_iter().collect();
    order.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (rel, (mode, mtime)) in order {
        let Ok(fd) = root.open_at(
            &rel,
            Resolve::NoSymlinks,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        ) else {
            continue;
        };
        let path = || dest.join(&rel);
        fchmod(fd.as_fd(), Mode::from_bits_truncate(mode)).map_err(|e| UnpackError::Write {
            path: path(),
            source: e.into(),
        })?;
        futimens(fd.as_fd(), &TimeSpec::UTIME_OMIT, &timespec(mtime)).map_err(|e| {
            UnpackError::Write {
                path: path(),
                source: e.into(),
            }
        })?;
    }
    Ok(stats)
}

/// Forgets the recorded directories at and below `rel` (they were removed).
fn forget_dirs(dirs: &mut BTreeMap<PathBuf, (u32, u64)>, rel: &Path) {
    let gone: Vec<PathBuf> = dirs
        .range(rel.to_path_buf()..)
        .take_while(|(p, _)| p.starts_with(rel))
        .map(|(p, _)| p.clone())
        .collect();
    for p in gone {
        dirs.remove(&p);
    }
}

#[allow(clippy::too_many_arguments)]
fn unpack_entry<R: Read>(
    sys: &dyn Syscall,
    root: &Root,
    dirs: &mut BTreeMap<PathBuf, (u32, u64)>,
    stats: &mut UnpackStats,
    name: Vec<u8>,
    link: Option<Vec<u8>>,
    entry: &mut tar::Entry<'_, R>,
) -> Result<(), UnpackError> {
    let kind = entry.header().entry_type();
    let size = entry.header().entry_size().map_err(rd("entry size"))?;
    let shown = String::from_utf8_lossy(&name).to_string();
    let Some(rel) = sanitize(&name)? else {
        return Ok(()); // the layer root itself
    };
    let header = entry.header();
    let mode = header.mode().map_err(rd(&shown))? & 0o7777;
    let uid = header.uid().unwrap_or(0) as u32;
    let gid = header.gid().unwrap_or(0) as u32;
    let mtime = header.mtime().unwrap_or(0);
    let (dir, file_name) = root
        .parent_of(
            &rel,
            Resolve::NoSymlinks,
            Some(Mode::from_bits_truncate(0o755)),
        )
        .map_err(beneath_err(&shown))?;
    let (dir, fname) = (dir.as_fd(), file_name.as_os_str());
    let stamp = |what: &OsStr| {
        utimensat(
            dir,
            what,
            &TimeSpec::UTIME_OMIT,
            &timespec(mtime),
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(at_err(dir, what))
    };
    // OCI whiteouts.
    if fname.as_bytes() == b".wh..wh..opq" {
        sys.fsetxattr(dir, "trusted.overlay.opaque", b"y")?;
        stats.entries += 1;
        return Ok(());
    }
    if let Some(hidden) = fname.as_bytes().strip_prefix(b".wh.") {
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(UnpackError::UnsafePath(shown));
        }
        let hidden = OsStr::from_bytes(hidden);
        remove_at(dir, hidden).map_err(at_err(dir, hidden))?;
        forget_dirs(dirs, &rel.with_file_name(hidden));
        sys.mknodat(dir, hidden, SFlag::S_IFCHR, Mode::empty(), 0)?;
        stats.entries += 1;
        return Ok(());
    }
    let existing = stat_at(dir, fname).map_err(at_err(dir, fname))?;
    if kind != EntryType::Directory || !existing.is_some_and(|st| is_kind(&st, SFlag::S_IFDIR)) {
        remove_at(dir, fname).map_err(at_err(dir, fname))?;
        forget_dirs(dirs, &rel);
    }
    match kind {
        EntryType::Directory => {
            match mkdirat(dir, fname, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                Err(e) => return Err(at_err(dir, fname)(e)),
            }
            sys.fchownat(dir, fname, uid, gid)?;
            dirs.insert(rel, (mode, mtime));
        }
        EntryType::Regular | EntryType::Continuous => {
            let fd = nix::fcntl::openat(
                dir,
                fname,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(at_err(dir, fname))?;
            let mut f = fs::File::from(fd);
            let n = io::copy(&mut entry.take(size), &mut f).map_err(rd(&shown))?;
            if n != size {
                return Err(UnpackError::Read {
                    what: shown,
                    source: io::Error::from(io::ErrorKind::UnexpectedEof),
                });
            }
            stats.bytes += n;
            // Owner first: chown clears set-id bits, the mode puts them back.
            sys.fchownat(dir, fname, uid, gid)?;
            fchmod(f.as_fd(), Mode::from_bits_truncate(mode)).map_err(at_err(dir, fname))?;
            futimens(f.as_fd(), &TimeSpec::UTIME_OMIT, &timespec(mtime))
                .map_err(at_err(dir, fname))?;
        }
        EntryType::Symlink => {
            let Some(link) = link else {
                return Err(UnpackError::UnsafePath(shown));
            };
            symlinkat(OsStr::from_bytes(&link), dir, fname).map_err(at_err(dir, fname))?;
            sys.fchownat(dir, fname, uid, gid)?;
            stamp(fname)?;
        }
        EntryType::Link => {
            let bad = || UnpackError::BadHardlink {
                path: shown.clone(),
                target: String::from_utf8_lossy(link.as_deref().unwrap_or_default()).to_string(),
            };
            let lrel = match link.as_deref().map(sanitize) {
                Some(Ok(Some(p))) if p != rel => p,
                _ => return Err(bad()),
            };
            let (sdir, sname) = root
                .parent_of(&lrel, Resolve::NoSymlinks, None)
                .map_err(|_| bad())?;
            match stat_at(sdir.as_fd(), &sname) {
                Ok(Some(st)) if !is_kind(&st, SFlag::S_IFDIR) => {}
                _ => return Err(bad()),
            }
            linkat(
                sdir.as_fd(),
                sname.as_os_str(),
                dir,
                fname,
                AtFlags::empty(),
            )
            .map_err(at_err(dir, fname))?;
        }
        EntryType::Fifo => {
            sys.mknodat(
                dir,
                fname,
                SFlag::S_IFIFO,
                Mode::from_bits_truncate(0o600),
                0,
            )?;
            sys.fchownat(dir, fname, uid, gid)?;
            // A FIFO is never opened: its mode and time are set by name, relative to `dir`,
            // on the node this entry just made.
            fchmodat(
                dir,
                fname,
                Mode::from_bits_truncate(mode),
                FchmodatFlags::FollowSymlink,
            )
            .map_err(at_err(dir, fname))?;
            stamp(fname)?;
        }
        EntryType::Char | EntryType::Block => return Err(UnpackError::DeviceNode(shown)),
        other => {
            return Err(UnpackError::Unsupported {
                path: shown,
                kind: other.as_byte(),
            })
        }
    }
    stats.entries += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::RecordingSyscall;

    #[test]
    fn sanitize_rejects_escapes() {
        assert!(sanitize(b"/etc/passwd").is_err());
        assert!(sanitize(b"a/../../b").is_err());
        assert!(sanitize(b"..").is_err());
        assert_eq!(sanitize(b"./a/./b").unwrap(), Some(PathBuf::from("a/b")));
        assert_eq!(sanitize(b"./").unwrap(), None);
    }

    #[test]
    fn pax_parsing() {
        let rec = b"18 path=some/name\n14 linkpath=x\n";
        let (p, l) = parse_pax(rec);
        assert_eq!(p.as_deref(), Some(&b"some/name"[..]));
        assert_eq!(l.as_deref(), Some(&b"x"[..]));
    }

    fn tar_with(entries: &[(&str, EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            {
                let raw = h.as_old_mut();
                raw.name[..name.len()].copy_from_slice(name.as_bytes());
                if let Some(l) = link {
                    raw.linkname[..l.len()].copy_from_slice(l.as_bytes());
                }
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn whiteouts_use_the_syscall_layer() {
        let dir = tempfile::tempdir().unwrap();
        let t = tar_with(&[
            ("etc/", EntryType::Directory, b"", None),
            ("etc/.wh..wh..opq", EntryType::Regular, b"", None),
            ("etc/.wh.gone", EntryType::Regular, b"", None),
            ("etc/file", EntryType::Regular, b"hello", None),
        ]);
        let sys = RecordingSyscall::new();
        let st = unpack_layer(&sys, &t[..], dir.path()).unwrap();
        assert_eq!(st.bytes, 5);
        let calls = sys.calls().join("\n");
        assert!(calls.contains("trusted.overlay.opaque y"), "{calls}");
        assert!(calls.contains("etc/gone SFlag(S_IFCHR) 0 0"), "{calls}");
        assert_eq!(fs::read(dir.path().join("etc/file")).unwrap(), b"hello");
    }

    #[test]
    fn hostile_entries_refused() {
        let cases: Vec<Vec<u8>> = vec![
            tar_with(&[("/abs", EntryType::Regular, b"x", None)]),
            tar_with(&[("a/../../x", EntryType::Regular, b"x", None)]),
            // `l` is a symlink to /tmp already in the snapshot (see below)
            tar_with(&[("l/x", EntryType::Regular, b"x", None)]),
            tar_with(&[("h", EntryType::Link, b"", Some("../../etc/passwd"))]),
            tar_with(&[("dev", EntryType::Char, b"", None)]),
            tar_with(&[("blk", EntryType::Block, b"", None)]),
        ];
        for (i, t) in cases.iter().enumerate() {
            let dir = tempfile::tempdir().unwrap();
            std::os::unix::fs::symlink("/tmp", dir.path().join("l")).unwrap();
            let sys = RecordingSyscall::new();
            assert!(
                unpack_layer(&sys, &t[..], dir.path()).is_err(),
                "case {i} accepted"
            );
        }
    }

    #[test]
    fn huge_long_name_refused() {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(EntryType::GNULongName);
        h.set_size(1 << 30);
        h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        h.set_cksum();
        let mut data = h.as_bytes().to_vec();
        data.extend(vec![b'a'; 4096]);
        let dir = tempfile::tempdir().unwrap();
        let e = unpack_layer(&RecordingSyscall::new(), &data[..], dir.path()).unwrap_err();
        assert!(matches!(e, UnpackError::HugeHeader { .. }), "{e}");
    }

    #[test]
    fn truncated_stream_refused() {
        let t = tar_with(&[("f", EntryType::Regular, &[7u8; 5000], None)]);
        let dir = tempfile::tempdir().unwrap();
        assert!(unpack_layer(&RecordingSyscall::new(), &t[..2048], dir.path()).is_err());
    }
}
