//! Discovery and non-resource endpoints: /version, /api, /apis (legacy and aggregated
//! discovery), resource lists per group/version, health checks and the OpenAPI documents.

use std::sync::Arc;

use api::registry::{self, ResourceInfo, RESOURCES};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::request::Query;
use crate::server::ApiServer;

/// The Kubernetes version this server speaks.
pub const KUBE_MAJOR: &str = "1";
pub const KUBE_MINOR: &str = "33";
pub const GIT_VERSION: &str = concat!("v1.33.0-mini+", env!("CARGO_PKG_VERSION"));

const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const AGGREGATED_BETA: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/// A discovery document as upstream writes it: its meta/v1 (or apidiscovery) Go type's field
/// order and zero values, found from its kind.
fn wire_body(v: &Value) -> Vec<u8> {
    let mut v = v.clone();
    let type_name = match v.get("kind").and_then(Value::as_str) {
        Some("APIGroupDiscoveryList") => "apidiscovery/v2.APIGroupDiscoveryList".to_string(),
        Some(kind) => format!("meta/v1.{kind}"),
        None if v.get("paths").is_some() => "meta/v1.RootPaths".to_string(),
        None => String::new(),
    };
    api::wire::canonicalize_as(&type_name, &mut v);
    api::wire::to_body(&v)
}

fn json_ok(v: &Value) -> Response {
    (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, "application/json")],
        wire_body(v),
    )
        .into_response()
}

/// `GET /`: the list of served paths.
pub fn root_paths() -> Result<Response, ApiError> {
    let mut paths = vec![
        "/api".to_string(),
        "/api/v1".to_string(),
        "/apis".to_string(),
    ];
    for gv in registry::group_versions() {
        if !gv.group.is_empty() {
            paths.push(format!("/apis/{}", gv.group));
            paths.push(format!("/apis/{}/{}", gv.group, gv.version));
        }
    }
    paths.extend(
        [
            "/healthz",
            "/livez",
            "/readyz",
            "/metrics",
            "/openapi/v2",
            "/openapi/v3",
            "/version",
        ]
        .map(String::from),
    );
    paths.dedup();
    Ok(json_ok(&json!({ "paths": paths })))
}

/// `GET /version`.
pub fn version() -> Result<Response, ApiError> {
    Ok(json_ok(&json!({
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "emulationMajor": KUBE_MAJOR,
        "emulationMinor": KUBE_MINOR,
        "minCompatibilityMajor": KUBE_MAJOR,
        "minCompatibilityMinor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": "linux/amd64",
    })))
}

/// `/healthz`, `/livez`, `/readyz`.
pub fn health() -> Response {
    (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "ok",
    )
        .into_response()
}

fn wants_aggregated(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers.get(http::header::ACCEPT)?.to_str().ok()?;
    for entry in accept.split(',') {
        let e = entry.replace(' ', "");
        if e.contains("as=APIGroupDiscoveryList") && e.contains("g=apidiscovery.k8s.io") {
            if e.contains("v=v2beta1") {
                return Some(AGGREGATED_BETA);
            }
            if e.contains("v=v2") {
                return Some(AGGREGATED);
            }
        }
        if e.starts_with("application/json") && !e.contains("as=") {
            return None;
        }
    }
    None
}

/// `GET /api`.
pub fn core_versions(srv: &Arc<ApiServer>, headers: &HeaderMap) -> Result<Response, ApiError> {
    if let Some(ct) = wants_aggregated(headers) {
        return Ok(aggregated(true, ct));
    }
    Ok(json_ok(&json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{
            "clientCIDR": "0.0.0.0/0",
            "serverAddress": srv.config.advertise.to_string(),
        }],
    })))
}

fn group_json(group: &str) -> Value {
    let versions: Vec<Value> = registry::group_versions()
        .into_iter()
        .filter(|gv| gv.group == group)
        .map(|gv| json!({"groupVersion": gv.as_string(), "version": gv.version}))
        .collect();
    json!({
        "name": group,
        "versions": versions,
        "preferredVersion": versions.first().cloned().unwrap_or(json!({})),
    })
}

fn named_groups() -> Vec<&'static str> {
    let mut groups: Vec<&'static str> = Vec::new();
    for gv in registry::group_versions() {
        if !gv.group.is_empty() && !groups.contains(&gv.group) {
            groups.push(gv.group);
        }
    }
    groups
}

/// `GET /apis`.
pub fn groups(headers: &HeaderMap) -> Result<Response, ApiError> {
    if let Some(ct) = wants_aggregated(headers) {
        return Ok(aggregated(false, ct));
    }
    let groups: Vec<Value> = named_groups().into_iter().map(group_json).collect();
    Ok(json_ok(&json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": groups,
    })))
}

/// `GET /apis/{group}`.
pub fn group(group: &str) -> Result<Response, ApiError> {
    if !named_groups().contains(&group) {
        return Err(ApiError::not_found_path());
    }
    let mut g = group_json(group);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Ok(json_ok(&g))
}

