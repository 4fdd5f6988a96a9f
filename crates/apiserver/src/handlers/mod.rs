//! Resource handlers: get, list, create, update, patch, delete and deletecollection with
//! Kubernetes' semantics, and the status, scale, binding, eviction and finalize subresources.
//! This module dispatches and holds what every verb shares (bodies, reads); each verb lives in
//! its own module.

mod common;
mod create;
mod delete;
mod list;
mod pods;
mod scale;
mod update;

use auth::UserInfo;
pub(crate) use common::cached_or_stored;
pub use common::{add_warnings, get_object, UpdateKind};
use common::{read_body, read_json};
use create::create;
pub use delete::DeleteOptions;
use delete::{delete, delete_collection};
use list::list;
use pods::{bind, evict};
use scale::{patch_scale, scale_of, update_scale};
pub use update::{guaranteed_update, Updated};
use update::{patch_object, update, PatchRequest};

use std::sync::Arc;

use api::Subresource;
use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, Method, StatusCode};

use crate::error::ApiError;
use crate::render;
use crate::request::{self, Query, ResourcePath};
use crate::server::ApiServer;
use crate::watch;

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
#[allow(clippy::too_many_arguments)]
pub async fn handle(
    srv: &Arc<ApiServer>,
    user: &UserInfo,
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
            create(srv, user, r, ns, value, query, rendering).await
        }
        (Method::POST, Some(name), Some(Subresource::Binding)) => {
            let value = read_json(headers, body).await?;
            bind(srv, user, r, ns, name, value, query).await
        }
        (Method::POST, Some(name), Some(Subresource::Eviction)) => {
            let value = read_json(headers, body).await?;
            evict(srv, user, r, ns, name, value).await
        }
        (Method::PUT, Some(name), sub) => {
            let value = read_json(headers, body).await?;
            let kind = update_kind(&rp, sub)?;
            if kind == UpdateKind::Scale {
                return update_scale(srv, user, r, ns, name, value, query.dry_run()?, rendering)
                    .await;
            }
            update(srv, user, r, ns, name, value, kind, query, rendering).await
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
            if kind == UpdateKind::Scale {
                return patch_scale(srv, user, r, ns, name, patch, query.dry_run()?).await;
            }
            patch_object(srv, user, r, ns, name, patch, query).await
        }
        (Method::DELETE, Some(name), None) => {
            let bytes = read_body(body).await?;
            let opts = DeleteOptions::parse(query, &bytes)?;
            delete(srv, user, r, ns, name, opts, rendering).await
        }
        (Method::DELETE, None, None) => {
            let bytes = read_body(body).await?;
            let opts = DeleteOptions::parse(query, &bytes)?;
            delete_collection(srv, user, r, ns, query, opts, rendering).await
        }
        _ => Err(ApiError::method_not_allowed()),
    }
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
