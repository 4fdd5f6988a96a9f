//! Response rendering: objects, lists, Tables (for `kubectl get`) and PartialObjectMetadata, as
//! the client's Accept header asks, written as upstream writes them (Go field order, Go's
//! escaping, a trailing newline: [`api::wire`]).

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
    let mut v = json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    });
    api::wire::canonicalize_as("meta/v1.PartialObjectMetadata", &mut v);
    v
}

/// A Table of the given objects, with the columns `kubectl get` shows for their kind.
pub fn table(
    r: &ResourceInfo,
    objects: &[Value],
    include: IncludeObject,
    list_meta: Value,
) -> Value {
    let mut t = api::table::to_table(r, objects, include, list_meta);
    api::wire::canonicalize_as("meta/v1.Table", &mut t);
    t
}

/// A JSON response body as upstream writes one.
pub fn body(v: &Value) -> Vec<u8> {
    api::wire::to_body(v)
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
    respond(code, "application/json", body(&v), warnings)
}

/// A list in the requested rendering. Items are written without copying them.
pub fn list_response(
    r: &ResourceInfo,
    items: Vec<Arc<Value>>,
    revision: i64,
    next: Option<String>,
    rendering: Rendering,
) -> Response {
    // Lists that are not read from the store (componentstatuses) have no version.
    let mut meta = if revision > 0 {
        json!({"resourceVersion": revision.to_string()})
    } else {
        json!({})
    };
    if let Some(c) = next {
        meta["continue"] = json!(c);
    }
    match rendering {
        Rendering::Object => {
            let mut out = Vec::with_capacity(64 + items.len() * 1024);
            out.extend_from_slice(b"{\"kind\":");
            api::wire::write_value(&mut out, &json!(r.list_kind()));
            out.extend_from_slice(b",\"apiVersion\":");
            api::wire::write_value(&mut out, &json!(r.api_version()));
            out.extend_from_slice(b",\"metadata\":");
            api::wire::write_value(&mut out, &meta);
            out.extend_from_slice(b",\"items\":[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                api::wire::write_value(&mut out, item.as_ref());
            }
            out.extend_from_slice(b"]}\n");
            respond(StatusCode::OK, "application/json", out, vec![])
        }
        Rendering::Metadata => {
            let list = json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": meta,
                "items": items.iter().map(|o| partial_metadata(o)).collect::<Vec<_>>(),
            });
            respond(StatusCode::OK, "application/json", body(&list), vec![])
        }
        Rendering::Table(include) => {
            let objs: Vec<Value> = items.iter().map(|o| (**o).clone()).collect();
            let t = table(r, &objs, include, meta);
            respond(StatusCode::OK, "application/json", body(&t), vec![])
        }
    }
}