fn resource_entries(r: &ResourceInfo) -> Vec<Value> {
    let mut out = vec![json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced(),
        "kind": r.kind,
        "verbs": r.verbs,
        "shortNames": r.short_names,
        "categories": r.categories,
        "storageVersionHash": storage_version_hash(r),
    })];
    for sub in r.subresources {
        let mut e = json!({
            "name": format!("{}/{}", r.plural, sub.name()),
            "singularName": "",
            "namespaced": r.namespaced(),
            "kind": sub.kind(r.kind),
            "verbs": sub.verbs(),
        });
        if *sub == api::Subresource::Scale {
            e["group"] = json!("autoscaling");
            e["version"] = json!("v1");
        }
        out.push(e);
    }
    if r.kind == "Namespace" {
        out.push(json!({"name": "namespaces/finalize", "singularName": "",
            "namespaced": false, "kind": "Namespace", "verbs": ["update"]}));
    }
    // Entries without optional arrays read as Kubernetes': drop empty shortNames/categories.
    for e in &mut out {
        if let Some(m) = e.as_object_mut() {
            for f in ["shortNames", "categories"] {
                if m.get(f)
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.is_empty())
                {
                    m.remove(f);
                }
            }
        }
    }
    out
}

fn storage_version_hash(r: &ResourceInfo) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (r.group, r.version, r.kind).hash(&mut h);
    let n = h.finish().to_be_bytes();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    n.iter()
        .take(8)
        .map(|b| alphabet[(*b as usize) % 64] as char)
        .collect()
}

/// `GET /api/v1`, `GET /apis/{group}/{version}`.
pub fn resource_list(group: &str, version: &str) -> Result<Response, ApiError> {
    let resources: Vec<Value> = registry::resources_in(group, version)
        .flat_map(resource_entries)
        .collect();
    if resources.is_empty() {
        return Err(ApiError::not_found_path());
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Ok(json_ok(&json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    })))
}

/// Aggregated discovery (`apidiscovery.k8s.io/v2`): every group with its resources at once.
fn aggregated(core: bool, content_type: &'static str) -> Response {
    let groups: Vec<&str> = if core { vec![""] } else { named_groups() };
    let items: Vec<Value> = groups
        .into_iter()
        .map(|g| {
            let versions: Vec<Value> = registry::group_versions()
                .into_iter()
                .filter(|gv| gv.group == g)
                .map(|gv| {
                    let resources: Vec<Value> = RESOURCES
                        .iter()
                        .filter(|r| r.group == gv.group && r.version == gv.version)
                        .map(aggregated_resource)
                        .collect();
                    json!({"version": gv.version, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    let api_version = if content_type == AGGREGATED_BETA {
        "apidiscovery.k8s.io/v2beta1"
    } else {
        "apidiscovery.k8s.io/v2"
    };
    let body = json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": api_version,
        "metadata": {},
        "items": items,
    });
    (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, content_type)],
        wire_body(&body),
    )
        .into_response()
}

fn aggregated_resource(r: &ResourceInfo) -> Value {
    let subresources: Vec<Value> = r
        .subresources
        .iter()
        .map(|s| {
            let (g, v) = if *s == api::Subresource::Scale {
                ("autoscaling", "v1")
            } else {
                (r.group, r.version)
            };
            json!({
                "subresource": s.name(),
                "responseKind": {"group": g, "version": v, "kind": s.kind(r.kind)},
                "verbs": s.verbs(),
            })
        })
        .collect();
    let mut e = json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced() { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        e["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        e["categories"] = json!(r.categories);
    }
    if !subresources.is_empty() {
        e["subresources"] = json!(subresources);
    }
    e
}

/// `/openapi/v2` (JSON, or the protobuf form kubectl asks for), `/openapi/v3` and
/// `/openapi/v3/{api/v1|apis/g/v}`.
pub fn openapi(segs: &[&str], _query: &Query, headers: &HeaderMap) -> Result<Response, ApiError> {
    let accept = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let json_acceptable = accept.split(',').any(|a| {
        let m = a.split(';').next().unwrap_or("").trim();
        matches!(m, "application/json" | "*/*" | "application/*" | "")
    });
    let serve = |doc: &'static api::openapi::Document, content_type: &'static str| {
        (
            StatusCode::OK,
            [
                (http::header::CONTENT_TYPE, content_type.to_string()),
                (http::header::ETAG, doc.etag()),
                (http::header::CACHE_CONTROL, "public, immutable".to_string()),
            ],
            bytes::Bytes::from_static(doc.static_bytes()),
        )
            .into_response()
    };
    let doc = match segs {
        ["v2"] if api::openapi::accepts_v2_protobuf(accept) => {
            return Ok(serve(
                api::openapi::v2_protobuf(),
                api::openapi::CONTENT_TYPE_V2_PROTOBUF,
            ))
        }
        ["v2"] => api::openapi::v2_document(),
        ["v3"] => api::openapi::v3_index_document(),
        ["v3", rest @ ..] => api::openapi::v3_group_version_document(&rest.join("/"))
            .ok_or_else(ApiError::not_found_path)?,
        _ => return Err(ApiError::not_found_path()),
    };
    if !json_acceptable {
        return Err(ApiError::not_acceptable(
            "only the following media types are accepted: application/json",
        ));
    }
    Ok(serve(doc, "application/json"))
}
