//! Safe unpacking of one image layer (a tar stream) into a snapshot directory.
//!
//! Hostile input is refused, never followed: absolute paths, `..`, writes through symlinks,
//! hardlinks to outside the layer, device nodes and oversized GNU/PAX headers are errors.
//! OCI whiteouts become overlayfs whiteouts (`.wh.x` → a 0/0 character device, `.wh..wh..opq` →
//! the `trusted.overlay.opaque` xattr), so the snapshot can be an overlay lower dir directly.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{Mode, SFlag};
use tar::EntryType;

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

/// Refuses when any existing parent of `rel` under `root` is a symlink (or not a directory).
fn check_parents(root: &Path, rel: &Path) -> Result<(), UnpackError> {
    let mut cur = root.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for c in &comps[..comps.len().saturating_sub(1)] {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(UnpackError::ThroughSymlink(rel.display().to_string()))
            }
            Ok(m) if !m.is_dir() => {
                return Err(UnpackError::ThroughSymlink(rel.display().to_string()))
            }
            Ok(_) => {}
            Err(_) => {
                fs::create_dir(&cur).map_err(wr(&cur))?;
                fs::set_permissions(&cur, fs::Permissions::from_mode(0o755)).map_err(wr(&cur))?;
            }
        }
    }
    Ok(())
}

/// Removes whatever is at `path` (not following symlinks) unless it is a directory and
/// `keep_dir` is set.
fn clear(path: &Path, keep_dir: bool) -> Result<(), UnpackError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            if !keep_dir {
                fs::remove_dir_all(path).map_err(wr(path))?;
            }
        }
        Ok(_) => fs::remove_file(path).map_err(wr(path))?,
        Err(_) => {}
    }
    Ok(())
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

/// Unpacks the (already decompressed) tar stream `r` into `dest`, which must exist.
pub fn unpack_layer<R: Read>(
    sys: &dyn Syscall,
    r: R,
    dest: &Path,
) -> Result<UnpackStats, UnpackError> {
    let mut stats = UnpackStats::default();
    let mut dirs: Vec<(PathBuf, u32, u64)> = Vec::new();
    walk(r, |name, link, entry| {
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
        check_parents(dest, &rel)?;
        let target = dest.join(&rel);
        let file_name = rel
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default();
        // OCI whiteouts.
        if file_name == ".wh..wh..opq" {
            let dir = target.parent().unwrap_or(dest);
            sys.lsetxattr(dir, "trusted.overlay.opaque", b"y")?;
            stats.entries += 1;
            return Ok(());
        }
        if let Some(hidden) = file_name.strip_prefix(".wh.") {
            if hidden.is_empty() || hidden == "." || hidden == ".." {
                return Err(UnpackError::UnsafePath(shown));
            }
            let wpath = target.with_file_name(hidden);
            clear(&wpath, false)?;
            sys.mknod(&wpath, SFlag::S_IFCHR, Mode::empty(), 0)?;
            stats.entries += 1;
            return Ok(());
        }
        match kind {
            EntryType::Directory => {
                clear(&target, true)?;
                if fs::symlink_metadata(&target).is_err() {
                    fs::create_dir(&target).map_err(wr(&target))?;
                }
                sys.lchown(&target, uid, gid)?;
                dirs.push((target, mode, mtime));
            }
            EntryType::Regular | EntryType::Continuous => {
                clear(&target, false)?;
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map_err(wr(&target))?;
                let n = io::copy(&mut entry.take(size), &mut f).map_err(rd(&shown))?;
                if n != size {
                    return Err(UnpackError::Read {
                        what: shown,
                        source: io::Error::from(io::ErrorKind::UnexpectedEof),
                    });
                }
                stats.bytes += n;
                drop(f);
                sys.lchown(&target, uid, gid)?;
                fs::set_permissions(&target, fs::Permissions::from_mode(mode))
                    .map_err(wr(&target))?;
                set_mtime(&target, mtime);
            }
            EntryType::Symlink => {
                let Some(link) = link else {
                    return Err(UnpackError::UnsafePath(shown));
                };
                clear(&target, false)?;
                use std::os::unix::ffi::OsStrExt;
                sys.symlink(Path::new(std::ffi::OsStr::from_bytes(&link)), &target)?;
                sys.lchown(&target, uid, gid)?;
            }
            EntryType::Link => {
                let bad = || UnpackError::BadHardlink {
                    path: shown.clone(),
                    target: String::from_utf8_lossy(link.as_deref().unwrap_or_default())
                        .to_string(),
                };
                let lrel = match link.as_deref().map(sanitize) {
                    Some(Ok(Some(p))) => p,
                    _ => return Err(bad()),
                };
                check_parents(dest, &lrel).map_err(|_| bad())?;
                let src = dest.join(&lrel);
                match fs::symlink_metadata(&src) {
                    Ok(m) if !m.is_dir() => {}
                    _ => return Err(bad()),
                }
                clear(&target, false)?;
                fs::hard_link(&src, &target).map_err(wr(&target))?;
            }
            EntryType::Fifo => {
                clear(&target, false)?;
                sys.mknod(&target, SFlag::S_IFIFO, Mode::from_bits_truncate(mode), 0)?;
                sys.lchown(&target, uid, gid)?;
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
    })?;
    // Directory modes last, deepest first, so read-only dirs do not block their contents.
    for (dir, mode, mtime) in dirs.into_iter().rev() {
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).map_err(wr(&dir))?;
        set_mtime(&dir, mtime);
    }
    Ok(stats)
}

fn set_mtime(path: &Path, mtime: u64) {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
    if let Ok(f) = fs::File::open(path) {
        let _ = f.set_modified(t);
    }
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
