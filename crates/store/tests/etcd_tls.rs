//! The conformance suite against the etcd backend over TLS, on a real etcd started per test on
//! loopback with `--client-cert-auth` and certificates of etcd's own CA (kubeadm's layout, from
//! the pki crate): the apiserver's etcd client certificate passes the whole suite; no
//! certificate, a certificate of the cluster CA, a plain-HTTP client or an unverifiable server
//! are refused.
//!
//! Needs /usr/bin/etcd (Debian's etcd-server);
//! without it every test prints a loud SKIPPED message, and fails in CI (testkit::missing).

mod common;

use std::path::Path;
use std::sync::Arc;

use common::Fixture;
use store::etcd::{EtcdStore, EtcdTls};
use store::{Store, StoreError};
use testkit::etcd::EtcdServer;

/// The TLS etcd of one test.
struct Etcd(EtcdServer);

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
}

impl Etcd {
    /// Starts etcd in TLS mode, or `None` after reporting it missing (a failure in CI).
    async fn start() -> Option<Etcd> {
        tokio::task::spawn_blocking(EtcdServer::start_tls)
            .await
            .expect("start etcd")
            .map(Etcd)
    }

    fn pki(&self) -> &Path {
        self.0.pki_dir().expect("TLS mode has a PKI")
    }

    /// TLS trusting etcd's CA and presenting `stem`'s certificate (`None`: no certificate).
    fn tls(&self, stem: Option<&str>) -> EtcdTls {
        let dir = self.pki();
        EtcdTls {
            ca_pem: read(dir, pki::ETCD_CA_CERT),
            cert_pem: stem.map(|s| read(dir, &format!("{s}.crt"))),
            key_pem: stem.map(|s| read(dir, &format!("{s}.key"))),
        }
    }

    /// The apiserver's view: etcd's CA and the apiserver-etcd-client certificate.
    fn apiserver_tls(&self) -> EtcdTls {
        self.tls(Some("apiserver-etcd-client"))
    }

    async fn connect(&self, tls: Option<EtcdTls>) -> Result<EtcdStore, StoreError> {
        EtcdStore::connect_with(&[self.0.endpoint().to_string()], None, tls).await
    }
}

async fn setup() -> Option<Fixture> {
    let etcd = Etcd::start().await?;
    assert!(etcd.0.endpoint().starts_with("https://"));
    let store = etcd
        .connect(Some(etcd.apiserver_tls()))
        .await
        .expect("connect to etcd over TLS with the apiserver's etcd client certificate");
    Some(Fixture {
        store: Arc::new(store),
        guard: Box::new(etcd),
    })
}

conformance_tests!(setup);

/// Asserts that connecting (and the first read `connect` makes) fails.
fn refused(what: &str, result: Result<EtcdStore, StoreError>) -> String {
    match result {
        Ok(_) => panic!("{what}: etcd accepted the connection"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_a_certificate_of_etcds_ca_are_refused() {
    let Some(etcd) = Etcd::start().await else {
        return;
    };
    let run = async {
        // No client certificate: etcd's --client-cert-auth refuses the handshake.
        let e = refused("no certificate", etcd.connect(Some(etcd.tls(None))).await);
        eprintln!("without a certificate: {e}");
        // TLS 1.3: the client may see etcd's alert or just the stream closed after it.
        let handshake_refused = |e: &str| e.contains("BadCertificate") || e.contains("transport");
        assert!(handshake_refused(&e), "{e}");
        // A certificate of the cluster CA (the admin's): not etcd's CA.
        let e = refused(
            "cluster CA",
            etcd.connect(Some(etcd.tls(Some("admin")))).await,
        );
        eprintln!("with the cluster CA's admin certificate: {e}");
        assert!(handshake_refused(&e), "{e}");
        // A client that does not trust etcd's CA: the server is not verified.
        let mut wrong_ca = etcd.apiserver_tls();
        wrong_ca.ca_pem = read(etcd.pki(), "ca.crt");
        let e = refused("server of another CA", etcd.connect(Some(wrong_ca)).await);
        eprintln!("trusting the cluster CA instead of etcd's: {e}");
        assert!(e.contains("UnknownIssuer"), "{e}");
        // No TLS options at all for an https:// endpoint, and TLS options for http://.
        let e = refused("https without a CA", etcd.connect(None).await);
        assert!(e.contains("no CA"), "{e}");
        let plain = etcd.0.endpoint().replacen("https://", "http://", 1);
        let e = refused(
            "plain endpoint with TLS options",
            EtcdStore::connect_with(
                std::slice::from_ref(&plain),
                None,
                Some(etcd.apiserver_tls()),
            )
            .await,
        );
        assert!(e.contains("not https://"), "{e}");
        // Plain HTTP/2 to the TLS port does not get through either.
        refused("plain HTTP", EtcdStore::connect(&[plain], None).await);
        // A certificate without its key is a usage error.
        let mut half = etcd.apiserver_tls();
        half.key_pem = None;
        let e = refused("certificate without key", etcd.connect(Some(half)).await);
        assert!(e.contains("needs its key"), "{e}");
        // And the right certificate does get through.
        let store = etcd
            .connect(Some(etcd.apiserver_tls()))
            .await
            .expect("the apiserver's etcd client certificate is accepted");
        store.create("/ok", b"1".to_vec()).await.expect("create");
        let kv = store.get("/ok").await.expect("get").expect("present");
        assert_eq!(kv.value, b"1");
    };
    tokio::time::timeout(common::CASE_TIMEOUT, run)
        .await
        .expect("test timed out");
}
