//! Resource handlers: get, list, create, update, patch, delete and deletecollection with
//! Kubernetes' semantics, and the status, scale, binding, eviction and finalize subresources.

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
    let ns = rp.namespace.as_deref();
    match (method.clone(), rp.name.as_deref(), sub) {
        (Method::GET, None, None) => {
            if query.flag("watch") || rp.legacy_watch {
                watch::serve(srv.clone(), r, rp.namespace.clone(), query, rendering).await
            } else {
                list(srv, r, ns, query, rendering).await
            }
        }
        (Method::GET, Some(name), None | Some(Subresource::Status)) => {
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
                scale_of(&obj)?,
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
    /// Internal: binding and graceful deletion, which change what users may not.
    System,
}

fn update_kind(rp: &ResourcePath, sub: Option<Subresource>) -> Result<UpdateKind, ApiError> {
    match (sub, rp.subresource.as_deref()) {
        (None, _) => Ok(UpdateKind::Main),
        (Some(Subresource::Status), Some("finalize")) => Ok(UpdateKind::Finalize),
        (Some(Subresource::Status), _) => Ok(UpdateKind::Status),
        (Some(Subresource::Scale), _) => Ok(UpdateKind::Scale),
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

/// LIST with selectors, paging and resourceVersion semantics.
async fn list(
    srv: &Arc<ApiServer>,
    r: &'static ResourceInfo,
    ns: Option<&str>,
    query: &Query,
    rendering: Rendering,
) -> Result<Response, ApiError> {
    let filter = Filter::from_query(r, query)?;
    let prefix = match ns {
        Some(ns) if r.namespaced() => r.namespace_prefix(ns),
        _ => r.key_prefix(),
    };
    let limit = query.int("limit")?.filter(|l| *l > 0).map(|l| l as usize);
    let continue_token = query.get("continue").filter(|c| !c.is_empty());
    let rv = query.get("resourceVersion").filter(|v| !v.is_empty());
    let rv_match = query.get("resourceVersionMatch").filter(|v| !v.is_empty());
    if rv_match.is_some() && rv.is_none() {
        return Err(ApiError::bad_request(
            "resourceVersionMatch is forbidden unless resourceVersion is provided",
        ));
    }
    if continue_token.is_some() && rv.is_some_and(|v| v != "0") {
        return Err(ApiError::bad_request(
            "specifying resource version is not allowed when using continue",
        ));
    }
    let (items, revision, next) = if limit.is_some() || continue_token.is_some() {
        // Paged: read the store at one revision for every page.
        let (at, start_after) = match continue_token {
            Some(tok) => {
                let (rev, key) = decode_continue(tok)?;
                (Some(rev), Some(key))
            }
            None => match (rv, rv_match) {
                (Some(v), Some("Exact")) => (Some(parse_rv(v)?), None),
                _ => (None, None),
            },
        };
        page_from_store(srv, &prefix, at, start_after, limit, &filter).await?
    } else {
        match (rv, rv_match) {
            (Some(v), Some("Exact")) => {
                let rev = parse_rv(v)?;
                let listed = srv
                    .store
                    .list(
                        &prefix,
                        ListOptions {
                            revision: Some(rev),
                            ..Default::default()
                        },
                    )
                    .await
                    .map_err(list_error)?;
                let items = listed
                    .items
                    .into_iter()
                    .filter_map(|kv| cache::decode(&kv.value, kv.mod_revision).ok())
                    .filter(|o| filter.matches(o))
                    .map(Arc::new)
                    .collect();
                (items, listed.revision, None)
            }
            (Some("0"), _) => {
                let rc = srv.cache.resource(r);
                let snap = rc.snapshot(&prefix, srv.cache.revision()).await;
                let items = snap.objects.into_iter().filter(|o| filter.matches(o)).collect();
                (items, snap.revision, None)
            }
            (Some(v), Some("NotOlderThan")) | (Some(v), None) => {
                let want = parse_rv(v)?;
                if !srv.cache.wait_for(want, Duration::from_secs(3)).await {
                    return Err(ApiError::timeout(format!(
                        "Too large resource version: {want}, current: {}",
                        srv.cache.revision()
                    )));
                }
                from_cache(srv, r, &prefix, &filter).await
            }
            (Some(_), Some(other)) => {
                return Err(ApiError::bad_request(format!(
                    "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
                )))
            }
            (None, _) => {
                let current = srv.store.current_revision().await?;
                if !srv.cache.wait_for(current, CACHE_WAIT).await {
                    return Err(ApiError::timeout("the watch cache is not ready"));
                }
                from_cache(srv, r, &prefix, &filter).await
            }
        }
    };
    Ok(render::list_response(r, items, revision, next, rendering))
}

async fn from_cache(
    srv: &ApiServer,
    r: &'static ResourceInfo,
    prefix: &str,
    filter: &Filter,
) -> (Vec<Arc<Value>>, i64, Option<String>) {
    let rc = srv.cache.resource(r);
    let snap = rc.snapshot(prefix, srv.cache.revision()).await;
    let items = snap
        .objects
        .into_iter()
        .filter(|o| filter.matches(o))
        .collect();
    (items, snap.revision, None)
}

fn list_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Compacted { .. } => {
            ApiError::gone("The resourceVersion for the provided list is too old.")
        }
        StoreError::FutureRevision { requested, current } => ApiError::timeout(format!(
            "Too large resource version: {requested}, current: {current}"
        )),
        other => other.into(),
    }
}

fn parse_rv(v: &str) -> Result<i64, ApiError> {
    v.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version: {v:?}")))
}

fn encode_continue(rev: i64, key: &str) -> String {
    let raw = json!({"v": "meta.k8s.io/v1", "rv": rev, "start": key}).to_string();
    base64_encode(raw.as_bytes())
}

fn decode_continue(tok: &str) -> Result<(i64, String), ApiError> {
    let bad = || {
        ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    };
    let raw = base64_decode(tok).ok_or_else(bad)?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rev = v.get("rv").and_then(Value::as_i64).ok_or_else(bad)?;
    let key = v
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(bad)?
        .to_string();
    Ok((rev, key))
}

fn base64_encode(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
}

async fn page_from_store(
    srv: &ApiServer,
    prefix: &str,
    at: Option<i64>,
    mut start_after: Option<String>,
    limit: Option<usize>,
    filter: &Filter,
) -> Result<(Vec<Arc<Value>>, i64, Option<String>), ApiError> {
    let want = limit.unwrap_or(usize::MAX);
    let mut items = Vec::new();
    let mut revision = at;
    loop {
        let batch = want.saturating_sub(items.len()).clamp(1, 1000);
        let listed = srv
            .store
            .list(
                prefix,
                ListOptions {
                    revision,
                    limit: Some(batch),
                    start_after: start_after.clone(),
                },
            )
            .await
            .map_err(|e| match e {
                StoreError::Compacted { .. } if start_after.is_some() => ApiError::gone(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                ),
                other => list_error(other),
            })?;
        revision = Some(listed.revision);
        let mut last_key = None;
        for kv in listed.items {
            last_key = Some(kv.key.clone());
            if let Ok(o) = cache::decode(&kv.value, kv.mod_revision) {
                if filter.matches(&o) {
                    items.push(Arc::new(o));
                }
            }
            if items.len() >= want {
                break;
            }
        }
        let rev = listed.revision;
        if items.len() >= want {
            // More may follow: hand out a continue token when the store has more keys.
            let key = last_key.unwrap_or_default();
            let more = listed.more
                || srv
                    .store
                    .list(
                        prefix,
                        ListOptions {
                            revision: Some(rev),
                            limit: Some(1),
                            start_after: Some(key.clone()),
                        },
                    )
                    .await
                    .map(|l| !l.items.is_empty())
                    .unwrap_or(false);
            let next = more.then(|| encode_continue(rev, &key));
            return Ok((items, rev, next));
        }
        if !listed.more {
            return Ok((items, rev, None));
        }
        start_after = last_key;
    }
}

// ---------------------------------------------------------------------------------------------
// Create

/// Checks apiVersion and kind of a body against the path and fills them when missing.
fn check_type(r: &ResourceInfo, obj: &mut Value, expected_kind: &str) -> Result<(), ApiError> {
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::bad_request(
            "the body of the request is not a JSON object",
        ));
    };
    let expected_av = r.api_version();
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), json!(expected_av));
        }
        Some(av) if av == expected_av => {}
        Some(av) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({expected_av})"
            )))
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), json!(expected_kind));
        }
        Some(k) if k == expected_kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({expected_kind})"
            )))
        }
    }
    if !map.get("metadata").is_none_or(Value::is_object) {
        return Err(ApiError::bad_request("metadata must be an object"));
    }
    Ok(())
}

