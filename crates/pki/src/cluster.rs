//! A cluster's certificate directory, kubeadm's layout: `ca.crt`/`ca.key`, the ServiceAccount
//! signing pair `sa.key`/`sa.pub`, the apiserver's serving certificate, a client certificate
//! per component (`admin`, `controller-manager`, `scheduler`, `kube-proxy`,
//! `apiserver-kubelet-client`) and per node (`nodes/<name>.crt` client, `nodes/<name>-serving.crt`
//! server). [`ClusterPki::ensure`] makes what is missing and renews leaves that are close to
//! their end or (for serving certificates) lack a wanted address. etcd's certificates (a CA of
//! their own, as kubeadm's) are made by [`ClusterPki::ensure_etcd`] (`crate::etcd`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::{info, write_private, Ca, KeyCert, Leaf, PkiError, Result, Usage};
use crate::{CA_DAYS, LEAF_DAYS, RENEW_DAYS};

/// What the certificates must name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiOptions {
    /// The cluster DNS domain (`cluster.local`).
    pub cluster_domain: String,
    /// The `kubernetes` Service's ClusterIP (10.96.0.1).
    pub service_ip: IpAddr,
    /// Addresses the apiserver is reached at (127.0.0.1, the lab or node address, ...).
    pub apiserver_ips: Vec<IpAddr>,
    /// Extra names for the apiserver's certificate (`--tls-san`).
    pub apiserver_names: Vec<String>,
}

/// A component with a client certificate of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// The cluster administrator (O=system:masters).
    Admin,
    /// mini-controller-manager.
    ControllerManager,
    /// mini-scheduler.
    Scheduler,
    /// mini-proxy (upstream's user `system:kube-proxy`).
    Proxy,
    /// The apiserver's identity towards kubelets.
    ApiserverKubeletClient,
    /// The kubelets' host-gw routes, which read every Node (the network plugin's role, as
    /// flannel's ServiceAccount).
    HostGateway,
}

impl Component {
    /// (file stem, CN, O).
    fn identity(self) -> (&'static str, &'static str, &'static [&'static str]) {
        match self {
            Component::Admin => ("admin", "kubernetes-admin", &["system:masters"]),
            Component::ControllerManager => {
                ("controller-manager", "system:kube-controller-manager", &[])
            }
            Component::Scheduler => ("scheduler", "system:kube-scheduler", &[]),
            Component::Proxy => ("kube-proxy", "system:kube-proxy", &[]),
            Component::HostGateway => ("host-gw", "system:minicluster:host-gw", &[]),
            Component::ApiserverKubeletClient => (
                "apiserver-kubelet-client",
                "kube-apiserver-kubelet-client",
                &["system:masters"],
            ),
        }
    }

    /// Every component.
    pub const ALL: [Component; 6] = [
        Component::Admin,
        Component::ControllerManager,
        Component::Scheduler,
        Component::Proxy,
        Component::ApiserverKubeletClient,
        Component::HostGateway,
    ];
}

