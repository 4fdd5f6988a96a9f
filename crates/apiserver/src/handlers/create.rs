//! CREATE: type checks, unknown-field pruning, metadata the server owns, namespace lifecycle,
//! defaulting, the kind's strategy, admission and validation (upstream's registry Store.Create).

use auth::UserInfo;
use std::sync::Arc;

use api::ResourceInfo;
use axum::response::Response;
use http::StatusCode;
use serde_json::{json, Value};
use store::StoreError;

use super::common::namespace_exists;
use crate::admission::{self, Allocations, Operation, Plugin};
use crate::error::ApiError;
use crate::request::{Query, Rendering};
use crate::server::ApiServer;
use crate::{cache, objects, render, strategy};

/// Checks apiVersion and kind of a body against the path and fills them when missing.
pub(super) fn check_type(
    r: &ResourceInfo,
    obj: &mut Value,
    expected_kind: &str,
) -> Result<(), ApiError> {
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
pub(super) fn prune(
    r: &ResourceInfo,
    obj: Value,
    query: &Query,
) -> Result<(Value, Vec<String>), ApiError> {
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

pub(super) async fn check_namespace_for_create(
    srv: &ApiServer,
    r: &ResourceInfo,
    ns: &str,
    name: &str,
) -> Result<(), ApiError> {
    match namespace_exists(srv, ns).await? {
        None => Err(ApiError::namespace_not_found(ns)),
        Some(nsobj) if objects::is_deleting(&nsobj) => {
            Err(ApiError::namespace_terminating(r, name, ns))
        }
        Some(_) => Ok(()),
    }
}

pub(super) async fn create(
    srv: &Arc<ApiServer>,
    user: &UserInfo,
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
    let (mut obj, mut warnings) = prune(r, obj, query)?;
    // Admission names a generateName object by its prefix until the registry names it.
    let request_name = objects::meta_str(&obj, "name")
        .filter(|n| !n.is_empty())
        .or_else(|| objects::meta_str(&obj, "generateName"))
        .unwrap_or("")
        .to_string();
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
        if strategy::of(r).tracks_generation() {
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
    let plugins = &srv.config.admission;
    if let Some(ns) = &ns {
        if plugins.enabled(Plugin::NamespaceLifecycle) {
            check_namespace_for_create(srv, r, ns, &name).await?;
        }
    }
    strategy::of(r).prepare_for_create(r, &mut obj);
    api::defaults::apply(r, &mut obj);
    if r.kind == "Pod" && plugins.enabled(Plugin::DefaultTolerationSeconds) {
        api::defaults::default_tolerations(
            &mut obj,
            srv.config.default_not_ready_toleration_seconds,
            srv.config.default_unreachable_toleration_seconds,
        );
    }
    let mut req = admission::Request {
        user,
        operation: Operation::Create,
        resource: r,
        subresource: "",
        namespace: ns.as_deref().unwrap_or(""),
        name: &request_name,
        dry_run,
        old: None,
    };
    admission::mutate(srv, &req, &mut obj).await?;
    let errors = api::validation::validate_create(r, &obj);
    if !errors.is_empty() {
        return Err(ApiError::invalid(r, &name, &errors));
    }
    req.name = &name;
    warnings.extend(admission::validate(srv, &req, &obj).await?);
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