/// Decodes through the typed struct: unknown fields are dropped, warned about or refused
/// according to `fieldValidation`.
fn prune(r: &ResourceInfo, obj: Value, query: &Query) -> Result<(Value, Vec<String>), ApiError> {
    let mode = query.get("fieldValidation").unwrap_or("Warn");
    if !matches!(mode, "Strict" | "Warn" | "Ignore") {
        return Err(ApiError::bad_request(format!(
            "fieldValidation parameter unsupported: {mode}. Must be one of \"Ignore\", \"Warn\" or \"Strict\""
        )));
    }
    let (pruned, unknown) =
        api::validation::prune_unknown_fields(r, obj).map_err(ApiError::bad_request)?;
    if unknown.is_empty() || mode == "Ignore" {
        return Ok((pruned, vec![]));
    }
    let msgs: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    if mode == "Strict" {
        let detail = if msgs.len() == 1 {
            msgs[0].clone()
        } else {
            msgs.join(", ")
        };
        return Err(ApiError::bad_request(format!(
            "strict decoding error: {detail}"
        )));
    }
    Ok((pruned, msgs))
}

/// Resources whose metadata.generation tracks spec changes.
fn tracks_generation(r: &ResourceInfo) -> bool {
    matches!(r.group, "apps" | "batch" | "autoscaling")
}

