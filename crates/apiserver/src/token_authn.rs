//! Bearer tokens that need the server's objects: bound ServiceAccount tokens (valid while the
//! ServiceAccount and the pod, secret or node they are bound to still exist with the uids the
//! token names, upstream's pkg/serviceaccount validator) and bootstrap tokens
//! (`abcdef.0123456789abcdef`, checked against the `bootstrap-token-<id>` Secret in kube-system,
//! upstream's plugin/pkg/auth/authenticator/token/bootstrap).

use auth::UserInfo;
use base64::Engine;
use serde_json::Value;

use crate::handlers::cached_or_stored;
use crate::sa_tokens::{self, Claims, Tokens};
use crate::server::ApiServer;

/// The user of a token `other` authenticators know, `None` when no form matches it (the
/// authenticator then calls it unknown); `Err` carries the reason for the log only.
pub async fn authenticate(srv: &ApiServer, token: &str) -> Option<Result<UserInfo, String>> {
    if sa_tokens::looks_like_jwt(token) {
        let tokens = srv.security.sa_tokens.as_ref()?;
        return Some(service_account_user(srv, tokens, token).await);
    }
    let (id, secret) = bootstrap_parts(token)?;
    Some(bootstrap_user(srv, id, secret).await)
}

async fn object(srv: &ApiServer, plural: &str, ns: Option<&str>, name: &str) -> Option<Value> {
    let r = api::registry::find("", "v1", plural)?;
    cached_or_stored(srv, r, &r.key(ns, name))
        .await
        .ok()
        .flatten()
}

