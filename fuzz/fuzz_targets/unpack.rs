//! Fuzz target: the layer unpacker (`runtime::image::unpack`) on arbitrary tar streams, plain
//! or gzipped (byte 0's low bit), with small caps. Nothing may panic, and nothing outside the
//! layer directory may change: a victim tree beside it (files, a directory, a FIFO, with their
//! own modes and times) is fingerprinted after every input. Seeds in `seeds/unpack` are
//! symlink-aware archives (directory-then-symlink, chains, `..`, links to the victim, hard
//! links, whiteouts) made by `seeds/unpack/make.py`.

#![no_main]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use runtime::image::unpack::{unpack_layer_within, Budget, UnpackLimits};
use runtime::sys::RecordingSyscall;

struct Base {
    dir: PathBuf,
    victim: PathBuf,
    before: Vec<String>,
}

fn fingerprint(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(p) = todo.pop() {
        let md = std::fs::symlink_metadata(&p).expect("victim entry");
        let data = if md.is_file() {
            std::fs::read(&p).unwrap_or_default()
        } else {
            Vec::new()
        };
        out.push(format!(
            "{} {:o} {} {} {:?}",
            p.display(),
            md.mode(),
            md.mtime(),
            md.uid(),
            data
        ));
        if md.is_dir() {
            for e in std::fs::read_dir(&p).expect("victim dir") {
                todo.push(e.expect("entry").path());
            }
        }
    }
    out.sort();
    out
}

fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("fuzz-unpack-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let victim = dir.join("victim");
        std::fs::create_dir_all(victim.join("sub")).expect("victim");
        std::fs::write(victim.join("file"), b"precious").expect("victim file");
        nix::unistd::mkfifo(
            &victim.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .expect("fifo");
        for (p, m) in [("", 0o750), ("sub", 0o700), ("file", 0o640)] {
            std::fs::set_permissions(victim.join(p), std::fs::Permissions::from_mode(m))
                .expect("chmod");
        }
        let before = fingerprint(&victim);
        Base {
            dir,
            victim,
            before,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, tar)) = data.split_first() else {
        return;
    };
    let b = base();
    let dest = b.dir.join("layer");
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::create_dir(&dest).expect("layer dir");
    let mut budget = Budget::new(UnpackLimits {
        max_bytes: 8 << 20,
        max_entries: 10_000,
    });
    let sys = RecordingSyscall::new();
    let _ = if mode & 1 == 1 {
        unpack_layer_within(&sys, flate2::read::GzDecoder::new(tar), &dest, &mut budget)
    } else {
        unpack_layer_within(&sys, tar, &dest, &mut budget)
    };
    assert_eq!(fingerprint(&b.victim), b.before, "the victim tree changed");
    let _ = std::fs::remove_dir_all(&dest);
});
