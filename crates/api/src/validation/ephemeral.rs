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