async fn check_namespace_for_create(
    srv: &ApiServer,
    r: &ResourceInfo,
    ns: &str,
    name: &str,
) -> Result<(), ApiError> {
    match namespace_exists(srv, ns).await? {
        None => Err(ApiError::namespace_not_found(ns)),
        Some(nsobj) if objects::is_deleting(&nsobj) => Err(ApiError::forbidden(
            r,
            name,
            &format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ),
        )),
        Some(_) => Ok(()),
    }
}

async fn create(
    srv: &Arc<ApiServer>,
    r: &'static ResourceInfo,
    ns: Option<&str>,
    mut obj: Value,
    query: &Query,
    rendering: Rendering,
) -> Result<Response, ApiError> {
    let dry_run = query.dry_run()?;
    check_type(r, &mut obj, r.kind)?;
    let body_ns = objects::meta_str(&obj, "namespace").map(String::from);
    let ns: Option<String> = if r.namespaced() {
        let path_ns = ns.ok_or_else(ApiError::method_not_allowed)?;
        match body_ns.as_deref() {
            Some(b) if !b.is_empty() && b != path_ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ))
            }
            _ => {}
        }
        Some(path_ns.to_string())
    } else {
        None
    };
    let (mut obj, warnings) = prune(r, obj, query)?;
    {
        let meta = objects::meta_mut(&mut obj);
        if meta
            .get("resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
        {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let name = meta.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            if let Some(prefix) = meta
                .get("generateName")
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty())
            {
                let generated = objects::generate_name(prefix);
                meta.insert("name".into(), json!(generated));
            }
        }
        if let Some(ns) = &ns {
            meta.insert("namespace".into(), json!(ns));
        } else {
            meta.remove("namespace");
        }
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), json!(objects::now_rfc3339()));
        meta.remove("deletionTimestamp");
        meta.remove("deletionGracePeriodSeconds");
        meta.remove("managedFields");
        if tracks_generation(r) {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
    }
    let name = objects::name(&obj).to_string();
    if name.is_empty() {
        return Err(ApiError::invalid(
            r,
            "",
            &[api::validation::FieldError {
                reason: "FieldValueRequired",
                field: "metadata.name".into(),
                message: "Required value: name or generateName is required".into(),
            }],
        ));
    }
    if let Some(ns) = &ns {
        check_namespace_for_create(srv, r, ns, &name).await?;
    }
    // Status is the controllers' and kubelets' to write, except for nodes and namespaces.
    if r.has_subresource(Subresource::Status)
        && !matches!(
            r.kind,
            "Node" | "Namespace" | "PersistentVolume" | "PersistentVolumeClaim"
        )
    {
        if let Some(map) = obj.as_object_mut() {
            map.remove("status");
        }
    }
    api::defaults::apply(r, &mut obj);
    if r.kind == "Pod" {
        api::defaults::default_tolerations(
            &mut obj,
            srv.config.default_not_ready_toleration_seconds,
            srv.config.default_unreachable_toleration_seconds,
        );
    }
    if r.kind == "Namespace" {
        obj["status"] = json!({"phase": "Active"});
    }
    match r.kind {
        "Pod" => admission::admit_pod_priority(srv, &mut obj).await?,
        "PriorityClass" => admission::admit_priority_class(srv, &obj).await?,
        _ => {}
    }
    let errors = api::validation::validate_create(r, &obj);
    if !errors.is_empty() {
        return Err(ApiError::invalid(r, &name, &errors));
    }
    let mut allocations = Allocations::default();
    admission::on_create(r, &mut obj, &srv.alloc, &mut allocations)?;
    if dry_run {
        allocations.rollback(&srv.alloc);
        api::wire::canonicalize(r, &mut obj);
        return Ok(render::object_response(
            r,
            obj,
            rendering,
            StatusCode::CREATED,
            warnings,
        ));
    }
    let key = r.key(ns.as_deref(), &name);
    match srv
        .store
        .create(&key, objects::to_stored_bytes(r, &mut obj))
        .await
    {
        Ok(rev) => {
            allocations.commit(&srv.alloc);
            cache::set_resource_version(&mut obj, rev);
            Ok(render::object_response(
                r,
                obj,
                rendering,
                StatusCode::CREATED,
                warnings,
            ))
        }
        Err(StoreError::AlreadyExists { .. }) => {
            allocations.rollback(&srv.alloc);
            Err(ApiError::already_exists(r, &name))
        }
        Err(e) => {
            allocations.rollback(&srv.alloc);
            Err(e.into())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Update

/// The outcome of a guaranteed update.
pub struct Updated {
    pub object: Value,
    /// False when the update changed nothing (nothing was written).
    pub changed: bool,
    /// True when removing the last finalizer deleted the object.
    pub deleted: bool,
}

/// Reads, mutates and writes an object with compare-and-swap, retrying lost races unless the
/// caller gave a resourceVersion precondition (the store's GuaranteedUpdate).
#[allow(clippy::too_many_arguments)]
pub async fn guaranteed_update<F>(
    srv: &ApiServer,
    r: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    kind: UpdateKind,
    dry_run: bool,
    mut mutate: F,
) -> Result<Updated, ApiError>
where
    F: FnMut(&Value) -> Result<(Value, Option<i64>), ApiError>,
{
    let key = r.key(ns, name);
    for _ in 0..UPDATE_RETRIES {
        let kv = srv
            .store
            .get(&key)
            .await?
            .ok_or_else(|| ApiError::not_found(r, name))?;
        let old = cache::decode(&kv.value, kv.mod_revision)
            .map_err(|e| ApiError::internal(format!("stored object {name} is corrupt: {e}")))?;
        let (candidate, precondition) = mutate(&old)?;
        if let Some(rv) = precondition {
            if rv != kv.mod_revision {
                return Err(ApiError::modified(r, name));
            }
        }
        let mut new = finish_update(srv, r, &old, candidate, kind)?;
        if r.kind == "PriorityClass" {
            admission::admit_priority_class(srv, &new).await?;
        }
        let mut allocations = Allocations::default();
        admission::on_update(r, &old, &mut new, &srv.alloc, &mut allocations)?;
        if objects::same_content(&new, &old) {
            allocations.rollback(&srv.alloc);
            return Ok(Updated {
                object: old,
                changed: false,
                deleted: false,
            });
        }
        if dry_run {
            allocations.rollback(&srv.alloc);
            api::wire::canonicalize(r, &mut new);
            return Ok(Updated {
                object: new,
                changed: true,
                deleted: false,
            });
        }
        // Removing the last finalizer of an object being deleted deletes it.
        if objects::is_deleting(&new)
            && objects::finalizers(&new).is_empty()
            && !(r.kind == "Namespace" && namespace_has_spec_finalizers(&new))
            && !(r.kind == "Pod" && pod_waits_for_kubelet(&new))
        {
            match srv.store.delete(&key, Some(kv.mod_revision)).await {
                Ok(deleted) => {
                    allocations.rollback(&srv.alloc);
                    admission::on_delete(r, &new, &srv.alloc);
                    cache::set_resource_version(&mut new, deleted.mod_revision);
                    return Ok(Updated {
                        object: new,
                        changed: true,
                        deleted: true,
                    });
                }
                Err(StoreError::Conflict { .. }) if precondition_free(precondition) => {
                    allocations.rollback(&srv.alloc);
                    continue;
                }
                Err(StoreError::Conflict { .. }) => {
                    allocations.rollback(&srv.alloc);
                    return Err(ApiError::modified(r, name));
                }
                Err(e) => {
                    allocations.rollback(&srv.alloc);
                    return Err(e.into());
                }
            }
        }
        match srv
            .store
            .update(&key, objects::to_stored_bytes(r, &mut new), kv.mod_revision)
            .await
        {
            Ok(rev) => {
                allocations.commit(&srv.alloc);
                cache::set_resource_version(&mut new, rev);
                return Ok(Updated {
                    object: new,
                    changed: true,
                    deleted: false,
                });
            }
            Err(StoreError::Conflict { .. }) | Err(StoreError::NotFound { .. })
                if precondition_free(precondition) =>
            {
                allocations.rollback(&srv.alloc);
                continue;
            }
            Err(StoreError::Conflict { .. }) => {
                allocations.rollback(&srv.alloc);
                return Err(ApiError::modified(r, name));
            }
            Err(e) => {
                allocations.rollback(&srv.alloc);
                return Err(e.into());
            }
        }
    }
    Err(ApiError::conflict(
        r,
        name,
        "the object is being modified too often; try again",
    ))
}

fn precondition_free(p: Option<i64>) -> bool {
    p.is_none()
}

fn namespace_has_spec_finalizers(ns: &Value) -> bool {
    ns.pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
}

/// A bound pod being deleted gracefully stays until its kubelet deletes it with grace 0.
fn pod_waits_for_kubelet(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
        .is_some_and(|g| g > 0)
}

/// Sets `field` to a copy of `value`, or removes it when there is none.
fn set_or_remove(map: &mut serde_json::Map<String, Value>, field: &str, value: Option<&Value>) {
    match value {
        Some(v) => {
            map.insert(field.to_string(), v.clone());
        }
        None => {
            map.remove(field);
        }
    }
}

/// Merges the candidate into the old object according to what the update may change, bumps
/// generation, defaults and validates.
fn finish_update(
    srv: &ApiServer,
    r: &'static ResourceInfo,
    old: &Value,
    candidate: Value,
    kind: UpdateKind,
) -> Result<Value, ApiError> {
    let name = objects::name(old).to_string();
    let mut new = match kind {
        UpdateKind::Main | UpdateKind::System => {
            let mut new = candidate;
            if kind == UpdateKind::Main && r.has_subresource(Subresource::Status) {
                if let Some(m) = new.as_object_mut() {
                    set_or_remove(m, "status", old.get("status"));
                }
            }
            new
        }
        UpdateKind::Status => {
            let mut new = old.clone();
            if let Some(m) = new.as_object_mut() {
                set_or_remove(m, "status", candidate.get("status"));
            }
            new
        }
        UpdateKind::Finalize => {
            let mut new = old.clone();
            let fins = candidate
                .pointer("/spec/finalizers")
                .cloned()
                .unwrap_or(json!([]));
            new["spec"]["finalizers"] = fins;
            new
        }
        UpdateKind::Scale => candidate,
    };
    // Metadata the client cannot change.
    {
        let old_meta = old.get("metadata").cloned().unwrap_or(json!({}));
        let meta = objects::meta_mut(&mut new);
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "generation",
            "selfLink",
        ] {
            set_or_remove(meta, field, old_meta.get(field));
        }
        if kind != UpdateKind::System {
            for field in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
                set_or_remove(meta, field, old_meta.get(field));
            }
        }
        meta.remove("managedFields");
    }
    if let Some(map) = new.as_object_mut() {
        map.insert("apiVersion".into(), json!(r.api_version()));
        map.insert("kind".into(), json!(r.kind));
    }
    if r.kind == "Service" && kind == UpdateKind::Main {
        // Allocations the client left out are kept, as upstream does.
        api::defaults::retain_service_allocations(&mut new, old);
    }
    api::defaults::apply(r, &mut new);
    if r.kind == "Pod" {
        api::defaults::default_tolerations(
            &mut new,
            srv.config.default_not_ready_toleration_seconds,
            srv.config.default_unreachable_toleration_seconds,
        );
    }
    // Decoded and encoded as upstream does it, so that comparisons with the stored object see
    // the same zero values.
    api::wire::canonicalize(r, &mut new);
    if tracks_generation(r) && new.get("spec") != old.get("spec") {
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            + 1;
        objects::meta_mut(&mut new).insert("generation".into(), json!(generation));
    }
    if kind != UpdateKind::System {
        let errors = api::validation::validate_update(r, &new, old);
        if !errors.is_empty() {
            return Err(ApiError::invalid(r, &name, &errors));
        }
    }
    Ok(new)
}

