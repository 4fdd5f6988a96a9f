//! The official Python client (PyPI `kubernetes`) for the suites: the pinned one that
//! scripts/setup.sh installs for `python3`, and the newest release in a virtualenv the tests
//! make beside the target directory (made once, upgraded when older than a day).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// How long a made virtualenv counts as having the newest client.
const FRESH_FOR: Duration = Duration::from_secs(24 * 3600);

/// One Python with the client installed.
#[derive(Debug, Clone)]
pub struct PythonClient {
    /// The interpreter.
    pub python: PathBuf,
    /// `kubernetes.__version__`.
    pub version: String,
}

fn version_of(python: &std::path::Path) -> Option<String> {
    let o = Command::new(python)
        .args(["-c", "import kubernetes; print(kubernetes.__version__)"])
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// `python3` with the pinned client, or None (reported as a missing prerequisite).
pub fn pinned() -> Option<PythonClient> {
    let python = PathBuf::from("python3");
    match version_of(&python) {
        Some(version) => Some(PythonClient { python, version }),
        None => {
            crate::missing("the Python client", "scripts/setup.sh");
            None
        }
    }
}

/// The newest client from PyPI in its own virtualenv, or None (reported as a missing
/// prerequisite: python3 -m venv, or PyPI, unreachable).
pub fn newest() -> Option<PythonClient> {
    static MADE: OnceLock<Result<PythonClient, String>> = OnceLock::new();
    match MADE.get_or_init(make_newest) {
        Ok(p) => Some(p.clone()),
        Err(e) => {
            crate::missing(
                "the newest Python client",
                &format!("a virtualenv with `pip install --upgrade kubernetes`: {e}"),
            );
            None
        }
    }
}

fn make_newest() -> Result<PythonClient, String> {
    let target = crate::build::profile_dir()
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_else(std::env::temp_dir);
    let venv = target.join("python-kubernetes-newest");
    let python = venv.join("bin/python");
    let stamp = venv.join(".upgraded");
    let fresh = std::fs::metadata(&stamp)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age < FRESH_FOR);
    if !python.exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .map_err(|e| format!("python3 -m venv: {e}"))?;
        if !ok.success() {
            return Err("python3 -m venv failed".into());
        }
    }
    if !fresh || version_of(&python).is_none() {
        let ok = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--upgrade",
                "kubernetes",
            ])
            .status()
            .map_err(|e| format!("pip install: {e}"))?;
        if !ok.success() {
            return Err("pip install --upgrade kubernetes failed".into());
        }
        std::fs::write(&stamp, b"").map_err(|e| format!("{}: {e}", stamp.display()))?;
    }
    let version = version_of(&python).ok_or("the virtualenv has no kubernetes package")?;
    Ok(PythonClient { python, version })
}
