//! The kubelet's view of the container runtime: a small async trait (the CRI role) and its
//! implementation that runs the `minirun` helper, a fresh single-threaded process, for every
//! operation (the kubelet itself never forks; see design.md's process model).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use runtime::runtime::{ContainerState, SandboxState};
use runtime::spec::{ContainerConfig, SandboxConfig};
use tokio::io::AsyncWriteExt;

/// Errors of runtime calls.
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    /// The helper could not be started.
    #[error("running {path}: {source}")]
    Spawn {
        path: String,
        source: std::io::Error,
    },
    /// The helper reported an error (its stderr line).
    #[error("minirun {command}: {message}")]
    Failed { command: String, message: String },
    /// The helper printed something that is not the expected JSON.
    #[error("minirun {command}: unexpected output: {source}")]
    Output {
        command: String,
        source: serde_json::Error,
    },
}

/// The result of runtime calls.
pub type Result<T, E = CriError> = std::result::Result<T, E>;

/// Whether an error means "no such sandbox/container/image".
pub fn is_not_found(e: &CriError) -> bool {
    matches!(e, CriError::Failed { message, .. } if message.contains("not found") || message.contains("no such"))
}

/// The operations the kubelet needs from a container runtime.
#[async_trait]
pub trait ContainerRuntime: Send + Sync + 'static {
    /// Creates and starts a sandbox.
    async fn create_sandbox(&self, cfg: &SandboxConfig) -> Result<SandboxState>;
    /// Stops a sandbox's containers and its pause process.
    async fn stop_sandbox(&self, id: &str, grace: Duration) -> Result<()>;
    /// Removes a sandbox and everything in it.
    async fn remove_sandbox(&self, id: &str) -> Result<()>;
    /// Every sandbox with its state.
    async fn list_sandboxes(&self) -> Result<Vec<SandboxState>>;
    /// Creates a container in a sandbox.
    async fn create_container(
        &self,
        sandbox: &str,
        cfg: &ContainerConfig,
    ) -> Result<ContainerState>;
    /// Starts a created container.
    async fn start_container(&self, id: &str) -> Result<()>;
    /// SIGTERM, then SIGKILL after `grace`.
    async fn stop_container(&self, id: &str, grace: Duration) -> Result<()>;
    /// Lets a stdinOnce container's stdin end (after its first attach).
    async fn close_stdin(&self, id: &str) -> Result<()>;
    /// Sets a terminal container's window size.
    async fn resize(&self, id: &str, cols: u16, rows: u16) -> Result<()>;
    /// Removes a container.
    async fn remove_container(&self, id: &str) -> Result<()>;
    /// Every container (all sandboxes) with its state.
    async fn list_containers(&self) -> Result<Vec<ContainerState>>;
    /// Whether an image is present locally; its id when it is.
    async fn image_id(&self, reference: &str) -> Result<Option<String>>;
    /// Pulls an image (policy `always` / `if-not-present`).
    async fn pull(&self, reference: &str, policy: &str) -> Result<String>;
    /// Loads image tarballs.
    async fn load(&self, tarballs: &[PathBuf]) -> Result<()>;
    /// Runs `cmd` in a running container and waits (bounded by `timeout`); (exit code, output).
    async fn exec_sync(&self, id: &str, cmd: &[String], timeout: Duration)
        -> Result<(i32, String)>;
    /// A command that runs `cmd` in a container with the caller's stdio (for streaming exec).
    /// With `tty`, `resize` names a FIFO whose `COLS ROWS` lines set the terminal's size.
    fn exec_command(
        &self,
        id: &str,
        cmd: &[String],
        tty: bool,
        resize: Option<&std::path::Path>,
    ) -> tokio::process::Command;
}

/// [`ContainerRuntime`] through the `minirun` binary.
#[derive(Debug, Clone)]
pub struct Minirun {
    binary: PathBuf,
    root: PathBuf,
    cgroup_root: String,
    listings: Arc<Listings>,
}

/// How long a listing is shared with later callers when nothing changed meanwhile.
const LISTING_TTL: Duration = Duration::from_millis(250);

/// One shared listing: callers that ask while it runs wait for it, and callers within
/// [`LISTING_TTL`] after reuse it, unless this kubelet changed the runtime since it started.
#[derive(Debug)]
struct Listing<T> {
    slot: tokio::sync::Mutex<Option<(u64, Instant, Arc<T>)>>,
}

impl<T> Default for Listing<T> {
    fn default() -> Self {
        Listing {
            slot: tokio::sync::Mutex::new(None),
        }
    }
}

/// The listings every pod worker and the PLEG ask for, coalesced: a burst of 50 pods would
/// otherwise spawn a `minirun ps` (which reads every container's state) per worker per step.
/// Every change this kubelet makes through the runtime bumps `generation`, so a worker always
/// sees its own changes; exits seen only by the runtime show up within [`LISTING_TTL`].
#[derive(Debug, Default)]
struct Listings {
    generation: AtomicU64,
    containers: Listing<Vec<ContainerState>>,
    sandboxes: Listing<Vec<SandboxState>>,
    images: Listing<Vec<serde_json::Value>>,
}

