//! Hostile image layers, built in the test (never checked-in blobs): for each one, a victim
//! tree outside the store must stay unchanged byte for byte, mode for mode and mtime for mtime
//! (and owner for owner), whether the image is refused or loads. Covers the classes of issue 14:
//! a directory then a symlink of the same name, symlink chains, writes, whiteouts and opaque
//! markers through symlinks (same layer and a later one), hard links out or through symlinks,
//! `..` and absolute names, FIFOs and device nodes as link targets, decompression bombs, and
//! blobs whose bytes do not match their digests.

mod common;

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use runtime::image::unpack::UnpackLimits;
use runtime::image::ImageStore;
use runtime::sys::LinuxSyscall;
use sha2::{Digest, Sha256};
use tar::EntryType::{self, *};

/// One raw tar entry: name, type, data, link name, mode.
struct E<'a>(&'a str, EntryType, &'a [u8], &'a str, u32);

fn raw_tar(entries: &[E<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for E(name, kind, data, link, mode) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(*mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_000_000_000);
        // Long names (absolute victim paths) go in a GNU long-name entry.
        if name.len() >= 100 || link.len() >= 100 {
            for (kind, value) in [(GNULongName, name), (GNULongLink, link)] {
                if value.len() < 100 {
                    continue;
                }
                let mut l = tar::Header::new_gnu();
                l.set_entry_type(kind);
                l.set_size(value.len() as u64 + 1);
                l.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
                l.set_cksum();
                out.extend_from_slice(l.as_bytes());
                out.extend_from_slice(value.as_bytes());
                out.push(0);
                out.resize(out.len().div_ceil(512) * 512, 0);
            }
        }
        {
            let raw = h.as_old_mut();
            let n = name.len().min(99);
            raw.name[..n].copy_from_slice(&name.as_bytes()[..n]);
            let l = link.len().min(99);
            raw.linkname[..l].copy_from_slice(&link.as_bytes()[..l]);
        }
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(b).unwrap();
    gz.finish().unwrap()
}

/// How to spoil an image's blobs.
#[derive(Clone, Copy, PartialEq)]
enum Spoil {
    Nothing,
    /// A byte of the compressed layer flipped after its digest was taken.
    LayerBytes,
    /// The config names a diff id that is not the layer's.
    DiffId,
}

/// An OCI layout tarball with `layers` (uncompressed tars, bottom first), gzipped.
fn oci(layers: &[Vec<u8>], spoil: Spoil, name: &str) -> Vec<u8> {
    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut diff_ids = Vec::new();
    let mut descs = Vec::new();
    for l in layers {
        let mut blob = gzip(l);
        let digest = sha(&blob);
        if spoil == Spoil::LayerBytes {
            let n = blob.len() / 2;
            blob[n] ^= 0xff;
        }
        diff_ids.push(if spoil == Spoil::DiffId {
            sha(b"something else")
        } else {
            sha(l)
        });
        descs.push(format!(
            r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{digest}","size":{}}}"#,
            blob.len()
        ));
        blobs.push((digest, blob));
    }
    let ids: Vec<String> = diff_ids.iter().map(|d| format!("\"{d}\"")).collect();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["sh"]}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        ids.join(",")
    );
    let manifest = format!(
        r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{}]}}"#,
        sha(config.as_bytes()),
        config.len(),
        descs.join(",")
    );
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{},"annotations":{{"io.containerd.image.name":"{name}"}}}}]}}"#,
        sha(manifest.as_bytes()),
        manifest.len()
    );
    blobs.push((sha(config.as_bytes()), config.into_bytes()));
    blobs.push((sha(manifest.as_bytes()), manifest.into_bytes()));
    let names: Vec<String> = blobs
        .iter()
        .map(|(d, _)| format!("blobs/sha256/{}", d.trim_start_matches("sha256:")))
        .collect();
    let mut entries = vec![
        E(
            "oci-layout",
            Regular,
            br#"{"imageLayoutVersion":"1.0.0"}"#,
            "",
            0o644,
        ),
        E("index.json", Regular, index.as_bytes(), "", 0o644),
    ];
    for ((_, data), n) in blobs.iter().zip(&names) {
        entries.push(E(n, Regular, data, "", 0o644));
    }
    raw_tar(&entries)
}

