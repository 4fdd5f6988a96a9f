//! Small helpers over objects in their JSON form: metadata fields, timestamps, generated names.

use api::ResourceInfo;
use rand::Rng;
use serde_json::{Map, Value};

/// Now as Kubernetes writes `metav1.Time` (RFC 3339, seconds, UTC).
pub fn now_rfc3339() -> String {
    timestamp_after(0)
}

/// Now plus `secs` seconds in RFC 3339.
pub fn timestamp_after(secs: i64) -> String {
    let t = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(secs);
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A name for `generateName`: the prefix plus five characters from Kubernetes' alphabet.
pub fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    // Kubernetes cuts the prefix so that the result is at most 63 characters.
    let max_prefix = 63 - 5;
    let prefix = if prefix.len() > max_prefix {
        &prefix[..max_prefix]
    } else {
        prefix
    };
    format!("{prefix}{suffix}")
}

/// `metadata` as a mutable map, created if missing.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = Value::Object(Map::new());
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata was just made an object")
}

/// A string field of `metadata`.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// `metadata.name` (empty when absent).
pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or("")
}

/// `metadata.finalizers`.
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Adds a finalizer if missing.
pub fn add_finalizer(obj: &mut Value, finalizer: &str) {
    let meta = meta_mut(obj);
    let list = meta
        .entry("finalizers")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    let arr = list.as_array_mut().expect("finalizers is an array");
    if !arr.iter().any(|f| f.as_str() == Some(finalizer)) {
        arr.push(Value::String(finalizer.to_string()));
    }
}

/// True when the object is being deleted.
pub fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// The labels of an object as a sorted map.
pub fn labels(obj: &Value) -> std::collections::BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Puts the object of `r` in its wire form (upstream's field order and zero values, see
/// [`api::wire`]) and serializes it for the store, without `metadata.resourceVersion`.
pub fn to_stored_bytes(r: &ResourceInfo, obj: &mut Value) -> Vec<u8> {
    api::wire::canonicalize(r, obj);
    let mut copy = obj.clone();
    if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.shift_remove("resourceVersion");
    }
    serde_json::to_vec(&copy).unwrap_or_default()
}

/// Two objects are the same apart from their resourceVersion.
pub fn same_content(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut c = v.clone();
        if let Some(meta) = c.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
        }
        c
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn generated_names_use_the_prefix_and_five_characters() {
        let n = generate_name("web-");
        assert_eq!(n.len(), 9);
        assert!(n.starts_with("web-"));
        let long = generate_name(&"a".repeat(80));
        assert_eq!(long.len(), 63);
    }

    #[test]
    fn finalizers_are_added_once() {
        let mut o = json!({"metadata": {"name": "x"}});
        add_finalizer(&mut o, "orphan");
        add_finalizer(&mut o, "orphan");
        assert_eq!(finalizers(&o), vec!["orphan".to_string()]);
    }

    #[test]
    fn timestamps_are_rfc3339_seconds() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20);
        assert!(t.ends_with('Z'));
    }
}