/// A cluster's certificate directory, ensured.
#[derive(Debug, Clone)]
pub struct ClusterPki {
    dir: PathBuf,
    /// The CA certificate (PEM).
    pub ca_pem: String,
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl ClusterPki {
    /// Makes (or keeps) the CA, the ServiceAccount key pair, the apiserver's serving
    /// certificate and every component's client certificate under `dir`.
    pub fn ensure(dir: &Path, opts: &PkiOptions) -> Result<ClusterPki> {
        let ca = match (read(&dir.join("ca.crt")), read(&dir.join("ca.key"))) {
            (Some(c), Some(k)) => Ca::from_pem(&c, &k)?,
            _ => {
                let ca = Ca::generate("minicluster-ca", CA_DAYS)?;
                write_private(&dir.join("ca.key"), ca.key_pem().as_bytes())?;
                write_private(&dir.join("ca.crt"), ca.cert_pem.as_bytes())?;
                ca
            }
        };
        if read(&dir.join("sa.key")).is_none() || read(&dir.join("sa.pub")).is_none() {
            let key =
                rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|source| {
                    PkiError::Rcgen {
                        what: "ServiceAccount key".into(),
                        source,
                    }
                })?;
            write_private(&dir.join("sa.key"), key.serialize_pem().as_bytes())?;
            write_private(&dir.join("sa.pub"), key.public_key_pem().as_bytes())?;
        }
        let pki = ClusterPki {
            dir: dir.to_path_buf(),
            ca_pem: ca.cert_pem.clone(),
        };
        let d = &opts.cluster_domain;
        let mut dns: Vec<String> = [
            "kubernetes".to_string(),
            "kubernetes.default".into(),
            "kubernetes.default.svc".into(),
            format!("kubernetes.default.svc.{d}"),
            "localhost".into(),
        ]
        .into_iter()
        .chain(opts.apiserver_names.iter().cloned())
        .collect();
        dns.dedup();
        let mut ips = vec![opts.service_ip, IpAddr::from([127, 0, 0, 1])];
        ips.extend(opts.apiserver_ips.iter().copied());
        ips.dedup();
        pki.ensure_leaf(
            &ca,
            "apiserver",
            &Leaf {
                cn: "kube-apiserver".into(),
                orgs: vec![],
                dns,
                ips,
                usage: Usage::Server,
                days: LEAF_DAYS,
            },
        )?;
        for c in Component::ALL {
            let (stem, cn, orgs) = c.identity();
            pki.ensure_leaf(
                &ca,
                stem,
                &Leaf {
                    cn: cn.into(),
                    orgs: orgs.iter().map(|o| o.to_string()).collect(),
                    dns: vec![],
                    ips: vec![],
                    usage: Usage::Client,
                    days: LEAF_DAYS,
                },
            )?;
        }
        Ok(pki)
    }

