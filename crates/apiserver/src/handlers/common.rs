//! What every verb shares: request bodies, JSON responses, patch types, what an update writes,
//! and the reads of one object (store, watch cache).

use std::time::Duration;

use api::ResourceInfo;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::Value;

use crate::cache;
use crate::error::ApiError;
use crate::render;
use crate::request::{self, MAX_BODY};
use crate::server::ApiServer;

/// How long a consistent read waits for the watch cache to catch up with the store.
pub(super) const CACHE_WAIT: Duration = Duration::from_secs(5);
/// How often an update retries after losing a compare-and-swap race.
pub(super) const UPDATE_RETRIES: usize = 16;

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
    /// Internal: the binding subresource, which changes what users may not.
    System,
}

impl UpdateKind {
    /// The operation and subresource admission sees for a write of this kind (System is the
    /// binding subresource, a create).
    pub fn admission(self) -> (crate::admission::Operation, &'static str) {
        use crate::admission::Operation::{Create, Update};
        match self {
            UpdateKind::Main => (Update, ""),
            UpdateKind::Status => (Update, "status"),
            UpdateKind::Scale => (Update, "scale"),
            UpdateKind::Finalize => (Update, "finalize"),
            UpdateKind::EphemeralContainers => (Update, "ephemeralcontainers"),
            UpdateKind::System => (Create, "binding"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies

/// How much of an oversized body is still read and thrown away before answering 413, so that
/// a client still sending it gets the answer instead of a broken pipe.
pub(super) const DRAIN_LIMIT: usize = 16 * MAX_BODY;

/// Reads a request body of at most [`MAX_BODY`] bytes; larger ones are a 413.
pub(super) async fn read_body(body: Body) -> Result<Vec<u8>, ApiError> {
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

pub(super) async fn read_json(headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    let bytes = read_body(body).await?;
    request::decode_body(headers, &bytes)
}

pub(super) fn json_response(code: StatusCode, v: &Value, warnings: Vec<String>) -> Response {
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

/// The patch type of a PATCH request's Content-Type; server-side apply and empty bodies are
/// refused.
pub(super) fn patch_type(
    content_type: &str,
    body: &[u8],
) -> Result<api::patch::PatchType, ApiError> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    let patch_type = api::patch::PatchType::from_content_type(media).ok_or_else(|| {
        ApiError::unsupported_media_type(format!(
            "the server does not support patch type {media:?}: supported are application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json"
        ))
    })?;
    if patch_type == api::patch::PatchType::Apply {
        return Err(ApiError::unsupported_media_type(
            "server-side apply (application/apply-patch+yaml) is not supported by this server; use client-side apply",
        ));
    }
    if body.is_empty() {
        return Err(ApiError::bad_request("the patch body is empty"));
    }
    Ok(patch_type)
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
pub(super) async fn namespace_exists(srv: &ApiServer, ns: &str) -> Result<Option<Value>, ApiError> {
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
    Ok(read_stored(srv, r, &r.key(ns, name), name).await?.0)
}

/// The stored object at `key` (named `name` in errors) and its revision: 404 when absent,
/// 500 when it does not decode.
pub(super) async fn read_stored(
    srv: &ApiServer,
    r: &ResourceInfo,
    key: &str,
    name: &str,
) -> Result<(Value, i64), ApiError> {
    let kv = srv
        .store
        .get(key)
        .await?
        .ok_or_else(|| ApiError::not_found(r, name))?;
    let object = cache::decode(&kv.value, kv.mod_revision)
        .map_err(|e| ApiError::internal(format!("stored object {name} is corrupt: {e}")))?;
    Ok((object, kv.mod_revision))
}