impl Listings {
    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    async fn get<T, F, Fut>(&self, listing: &Listing<T>, list: F) -> Result<Arc<T>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut slot = listing.slot.lock().await;
        let now_generation = self.generation.load(Ordering::SeqCst);
        if let Some((generation, at, value)) = slot.as_ref() {
            if *generation == now_generation && at.elapsed() < LISTING_TTL {
                return Ok(value.clone());
            }
        }
        let value = Arc::new(list().await?);
        *slot = Some((now_generation, Instant::now(), value.clone()));
        Ok(value)
    }
}

impl Minirun {
    /// The helper at `binary`, with state under `root` and cgroups under `cgroup_root`.
    pub fn new(binary: impl Into<PathBuf>, root: impl Into<PathBuf>, cgroup_root: &str) -> Self {
        Minirun {
            binary: binary.into(),
            root: root.into(),
            cgroup_root: cgroup_root.to_string(),
            listings: Arc::default(),
        }
    }

    /// The runtime's state root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn command(&self) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(&self.binary);
        c.arg("--root")
            .arg(&self.root)
            .arg("--cgroup-root")
            .arg(&self.cgroup_root)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    async fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>> {
        let mut cmd = self.command();
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().map_err(|source| CriError::Spawn {
            path: self.binary.display().to_string(),
            source,
        })?;
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            let _ = pipe.write_all(data).await;
            drop(pipe);
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|source| CriError::Spawn {
                path: self.binary.display().to_string(),
                source,
            })?;
        if !out.status.success() {
            let msg = String::from_utf8_lossy(&out.stderr);
            let msg = msg
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("failed")
                .trim_start_matches("minirun: ")
                .to_string();
            return Err(CriError::Failed {
                command: args.first().copied().unwrap_or_default().to_string(),
                message: msg,
            });
        }
        Ok(out.stdout)
    }

    async fn run_json<T: serde::de::DeserializeOwned>(
        &self,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<T> {
        let out = self.run(args, stdin).await?;
        serde_json::from_slice(&out).map_err(|source| CriError::Output {
            command: args.join(" "),
            source,
        })
    }
}

fn json_bytes<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("runtime configs serialize")
}

#[async_trait]
impl ContainerRuntime for Minirun {
    async fn create_sandbox(&self, cfg: &SandboxConfig) -> Result<SandboxState> {
        let created = self
            .run_json(
                &["sandbox", "create", "--config", "-"],
                Some(&json_bytes(cfg)),
            )
            .await;
        self.listings.changed();
        created
    }

    async fn stop_sandbox(&self, id: &str, grace: Duration) -> Result<()> {
        let t = grace.as_secs().to_string();
        let stopped = self.run(&["sandbox", "stop", id, "-t", &t], None).await;
        self.listings.changed();
        stopped.map(drop)
    }

    async fn remove_sandbox(&self, id: &str) -> Result<()> {
        let removed = self.run(&["sandbox", "rm", id], None).await;
        self.listings.changed();
        removed.map(drop)
    }

    async fn list_sandboxes(&self) -> Result<Vec<SandboxState>> {
        let listings = &self.listings;
        let list = listings
            .get(&listings.sandboxes, || {
                self.run_json(&["pods", "--json"], None)
            })
            .await?;
        Ok(list.as_ref().clone())
    }

    async fn create_container(
        &self,
        sandbox: &str,
        cfg: &ContainerConfig,
    ) -> Result<ContainerState> {
        let created = self
            .run_json(
                &["create", "--sandbox", sandbox, "--config", "-"],
                Some(&json_bytes(cfg)),
            )
            .await;
        self.listings.changed();
        created
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        let started = self.run(&["start", id], None).await;
        self.listings.changed();
        started.map(drop)
    }

    async fn stop_container(&self, id: &str, grace: Duration) -> Result<()> {
        let t = grace.as_secs().to_string();
        let stopped = self.run(&["stop", id, "-t", &t], None).await;
        self.listings.changed();
        stopped.map(drop)
    }

    async fn close_stdin(&self, id: &str) -> Result<()> {
        self.run(&["close-stdin", id], None).await.map(drop)
    }

    async fn resize(&self, id: &str, cols: u16, rows: u16) -> Result<()> {
        let (cols, rows) = (cols.to_string(), rows.to_string());
        self.run(&["resize", id, &cols, &rows], None)
            .await
            .map(drop)
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        let removed = self.run(&["rm", id], None).await;
        self.listings.changed();
        removed.map(drop)
    }

    async fn list_containers(&self) -> Result<Vec<ContainerState>> {
        let listings = &self.listings;
        let list = listings
            .get(&listings.containers, || {
                self.run_json(&["ps", "-a", "--json"], None)
            })
            .await?;
        Ok(list.as_ref().clone())
    }

