//! The review resources, answered from the request and never stored (upstream's
//! pkg/registry/authentication and pkg/registry/authorization): TokenReview (who a token is),
//! SelfSubjectReview (`kubectl auth whoami`), SubjectAccessReview, SelfSubjectAccessReview and
//! LocalSubjectAccessReview (`kubectl auth can-i`: may this user do that) and
//! SelfSubjectRulesReview (`kubectl auth can-i --list`).

use api::validation::FieldError;
use api::ResourceInfo;
use auth::{Attributes, Decision, UserInfo};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode};
use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::{json, Map, Value};

use crate::authz::Mode;
use crate::error::ApiError;
use crate::gate;
use crate::objects;
use crate::render;
use crate::request::Rendering;
use crate::sa_tokens;
use crate::server::ApiServer;
use crate::token_authn;

/// Answers a create of review resource `r` (`ns` for LocalSubjectAccessReview).
pub async fn create(
    srv: &ApiServer,
    user: &UserInfo,
    r: &'static ResourceInfo,
    ns: Option<&str>,
    mut review: Value,
    rendering: Rendering,
) -> Result<Response, ApiError> {
    check_kind(r, &mut review)?;
    let status = match r.kind {
        "TokenReview" => token_review(srv, &review).await?,
        "SelfSubjectReview" => {
            review["metadata"] = json!({"creationTimestamp": objects::now_rfc3339()});
            json!({"userInfo": user_json(user)})
        }
        "SubjectAccessReview" => {
            let spec = spec_of(&review);
            validate_access_spec(r, &spec, true, false)?;
            access(srv, &spec_user(&spec), &spec)
        }
        "SelfSubjectAccessReview" => {
            let spec = spec_of(&review);
            validate_access_spec(r, &spec, false, false)?;
            access(srv, user, &spec)
        }
        "LocalSubjectAccessReview" => {
            let ns = ns.unwrap_or("");
            let spec = spec_of(&review);
            validate_access_spec(r, &spec, true, true)?;
            let meta_ns = review
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or(ns);
            let attr_ns = spec
                .pointer("/resourceAttributes/namespace")
                .and_then(Value::as_str)
                .unwrap_or("");
            if meta_ns != ns || attr_ns != ns {
                return Err(ApiError::bad_request(format!(
                    "spec.resourceAttributes.namespace must match namespace: {ns}"
                )));
            }
            review["metadata"]["namespace"] = json!(ns);
            access(srv, &spec_user(&spec), &spec)
        }
        "SelfSubjectRulesReview" => {
            let ns = review
                .pointer("/spec/namespace")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            rules_review(srv, user, &ns)
        }
        _ => return Err(ApiError::method_not_allowed()),
    };
    review["status"] = status;
    if review.get("metadata").is_none() {
        review["metadata"] = json!({});
    }
    api::wire::canonicalize(r, &mut review);
    Ok(render::object_response(
        r,
        review,
        rendering,
        StatusCode::CREATED,
        vec![],
    ))
}

fn check_kind(r: &ResourceInfo, v: &mut Value) -> Result<(), ApiError> {
    let Some(map) = v.as_object_mut() else {
        return Err(ApiError::bad_request(
            "the body of the request is not a JSON object",
        ));
    };
    let want = r.api_version();
    for (field, expected) in [("apiVersion", want.as_str()), ("kind", r.kind)] {
        match map.get(field).and_then(Value::as_str) {
            None | Some("") => {
                map.insert(field.into(), json!(expected));
            }
            Some(got) if got == expected => {}
            Some(got) => {
                return Err(ApiError::bad_request(format!(
                    "the {field} of the body ({got}) is not {expected}"
                )))
            }
        }
    }
    Ok(())
}

fn spec_of(review: &Value) -> Value {
    review.get("spec").cloned().unwrap_or_else(|| json!({}))
}

fn invalid(field: &str, value: &str, message: &str) -> FieldError {
    FieldError {
        reason: "FieldValueInvalid",
        field: field.into(),
        message: format!("Invalid value: {value}: {message}"),
    }
}

