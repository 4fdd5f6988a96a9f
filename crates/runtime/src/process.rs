//! Fork and exec: the only place besides [`crate::sys`] with `unsafe`.
//!
//! `minirun` is a fresh single-threaded process, so forking is sound: the child gets a copy of
//! the only thread and may allocate. Children never return into the caller's logic: they end
//! in `execve` or [`exit_now`].

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Pid};

/// Which side of a fork we are on.
pub enum Forked {
    /// The parent, with the child's pid.
    Parent(Pid),
    /// The child.
    Child,
}

/// Whether this process has exactly one thread (read from /proc/self/status); `None` when
/// /proc does not show this process (e.g. after joining another mount namespace).
pub fn single_threaded() -> Option<bool> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:").map(|v| v.trim() == "1"))
        })
}

/// fork(2). Callers must be single-threaded (checked in debug builds).
pub fn fork() -> nix::Result<Forked> {
    debug_assert!(
        single_threaded() != Some(false),
        "fork from a multi-threaded process"
    );
    // SAFETY: minirun forks only while single-threaded (it never starts threads), so the child
    // owns a consistent copy of the address space, including allocator locks.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        ForkResult::Child => Ok(Forked::Child),
    }
}

/// `clone3(2)` flag: start the child in the cgroup v2 directory `clone_args.cgroup` names.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of `clone3(2)` up to `cgroup` (CLONE_ARGS_SIZE_VER2, Linux 5.7).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Like [`fork`], but the child starts in the cgroup v2 directory `cgroup` (an open directory
/// of the unified hierarchy): no migration afterwards, so no wait for the kernel's migration
/// lock (`cgroup_threadgroup_rwsem`, whose writers wait for an RCU grace period). This is how
/// crun starts containers on cgroup v2. Fails with the kernel's error (ENOSYS before 5.7)
/// and then the caller forks and migrates instead. Callers must be single-threaded, and the
/// child must only set itself up and exec or `exit_now`: it does not run glibc's fork
/// handlers, so glibc's thread descriptor keeps the parent's cached thread id.
pub fn fork_into_cgroup(cgroup: std::os::fd::BorrowedFd<'_>) -> nix::Result<Forked> {
    use std::os::fd::AsRawFd;
    debug_assert!(
        single_threaded() != Some(false),
        "fork from a multi-threaded process"
    );
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: clone3 reads `size_of::<CloneArgs>()` bytes from a valid, initialised struct
    // that lives across the call; with no stack given the child runs on a copy of this
    // address space like after fork, which is sound because this process is single-threaded
    // (no lock can be held by another thread), and the child only sets up and execs.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match r {
        -1 => Err(nix::Error::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// Ends a forked child immediately, without running the parent's destructors or atexit hooks.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions; it is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}

/// A close-on-exec pipe (read end, write end).
pub fn pipe() -> nix::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC)
}

/// Makes `fd` the process's stdin, stdout and stderr as given (dup2 clears close-on-exec).
pub fn set_stdio(stdin: Option<&OwnedFd>, stdout: Option<&OwnedFd>, stderr: Option<&OwnedFd>) {
    if let Some(f) = stdin {
        let _ = nix::unistd::dup2_stdin(f.as_fd());
    }
    if let Some(f) = stdout {
        let _ = nix::unistd::dup2_stdout(f.as_fd());
    }
    if let Some(f) = stderr {
        let _ = nix::unistd::dup2_stderr(f.as_fd());
    }
}

/// Opens /dev/null read-write.
pub fn dev_null() -> nix::Result<OwnedFd> {
    nix::fcntl::open(
        "/dev/null",
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
}

/// execve(2); returns only on failure. The new program starts with every standard signal at
/// its default action: an ignored signal stays ignored across execve, and Rust's runtime
/// ignores SIGPIPE in minirun (as a caller may ignore others), which would leave container
/// processes ignoring them (runc's do not).
pub fn exec(path: &Path, args: &[String], env: &[String]) -> nix::Error {
    use nix::sys::signal::{signal, SigHandler, Signal};
    for sig in Signal::iterator().filter(|s| !matches!(s, Signal::SIGKILL | Signal::SIGSTOP)) {
        // SAFETY: installing the default action installs no handler code, so nothing can run
        // in signal context; this process is single-threaded and about to exec.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
    }
    use std::os::unix::ffi::OsStrExt;
    let Ok(p) = CString::new(path.as_os_str().as_bytes()) else {
        return nix::Error::EINVAL;
    };
    let a: Vec<CString> = args
        .iter()
        .filter_map(|s| CString::new(s.as_bytes()).ok())
        .collect();
    let e: Vec<CString> = env
        .iter()
        .filter_map(|s| CString::new(s.as_bytes()).ok())
        .collect();
    match nix::unistd::execve(&p, &a, &e) {
        Err(err) => err,
        Ok(never) => match never {},
    }
}

/// Exit code of a wait status the way shells and the kubelet report it (128+signal).
pub fn exit_code(ws: WaitStatus) -> Option<(i32, Option<i32>)> {
    match ws {
        WaitStatus::Exited(_, c) => Some((c, None)),
        WaitStatus::Signaled(_, s, _) => Some((128 + s as i32, Some(s as i32))),
        _ => None,
    }
}

/// Blocks until `pid` ends; returns (exit code, signal).
pub fn wait_exit(pid: Pid) -> (i32, Option<i32>) {
    loop {
        match waitpid(pid, None) {
            Ok(ws) => {
                if let Some(r) = exit_code(ws) {
                    return r;
                }
            }
            Err(nix::Error::EINTR) => continue,
            Err(_) => return (255, None),
        }
    }
}

/// Whether a process exists (signal 0).
pub fn alive(pid: i32) -> bool {
    pid > 0 && nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok() && !is_zombie(pid)
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// The start time (clock ticks since boot) of a process, to tell pid reuse apart.
pub fn start_time(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19)?.parse().ok()
}
