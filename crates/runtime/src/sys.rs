//! Every Linux system call the runtime makes, behind the [`Syscall`] trait.
//!
//! [`LinuxSyscall`] is the real implementation; [`RecordingSyscall`] records calls so the logic
//! that drives them (mount plans, capability and user switching, layer unpacking) is unit-tested
//! without root. Modelled on youki's `libcontainer::syscall`. This module and [`crate::process`]
//! are the only places with `unsafe`.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use caps::{CapSet, Capability, CapsHashSet};
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::resource::Resource;
use nix::sys::signal::Signal;
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{Gid, Pid, Uid};

/// A failed system call: the operation, the path or object it was about, and the cause.
#[derive(Debug, thiserror::Error)]
#[error("{op} {what}: {source}")]
pub struct SysError {
    /// The operation, e.g. `mount`.
    pub op: &'static str,
    /// Path or object the call was about.
    pub what: String,
    /// The underlying error.
    #[source]
    pub source: std::io::Error,
}

/// Result of a system call.
pub type SysResult<T> = Result<T, SysError>;

fn err(op: &'static str, what: impl std::fmt::Display, e: impl Into<std::io::Error>) -> SysError {
    SysError {
        op,
        what: what.to_string(),
        source: e.into(),
    }
}

/// The Linux calls used to build a container and unpack layers.
pub trait Syscall {
    /// mount(2).
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> SysResult<()>;
    /// umount2(2).
    fn umount2(&self, target: &Path, flags: MntFlags) -> SysResult<()>;
    /// pivot_root(2).
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> SysResult<()>;
    /// chdir(2).
    fn chdir(&self, path: &Path) -> SysResult<()>;
    /// sethostname(2).
    fn sethostname(&self, name: &str) -> SysResult<()>;
    /// setns(2) on an open namespace file.
    fn setns(&self, fd: BorrowedFd<'_>, nstype: CloneFlags) -> SysResult<()>;
    /// unshare(2).
    fn unshare(&self, flags: CloneFlags) -> SysResult<()>;
    /// mknod(2).
    fn mknod(&self, path: &Path, kind: SFlag, perm: Mode, dev: u64) -> SysResult<()>;
    /// symlink(2).
    fn symlink(&self, target: &Path, link: &Path) -> SysResult<()>;
    /// lchown(2).
    fn lchown(&self, path: &Path, uid: u32, gid: u32) -> SysResult<()>;
    /// lsetxattr(2).
    fn lsetxattr(&self, path: &Path, name: &str, value: &[u8]) -> SysResult<()>;
    /// mkdir -p.
    fn create_dir_all(&self, path: &Path) -> SysResult<()>;
    /// Creates an empty file if nothing exists at `path` (a bind-mount target).
    fn ensure_file(&self, path: &Path) -> SysResult<()>;
    /// setrlimit(2).
    fn setrlimit(&self, res: Resource, soft: u64, hard: u64) -> SysResult<()>;
    /// setgroups(2).
    fn setgroups(&self, groups: &[u32]) -> SysResult<()>;
    /// setresgid(2) with all three ids equal.
    fn setgid(&self, gid: u32) -> SysResult<()>;
    /// setresuid(2) with all three ids equal.
    fn setuid(&self, uid: u32) -> SysResult<()>;
    /// prctl(PR_SET_KEEPCAPS).
    fn set_keep_caps(&self, keep: bool) -> SysResult<()>;
    /// prctl(PR_SET_NO_NEW_PRIVS).
    fn set_no_new_privs(&self) -> SysResult<()>;
    /// seccomp(SECCOMP_SET_MODE_FILTER) with one BPF program (needs no_new_privs or
    /// CAP_SYS_ADMIN).
    fn apply_seccomp(&self, program: &seccompiler::BpfProgram) -> SysResult<()>;
    /// Sets one capability set of this thread.
    fn set_caps(&self, set: CapSet, caps: &CapsHashSet) -> SysResult<()>;
    /// Drops one capability from the bounding set.
    fn drop_bounding(&self, cap: Capability) -> SysResult<()>;
    /// kill(2).
    fn kill(&self, pid: i32, sig: Signal) -> SysResult<()>;
    /// Sets the loopback interface of the current network namespace up (the CNI loopback role).
    fn loopback_up(&self) -> SysResult<()>;
    /// Makes the terminal `fd` the controlling terminal of this (session leader) process.
    fn set_controlling_tty(&self, fd: BorrowedFd<'_>) -> SysResult<()>;
    /// umask(2).
    fn set_umask(&self, mask: u32);
    /// mknodat(2): `name` in the directory `dir`.
    fn mknodat(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        kind: SFlag,
        perm: Mode,
        dev: u64,
    ) -> SysResult<()>;
    /// fchownat(2) with AT_SYMLINK_NOFOLLOW: `name` in `dir`, never what a symlink points to.
    fn fchownat(&self, dir: BorrowedFd<'_>, name: &OsStr, uid: u32, gid: u32) -> SysResult<()>;
    /// fsetxattr(2) on an open file or directory.
    fn fsetxattr(&self, fd: BorrowedFd<'_>, name: &str, value: &[u8]) -> SysResult<()>;
    /// open_tree(2) with OPEN_TREE_CLONE: a detached bind mount of the object `fd` (an
    /// `O_PATH` handle), with its submounts when `recursive`.
    fn clone_mount(&self, fd: BorrowedFd<'_>, recursive: bool) -> SysResult<OwnedFd>;
    /// mount_setattr(2) on a detached tree (and its submounts when `recursive`).
    fn mount_setattr(
        &self,
        tree: BorrowedFd<'_>,
        attr: &MountAttr,
        recursive: bool,
    ) -> SysResult<()>;
    /// move_mount(2): attaches the detached `tree` onto the object `target` (an `O_PATH`
    /// handle), so the destination is the one that was resolved, not a path looked up again.
    fn move_mount(&self, tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> SysResult<()>;
}

/// Attributes for [`Syscall::mount_setattr`] (`struct mount_attr`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MountAttr {
    /// `MOUNT_ATTR_*` flags to set.
    pub set: u64,
    /// `MOUNT_ATTR_*` flags to clear.
    pub clear: u64,
    /// A propagation type (`MS_PRIVATE`, ...), or 0 to leave it.
    pub propagation: u64,
    /// With `MOUNT_ATTR_IDMAP`: a user namespace fd whose mapping the mount takes.
    pub userns_fd: Option<i32>,
}

/// `MOUNT_ATTR_RDONLY`.
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
/// `MOUNT_ATTR_NOSUID`.
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
/// `MOUNT_ATTR_NODEV`.
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
/// `MOUNT_ATTR_NOEXEC`.
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
/// `MOUNT_ATTR_IDMAP`.
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// The kernel's `struct mount_attr` (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
struct RawMountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

/// Waits up to `timeout` for the process `pid` to exit, woken at once by its exit through a
/// pidfd (no polling interval). Returns whether it is gone; a pid that does not exist (any
/// more) counts as gone. Without pidfd support (Linux < 5.3) it sleeps 2 ms and reports
/// whether the pid still answers `kill(pid, 0)`.
pub fn wait_gone(pid: i32, timeout: std::time::Duration) -> bool {
    if pid <= 0 {
        return true;
    }
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ESRCH) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(2).min(timeout));
        return nix::sys::signal::kill(Pid::from_raw(pid), None).is_err();
    }
    // SAFETY: fd is a valid, open descriptor we own from here on.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let millis = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    let mut fds = [nix::poll::PollFd::new(
        pidfd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    matches!(
        nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(millis)),
        Ok(n) if n > 0
    )
}

/// Opens a pty pair on the devpts instance whose `ptmx` is given (e.g. a container's
/// `/proc/<pid>/root/dev/pts/ptmx`, so the slave is visible inside it); returns (master, slave).
pub fn open_pty(
    ptmx: &Path,
    size: Option<&nix::pty::Winsize>,
) -> SysResult<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use nix::fcntl::OFlag;

