//! etcd's certificates, kubeadm's layout: a CA of etcd's own (`etcd/ca.crt`, `etcd/ca.key`),
//! so that only certificates it signed reach etcd, not every client of the cluster CA; etcd's
//! serving certificate (`etcd/server.crt`: SANs localhost, 127.0.0.1, ::1 and the given
//! addresses; server and client use, as kubeadm's, since etcd dials its own gateway with it);
//! and the apiserver's client certificate towards etcd (`apiserver-etcd-client.crt`, CN
//! kube-apiserver-etcd-client). Leaves last a year and are renewed under 90 days left.

use std::net::IpAddr;

use crate::{write_private, Ca, ClusterPki, KeyCert, Leaf, Result, Usage};
use crate::{CA_DAYS, LEAF_DAYS};

/// etcd's CA certificate, relative to the PKI directory (`--trusted-ca-file`, `--etcd-cafile`).
pub const ETCD_CA_CERT: &str = "etcd/ca.crt";
/// etcd's CA key.
pub const ETCD_CA_KEY: &str = "etcd/ca.key";
/// etcd's serving certificate (`--cert-file`).
pub const ETCD_SERVER_CERT: &str = "etcd/server.crt";
/// Its key (`--key-file`).
pub const ETCD_SERVER_KEY: &str = "etcd/server.key";
/// The apiserver's client certificate towards etcd (`--etcd-certfile`).
pub const APISERVER_ETCD_CLIENT_CERT: &str = "apiserver-etcd-client.crt";
/// Its key (`--etcd-keyfile`).
pub const APISERVER_ETCD_CLIENT_KEY: &str = "apiserver-etcd-client.key";

/// The CN of the apiserver's etcd client certificate (kubeadm's).
pub const APISERVER_ETCD_CLIENT_CN: &str = "kube-apiserver-etcd-client";

/// etcd's certificates, ensured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdPki {
    /// etcd's CA certificate (PEM): what etcd trusts for clients and clients for etcd.
    pub ca_pem: String,
    /// etcd's serving certificate and key.
    pub server: KeyCert,
    /// The apiserver's client certificate and key.
    pub apiserver_client: KeyCert,
}

