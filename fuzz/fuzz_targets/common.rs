//! What the fuzz targets share: the apiserver's create-path type check (private there).

use serde_json::{json, Value};

/// The apiserver's check_type (private there): object body, apiVersion and kind filled in or
/// matching, metadata an object.
pub fn check_type(r: &api::ResourceInfo, obj: &mut Value) -> bool {
    let Some(map) = obj.as_object_mut() else {
        return false;
    };
    let expected_av = r.api_version();
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), json!(expected_av));
        }
        Some(av) if av == expected_av => {}
        Some(_) => return false,
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), json!(r.kind));
        }
        Some(k) if k == r.kind => {}
        Some(_) => return false,
    }
    map.get("metadata").is_none_or(Value::is_object)
}
