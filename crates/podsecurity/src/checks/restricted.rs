//! Restricted-only checks, as upstream's
//! `staging/src/k8s.io/pod-security-admission/policy/{check_allowPrivilegeEscalation.go,
//! check_restrictedVolumes.go, check_runAsNonRoot.go, check_runAsUser.go}` define them.

use std::collections::BTreeSet;

use super::{CheckResult, Pod};
use crate::pod::{
    containers, containers_phrase, flag, is_set, is_windows, is_zero, join_quote, list, name,
    object, pluralize, security_context,
};

/// allowPrivilegeEscalation (v1.8+): every container must set it to false.
pub(crate) fn allow_privilege_escalation_1_8(pod: &Pod<'_>) -> CheckResult {
    let bad: Vec<_> = containers(pod.spec)
        .filter(|c| {
            security_context(c).and_then(|sc| flag(sc, "allowPrivilegeEscalation", true))
                != Some(false)
        })
        .map(name)
        .collect();
    if bad.is_empty() {
        return CheckResult::allow();
    }
    CheckResult::forbid(
        "allowPrivilegeEscalation != false",
        format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_phrase(&bad)
        ),
    )
}

/// As v1.8, but pods with `spec.os.name: windows` are allowed (v1.25+).
pub(crate) fn allow_privilege_escalation_1_25(pod: &Pod<'_>) -> CheckResult {
    if is_windows(pod.spec) {
        return CheckResult::allow();
    }
    allow_privilege_escalation_1_8(pod)
}

/// Volume sources restricted pods may use.
pub(crate) const RESTRICTED_ALLOWED_VOLUME_SOURCES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// The forbidden sources upstream names, in its order of precedence.
const RESTRICTED_VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
];

/// Restricted volume types (v1.0+): only the allowed sources; replaces the baseline hostPath
/// check. A volume with no known source is `unknown` (the apiserver defaults a volume without
/// a source to `emptyDir` before admission).
pub(crate) fn restricted_volumes_1_0(pod: &Pod<'_>) -> CheckResult {
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for v in list(pod.spec, "volumes") {
        if RESTRICTED_ALLOWED_VOLUME_SOURCES
            .iter()
            .any(|k| object(v, k).is_some())
        {
            continue;
        }
        bad.push(name(v));
        let t = RESTRICTED_VOLUME_SOURCES
            .iter()
            .find(|k| is_set(v, k))
            .copied()
            .unwrap_or("unknown");
        types.insert(t);
    }
    if bad.is_empty() {
        return CheckResult::allow();
    }
    let types: Vec<&str> = types.into_iter().collect();
    CheckResult::forbid(
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize(
                "restricted volume type",
                "restricted volume types",
                types.len()
            ),
            join_quote(&types)
        ),
    )
}

/// runAsNonRoot (v1.0+): the pod, or every container, must set it to true, and none may set
/// it to false (relaxed for user-namespaced pods when the relaxation is on).
pub(crate) fn run_as_non_root_1_0(pod: &Pod<'_>) -> CheckResult {
    if pod.relaxed_for_user_namespace() {
        return CheckResult::allow();
    }
    let mut setters = Vec::new();
    let mut pod_non_root = false;
    match security_context(pod.spec).and_then(|sc| flag(sc, "runAsNonRoot", false)) {
        Some(false) => setters.push("pod".to_string()),
        Some(true) => pod_non_root = true,
        None => {}
    }
    let mut explicitly_bad = Vec::new();
    let mut implicitly_bad = Vec::new();
    for c in containers(pod.spec) {
        match security_context(c).and_then(|sc| flag(sc, "runAsNonRoot", false)) {
            Some(false) => explicitly_bad.push(name(c)),
            Some(true) => {}
            None if !pod_non_root => implicitly_bad.push(name(c)),
            None => {}
        }
    }
    if !explicitly_bad.is_empty() {
        setters.push(containers_phrase(&explicitly_bad));
    }
    if !setters.is_empty() {
        return CheckResult::forbid(
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters.join(" and ")
            ),
        );
    }
    if !implicitly_bad.is_empty() {
        return CheckResult::forbid(
            "runAsNonRoot != true",
            format!(
                "pod or {} must set securityContext.runAsNonRoot=true",
                containers_phrase(&implicitly_bad)
            ),
        );
    }
    CheckResult::allow()
}

/// runAsUser (v1.23+): neither the pod nor a container may set `runAsUser: 0` (relaxed for
/// user-namespaced pods when the relaxation is on).
pub(crate) fn run_as_user_1_23(pod: &Pod<'_>) -> CheckResult {
    if pod.relaxed_for_user_namespace() {
        return CheckResult::allow();
    }
    let root =
        |v: &serde_json::Value| security_context(v).is_some_and(|sc| is_zero(sc, "runAsUser"));
    let mut setters = Vec::new();
    if root(pod.spec) {
        setters.push("pod".to_string());
    }
    let bad: Vec<_> = containers(pod.spec).filter(|c| root(c)).map(name).collect();
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return CheckResult::allow();
    }
    CheckResult::forbid(
        "runAsUser=0",
        format!("{} must not set runAsUser=0", setters.join(" and ")),
    )
}

#[cfg(test)]
#[path = "restricted_tests.rs"]
mod tests;