fn body_resource_version(obj: &Value) -> Result<Option<i64>, ApiError> {
    match objects::meta_str(obj, "resourceVersion") {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!("invalid resourceVersion {v:?} in the object"))
        }),
    }
}

#[allow(clippy::too_many_arguments)]
async fn update(
    srv: &Arc<ApiServer>,
    r: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    mut obj: Value,
    kind: UpdateKind,
    query: &Query,
    rendering: Rendering,
) -> Result<Response, ApiError> {
    let dry_run = query.dry_run()?;
    if kind == UpdateKind::Scale {
        return update_scale(srv, r, ns, name, obj, dry_run, rendering).await;
    }
    check_type(r, &mut obj, r.kind)?;
    let body_name = objects::name(&obj);
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    if let (Some(path_ns), Some(body_ns)) = (ns, objects::meta_str(&obj, "namespace")) {
        if !body_ns.is_empty() && body_ns != path_ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    let (obj, warnings) = prune(r, obj, query)?;
    let precondition = body_resource_version(&obj)?;
    let updated = guaranteed_update(srv, r, ns, name, kind, dry_run, |_old| {
        Ok((obj.clone(), precondition))
    })
    .await?;
    Ok(render::object_response(
        r,
        updated.object,
        rendering,
        StatusCode::OK,
        warnings,
    ))
}

/// A PATCH request's body and what it writes.
struct PatchRequest<'a> {
    content_type: &'a str,
    body: &'a [u8],
    kind: UpdateKind,
    rendering: Rendering,
}