fn uid(v: &Value) -> &str {
    v.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Checks a ServiceAccount token and that what it is bound to still exists.
pub async fn service_account_user(
    srv: &ApiServer,
    tokens: &Tokens,
    token: &str,
) -> Result<UserInfo, String> {
    let claims = tokens.verify(token)?;
    check_bound_objects(srv, &claims).await?;
    Ok(sa_tokens::user_of(&claims))
}

/// Upstream's validator: the ServiceAccount, and the pod, secret or node the token is bound to,
/// must exist with the uids in the claims (deleting any of them revokes the token); a pod
/// being deleted revokes its tokens once its deletion time has passed.
pub async fn check_bound_objects(srv: &ApiServer, c: &Claims) -> Result<(), String> {
    let k = &c.kubernetes;
    let ns = Some(k.namespace.as_str());
    let sa = object(srv, "serviceaccounts", ns, &k.serviceaccount.name)
        .await
        .ok_or_else(|| {
            format!(
                "service account {}/{} has been deleted",
                k.namespace, k.serviceaccount.name
            )
        })?;
    if uid(&sa) != k.serviceaccount.uid {
        return Err(format!(
            "service account UID ({}) does not match claim ({})",
            uid(&sa),
            k.serviceaccount.uid
        ));
    }
    if let Some(secret) = &k.secret {
        let s = object(srv, "secrets", ns, &secret.name)
            .await
            .ok_or_else(|| format!("secret {}/{} not found", k.namespace, secret.name))?;
        if uid(&s) != secret.uid {
            return Err(format!(
                "secret UID ({}) does not match service account secret ref claim ({})",
                uid(&s),
                secret.uid
            ));
        }
    }
    if let Some(pod) = &k.pod {
        let p = object(srv, "pods", ns, &pod.name)
            .await
            .ok_or_else(|| format!("pod {}/{} not found", k.namespace, pod.name))?;
        if uid(&p) != pod.uid {
            return Err(format!(
                "pod UID ({}) does not match service account pod ref claim ({})",
                uid(&p),
                pod.uid
            ));
        }
        if let Some(t) = p
            .pointer("/metadata/deletionTimestamp")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        {
            if t < jiff::Timestamp::now() {
                return Err(format!("pod {}/{} has been deleted", k.namespace, pod.name));
            }
        }
    }
    if let Some(node) = &k.node {
        // A pod-bound token names the pod's node for information; a node-bound one (no pod)
        // needs the node.
        if k.pod.is_none() {
            let n = object(srv, "nodes", None, &node.name)
                .await
                .ok_or_else(|| format!("node {} not found", node.name))?;
            if uid(&n) != node.uid {
                return Err(format!(
                    "node UID ({}) does not match service account node ref claim ({})",
                    uid(&n),
                    node.uid
                ));
            }
        }
    }
    Ok(())
}

/// `<6 of [a-z0-9]>.<16 of [a-z0-9]>`, upstream's BootstrapTokenPattern.
pub fn bootstrap_parts(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let ok = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (ok(id, 6) && ok(secret, 16)).then_some((id, secret))
}

async fn bootstrap_user(srv: &ApiServer, id: &str, secret: &str) -> Result<UserInfo, String> {
    let name = format!("bootstrap-token-{id}");
    let s = object(srv, "secrets", Some("kube-system"), &name)
        .await
        .ok_or_else(|| format!("no bootstrap token secret {name}"))?;
    bootstrap_user_of(&s, id, secret, jiff::Timestamp::now())
}

/// The user of bootstrap token `id.secret` given its Secret (pure, for tests).
pub fn bootstrap_user_of(
    s: &Value,
    id: &str,
    secret: &str,
    now: jiff::Timestamp,
) -> Result<UserInfo, String> {
    if s.pointer("/metadata/deletionTimestamp").is_some() {
        return Err("bootstrap token secret is being deleted".into());
    }
    if s.get("type").and_then(Value::as_str) != Some("bootstrap.kubernetes.io/token") {
        return Err("secret is not of type bootstrap.kubernetes.io/token".into());
    }
    let data = |k: &str| -> String {
        s.pointer(&format!("/data/{k}"))
            .and_then(Value::as_str)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default()
    };
    let stored = data("token-secret");
    // Constant time over the secret's bytes (the id is public).
    let same = stored.len() == secret.len()
        && stored
            .bytes()
            .zip(secret.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if data("token-id") != id || !same {
        return Err("bootstrap token does not match its secret".into());
    }
    let expiration = data("expiration");
    if !expiration.is_empty() {
        let t: jiff::Timestamp = expiration
            .parse()
            .map_err(|_| "bootstrap token has an unreadable expiration".to_string())?;
        if t <= now {
            return Err("bootstrap token has expired".into());
        }
    }
    if data("usage-bootstrap-authentication") != "true" {
        return Err("bootstrap token is not marked for authentication".into());
    }
    let mut groups = vec!["system:bootstrappers".to_string()];
    for g in data("auth-extra-groups").split(',').map(str::trim) {
        if g.is_empty() {
            continue;
        }
        if !g.starts_with("system:bootstrappers:") {
            return Err(format!("bootstrap token has an invalid extra group {g:?}"));
        }
        groups.push(g.to_string());
    }
    Ok(UserInfo {
        name: format!("system:bootstrap:{id}"),
        groups,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn secret(extra: &[(&str, &str)]) -> Value {
        let mut data = json!({
            "token-id": b64("abcdef"),
            "token-secret": b64("0123456789abcdef"),
            "usage-bootstrap-authentication": b64("true"),
            "auth-extra-groups": b64("system:bootstrappers:kubeadm:default-node-token"),
        });
        for (k, v) in extra {
            data[*k] = json!(b64(v));
        }
        json!({"type": "bootstrap.kubernetes.io/token", "metadata": {"name": "bootstrap-token-abcdef"}, "data": data})
    }

    #[test]
    fn bootstrap_tokens_as_upstream_checks_them() {
        let now: jiff::Timestamp = "2026-12-07T00:00:00Z".parse().unwrap();
        assert_eq!(
            bootstrap_parts("abcdef.0123456789abcdef"),
            Some(("abcdef", "0123456789abcdef"))
        );
        for bad in [
            "abcdef.0123456789abcde",
            "ABCDEF.0123456789abcdef",
            "abcdef0123456789abcdef",
            "a.b",
        ] {
            assert_eq!(bootstrap_parts(bad), None, "{bad}");
        }
        let u = bootstrap_user_of(&secret(&[]), "abcdef", "0123456789abcdef", now).unwrap();
        assert_eq!(u.name, "system:bootstrap:abcdef");
        assert_eq!(
            u.groups,
            [
                "system:bootstrappers",
                "system:bootstrappers:kubeadm:default-node-token"
            ]
        );
        assert!(bootstrap_user_of(&secret(&[]), "abcdef", "0123456789abcdex", now).is_err());
        let expired = secret(&[("expiration", "2026-12-06T00:00:00Z")]);
        assert!(
            bootstrap_user_of(&expired, "abcdef", "0123456789abcdef", now)
                .unwrap_err()
                .contains("expired")
        );
        let later = secret(&[("expiration", "2026-12-08T00:00:00Z")]);
        assert!(bootstrap_user_of(&later, "abcdef", "0123456789abcdef", now).is_ok());
        let unusable = secret(&[("usage-bootstrap-authentication", "false")]);
        assert!(bootstrap_user_of(&unusable, "abcdef", "0123456789abcdef", now).is_err());
        let bad_group = secret(&[("auth-extra-groups", "system:masters")]);
        assert!(bootstrap_user_of(&bad_group, "abcdef", "0123456789abcdef", now).is_err());
        let mut opaque = secret(&[]);
        opaque["type"] = json!("Opaque");
        assert!(bootstrap_user_of(&opaque, "abcdef", "0123456789abcdef", now).is_err());
    }
}
