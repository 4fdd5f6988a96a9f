//! Pod subresources that write: binding (the scheduler's) and eviction.

use auth::UserInfo;
use std::sync::Arc;

use api::ResourceInfo;
use axum::response::Response;
use http::StatusCode;
use serde_json::{json, Value};

use super::common::{json_response, UpdateKind};
use super::delete::{delete, DeleteOptions};
use super::update::guaranteed_update;
use crate::admission;
use crate::error::ApiError;
use crate::objects;
use crate::request::{Query, Rendering};
use crate::server::ApiServer;

pub(super) async fn bind(
    srv: &Arc<ApiServer>,
    user: &UserInfo,
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
    guaranteed_update(srv, user, r, ns, name, UpdateKind::System, dry_run, |old| {
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

pub(super) async fn evict(
    srv: &Arc<ApiServer>,
    user: &UserInfo,
    r: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    mut eviction: Value,
) -> Result<Response, ApiError> {
    let req = admission::Request {
        user,
        operation: admission::Operation::Create,
        resource: r,
        subresource: "eviction",
        namespace: ns.unwrap_or(""),
        name,
        dry_run: false,
        old: None,
    };
    admission::mutate(srv, &req, &mut eviction).await?;
    admission::validate(srv, &req, &eviction).await?;
    let opts_value = eviction.get("deleteOptions").cloned().unwrap_or(json!({}));
    let bytes = serde_json::to_vec(&opts_value).unwrap_or_default();
    let opts = DeleteOptions::parse(&Query::default(), &bytes)?;
    delete(srv, user, r, ns, name, opts, Rendering::Object).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        vec![],
    ))
}