fn read(path: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

impl ClusterPki {
    /// Makes (or keeps) etcd's CA, etcd's serving certificate for `ips` (besides localhost,
    /// 127.0.0.1 and ::1) and the apiserver's etcd client certificate, in the `etcd/`
    /// subdirectory and `apiserver-etcd-client.*`. The cluster CA is not used: a certificate it
    /// signed (an admin's, a node's) does not reach etcd.
    pub fn ensure_etcd(&self, ips: &[IpAddr]) -> Result<EtcdPki> {
        let dir = self.dir();
        let ca = match (read(&dir.join(ETCD_CA_CERT)), read(&dir.join(ETCD_CA_KEY))) {
            (Some(c), Some(k)) => Ca::from_pem(&c, &k)?,
            _ => {
                let ca = Ca::generate("etcd-ca", CA_DAYS)?;
                write_private(&dir.join(ETCD_CA_KEY), ca.key_pem().as_bytes())?;
                write_private(&dir.join(ETCD_CA_CERT), ca.cert_pem.as_bytes())?;
                ca
            }
        };
        let mut server_ips = vec![
            IpAddr::from([127, 0, 0, 1]),
            IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ];
        for ip in ips {
            if !server_ips.contains(ip) {
                server_ips.push(*ip);
            }
        }
        let server = self.ensure_leaf(
            &ca,
            "etcd/server",
            &Leaf {
                cn: "kube-etcd".into(),
                orgs: vec![],
                dns: vec!["localhost".into()],
                ips: server_ips,
                usage: Usage::ServerAndClient,
                days: LEAF_DAYS,
            },
        )?;
        let apiserver_client = self.ensure_leaf(
            &ca,
            "apiserver-etcd-client",
            &Leaf {
                cn: APISERVER_ETCD_CLIENT_CN.into(),
                orgs: vec![],
                dns: vec![],
                ips: vec![],
                usage: Usage::Client,
                days: LEAF_DAYS,
            },
        )?;
        Ok(EtcdPki {
            ca_pem: ca.cert_pem,
            server,
            apiserver_client,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{info, verify, PkiOptions};

    fn opts() -> PkiOptions {
        PkiOptions {
            cluster_domain: "cluster.local".into(),
            service_ip: "10.96.0.1".parse().unwrap(),
            apiserver_ips: vec!["127.0.0.1".parse().unwrap()],
            apiserver_names: vec![],
        }
    }

    fn ext_key_usage(pem: &str) -> (bool, bool) {
        let der = crate::pem_to_der(pem, "test").unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        (eku.server_auth, eku.client_auth)
    }

    #[test]
    fn etcd_certificates_have_their_own_ca_names_and_private_keys() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let pki = ClusterPki::ensure(d.path(), &opts()).unwrap();
        let etcd = pki.ensure_etcd(&["192.168.77.1".parse().unwrap()]).unwrap();
        assert_ne!(etcd.ca_pem, pki.ca_pem, "etcd has a CA of its own");
        assert!(verify(&etcd.server.cert_pem, &etcd.ca_pem));
        assert!(verify(&etcd.apiserver_client.cert_pem, &etcd.ca_pem));
        assert!(!verify(&etcd.apiserver_client.cert_pem, &pki.ca_pem));
        let admin = pki.component(crate::Component::Admin).unwrap();
        assert!(
            !verify(&admin.cert_pem, &etcd.ca_pem),
            "cluster CA clients are not etcd's"
        );

        let server = info(&etcd.server.cert_pem).unwrap();
        for ip in ["127.0.0.1", "::1", "192.168.77.1"] {
            assert!(
                server.ips.contains(&ip.parse().unwrap()),
                "{ip}: {server:?}"
            );
        }
        assert!(server.dns.iter().any(|n| n == "localhost"));
        assert_eq!(ext_key_usage(&etcd.server.cert_pem), (true, true));
        let client = info(&etcd.apiserver_client.cert_pem).unwrap();
        assert_eq!(client.cn, APISERVER_ETCD_CLIENT_CN);
        assert_eq!(
            ext_key_usage(&etcd.apiserver_client.cert_pem),
            (false, true)
        );
        let days = (client.not_after - client.not_before) / 86400;
        assert!((365..=366).contains(&days), "{days} days");

        for f in [
            ETCD_CA_KEY,
            ETCD_CA_CERT,
            ETCD_SERVER_KEY,
            APISERVER_ETCD_CLIENT_KEY,
        ] {
            let m = std::fs::metadata(d.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(m & 0o777, 0o600, "{f}");
        }
        assert_eq!(
            pki.key_cert("etcd/server").unwrap(),
            etcd.server,
            "written where the constants say"
        );
        assert_eq!(
            std::fs::read_to_string(d.path().join(APISERVER_ETCD_CLIENT_CERT)).unwrap(),
            etcd.apiserver_client.cert_pem
        );

        // Again: everything kept; the cluster PKI's ensure (the apiserver's) keeps it too.
        ClusterPki::ensure(d.path(), &opts()).unwrap();
        let again = pki.ensure_etcd(&["192.168.77.1".parse().unwrap()]).unwrap();
        assert_eq!(again, etcd);
        // A new address reissues the serving certificate only.
        let more = pki.ensure_etcd(&["192.168.77.2".parse().unwrap()]).unwrap();
        assert_ne!(more.server, etcd.server);
        assert!(info(&more.server.cert_pem)
            .unwrap()
            .ips
            .contains(&"192.168.77.2".parse().unwrap()));
        assert_eq!(more.apiserver_client, etcd.apiserver_client);
        assert_eq!(more.ca_pem, etcd.ca_pem);
    }

    #[test]
    fn etcd_leaves_close_to_their_end_or_from_another_ca_are_renewed() {
        let d = tempfile::tempdir().unwrap();
        let pki = ClusterPki::ensure(d.path(), &opts()).unwrap();
        let etcd = pki.ensure_etcd(&[]).unwrap();
        let ca = Ca::from_pem(
            &etcd.ca_pem,
            &std::fs::read_to_string(d.path().join(ETCD_CA_KEY)).unwrap(),
        )
        .unwrap();
        let short = ca
            .issue(&Leaf {
                cn: APISERVER_ETCD_CLIENT_CN.into(),
                orgs: vec![],
                dns: vec![],
                ips: vec![],
                usage: Usage::Client,
                days: 30,
            })
            .unwrap();
        write_private(
            &d.path().join(APISERVER_ETCD_CLIENT_CERT),
            short.cert_pem.as_bytes(),
        )
        .unwrap();
        write_private(
            &d.path().join(APISERVER_ETCD_CLIENT_KEY),
            short.key_pem.as_bytes(),
        )
        .unwrap();
        // The server certificate signed by the cluster CA instead of etcd's.
        let cluster_ca = Ca::from_pem(
            &pki.ca_pem,
            &std::fs::read_to_string(d.path().join("ca.key")).unwrap(),
        )
        .unwrap();
        let foreign = cluster_ca
            .issue(&Leaf {
                cn: "kube-etcd".into(),
                orgs: vec![],
                dns: vec!["localhost".into()],
                ips: vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
                usage: Usage::ServerAndClient,
                days: LEAF_DAYS,
            })
            .unwrap();
        write_private(
            &d.path().join(ETCD_SERVER_CERT),
            foreign.cert_pem.as_bytes(),
        )
        .unwrap();
        write_private(&d.path().join(ETCD_SERVER_KEY), foreign.key_pem.as_bytes()).unwrap();

        let renewed = pki.ensure_etcd(&[]).unwrap();
        assert_eq!(renewed.ca_pem, etcd.ca_pem);
        let client = info(&renewed.apiserver_client.cert_pem).unwrap();
        assert!(client.not_after - client.not_before > 300 * 86400);
        assert!(verify(&renewed.server.cert_pem, &etcd.ca_pem));
        assert_ne!(renewed.server, foreign);
    }
}