async fn patch_object(
    srv: &Arc<ApiServer>,
    r: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    req: PatchRequest<'_>,
    query: &Query,
) -> Result<Response, ApiError> {
    let PatchRequest {
        content_type,
        body,
        kind,
        rendering,
    } = req;
    let dry_run = query.dry_run()?;
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
    let mut warnings = Vec::new();
    if kind == UpdateKind::Scale {
        let updated = guaranteed_update(srv, r, ns, name, UpdateKind::Scale, dry_run, |old| {
            let scale = scale_of(old)?;
            let patched = api::patch::apply_patch(r, &scale, patch_type, body)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            scale_into(r, old, &patched)
        })
        .await?;
        return Ok(render::object_response(
            r,
            scale_of(&updated.object)?,
            rendering,
            StatusCode::OK,
            vec![],
        ));
    }
    let updated = guaranteed_update(srv, r, ns, name, kind, dry_run, |old| {
        let patched = api::patch::apply_patch(r, old, patch_type, body)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        if !patched.is_object() {
            return Err(ApiError::bad_request("the patch did not produce an object"));
        }
        let mut patched = patched;
        check_type(r, &mut patched, r.kind)?;
        if objects::name(&patched) != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                objects::name(&patched)
            )));
        }
        let (pruned, w) = prune(r, patched, query)?;
        warnings = w;
        // A resourceVersion in the patch that differs from the stored one is a precondition.
        let precondition =
            body_resource_version(&pruned)?.filter(|rv| Some(*rv) != Some(object_revision(old)));
        Ok((pruned, precondition))
    })
    .await?;
    Ok(render::object_response(
        r,
        updated.object,
        rendering,
        StatusCode::OK,
        warnings,
    ))
}

