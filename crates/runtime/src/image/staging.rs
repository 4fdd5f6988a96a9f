//! Staging of an image archive: the outer tarball (OCI image layout or docker save) extracted
//! into a private directory as plain files, its symlinks kept as aliases rather than created,
//! so nothing in the archive can place a file outside the staging directory. A pull writes its
//! layout straight into a staging directory ([`Staged::from_dir`]).

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::store::{ImageError, Result};
use super::unpack::{self, UnpackError};

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The extracted outer archive: regular files by sanitized path, plus symlink aliases.
pub(super) struct Staged {
    pub(super) dir: PathBuf,
    files: BTreeSet<PathBuf>,
    aliases: HashMap<PathBuf, PathBuf>,
}

impl Staged {
    /// The staged file `name`, through the archive's symlink aliases.
    pub(super) fn get(&self, name: &str) -> Option<PathBuf> {
        let mut p = unpack::sanitize(name.as_bytes()).ok()??;
        for _ in 0..8 {
            if self.files.contains(&p) {
                return Some(self.dir.join(&p));
            }
            p = self.aliases.get(&p)?.clone();
        }
        None
    }
}

impl Staged {
    /// A layout this process wrote itself into `dir` (a pull): every regular file below it.
    pub(super) fn from_dir(dir: &Path) -> Result<Staged> {
        let mut files = BTreeSet::new();
        let mut todo = vec![PathBuf::new()];
        while let Some(rel) = todo.pop() {
            let here = dir.join(&rel);
            for e in fs::read_dir(&here).map_err(io_err(&here))? {
                let e = e.map_err(io_err(&here))?;
                let t = e.file_type().map_err(io_err(&here))?;
                let r = rel.join(e.file_name());
                if t.is_dir() {
                    todo.push(r);
                } else if t.is_file() {
                    files.insert(r);
                }
            }
        }
        Ok(Staged {
            dir: dir.to_path_buf(),
            files,
            aliases: HashMap::new(),
        })
    }
}

/// Extracts the outer archive `tarball` (an OCI layout or a docker save) into `dir`.
pub(super) fn stage(tarball: &Path, dir: &Path) -> Result<Staged> {
    let f = fs::File::open(tarball).map_err(io_err(tarball))?;
    let mut staged = Staged {
        dir: dir.to_path_buf(),
        files: BTreeSet::new(),
        aliases: HashMap::new(),
    };
    let arch = |source| ImageError::Archive {
        path: tarball.to_path_buf(),
        source,
    };
    unpack::walk(io::BufReader::new(f), |name, link, entry| {
        let Some(rel) = unpack::sanitize(&name)? else {
            return Ok(());
        };
        match entry.header().entry_type() {
            tar::EntryType::Directory => Ok(()),
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                // Files are stored flat under a hash of their name: no directory tricks.
                let flat = dir.join(hex::encode(Sha256::digest(
                    rel.as_os_str().as_encoded_bytes(),
                )));
                let mut out = fs::File::create(&flat).map_err(|source| UnpackError::Write {
                    path: flat.clone(),
                    source,
                })?;
                let size = entry.header().entry_size().unwrap_or(0);
                let n = io::copy(&mut entry.take(size), &mut out).map_err(|source| {
                    UnpackError::Read {
                        what: rel.display().to_string(),
                        source,
                    }
                })?;
                if n != size {
                    return Err(UnpackError::Read {
                        what: rel.display().to_string(),
                        source: io::ErrorKind::UnexpectedEof.into(),
                    });
                }
                out.flush().ok();
                staged.files.insert(rel);
                Ok(())
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let link = link.unwrap_or_default();
                let target = if entry.header().entry_type() == tar::EntryType::Symlink {
                    let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
                    let joined = parent.join(String::from_utf8_lossy(&link).as_ref());
                    normalize_inside(&joined)
                } else {
                    unpack::sanitize(&link).ok().flatten()
                };
                match target {
                    Some(t) => {
                        staged.aliases.insert(rel, t);
                        Ok(())
                    }
                    None => Err(UnpackError::BadHardlink {
                        path: rel.display().to_string(),
                        target: String::from_utf8_lossy(&link).to_string(),
                    }),
                }
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                Err(UnpackError::DeviceNode(rel.display().to_string()))
            }
            _ => Ok(()),
        }
    })
    .map_err(arch)?;
    // Map names to the flat files.
    let files = std::mem::take(&mut staged.files);
    for rel in files {
        let flat = dir.join(hex::encode(Sha256::digest(
            rel.as_os_str().as_encoded_bytes(),
        )));
        let real = dir.join(&rel);
        if let Some(parent) = real.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        fs::rename(&flat, &real).map_err(io_err(&real))?;
        staged.files.insert(rel);
    }
    Ok(staged)
}

/// Normalises a relative path with `..` without leaving its root; `None` if it would.
fn normalize_inside(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_inside_stays_inside() {
        assert_eq!(
            normalize_inside(Path::new("a/../b")),
            Some(PathBuf::from("b"))
        );
        assert_eq!(normalize_inside(Path::new("a/../../b")), None);
    }
}
