//! The cluster's public-key infrastructure, as kubeadm lays it out: a cluster CA (10 years),
//! leaf certificates it signs (1 year; serving certificates with their SANs, client
//! certificates whose CN is the user and O the groups), renewal of leaves with less than 90
//! days left (the most common complaint about k3s is expired certificates), reading a
//! certificate's identity and expiry back, kubeadm's CA hash for joining, and kubeconfigs that
//! carry the CA and a client certificate. Keys are ECDSA P-256 and written 0600.

mod cluster;
mod etcd;
mod kubeconfig;

pub use cluster::{ClusterPki, Component, PkiOptions};
pub use etcd::{
    EtcdPki, APISERVER_ETCD_CLIENT_CERT, APISERVER_ETCD_CLIENT_CN, APISERVER_ETCD_CLIENT_KEY,
    ETCD_CA_CERT, ETCD_CA_KEY, ETCD_SERVER_CERT, ETCD_SERVER_KEY,
};
pub use kubeconfig::{kubeconfig, Credential};

use std::net::IpAddr;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// What went wrong with a certificate or key.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Making or signing a certificate failed.
    #[error("{what}: {source}")]
    Rcgen {
        /// What was being done.
        what: String,
        /// Cause.
        #[source]
        source: rcgen::Error,
    },
    /// A certificate or key could not be parsed.
    #[error("{what}: {reason}")]
    Parse {
        /// Which one.
        what: String,
        /// Why.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, PkiError>;

fn rc(what: impl Into<String>) -> impl FnOnce(rcgen::Error) -> PkiError {
    let what = what.into();
    move |source| PkiError::Rcgen { what, source }
}

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCert {
    /// The certificate.
    pub cert_pem: String,
    /// The PKCS#8 private key.
    pub key_pem: String,
}

/// What a leaf certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// TLS server (serverAuth).
    Server,
    /// TLS client (clientAuth).
    Client,
    /// Both (etcd's serving certificate: etcd also dials itself with it, as kubeadm's does).
    ServerAndClient,
}

/// A leaf certificate to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    /// Subject CN: the user for client certificates.
    pub cn: String,
    /// Subject O: the group for client certificates (the first one is used).
    pub orgs: Vec<String>,
    /// DNS SANs.
    pub dns: Vec<String>,
    /// IP SANs.
    pub ips: Vec<IpAddr>,
    /// Server or client.
    pub usage: Usage,
    /// Validity in days.
    pub days: i64,
}

/// Days a CA is valid.
pub const CA_DAYS: i64 = 3650;
/// Days a leaf is valid.
pub const LEAF_DAYS: i64 = 365;
/// A leaf with fewer days left than this is renewed at start.
pub const RENEW_DAYS: i64 = 90;

/// A certificate authority: its certificate and key.
pub struct Ca {
    /// The CA certificate (PEM), what clients trust.
    pub cert_pem: String,
    key_pem: String,
}

