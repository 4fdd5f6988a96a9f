//! Who may call the kubelet API, as upstream's kubelet/server/auth.go: a client certificate
//! signed by `--client-ca-file` (the apiserver's kubelet-client certificate) or a bearer token
//! the apiserver vouches for (TokenReview), never anonymous unless `--anonymous-auth`; then a
//! SubjectAccessReview on the node subresource the path maps to (`nodes/proxy`, `nodes/log`,
//! `nodes/stats`, `nodes/metrics`, and `nodes/pods` first for /pods), with upstream's 401 and
//! 403 bodies. Decisions are cached briefly, as upstream's webhook cache (5 minutes allowed,
//! 30 seconds denied).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use daemon::tls::{ClientCa, PeerCerts};
use http::{Method, StatusCode};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

/// Who a request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// User name.
    pub name: String,
    /// Uid.
    pub uid: String,
    /// Groups.
    pub groups: Vec<String>,
}

/// How the kubelet authorizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthzMode {
    /// Ask the apiserver (SubjectAccessReview).
    Webhook,
    /// Allow every authenticated caller.
    AlwaysAllow,
}

/// The kubelet API's authenticator and authorizer.
pub struct KubeletAuth {
    node_name: String,
    client_ca: Option<ClientCa>,
    anonymous: bool,
    token_webhook: bool,
    mode: AuthzMode,
    client: kube::Client,
    decisions: Mutex<HashMap<String, (bool, Instant)>>,
}

impl KubeletAuth {
    /// The kubelet of `node_name`, asking the apiserver through `client`.
    pub fn new(
        node_name: &str,
        client_ca: Option<ClientCa>,
        anonymous: bool,
        token_webhook: bool,
        mode: AuthzMode,
        client: kube::Client,
    ) -> KubeletAuth {
        KubeletAuth {
            node_name: node_name.to_string(),
            client_ca,
            anonymous,
            token_webhook,
            mode,
            client,
            decisions: Mutex::new(HashMap::new()),
        }
    }

    async fn authenticate(&self, peer: Option<PeerCerts>, token: Option<String>) -> Option<Caller> {
        if let Some(certs) = peer.filter(|c| !c.0.is_empty()) {
            let ca = self.client_ca.as_ref()?;
            return match ca.identity(&certs.0) {
                Ok((name, groups)) => Some(Caller {
                    name,
                    uid: String::new(),
                    groups,
                }),
                Err(e) => {
                    tracing::info!(error = %e, "kubelet API: client certificate refused");
                    None
                }
            };
        }
        if let Some(token) = token {
            if !self.token_webhook {
                return None;
            }
            return self.review_token(&token).await;
        }
        self.anonymous.then(|| Caller {
            name: "system:anonymous".into(),
            uid: String::new(),
            groups: vec!["system:unauthenticated".into()],
        })
    }

    async fn review_token(&self, token: &str) -> Option<Caller> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: None,
            },
            ..Default::default()
        };
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let got = api.create(&PostParams::default(), &review).await.ok()?;
        let status = got.status?;
        if status.authenticated != Some(true) {
            return None;
        }
        let u = status.user?;
        Some(Caller {
            name: u.username.unwrap_or_default(),
            uid: u.uid.unwrap_or_default(),
            groups: u.groups.unwrap_or_default(),
        })
    }

    /// Whether `caller` may `verb` the node subresource `sub`.
    async fn allowed(&self, caller: &Caller, verb: &str, sub: &str) -> bool {
        if self.mode == AuthzMode::AlwaysAllow {
            return true;
        }
        let key = format!("{}|{}|{verb}|{sub}", caller.name, caller.groups.join(","));
        if let Some((ok, at)) = self
            .decisions
            .lock()
            .ok()
            .and_then(|d| d.get(&key).copied())
        {
            let ttl = if ok {
                Duration::from_secs(300)
            } else {
                Duration::from_secs(30)
            };
            if at.elapsed() < ttl {
                return ok;
            }
        }
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(caller.name.clone()),
                uid: (!caller.uid.is_empty()).then(|| caller.uid.clone()),
                groups: Some(caller.groups.clone()),
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.to_string()),
                    version: Some("v1".into()),
                    resource: Some("nodes".into()),
                    subresource: Some(sub.to_string()),
                    name: Some(self.node_name.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let ok = match api.create(&PostParams::default(), &review).await {
            Ok(r) => r.status.is_some_and(|s| s.allowed),
            Err(e) => {
                tracing::warn!(error = %e, "kubelet API: SubjectAccessReview failed");
                return false;
            }
        };
        if let Ok(mut d) = self.decisions.lock() {
            if d.len() > 10_000 {
                d.clear();
            }
            d.insert(key, (ok, Instant::now()));
        }
        ok
    }
}

/// The API verb of an HTTP method, as upstream's kubelet maps it.
pub fn verb_of(method: &Method) -> &'static str {
    match *method {
        Method::POST => "create",
        Method::GET | Method::HEAD => "get",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "",
    }
}

/// The node subresources a path is authorized as, in the order they are asked (the first
/// allowed wins): upstream's GetRequestAttributes with fine-grained kubelet authorization.
pub fn subresources_of(path: &str) -> &'static [&'static str] {
    let under = |p: &str| path == p || path.starts_with(&format!("{p}/"));
    if under("/stats") {
        &["stats"]
    } else if under("/metrics") {
        &["metrics"]
    } else if under("/logs") {
        &["log"]
    } else if under("/pods") {
        &["pods", "proxy"]
    } else if under("/healthz") {
        &["healthz", "proxy"]
    } else {
        &["proxy"]
    }
}

/// The middleware: authenticate, authorize, then the handler; upstream's answers otherwise.
pub async fn guard(State(auth): State<Arc<KubeletAuth>>, req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<PeerCerts>().cloned();
    let token = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let Some(caller) = auth.authenticate(peer, token).await else {
        return (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
    };
    let verb = verb_of(req.method());
    let subs = subresources_of(req.uri().path());
    for sub in subs {
        if auth.allowed(&caller, verb, sub).await {
            return next.run(req).await;
        }
    }
    let sub = subs.last().copied().unwrap_or("proxy");
    let body = format!(
        "Forbidden (user={}, verb={verb}, resource=nodes, subresource={sub})\n",
        caller.name
    );
    Response::builder()
        .status(StatusCode::FORBIDDEN)
        .body(Body::from(body))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_upstreams_node_subresources() {
        assert_eq!(subresources_of("/stats/summary"), &["stats"]);
        assert_eq!(subresources_of("/metrics/resource"), &["metrics"]);
        assert_eq!(subresources_of("/logs/syslog"), &["log"]);
        assert_eq!(subresources_of("/pods"), &["pods", "proxy"]);
        assert_eq!(subresources_of("/exec/ns/pod/c"), &["proxy"]);
        assert_eq!(subresources_of("/containerLogs/ns/pod/c"), &["proxy"]);
        assert_eq!(subresources_of("/statsx"), &["proxy"]);
        assert_eq!(verb_of(&Method::POST), "create");
        assert_eq!(verb_of(&Method::GET), "get");
    }
}
