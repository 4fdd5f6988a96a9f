#!/usr/bin/env python3
"""Writes the unpack fuzz target's seeds: small tar archives (byte 0 = 0, plain) whose entries
try every symlink trick against the victim tree the target keeps beside the layer directory
(../victim). Run from this directory: python3 make.py"""
import io
import tarfile


def entry(t, name, kind=tarfile.REGTYPE, data=b"", link="", mode=0o644):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 1000000000
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    t.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


D, L, H, F = tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE
SEEDS = {
    "dir-then-symlink": [("x/", D, b"", "", 0o777), ("x", L, b"", "../victim")],
    "dir-then-symlink-file": [("x/", D, b"", "", 0o777), ("x", L, b"", "../victim/file")],
    "dir-then-symlink-fifo": [("x/", D, b"", "", 0o777), ("x", L, b"", "../victim/fifo")],
    "chain": [("a", L, b"", "b"), ("b", L, b"", "../victim"), ("a/pwned", tarfile.REGTYPE, b"x")],
    "through": [("s", L, b"", "../victim"), ("s/file", tarfile.REGTYPE, b"pwned")],
    "absolute": [("s", L, b"", "/tmp"), ("s/x", tarfile.REGTYPE, b"x")],
    "whiteout": [("s", L, b"", "../victim"), ("s/.wh.file", tarfile.REGTYPE)],
    "opaque": [("s", L, b"", "../victim"), ("s/.wh..wh..opq", tarfile.REGTYPE)],
    "hardlink": [("s", L, b"", "../victim"), ("h", H, b"", "s/file")],
    "hardlink-dotdot": [("h", H, b"", "../victim/file")],
    "fifo": [("s", L, b"", "../victim"), ("s/p", F, b"", "", 0o666)],
    "nested": [("a/", D), ("a/x/", D, b"", "", 0o777), ("a/x", L, b"", "../../victim"), ("a", L, b"", "../victim")],
    "good": [("bin/", D, b"", "", 0o755), ("bin/sh", tarfile.REGTYPE, b"#!", "", 0o755), ("etc/", D), ("etc/.wh.old", tarfile.REGTYPE), ("lnk", L, b"", "bin/sh"), ("hard", H, b"", "bin/sh")],
}

for name, entries in SEEDS.items():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for e in entries:
            entry(t, *e)
    with open(f"{name}.bin", "wb") as f:
        f.write(b"\0" + buf.getvalue())
