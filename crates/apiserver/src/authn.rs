//! Authentication, upstream's chain in upstream's order: an x509 client certificate (CN = user,
//! O = groups) signed by the client CA; a bearer token from the static token file, a bound
//! ServiceAccount token ([`crate::sa_tokens`]) or a bootstrap token; else, when allowed, the
//! anonymous user. A credential that is presented but not valid is a 401, never anonymous, and
//! the answer says nothing of why (the reason is logged). A verified certificate chain is
//! remembered for a while (never past its end), so that the requests of one keep-alive
//! connection, which all present the same chain, do not each pay for its signature check.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use auth::{names, UserInfo};
use daemon::tls::{ClientCa, PeerCerts};
use http::HeaderMap;
use rustls::pki_types::CertificateDer;

/// How requests are authenticated (upstream's `--client-ca-file`, `--token-auth-file`,
/// `--anonymous-auth`).
#[derive(Default)]
pub struct Authenticator {
    /// Verifies client certificate chains against the client CA.
    client_ca: Option<ClientCa>,
    /// Static tokens.
    tokens: HashMap<String, UserInfo>,
    /// Whether requests without credentials are the anonymous user (else 401).
    pub anonymous: bool,
    /// Chains that verified (their DER, length-prefixed) → who they are, until when.
    verified: Mutex<HashMap<Vec<u8>, (UserInfo, Instant)>>,
}

/// How long a verified chain is remembered (at most: never past the leaf's notAfter). The
/// client CA is fixed for the process's life, so only the clock can change the verdict.
const VERIFIED_TTL: Duration = Duration::from_secs(300);
/// Remembered chains; past this the memory is emptied and starts again.
const VERIFIED_MAX: usize = 4096;

fn chain_key(chain: &[CertificateDer<'static>]) -> Vec<u8> {
    let mut key = Vec::with_capacity(chain.iter().map(|c| c.len() + 4).sum());
    for c in chain {
        key.extend_from_slice(&(c.len() as u32).to_be_bytes());
        key.extend_from_slice(c);
    }
    key
}

/// Until when a chain whose leaf ends at `not_after` (Unix seconds) may be remembered.
fn remember_until(not_after: i64) -> Option<Instant> {
    let now_unix = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs() as i64;
    let left = u64::try_from(not_after.checked_sub(now_unix)?).ok()?;
    Some(Instant::now() + VERIFIED_TTL.min(Duration::from_secs(left)))
}

/// Why the authenticator was not built.
#[derive(Debug, thiserror::Error)]
pub enum AuthnSetupError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A line of the token file is malformed.
    #[error("{path}:{line}: {reason}")]
    TokenFile {
        /// The file.
        path: String,
        /// The line number.
        line: usize,
        /// Why.
        reason: String,
    },
    /// The client CA is not usable.
    #[error("client CA: {0}")]
    ClientCa(String),
}

/// The outcome of authenticating one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authn {
    /// Who it is.
    User(UserInfo),
    /// Credentials were presented and are not valid (401); the reason is for the log only.
    Invalid(String),
    /// No credentials, and anonymous requests are not allowed (401).
    Missing,
}

impl Authenticator {
    /// An authenticator that lets everyone in as the anonymous user (the library default for
    /// in-process tests with `AlwaysAllow`).
    pub fn anonymous_only() -> Self {
        Authenticator {
            anonymous: true,
            ..Default::default()
        }
    }

    /// Trusts client certificates signed by the CA in `pem`.
    pub fn with_client_ca(mut self, pem: &str) -> Result<Self, AuthnSetupError> {
        let ca = ClientCa::from_pem(pem).map_err(|e| AuthnSetupError::ClientCa(e.to_string()))?;
        self.client_ca = Some(ca);
        Ok(self)
    }

