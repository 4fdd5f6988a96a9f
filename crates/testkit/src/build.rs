//! Builds what root integration tests run: the component binaries (into the test's own target
//! directory, once per test process) and the image tarballs of scripts/build-images.sh.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The profile directory the running test binary was built into (`<target>/debug` or
/// `<target>/release`): tests run from `<target>/<profile>/deps/<test>-<hash>`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test binary lives in <target>/<profile>/deps")
        .to_path_buf()
}

/// Builds the binaries of `packages` with the running test's profile and target directory;
/// returns that profile directory, where they are. Cheap when they are up to date.
pub fn binaries(packages: &[&str]) -> Result<PathBuf, String> {
    let dir = profile_dir();
    let target = dir.parent().expect("target root").to_path_buf();
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(crate::repo_root())
        .env("CARGO_TARGET_DIR", &target)
        .args(["build", "-q"]);
    for package in packages {
        cmd.args(["-p", package]);
    }
    cmd.arg("--bins");
    if dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().map_err(|e| format!("run cargo build: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build -p {} failed", packages.join(" -p ")));
    }
    Ok(dir)
}

/// Every binary a whole cluster runs (apiserver, controller-manager, scheduler, minirun,
/// kubelet, proxy, dns, minictl, mini-cluster), built once per test process.
pub fn cluster_binaries() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        binaries(&[
            "apiserver",
            "controllers",
            "scheduler",
            "runtime",
            "kubelet",
            "proxy",
            "dns",
            "minictl",
            "localcluster",
        ])
        .unwrap_or_else(|e| panic!("{e}"))
    })
}

/// The image tarballs (pause, busybox, demo-web v1/v2, mini-dns), built once by
/// scripts/build-images.sh into `<target>/test-images` under a file lock shared by every test
/// process; `MINIRUN_TEST_IMAGES` overrides.
pub fn test_images() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Ok(dir) = std::env::var("MINIRUN_TEST_IMAGES") {
            return PathBuf::from(dir);
        }
        let out = profile_dir()
            .parent()
            .expect("target root")
            .join("test-images");
        std::fs::create_dir_all(&out).expect("mkdir test-images");
        let lock = std::fs::File::create(out.join(".lock")).expect("lock file");
        let _guard =
            nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).expect("flock");
        let status = Command::new("bash")
            .arg(crate::repo_root().join("scripts/build-images.sh"))
            .arg("--out")
            .arg(&out)
            .status()
            .expect("run scripts/build-images.sh");
        assert!(status.success(), "scripts/build-images.sh failed");
        out
    })
}