/// Upstream's ValidateSubjectAccessReviewSpec and its self and local variants.
fn validate_access_spec(
    r: &ResourceInfo,
    spec: &Value,
    needs_user: bool,
    local: bool,
) -> Result<(), ApiError> {
    let has = |k: &str| spec.get(k).is_some_and(|v| !v.is_null());
    let mut errs = Vec::new();
    if local && has("nonResourceAttributes") {
        errs.push(invalid(
            "spec.nonResourceAttributes",
            &render_go(&spec["nonResourceAttributes"]),
            "disallowed on this kind of request",
        ));
    }
    if has("resourceAttributes") && has("nonResourceAttributes") && !local {
        errs.push(invalid(
            "spec.nonResourceAttributes",
            &render_go(&spec["nonResourceAttributes"]),
            "cannot be specified in combination with resourceAttributes",
        ));
    }
    if !has("resourceAttributes") && !has("nonResourceAttributes") {
        errs.push(invalid(
            "spec.resourceAttributes",
            "\"null\"",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    }
    if needs_user {
        let user = spec.get("user").and_then(Value::as_str).unwrap_or("");
        let groups = spec
            .get("groups")
            .and_then(Value::as_array)
            .is_some_and(|g| !g.is_empty());
        if user.is_empty() && !groups {
            errs.push(invalid(
                "spec.user",
                "\"\"",
                "at least one of user or group must be specified",
            ));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(r, "", &errs))
    }
}

/// A value as Go's `%q`/`%v` would show it in a field error (strings quoted).
fn render_go(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// The user a SubjectAccessReview asks about.
fn spec_user(spec: &Value) -> UserInfo {
    let extra = spec
        .get("extra")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), strings(Some(v))))
                .collect()
        })
        .unwrap_or_default();
    UserInfo {
        name: spec
            .get("user")
            .and_then(Value::as_str)
            .unwrap_or("")
            .into(),
        uid: spec.get("uid").and_then(Value::as_str).unwrap_or("").into(),
        groups: strings(spec.get("groups")),
        extra,
    }
}

/// The attributes of an access review's spec (upstream's ResourceAttributesFrom and
/// NonResourceAttributesFrom).
fn review_attributes(user: &UserInfo, spec: &Value) -> Attributes {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    if let Some(ra) = spec.get("resourceAttributes").filter(|v| !v.is_null()) {
        let field_selector = ra
            .pointer("/fieldSelector/rawSelector")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        return Attributes {
            user: user.clone(),
            verb: s(ra, "verb"),
            resource_request: true,
            namespace: s(ra, "namespace"),
            api_group: s(ra, "group"),
            api_version: s(ra, "version"),
            resource: s(ra, "resource"),
            subresource: s(ra, "subresource"),
            name: s(ra, "name"),
            field_selector,
            ..Default::default()
        };
    }
    let nra = spec
        .get("nonResourceAttributes")
        .cloned()
        .unwrap_or_default();
    Attributes {
        user: user.clone(),
        verb: s(&nra, "verb"),
        resource_request: false,
        path: s(&nra, "path"),
        ..Default::default()
    }
}

/// The status of an access review: allowed, denied and why.
fn access(srv: &ApiServer, user: &UserInfo, spec: &Value) -> Value {
    let attrs = review_attributes(user, spec);
    let mut status = Map::new();
    match gate::authorize(srv, &attrs) {
        Decision::Allow(reason) => {
            status.insert("allowed".into(), json!(true));
            if !reason.is_empty() {
                status.insert("reason".into(), json!(reason));
            }
        }
        Decision::Deny(reason) => {
            status.insert("allowed".into(), json!(false));
            status.insert("denied".into(), json!(true));
            if !reason.is_empty() {
                status.insert("reason".into(), json!(reason));
            }
        }
        Decision::NoOpinion(reason) => {
            status.insert("allowed".into(), json!(false));
            if !reason.is_empty() {
                status.insert("reason".into(), json!(reason));
            }
        }
    }
    Value::Object(status)
}

fn everything() -> (Vec<PolicyRule>, Vec<PolicyRule>) {
    let star = || Some(vec!["*".to_string()]);
    (
        vec![PolicyRule {
            verbs: vec!["*".into()],
            api_groups: star(),
            resources: star(),
            ..Default::default()
        }],
        vec![PolicyRule {
            verbs: vec!["*".into()],
            non_resource_urls: star(),
            ..Default::default()
        }],
    )
}

