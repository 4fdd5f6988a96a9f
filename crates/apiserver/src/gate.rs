//! The gate every request passes before it is routed, in upstream's filter order:
//! authentication (certificates, static, ServiceAccount and bootstrap tokens, anonymous),
//! impersonation, then authorization by the configured modes (Node over the node graph, RBAC
//! over the RBAC index). Answers who the request is, or the 401 or 403.

use std::sync::OnceLock;

use auth::{Attributes, Decision, UserInfo};
use http::{HeaderMap, Method};
use k8s_openapi::api::rbac::v1::PolicyRule;

use crate::authn::Authn;
use crate::authz::{self, Mode};
use crate::error::ApiError;
use crate::impersonation;
use crate::request::Query;
use crate::server::ApiServer;
use crate::tls::PeerCerts;
use crate::token_authn;

/// The bearer token of the request, if it has one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Who the credentials of a request are (the anonymous user when it has none and anonymous
/// requests are allowed); the error says why not, for the log only.
pub async fn authenticate_credentials(
    srv: &ApiServer,
    peer: Option<&PeerCerts>,
    headers: &HeaderMap,
) -> Result<UserInfo, String> {
    let other = match bearer(headers) {
        Some(token) if !srv.security.authn.knows_token(token) => {
            token_authn::authenticate(srv, token).await
        }
        _ => None,
    };
    match srv.security.authn.authenticate(peer, headers, |_| other) {
        Authn::User(u) => Ok(u),
        Authn::Invalid(why) => Err(why),
        Authn::Missing => Err("no credentials".into()),
    }
}

/// Who the request is: its credentials, then the identity it impersonates; 401 for credentials
/// that are presented and not valid (the reason goes to the log, never to the client).
pub async fn authenticate(
    srv: &ApiServer,
    peer: Option<&PeerCerts>,
    headers: &HeaderMap,
    path: &str,
) -> Result<UserInfo, ApiError> {
    let user = match authenticate_credentials(srv, peer, headers).await {
        Ok(u) => u,
        Err(why) => {
            tracing::info!(%path, reason = %why, "authentication failed");
            return Err(ApiError::unauthorized());
        }
    };
    match impersonation::requested(headers)? {
        None => Ok(user),
        Some(want) => impersonation::impersonate(&user, want, |a| authorize(srv, a)),
    }
}

/// The static rules of `system:node`, for the Node authorizer.
fn node_rules() -> &'static [PolicyRule] {
    static RULES: OnceLock<Vec<PolicyRule>> = OnceLock::new();
    RULES.get_or_init(auth::policy::node_rules)
}

/// The decision of the configured authorizers for `a`.
pub fn authorize(srv: &ApiServer, a: &Attributes) -> Decision {
    srv.security.authz.authorize(a, |mode, a| match mode {
        Mode::Rbac => srv.rbac.authorize(a),
        Mode::Node => match &srv.node_graph {
            Some(g) => auth::node::authorize(a, g.as_ref(), node_rules()),
            None => Decision::NoOpinion(String::new()),
        },
        Mode::AlwaysAllow | Mode::AlwaysDeny => Decision::NoOpinion(String::new()),
    })
}

/// Authentication then authorization of one request: who it is, or the 401 or 403.
pub async fn gate(
    srv: &ApiServer,
    peer: Option<&PeerCerts>,
    method: &Method,
    path: &str,
    query: &Query,
    headers: &HeaderMap,
) -> Result<UserInfo, ApiError> {
    let user = authenticate(srv, peer, headers, path).await?;
    let attrs = authz::attributes(method, path, query, &user);
    match authorize(srv, &attrs) {
        Decision::Allow(_) => Ok(user),
        Decision::Deny(reason) | Decision::NoOpinion(reason) => {
            tracing::debug!(user = %user.name, verb = %attrs.verb, %path, "forbidden");
            Err(ApiError::forbidden_by_authorizer(&attrs, &reason))
        }
    }
}
