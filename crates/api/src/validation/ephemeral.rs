//! Ephemeral containers (`kubectl debug`), as upstream's validateEphemeralContainers and
//! ValidatePodEphemeralContainersUpdate word it: only an allow-list of container fields, unique
//! names, a target that names a container of the pod, never set on create, and once added never
//! removed or changed.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{arr, child, index, s, FieldError};

/// Container fields an ephemeral container may not set (upstream's allow-list, inverted).
const FORBIDDEN_FIELDS: &[&str] = &[
    "ports",
    "resources",
    "resizePolicy",
    "restartPolicy",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
];

/// A field that Go would see as set: present and not its zero value.
fn is_set(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Object(m)) => !m.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

/// Checks what only ephemeral containers are held to; `others` are the names of the pod's
/// containers and init containers. Name syntax and uniqueness and the ordinary container checks
/// are the caller's.
pub(crate) fn validate_ephemeral_container(
    c: &Value,
    path: &str,
    others: &BTreeSet<String>,
    errs: &mut Vec<FieldError>,
) {
    for field in FORBIDDEN_FIELDS {
        if is_set(c.get(*field)) {
            errs.push(FieldError::forbidden(
                child(path, field),
                "cannot be set for an Ephemeral Container",
            ));
        }
    }
    let mounts_path = child(path, "volumeMounts");
    for (i, m) in arr(c, "volumeMounts").iter().enumerate() {
        for field in ["subPath", "subPathExpr"] {
            if !s(m, field).is_empty() {
                errs.push(FieldError::forbidden(
                    child(&index(&mounts_path, i), field),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
    }
    let target = s(c, "targetContainerName");
    if !target.is_empty() && !others.contains(target) {
        errs.push(FieldError::not_found(
            child(path, "targetContainerName"),
            &c["targetContainerName"],
        ));
    }
}

/// A pod may not be created with ephemeral containers.
pub(crate) fn validate_pod_create(pod: &Value, errs: &mut Vec<FieldError>) {
    if !arr(
        pod.get("spec").unwrap_or(&Value::Null),
        "ephemeralContainers",
    )
    .is_empty()
    {
        errs.push(FieldError::forbidden(
            "spec.ephemeralContainers",
            "cannot be set on create",
        ));
    }
}

/// An update through pods/ephemeralcontainers: existing ephemeral containers stay as they are.
pub(crate) fn validate_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let empty = Value::Null;
    let list = |pod: &Value| -> Vec<Value> {
        arr(pod.get("spec").unwrap_or(&empty), "ephemeralContainers").to_vec()
    };
    let new_list = list(new);
    for o in list(old) {
        let name = s(&o, "name");
        match new_list.iter().find(|n| s(n, "name") == name) {
            None => errs.push(FieldError::forbidden(
                "spec.ephemeralContainers",
                &format!("existing ephemeral containers {name:?} may not be removed\n"),
            )),
            Some(n) if *n != o => errs.push(FieldError::forbidden(
                "spec.ephemeralContainers",
                &format!("existing ephemeral containers {name:?} may not be changed\n"),
            )),
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::validation::tests::{messages, res};
    use crate::validation::{validate_create, validate_ephemeral_containers_update};

    fn pod(ephemeral: serde_json::Value) -> serde_json::Value {
        let mut p = json!({"metadata": {"name": "p", "namespace": "default"},
            "spec": {"restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                "containers": [{"name": "app", "image": "busybox", "imagePullPolicy": "Always",
                    "terminationMessagePolicy": "File"}]}});
        if !ephemeral.is_null() {
            p["spec"]["ephemeralContainers"] = ephemeral;
        }
        p
    }

    fn debugger(extra: serde_json::Value) -> serde_json::Value {
        let mut c = json!({"name": "dbg", "image": "busybox", "imagePullPolicy": "Always",
            "terminationMessagePolicy": "File", "targetContainerName": "app"});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    #[test]
    fn ephemeral_containers_cannot_come_with_a_new_pod() {
        let errs = validate_create(res("pods"), &pod(json!([debugger(json!({}))])));
        assert_eq!(
            messages(&errs),
            ["spec.ephemeralContainers: Forbidden: cannot be set on create"]
        );
    }

    #[test]
    fn ephemeral_containers_are_held_to_upstreams_rules() {
        let old = pod(serde_json::Value::Null);
        let new = pod(json!([debugger(json!({
            "ports": [{"containerPort": 80}],
            "readinessProbe": {"exec": {"command": ["true"]}},
            "volumeMounts": [{"name": "v", "mountPath": "/v", "subPath": "x"}],
            "targetContainerName": "nope"}))]));
        let errs = validate_ephemeral_containers_update(res("pods"), &new, &old);
        let m = messages(&errs);
        for want in [
            "spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container",
            "spec.ephemeralContainers[0].readinessProbe: Forbidden: cannot be set for an Ephemeral Container",
            "spec.ephemeralContainers[0].volumeMounts[0].subPath: Forbidden: cannot be set for an Ephemeral Container",
            "spec.ephemeralContainers[0].targetContainerName: Not found: \"nope\"",
        ] {
            assert!(m.iter().any(|e| e == want), "{want} not in {m:#?}");
        }
        // A name that an app container has already.
        let new = pod(json!([debugger(json!({"name": "app"}))]));
        let m = messages(&validate_ephemeral_containers_update(
            res("pods"),
            &new,
            &old,
        ));
        assert!(
            m.contains(&"spec.ephemeralContainers[0].name: Duplicate value: \"app\"".to_string()),
            "{m:#?}"
        );
        // A good one is accepted.
        let new = pod(json!([debugger(json!({}))]));
        assert!(validate_ephemeral_containers_update(res("pods"), &new, &old).is_empty());
    }

    #[test]
    fn added_ephemeral_containers_stay_as_they_are() {
        let old = pod(json!([debugger(json!({}))]));
        let removed = pod(json!([]));
        let m = messages(&validate_ephemeral_containers_update(
            res("pods"),
            &removed,
            &old,
        ));
        assert_eq!(
            m,
            ["spec.ephemeralContainers: Forbidden: existing ephemeral containers \"dbg\" may not be removed\n"]
        );
        let changed = pod(json!([debugger(json!({"image": "other"}))]));
        let m = messages(&validate_ephemeral_containers_update(
            res("pods"),
            &changed,
            &old,
        ));
        assert_eq!(
            m,
            ["spec.ephemeralContainers: Forbidden: existing ephemeral containers \"dbg\" may not be changed\n"]
        );
        let added = pod(json!([
            debugger(json!({})),
            debugger(json!({"name": "dbg2"}))
        ]));
        assert!(validate_ephemeral_containers_update(res("pods"), &added, &old).is_empty());
    }
}
