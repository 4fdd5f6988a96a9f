//! Resource handlers: get, list, create, update, patch, delete and deletecollection with
//! Kubernetes' semantics, and the status, scale, binding, eviction and finalize subresources.
//! This module dispatches and holds what every verb shares (bodies, reads); each verb lives in
//! its own module.

mod create;
mod delete;
mod list;
mod pods;
mod scale;
mod update;

use create::*;
pub use delete::DeleteOptions;
use delete::*;
use list::*;
use pods::*;
use scale::*;
use update::*;
pub use update::{guaranteed_update, Updated};

use std::sync::Arc;
use std::time::Duration;

use api::{ResourceInfo, Subresource};
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{json, Value};
use store::{ListOptions, StoreError};

use crate::admission::{self, Allocations};
use crate::cache::{self, object_revision};
use crate::error::ApiError;
use crate::filter::Filter;
use crate::objects;
use crate::render;
use crate::request::{self, Query, Rendering, ResourcePath, MAX_BODY};
use crate::server::ApiServer;
use crate::strategy;
use crate::watch;

/// How long a consistent read waits for the watch cache to catch up with the store.
const CACHE_WAIT: Duration = Duration::from_secs(5);
/// How often an update retries after losing a compare-and-swap race.
const UPDATE_RETRIES: usize = 16;

/// The verb of a request, for metrics and logs.
pub fn verb_name(method: &Method, rp: &ResourcePath, query: &Query) -> &'static str {
    match *method {
        Method::GET if rp.name.is_none() && (query.flag("watch") || rp.legacy_watch) => "watch",
        Method::GET if rp.name.is_none() => "list",
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if rp.name.is_none() => "deletecollection",
        Method::DELETE => "delete",
        _ => "other",
    }
}