/// Everything observable about a tree: per path, its type, mode, owner, mtime (seconds and
/// nanoseconds), size, content of regular files and target of symlinks. FIFOs and devices are
/// stat'ed, never opened.
fn fingerprint(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(p) = todo.pop() {
        let md = std::fs::symlink_metadata(&p).unwrap();
        let ft = md.file_type();
        let extra = if ft.is_file() {
            hex::encode(Sha256::digest(std::fs::read(&p).unwrap()))
        } else if ft.is_symlink() {
            std::fs::read_link(&p).unwrap().display().to_string()
        } else {
            String::new()
        };
        out.push(format!(
            "{} {:o} {}:{} {}.{} {} {extra}",
            p.display(),
            md.mode(),
            md.uid(),
            md.gid(),
            md.mtime(),
            md.mtime_nsec(),
            md.len()
        ));
        if ft.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                todo.push(e.unwrap().path());
            }
        }
    }
    out.sort();
    out
}

/// A victim tree outside the store: files, a directory, a FIFO, modes and times of its own.
fn victim(base: &Path) -> PathBuf {
    let v = base.join("victim");
    std::fs::create_dir_all(v.join("dir")).unwrap();
    std::fs::write(v.join("file"), b"precious").unwrap();
    std::fs::write(v.join("dir/inner"), b"inner").unwrap();
    nix::unistd::mkfifo(
        &v.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    for (p, mode) in [
        ("", 0o750),
        ("dir", 0o700),
        ("file", 0o640),
        ("dir/inner", 0o600),
    ] {
        std::fs::set_permissions(v.join(p), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    // Old, distinct times everywhere (FIFO included, without opening it).
    for p in ["fifo", "dir/inner", "file", "dir", ""] {
        let t = nix::sys::time::TimeSpec::new(123_456_789, 42);
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &v.join(p),
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    }
    v
}

#[test]
fn hostile_layers_never_change_anything_outside_the_store() {
    if !common::root_or_skip("hostile_layers_never_change_anything_outside_the_store") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let v = victim(base.path());
    let vs = v.display().to_string();
    let vfile = v.join("file").display().to_string();
    let vfifo = v.join("fifo").display().to_string();
    let vdir = v.join("dir").display().to_string();
    let dotdot = format!("../../../../../../../..{vs}");
    let d = |n: &'static str| E(n, Directory, b"", "", 0o777);
    let f = |n: &'static str| E(n, Regular, b"pwned", "", 0o777);
    let l = |n: &'static str, t: &'static str| E(n, Symlink, b"", t, 0o777);
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let (vs, vfile, vfifo, vdir, dotdot) =
        (leak(vs), leak(vfile), leak(vfifo), leak(vdir), leak(dotdot));
    // (name, layers, must the load fail?)
    let cases: Vec<(&str, Vec<Vec<u8>>, bool)> = vec![
        // The reported hole: x/ (0777) then x -> victim; the final chmod/mtime pass must not
        // follow it. A legal archive: it loads, and the victim is untouched.
        (
            "dir then symlink",
            vec![raw_tar(&[d("x/"), l("x", vs)])],
            false,
        ),
        (
            "nested dir then symlink",
            vec![raw_tar(&[d("a/"), d("a/x/"), l("a/x", vdir), l("a", vs)])],
            false,
        ),
        (
            "dir then symlink to a fifo",
            vec![raw_tar(&[d("x/"), l("x", vfifo)])],
            false,
        ),
        (
            "dir then symlink to a device",
            vec![raw_tar(&[d("x/"), l("x", "/dev/zero")])],
            false,
        ),
        (
            "dir then symlink to a file",
            vec![raw_tar(&[d("x/"), l("x", vfile)])],
            false,
        ),
        (
            "symlink chain",
            vec![raw_tar(&[l("a", "b"), l("b", vs), f("a/pwned")])],
            true,
        ),
        (
            "write through symlink",
            vec![raw_tar(&[l("s", vs), f("s/pwned")])],
            true,
        ),
        (
            "write through relative symlink",
            vec![raw_tar(&[l("s", dotdot), f("s/pwned")])],
            true,
        ),
        (
            "replace file through symlink",
            vec![raw_tar(&[l("s", vs), f("s/file")])],
            true,
        ),
        (
            "directory through symlink",
            vec![raw_tar(&[l("s", vs), d("s/new/")])],
            true,
        ),
        (
            "whiteout through symlink",
            vec![raw_tar(&[
                l("s", vs),
                E("s/.wh.file", Regular, b"", "", 0o644),
            ])],
            true,
        ),
        (
            "opaque through symlink",
            vec![raw_tar(&[
                l("s", vs),
                E("s/.wh..wh..opq", Regular, b"", "", 0o644),
            ])],
            true,
        ),
        (
            "fifo through symlink",
            vec![raw_tar(&[l("s", vs), E("s/p", Fifo, b"", "", 0o666)])],
            true,
        ),
        (
            "hardlink through symlink",
            vec![raw_tar(&[l("s", vs), E("h", Link, b"", "s/file", 0o644)])],
            true,
        ),
        (
            "hardlink absolute",
            vec![raw_tar(&[E("h", Link, b"", vfile, 0o644)])],
            true,
        ),
        (
            "hardlink dot-dot",
            vec![raw_tar(&[E(
                "h",
                Link,
                b"",
                leak(format!("../../../..{vfile}")),
                0o644,
            )])],
            true,
        ),
        (
            "absolute name",
            vec![raw_tar(&[E(
                leak(format!("{vs}/abs")),
                Regular,
                b"x",
                "",
                0o644,
            )])],
            true,
        ),
        (
            "dot-dot name",
            vec![raw_tar(&[E(
                leak(format!("{dotdot}/dd")),
                Regular,
                b"x",
                "",
                0o644,
            )])],
            true,
        ),
        (
            "char device",
            vec![raw_tar(&[E("null", Char, b"", "", 0o666)])],
            true,
        ),
        (
            "block device",
            vec![raw_tar(&[E("sda", Block, b"", "", 0o666)])],
            true,
        ),
        // Later layers: each layer has its own snapshot, so a link in one layer is not there
        // when the next is unpacked; these load, and touch nothing outside.
        (
            "write through symlink of a lower layer",
            vec![raw_tar(&[l("s", vs)]), raw_tar(&[f("s/pwned")])],
            false,
        ),
        (
            "whiteout through symlink of a lower layer",
            vec![
                raw_tar(&[l("s", vs)]),
                raw_tar(&[E("s/.wh.file", Regular, b"", "", 0o644)]),
            ],
            false,
        ),
        (
            "whiteout of the symlink itself",
            vec![raw_tar(&[l("s", vs), E(".wh.s", Regular, b"", "", 0o644)])],
            false,
        ),
        (
            "opaque dir replaced by symlink",
            vec![raw_tar(&[
                d("o/"),
                E("o/.wh..wh..opq", Regular, b"", "", 0o644),
                l("o", vs),
            ])],
            false,
        ),
    ];
    let store_root = base.path().join("store");
    let store = ImageStore::open(&store_root, Box::new(LinuxSyscall)).unwrap();
    let before = fingerprint(&v);
    let zero_before = dev_zero();
    let tarball = base.path().join("in.tar");
    for (i, (name, layers, refused)) in cases.iter().enumerate() {
        std::fs::write(
            &tarball,
            oci(layers, Spoil::Nothing, &format!("hostile:{i}")),
        )
        .unwrap();
        let res = store.load(&tarball, None);
        eprintln!(
            "{name}: {:?}",
            res.as_ref().map(|_| "loaded").map_err(|e| e.to_string())
        );
        assert_eq!(res.is_err(), *refused, "{name}: {res:?}");
        assert_eq!(fingerprint(&v), before, "{name}: the victim tree changed");
        assert_eq!(dev_zero(), zero_before, "{name}: /dev/zero changed");
        if *refused {
            assert!(
                store.resolve(&format!("hostile:{i}")).is_err(),
                "{name}: recorded"
            );
        }
        // Nothing is ever half-staged.
        assert_eq!(
            std::fs::read_dir(store_root.join("tmp")).unwrap().count(),
            0,
            "{name}"
        );
    }
    // The dir-then-symlink image unpacked to a symlink, not a directory.
    let img = store.resolve("hostile:0").unwrap();
    let snap = store.snapshot_dir(&img.layers[0].diff_id);
    assert_eq!(std::fs::read_link(snap.join("x")).unwrap(), v);
}

#[test]
fn spoiled_blobs_and_bombs_are_refused_before_they_fill_anything() {
    if !common::root_or_skip("spoiled_blobs_and_bombs_are_refused_before_they_fill_anything") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let v = victim(base.path());
    let before = fingerprint(&v);
    let store_root = base.path().join("store");
    let mut store = ImageStore::open(&store_root, Box::new(LinuxSyscall)).unwrap();
    let limit = 4 << 20;
    store.set_limits(UnpackLimits {
        max_bytes: limit,
        max_entries: 1000,
    });
    let small = raw_tar(&[E("bin/sh", Regular, b"#!", "", 0o755)]);
    // 64 MiB of zeros in one file: a few dozen KiB of gzip.
    let zeros = vec![0u8; 64 << 20];
    let bomb = raw_tar(&[E("zeros", Regular, &zeros, "", 0o644)]);
    drop(zeros);
    // Under the byte cap per layer, over it together.
    let third = vec![1u8; (limit / 3) as usize + 1024];
    let thirds: Vec<Vec<u8>> = (0..4)
        .map(|i| raw_tar(&[E(["a", "b", "c", "d"][i], Regular, &third, "", 0o644)]))
        .collect();
    let many: Vec<E<'_>> = (0..1500)
        .map(|i| {
            E(
                Box::leak(format!("f{i}").into_boxed_str()),
                Regular,
                b"",
                "",
                0o644,
            )
        })
        .collect();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "layer bytes do not match the digest",
            oci(std::slice::from_ref(&small), Spoil::LayerBytes, "spoiled:1"),
            "digest mismatch",
        ),
        (
            "diff id does not match the layer",
            oci(std::slice::from_ref(&small), Spoil::DiffId, "spoiled:2"),
            "digest mismatch",
        ),
        (
            "gzip bomb",
            oci(&[bomb], Spoil::Nothing, "bomb:1"),
            "past the limit",
        ),
        (
            "layers that together pass the cap",
            oci(&thirds, Spoil::Nothing, "bomb:2"),
            "past the limit",
        ),
        (
            "too many entries",
            oci(&[raw_tar(&many)], Spoil::Nothing, "bomb:3"),
            "more than 1000 entries",
        ),
    ];
    let tarball = base.path().join("in.tar");
    for (name, data, want) in &cases {
        std::fs::write(&tarball, data).unwrap();
        let err = store.load(&tarball, None).expect_err(name).to_string();
        eprintln!("{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
        assert_eq!(fingerprint(&v), before, "{name}");
        assert!(store.list().unwrap().is_empty(), "{name}: recorded");
        assert_eq!(
            std::fs::read_dir(store_root.join("tmp")).unwrap().count(),
            0,
            "{name}"
        );
        // Nothing near the bomb's size stayed on disk.
        let used: u64 = walk_size(&store_root);
        assert!(used < 2 * limit, "{name}: {used} bytes left in the store");
    }
    // The same store loads a good image.
    std::fs::write(&tarball, oci(&[small], Spoil::Nothing, "good:1")).unwrap();
    store.load(&tarball, None).unwrap();
}

/// Mode, owner and times of /dev/zero (a device a link may point at; never opened).
fn dev_zero() -> (u32, u32, i64, i64) {
    let md = std::fs::symlink_metadata("/dev/zero").unwrap();
    (md.mode(), md.uid(), md.mtime(), md.ctime())
}

fn walk_size(dir: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let md = e.metadata().unwrap();
        n += if md.is_dir() {
            walk_size(&e.path())
        } else {
            md.len()
        };
    }
    n
}
