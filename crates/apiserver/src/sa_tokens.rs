//! Bound ServiceAccount tokens, as upstream issues and checks them (pkg/serviceaccount/claims.go,
//! jwt.go): ES256 JWTs signed with the ServiceAccount key (`kid` = the key's SHA-256 in
//! base64url), with the issuer, audiences, expiry, and the `kubernetes.io` claim naming the
//! namespace, the ServiceAccount (and its uid) and the object the token is bound to (a pod with
//! its node, or a secret). Only bound tokens exist here (no legacy secret tokens): a token is
//! valid while its signature, issuer, audience and time are, and while the ServiceAccount and
//! the bound object still exist with the uids it names, so deleting either revokes it.

use std::collections::BTreeMap;

use auth::UserInfo;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Digest;

/// A name and a uid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ref {
    /// Name.
    pub name: String,
    /// Uid.
    pub uid: String,
}

/// The `kubernetes.io` private claim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaim {
    /// The ServiceAccount's namespace.
    pub namespace: String,
    /// The ServiceAccount.
    pub serviceaccount: Ref,
    /// The pod the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Ref>,
    /// The bound pod's node (or a node the token is bound to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Ref>,
    /// The secret the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Ref>,
}

/// The claims of a token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// `system:serviceaccount:<namespace>:<name>`.
    pub sub: String,
    /// Audiences.
    pub aud: Vec<String>,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// A unique id.
    pub jti: String,
    /// What the token is for.
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaim,
}

/// Signs and checks ServiceAccount tokens.
pub struct Tokens {
    encoding: Option<EncodingKey>,
    kid: String,
    decoding: DecodingKey,
    /// `--service-account-issuer`.
    pub issuer: String,
    /// The audiences the apiserver accepts (`--api-audiences`, default the issuer).
    pub audiences: Vec<String>,
}

/// Why the token keys could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("ServiceAccount key: {0}")]
pub struct KeyError(String);

impl Tokens {
    /// From the PEM public key (for checking) and, to issue tokens too, the PEM private key.
    pub fn new(
        public_pem: &str,
        private_pem: Option<&str>,
        issuer: &str,
        audiences: Vec<String>,
    ) -> Result<Tokens, KeyError> {
        let decoding =
            DecodingKey::from_ec_pem(public_pem.as_bytes()).map_err(|e| KeyError(e.to_string()))?;
        let encoding = private_pem
            .map(|p| EncodingKey::from_ec_pem(p.as_bytes()))
            .transpose()
            .map_err(|e| KeyError(e.to_string()))?;
        Ok(Tokens {
            encoding,
            kid: key_id(public_pem),
            decoding,
            issuer: issuer.to_string(),
            audiences: if audiences.is_empty() {
                vec![issuer.to_string()]
            } else {
                audiences
            },
        })
    }

    /// Whether this server can issue tokens (it has the private key).
    pub fn can_issue(&self) -> bool {
        self.encoding.is_some()
    }

    /// Issues a token for the ServiceAccount described by `k`, for `audiences` (the server's
    /// when empty), valid `ttl` seconds from `now`.
    pub fn issue(
        &self,
        k: KubernetesClaim,
        audiences: Vec<String>,
        now: i64,
        ttl: i64,
    ) -> Result<(String, Claims), KeyError> {
        let key = self.encoding.as_ref().ok_or_else(|| {
            KeyError("no signing key (--service-account-signing-key-file)".into())
        })?;
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: format!(
                "{}{}:{}",
                auth::names::SA_PREFIX,
                k.namespace,
                k.serviceaccount.name
            ),
            aud: if audiences.is_empty() {
                self.audiences.clone()
            } else {
                audiences
            },
            exp: now + ttl,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
            kubernetes: k,
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let token =
            jsonwebtoken::encode(&header, &claims, key).map_err(|e| KeyError(e.to_string()))?;
        Ok((token, claims))
    }

    /// Checks signature, issuer, one of our audiences and the times (60 s of leeway, as
    /// upstream); returns the claims. The caller still checks that the objects exist.
    pub fn verify(&self, token: &str) -> Result<Claims, String> {
        self.verify_for(token, &self.audiences)
    }

    /// [`Tokens::verify`] for other audiences (a TokenReview's).
    pub fn verify_for(&self, token: &str, audiences: &[String]) -> Result<Claims, String> {
        let mut v = Validation::new(Algorithm::ES256);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(audiences);
        v.leeway = 60;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &v).map_err(|e| e.to_string())?;
        let c = data.claims;
        let want = format!(
            "{}{}:{}",
            auth::names::SA_PREFIX,
            c.kubernetes.namespace,
            c.kubernetes.serviceaccount.name
        );
        if c.sub != want {
            return Err(format!("subject {} does not match the claims", c.sub));
        }
        Ok(c)
    }
}

