//! UPDATE and PATCH around `guaranteed_update`: compare-and-swap with retries, what each
//! subresource may change, generation, defaulting and validation (upstream's Store.Update).

use auth::UserInfo;
use std::sync::Arc;

use api::{ResourceInfo, Subresource};
use axum::response::Response;
use http::StatusCode;
use serde_json::{json, Value};
use store::StoreError;

use super::common::{patch_type, read_stored, UpdateKind, UPDATE_RETRIES};
use super::create::{check_type, prune};
use crate::admission::{self, Allocations};
use crate::cache::{self, object_revision};
use crate::error::ApiError;
use crate::request::{Query, Rendering};
use crate::server::ApiServer;
use crate::{objects, render, strategy};

/// The outcome of a guaranteed update.
pub struct Updated {
    pub object: Value,
    /// False when the update changed nothing (nothing was written).
    pub changed: bool,
    /// True when removing the last finalizer deleted the object.
    pub deleted: bool,
    /// Admission's warnings for the client.
    pub warnings: Vec<String>,
}

/// Reads, mutates and writes an object with compare-and-swap, retrying lost races unless the
/// caller gave a resourceVersion precondition (the store's GuaranteedUpdate).
#[allow(clippy::too_many_arguments)]
pub async fn guaranteed_update<F>(
    srv: &ApiServer,
    user: &UserInfo,
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
        let (old, mod_revision) = read_stored(srv, r, &key, name).await?;
        let (candidate, precondition) = mutate(&old)?;
        if let Some(rv) = precondition {
            if rv != mod_revision {
                return Err(ApiError::modified(r, name));
            }
        }
        let mut new = finish_update(srv, r, &old, candidate, kind)?;
        let (operation, subresource) = kind.admission();
        let req = admission::Request {
            user,
            operation,
            resource: r,
            subresource,
            namespace: ns.unwrap_or(""),
            name,
            dry_run,
            old: Some(&old),
        };
        admission::mutate(srv, &req, &mut new).await?;
        let warnings = admission::validate(srv, &req, &new).await?;
        let mut allocations = Allocations::default();
        admission::on_update(r, &old, &mut new, &srv.alloc, &mut allocations)?;
        if objects::same_content(&new, &old) {
            allocations.rollback(&srv.alloc);
            return Ok(Updated {
                object: old,
                changed: false,
                deleted: false,
                warnings,
            });
        }
        if dry_run {
            allocations.rollback(&srv.alloc);
            api::wire::canonicalize(r, &mut new);
            return Ok(Updated {
                object: new,
                changed: true,
                deleted: false,
                warnings,
            });
        }
        // Removing the last finalizer of an object being deleted deletes it.
        if objects::is_deleting(&new)
            && objects::finalizers(&new).is_empty()
            && !(r.kind == "Namespace" && namespace_has_spec_finalizers(&new))
            && !(r.kind == "Pod" && pod_waits_for_kubelet(&new))
        {
            match srv.store.delete(&key, Some(mod_revision)).await {
                Ok(deleted) => {
                    allocations.rollback(&srv.alloc);
                    admission::on_delete(r, &new, &srv.alloc);
                    cache::set_resource_version(&mut new, deleted.mod_revision);
                    return Ok(Updated {
                        object: new,
                        changed: true,
                        deleted: true,
                        warnings,
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
            .update(&key, objects::to_stored_bytes(r, &mut new), mod_revision)
            .await
        {
            Ok(rev) => {
                allocations.commit(&srv.alloc);
                cache::set_resource_version(&mut new, rev);
                return Ok(Updated {
                    object: new,
                    changed: true,
                    deleted: false,
                    warnings,
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

pub(super) fn precondition_free(p: Option<i64>) -> bool {
    p.is_none()
}

pub(super) fn namespace_has_spec_finalizers(ns: &Value) -> bool {
    ns.pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
}

/// A bound pod being deleted gracefully stays until its kubelet deletes it with grace 0.
pub(super) fn pod_waits_for_kubelet(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
        .is_some_and(|g| g > 0)
}

/// Sets `field` to a copy of `value`, or removes it when there is none.
pub(super) fn set_or_remove(
    map: &mut serde_json::Map<String, Value>,
    field: &str,
    value: Option<&Value>,
) {
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
pub(super) fn finish_update(
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
        UpdateKind::EphemeralContainers => {
            // upstream's dropNonEphemeralContainerUpdates
            let mut new = old.clone();
            let list = candidate
                .pointer("/spec/ephemeralContainers")
                .cloned()
                .unwrap_or(Value::Null);
            if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                set_or_remove(
                    spec,
                    "ephemeralContainers",
                    Some(&list).filter(|l| !l.is_null()),
                );
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
    if r.kind == "Pod"
        && srv
            .config
            .admission
            .enabled(admission::Plugin::DefaultTolerationSeconds)
    {
        api::defaults::default_tolerations(
            &mut new,
            srv.config.default_not_ready_toleration_seconds,
            srv.config.default_unreachable_toleration_seconds,
        );
    }
    // Decoded and encoded as upstream does it, so that comparisons with the stored object see
    // the same zero values.
    api::wire::canonicalize(r, &mut new);
    if strategy::of(r).tracks_generation() && new.get("spec") != old.get("spec") {
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            + 1;
        objects::meta_mut(&mut new).insert("generation".into(), json!(generation));
    }
    let errors = match kind {
        UpdateKind::System => Vec::new(),
        UpdateKind::EphemeralContainers => {
            api::validation::validate_ephemeral_containers_update(r, &new, old)
        }
        _ => api::validation::validate_update(r, &new, old),
    };
    if !errors.is_empty() {
        return Err(ApiError::invalid(r, &name, &errors));
    }
    Ok(new)
}

pub(super) fn body_resource_version(obj: &Value) -> Result<Option<i64>, ApiError> {
    match objects::meta_str(obj, "resourceVersion") {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!("invalid resourceVersion {v:?} in the object"))
        }),
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn update(
    srv: &Arc<ApiServer>,
    user: &UserInfo,
    r: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    mut obj: Value,
    kind: UpdateKind,
    query: &Query,
    rendering: Rendering,
) -> Result<Response, ApiError> {
    let dry_run = query.dry_run()?;
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
    let (obj, mut warnings) = prune(r, obj, query)?;
    let precondition = body_resource_version(&obj)?;
    let updated = guaranteed_update(srv, user, r, ns, name, kind, dry_run, |_old| {
        Ok((obj.clone(), precondition))
    })
    .await?;
    warnings.extend(updated.warnings);
    Ok(render::object_response(
        r,
        updated.object,
        rendering,
        StatusCode::OK,
        warnings,
    ))
}

/// A PATCH request's body and what it writes.
pub(super) struct PatchRequest<'a> {
    pub(super) content_type: &'a str,
    pub(super) body: &'a [u8],
    pub(super) kind: UpdateKind,
    pub(super) rendering: Rendering,
}

pub(super) async fn patch_object(
    srv: &Arc<ApiServer>,
    user: &UserInfo,
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
    let patch_type = patch_type(content_type, body)?;
    let mut warnings = Vec::new();
    let updated = guaranteed_update(srv, user, r, ns, name, kind, dry_run, |old| {
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
    warnings.extend(updated.warnings);
    Ok(render::object_response(
        r,
        updated.object,
        rendering,
        StatusCode::OK,
        warnings,
    ))
}
