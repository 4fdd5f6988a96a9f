//! The wire form of objects as upstream's apiserver writes them: Go struct field order (not
//! k8s-openapi's alphabetical order), Go's zero values for fields without `omitempty` and for
//! non-pointer structs (a Service's `status: {loadBalancer: {}}`), `omitempty` zero values left
//! out, map keys sorted, Go's HTML-safe escaping and json.Encoder's trailing newline.
//!
//! Mirrors what a decode into k8s.io/api's Go types and an encode with
//! k8s.io/apimachinery/pkg/runtime/serializer/json does to an object.

mod canonical;
mod encode;
mod shape;

use serde_json::{Map, Value};

use crate::registry::ResourceInfo;

pub use encode::{to_body, write_value, GoFormatter};
pub use shape::{Shape, GO_TYPES};

/// The Go type of objects of `group`/`version`/`kind`, as the table names it
/// (`core/v1.Pod`, `apps/v1.Deployment`, `rbac/v1.Role`).
pub fn go_type_name(group: &str, version: &str, kind: &str) -> String {
    let package = if group.is_empty() {
        "core"
    } else {
        group.split('.').next().unwrap_or(group)
    };
    format!("{package}/{version}.{kind}")
}

/// The Go type of a resource's objects.
pub fn go_type_of(r: &ResourceInfo) -> String {
    go_type_name(r.group, r.version, r.kind)
}

/// Rewrites an object of `r` in its wire form; objects of kinds the table does not know are
/// left as they are.
pub fn canonicalize(r: &ResourceInfo, value: &mut Value) {
    canonicalize_as(&go_type_of(r), value);
}

/// Rewrites `value` as the encoding of the Go struct `type_name` (`meta/v1.Status`); false
/// (and nothing changed) when the table does not know the type.
pub fn canonicalize_as(type_name: &str, value: &mut Value) -> bool {
    let types = &*GO_TYPES;
    match types.lookup(type_name) {
        Some(index) => {
            canonical::canonical_struct(types, index, value);
            true
        }
        None => false,
    }
}

/// The encoding of a zero value of struct `type_name`.
pub fn zero_of(type_name: &str) -> Option<Value> {
    let types = &*GO_TYPES;
    types
        .lookup(type_name)
        .map(|i| canonical::zero_struct(types, i))
}

/// Inserts `key` into `map`, an encoding of struct `type_name`, at its Go position (after the
/// fields declared before it); replaces the value in place when the key is there already.
pub fn insert_in_order(type_name: &str, map: &mut Map<String, Value>, key: &str, value: Value) {
    if let Some(slot) = map.get_mut(key) {
        *slot = value;
        return;
    }
    let types = &*GO_TYPES;
    let order: Vec<&str> = types
        .lookup(type_name)
        .map(|i| types.structs[i].iter().map(|f| f.name.as_str()).collect())
        .unwrap_or_default();
    let Some(rank) = order.iter().position(|f| *f == key) else {
        map.insert(key.to_string(), value);
        return;
    };
    let at = map
        .keys()
        .position(|k| order.iter().position(|f| f == k).is_none_or(|r| r > rank))
        .unwrap_or(map.len());
    map.shift_insert(at, key.to_string(), value);
}

/// Sets `metadata.resourceVersion` of an object at its Go position (after `uid`).
pub fn set_resource_version(object: &mut Value, revision: &str) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        insert_in_order(
            "meta/v1.ObjectMeta",
            meta,
            "resourceVersion",
            Value::String(revision.to_string()),
        );
    }
}

#[cfg(test)]
mod tests;