    let master = nix::fcntl::open(
        ptmx,
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| err("open", ptmx.display(), e))?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int from the pointer, which lives for the call.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(err(
            "TIOCSPTLCK",
            ptmx.display(),
            std::io::Error::last_os_error(),
        ));
    }
    if let Some(ws) = size {
        // SAFETY: TIOCSWINSZ reads the winsize we pass, which lives for the call.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, ws) };
    }
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd for the slave, or -1.
    let fd = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(err(
            "TIOCGPTPEER",
            ptmx.display(),
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: fd is a fresh descriptor returned by the kernel, owned from here on.
    let slave = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok((master, slave))
}

/// The window size of the terminal `fd`, if it is one.
pub fn terminal_size(fd: BorrowedFd<'_>) -> Option<nix::pty::Winsize> {
    // SAFETY: winsize is plain old data; all-zero is valid.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize into the struct we pass, which lives for the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (rc == 0).then_some(ws)
}

/// Sets a terminal's window size (TIOCSWINSZ; the foreground process group gets SIGWINCH).
pub fn set_terminal_size(fd: BorrowedFd<'_>, cols: u16, rows: u16) -> std::io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads the winsize we pass, which lives for the call.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `fd` over the unix socket `sock` (SCM_RIGHTS, with one byte of data).
pub fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> nix::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let fds = [fd.as_raw_fd()];
    let iov = [std::io::IoSlice::new(b"f")];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )?;
    Ok(())
}

