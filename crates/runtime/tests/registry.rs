//! Pull from a real registry (Debian's docker-registry) on loopback (issue 4 "Done when" 5):
//! the pulled image runs, and imagePullPolicy is honoured. Skips loudly without root or without
//! the docker-registry package.

mod common;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{image, root_or_skip, TestRuntime};
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;
use serde_json::json;

/// A registry process on 127.0.0.1, killed (by pid) on drop.
struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Option<Self> {
        let bin = ["/usr/bin/docker-registry", "/usr/sbin/docker-registry"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())?;
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = dir.path().join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let reg = Registry {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(reg)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pushes the busybox OCI tarball's config and layer to `reference`.
fn push_busybox(reference: &str) {
    let mut files = std::collections::HashMap::new();
    let mut a = tar::Archive::new(std::fs::File::open(image("busybox_latest.tar")).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.header().entry_type().is_file() {
            let p = e
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            files.insert(p, v);
        }
    }
    let blob =
        |d: &str| files[&format!("blobs/sha256/{}", d.trim_start_matches("sha256:"))].clone();
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let m: serde_json::Value =
        serde_json::from_slice(&blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    let layers: Vec<ImageLayer> = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            ImageLayer::new(
                blob(l["digest"].as_str().unwrap()),
                l["mediaType"].as_str().unwrap().to_string(),
                None,
            )
        })
        .collect();
    let config = Config::new(
        blob(m["config"]["digest"].as_str().unwrap()),
        m["config"]["mediaType"].as_str().unwrap().to_string(),
        None,
    );
    let client = oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..Default::default()
    });
    let r: oci_client::Reference = reference.parse().unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(client.push(&r, &layers, config, &RegistryAuth::Anonymous, None))
        .unwrap();
}

#[test]
fn pull_from_local_registry_runs_and_honours_policy() {
    if !root_or_skip("pull_from_local_registry_runs_and_honours_policy") {
        return;
    }
    let Some(reg) = Registry::start() else {
        eprintln!("SKIPPED pull_from_local_registry_runs_and_honours_policy: docker-registry is not installed (apt-get install docker-registry)");
        return;
    };
    let reference = format!("127.0.0.1:{}/mini/bb:v1", reg.port);
    push_busybox(&reference);
    let rt = TestRuntime::new();
    // Never: absent image is an error; Always: pulls.
    assert!(!rt
        .run(&["pull", "--policy", "never", &reference])
        .status
        .success());
    let out = rt.ok(&["pull", "--insecure", &reference]);
    assert!(out.contains(&reference), "{out}");
    let pod = rt.sandbox(json!({"name": "pulled"}));
    let c = rt.start(
        &pod,
        json!({"name": "c", "image": reference, "command": ["echo", "pulled-ok"]}),
    );
    let st = rt.wait_exit(&c, Duration::from_secs(10));
    assert_eq!(st["exit_code"], 0, "{st}");
    assert_eq!(rt.logs(&c).trim(), "pulled-ok");
    // With the registry gone: IfNotPresent uses the store, Always fails.
    drop(reg);
    rt.ok(&[
        "pull",
        "--insecure",
        "--policy",
        "if-not-present",
        &reference,
    ]);
    assert!(!rt
        .run(&["pull", "--insecure", "--policy", "always", &reference])
        .status
        .success());
    let left = rt.cleanup();
    assert!(left.is_empty(), "leaked: {left:#?}");
}
