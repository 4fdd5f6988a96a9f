//! Minimal valid pods per level and version and the pod-editing helpers, as upstream's
//! `staging/src/k8s.io/pod-security-admission/test/{fixtures.go,helpers.go,helpers_seccomp.go}`
//! define them, over JSON pods.

#![allow(dead_code)]

pub mod generators;
pub mod restricted_generators;

use serde_json::{json, Map, Value};

/// Sets `value` at the JSON pointer `path`, creating objects on the way; `Value::Null`
/// removes the field (Go's nil pointer).
pub fn set(pod: &mut Value, path: &str, value: Value) {
    let mut cur = pod;
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        if let Value::Array(a) = cur {
            let idx: usize = seg.parse().expect("array index");
            if last {
                a[idx] = value;
                return;
            }
            cur = &mut a[idx];
            continue;
        }
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(m) = cur else {
            unreachable!()
        };
        if last {
            if value.is_null() {
                m.remove(*seg);
            } else {
                m.insert(seg.to_string(), value);
            }
            return;
        }
        cur = m
            .entry(seg.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// A copy of `pod` changed by `f` (upstream's `tweak`).
pub fn tweak(pod: &Value, f: impl FnOnce(&mut Value)) -> Value {
    let mut p = pod.clone();
    f(&mut p);
    p
}

fn containers_mut(pod: &mut Value) -> impl Iterator<Item = &mut Value> {
    let spec = &mut pod["spec"];
    let mut all: Vec<&mut Value> = Vec::new();
    if let Value::Object(m) = spec {
        for (k, v) in m.iter_mut() {
            if k == "containers" || k == "initContainers" {
                if let Value::Array(a) = v {
                    all.extend(a.iter_mut());
                }
            }
        }
    }
    all.into_iter()
}

/// Upstream's `ensureSecurityContext`.
pub fn ensure_security_context(pod: &Value) -> Value {
    let mut p = pod.clone();
    if p["spec"].get("securityContext").is_none_or(Value::is_null) {
        set(&mut p, "/spec/securityContext", json!({}));
    }
    for c in containers_mut(&mut p) {
        if c.get("securityContext").is_none_or(Value::is_null) {
            c["securityContext"] = json!({});
        }
    }
    p
}

fn ensure_in_each(pod: &Value, key: &str, include_pod: bool) -> Value {
    let mut p = ensure_security_context(pod);
    if include_pod
        && p["spec"]["securityContext"]
            .get(key)
            .is_none_or(Value::is_null)
    {
        p["spec"]["securityContext"][key] = json!({});
    }
    for c in containers_mut(&mut p) {
        if c["securityContext"].get(key).is_none_or(Value::is_null) {
            c["securityContext"][key] = json!({});
        }
    }
    p
}

/// Upstream's `ensureSELinuxOptions`.
pub fn ensure_selinux_options(pod: &Value) -> Value {
    ensure_in_each(pod, "seLinuxOptions", true)
}

/// Upstream's `ensureCapabilities`.
pub fn ensure_capabilities(pod: &Value) -> Value {
    ensure_in_each(pod, "capabilities", false)
}

/// Upstream's `ensureAnnotation`.
pub fn ensure_annotations(pod: &Value) -> Value {
    let mut p = pod.clone();
    if p["metadata"].get("annotations").is_none_or(Value::is_null) {
        set(&mut p, "/metadata/annotations", json!({}));
    }
    p
}

/// The name of `spec.<list>[0]`.
pub fn first_name(pod: &Value, list: &str) -> String {
    pod["spec"][list][0]["name"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

pub fn baseline_1_0() -> Value {
    json!({"metadata": {}, "spec": {
        "initContainers": [{"name": "initcontainer1", "image": "registry.k8s.io/pause"}],
        "containers": [{"name": "container1", "image": "registry.k8s.io/pause"}],
    }})
}

fn restricted(minor: u64) -> Value {
    // 1.0+: baseline + runAsNonRoot=true
    let mut p = baseline_1_0();
    set(
        &mut p,
        "/spec/securityContext",
        json!({"runAsNonRoot": true}),
    );
    if minor >= 8 {
        // 1.8+: allowPrivilegeEscalation=false
        for c in ["containers", "initContainers"] {
            set(
                &mut p,
                &format!("/spec/{c}/0/securityContext"),
                json!({"allowPrivilegeEscalation": false}),
            );
        }
    }
    if minor >= 19 {
        // 1.19+: seccompProfile.type=RuntimeDefault
        set(&mut p, "/metadata/annotations", Value::Null);
        set(
            &mut p,
            "/spec/securityContext/seccompProfile",
            json!({"type": "RuntimeDefault"}),
        );
    }
    if minor >= 22 {
        // 1.22+: capabilities.drop=["ALL"]
        for c in ["containers", "initContainers"] {
            set(
                &mut p,
                &format!("/spec/{c}/0/securityContext/capabilities"),
                json!({"drop": ["ALL"]}),
            );
        }
    }
    p
}

fn with_os(pod: Value, os: &str) -> Value {
    tweak(&pod, |p| set(p, "/spec/os", json!({"name": os})))
}

/// Upstream's `GetMinimalValidPod` (OS neutral).
pub fn minimal_valid_pod(restricted_level: bool, minor: u64) -> Value {
    if restricted_level {
        restricted(minor)
    } else {
        baseline_1_0()
    }
}

/// Upstream's `GetMinimalValidLinuxPod` (restricted).
pub fn minimal_valid_linux_pod(minor: u64) -> Value {
    with_os(restricted(minor), "linux")
}

/// Upstream's `GetMinimalValidWindowsPod` (restricted): from v1.25 none of the requirements
/// added since v1.0 apply to Windows pods.
pub fn minimal_valid_windows_pod(minor: u64) -> Value {
    with_os(restricted(if minor >= 25 { 0 } else { minor }), "windows")
}

/// What the apiserver's defaulting does before admission that the fixtures rely on: a volume
/// without a source becomes an `emptyDir`.
pub fn apply_defaults(pod: &mut Value) {
    const SOURCES: &[&str] = &[
        "hostPath",
        "emptyDir",
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "gitRepo",
        "secret",
        "nfs",
        "iscsi",
        "glusterfs",
        "persistentVolumeClaim",
        "rbd",
        "flexVolume",
        "cinder",
        "cephfs",
        "flocker",
        "downwardAPI",
        "fc",
        "azureFile",
        "configMap",
        "vsphereVolume",
        "quobyte",
        "azureDisk",
        "photonPersistentDisk",
        "projected",
        "portworxVolume",
        "scaleIO",
        "storageos",
        "csi",
        "ephemeral",
        "image",
    ];
    if let Some(Value::Array(vols)) = pod.pointer_mut("/spec/volumes") {
        for v in vols.iter_mut() {
            if let Value::Object(m) = v {
                if !SOURCES
                    .iter()
                    .any(|s| m.get(*s).is_some_and(|x| !x.is_null()))
                {
                    m.insert("emptyDir".into(), json!({}));
                }
            }
        }
    }
}