/// Receives one descriptor sent with [`send_fd`] (close-on-exec); `None` when none came.
pub fn recv_fd(sock: BorrowedFd<'_>) -> nix::Result<Option<std::os::fd::OwnedFd>> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
    )?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor in our table for us; we
                // are its only owner.
                return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
    }
    Ok(None)
}

/// The real Linux implementation.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxSyscall;

fn cstr(p: &Path) -> SysResult<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes())
        .map_err(|e| err("path", p.display(), std::io::Error::other(e)))
}

impl Syscall for LinuxSyscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> SysResult<()> {
        nix::mount::mount(source, target, fstype, flags, data)
            .map_err(|e| err("mount", target.display(), e))
    }
    fn umount2(&self, target: &Path, flags: MntFlags) -> SysResult<()> {
        nix::mount::umount2(target, flags).map_err(|e| err("umount", target.display(), e))
    }
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> SysResult<()> {
        nix::unistd::pivot_root(new_root, put_old)
            .map_err(|e| err("pivot_root", new_root.display(), e))
    }
    fn chdir(&self, path: &Path) -> SysResult<()> {
        nix::unistd::chdir(path).map_err(|e| err("chdir", path.display(), e))
    }
    fn sethostname(&self, name: &str) -> SysResult<()> {
        nix::unistd::sethostname(name).map_err(|e| err("sethostname", name, e))
    }
    fn setns(&self, fd: BorrowedFd<'_>, nstype: CloneFlags) -> SysResult<()> {
        nix::sched::setns(fd, nstype).map_err(|e| err("setns", format!("{nstype:?}"), e))
    }
    fn unshare(&self, flags: CloneFlags) -> SysResult<()> {
        nix::sched::unshare(flags).map_err(|e| err("unshare", format!("{flags:?}"), e))
    }
    fn mknod(&self, path: &Path, kind: SFlag, perm: Mode, dev: u64) -> SysResult<()> {
        nix::sys::stat::mknod(path, kind, perm, dev).map_err(|e| err("mknod", path.display(), e))
    }
    fn symlink(&self, target: &Path, link: &Path) -> SysResult<()> {
        std::os::unix::fs::symlink(target, link).map_err(|e| err("symlink", link.display(), e))
    }
    fn lchown(&self, path: &Path, uid: u32, gid: u32) -> SysResult<()> {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
            .map_err(|e| err("lchown", path.display(), e))
    }
    fn lsetxattr(&self, path: &Path, name: &str, value: &[u8]) -> SysResult<()> {
        let p = cstr(path)?;
        let n = CString::new(name).map_err(|e| err("xattr", name, std::io::Error::other(e)))?;
        // SAFETY: p and n are valid NUL-terminated strings that outlive the call; value is a
        // valid slice whose pointer and length are passed together.
        let rc = unsafe {
            libc::lsetxattr(
                p.as_ptr(),
                n.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        if rc != 0 {
            return Err(err(
                "setxattr",
                path.display(),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
    fn create_dir_all(&self, path: &Path) -> SysResult<()> {
        std::fs::create_dir_all(path).map_err(|e| err("mkdir", path.display(), e))
    }
    fn ensure_file(&self, path: &Path) -> SysResult<()> {
        if std::fs::symlink_metadata(path).is_ok() {
            return Ok(());
        }
        if let Some(parent) = path.parent() {
            self.create_dir_all(parent)?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map(|_| ())
            .map_err(|e| err("create", path.display(), e))
    }
    fn setrlimit(&self, res: Resource, soft: u64, hard: u64) -> SysResult<()> {
        nix::sys::resource::setrlimit(res, soft, hard)
            .map_err(|e| err("setrlimit", format!("{res:?}"), e))
    }
    fn setgroups(&self, groups: &[u32]) -> SysResult<()> {
        let g: Vec<Gid> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
        nix::unistd::setgroups(&g).map_err(|e| err("setgroups", format!("{groups:?}"), e))
    }
    fn setgid(&self, gid: u32) -> SysResult<()> {
        let g = Gid::from_raw(gid);
        nix::unistd::setresgid(g, g, g).map_err(|e| err("setresgid", gid, e))
    }
    fn setuid(&self, uid: u32) -> SysResult<()> {
        let u = Uid::from_raw(uid);
        nix::unistd::setresuid(u, u, u).map_err(|e| err("setresuid", uid, e))
    }
    fn set_keep_caps(&self, keep: bool) -> SysResult<()> {
        nix::sys::prctl::set_keepcaps(keep).map_err(|e| err("prctl", "PR_SET_KEEPCAPS", e))
    }
    fn set_no_new_privs(&self) -> SysResult<()> {
        nix::sys::prctl::set_no_new_privs().map_err(|e| err("prctl", "PR_SET_NO_NEW_PRIVS", e))
    }
    fn apply_seccomp(&self, program: &seccompiler::BpfProgram) -> SysResult<()> {
        seccompiler::apply_filter(program).map_err(|e| {
            err(
                "seccomp",
                format!("{} instructions", program.len()),
                std::io::Error::other(e.to_string()),
            )
        })
    }
    fn set_caps(&self, set: CapSet, caps: &CapsHashSet) -> SysResult<()> {
        caps::set(None, set, caps).map_err(|e| {
            err(
                "capset",
                format!("{set:?}"),
                std::io::Error::other(e.to_string()),
            )
        })
    }
    fn drop_bounding(&self, cap: Capability) -> SysResult<()> {
        match caps::drop(None, CapSet::Bounding, cap) {
            Ok(()) => Ok(()),
            // Capabilities unknown to this kernel are not in the bounding set anyway.
            Err(_) if !caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) => Ok(()),
            Err(e) => Err(err(
                "capbset_drop",
                cap,
                std::io::Error::other(e.to_string()),
            )),
        }
    }
    fn kill(&self, pid: i32, sig: Signal) -> SysResult<()> {
        nix::sys::signal::kill(Pid::from_raw(pid), sig).map_err(|e| err("kill", pid, e))
    }
    fn loopback_up(&self) -> SysResult<()> {
        // SAFETY: plain socket(2) call; the returned fd is checked and owned right away.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(err("socket", "lo", std::io::Error::last_os_error()));
        }
        // SAFETY: fd is a valid, open descriptor we own from here on.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: ifreq is plain old data; all-zero is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (i, b) in b"lo".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        // SAFETY: SIOCGIFFLAGS reads into the ifreq we pass, which lives for the call.
        if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
            return Err(err("SIOCGIFFLAGS", "lo", std::io::Error::last_os_error()));
        }
        // SAFETY: the union member ifru_flags is the one SIOCGIFFLAGS filled in.
        unsafe {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        }
        // SAFETY: SIOCSIFFLAGS reads the ifreq we pass, which lives for the call.
        if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
            return Err(err("SIOCSIFFLAGS", "lo", std::io::Error::last_os_error()));
        }
        Ok(())
    }
    fn set_controlling_tty(&self, fd: BorrowedFd<'_>) -> SysResult<()> {
        // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal); fd is open for the call.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
            return Err(err(
                "TIOCSCTTY",
                fd.as_raw_fd(),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
    fn set_umask(&self, mask: u32) {
        nix::sys::stat::umask(Mode::from_bits_truncate(mask));
    }
    fn mknodat(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        kind: SFlag,
        perm: Mode,
        dev: u64,
    ) -> SysResult<()> {
        nix::sys::stat::mknodat(dir, name, kind, perm, dev)
            .map_err(|e| err("mknod", Path::new(name).display(), e))
    }
    fn fchownat(&self, dir: BorrowedFd<'_>, name: &OsStr, uid: u32, gid: u32) -> SysResult<()> {
        nix::unistd::fchownat(
            dir,
            name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| err("chown", Path::new(name).display(), e))
    }
    fn fsetxattr(&self, fd: BorrowedFd<'_>, name: &str, value: &[u8]) -> SysResult<()> {
        let n = CString::new(name).map_err(|e| err("xattr", name, std::io::Error::other(e)))?;
        // SAFETY: fd is open for the call; n is a valid NUL-terminated string and value a
        // valid slice whose pointer and length are passed together.
        let rc = unsafe {
            libc::fsetxattr(
                fd.as_raw_fd(),
                n.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        if rc != 0 {
            return Err(err("setxattr", name, std::io::Error::last_os_error()));
        }
        Ok(())
    }
    fn clone_mount(&self, fd: BorrowedFd<'_>, recursive: bool) -> SysResult<OwnedFd> {
        let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
        flags |= libc::AT_EMPTY_PATH as libc::c_uint;
        if recursive {
            flags |= libc::AT_RECURSIVE as libc::c_uint;
        }
        // SAFETY: open_tree(2) takes a dir fd that is open for the call, a NUL-terminated
        // empty path (a static C string) and flags; it returns a new fd or -1.
        let rc = unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), c"".as_ptr(), flags) };
        if rc < 0 {
            return Err(err(
                "open_tree",
                fd.as_raw_fd(),
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: rc is a fresh descriptor returned by the kernel, owned from here on.
        Ok(unsafe { OwnedFd::from_raw_fd(rc as i32) })
    }
    fn mount_setattr(
        &self,
        tree: BorrowedFd<'_>,
        attr: &MountAttr,
        recursive: bool,
    ) -> SysResult<()> {
        let raw = RawMountAttr {
            attr_set: attr.set,
            attr_clr: attr.clear,
            propagation: attr.propagation,
            userns_fd: attr.userns_fd.map(|f| f as u64).unwrap_or(0),
        };
        let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
        if recursive {
            flags |= libc::AT_RECURSIVE as libc::c_uint;
        }
        // SAFETY: mount_setattr(2) reads `size` bytes of the struct we pass, which lives for
        // the call; the fd is open and the path a static empty C string.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                tree.as_raw_fd(),
                c"".as_ptr(),
                flags,
                &raw as *const RawMountAttr,
                std::mem::size_of::<RawMountAttr>(),
            )
        };
        if rc < 0 {
            return Err(err(
                "mount_setattr",
                format!("{attr:?}"),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
    fn move_mount(&self, tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> SysResult<()> {
        // SAFETY: move_mount(2) takes two fds open for the call, two static empty C strings
        // and flags saying both objects are the fds themselves.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                tree.as_raw_fd(),
                c"".as_ptr(),
                target.as_raw_fd(),
                c"".as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
            )
        };
        if rc < 0 {
            return Err(err(
                "move_mount",
                fd_path(target).display(),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
}

/// What an fd refers to, for messages and records (`/proc/self/fd/N`'s target).
pub fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .unwrap_or_else(|_| PathBuf::from(format!("fd {}", fd.as_raw_fd())))
}

/// A fake that records every call as a line of text and succeeds (unit tests of the logic).
#[derive(Debug, Default)]
pub struct RecordingSyscall {
    calls: Mutex<Vec<String>>,
    /// Operations (by name, e.g. `"pivot_root"`) that fail with EPERM.
    pub fail_on: Vec<&'static str>,
}

impl RecordingSyscall {
    /// A fresh recorder.
    pub fn new() -> Self {
        Self::default()
    }
    /// A recorder whose calls named in `ops` fail with EPERM.
    pub fn failing(ops: Vec<&'static str>) -> Self {
        Self {
            fail_on: ops,
            ..Self::default()
        }
    }
    /// The calls made so far.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
    fn rec(&self, op: &'static str, line: String) -> SysResult<()> {
        if let Ok(mut c) = self.calls.lock() {
            c.push(line.clone());
        }
        if self.fail_on.contains(&op) {
            return Err(err(
                op,
                line,
                std::io::Error::from_raw_os_error(libc::EPERM),
            ));
        }
        Ok(())
    }
}

fn d(p: &Path) -> std::path::Display<'_> {
    p.display()
}

impl Syscall for RecordingSyscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> SysResult<()> {
        // Objects mounted through /proc/self/fd are recorded by what they are.
        let real = |p: &Path| match p.strip_prefix("/proc/self/fd") {
            Ok(n) => std::fs::read_link(Path::new("/proc/self/fd").join(n))
                .unwrap_or_else(|_| p.to_path_buf()),
            Err(_) => p.to_path_buf(),
        };
        let src = source
            .map(|s| real(s).display().to_string())
            .unwrap_or_default();
        self.rec(
            "mount",
            format!(
                "mount {src} {} {} {flags:?} {}",
                d(&real(target)),
                fstype.unwrap_or("-"),
                data.unwrap_or("-")
            ),
        )
    }
    fn umount2(&self, target: &Path, flags: MntFlags) -> SysResult<()> {
        self.rec("umount", format!("umount {} {flags:?}", d(target)))
    }
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> SysResult<()> {
        self.rec(
            "pivot_root",
            format!("pivot_root {} {}", d(new_root), d(put_old)),
        )
    }
    fn chdir(&self, path: &Path) -> SysResult<()> {
        self.rec("chdir", format!("chdir {}", d(path)))
    }
    fn sethostname(&self, name: &str) -> SysResult<()> {
        self.rec("sethostname", format!("sethostname {name}"))
    }
    fn setns(&self, fd: BorrowedFd<'_>, nstype: CloneFlags) -> SysResult<()> {
        self.rec("setns", format!("setns {} {nstype:?}", fd.as_raw_fd()))
    }
    fn unshare(&self, flags: CloneFlags) -> SysResult<()> {
        self.rec("unshare", format!("unshare {flags:?}"))
    }
    fn mknod(&self, path: &Path, kind: SFlag, perm: Mode, dev: u64) -> SysResult<()> {
        self.rec(
            "mknod",
            format!("mknod {} {kind:?} {:o} {dev}", d(path), perm.bits()),
        )
    }
    fn symlink(&self, target: &Path, link: &Path) -> SysResult<()> {
        self.rec("symlink", format!("symlink {} {}", d(target), d(link)))
    }
    fn lchown(&self, path: &Path, uid: u32, gid: u32) -> SysResult<()> {
        self.rec("lchown", format!("lchown {} {uid} {gid}", d(path)))
    }
    fn lsetxattr(&self, path: &Path, name: &str, value: &[u8]) -> SysResult<()> {
        self.rec(
            "setxattr",
            format!(
                "setxattr {} {name} {}",
                d(path),
                String::from_utf8_lossy(value)
            ),
        )
    }
    fn create_dir_all(&self, path: &Path) -> SysResult<()> {
        self.rec("mkdir", format!("mkdir {}", d(path)))
    }
    fn ensure_file(&self, path: &Path) -> SysResult<()> {
        self.rec("ensure_file", format!("ensure_file {}", d(path)))
    }
    fn setrlimit(&self, res: Resource, soft: u64, hard: u64) -> SysResult<()> {
        self.rec("setrlimit", format!("setrlimit {res:?} {soft} {hard}"))
    }
    fn setgroups(&self, groups: &[u32]) -> SysResult<()> {
        self.rec("setgroups", format!("setgroups {groups:?}"))
    }
    fn setgid(&self, gid: u32) -> SysResult<()> {
        self.rec("setgid", format!("setgid {gid}"))
    }
    fn setuid(&self, uid: u32) -> SysResult<()> {
        self.rec("setuid", format!("setuid {uid}"))
    }
    fn set_keep_caps(&self, keep: bool) -> SysResult<()> {
        self.rec("keepcaps", format!("keepcaps {keep}"))
    }
    fn set_no_new_privs(&self) -> SysResult<()> {
        self.rec("no_new_privs", "no_new_privs".to_string())
    }
    fn apply_seccomp(&self, program: &seccompiler::BpfProgram) -> SysResult<()> {
        self.rec("seccomp", format!("seccomp {} instructions", program.len()))
    }
    fn set_caps(&self, set: CapSet, caps: &CapsHashSet) -> SysResult<()> {
        let mut v: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
        v.sort();
        self.rec("capset", format!("capset {set:?} {}", v.join(",")))
    }
    fn drop_bounding(&self, cap: Capability) -> SysResult<()> {
        self.rec("capbset_drop", format!("capbset_drop {cap}"))
    }
    fn kill(&self, pid: i32, sig: Signal) -> SysResult<()> {
        self.rec("kill", format!("kill {pid} {sig}"))
    }
    fn loopback_up(&self) -> SysResult<()> {
        self.rec("loopback_up", "loopback_up".to_string())
    }
    fn set_controlling_tty(&self, fd: BorrowedFd<'_>) -> SysResult<()> {
        self.rec("tiocsctty", format!("tiocsctty {}", fd.as_raw_fd()))
    }
    fn set_umask(&self, mask: u32) {
        let _ = self.rec("umask", format!("umask {mask:03o}"));
    }
    fn mknodat(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        kind: SFlag,
        perm: Mode,
        dev: u64,
    ) -> SysResult<()> {
        let path = fd_path(dir).join(name);
        self.rec(
            "mknod",
            format!("mknod {} {kind:?} {:o} {dev}", d(&path), perm.bits()),
        )
    }
    fn fchownat(&self, dir: BorrowedFd<'_>, name: &OsStr, uid: u32, gid: u32) -> SysResult<()> {
        let path = fd_path(dir).join(name);
        self.rec("lchown", format!("lchown {} {uid} {gid}", d(&path)))
    }
    fn fsetxattr(&self, fd: BorrowedFd<'_>, name: &str, value: &[u8]) -> SysResult<()> {
        self.rec(
            "setxattr",
            format!(
                "setxattr {} {name} {}",
                d(&fd_path(fd)),
                String::from_utf8_lossy(value)
            ),
        )
    }
    fn clone_mount(&self, fd: BorrowedFd<'_>, recursive: bool) -> SysResult<OwnedFd> {
        self.rec(
            "open_tree",
            format!("open_tree {} recursive={recursive}", d(&fd_path(fd))),
        )?;
        std::fs::File::open("/dev/null")
            .map(OwnedFd::from)
            .map_err(|e| err("open_tree", "/dev/null", e))
    }
    fn mount_setattr(
        &self,
        _tree: BorrowedFd<'_>,
        attr: &MountAttr,
        recursive: bool,
    ) -> SysResult<()> {
        self.rec(
            "mount_setattr",
            format!(
                "mount_setattr set={:#x} clear={:#x} propagation={:#x} idmap={} recursive={recursive}",
                attr.set,
                attr.clear,
                attr.propagation,
                attr.userns_fd.is_some()
            ),
        )
    }
    fn move_mount(&self, _tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> SysResult<()> {
        self.rec("move_mount", format!("move_mount {}", d(&fd_path(target))))
    }
}

/// Joins `rel` (an absolute in-container path) under `root`.
pub fn under(root: &Path, rel: &Path) -> PathBuf {
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    root.join(rel)
}
