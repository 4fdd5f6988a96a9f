//! The PKI `cluster up` makes before etcd starts (`up::ensure_cluster_pki` plus etcd's
//! certificates) is the one mini-apiserver keeps when handed it with `--cert-dir` and the
//! addresses `cluster up` gives it: the CA, its serving certificate and etcd's certificates
//! are not reissued. Runs the real binary (built on demand); needs no root.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use network::lab::LAB_BRIDGE_IP;

const KEPT: [&str; 8] = [
    "ca.crt",
    "ca.key",
    "apiserver.crt",
    "admin.crt",
    pki::ETCD_CA_CERT,
    pki::ETCD_SERVER_CERT,
    pki::APISERVER_ETCD_CLIENT_CERT,
    "sa.key",
];

fn snapshot(dir: &Path) -> Vec<String> {
    KEPT.iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}")))
        .collect()
}

#[test]
fn the_apiserver_keeps_the_pki_cluster_up_made() {
    let bin = testkit::build::binaries(&["apiserver"]).expect("build mini-apiserver");
    let tmp = tempfile::tempdir().unwrap();
    let pki_dir = tmp.path().join("pki");
    let cluster = localcluster::up::ensure_cluster_pki(&pki_dir).expect("cluster PKI");
    cluster.ensure_etcd(&[]).expect("etcd's certificates");
    let before = snapshot(&pki_dir);

    let port = testkit::free_port();
    let log = std::fs::File::create(tmp.path().join("apiserver.log")).unwrap();
    let mut child = Command::new(bin.join("mini-apiserver"))
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg(format!("--advertise-address={LAB_BRIDGE_IP}"))
        .arg(format!("--cert-dir={}", pki_dir.display()))
        .arg(format!(
            "--store=embedded:{}",
            tmp.path().join("state.db").display()
        ))
        .arg(format!(
            "--write-kubeconfig={}",
            tmp.path().join("admin.conf").display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn mini-apiserver");
    let deadline = Instant::now() + Duration::from_secs(60);
    let serving = loop {
        if tmp.path().join("admin.conf").exists() && TcpStream::connect(("127.0.0.1", port)).is_ok()
        {
            break true;
        }
        if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        serving,
        "mini-apiserver did not serve: {}",
        std::fs::read_to_string(tmp.path().join("apiserver.log")).unwrap_or_default()
    );
    let after = snapshot(&pki_dir);
    for (i, f) in KEPT.iter().enumerate() {
        assert_eq!(before[i], after[i], "{f} was rewritten by the apiserver");
    }
    // Its serving certificate names what cluster up reaches it at.
    let api = pki::info(&after[2]).unwrap();
    for ip in ["127.0.0.1", "192.168.77.1", "10.96.0.1"] {
        assert!(api.ips.contains(&ip.parse().unwrap()), "{ip}: {api:?}");
    }
}
