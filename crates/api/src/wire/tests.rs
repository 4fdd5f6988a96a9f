//! The wire form against upstream's own serializations: the fully populated round-trip
//! fixtures of k8s.io/api (testdata/HEAD at v0.33, copied into `testdata/`) must come back byte
//! for byte from any field order, and zero values must appear as Go writes them.

use serde_json::{json, Value};

use super::*;

/// The same value with every object's keys sorted (k8s-openapi's order).
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for k in keys {
                out.insert(k.clone(), sorted(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn fixture_type(file: &str) -> String {
    let stem = file.trim_end_matches(".json");
    let parts: Vec<&str> = stem.split('.').collect();
    let kind = parts[parts.len() - 1];
    let version = parts[parts.len() - 2];
    let group = parts[..parts.len() - 2].join(".");
    let group = if group == "core" {
        String::new()
    } else {
        group
    };
    match kind {
        // meta/v1 types the fixtures file under core/v1
        "Status" | "WatchEvent" => format!("meta/v1.{kind}"),
        _ => go_type_name(&group, version, kind),
    }
}

#[test]
fn upstream_fixtures_come_back_byte_for_byte() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/wire/testdata");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let upstream: Value = serde_json::from_str(&text).unwrap();
        let mut shuffled = sorted(&upstream);
        let ty = fixture_type(&file);
        assert!(canonicalize_as(&ty, &mut shuffled), "{ty} is in the table");
        let mut got = Vec::new();
        write_value(&mut got, &shuffled);
        assert_eq!(
            String::from_utf8(got).unwrap(),
            text.trim_end(),
            "{file} in Go order"
        );
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} fixtures");
}

#[test]
fn a_service_without_status_gets_an_empty_load_balancer() {
    let mut svc = json!({"spec": {"ports": [{"port": 80}]}, "metadata": {"name": "web"},
        "apiVersion": "v1", "kind": "Service"});
    canonicalize_as("core/v1.Service", &mut svc);
    let mut out = Vec::new();
    write_value(&mut out, &svc);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"web","creationTimestamp":null},"spec":{"ports":[{"port":80,"targetPort":0}]},"status":{"loadBalancer":{}}}"#
    );
}

#[test]
fn omitempty_zero_values_go_and_pointers_stay() {
    let mut d = json!({"kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": "d", "labels": {}, "annotations": {"b": "2", "a": "1"}, "generation": 0},
        "spec": {"replicas": 0, "paused": false, "selector": {"matchLabels": {"app": "x"},
            "matchExpressions": []}, "template": {"spec": {"containers": [{"name": "c",
            "image": "", "resources": null}]}}},
        "status": {"replicas": 0, "conditions": null}});
    canonicalize_as("apps/v1.Deployment", &mut d);
    assert_eq!(
        d,
        json!({"kind": "Deployment", "apiVersion": "apps/v1",
            "metadata": {"name": "d", "creationTimestamp": null, "annotations": {"a": "1", "b": "2"}},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "x"}},
                "template": {"metadata": {"creationTimestamp": null},
                    "spec": {"containers": [{"name": "c", "resources": {}}]}},
                "strategy": {}},
            "status": {}})
    );
    // annotations come out sorted
    let keys: Vec<&String> = d["metadata"]["annotations"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys, ["a", "b"]);
}

#[test]
fn status_fields_follow_go_order() {
    let mut s = json!({"code": 409, "details": {"kind": "pods", "name": "web"}, "reason": "AlreadyExists",
        "message": "pods \"web\" already exists", "status": "Failure", "metadata": {},
        "apiVersion": "v1", "kind": "Status"});
    canonicalize_as("meta/v1.Status", &mut s);
    assert_eq!(
        String::from_utf8(to_body(&s)).unwrap(),
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"pods \\\"web\\\" already exists\",\"reason\":\"AlreadyExists\",\"details\":{\"name\":\"web\",\"kind\":\"pods\"},\"code\":409}\n"
    );
}

#[test]
fn strings_are_escaped_as_go_does() {
    let v = json!({"m": "a<b>&c\u{2028}\u{2029}\"\\\n\u{1}é"});
    let mut out = Vec::new();
    write_value(&mut out, &v);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "{\"m\":\"a\\u003cb\\u003e\\u0026c\\u2028\\u2029\\\"\\\\\\n\\u0001é\"}"
    );
}

#[test]
fn resource_version_goes_after_uid() {
    let mut o = json!({"metadata": {"name": "a", "namespace": "n", "uid": "u", "generation": 2,
        "creationTimestamp": "2024-01-01T00:00:00Z"}});
    set_resource_version(&mut o, "42");
    let keys: Vec<&String> = o["metadata"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp"
        ]
    );
    set_resource_version(&mut o, "43");
    assert_eq!(o["metadata"]["resourceVersion"], "43");
    let mut bare = json!({"metadata": {"creationTimestamp": null}});
    set_resource_version(&mut bare, "7");
    let keys: Vec<&String> = bare["metadata"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["resourceVersion", "creationTimestamp"]);
}

#[test]
fn unknown_types_and_fields_are_left_alone() {
    let mut v = json!({"z": 1, "a": 2});
    assert!(!canonicalize_as("nothing/v1.Thing", &mut v));
    assert_eq!(v, json!({"z": 1, "a": 2}));
    let mut cm = json!({"zzz": 1, "data": {"b": "1", "a": "2"}, "kind": "ConfigMap"});
    canonicalize_as("core/v1.ConfigMap", &mut cm);
    let keys: Vec<&String> = cm.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["kind", "metadata", "data", "zzz"]);
}

#[test]
fn every_served_resource_has_its_go_type() {
    for r in crate::RESOURCES {
        assert!(
            zero_of(&go_type_of(r)).is_some(),
            "{} ({}) has no Go type",
            r.kind,
            go_type_of(r)
        );
    }
}

#[test]
fn a_pod_bookmark_looks_like_upstreams() {
    let mut bm = json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": "12"}});
    canonicalize_as("core/v1.Pod", &mut bm);
    let mut out = Vec::new();
    write_value(&mut out, &bm);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"12","creationTimestamp":null},"spec":{"containers":null},"status":{}}"#
    );
}
