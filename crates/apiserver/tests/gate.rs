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
    call(s, "GET", path, None, cert, token, &[])
}

/// Any request, as [`get`], with a JSON body and extra headers.
fn call(
    s: &Server,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
    cert: Option<&pki::KeyCert>,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, String) {
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
    let mut head = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    if !body.is_empty() {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    write!(
        tls,
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{head}Connection: close\r\n\r\n{body}"
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

fn admin_of(s: &Server) -> pki::KeyCert {
    pki::ClusterPki::open(&s.dir.path().join("pki"))
        .unwrap()
        .component(pki::Component::Admin)
        .unwrap()
}

fn json_of(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Waits until the admin may list namespaces (the server is up).
fn wait_ready(s: &Server, admin: &pki::KeyCert) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(s, "/api/v1/namespaces", Some(admin), None).0 != 200 {
        assert!(Instant::now() < deadline, "not ready: {}", s.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn post(s: &Server, path: &str, body: serde_json::Value, admin: &pki::KeyCert) -> (u16, String) {
    call(s, "POST", path, Some(&body), Some(admin), None, &[])
}

/// Retries `f` for a few seconds until it gives `want` (the indexes behind the gate follow the
/// watch cache, a moment behind a write).
fn eventually(want: u16, mut f: impl FnMut() -> (u16, String)) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, body) = f();
        if code == want {
            return body;
        }
        assert!(Instant::now() < deadline, "want {want}, got {code}: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn service_account_and_bootstrap_tokens_reviews_and_impersonation() {
    let s = start(&[]);
    let admin = admin_of(&s);
    wait_ready(&s, &admin);
    let sa_path = "/api/v1/namespaces/default/serviceaccounts";
    for name in ["default", "robot", "other"] {
        let (code, body) = post(
            &s,
            sa_path,
            serde_json::json!({"metadata": {"name": name}}),
            &admin,
        );
        assert!(code == 201 || code == 409, "{code} {body}");
    }

    // TokenRequest: 3600 s and the server's audience by default; under ten minutes refused.
    let token_path = "/api/v1/namespaces/default/serviceaccounts/robot/token";
    let (code, body) = post(&s, token_path, serde_json::json!({"spec": {}}), &admin);
    assert_eq!(code, 201, "{body}");
    let tr = json_of(&body);
    assert_eq!(tr["kind"], "TokenRequest");
    assert_eq!(tr["spec"]["expirationSeconds"], 3600);
    assert_eq!(
        tr["spec"]["audiences"],
        serde_json::json!(["https://kubernetes.default.svc.cluster.local"])
    );
    let token = tr["status"]["token"].as_str().unwrap().to_string();
    let (code, body) = post(
        &s,
        token_path,
        serde_json::json!({"spec": {"expirationSeconds": 599}}),
        &admin,
    );
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        json_of(&body)["message"],
        "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes"
    );
    let (code, _) = post(
        &s,
        "/api/v1/namespaces/default/serviceaccounts/nobody/token",
        serde_json::json!({}),
        &admin,
    );
    assert_eq!(code, 404);

    // The token is the ServiceAccount: authenticated, and allowed nothing RBAC does not grant.
    let body = eventually(403, || {
        get(&s, "/api/v1/namespaces/default/pods", None, Some(&token))
    });
    assert!(
        body.contains(
            r#"User \"system:serviceaccount:default:robot\" cannot list resource \"pods\""#
        ),
        "{body}"
    );
    let (code, body) = call(
        &s,
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        Some(
            &serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
        ),
        None,
        Some(&token),
        &[],
    );
    // Only RBAC grants selfsubjectreviews (system:basic-user); without it the request is a
    // 403 naming the ServiceAccount, with it the review names it.
    if code == 201 {
        let u = &json_of(&body)["status"]["userInfo"];
        assert_eq!(u["username"], "system:serviceaccount:default:robot");
        assert_eq!(
            u["groups"],
            serde_json::json!([
                "system:serviceaccounts",
                "system:serviceaccounts:default",
                "system:authenticated"
            ])
        );
    } else {
        assert_eq!(code, 403, "{body}");
    }

    // TokenReview (by the admin): who the token is, for which audiences.
    let review = |tok: &str, auds: serde_json::Value| {
        let (code, body) = post(
            &s,
            "/apis/authentication.k8s.io/v1/tokenreviews",
            serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                "spec": {"token": tok, "audiences": auds}}),
            &admin,
        );
        assert_eq!(code, 201, "{body}");
        json_of(&body)["status"].clone()
    };
    let st = review(&token, serde_json::json!([]));
    assert_eq!(st["authenticated"], true, "{st}");
    assert_eq!(
        st["user"]["username"],
        "system:serviceaccount:default:robot"
    );
    assert!(
        st["user"]["extra"]["authentication.kubernetes.io/credential-id"][0]
            .as_str()
            .unwrap()
            .starts_with("JTI=")
    );
    let st = review(&token, serde_json::json!(["vault"]));
    assert_ne!(st["authenticated"], true, "{st}");
    assert_eq!(
        review("t0ken-bob", serde_json::json!([]))["user"]["username"],
        "bob"
    );
    // A token for another audience is not accepted by the apiserver.
    let (code, body) = post(
        &s,
        token_path,
        serde_json::json!({"spec": {"audiences": ["vault"]}}),
        &admin,
    );
    assert_eq!(code, 201, "{body}");
    let vault = json_of(&body)["status"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(get(&s, "/api/v1/nodes", None, Some(&vault)).0, 401);
    // A forged token (signature from another key) is a 401.
    let mut forged = token.clone();
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    assert_eq!(get(&s, "/api/v1/nodes", None, Some(&forged)).0, 401);

    // Bound to a pod: valid while the pod is, and the pod's ServiceAccount must be the token's.
    let (code, body) = post(
        &s,
        "/api/v1/namespaces/default/pods",
        serde_json::json!({"metadata": {"name": "p"}, "spec": {"serviceAccountName": "robot",
            "containers": [{"name": "c", "image": "busybox"}]}}),
        &admin,
    );
    assert_eq!(code, 201, "{body}");
    let (code, body) = post(
        &s,
        token_path,
        serde_json::json!({"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p"}}}),
        &admin,
    );
    assert_eq!(code, 201, "{body}");
    let bound = json_of(&body)["status"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        review(&bound, serde_json::json!([]))["user"]["extra"]
            ["authentication.kubernetes.io/pod-name"],
        serde_json::json!(["p"])
    );
    let (code, body) = post(
        &s,
        "/api/v1/namespaces/default/serviceaccounts/other/token",
        serde_json::json!({"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p"}}}),
        &admin,
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        json_of(&body)["message"],
        "cannot bind token for serviceaccount \"other\" to pod running with different serviceaccount name."
    );
    let (code, body) = post(
        &s,
        token_path,
        serde_json::json!({"spec": {"boundObjectRef": {"kind": "ConfigMap", "apiVersion": "v1", "name": "x"}}}),
        &admin,
    );
    assert_eq!(code, 400, "{body}");
    let (code, body) = call(
        &s,
        "DELETE",
        "/api/v1/namespaces/default/pods/p?gracePeriodSeconds=0",
        None,
        Some(&admin),
        None,
        &[],
    );
    assert_eq!(code, 200, "{body}");
    eventually(401, || get(&s, "/api/v1/nodes", None, Some(&bound)));
    // Deleting the ServiceAccount revokes its tokens.
    assert_eq!(get(&s, "/api/v1/nodes", None, Some(&token)).0, 403);
    let (code, body) = call(
        &s,
        "DELETE",
        &format!("{sa_path}/robot"),
        None,
        Some(&admin),
        None,
        &[],
    );
    assert_eq!(code, 200, "{body}");
    eventually(401, || get(&s, "/api/v1/nodes", None, Some(&token)));

    // Bootstrap tokens: the Secret's token authenticates until it expires.
    let b64 = |v: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(v)
    };
    for (id, expiration) in [
        ("abcdef", "2099-01-01T00:00:00Z"),
        ("zzzzzz", "2020-01-01T00:00:00Z"),
    ] {
        let (code, body) = post(
            &s,
            "/api/v1/namespaces/kube-system/secrets",
            serde_json::json!({"metadata": {"name": format!("bootstrap-token-{id}")},
                "type": "bootstrap.kubernetes.io/token",
                "data": {"token-id": b64(id), "token-secret": b64("0123456789abcdef"),
                    "expiration": b64(expiration), "usage-bootstrap-authentication": b64("true")}}),
            &admin,
        );
        assert_eq!(code, 201, "{body}");
    }
    let body = eventually(403, || {
        get(&s, "/api/v1/nodes", None, Some("abcdef.0123456789abcdef"))
    });
    assert!(
        body.contains(r#"User \"system:bootstrap:abcdef\""#),
        "{body}"
    );
    assert_eq!(
        get(&s, "/api/v1/nodes", None, Some("zzzzzz.0123456789abcdef")).0,
        401
    );
    assert_eq!(
        get(&s, "/api/v1/nodes", None, Some("abcdef.0123456789abcdex")).0,
        401
    );

    // Impersonation: the admin may be bob (and is then refused as bob); bob may not be alice.
    let (code, body) = call(
        &s,
        "GET",
        "/api/v1/nodes",
        None,
        Some(&admin),
        None,
        &[("Impersonate-User", "bob")],
    );
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains(r#"User \"bob\" cannot list resource \"nodes\""#),
        "{body}"
    );
    let (code, body) = call(
        &s,
        "GET",
        "/api/v1/nodes",
        None,
        None,
        Some("t0ken-bob"),
        &[("Impersonate-User", "alice")],
    );
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        json_of(&body)["message"],
        "users \"alice\" is forbidden: User \"bob\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
    );

    // Access reviews: about another user, and malformed ones refused with field paths.
    let sar = |spec: serde_json::Value| {
        post(
            &s,
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            serde_json::json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}),
            &admin,
        )
    };
    let (code, body) = sar(serde_json::json!({"user": "bob",
        "resourceAttributes": {"verb": "list", "resource": "nodes"}}));
    assert_eq!(code, 201, "{body}");
    assert_eq!(json_of(&body)["status"]["allowed"], false);
    let (code, body) = sar(serde_json::json!({"groups": ["system:masters"],
        "resourceAttributes": {"verb": "delete", "resource": "nodes"}}));
    assert_eq!(code, 201, "{body}");
    assert_eq!(json_of(&body)["status"]["allowed"], true);
    let (code, body) = sar(serde_json::json!({"resourceAttributes": {"verb": "list"}}));
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        json_of(&body)["message"],
        "SubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.user: Invalid value: \"\": at least one of user or group must be specified"
    );
    let (code, body) = sar(serde_json::json!({"user": "bob"}));
    assert_eq!(code, 422, "{body}");
    assert!(
        body.contains(
            "exactly one of nonResourceAttributes or resourceAttributes must be specified"
        ),
        "{body}"
    );
}