/// Upstream's keyIDFromPublicKey: base64url (no padding) of the SHA-256 of the public key's
/// DER (SubjectPublicKeyInfo).
fn key_id(public_pem: &str) -> String {
    let b64: String = public_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(der))
}

/// The user a valid token stands for (upstream's ServiceAccountTokenGetter → UserInfo).
pub fn user_of(c: &Claims) -> UserInfo {
    let k = &c.kubernetes;
    let mut extra = BTreeMap::new();
    if let Some(p) = &k.pod {
        extra.insert(
            "authentication.kubernetes.io/pod-name".into(),
            vec![p.name.clone()],
        );
        extra.insert(
            "authentication.kubernetes.io/pod-uid".into(),
            vec![p.uid.clone()],
        );
    }
    if let Some(n) = &k.node {
        extra.insert(
            "authentication.kubernetes.io/node-name".into(),
            vec![n.name.clone()],
        );
        extra.insert(
            "authentication.kubernetes.io/node-uid".into(),
            vec![n.uid.clone()],
        );
    }
    extra.insert(
        "authentication.kubernetes.io/credential-id".into(),
        vec![format!("JTI={}", c.jti)],
    );
    UserInfo {
        name: c.sub.clone(),
        uid: k.serviceaccount.uid.clone(),
        groups: vec![
            auth::names::SERVICEACCOUNTS.into(),
            format!("{}:{}", auth::names::SERVICEACCOUNTS, k.namespace),
        ],
        extra,
    }
}

/// Whether `token` has a JWT's shape (three base64url parts): only those are offered to
/// [`Tokens::verify`].
pub fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (String, String) {
        let k = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        (k.public_key_pem(), k.serialize_pem())
    }

    fn claim() -> KubernetesClaim {
        KubernetesClaim {
            namespace: "default".into(),
            serviceaccount: Ref {
                name: "default".into(),
                uid: "sa-uid".into(),
            },
            pod: Some(Ref {
                name: "web".into(),
                uid: "pod-uid".into(),
            }),
            node: Some(Ref {
                name: "n1".into(),
                uid: "node-uid".into(),
            }),
            secret: None,
        }
    }

    const ISS: &str = "https://kubernetes.default.svc.cluster.local";

    #[test]
    fn issued_tokens_verify_and_name_their_user() {
        let (public, private) = keys();
        let t = Tokens::new(&public, Some(&private), ISS, vec![]).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let (token, claims) = t.issue(claim(), vec![], now, 3600).unwrap();
        assert!(looks_like_jwt(&token));
        assert_eq!(claims.aud, vec![ISS]);
        let c = t.verify(&token).unwrap();
        assert_eq!(c, claims);
        let u = user_of(&c);
        assert_eq!(u.name, "system:serviceaccount:default:default");
        assert_eq!(u.uid, "sa-uid");
        assert_eq!(
            u.groups,
            vec!["system:serviceaccounts", "system:serviceaccounts:default"]
        );
        assert_eq!(
            u.extra["authentication.kubernetes.io/pod-name"],
            vec!["web"]
        );
        let header: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"].as_str().unwrap().len(), 43);
    }

    #[test]
    fn forged_expired_and_foreign_tokens_are_refused() {
        let (public, private) = keys();
        let t = Tokens::new(&public, Some(&private), ISS, vec![]).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        // Expired (past the leeway).
        let (old, _) = t.issue(claim(), vec![], now - 7200, 3600).unwrap();
        assert!(t.verify(&old).is_err());
        // Another audience.
        let (other, _) = t.issue(claim(), vec!["vault".into()], now, 3600).unwrap();
        assert!(t.verify(&other).is_err());
        // Signed by another key.
        let (p2, k2) = keys();
        let stranger = Tokens::new(&p2, Some(&k2), ISS, vec![]).unwrap();
        let (forged, _) = stranger.issue(claim(), vec![], now, 3600).unwrap();
        assert!(t.verify(&forged).is_err());
        // Tampered claims.
        let (good, _) = t.issue(claim(), vec![], now, 3600).unwrap();
        let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
        let mut c: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&parts[1])
                .unwrap(),
        )
        .unwrap();
        c["kubernetes.io"]["namespace"] = "kube-system".into();
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(c.to_string());
        assert!(t.verify(&parts.join(".")).is_err());
        // Garbage.
        assert!(t.verify("a.b.c").is_err());
        assert!(!looks_like_jwt("abcdef.0123456789abcdef"));
        // Verification without the private key works; issuing does not.
        let only_public = Tokens::new(&public, None, ISS, vec![]).unwrap();
        assert!(only_public.verify(&good).is_ok());
        assert!(only_public.issue(claim(), vec![], now, 60).is_err());
    }
}