// ---------------------------------------------------------------------------------------------
// Scale

fn scale_of(obj: &Value) -> Result<Value, ApiError> {
    let meta = obj.get("metadata").cloned().unwrap_or(json!({}));
    let selector = obj
        .pointer("/spec/selector")
        .map(crate::filter::selector_string)
        .unwrap_or_default();
    let mut scale = json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    });
    api::wire::canonicalize_as("autoscaling/v1.Scale", &mut scale);
    Ok(scale)
}

fn scale_into(
    _r: &ResourceInfo,
    old: &Value,
    scale: &Value,
) -> Result<(Value, Option<i64>), ApiError> {
    let replicas = scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let mut new = old.clone();
    new["spec"]["replicas"] = json!(replicas);
    let precondition = body_resource_version(scale)?;
    Ok((new, precondition))
}

async fn update_scale(
    srv: &Arc<ApiServer>,
    r: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    scale: Value,
    dry_run: bool,
    rendering: Rendering,
) -> Result<Response, ApiError> {
    if scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .is_some_and(|n| n < 0)
    {
        return Err(ApiError::invalid(
            r,
            name,
            &[api::validation::FieldError {
                reason: "FieldValueInvalid",
                field: "spec.replicas".into(),
                message: format!(
                    "Invalid value: {}: must be greater than or equal to 0",
                    scale["spec"]["replicas"]
                ),
            }],
        ));
    }
    let updated = guaranteed_update(srv, r, ns, name, UpdateKind::Scale, dry_run, |old| {
        scale_into(r, old, &scale)
    })
    .await?;
    Ok(render::object_response(
        r,
        scale_of(&updated.object)?,
        rendering,
        StatusCode::OK,
        vec![],
    ))
}

// ---------------------------------------------------------------------------------------------
// Binding and eviction

async fn bind(
    srv: &Arc<ApiServer>,
    r: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    binding: Value,
    query: &Query,
) -> Result<Response, ApiError> {
    let dry_run = query.dry_run()?;
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::invalid(
                r,
                name,
                &[api::validation::FieldError {
                    reason: "FieldValueRequired",
                    field: "target.name".into(),
                    message: "Required value".into(),
                }],
            )
        })?
        .to_string();
    let now = objects::now_rfc3339();
    guaranteed_update(srv, r, ns, name, UpdateKind::System, dry_run, |old| {
        if objects::is_deleting(old) {
            return Err(ApiError::conflict(
                r,
                name,
                &format!("pod {name} is being deleted, cannot be assigned to a host"),
            ));
        }
        if let Some(current) = old
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            return Err(ApiError::conflict(
                r,
                name,
                &format!("pod {name} is already assigned to node \"{current}\""),
            ));
        }
        let mut new = old.clone();
        new["spec"]["nodeName"] = json!(node);
        let conditions = new["status"]
            .as_object_mut()
            .map(|s| s.entry("conditions").or_insert(json!([])));
        if let Some(Value::Array(conds)) = conditions {
            conds.retain(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"));
            conds.push(json!({"type": "PodScheduled", "status": "True",
                "lastProbeTime": null, "lastTransitionTime": now}));
        }
        Ok((new, None))
    })
    .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        vec![],
    ))
}

async fn evict(
    srv: &Arc<ApiServer>,
    r: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    eviction: Value,
) -> Result<Response, ApiError> {
    let opts_value = eviction.get("deleteOptions").cloned().unwrap_or(json!({}));
    let bytes = serde_json::to_vec(&opts_value).unwrap_or_default();
    let opts = DeleteOptions::parse(&Query::default(), &bytes)?;
    delete(srv, r, ns, name, opts, Rendering::Object).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        vec![],
    ))
}

// ---------------------------------------------------------------------------------------------
// Delete