#[tokio::test]
async fn the_node_authorizer_gives_a_kubelet_only_its_pods_objects() {
    let s = start(&[]);
    let admin = admin_of(&s);
    wait_ready(&s, &admin);
    let (n1, _) = pki::ClusterPki::open(&s.dir.path().join("pki"))
        .unwrap()
        .ensure_node("n1", &[])
        .unwrap();
    let (code, body) = post(
        &s,
        "/api/v1/namespaces/default/serviceaccounts",
        serde_json::json!({"metadata": {"name": "default"}}),
        &admin,
    );
    assert!(code == 201 || code == 409, "{body}");
    for (secret, pod, node) in [("s1", "p1", "n1"), ("s2", "p2", "n2")] {
        let (code, body) = post(
            &s,
            "/api/v1/namespaces/default/secrets",
            serde_json::json!({"metadata": {"name": secret}}),
            &admin,
        );
        assert_eq!(code, 201, "{body}");
        let (code, body) = post(
            &s,
            "/api/v1/namespaces/default/pods",
            serde_json::json!({"metadata": {"name": pod}, "spec": {"nodeName": node,
                "volumes": [{"name": "v", "secret": {"secretName": secret}}],
                "containers": [{"name": "c", "image": "busybox"}]}}),
            &admin,
        );
        assert_eq!(code, 201, "{body}");
    }
    let as_n1 = |path: &str| get(&s, path, Some(&n1), None);
    eventually(200, || as_n1("/api/v1/namespaces/default/secrets/s1"));
    eventually(200, || as_n1("/api/v1/namespaces/default/pods/p1"));
    let (code, body) = as_n1("/api/v1/namespaces/default/secrets/s2");
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        json_of(&body)["message"],
        "secrets \"s2\" is forbidden: User \"system:node:n1\" cannot get resource \"secrets\" in API group \"\" in the namespace \"default\": no relationship found between node 'n1' and this object"
    );
    assert_eq!(as_n1("/api/v1/namespaces/default/pods/p2").0, 403);
    assert_eq!(as_n1("/api/v1/namespaces/default/secrets").0, 403);
    assert_eq!(as_n1("/api/v1/pods").0, 403);
    assert_eq!(
        as_n1("/api/v1/pods?fieldSelector=spec.nodeName%3Dn1").0,
        200
    );
    assert_eq!(as_n1("/api/v1/nodes/n1").0, 404);
    assert_eq!(as_n1("/api/v1/nodes/n2").0, 403);
    // The pod leaves the node: so does the secret.
    let (code, _) = call(
        &s,
        "DELETE",
        "/api/v1/namespaces/default/pods/p1?gracePeriodSeconds=0",
        None,
        Some(&admin),
        None,
        &[],
    );
    assert_eq!(code, 200);
    eventually(403, || as_n1("/api/v1/namespaces/default/secrets/s1"));
}

