//! DELETE and DELETECOLLECTION: preconditions, propagation finalizers, graceful pod deletion,
//! namespace termination (upstream's Store.Delete).

use auth::UserInfo;
use std::sync::Arc;

use api::ResourceInfo;
use axum::response::Response;
use http::StatusCode;
use serde_json::{json, Value};
use store::{ListOptions, StoreError};

use super::common::{json_response, read_stored, UPDATE_RETRIES};
use super::update::namespace_has_spec_finalizers;
use crate::admission;
use crate::error::ApiError;
use crate::filter::Filter;
use crate::request::{Query, Rendering};
use crate::server::ApiServer;
use crate::{cache, objects, render};

/// DeleteOptions from the body and the query.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub grace_period: Option<i64>,
    pub propagation: Option<String>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
    /// `orphanDependents: false` was asked for explicitly (the only case upstream answers 202
    /// for an object that is not gone yet).
    pub no_orphans_asked: bool,
}

impl DeleteOptions {
    pub(super) fn parse(query: &Query, body: &[u8]) -> Result<DeleteOptions, ApiError> {
        let mut opts = DeleteOptions {
            grace_period: query.int("gracePeriodSeconds")?,
            propagation: query.get("propagationPolicy").map(String::from),
            dry_run: query.dry_run()?,
            ..Default::default()
        };
        if query.flag("orphanDependents") {
            opts.propagation = Some("Orphan".into());
        }
        opts.no_orphans_asked = matches!(
            query.get("orphanDependents"),
            Some("0" | "f" | "F" | "false" | "FALSE" | "False")
        );
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
            match v.get("orphanDependents").and_then(Value::as_bool) {
                Some(true) => opts.propagation = Some("Orphan".into()),
                Some(false) => opts.no_orphans_asked = true,
                None => {}
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
pub(super) fn delete_status(r: &ResourceInfo, obj: &Value) -> Value {
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
pub(super) async fn delete_one(
    srv: &Arc<ApiServer>,
    user: &UserInfo,
    r: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    opts: &DeleteOptions,
) -> Result<(Value, bool), ApiError> {
    let key = r.key(ns, name);
    for _ in 0..UPDATE_RETRIES {
        let (old, mod_revision) = read_stored(srv, r, &key, name).await?;
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
            let actual = mod_revision.to_string();
            if *rv != actual {
                return Err(ApiError::conflict(
                    r,
                    name,
                    &format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in meta: {actual}"),
                ));
            }
        }
        let req = admission::Request {
            user,
            operation: admission::Operation::Delete,
            resource: r,
            subresource: "",
            namespace: ns.unwrap_or(""),
            name,
            dry_run: opts.dry_run,
            old: Some(&old),
        };
        admission::admit_delete(srv, &req).await?;
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
                .update(&key, objects::to_stored_bytes(r, &mut new), mod_revision)
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
        match srv.store.delete(&key, Some(mod_revision)).await {
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

pub(super) async fn delete(
    srv: &Arc<ApiServer>,
    user: &UserInfo,
    r: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    opts: DeleteOptions,
    rendering: Rendering,
) -> Result<Response, ApiError> {
    let (obj, gone) = delete_one(srv, user, r, ns, name, &opts).await?;
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
    // upstream's DeleteResource: 200, or 202 when orphanDependents=false was asked for.
    let code = if opts.no_orphans_asked {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok(render::object_response(r, obj, rendering, code, vec![]))
}

pub(super) async fn delete_collection(
    srv: &Arc<ApiServer>,
    user: &UserInfo,
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
        match delete_one(srv, user, r, obj_ns.as_deref(), &name, &opts).await {
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