/// DeleteOptions from the body and the query.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub grace_period: Option<i64>,
    pub propagation: Option<String>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    fn parse(query: &Query, body: &[u8]) -> Result<DeleteOptions, ApiError> {
        let mut opts = DeleteOptions {
            grace_period: query.int("gracePeriodSeconds")?,
            propagation: query.get("propagationPolicy").map(String::from),
            dry_run: query.dry_run()?,
            ..Default::default()
        };
        if query.flag("orphanDependents") {
            opts.propagation = Some("Orphan".into());
        }
        if !body.is_empty() {
            let v: Value = serde_json::from_slice(body).map_err(|e| {
                ApiError::bad_request(format!("the DeleteOptions body is not valid JSON: {e}"))
            })?;
            if let Some(g) = v.get("gracePeriodSeconds").and_then(Value::as_i64) {
                opts.grace_period = Some(g);
            }
            if let Some(p) = v.get("propagationPolicy").and_then(Value::as_str) {
                opts.propagation = Some(p.to_string());
            }
            if v.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
                opts.propagation = Some("Orphan".into());
            }
            opts.uid = v
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(String::from);
            opts.resource_version = v
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(String::from);
            if let Some(d) = v.get("dryRun").and_then(Value::as_array) {
                if d.iter().any(|x| x.as_str() == Some("All")) {
                    opts.dry_run = true;
                }
            }
        }
        if let Some(p) = &opts.propagation {
            if !matches!(p.as_str(), "Orphan" | "Background" | "Foreground") {
                return Err(ApiError::bad_request(format!(
                    "propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
                )));
            }
        }
        if opts.grace_period.is_some_and(|g| g < 0) {
            opts.grace_period = Some(0);
        }
        Ok(opts)
    }
}

/// The Status a completed delete answers with.
fn delete_status(r: &ResourceInfo, obj: &Value) -> Value {
    let mut details = json!({
        "name": objects::name(obj),
        "kind": r.plural,
        "uid": objects::meta_str(obj, "uid"),
    });
    if !r.group.is_empty() {
        details["group"] = json!(r.group);
    }
    let mut status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details});
    api::wire::canonicalize_as("meta/v1.Status", &mut status);
    status
}

/// Deletes one object; returns the response body and whether it is gone.
async fn delete_one(
    srv: &Arc<ApiServer>,
    r: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    opts: &DeleteOptions,
) -> Result<(Value, bool), ApiError> {
    admission::check_priority_class_delete(r, name)?;
    let key = r.key(ns, name);
    for _ in 0..UPDATE_RETRIES {
        let kv = srv
            .store
            .get(&key)
            .await?
            .ok_or_else(|| ApiError::not_found(r, name))?;
        let old = cache::decode(&kv.value, kv.mod_revision)
            .map_err(|e| ApiError::internal(format!("stored object {name} is corrupt: {e}")))?;
        if let Some(uid) = &opts.uid {
            let actual = objects::meta_str(&old, "uid").unwrap_or("");
            if uid != actual {
                return Err(ApiError::conflict(
                    r,
                    name,
                    &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"),
                ));
            }
        }
        if let Some(rv) = &opts.resource_version {
            let actual = kv.mod_revision.to_string();
            if *rv != actual {
                return Err(ApiError::conflict(
                    r,
                    name,
                    &format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in meta: {actual}"),
                ));
            }
        }
        let mut new = old.clone();
        let mut keep = false;
        // Finalizers for the requested propagation.
        let propagation = opts.propagation.clone().unwrap_or_else(|| {
            if r.group == "batch" {
                "Orphan".into()
            } else {
                "Background".into()
            }
        });
        match propagation.as_str() {
            "Orphan"
                if !matches!(r.kind, "Namespace" | "Event" | "Pod")
                    && !objects::finalizers(&old).iter().any(|f| f == "orphan") =>
            {
                objects::add_finalizer(&mut new, "orphan");
            }
            "Foreground" => objects::add_finalizer(&mut new, "foregroundDeletion"),
            _ => {}
        }
        if r.kind == "Namespace" {
            let already = objects::is_deleting(&old);
            if !already
                || namespace_has_spec_finalizers(&old)
                || !objects::finalizers(&old).is_empty()
            {
                keep = namespace_has_spec_finalizers(&new) || !objects::finalizers(&new).is_empty();
                if keep && !already {
                    objects::meta_mut(&mut new)
                        .insert("deletionTimestamp".into(), json!(objects::now_rfc3339()));
                    objects::meta_mut(&mut new)
                        .insert("deletionGracePeriodSeconds".into(), json!(0));
                    new["status"]["phase"] = json!("Terminating");
                }
            }
        } else if r.kind == "Pod" {
            let bound = old
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            let finished = matches!(
                old.pointer("/status/phase").and_then(Value::as_str),
                Some("Succeeded") | Some("Failed")
            );
            let default_grace = old
                .pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(30);
            let mut grace = opts.grace_period.unwrap_or(default_grace);
            if !bound || finished {
                grace = 0;
            }
            let current = old
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64);
            if grace > 0 {
                // Graceful: the kubelet finishes the deletion. A second delete may only shorten it.
                let effective = current.map_or(grace, |c| c.min(grace));
                if current != Some(effective) {
                    objects::meta_mut(&mut new).insert(
                        "deletionTimestamp".into(),
                        json!(objects::timestamp_after(effective)),
                    );
                    objects::meta_mut(&mut new)
                        .insert("deletionGracePeriodSeconds".into(), json!(effective));
                }
                keep = true;
            } else {
                let has_finalizers = !objects::finalizers(&new).is_empty();
                if has_finalizers {
                    keep = true;
                    if !objects::is_deleting(&old) || current != Some(0) {
                        objects::meta_mut(&mut new)
                            .insert("deletionTimestamp".into(), json!(objects::now_rfc3339()));
                        objects::meta_mut(&mut new)
                            .insert("deletionGracePeriodSeconds".into(), json!(0));
                    }
                }
            }
        } else if !objects::finalizers(&new).is_empty() {
            keep = true;
            if !objects::is_deleting(&old) {
                objects::meta_mut(&mut new)
                    .insert("deletionTimestamp".into(), json!(objects::now_rfc3339()));
                objects::meta_mut(&mut new).insert("deletionGracePeriodSeconds".into(), json!(0));
            }
        }
        if keep {
            if objects::same_content(&new, &old) {
                return Ok((old, false));
            }
            if opts.dry_run {
                api::wire::canonicalize(r, &mut new);
                return Ok((new, false));
            }
            match srv
                .store
                .update(&key, objects::to_stored_bytes(r, &mut new), kv.mod_revision)
                .await
            {
                Ok(rev) => {
                    cache::set_resource_version(&mut new, rev);
                    return Ok((new, false));
                }
                Err(StoreError::Conflict { .. }) if opts.resource_version.is_none() => continue,
                Err(StoreError::Conflict { .. }) => return Err(ApiError::modified(r, name)),
                Err(e) => return Err(e.into()),
            }
        }
        if opts.dry_run {
            return Ok((old, true));
        }
        match srv.store.delete(&key, Some(kv.mod_revision)).await {
            Ok(deleted) => {
                admission::on_delete(r, &old, &srv.alloc);
                let mut last = old;
                cache::set_resource_version(&mut last, deleted.mod_revision);
                return Ok((last, true));
            }
            Err(StoreError::Conflict { .. }) if opts.resource_version.is_none() => continue,
            Err(StoreError::Conflict { .. }) => return Err(ApiError::modified(r, name)),
            Err(StoreError::NotFound { .. }) => return Err(ApiError::not_found(r, name)),
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(
        r,
        name,
        "the object is being modified too often; try again",
    ))
}

