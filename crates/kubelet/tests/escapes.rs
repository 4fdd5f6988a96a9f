//! Root integration tests of what a pod must never reach (issue 14): a subPath through a
//! symlink the pod planted (CVE-2017-1002101's class) is refused with upstream's
//! CreateContainerConfigError while a legitimate nested subPath works; a subPath swapped for a
//! symlink in a loop while containers start never escapes; secret volumes are tmpfs and
//! payload volumes read-only; an HTTPS probe passes against a self-signed server; a pod with
//! `hostUsers: false` is root inside its user namespace and an unprivileged user outside.

mod common;

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{apply, container, err, phase, ready, text, Cluster, T};

fn waiting(p: &k8s_openapi::api::core::v1::Pod, c: &str) -> Option<(String, String)> {
    let w = container(p, c)?.state.as_ref()?.waiting.as_ref()?;
    Some((w.reason.clone()?, w.message.clone().unwrap_or_default()))
}

/// A TLS server with a fresh self-signed certificate, listening on port `port` inside the
/// network namespace `netns` (a pod's), answering 200 to every request until dropped.
struct TlsServer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsServer {
    fn start(netns: &str, port: u16) -> TlsServer {
        let key = rcgen::generate_simple_self_signed(vec!["pod.invalid".into()]).unwrap();
        let cert = key.cert.der().clone();
        let pkey =
            rustls::pki_types::PrivateKeyDer::try_from(key.signing_key.serialize_der()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], pkey)
        .unwrap();
        let config = Arc::new(config);
        let ns = std::fs::File::open(netns).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let halt = stop.clone();
        let thread = std::thread::spawn(move || {
            nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let listener = std::net::TcpListener::bind(("0.0.0.0", port)).unwrap();
            listener.set_nonblocking(true).unwrap();
            tx.send(()).unwrap();
            while !halt.load(Ordering::Relaxed) {
                let Ok((tcp, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                tcp.set_nonblocking(false).unwrap();
                tcp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut buf = [0u8; 2048];
                if tls.read(&mut buf).is_ok() {
                    let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        TlsServer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subpaths_secrets_and_https_probes_stay_inside_their_pod() {
    if !common::prerequisites("subpaths_secrets_and_https_probes_stay_inside_their_pod") {
        return;
    }
    let c = Cluster::start(&format!("ke{}", std::process::id() % 10000), 1).await;
    let plant = r#"
  initContainers:
  - name: plant
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "ln -s / /v/esc && mkdir -p /v/ok/nested && echo inside > /v/ok/nested/f"]
    volumeMounts: [{name: v, mountPath: /v}]"#;
    let manifests = format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: creds}}
stringData: {{password: hunter2}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings}}
data: {{color: blue}}
---
apiVersion: v1
kind: Pod
metadata: {{name: escape}}
spec:{plant}
  containers:
  - name: main
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "ls /host; sleep 100000"]
    volumeMounts: [{{name: v, mountPath: /host, subPath: esc}}]
  volumes: [{{name: v, emptyDir: {{}}}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: nested}}
spec:{plant}
  containers:
  - name: main
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "cat /data/f; sleep 100000"]
    volumeMounts:
    - {{name: v, mountPath: /data, subPath: ok/nested}}
    - {{name: v, mountPath: /made, subPath: new/dir}}
    - {{name: secret, mountPath: /etc/secret}}
    - {{name: cfg, mountPath: /etc/cfg}}
    readinessProbe:
      httpGet: {{scheme: HTTPS, port: 8443, path: /ready}}
      periodSeconds: 1
  volumes:
  - {{name: v, emptyDir: {{}}}}
  - {{name: secret, secret: {{secretName: creds}}}}
  - {{name: cfg, configMap: {{name: settings}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: userns}}
spec:
  hostUsers: false
  containers:
  - name: main
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo made > /scratch/f; sleep 100000"]
    volumeMounts: [{{name: scratch, mountPath: /scratch}}]
  volumes: [{{name: scratch, emptyDir: {{}}}}]
"#
    );
    if !apply(&c, "escapes", &manifests) {
        return;
    }
    // The planted link is refused with upstream's reason and message, and an event says so.
    let want = "failed to prepare subPath for volumeMount \"v\" of container \"main\"";
    let p = c
        .wait_pod("default", "escape", T, "CreateContainerConfigError", |p| {
            waiting(p, "main").is_some_and(|(r, _)| r == "CreateContainerConfigError")
        })
        .await;
    assert_eq!(waiting(&p, "main").unwrap().1, want);
    assert_ne!(phase(&p), "Running");
    let events = c
        .kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=escape",
            "-o",
            "json",
        ])
        .unwrap();
    assert!(
        text(&events).contains(&format!("Error: {}", want.replace('"', "\\\""))),
        "{}",
        text(&events)
    );
    // The nested subPath works and a missing one is made inside the volume.
    c.wait_pod("default", "nested", T, "Running", |p| phase(p) == "Running")
        .await;
    let exec = |script: &str| {
        c.kubectl(&["exec", "nested", "-c", "main", "--", "sh", "-c", script])
            .unwrap()
    };
    let o = exec("cat /data/f && ls -d /made");
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(text(&o), "inside\n/made\n");
    // Secrets are on a tmpfs, payload volumes are read-only whatever the pod asks.
    let mounts = text(&exec("cat /proc/mounts"));
    let line = |dir: &str| {
        mounts
            .lines()
            .find(|l| l.split(' ').nth(1) == Some(dir))
            .unwrap_or_else(|| panic!("{dir} not mounted:\n{mounts}"))
            .to_string()
    };
    let secret = line("/etc/secret");
    assert_eq!(secret.split(' ').nth(2), Some("tmpfs"), "{secret}");
    assert!(
        secret.split(' ').nth(3).unwrap().starts_with("ro"),
        "{secret}"
    );
    assert!(line("/etc/cfg")
        .split(' ')
        .nth(3)
        .unwrap()
        .starts_with("ro"));
    for dir in ["/etc/secret", "/etc/cfg"] {
        let o = exec(&format!("echo x > {dir}/new"));
        assert!(!o.status.success(), "{dir} is writable");
    }
    assert_eq!(text(&exec("cat /etc/secret/password")), "hunter2");
    // On the node too: the secret volume is a tmpfs mount, not a directory on the disk.
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = c.nodes[0].root.display().to_string();
    assert!(
        host_mounts.lines().any(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            f[4].starts_with(&root) && f[4].ends_with("/volumes/secret") && l.contains(" - tmpfs ")
        }),
        "no tmpfs for the secret volume under {root}"
    );
    // HTTPS readiness: failing while nothing listens, passing against a self-signed server.
    let p = c.pods("default").get("nested").await.unwrap();
    assert!(!ready(&p), "ready without a server");
    let sb = c
        .sandboxes(0)
        .into_iter()
        .find(|s| s["name"] == "nested")
        .expect("sandbox of nested");
    let _server = TlsServer::start(sb["netns"].as_str().unwrap(), 8443);
    c.wait_pod("default", "nested", T, "Ready through HTTPS", ready)
        .await;
    let p = c.pods("default").get("nested").await.unwrap();
    assert!(ready(&p));
    // Every file the node keeps is private (pod content aside), with pods of every kind running.
    let roots: Vec<_> = c.nodes.iter().map(|n| n.root.clone()).collect();
    let exposed = testkit::privacy::exposed(&roots);
    assert!(exposed.is_empty(), "state readable by others: {exposed:#?}");
    // hostUsers: false: root inside a user namespace, the first free id block outside.
    c.wait_pod("default", "userns", T, "Running", |p| phase(p) == "Running")
        .await;
    let uexec = |script: &str| {
        c.kubectl(&["exec", "userns", "--", "sh", "-c", script])
            .unwrap()
    };
    let map: Vec<String> = text(&uexec("cat /proc/self/uid_map"))
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(map, ["0", "65536", "65536"]);
    assert_eq!(text(&uexec("id -u; cat /scratch/f")), "0\nmade\n");
    let sb = c
        .sandboxes(0)
        .into_iter()
        .find(|s| s["name"] == "userns")
        .expect("sandbox of userns");
    let status = std::fs::read_to_string(format!("/proc/{}/status", sb["pid"])).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(uid.split_whitespace().nth(1), Some("65536"), "{uid}");
    c.kubectl(&[
        "delete",
        "pod",
        "escape",
        "nested",
        "userns",
        "--wait=true",
        "--timeout=60s",
    ]);
    drop(_server);
    let left = c.shutdown();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subpath_swapped_for_a_symlink_while_containers_start_never_escapes() {
    if !common::prerequisites(
        "a_subpath_swapped_for_a_symlink_while_containers_start_never_escapes",
    ) {
        return;
    }
    let c = Cluster::start(&format!("kr{}", std::process::id() % 10000), 1).await;
    // A file on the host that only an escaped mount could show.
    let marker = format!("escape-marker-{}", std::process::id());
    std::fs::write(std::path::Path::new("/tmp").join(&marker), b"host").unwrap();
    let victims = 4;
    let pods = 2;
    let mut manifest = String::new();
    for p in 0..pods {
        let mut containers = String::from(
            r#"
  - name: swapper
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "while :; do rm -rf /v/t; mkdir /v/t; usleep 2000; rm -rf /v/t; ln -s /tmp /v/t; usleep 2000; done"]
    volumeMounts: [{name: v, mountPath: /v}]"#,
        );
        for v in 0..victims {
            containers.push_str(&format!(
                r#"
  - name: victim{v}
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "if [ -e /mnt/{marker} ]; then echo ESCAPED; else echo contained; fi; sleep 100000"]
    volumeMounts: [{{name: v, mountPath: /mnt, subPath: t}}]"#
            ));
        }
        manifest.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: race{p}}}\nspec:\n  containers:{containers}\n  volumes: [{{name: v, emptyDir: {{}}}}]\n"
        ));
    }
    if !apply(&c, "race", &manifest) {
        let _ = std::fs::remove_file(std::path::Path::new("/tmp").join(&marker));
        return;
    }
    // Let the kubelet start (and retry, after back-off) the victims while the links flip.
    let mut started = 0;
    let mut refused = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(45);
    while std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(3)).await;
        for p in 0..pods {
            let pod = c.pods("default").get(&format!("race{p}")).await.unwrap();
            for v in 0..victims {
                let name = format!("victim{v}");
                if waiting(&pod, &name).is_some_and(|(r, _)| r == "CreateContainerConfigError") {
                    refused += 1;
                }
            }
        }
    }
    for p in 0..pods {
        let pod = format!("race{p}");
        for v in 0..victims {
            let o = c
                .kubectl(&["logs", &pod, "-c", &format!("victim{v}")])
                .unwrap();
            let log = text(&o);
            assert!(
                !log.contains("ESCAPED"),
                "{pod}/victim{v} saw the host: {log}"
            );
            if log.contains("contained") {
                started += 1;
            }
        }
    }
    let _ = std::fs::remove_file(std::path::Path::new("/tmp").join(&marker));
    eprintln!("victims started inside the volume: {started}, refusals seen: {refused}");
    // Both sides of the race were exercised.
    assert!(started > 0, "no victim ever started");
    assert!(refused > 0, "no start was ever refused");
    c.kubectl(&[
        "delete",
        "pod",
        "race0",
        "race1",
        "--wait=true",
        "--timeout=60s",
    ]);
    let left = c.shutdown();
    assert!(left.is_empty(), "left behind: {left:?}");
}