/// Handles one resource request.
pub async fn handle(
    srv: &Arc<ApiServer>,
    method: &Method,
    rp: ResourcePath,
    query: &Query,
    headers: &HeaderMap,
    body: Body,
    upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Result<Response, ApiError> {
    let rendering = request::rendering(headers, query)?;
    let sub = rp.subresource_kind()?;
    let r = rp.resource;
    if r.storage == api::Storage::ComponentProbes {
        if sub.is_some() {
            return Err(ApiError::not_found_path());
        }
        return crate::componentstatus::handle(srv, r, method, rp.name.as_deref(), rendering).await;
    }
    let ns = rp.namespace.as_deref();
    match (method.clone(), rp.name.as_deref(), sub) {
        (Method::GET, None, None) => {
            if query.flag("watch") || rp.legacy_watch {
                watch::serve(srv.clone(), r, rp.namespace.clone(), query, rendering).await
            } else {
                list(srv, r, ns, query, rendering).await
            }
        }
        (
            Method::GET,
            Some(name),
            None | Some(Subresource::Status) | Some(Subresource::EphemeralContainers),
        ) => {
            if rp.legacy_watch {
                // Legacy watch of a single object: a watch with a name field selector.
                let mut q = query.clone();
                q.push_field_selector(&format!("metadata.name={name}"));
                return watch::serve(srv.clone(), r, rp.namespace.clone(), &q, rendering).await;
            }
            let obj = get_object(srv, r, ns, name).await?;
            Ok(render::object_response(
                r,
                obj,
                rendering,
                StatusCode::OK,
                vec![],
            ))
        }
        (Method::GET, Some(name), Some(Subresource::Scale)) => {
            let obj = get_object(srv, r, ns, name).await?;
            Ok(render::object_response(
                r,
                scale_of(r, &obj)?,
                rendering,
                StatusCode::OK,
                vec![],
            ))
        }
        (Method::GET, Some(name), Some(Subresource::Log)) => {
            let pod = get_object(srv, r, ns, name).await?;
            crate::kubelet_proxy::logs(srv, &pod, query).await
        }
        (Method::GET | Method::POST, Some(name), Some(Subresource::Exec)) => {
            let pod = get_object(srv, r, ns, name).await?;
            crate::kubelet_proxy::exec(srv, &pod, query, headers, upgrade).await
        }
        (Method::GET | Method::POST, Some(name), Some(Subresource::Attach)) => {
            let pod = get_object(srv, r, ns, name).await?;
            crate::kubelet_proxy::attach(srv, &pod, query, headers, upgrade).await
        }
        (Method::GET | Method::POST, Some(name), Some(Subresource::PortForward)) => {
            let pod = get_object(srv, r, ns, name).await?;
            crate::kubelet_proxy::port_forward(srv, &pod, query, headers, upgrade).await
        }
        (Method::POST, None, None) => {
            let value = read_json(headers, body).await?;
            create(srv, r, ns, value, query, rendering).await
        }
        (Method::POST, Some(name), Some(Subresource::Binding)) => {
            let value = read_json(headers, body).await?;
            bind(srv, r, ns, name, value, query).await
        }
        (Method::POST, Some(name), Some(Subresource::Eviction)) => {
            let value = read_json(headers, body).await?;
            evict(srv, r, ns, name, value).await
        }
        (Method::PUT, Some(name), sub) => {
            let value = read_json(headers, body).await?;
            let kind = update_kind(&rp, sub)?;
            update(srv, r, ns, name, value, kind, query, rendering).await
        }
        (Method::PATCH, Some(name), sub) => {
            let content_type = headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let bytes = read_body(body).await?;
            let kind = update_kind(&rp, sub)?;
            let patch = PatchRequest {
                content_type: &content_type,
                body: &bytes,
                kind,
                rendering,
            };
            patch_object(srv, r, ns, name, patch, query).await
        }
        (Method::DELETE, Some(name), None) => {
            let bytes = read_body(body).await?;
            let opts = DeleteOptions::parse(query, &bytes)?;
            delete(srv, r, ns, name, opts, rendering).await
        }
        (Method::DELETE, None, None) => {
            let bytes = read_body(body).await?;
            let opts = DeleteOptions::parse(query, &bytes)?;
            delete_collection(srv, r, ns, query, opts, rendering).await
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// What part of an object an update writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    /// The main resource: spec and metadata; status is kept.
    Main,
    /// The status subresource: only status.
    Status,
    /// The scale subresource: only spec.replicas.
    Scale,
    /// A namespace's finalize subresource: only spec.finalizers.
    Finalize,
    /// A pod's ephemeralcontainers subresource: only spec.ephemeralContainers.
    EphemeralContainers,
    /// Internal: binding and graceful deletion, which change what users may not.
    System,
}

fn update_kind(rp: &ResourcePath, sub: Option<Subresource>) -> Result<UpdateKind, ApiError> {
    match (sub, rp.subresource.as_deref()) {
        (None, _) => Ok(UpdateKind::Main),
        (Some(Subresource::Status), Some("finalize")) => Ok(UpdateKind::Finalize),
        (Some(Subresource::Status), _) => Ok(UpdateKind::Status),
        (Some(Subresource::Scale), _) => Ok(UpdateKind::Scale),
        (Some(Subresource::EphemeralContainers), _) => Ok(UpdateKind::EphemeralContainers),
        _ => Err(ApiError::method_not_allowed()),
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies

/// How much of an oversized body is still read and thrown away before answering 413, so that
/// a client still sending it gets the answer instead of a broken pipe.
const DRAIN_LIMIT: usize = 16 * MAX_BODY;

/// Reads a request body of at most [`MAX_BODY`] bytes; larger ones are a 413.
async fn read_body(body: Body) -> Result<Vec<u8>, ApiError> {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut out = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
        if let Some(data) = frame.data_ref() {
            seen += data.len();
            if seen <= MAX_BODY {
                out.extend_from_slice(data);
            } else if seen > DRAIN_LIMIT {
                break;
            }
        }
    }
    if seen > MAX_BODY {
        return Err(ApiError::too_large(MAX_BODY));
    }
    Ok(out)
}

async fn read_json(headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    let bytes = read_body(body).await?;
    request::decode_body(headers, &bytes)
}

fn json_response(code: StatusCode, v: &Value, warnings: Vec<String>) -> Response {
    let body = render::body(v);
    let mut resp = (
        code,
        [(http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    add_warnings(&mut resp, warnings);
    resp
}

/// Adds `Warning: 299 - "..."` headers.
pub fn add_warnings(resp: &mut Response, warnings: Vec<String>) {
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append(http::header::WARNING, v);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reads

/// The namespace object, from the watch cache (as upstream's NamespaceLifecycle admission reads
/// its informer), falling back to the store when the cache has not seen it yet.
async fn namespace_exists(srv: &ApiServer, ns: &str) -> Result<Option<Value>, ApiError> {
    let nsr = api::registry::find("", "v1", "namespaces").expect("namespaces registered");
    cached_or_stored(srv, nsr, &nsr.key(None, ns)).await
}

/// The object at `key` of `r` from the watch cache, else from the store (an object written
/// just before may not have reached the cache yet).
pub(crate) async fn cached_or_stored(
    srv: &ApiServer,
    r: &ResourceInfo,
    key: &str,
) -> Result<Option<Value>, ApiError> {
    if let Some(cached) = srv.cache.resource(r).get(key).await {
        return Ok(Some((*cached).clone()));
    }
    match srv.store.get(key).await? {
        Some(kv) => Ok(cache::decode(&kv.value, kv.mod_revision).ok()),
        None => Ok(None),
    }
}

/// Reads one object from the store (a consistent read).
pub async fn get_object(
    srv: &ApiServer,
    r: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
) -> Result<Value, ApiError> {
    let kv = srv
        .store
        .get(&r.key(ns, name))
        .await?
        .ok_or_else(|| ApiError::not_found(r, name))?;
    cache::decode(&kv.value, kv.mod_revision)
        .map_err(|e| ApiError::internal(format!("stored object {name} is corrupt: {e}")))
}

impl Query {
    /// Adds a term to the field selector (for the legacy single-object watch path).
    pub fn push_field_selector(&mut self, term: &str) {
        let current = self.get("fieldSelector").unwrap_or("").to_string();
        let combined = if current.is_empty() {
            term.to_string()
        } else {
            format!("{current},{term}")
        };
        self.set("fieldSelector", &combined);
    }
}