async fn delete(
    srv: &Arc<ApiServer>,
    r: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    opts: DeleteOptions,
    rendering: Rendering,
) -> Result<Response, ApiError> {
    let (obj, gone) = delete_one(srv, r, ns, name, &opts).await?;
    if gone {
        if r.kind == "Pod" {
            return Ok(render::object_response(
                r,
                obj,
                rendering,
                StatusCode::OK,
                vec![],
            ));
        }
        return Ok(json_response(
            StatusCode::OK,
            &delete_status(r, &obj),
            vec![],
        ));
    }
    let code = if r.kind == "Pod" {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok(render::object_response(r, obj, rendering, code, vec![]))
}

async fn delete_collection(
    srv: &Arc<ApiServer>,
    r: &'static ResourceInfo,
    ns: Option<&str>,
    query: &Query,
    opts: DeleteOptions,
    rendering: Rendering,
) -> Result<Response, ApiError> {
    if !r.verbs.contains(&"deletecollection") {
        return Err(ApiError::method_not_allowed());
    }
    let filter = Filter::from_query(r, query)?;
    let prefix = match ns {
        Some(ns) if r.namespaced() => r.namespace_prefix(ns),
        _ => r.key_prefix(),
    };
    let listed = srv.store.list(&prefix, ListOptions::default()).await?;
    let mut deleted = Vec::new();
    for kv in listed.items {
        let Ok(obj) = cache::decode(&kv.value, kv.mod_revision) else {
            continue;
        };
        if !filter.matches(&obj) {
            continue;
        }
        let obj_ns = objects::meta_str(&obj, "namespace").map(String::from);
        let name = objects::name(&obj).to_string();
        match delete_one(srv, r, obj_ns.as_deref(), &name, &opts).await {
            Ok((o, _)) => deleted.push(o),
            Err(e) if e.code == 404 => {}
            // the system PriorityClasses stay
            Err(e) if e.code == 403 && r.kind == "PriorityClass" => {}
            Err(e) => return Err(e),
        }
    }
    let items = deleted.into_iter().map(Arc::new).collect();
    Ok(render::list_response(
        r,
        items,
        listed.revision,
        None,
        rendering,
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let tok = encode_continue(42, "/registry/core/pods/default/web-1");
        let (rev, key) = decode_continue(&tok).unwrap();
        assert_eq!(rev, 42);
        assert_eq!(key, "/registry/core/pods/default/web-1");
        assert!(decode_continue("!!!").is_err());
    }

    #[test]
    fn base64_round_trips_every_length() {
        for n in 0..20u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(base64_decode(&base64_encode(&data)).unwrap(), data);
        }
    }
}
