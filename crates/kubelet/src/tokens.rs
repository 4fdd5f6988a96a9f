//! ServiceAccount tokens for projected volumes, as upstream's kubelet token manager
//! (pkg/kubelet/token): requested through the TokenRequest API bound to the pod (so deleting
//! the pod revokes them), cached per pod, audience and lifetime, and renewed once 80% of
//! their life has passed or they are a day old.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};

/// A token and when it was issued and expires (seconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Held {
    token: String,
    issued: i64,
    expires: i64,
}

impl Held {
    /// Upstream's requiresRefresh: past 80% of its life, or older than 24 hours.
    fn needs_refresh(&self, now: i64) -> bool {
        let life = (self.expires - self.issued).max(0);
        now >= self.issued + life * 8 / 10 || now >= self.issued + 24 * 3600
    }
}

/// The kubelet's tokens.
pub struct TokenManager {
    client: Client,
    held: Mutex<HashMap<String, Held>>,
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

impl TokenManager {
    /// Tokens requested through `client` (the kubelet's own identity).
    pub fn new(client: Client) -> TokenManager {
        TokenManager {
            client,
            held: Mutex::default(),
        }
    }

    /// A token for `pod`'s ServiceAccount for `audience` (the apiserver's when None), asked
    /// to live `expiration` seconds, bound to the pod.
    pub async fn token(
        &self,
        pod: &Pod,
        audience: Option<&str>,
        expiration: i64,
    ) -> Result<String, kube::Error> {
        let ns = pod.namespace().unwrap_or_default();
        let sa = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".into());
        let uid = pod.uid().unwrap_or_default();
        let key = format!("{ns}/{sa}/{uid}/{}/{expiration}", audience.unwrap_or(""));
        if let Some(h) = self.held.lock().ok().and_then(|m| m.get(&key).cloned()) {
            if !h.needs_refresh(now()) {
                return Ok(h.token);
            }
        }
        let req = TokenRequest {
            spec: TokenRequestSpec {
                audiences: audience.map(|a| vec![a.to_string()]).unwrap_or_default(),
                expiration_seconds: Some(expiration),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: Some(pod.name_any()),
                    uid: Some(uid),
                }),
            },
            ..Default::default()
        };
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &ns);
        let got = api
            .create_token_request(&sa, &PostParams::default(), &req)
            .await?;
        let Some(status) = got.status else {
            return Err(kube::Error::Service(
                "TokenRequest answered without a status".into(),
            ));
        };
        let held = Held {
            token: status.token.clone(),
            issued: now(),
            expires: status.expiration_timestamp.0.as_second(),
        };
        if let Ok(mut m) = self.held.lock() {
            m.insert(key, held);
        }
        Ok(status.token)
    }

    /// Forgets the tokens of the pod with `uid` (it is gone).
    pub fn forget_pod(&self, uid: &str) {
        if let Ok(mut m) = self.held.lock() {
            m.retain(|k, _| k.split('/').nth(2) != Some(uid));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_renewed_past_80_percent_or_a_day() {
        let h = Held {
            token: "t".into(),
            issued: 1000,
            expires: 1000 + 3600,
        };
        assert!(!h.needs_refresh(1000 + 2879));
        assert!(h.needs_refresh(1000 + 2880));
        let year = Held {
            token: "t".into(),
            issued: 0,
            expires: 365 * 86400,
        };
        assert!(!year.needs_refresh(86399));
        assert!(year.needs_refresh(86400));
    }
}
