//! Response rendering: objects, lists, Tables (for `kubectl get`) and PartialObjectMetadata, as
//! the client's Accept header asks.

use std::sync::Arc;

use api::ResourceInfo;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{json, Value};

use crate::handlers::add_warnings;
use crate::request::Rendering;

pub use api::table::IncludeObject;

fn respond(
    code: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
    warnings: Vec<String>,
) -> Response {
    let mut resp = (code, [(http::header::CONTENT_TYPE, content_type)], body).into_response();
    add_warnings(&mut resp, warnings);
    resp
}

/// The PartialObjectMetadata of an object.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    })
}

/// A Table of the given objects, with the columns `kubectl get` shows for their kind.
pub fn table(
    r: &ResourceInfo,
    objects: &[Value],
    include: IncludeObject,
    list_meta: Value,
) -> Value {
    api::table::to_table(r, objects, include, list_meta)
}

/// One object in the requested rendering.
pub fn object_response(
    r: &ResourceInfo,
    obj: Value,
    rendering: Rendering,
    code: StatusCode,
    warnings: Vec<String>,
) -> Response {
    let v = match rendering {
        Rendering::Object => obj,
        Rendering::Metadata => partial_metadata(&obj),
        Rendering::Table(include) => table(r, &[obj], include, json!({})),
    };
    respond(
        code,
        "application/json",
        serde_json::to_vec(&v).unwrap_or_default(),
        warnings,
    )
}

/// A list in the requested rendering. Items are written without copying them.
pub fn list_response(
    r: &ResourceInfo,
    items: Vec<Arc<Value>>,
    revision: i64,
    next: Option<String>,
    rendering: Rendering,
) -> Response {
    let mut meta = json!({"resourceVersion": revision.to_string()});
    if let Some(c) = next {
        meta["continue"] = json!(c);
    }
    match rendering {
        Rendering::Object => {
            let mut out = Vec::with_capacity(64 + items.len() * 1024);
            out.extend_from_slice(b"{\"kind\":");
            out.extend_from_slice(json!(r.list_kind()).to_string().as_bytes());
            out.extend_from_slice(b",\"apiVersion\":");
            out.extend_from_slice(json!(r.api_version()).to_string().as_bytes());
            out.extend_from_slice(b",\"metadata\":");
            out.extend_from_slice(meta.to_string().as_bytes());
            out.extend_from_slice(b",\"items\":[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let _ = serde_json::to_writer(&mut out, item.as_ref());
            }
            out.extend_from_slice(b"]}");
            respond(StatusCode::OK, "application/json", out, vec![])
        }
        Rendering::Metadata => {
            let list = json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": meta,
                "items": items.iter().map(|o| partial_metadata(o)).collect::<Vec<_>>(),
            });
            respond(
                StatusCode::OK,
                "application/json",
                serde_json::to_vec(&list).unwrap_or_default(),
                vec![],
            )
        }
        Rendering::Table(include) => {
            let objs: Vec<Value> = items.iter().map(|o| (**o).clone()).collect();
            let t = table(r, &objs, include, meta);
            respond(
                StatusCode::OK,
                "application/json",
                serde_json::to_vec(&t).unwrap_or_default(),
                vec![],
            )
        }
    }
}
