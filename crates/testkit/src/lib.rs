//! Test support shared by the suites: a real etcd on loopback in a temp dir, free ports, and
//! the rule for missing prerequisites (skip loudly on a developer machine, fail in CI).

pub mod build;
pub mod etcd;
pub mod leftovers;
pub mod netns;
pub mod privacy;
pub mod python;

use std::net::TcpListener;
use std::path::{Path, PathBuf};

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    listener.local_addr().expect("local address").port()
}

/// True when every prerequisite must be present (CI, or `MINI_REQUIRE_ALL=1`): a missing one
/// then fails the test instead of skipping it.
pub fn prerequisites_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("MINI_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// Reports a missing prerequisite: panics in CI, prints a loud SKIPPED line otherwise.
/// Returns so the caller can `return` from the test.
pub fn missing(what: &str, how: &str) {
    if prerequisites_required() {
        panic!("required prerequisite missing: {what} ({how})");
    }
    eprintln!("\n*** SKIPPED: {what} is missing ({how}) ***\n");
}

/// The repository root (where Cargo.lock is).
pub fn repo_root() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    while !dir.join("Cargo.lock").exists() {
        if !dir.pop() {
            return PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        }
    }
    dir
}

/// Upstream kubectl as fetched by scripts/fetch-kubectl.sh, if present.
pub fn kubectl() -> Option<PathBuf> {
    let p = repo_root().join(".tools/kubectl");
    if p.exists() {
        return Some(p);
    }
    missing("upstream kubectl", "run scripts/fetch-kubectl.sh");
    None
}

/// True when running as root (root integration tests need it).
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.uid() == 0
        })
        .unwrap_or(false)
}

/// Whether a file exists (for binaries of system packages).
pub fn have(path: &str) -> bool {
    Path::new(path).exists()
}

/// The last `lines` lines of every log file in `dir`, each under a `--- <path>` header (for
/// failure messages; a missing directory gives an empty string).
pub fn log_tails(dir: &std::path::Path, lines: usize) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let body = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let all_lines: Vec<&str> = body.lines().collect();
        all.push_str(&format!(
            "--- {}\n{}\n",
            entry.path().display(),
            all_lines[all_lines.len().saturating_sub(lines)..].join("\n")
        ));
    }
    all
}
