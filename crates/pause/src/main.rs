//! The `pause` binary: the first process of every pod sandbox.
//!
//! It holds the pod's namespaces open, reaps zombies re-parented to it (it is PID 1 when the pod
//! shares its process namespace) and exits 0 on SIGTERM or SIGINT. It does nothing else, so it
//! stays tiny and is built as a static binary for the `pause:latest` image.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Reaps every exited child without blocking.
fn reap_all() {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => continue,
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "-v" || a == "--version") {
        println!("pause {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set.add(Signal::SIGCHLD);
    if let Err(e) = set.thread_block() {
        eprintln!("pause: cannot block signals: {e}");
        std::process::exit(1);
    }
    loop {
        match set.wait() {
            Ok(Signal::SIGTERM) | Ok(Signal::SIGINT) => {
                reap_all();
                std::process::exit(0);
            }
            Ok(_) => reap_all(),
            Err(e) => {
                eprintln!("pause: sigwait failed: {e}");
                std::process::exit(1);
            }
        }
    }
}
