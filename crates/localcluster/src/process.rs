//! The launcher's processes: started detached (own process group, stdin closed, stdout and
//! stderr appended to a log file) so they outlive `cluster up`, recognised later by pid and
//! program name, stopped with SIGTERM then SIGKILL.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Starts `cmd` detached from the launcher with its output appended to `log`.
pub fn spawn_detached(mut cmd: Command, log: &Path) -> io::Result<Child> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", log.display())))?;
    let err = out.try_clone()?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .process_group(0)
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("spawn {:?}: {e}", cmd.get_program())))
}

/// The command line of `pid` with NULs as spaces, or None when it is gone.
pub fn cmdline(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " "))
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// Whether `pid` is a live (not zombie) process running `program`.
pub fn is_alive(pid: i32, program: &str) -> bool {
    pid > 0 && !is_zombie(pid) && cmdline(pid).is_some_and(|line| line.contains(program))
}

/// Pids of live processes whose command line contains `needle` (the launcher's own excluded).
pub fn pids_mentioning(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me && !is_zombie(pid))
        .filter(|&pid| cmdline(pid).is_some_and(|line| line.contains(needle)))
        .collect()
}

/// Sends SIGTERM to every pid, waits up to `grace` for them to exit, then SIGKILLs the rest
/// and waits (bounded) for them to go.
pub fn stop(pids: &[i32], grace: Duration) {
    let live = |pids: &[i32]| -> Vec<i32> {
        pids.iter()
            .copied()
            .filter(|&pid| pid > 0 && !is_zombie(pid))
            .collect()
    };
    for &pid in &live(pids) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while !live(pids).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = live(pids);
        if left.is_empty() || Instant::now() > deadline {
            return;
        }
        for pid in left {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a log line is a frame of a Rust backtrace (`  12: fn` or `     at file:line`).
fn is_backtrace_frame(line: &str) -> bool {
    let trimmed = line.trim_start();
    trimmed.starts_with("at ")
        || trimmed
            .split_once(": ")
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The last `lines` lines of a log file without backtrace frames (for error messages).
pub fn log_tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().filter(|l| !is_backtrace_frame(l)).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The directory of the running executable (where the component binaries are built).
pub fn exe_dir() -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    exe.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| io::Error::other(format!("{} has no parent", exe.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tail_drops_backtrace_frames() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c.log");
        std::fs::write(
            &log,
            "starting\nError: connect etcd: refused\nStack backtrace:\n   0: main\n             at src/main.rs:3:5\n  12: _start\n",
        )
        .unwrap();
        assert_eq!(
            log_tail(&log, 2),
            "Error: connect etcd: refused\nStack backtrace:"
        );
    }

    #[test]
    fn a_detached_process_logs_to_its_file_and_is_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("logs/sleeper.log");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo started; exec sleep 30"]);
        let mut child = spawn_detached(cmd, &log).unwrap();
        let pid = child.id() as i32;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !log_tail(&log, 1).contains("started") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(log_tail(&log, 5), "started");
        assert!(is_alive(pid, "sleep"));
        assert!(!is_alive(pid, "not-this-program"));
        assert_eq!(
            nix::unistd::getpgid(Some(Pid::from_raw(pid))).unwrap(),
            Pid::from_raw(pid)
        );
        stop(&[pid], Duration::from_secs(5));
        let status = child.wait().unwrap();
        assert!(!status.success());
        assert!(!is_alive(pid, "sleep"));
    }
}
