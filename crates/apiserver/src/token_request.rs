//! `serviceaccounts/<name>/token`: TokenRequest, as upstream's
//! pkg/registry/core/serviceaccount/storage/token.go. Issues a bound ServiceAccount token for
//! the audiences asked (the server's by default), valid `expirationSeconds` (3600 by default,
//! at least 600), optionally bound to a Pod (and so to its node), a Secret or a Node, whose
//! deletion then revokes it. `kubectl create token` and the kubelet's projected tokens use it.

use api::validation::FieldError;
use api::ResourceInfo;
use auth::UserInfo;
use axum::response::Response;
use http::StatusCode;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::handlers::cached_or_stored;
use crate::render;
use crate::request::Rendering;
use crate::sa_tokens::{KubernetesClaim, Ref};
use crate::server::ApiServer;

/// Upstream's MinTokenAgeSec and MaxTokenAgeSec.
const MIN_SECONDS: i64 = 600;
const MAX_SECONDS: i64 = 1 << 32;

fn core(plural: &str) -> &'static ResourceInfo {
    api::registry::find("", "v1", plural).expect("core resources are registered")
}

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

async fn read(
    srv: &ApiServer,
    plural: &str,
    ns: Option<&str>,
    name: &str,
) -> Result<Value, ApiError> {
    let r = core(plural);
    cached_or_stored(srv, r, &r.key(ns, name))
        .await?
        .ok_or_else(|| ApiError::not_found(r, name))
}

fn token_request_resource() -> ResourceInfo {
    ResourceInfo {
        group: "authentication.k8s.io",
        version: "v1",
        kind: "TokenRequest",
        ..core("serviceaccounts").clone()
    }
}

fn invalid(name: &str, field: &str, value: String, message: &str) -> ApiError {
    ApiError::invalid(
        &token_request_resource(),
        name,
        &[FieldError {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: format!("Invalid value: {value}: {message}"),
        }],
    )
}

/// Answers a TokenRequest for ServiceAccount `ns/name`.
pub async fn create(
    srv: &ApiServer,
    _user: &UserInfo,
    _r: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    mut req: Value,
    dry_run: bool,
) -> Result<Response, ApiError> {
    let ns = ns.ok_or_else(ApiError::method_not_allowed)?;
    if !req.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request is not a JSON object",
        ));
    }
    let body_name = s(&req, "/metadata/name");
    if !body_name.is_empty() && body_name != name {
        return Err(invalid(
            name,
            "metadata.name",
            format!("{body_name:?}"),
            "must match the service account name if specified",
        ));
    }
    let body_ns = s(&req, "/metadata/namespace");
    if !body_ns.is_empty() && body_ns != ns {
        return Err(invalid(
            name,
            "metadata.namespace",
            format!("{body_ns:?}"),
            "must match the service account namespace if specified",
        ));
    }
    let tokens = srv
        .security
        .sa_tokens
        .clone()
        .filter(|t| t.can_issue())
        .ok_or_else(|| {
            ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource (this server has no ServiceAccount signing key)",
            )
        })?;
    let sa = read(srv, "serviceaccounts", Some(ns), name).await?;
    let mut spec = req.get("spec").cloned().unwrap_or_else(|| json!({}));
    let mut audiences: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    if audiences.is_empty() {
        audiences = tokens.audiences.clone();
    }
    let ttl = match spec.get("expirationSeconds") {
        None | Some(Value::Null) => 3600,
        Some(v) => v
            .as_i64()
            .ok_or_else(|| ApiError::bad_request("spec.expirationSeconds must be an integer"))?,
    };
    if ttl < MIN_SECONDS {
        return Err(invalid(
            "",
            "spec.expirationSeconds",
            ttl.to_string(),
            "may not specify a duration less than 10 minutes",
        ));
    }
    if ttl > MAX_SECONDS {
        return Err(invalid(
            "",
            "spec.expirationSeconds",
            ttl.to_string(),
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    let mut claim = KubernetesClaim {
        namespace: ns.to_string(),
        serviceaccount: Ref {
            name: name.to_string(),
            uid: s(&sa, "/metadata/uid").to_string(),
        },
        ..Default::default()
    };
    if let Some(bound) = spec.get("boundObjectRef").filter(|v| !v.is_null()) {
        bind(srv, ns, name, bound, &mut claim).await?;
    }
    let now = jiff::Timestamp::now();
    spec["audiences"] = json!(audiences);
    spec["expirationSeconds"] = json!(ttl);
    req["apiVersion"] = json!("authentication.k8s.io/v1");
    req["kind"] = json!("TokenRequest");
    req["spec"] = spec;
    req["metadata"] = json!({
        "name": name,
        "namespace": ns,
        "creationTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    });
    let expires = (now + jiff::SignedDuration::from_secs(ttl))
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let token = if dry_run {
        String::new()
    } else {
        tokens
            .issue(claim, audiences, now.as_second(), ttl)
            .map_err(|e| ApiError::internal(e.to_string()))?
            .0
    };
    req["status"] = json!({"token": token, "expirationTimestamp": expires});
    let r = token_request_resource();
    api::wire::canonicalize(&r, &mut req);
    Ok(render::object_response(
        &r,
        req,
        Rendering::Object,
        StatusCode::CREATED,
        vec![],
    ))
}

/// Binds the token to the object `bound` names (a Pod, and through it its node; a Secret; a
/// Node), checking the uid when given.
async fn bind(
    srv: &ApiServer,
    ns: &str,
    sa_name: &str,
    bound: &Value,
    claim: &mut KubernetesClaim,
) -> Result<(), ApiError> {
    let kind = s(bound, "/kind");
    let api_version = s(bound, "/apiVersion");
    let name = s(bound, "/name");
    if api_version != "v1" || !matches!(kind, "Pod" | "Secret" | "Node") {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        return Err(ApiError::bad_request(format!(
            "cannot bind token to object of type {group}/{version}, Kind={kind}"
        )));
    }
    let obj = match kind {
        "Pod" => read(srv, "pods", Some(ns), name).await?,
        "Secret" => read(srv, "secrets", Some(ns), name).await?,
        _ => read(srv, "nodes", None, name).await?,
    };
    let uid = s(&obj, "/metadata/uid").to_string();
    let want = s(bound, "/uid");
    if !want.is_empty() && want != uid {
        return Err(ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {kind} {name:?}: the UID in the bound object reference ({want}) does not match the UID in record. The object might have been deleted and then recreated"
            ),
        ));
    }
    let this = Ref {
        name: name.to_string(),
        uid,
    };
    match kind {
        "Pod" => {
            let pod_sa = s(&obj, "/spec/serviceAccountName");
            if pod_sa != sa_name {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token for serviceaccount {sa_name:?} to pod running with different serviceaccount name."
                )));
            }
            let node = s(&obj, "/spec/nodeName");
            if !node.is_empty() {
                if let Ok(n) = read(srv, "nodes", None, node).await {
                    claim.node = Some(Ref {
                        name: node.to_string(),
                        uid: s(&n, "/metadata/uid").to_string(),
                    });
                }
            }
            claim.pod = Some(this);
        }
        "Secret" => claim.secret = Some(this),
        _ => claim.node = Some(this),
    }
    Ok(())
}