    async fn image_id(&self, reference: &str) -> Result<Option<String>> {
        let listings = &self.listings;
        let images = listings
            .get(&listings.images, || {
                self.run_json(&["images", "--json"], None)
            })
            .await?;
        let wanted = normalize_reference(reference);
        for img in images.iter() {
            let names = img
                .get("names")
                .and_then(|n| n.as_array())
                .cloned()
                .unwrap_or_default();
            if names
                .iter()
                .filter_map(|n| n.as_str())
                .any(|n| normalize_reference(n) == wanted)
            {
                return Ok(img.get("id").and_then(|i| i.as_str()).map(str::to_string));
            }
        }
        Ok(None)
    }

    async fn pull(&self, reference: &str, policy: &str) -> Result<String> {
        let out = self
            .run(&["pull", reference, "--policy", policy], None)
            .await;
        self.listings.changed();
        let out = out?;
        let text = String::from_utf8_lossy(&out);
        Ok(text
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string())
    }

    async fn load(&self, tarballs: &[PathBuf]) -> Result<()> {
        let mut args: Vec<&str> = vec!["load"];
        let paths: Vec<String> = tarballs.iter().map(|p| p.display().to_string()).collect();
        args.extend(paths.iter().map(String::as_str));
        let loaded = self.run(&args, None).await;
        self.listings.changed();
        loaded.map(drop)
    }

    async fn exec_sync(
        &self,
        id: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<(i32, String)> {
        let mut c = self.exec_command(id, cmd, false, None);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = c.spawn().map_err(|source| CriError::Spawn {
            path: self.binary.display().to_string(),
            source,
        })?;
        match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(Ok(out)) => {
                let mut text = String::from_utf8_lossy(&out.stdout).to_string();
                text.push_str(&String::from_utf8_lossy(&out.stderr));
                Ok((out.status.code().unwrap_or(-1), text))
            }
            Ok(Err(source)) => Err(CriError::Spawn {
                path: self.binary.display().to_string(),
                source,
            }),
            Err(_) => Err(CriError::Failed {
                command: "exec".into(),
                message: format!("command timed out after {}s", timeout.as_secs_f64()),
            }),
        }
    }

    fn exec_command(
        &self,
        id: &str,
        cmd: &[String],
        tty: bool,
        resize: Option<&std::path::Path>,
    ) -> tokio::process::Command {
        let mut c = self.command();
        c.arg("exec");
        if tty {
            c.arg("-t");
            if let Some(f) = resize {
                c.arg("--resize-fifo").arg(f);
            }
        }
        c.arg(id).arg("--").args(cmd);
        c
    }
}

/// `busybox` → `busybox:latest`; `docker.io/library/x:1` and `x:1` compare equal.
pub fn normalize_reference(r: &str) -> String {
    let r = r
        .trim_start_matches("docker.io/library/")
        .trim_start_matches("docker.io/");
    let last = r.rsplit('/').next().unwrap_or(r);
    if last.contains(':') || last.contains('@') {
        r.to_string()
    } else {
        format!("{r}:latest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn listings_are_shared_until_this_kubelet_changes_something() {
        use std::sync::atomic::AtomicUsize;
        let listings = Listings::default();
        let calls = AtomicUsize::new(0);
        let list = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(Vec::<ContainerState>::new())
        };
        // concurrent callers share one listing, and a later one within the TTL reuses it
        let (a, b) = tokio::join!(
            listings.get(&listings.containers, list),
            listings.get(&listings.containers, list)
        );
        assert!(a.is_ok() && b.is_ok());
        listings.get(&listings.containers, list).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // a change made through the runtime forces a fresh listing
        listings.changed();
        listings.get(&listings.containers, list).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // and so does age
        tokio::time::sleep(LISTING_TTL + Duration::from_millis(20)).await;
        listings.get(&listings.containers, list).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // a failed listing is not remembered
        let failing = || async {
            Err::<Vec<ContainerState>, _>(CriError::Failed {
                command: "ps".into(),
                message: "boom".into(),
            })
        };
        listings.changed();
        assert!(listings.get(&listings.containers, failing).await.is_err());
        listings.get(&listings.containers, list).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn references_normalize_like_docker() {
        assert_eq!(normalize_reference("busybox"), "busybox:latest");
        assert_eq!(
            normalize_reference("docker.io/library/busybox"),
            "busybox:latest"
        );
        assert_eq!(normalize_reference("demo-web:v2"), "demo-web:v2");
        assert_eq!(
            normalize_reference("localhost:5000/x/demo"),
            "localhost:5000/x/demo:latest"
        );
    }

    #[test]
    fn not_found_errors_are_recognised() {
        let e = CriError::Failed {
            command: "state".into(),
            message: "sandbox abc not found".into(),
        };
        assert!(is_not_found(&e));
    }
}