    /// Opens a directory [`Self::ensure`] made (for components that only read it).
    pub fn open(dir: &Path) -> Result<ClusterPki> {
        let p = dir.join("ca.crt");
        let ca_pem = std::fs::read_to_string(&p).map_err(|source| PkiError::Io {
            path: p.display().to_string(),
            source,
        })?;
        Ok(ClusterPki {
            dir: dir.to_path_buf(),
            ca_pem,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of a file in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The certificate and key of `stem` (`apiserver`, `admin`, `nodes/n1`, ...).
    pub fn key_cert(&self, stem: &str) -> Result<KeyCert> {
        let get = |ext: &str| {
            let p = self.dir.join(format!("{stem}.{ext}"));
            std::fs::read_to_string(&p).map_err(|source| PkiError::Io {
                path: p.display().to_string(),
                source,
            })
        };
        Ok(KeyCert {
            cert_pem: get("crt")?,
            key_pem: get("key")?,
        })
    }

    /// A component's client certificate.
    pub fn component(&self, c: Component) -> Result<KeyCert> {
        self.key_cert(c.identity().0)
    }

    /// Makes (or keeps) node `name`'s client certificate (CN=system:node:<name>,
    /// O=system:nodes) and its kubelet serving certificate (SANs: the name and `ips`).
    pub fn ensure_node(&self, name: &str, ips: &[IpAddr]) -> Result<(KeyCert, KeyCert)> {
        let ca = Ca::from_pem(
            &self.ca_pem,
            &std::fs::read_to_string(self.dir.join("ca.key")).map_err(|source| PkiError::Io {
                path: self.dir.join("ca.key").display().to_string(),
                source,
            })?,
        )?;
        let user = format!("system:node:{name}");
        let client = self.ensure_leaf(
            &ca,
            &format!("nodes/{name}"),
            &Leaf {
                cn: user.clone(),
                orgs: vec!["system:nodes".into()],
                dns: vec![],
                ips: vec![],
                usage: Usage::Client,
                days: LEAF_DAYS,
            },
        )?;
        let serving = self.ensure_leaf(
            &ca,
            &format!("nodes/{name}-serving"),
            &Leaf {
                cn: user,
                orgs: vec!["system:nodes".into()],
                dns: vec![name.to_string()],
                ips: ips.to_vec(),
                usage: Usage::Server,
                days: LEAF_DAYS,
            },
        )?;
        Ok((client, serving))
    }

    /// Keeps `stem`'s certificate when it names what `leaf` asks and has more than
    /// [`RENEW_DAYS`] left and is signed by `ca`; otherwise issues a new one.
    pub(crate) fn ensure_leaf(&self, ca: &Ca, stem: &str, leaf: &Leaf) -> Result<KeyCert> {
        if let Ok(kc) = self.key_cert(stem) {
            if let Ok(i) = info(&kc.cert_pem) {
                let fresh = i.not_after - now() > RENEW_DAYS * 86400;
                let same = i.cn == leaf.cn
                    && i.orgs == leaf.orgs
                    && leaf.dns.iter().all(|d| i.dns.contains(d))
                    && leaf.ips.iter().all(|a| i.ips.contains(a));
                let signed_by_ca = crate::verify(&kc.cert_pem, &ca.cert_pem);
                if fresh && same && signed_by_ca {
                    return Ok(kc);
                }
            }
        }
        let kc = ca.issue(leaf)?;
        write_private(&self.dir.join(format!("{stem}.key")), kc.key_pem.as_bytes())?;
        write_private(
            &self.dir.join(format!("{stem}.crt")),
            kc.cert_pem.as_bytes(),
        )?;
        Ok(kc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> PkiOptions {
        PkiOptions {
            cluster_domain: "cluster.local".into(),
            service_ip: "10.96.0.1".parse().unwrap(),
            apiserver_ips: vec!["192.168.77.1".parse().unwrap()],
            apiserver_names: vec!["api.example".into()],
        }
    }

    #[test]
    fn ensure_makes_everything_once_and_renews_what_changed() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let pki = ClusterPki::ensure(d.path(), &opts()).unwrap();
        let api = info(&pki.key_cert("apiserver").unwrap().cert_pem).unwrap();
        for name in [
            "kubernetes",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "api.example",
        ] {
            assert!(api.dns.iter().any(|d| d == name), "{name}: {api:?}");
        }
        assert!(api.ips.contains(&"10.96.0.1".parse().unwrap()));
        assert!(api.ips.contains(&"127.0.0.1".parse().unwrap()));
        let admin = info(&pki.component(Component::Admin).unwrap().cert_pem).unwrap();
        assert_eq!(
            (admin.cn.as_str(), admin.orgs.clone()),
            ("kubernetes-admin", vec!["system:masters".to_string()])
        );
        for f in ["ca.key", "sa.key", "apiserver.key", "admin.key"] {
            let m = std::fs::metadata(d.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(m & 0o777, 0o600, "{f}");
        }
        // A second ensure keeps every certificate.
        let before = pki.key_cert("apiserver").unwrap();
        ClusterPki::ensure(d.path(), &opts()).unwrap();
        assert_eq!(pki.key_cert("apiserver").unwrap(), before);
        // A new address reissues the serving certificate only.
        let admin_before = pki.component(Component::Admin).unwrap();
        let mut o = opts();
        o.apiserver_ips.push("192.168.77.2".parse().unwrap());
        ClusterPki::ensure(d.path(), &o).unwrap();
        assert_ne!(pki.key_cert("apiserver").unwrap(), before);
        assert_eq!(pki.component(Component::Admin).unwrap(), admin_before);
        let (client, serving) = pki
            .ensure_node("n1", &["192.168.77.10".parse().unwrap()])
            .unwrap();
        let c = info(&client.cert_pem).unwrap();
        assert_eq!(
            (c.cn.as_str(), c.orgs.clone()),
            ("system:node:n1", vec!["system:nodes".to_string()])
        );
        assert!(info(&serving.cert_pem)
            .unwrap()
            .ips
            .contains(&"192.168.77.10".parse().unwrap()));
    }

    #[test]
    fn a_leaf_close_to_its_end_is_renewed() {
        let d = tempfile::tempdir().unwrap();
        let pki = ClusterPki::ensure(d.path(), &opts()).unwrap();
        let ca = Ca::from_pem(
            &pki.ca_pem,
            &std::fs::read_to_string(d.path().join("ca.key")).unwrap(),
        )
        .unwrap();
        // Replace the scheduler's certificate with one that has 30 days left.
        let short = ca
            .issue(&Leaf {
                cn: "system:kube-scheduler".into(),
                orgs: vec![],
                dns: vec![],
                ips: vec![],
                usage: Usage::Client,
                days: 30,
            })
            .unwrap();
        write_private(&d.path().join("scheduler.crt"), short.cert_pem.as_bytes()).unwrap();
        write_private(&d.path().join("scheduler.key"), short.key_pem.as_bytes()).unwrap();
        ClusterPki::ensure(d.path(), &opts()).unwrap();
        let renewed = info(&pki.component(Component::Scheduler).unwrap().cert_pem).unwrap();
        assert!(renewed.not_after - now() > 300 * 86400);
    }
}
