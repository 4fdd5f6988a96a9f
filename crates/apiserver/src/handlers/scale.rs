//! The scale subresource: autoscaling/v1 Scale views of workloads' replicas.

use auth::UserInfo;
use std::sync::Arc;

use api::ResourceInfo;
use axum::response::Response;
use http::StatusCode;
use serde_json::{json, Value};

use super::common::{patch_type, UpdateKind};
use super::update::{body_resource_version, guaranteed_update, PatchRequest};
use crate::error::ApiError;
use crate::request::Rendering;
use crate::server::ApiServer;
use crate::{render, strategy};

pub(super) fn scale_of(r: &ResourceInfo, obj: &Value) -> Result<Value, ApiError> {
    let meta = obj.get("metadata").cloned().unwrap_or(json!({}));
    let selector = strategy::of(r).scale_selector(obj);
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

pub(super) fn scale_into(
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

#[allow(clippy::too_many_arguments)]
pub(super) async fn update_scale(
    srv: &Arc<ApiServer>,
    user: &UserInfo,
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
    let updated = guaranteed_update(srv, user, r, ns, name, UpdateKind::Scale, dry_run, |old| {
        scale_into(r, old, &scale)
    })
    .await?;
    Ok(render::object_response(
        r,
        scale_of(r, &updated.object)?,
        rendering,
        StatusCode::OK,
        updated.warnings,
    ))
}

/// PATCH of the scale subresource: the patch applies to the Scale view, and only its
/// spec.replicas reaches the object.
pub(super) async fn patch_scale(
    srv: &Arc<ApiServer>,
    user: &UserInfo,
    r: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    req: PatchRequest<'_>,
    dry_run: bool,
) -> Result<Response, ApiError> {
    let patch_type = patch_type(req.content_type, req.body)?;
    let updated = guaranteed_update(srv, user, r, ns, name, UpdateKind::Scale, dry_run, |old| {
        let scale = scale_of(r, old)?;
        let patched = api::patch::apply_patch(r, &scale, patch_type, req.body)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        scale_into(r, old, &patched)
    })
    .await?;
    Ok(render::object_response(
        r,
        scale_of(r, &updated.object)?,
        req.rendering,
        StatusCode::OK,
        updated.warnings,
    ))
}
