//! The apiserver as the authenticated gate (issue 15), through the real binary: by default it
//! makes its own PKI, serves TLS only and writes an admin kubeconfig carrying the CA and a
//! system:masters client certificate; upstream kubectl and kube-rs use it unchanged; requests
//! without credentials are system:anonymous and get upstream's 403; a certificate from another
//! CA or an unknown token is a 401 that says nothing more; static tokens name their user; plain
//! HTTP is refused beyond loopback.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};

struct Server {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &[&str]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = testkit::free_port();
    std::fs::write(
        dir.path().join("tokens.csv"),
        "t0ken-bob,bob,1001,\"dev,ops\"\n",
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_mini-apiserver"))
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg(format!(
            "--store=embedded:{}",
            dir.path().join("state.db").display()
        ))
        .arg(format!("--cert-dir={}", dir.path().join("pki").display()))
        .arg(format!(
            "--write-kubeconfig={}",
            dir.path().join("admin.kubeconfig").display()
        ))
        .arg(format!(
            "--token-auth-file={}",
            dir.path().join("tokens.csv").display()
        ))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
        .spawn()
        .unwrap();
    let s = Server { child, port, dir };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !s.dir.path().join("admin.kubeconfig").exists() {
        assert!(Instant::now() < deadline, "no kubeconfig: {}", s.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    s
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
    fn kubeconfig(&self) -> std::path::PathBuf {
        self.dir.path().join("admin.kubeconfig")
    }
}

/// A TLS client trusting the cluster CA, with an optional client certificate and token.
fn get(s: &Server, path: &str, cert: Option<&pki::KeyCert>, token: Option<&str>) -> (u16, String) {
    let ca = std::fs::read_to_string(s.dir.path().join("pki/ca.crt")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in apiserver::tls::certs_from_pem(&ca, "ca").unwrap() {
        roots.add(c).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(apiserver::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match cert {
        Some(kc) => builder
            .with_client_auth_cert(
                apiserver::tls::certs_from_pem(&kc.cert_pem, "c").unwrap(),
                rustls::pki_types::PrivateKeyDer::from_pem_slice(kc.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let conn = rustls::ClientConnection::new(
        Arc::new(config),
        rustls::pki_types::ServerName::IpAddress(std::net::IpAddr::from([127, 0, 0, 1]).into()),
    )
    .unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    use std::io::{Read, Write};
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (code, body)
}

use rustls::pki_types::pem::PemObject;

#[tokio::test]
async fn only_who_the_gate_knows_gets_in() {
    let s = start(&[]);
    // The server's PKI and kubeconfig are private.
    for f in [
        "admin.kubeconfig",
        "pki/ca.key",
        "pki/sa.key",
        "pki/apiserver.key",
    ] {
        let mode = std::fs::metadata(s.dir.path().join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{f}: {mode:o}");
    }
    let text = std::fs::read_to_string(s.kubeconfig()).unwrap();
    assert!(
        text.contains(&format!("server: https://127.0.0.1:{}", s.port)),
        "{text}"
    );
    assert!(text.contains("certificate-authority-data:") && text.contains("client-key-data:"));

    // kube-rs with the kubeconfig: the admin (system:masters) may do anything.
    let cfg = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(s.kubeconfig()).unwrap(),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = kube::Client::try_from(cfg).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let names = loop {
        match Api::<Namespace>::all(client.clone())
            .list(&ListParams::default())
            .await
        {
            Ok(l) => {
                break l
                    .items
                    .into_iter()
                    .map(|n| n.metadata.name.unwrap())
                    .collect::<Vec<_>>()
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "{e}: {}", s.log());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(names.contains(&"kube-system".to_string()), "{names:?}");

    // Upstream kubectl too.
    if let Some(kubectl) = testkit::kubectl() {
        let o = Command::new(kubectl)
            .arg("--kubeconfig")
            .arg(s.kubeconfig())
            .args(["get", "ns", "default", "-o", "name"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "namespace/default\n",
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    // No credentials: system:anonymous, refused with upstream's message.
    let (code, body) = get(&s, "/api/v1/namespaces/default/pods", None, None);
    assert_eq!(code, 403, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["message"],
        "pods is forbidden: User \"system:anonymous\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
    );
    assert_eq!(v["reason"], "Forbidden");

    // A static token names its user.
    let (code, body) = get(&s, "/api/v1/nodes", None, Some("t0ken-bob"));
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("User \\\"bob\\\" cannot list resource \\\"nodes\\\" in API group \\\"\\\" at the cluster scope"), "{body}");

    // Wrong token, or a certificate from another CA: 401, nothing more said.
    let unauthorized = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#;
    let (code, body) = get(&s, "/api/v1/nodes", None, Some("nope"));
    assert_eq!((code, body.trim()), (401, unauthorized));
    let stranger = pki::Ca::generate("another-ca", 1)
        .unwrap()
        .issue(&pki::Leaf {
            cn: "kubernetes-admin".into(),
            orgs: vec!["system:masters".into()],
            dns: vec![],
            ips: vec![],
            usage: pki::Usage::Client,
            days: 1,
        })
        .unwrap();
    let (code, body) = get(&s, "/api/v1/nodes", Some(&stranger), None);
    assert_eq!((code, body.trim()), (401, unauthorized));
    // The cluster's own admin certificate passes.
    let admin = pki::ClusterPki::open(&s.dir.path().join("pki"))
        .unwrap()
        .component(pki::Component::Admin)
        .unwrap();
    let (code, body) = get(&s, "/api/v1/nodes", Some(&admin), None);
    assert_eq!(code, 200, "{body}");
}

#[test]
fn plain_http_only_on_loopback() {
    let o = Command::new(env!("CARGO_BIN_EXE_mini-apiserver"))
        .args(["--insecure-plain-http", "--listen", "0.0.0.0:0"])
        .arg(format!(
            "--store=embedded:{}",
            Path::new("/nonexistent/x.db").display()
        ))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("only on a loopback --listen address"), "{err}");
}