impl Ca {
    /// A new self-signed CA named `cn`, valid `days`.
    pub fn generate(cn: &str, days: i64) -> Result<Ca> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(rc("CA key"))?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(rc("CA params"))?;
        params.distinguished_name = name(cn, &[]);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, days);
        let cert = params.self_signed(&key).map_err(rc("CA certificate"))?;
        Ok(Ca {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The CA from its PEM certificate and key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Ca> {
        // Parse both now, so a broken pair fails here rather than at the first signature.
        KeyPair::from_pem(key_pem).map_err(rc("CA key"))?;
        parse(cert_pem, "CA certificate")?;
        Ok(Ca {
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
        })
    }

    /// The key, PEM (for writing it out).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Issues `leaf`, signed by this CA, with a fresh key.
    pub fn issue(&self, leaf: &Leaf) -> Result<KeyCert> {
        let ca_key = KeyPair::from_pem(&self.key_pem).map_err(rc("CA key"))?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, ca_key).map_err(rc("CA"))?;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(rc(format!("key of {}", leaf.cn)))?;
        let mut params = CertificateParams::new(Vec::<String>::new())
            .map_err(rc(format!("params of {}", leaf.cn)))?;
        params.distinguished_name = name(&leaf.cn, &leaf.orgs);
        params.subject_alt_names = leaf
            .dns
            .iter()
            .filter_map(|d| {
                rcgen::string::Ia5String::try_from(d.as_str())
                    .ok()
                    .map(SanType::DnsName)
            })
            .chain(leaf.ips.iter().map(|ip| SanType::IpAddress(*ip)))
            .collect();
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = match leaf.usage {
            Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Usage::ServerAndClient => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        };
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, leaf.days);
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(rc(format!("certificate of {}", leaf.cn)))?;
        Ok(KeyCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The subject: CN and the first group as O (rcgen keeps one value per attribute type; the
/// certificates this crate issues carry at most one group, and reading takes them all).
fn name(cn: &str, orgs: &[String]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    if let Some(o) = orgs.first() {
        dn.push(DnType::OrganizationName, o.as_str());
    }
    dn.push(DnType::CommonName, cn);
    dn
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = OffsetDateTime::now_utc();
    // A little back-dating tolerates clocks a minute apart, as upstream's certificates do.
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + Duration::days(days);
}

/// What a certificate says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject CN (the user).
    pub cn: String,
    /// Subject O values (the groups).
    pub orgs: Vec<String>,
    /// Not valid before (seconds since the epoch).
    pub not_before: i64,
    /// Not valid after (seconds since the epoch).
    pub not_after: i64,
    /// DNS SANs.
    pub dns: Vec<String>,
    /// IP SANs.
    pub ips: Vec<IpAddr>,
}

/// Reads the identity and validity of a DER certificate.
pub fn info_der(der: &[u8]) -> Result<CertInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| PkiError::Parse {
        what: "certificate".into(),
        reason: e.to_string(),
    })?;
    let subject = cert.subject();
    let cn = subject
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .unwrap_or("")
        .to_string();
    let orgs = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok().map(str::to_string))
        .collect();
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                x509_parser::extensions::GeneralName::DNSName(d) => dns.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(b) => {
                    if let Ok(a) = <[u8; 4]>::try_from(*b) {
                        ips.push(IpAddr::from(a));
                    } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                        ips.push(IpAddr::from(a));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(CertInfo {
        cn,
        orgs,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        dns,
        ips,
    })
}

/// The DER of the first certificate in `pem`.
pub fn pem_to_der(pem: &str, what: &str) -> Result<Vec<u8>> {
    parse(pem, what)
}

fn parse(pem: &str, what: &str) -> Result<Vec<u8>> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| PkiError::Parse {
        what: what.into(),
        reason: e.to_string(),
    })?;
    Ok(p.contents)
}

/// PEM text of DER certificates (a kubeconfig's CA data back into a CA file).
pub fn der_to_pem(ders: &[Vec<u8>]) -> String {
    use base64::Engine;
    let mut out = String::new();
    for d in ders {
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = base64::engine::general_purpose::STANDARD.encode(d);
        for line in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

/// Reads the identity and validity of a PEM certificate.
pub fn info(pem: &str) -> Result<CertInfo> {
    info_der(&parse(pem, "certificate")?)
}

/// Whether `cert_pem` is signed by the CA `ca_pem` (and not expired).
pub fn verify(cert_pem: &str, ca_pem: &str) -> bool {
    let (Ok(der), Ok(ca_der)) = (parse(cert_pem, "certificate"), parse(ca_pem, "CA")) else {
        return false;
    };
    let (Ok((_, cert)), Ok((_, ca))) = (
        x509_parser::parse_x509_certificate(&der),
        x509_parser::parse_x509_certificate(&ca_der),
    ) else {
        return false;
    };
    cert.validity().is_valid() && cert.verify_signature(Some(ca.public_key())).is_ok()
}

/// kubeadm's `--discovery-token-ca-cert-hash`: `sha256:<hex of the CA's SubjectPublicKeyInfo>`.
pub fn ca_cert_hash(ca_pem: &str) -> Result<String> {
    use sha2::Digest;
    let der = parse(ca_pem, "CA certificate")?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| PkiError::Parse {
        what: "CA certificate".into(),
        reason: e.to_string(),
    })?;
    let spki = cert.tbs_certificate.subject_pki.raw;
    Ok(format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(spki))
    ))
}