    /// Reads upstream's static token file: `token,user,uid[,"group1,group2"]` per line.
    pub fn with_token_file(mut self, path: &Path) -> Result<Self, AuthnSetupError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthnSetupError::Io {
            path: path.display().to_string(),
            source,
        })?;
        self.tokens =
            parse_token_file(&text).map_err(|(line, reason)| AuthnSetupError::TokenFile {
                path: path.display().to_string(),
                line,
                reason,
            })?;
        Ok(self)
    }

    /// Adds one static token (tests and `cluster up`'s own credentials).
    pub fn with_token(mut self, token: &str, user: UserInfo) -> Self {
        self.tokens.insert(token.to_string(), user);
        self
    }

    /// Whether `token` is one of the static tokens.
    pub fn knows_token(&self, token: &str) -> bool {
        self.tokens.contains_key(token)
    }

    /// Authenticates by certificate or static token; `other_token` is asked about bearer
    /// tokens the static file does not know (ServiceAccount and bootstrap tokens): `None` when
    /// it does not recognize the token's form either.
    pub fn authenticate(
        &self,
        peer: Option<&PeerCerts>,
        headers: &HeaderMap,
        other_token: impl FnOnce(&str) -> Option<Result<UserInfo, String>>,
    ) -> Authn {
        if let Some(certs) = peer.filter(|c| !c.0.is_empty()) {
            return match self.user_of_certificate(&certs.0) {
                Ok(u) => Authn::User(authenticated(u)),
                Err(e) => Authn::Invalid(format!("client certificate: {e}")),
            };
        }
        if let Some(value) = headers.get(http::header::AUTHORIZATION) {
            let Some(token) = value
                .to_str()
                .ok()
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(str::trim)
                .filter(|t| !t.is_empty())
            else {
                return Authn::Invalid("malformed Authorization header".into());
            };
            if let Some(u) = self.tokens.get(token) {
                return Authn::User(authenticated(u.clone()));
            }
            return match other_token(token) {
                Some(Ok(u)) => Authn::User(authenticated(u)),
                Some(Err(e)) => Authn::Invalid(e),
                None => Authn::Invalid("unknown bearer token".into()),
            };
        }
        if self.anonymous {
            return Authn::User(UserInfo {
                name: names::ANONYMOUS.into(),
                groups: vec![names::UNAUTHENTICATED.into()],
                ..Default::default()
            });
        }
        Authn::Missing
    }

    fn user_of_certificate(&self, chain: &[CertificateDer<'static>]) -> Result<UserInfo, String> {
        let ca = self
            .client_ca
            .as_ref()
            .ok_or("no client CA is configured")?;
        let key = chain_key(chain);
        if let Ok(cache) = self.verified.lock() {
            if let Some((user, until)) = cache.get(&key) {
                if Instant::now() < *until {
                    return Ok(user.clone());
                }
            }
        }
        let (name, groups) = ca.identity(chain)?;
        let user = UserInfo {
            name,
            groups,
            ..Default::default()
        };
        let until = chain
            .first()
            .and_then(|leaf| pki::info_der(leaf).ok())
            .and_then(|info| remember_until(info.not_after));
        if let (Some(until), Ok(mut cache)) = (until, self.verified.lock()) {
            if cache.len() >= VERIFIED_MAX {
                cache.clear();
            }
            cache.insert(key, (user.clone(), until));
        }
        Ok(user)
    }
}

/// Every authenticated user is in `system:authenticated` (once).
fn authenticated(mut u: UserInfo) -> UserInfo {
    if !u.groups.iter().any(|g| g == names::AUTHENTICATED) {
        u.groups.push(names::AUTHENTICATED.into());
    }
    u
}

