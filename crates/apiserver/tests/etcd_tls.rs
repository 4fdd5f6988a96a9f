//! mini-apiserver on an etcd that serves clients over TLS only and requires client certificates
//! (as `cluster up` runs it): with upstream's `--etcd-cafile`, `--etcd-certfile` and
//! `--etcd-keyfile` it stores and reads objects (surviving a restart); without a client
//! certificate, with one of another CA, or with an unreadable file it refuses to start and
//! says why.
//!
//! Needs /usr/bin/etcd (Debian's etcd-server);
//! without it every test prints a loud SKIPPED message, and fails in CI (testkit::missing).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::ServerProcess;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use testkit::etcd::EtcdServer;

/// The three etcd TLS flags with etcd's CA and the certificate `stem` in `pki`.
fn etcd_flags(etcd: &EtcdServer, pki: &Path, stem: &str) -> Vec<String> {
    vec![
        format!("--etcd-servers={}", etcd.endpoint()),
        format!("--etcd-cafile={}", pki.join(pki::ETCD_CA_CERT).display()),
        format!(
            "--etcd-certfile={}",
            pki.join(format!("{stem}.crt")).display()
        ),
        format!(
            "--etcd-keyfile={}",
            pki.join(format!("{stem}.key")).display()
        ),
    ]
}

/// Runs mini-apiserver with `args`, expecting it to exit with an error; returns its stderr.
fn fails_to_start(args: &[String]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mini-apiserver"))
        .args([
            "--insecure-plain-http",
            "--authorization-mode",
            "AlwaysAllow",
        ])
        .arg(format!("--listen=127.0.0.1:{}", testkit::free_port()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mini-apiserver");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut err)
                .expect("read stderr");
            assert!(!status.success(), "mini-apiserver exited 0: {err}");
            return err;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mini-apiserver {args:?} kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_and_reads_objects_in_etcd_over_tls_with_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let Some(etcd) = tokio::task::spawn_blocking(EtcdServer::start_tls)
        .await
        .unwrap()
    else {
        return;
    };
    assert!(
        etcd.endpoint().starts_with("https://"),
        "{}",
        etcd.endpoint()
    );
    let pki = etcd.pki_dir().expect("TLS mode").to_path_buf();
    let args = etcd_flags(&etcd, &pki, "apiserver-etcd-client");
    let mut server = tokio::task::block_in_place(|| {
        ServerProcess::spawn(&args, testkit::free_port(), dir.path().join("log"))
    });
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "over-tls"},
        "data": {"k": "v"},
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &cm).await.unwrap();
    let got = api.get("over-tls").await.unwrap();
    assert_eq!(
        got.data
            .as_ref()
            .and_then(|d| d.get("k"))
            .map(String::as_str),
        Some("v")
    );
    assert_eq!(
        got.metadata.resource_version,
        created.metadata.resource_version
    );
    // It is in etcd, not elsewhere: a restarted server (same flags) reads it back.
    tokio::task::block_in_place(|| server.kill9_and_restart());
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let again = api.get("over-tls").await.unwrap();
    assert_eq!(
        again.metadata.resource_version,
        created.metadata.resource_version
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_to_start_without_a_usable_etcd_client_certificate() {
    let Some(etcd) = tokio::task::spawn_blocking(EtcdServer::start_tls)
        .await
        .unwrap()
    else {
        return;
    };
    let pki = etcd.pki_dir().expect("TLS mode").to_path_buf();
    tokio::task::block_in_place(|| {
        // Only the CA: etcd wants a client certificate.
        let err = fails_to_start(&etcd_flags(&etcd, &pki, "apiserver-etcd-client")[..2]);
        assert!(err.contains("connecting to etcd at https://"), "{err}");
        // The cluster CA's admin certificate: not signed by etcd's CA.
        let err = fails_to_start(&etcd_flags(&etcd, &pki, "admin"));
        assert!(err.contains("connecting to etcd at https://"), "{err}");
        // https:// without --etcd-cafile.
        let err = fails_to_start(&[format!("--etcd-servers={}", etcd.endpoint())]);
        assert!(err.contains("no CA"), "{err}");
        // An unreadable file is named with its flag.
        let mut args = etcd_flags(&etcd, &pki, "apiserver-etcd-client");
        args[3] = "--etcd-keyfile=/nonexistent/etcd-client.key".into();
        let err = fails_to_start(&args);
        assert!(
            err.contains("--etcd-keyfile /nonexistent/etcd-client.key"),
            "{err}"
        );
        // A certificate without its key is a usage error (clap).
        let err = fails_to_start(&etcd_flags(&etcd, &pki, "apiserver-etcd-client")[..3]);
        assert!(err.contains("--etcd-keyfile"), "{err}");
    });
}