/// A serving certificate signed by a CA of its own, kept in `dir` (`serving.crt`/`.key` and
/// `serving-ca.crt`) and remade when it lacks `name` or an address of `ips` or nears its end:
/// what upstream's kubelet does when it is given no certificate.
pub fn self_signed_serving(dir: &Path, name: &str, ips: &[IpAddr]) -> Result<KeyCert> {
    let (crt, key) = (dir.join("serving.crt"), dir.join("serving.key"));
    if let (Ok(c), Ok(k)) = (std::fs::read_to_string(&crt), std::fs::read_to_string(&key)) {
        if let Ok(i) = info(&c) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            let fresh = i.not_after - now > RENEW_DAYS * 86400;
            if fresh && i.dns.iter().any(|d| d == name) && ips.iter().all(|a| i.ips.contains(a)) {
                return Ok(KeyCert {
                    cert_pem: c,
                    key_pem: k,
                });
            }
        }
    }
    let ca = Ca::generate(&format!("{name}-ca"), LEAF_DAYS)?;
    let kc = ca.issue(&Leaf {
        cn: name.to_string(),
        orgs: vec![],
        dns: vec![name.to_string()],
        ips: ips.to_vec(),
        usage: Usage::Server,
        days: LEAF_DAYS,
    })?;
    write_private(&dir.join("serving-ca.crt"), ca.cert_pem.as_bytes())?;
    write_private(&key, kc.key_pem.as_bytes())?;
    write_private(&crt, kc.cert_pem.as_bytes())?;
    Ok(kc)
}

/// Writes `data` to `path` readable by its owner only (0600), replacing it atomically.
pub fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| PkiError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(data).map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_signs_client_and_server_certificates_that_say_who_they_are() {
        let ca = Ca::generate("minicluster-ca", CA_DAYS).unwrap();
        let client = ca
            .issue(&Leaf {
                cn: "alice".into(),
                orgs: vec!["dev".into()],
                dns: vec![],
                ips: vec![],
                usage: Usage::Client,
                days: LEAF_DAYS,
            })
            .unwrap();
        let i = info(&client.cert_pem).unwrap();
        assert_eq!(i.cn, "alice");
        assert_eq!(i.orgs, vec!["dev"]);
        let days = (i.not_after - i.not_before) / 86400;
        assert!((365..=366).contains(&days), "{days}");
        let server = ca
            .issue(&Leaf {
                cn: "kube-apiserver".into(),
                orgs: vec![],
                dns: vec!["kubernetes.default.svc".into()],
                ips: vec!["10.96.0.1".parse().unwrap()],
                usage: Usage::Server,
                days: LEAF_DAYS,
            })
            .unwrap();
        let s = info(&server.cert_pem).unwrap();
        assert_eq!(s.dns, vec!["kubernetes.default.svc"]);
        assert_eq!(s.ips, vec!["10.96.0.1".parse::<IpAddr>().unwrap()]);
        let c = info(&ca.cert_pem).unwrap();
        assert!((c.not_after - c.not_before) / 86400 >= 3650);
        // Round trip through PEM.
        let again = Ca::from_pem(&ca.cert_pem, ca.key_pem()).unwrap();
        again
            .issue(&Leaf {
                cn: "bob".into(),
                orgs: vec![],
                dns: vec![],
                ips: vec![],
                usage: Usage::Client,
                days: 1,
            })
            .unwrap();
        assert!(ca_cert_hash(&ca.cert_pem).unwrap().starts_with("sha256:"));
        let der = pem_to_der(&ca.cert_pem, "ca").unwrap();
        assert_eq!(
            info(&der_to_pem(&[der])).unwrap(),
            info(&ca.cert_pem).unwrap()
        );
        assert_eq!(ca_cert_hash(&ca.cert_pem).unwrap().len(), 7 + 64);
    }

    #[test]
    fn broken_inputs_are_errors() {
        assert!(Ca::from_pem("nope", "nope").is_err());
        assert!(info("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
    }

    #[test]
    fn private_files_are_0600() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x/key.pem");
        write_private(&p, b"k").unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