/// The rules `user` holds in `ns`, by each authorizer in turn (upstream's union RulesFor):
/// everything for system:masters and AlwaysAllow, the RBAC rules, and for a node "incomplete"
/// (the Node authorizer cannot list what it allows).
fn rules_review(srv: &ApiServer, user: &UserInfo, ns: &str) -> Value {
    let mut resource_rules: Vec<PolicyRule> = Vec::new();
    let mut non_resource_rules: Vec<PolicyRule> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let mut incomplete = false;
    let masters = user.groups.iter().any(|g| g == auth::names::MASTERS);
    if masters {
        let (r, n) = everything();
        resource_rules.extend(r);
        non_resource_rules.extend(n);
    }
    for mode in srv.security.authz.modes() {
        match mode {
            Mode::AlwaysAllow => {
                let (r, n) = everything();
                resource_rules.extend(r);
                non_resource_rules.extend(n);
            }
            Mode::AlwaysDeny => {}
            Mode::Node => {
                if auth::node::node_identity(user).is_some() {
                    incomplete = true;
                    errors.push("node authorizer does not support user rule resolution".into());
                }
            }
            Mode::Rbac => {
                let (rules, errs) = srv.rbac.rules_for(user, ns);
                for rule in rules {
                    if rule
                        .non_resource_urls
                        .as_ref()
                        .is_some_and(|u| !u.is_empty())
                    {
                        non_resource_rules.push(rule);
                    } else {
                        resource_rules.push(rule);
                    }
                }
                if !errs.is_empty() {
                    incomplete = true;
                    errors.extend(errs);
                }
            }
        }
    }
    let resource: Vec<Value> = resource_rules
        .iter()
        .map(|r| {
            let mut o = Map::new();
            o.insert("verbs".into(), json!(r.verbs));
            if let Some(g) = &r.api_groups {
                o.insert("apiGroups".into(), json!(g));
            }
            if let Some(x) = &r.resources {
                o.insert("resources".into(), json!(x));
            }
            if let Some(x) = r.resource_names.as_ref().filter(|x| !x.is_empty()) {
                o.insert("resourceNames".into(), json!(x));
            }
            Value::Object(o)
        })
        .collect();
    let non_resource: Vec<Value> = non_resource_rules
        .iter()
        .map(|r| json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}))
        .collect();
    let mut status = json!({
        "resourceRules": resource,
        "nonResourceRules": non_resource,
        "incomplete": incomplete,
    });
    if !errors.is_empty() {
        status["evaluationError"] = json!(format!("[{}]", errors.join(", ")));
    }
    status
}

fn user_json(u: &UserInfo) -> Value {
    let mut o = Map::new();
    o.insert("username".into(), json!(u.name));
    if !u.uid.is_empty() {
        o.insert("uid".into(), json!(u.uid));
    }
    if !u.groups.is_empty() {
        o.insert("groups".into(), json!(u.groups));
    }
    if !u.extra.is_empty() {
        o.insert("extra".into(), json!(u.extra));
    }
    Value::Object(o)
}

/// A TokenReview: who the token is, for the audiences asked (the server's when none).
async fn token_review(srv: &ApiServer, review: &Value) -> Result<Value, ApiError> {
    let token = review
        .pointer("/spec/token")
        .and_then(Value::as_str)
        .unwrap_or("");
    if token.is_empty() {
        return Err(ApiError::bad_request(
            "token is required for TokenReview in authentication",
        ));
    }
    let asked = strings(review.pointer("/spec/audiences"));
    let server_auds: Vec<String> = srv
        .security
        .sa_tokens
        .as_ref()
        .map(|t| t.audiences.clone())
        .unwrap_or_default();
    let auds = if asked.is_empty() { server_auds } else { asked };
    let jwt = sa_tokens::looks_like_jwt(token);
    let outcome: Result<(UserInfo, Vec<String>), String> = match &srv.security.sa_tokens {
        Some(tokens) if jwt => match tokens.verify_for(token, &auds) {
            Ok(claims) => token_authn::check_bound_objects(srv, &claims)
                .await
                .map(|()| {
                    let both: Vec<String> = auds
                        .iter()
                        .filter(|a| claims.aud.contains(a))
                        .cloned()
                        .collect();
                    let mut u = sa_tokens::user_of(&claims);
                    u.groups.push(auth::names::AUTHENTICATED.into());
                    (u, both)
                }),
            Err(e) => Err(e),
        },
        _ => {
            let mut headers = HeaderMap::new();
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| ApiError::bad_request("the token is not a valid header value"))?;
            headers.insert(http::header::AUTHORIZATION, value);
            gate::authenticate_credentials(srv, None, &headers)
                .await
                .map(|u| (u, auds))
        }
    };
    Ok(match outcome {
        Ok((u, auds)) => {
            json!({"authenticated": true, "user": user_json(&u), "audiences": auds})
        }
        Err(why) => {
            tracing::info!(reason = %why, "TokenReview: token not valid");
            json!({"user": {}, "error": "invalid bearer token"})
        }
    })
}