/// Parses upstream's token CSV; errors name the 1-based line.
fn parse_token_file(text: &str) -> Result<HashMap<String, UserInfo>, (usize, String)> {
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields = csv_fields(line);
        if fields.len() < 3 {
            return Err((i + 1, "want token,user,uid[,groups]".into()));
        }
        if fields[0].is_empty() || fields[1].is_empty() {
            return Err((i + 1, "empty token or user".into()));
        }
        let groups = fields
            .get(3)
            .map(|g| {
                g.split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        out.insert(
            fields[0].clone(),
            UserInfo {
                name: fields[1].clone(),
                uid: fields[2].clone(),
                groups,
                ..Default::default()
            },
        );
    }
    Ok(out)
}

/// One CSV line's fields (double quotes group commas, `""` is a quote).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                out.last_mut().expect("one field").push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => out.last_mut().expect("one field").push(c),
        }
    }
    out.into_iter().map(|f| f.trim().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn ca_and_user(cn: &str, org: &str) -> (String, PeerCerts) {
        ca_and_user_for(cn, org, 1)
    }

    fn ca_and_user_for(cn: &str, org: &str, days: i64) -> (String, PeerCerts) {
        let ca = pki::Ca::generate("test-ca", 10).unwrap();
        let kc = ca
            .issue(&pki::Leaf {
                cn: cn.into(),
                orgs: vec![org.into()],
                dns: vec![],
                ips: vec![],
                usage: pki::Usage::Client,
                days,
            })
            .unwrap();
        let certs = crate::tls::certs_from_pem(&kc.cert_pem, "c").unwrap();
        (ca.cert_pem, PeerCerts(Arc::new(certs)))
    }

    #[test]
    fn an_expired_certificate_is_refused() {
        let (ca, peer) = ca_and_user_for("alice", "dev", -1);
        let a = Authenticator::anonymous_only().with_client_ca(&ca).unwrap();
        let got = a.authenticate(Some(&peer), &HeaderMap::new(), |_| None);
        assert!(
            matches!(&got, Authn::Invalid(why) if why.contains("xpired")),
            "{got:?}"
        );
    }

    fn bearer(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {t}").parse().unwrap(),
        );
        h
    }

    #[test]
    fn certificates_signed_by_the_client_ca_name_the_user_and_groups() {
        let (ca, peer) = ca_and_user("alice", "dev");
        let a = Authenticator::anonymous_only().with_client_ca(&ca).unwrap();
        let got = a.authenticate(Some(&peer), &HeaderMap::new(), |_| None);
        assert_eq!(
            got,
            Authn::User(UserInfo {
                name: "alice".into(),
                groups: vec!["dev".into(), "system:authenticated".into()],
                ..Default::default()
            })
        );
        // A certificate from another CA is refused, not anonymous.
        let (other_ca, _) = ca_and_user("x", "y");
        let b = Authenticator::anonymous_only()
            .with_client_ca(&other_ca)
            .unwrap();
        assert!(matches!(
            b.authenticate(Some(&peer), &HeaderMap::new(), |_| None),
            Authn::Invalid(_)
        ));
    }

    #[test]
    fn a_verified_chain_is_remembered_and_others_are_still_checked() {
        let (ca, peer) = ca_and_user("alice", "dev");
        let a = Authenticator::anonymous_only().with_client_ca(&ca).unwrap();
        let first = a.authenticate(Some(&peer), &HeaderMap::new(), |_| None);
        assert_eq!(a.verified.lock().unwrap().len(), 1);
        let again = a.authenticate(Some(&peer), &HeaderMap::new(), |_| None);
        assert_eq!(first, again);
        // Another CA's certificate is not in the memory and is refused, and not remembered.
        let (_, stranger) = ca_and_user("mallory", "dev");
        assert!(matches!(
            a.authenticate(Some(&stranger), &HeaderMap::new(), |_| None),
            Authn::Invalid(_)
        ));
        assert_eq!(a.verified.lock().unwrap().len(), 1);
        // Nothing is remembered past the certificate's end.
        assert!(remember_until(0).is_none());
        let soon = remember_until(unix_now() + 10).unwrap();
        assert!(soon <= Instant::now() + Duration::from_secs(10));
    }

    fn unix_now() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[test]
    fn tokens_anonymous_and_refusals() {
        let file = "# comment\ns3cret,bob,42,\"ops,dev\"\nother,carol,7\n";
        let t = parse_token_file(file).unwrap();
        assert_eq!(t["s3cret"].groups, vec!["ops", "dev"]);
        assert_eq!(t["other"].uid, "7");
        assert_eq!(parse_token_file("a,b\n").unwrap_err().0, 1);
        let a = Authenticator {
            tokens: t,
            anonymous: true,
            ..Default::default()
        };
        let Authn::User(u) = a.authenticate(None, &bearer("s3cret"), |_| None) else {
            panic!("token not accepted");
        };
        assert_eq!(u.name, "bob");
        assert_eq!(u.groups, vec!["ops", "dev", "system:authenticated"]);
        assert!(matches!(
            a.authenticate(None, &bearer("wrong"), |_| None),
            Authn::Invalid(_)
        ));
        let Authn::User(anon) = a.authenticate(None, &HeaderMap::new(), |_| None) else {
            panic!("anonymous refused");
        };
        assert_eq!(anon.name, "system:anonymous");
        assert_eq!(anon.groups, vec!["system:unauthenticated"]);
        let strict = Authenticator::default();
        assert_eq!(
            strict.authenticate(None, &HeaderMap::new(), |_| None),
            Authn::Missing
        );
        // Other token kinds are asked.
        let via = a.authenticate(None, &bearer("eyJ.x.y"), |_| {
            Some(Ok(UserInfo {
                name: "system:serviceaccount:default:default".into(),
                ..Default::default()
            }))
        });
        assert!(matches!(via, Authn::User(u) if u.groups == vec!["system:authenticated"]));
    }
}