#[tokio::test]
async fn rbac_grants_what_is_bound_and_nobody_grants_more_than_they_hold() {
    let s = start(&[]);
    let admin = admin_of(&s);
    wait_ready(&s, &admin);
    let rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/team";
    let (code, body) = post(
        &s,
        "/api/v1/namespaces",
        serde_json::json!({"metadata": {"name": "team"}}),
        &admin,
    );
    assert_eq!(code, 201, "{body}");
    // bob may manage roles and bindings in "team" (not with "*", which includes the escalate
    // and bind verbs), and holds nothing else there.
    let (code, body) = post(
        &s,
        &format!("{rbac}/roles"),
        serde_json::json!({"metadata": {"name": "rbac-manager"}, "rules": [
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
             "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}]}),
        &admin,
    );
    assert_eq!(code, 201, "{body}");
    let (code, body) = post(
        &s,
        &format!("{rbac}/rolebindings"),
        serde_json::json!({"metadata": {"name": "bob-rbac"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "rbac-manager"},
            "subjects": [{"kind": "User", "name": "bob"}]}),
        &admin,
    );
    assert_eq!(code, 201, "{body}");
    let as_bob = |method: &str, path: &str, body: Option<serde_json::Value>| {
        call(
            &s,
            method,
            path,
            body.as_ref(),
            None,
            Some("t0ken-bob"),
            &[],
        )
    };
    let pod_reader = serde_json::json!({"metadata": {"name": "pod-reader"}, "rules": [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]});
    // Granting what he does not hold is refused, with upstream's message; nothing is stored.
    let body = eventually(403, || {
        as_bob("POST", &format!("{rbac}/roles"), Some(pod_reader.clone()))
    });
    let message = json_of(&body)["message"].as_str().unwrap().to_string();
    assert!(
        message.starts_with("roles.rbac.authorization.k8s.io \"pod-reader\" is forbidden: user \"bob\" (groups=[\"dev\" \"ops\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"get\" \"list\"]}"),
        "{message}"
    );
    assert_eq!(
        get(&s, &format!("{rbac}/roles/pod-reader"), Some(&admin), None).0,
        404
    );
    let (code, body) = as_bob(
        "POST",
        &format!("{rbac}/rolebindings"),
        Some(serde_json::json!({"metadata": {"name": "bob-admin"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "User", "name": "bob"}]})),
    );
    assert_eq!(code, 403, "{body}");
    // Within what he holds, he may.
    let (code, body) = as_bob(
        "POST",
        &format!("{rbac}/roles"),
        Some(
            serde_json::json!({"metadata": {"name": "role-reader"}, "rules": [
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["get"]}]}),
        ),
    );
    assert_eq!(code, 201, "{body}");
    // The admin binds the pod reader: bob lists pods in "team", and nothing else.
    let (code, body) = post(&s, &format!("{rbac}/roles"), pod_reader.clone(), &admin);
    assert_eq!(code, 201, "{body}");
    let (code, body) = post(
        &s,
        &format!("{rbac}/rolebindings"),
        serde_json::json!({"metadata": {"name": "bob-pods"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
            "subjects": [{"kind": "User", "name": "bob"}]}),
        &admin,
    );
    assert_eq!(code, 201, "{body}");
    eventually(200, || as_bob("GET", "/api/v1/namespaces/team/pods", None));
    let (code, body) = as_bob("GET", "/api/v1/namespaces/default/pods", None);
    assert_eq!(code, 403, "{body}");
    let (code, body) = as_bob("DELETE", "/api/v1/namespaces/team/pods/x", None);
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        json_of(&body)["message"],
        "pods \"x\" is forbidden: User \"bob\" cannot delete resource \"pods\" in API group \"\" in the namespace \"team\""
    );
    // Now holding pods get/list, bob may bind the pod reader to someone else.
    let (code, body) = as_bob(
        "POST",
        &format!("{rbac}/rolebindings"),
        Some(serde_json::json!({"metadata": {"name": "carol-pods"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
            "subjects": [{"kind": "User", "name": "carol"}]})),
    );
    assert_eq!(code, 201, "{body}");
    // A malformed binding is a 422 with field paths.
    let (code, body) = post(
        &s,
        &format!("{rbac}/rolebindings"),
        serde_json::json!({"metadata": {"name": "bad"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Pod", "name": "x"},
            "subjects": [{"kind": "Robot", "name": "r"}]}),
        &admin,
    );
    assert_eq!(code, 422, "{body}");
    assert!(
        body.contains("roleRef.kind") && body.contains("subjects[0].kind"),
        "{body}"
    );
}
