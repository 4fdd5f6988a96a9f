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

/// execve(2); returns only on failure.
pub fn exec(path: &Path, args: &[String], env: &[String]) -> nix::Error {
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
