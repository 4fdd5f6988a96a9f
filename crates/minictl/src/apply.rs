//! The three-way patch of kubectl's client-side apply: changes come from comparing the new
//! manifest with the live object, deletions from comparing it with the last-applied
//! configuration. Lists are sent whole when the manifest's list is not already contained in
//! the live one (item by item), so server defaults never make an unchanged manifest "configured".

use serde_json::{Map, Value};

use crate::output::to_compact_json;

/// The annotation that records what was last applied.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The manifest with the last-applied annotation set to its own encoding (as kubectl stores
/// it: compact JSON with sorted keys and a trailing newline, without the annotation itself).
pub fn with_last_applied(manifest: &Value) -> Value {
    // kubectl removes the annotation but keeps the (possibly empty) annotations map.
    let mut bare = manifest.clone();
    if let Some(meta) = bare.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(a) = annotations.as_object_mut() {
            a.remove(LAST_APPLIED);
        }
    }
    let encoded = format!("{}\n", to_compact_json(&bare));
    let mut out = manifest.clone();
    let meta = out
        .as_object_mut()
        .expect("a manifest is an object")
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let annotations = meta
        .as_object_mut()
        .expect("metadata is an object")
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(a) = annotations.as_object_mut() {
        a.insert(LAST_APPLIED.into(), Value::String(encoded));
    }
    out
}

/// True when every field of `wanted` is present with the same value in `live`.
pub fn contained(wanted: &Value, live: &Value) -> bool {
    match (wanted, live) {
        (Value::Object(w), Value::Object(l)) => w.iter().all(|(k, v)| {
            l.get(k).is_some_and(|lv| contained(v, lv)) || (v.is_null() && !l.contains_key(k))
        }),
        (Value::Array(w), Value::Array(l)) => {
            w.len() == l.len() && w.iter().zip(l).all(|(a, b)| contained(a, b))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

/// The three-way patch from the last-applied configuration (`original`), the new manifest
/// with its annotation (`modified`) and the live object (`current`); `{}` means unchanged.
pub fn three_way_patch(original: Option<&Value>, modified: &Value, current: &Value) -> Value {
    let mut patch = Map::new();
    let (Value::Object(m), Value::Object(c)) = (modified, current) else {
        return modified.clone();
    };
    let empty = Map::new();
    let o = original.and_then(Value::as_object).unwrap_or(&empty);
    for (key, new) in m {
        match c.get(key) {
            Some(live) if contained(new, live) => {}
            Some(live @ Value::Object(_)) if new.is_object() => {
                let nested = three_way_patch(o.get(key), new, live);
                if nested.as_object().is_some_and(|n| !n.is_empty()) {
                    patch.insert(key.clone(), nested);
                }
            }
            _ => {
                patch.insert(key.clone(), new.clone());
            }
        }
    }
    for (key, old) in o {
        if m.contains_key(key) {
            if let (Value::Object(_), Some(Value::Object(_)), Some(Value::Object(_))) =
                (old, m.get(key), c.get(key))
            {
                let deletions = deletions_only(old, &m[key]);
                if let (Some(Value::Object(existing)), Value::Object(more)) =
                    (patch.get_mut(key), &deletions)
                {
                    for (k, v) in more {
                        existing.entry(k.clone()).or_insert(v.clone());
                    }
                } else if deletions.as_object().is_some_and(|d| !d.is_empty()) {
                    patch.insert(key.clone(), deletions);
                }
            }
        } else if c.contains_key(key) {
            patch.insert(key.clone(), Value::Null);
        }
    }
    Value::Object(patch)
}

/// Fields of `original` that `modified` dropped, as nulls (nested maps recursed).
fn deletions_only(original: &Value, modified: &Value) -> Value {
    let mut out = Map::new();
    if let (Value::Object(o), Value::Object(m)) = (original, modified) {
        for (k, v) in o {
            match m.get(k) {
                None => {
                    out.insert(k.clone(), Value::Null);
                }
                Some(mv) if v.is_object() && mv.is_object() => {
                    let nested = deletions_only(v, mv);
                    if nested.as_object().is_some_and(|n| !n.is_empty()) {
                        out.insert(k.clone(), nested);
                    }
                }
                _ => {}
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(replicas: u32, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
               "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "web", "image": image}]}}}})
    }

    fn live_of(applied: &Value) -> Value {
        let mut live = applied.clone();
        live["metadata"]["uid"] = json!("u");
        live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("Always");
        live["status"] = json!({"replicas": 1});
        live
    }

    #[test]
    fn unchanged_manifest_gives_empty_patch() {
        let applied = with_last_applied(&deployment(1, "nginx"));
        let live = live_of(&applied);
        let original = serde_json::from_str::<Value>(
            applied["metadata"]["annotations"][LAST_APPLIED]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(three_way_patch(Some(&original), &applied, &live), json!({}));
    }

    #[test]
    fn changed_fields_and_removed_fields() {
        let first = with_last_applied(&deployment(1, "nginx"));
        let live = live_of(&first);
        let original: Value = serde_json::from_str(
            first["metadata"]["annotations"][LAST_APPLIED]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        let mut next = deployment(3, "nginx:2");
        next["metadata"].as_object_mut().unwrap().remove("labels");
        let next = with_last_applied(&next);
        let patch = three_way_patch(Some(&original), &next, &live);
        assert_eq!(patch["spec"]["replicas"], json!(3));
        assert_eq!(
            patch["spec"]["template"]["spec"]["containers"][0]["image"],
            json!("nginx:2")
        );
        assert_eq!(patch["metadata"]["labels"], Value::Null);
        assert!(patch["metadata"]
            .as_object()
            .unwrap()
            .contains_key("labels"));
        assert!(patch.get("status").is_none());
    }

    #[test]
    fn annotation_is_sorted_compact_json_with_newline() {
        let applied = with_last_applied(
            &json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "a"}}),
        );
        assert_eq!(
            applied["metadata"]["annotations"][LAST_APPLIED],
            json!("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"annotations\":{},\"name\":\"a\"}}\n")
        );
    }
}
