//! Checks on kernel security profiles and masks, as upstream's
//! `staging/src/k8s.io/pod-security-admission/policy/{check_appArmorProfile.go,
//! check_seLinuxOptions.go, check_seccompProfile_baseline.go,
//! check_seccompProfile_restricted.go, check_procMount.go}` define them.

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde_json::Value;

use super::{CheckResult, Pod};
use crate::pod::{
    annotations, containers, containers_phrase, go_quote, is_windows, join_quote, name, object,
    pluralize, security_context, string, string_or_empty, text,
};

const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";
const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_ANNOTATION_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

/// An annotation value as Go's `map[string]string` holds it (`null` decodes to `""`).
fn annotation_value(v: &Value) -> Cow<'_, str> {
    match v {
        Value::Null => Cow::Borrowed(""),
        other => text(other),
    }
}

/// The `type` of `v.securityContext.<profile_key>` when that profile object is set.
fn profile_type<'a>(v: &'a Value, profile_key: &str) -> Option<Cow<'a, str>> {
    security_context(v)
        .and_then(|sc| object(sc, profile_key))
        .map(|p| string_or_empty(p, "type"))
}

/// AppArmor (baseline, v1.0+): profile types `RuntimeDefault` / `Localhost` or unset, and the
/// beta annotations `runtime/default`, `localhost/*` or empty.
pub(crate) fn app_armor_1_0(pod: &Pod<'_>) -> CheckResult {
    let allowed_type = |t: &str| t == "RuntimeDefault" || t == "Localhost";
    let mut setters = Vec::new();
    let mut bad_values = BTreeSet::new();
    if let Some(t) = profile_type(pod.spec, "appArmorProfile") {
        if !allowed_type(&t) {
            setters.push("pod".to_string());
            bad_values.insert(t.into_owned());
        }
    }
    let mut bad_containers = Vec::new();
    for c in containers(pod.spec) {
        if let Some(t) = profile_type(c, "appArmorProfile") {
            if !allowed_type(&t) {
                bad_containers.push(name(c));
                bad_values.insert(t.into_owned());
            }
        }
    }
    if !bad_containers.is_empty() {
        setters.push(containers_phrase(&bad_containers));
    }
    let mut forbidden_annotations = Vec::new();
    for (k, v) in annotations(pod.meta).into_iter().flatten() {
        let v = annotation_value(v);
        let allowed = v.is_empty() || v == "runtime/default" || v.starts_with("localhost/");
        if k.starts_with(APPARMOR_ANNOTATION_PREFIX) && !allowed {
            forbidden_annotations.push(format!("{k}={}", go_quote(&v)));
        }
    }
    let mut bad_list: Vec<String> = bad_values.into_iter().collect();
    if !forbidden_annotations.is_empty() {
        forbidden_annotations.sort();
        setters
            .push(pluralize("annotation", "annotations", forbidden_annotations.len()).to_string());
        bad_list.extend(forbidden_annotations);
    }
    if setters.is_empty() {
        return CheckResult::allow();
    }
    CheckResult::forbid(
        pluralize(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            bad_list.len(),
        ),
        format!(
            "{} must not set AppArmor profile type to {}",
            setters.join(" and "),
            join_quote(&bad_list)
        ),
    )
}

const SELINUX_TYPES_1_0: &[&str] = &["", "container_t", "container_init_t", "container_kvm_t"];
const SELINUX_TYPES_1_31: &[&str] = &[
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

fn se_linux_options(pod: &Pod<'_>, allowed_types: &[&str]) -> CheckResult {
    let mut bad_types = BTreeSet::new();
    let mut set_user = false;
    let mut set_role = false;
    let mut valid = |v: &Value| -> bool {
        let Some(opts) = security_context(v).and_then(|sc| object(sc, "seLinuxOptions")) else {
            return true;
        };
        let mut ok = true;
        let t = string_or_empty(opts, "type");
        if !allowed_types.contains(&t.as_ref()) {
            ok = false;
            bad_types.insert(t.into_owned());
        }
        if !string_or_empty(opts, "user").is_empty() {
            ok = false;
            set_user = true;
        }
        if !string_or_empty(opts, "role").is_empty() {
            ok = false;
            set_role = true;
        }
        ok
    };
    let mut setters = Vec::new();
    if !valid(pod.spec) {
        setters.push("pod".to_string());
    }
    let bad_containers: Vec<_> = containers(pod.spec)
        .filter(|c| !valid(c))
        .map(name)
        .collect();
    if !bad_containers.is_empty() {
        setters.push(containers_phrase(&bad_containers));
    }
    if setters.is_empty() {
        return CheckResult::allow();
    }
    let mut data = Vec::new();
    if !bad_types.is_empty() {
        let types: Vec<String> = bad_types.into_iter().collect();
        data.push(format!(
            "{} {}",
            pluralize("type", "types", types.len()),
            join_quote(&types)
        ));
    }
    if set_user {
        data.push("user may not be set".to_string());
    }
    if set_role {
        data.push("role may not be set".to_string());
    }
    CheckResult::forbid(
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            setters.join(" and "),
            data.join("; ")
        ),
    )
}

/// SELinux (baseline, v1.0): type empty, `container_t`, `container_init_t` or
/// `container_kvm_t`; user and role unset.
pub(crate) fn se_linux_options_1_0(pod: &Pod<'_>) -> CheckResult {
    se_linux_options(pod, SELINUX_TYPES_1_0)
}

/// SELinux (baseline, v1.31+): also `container_engine_t`.
pub(crate) fn se_linux_options_1_31(pod: &Pod<'_>) -> CheckResult {
    se_linux_options(pod, SELINUX_TYPES_1_31)
}

fn valid_seccomp_type(t: &str) -> bool {
    t == "Localhost" || t == "RuntimeDefault"
}

/// Seccomp (baseline, v1.0 - v1.18): the alpha annotations may only name `runtime/default`,
/// `docker/default` or `localhost/*`.
pub(crate) fn seccomp_baseline_1_0(pod: &Pod<'_>) -> CheckResult {
    let valid =
        |v: &str| v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/");
    let annotations = annotations(pod.meta);
    let mut forbidden = BTreeSet::new();
    let mut check = |key: &str| {
        if let Some(v) = annotations.and_then(|a| a.get(key)) {
            let v = annotation_value(v);
            if !valid(&v) {
                forbidden.insert(format!("{key}={}", go_quote(&v)));
            }
        }
    };
    check(SECCOMP_POD_ANNOTATION);
    for c in containers(pod.spec) {
        check(&format!("{SECCOMP_CONTAINER_ANNOTATION_PREFIX}{}", name(c)));
    }
    if forbidden.is_empty() {
        return CheckResult::allow();
    }
    let forbidden: Vec<String> = forbidden.into_iter().collect();
    CheckResult::forbid(
        "seccompProfile",
        format!(
            "forbidden {} {}",
            pluralize("annotation", "annotations", forbidden.len()),
            forbidden.join(", ")
        ),
    )
}

fn seccomp_bad_setters_detail(setters: &[String], bad_values: BTreeSet<String>) -> String {
    let values: Vec<String> = bad_values.into_iter().collect();
    format!(
        "{} must not set securityContext.seccompProfile.type to {}",
        setters.join(" and "),
        join_quote(&values)
    )
}

/// Seccomp (baseline, v1.19+): `seccompProfile.type` unset, `RuntimeDefault` or `Localhost`.
pub(crate) fn seccomp_baseline_1_19(pod: &Pod<'_>) -> CheckResult {
    let mut setters = Vec::new();
    let mut bad_values = BTreeSet::new();
    if let Some(t) = profile_type(pod.spec, "seccompProfile") {
        if !valid_seccomp_type(&t) {
            setters.push("pod".to_string());
            bad_values.insert(t.into_owned());
        }
    }
    let mut bad_containers = Vec::new();
    for c in containers(pod.spec) {
        if let Some(t) = profile_type(c, "seccompProfile") {
            if !valid_seccomp_type(&t) {
                bad_containers.push(name(c));
                bad_values.insert(t.into_owned());
            }
        }
    }
    if !bad_containers.is_empty() {
        setters.push(containers_phrase(&bad_containers));
    }
    if setters.is_empty() {
        return CheckResult::allow();
    }
    CheckResult::forbid(
        "seccompProfile",
        seccomp_bad_setters_detail(&setters, bad_values),
    )
}

/// Seccomp (restricted, v1.19+): the pod, or every container, must set `RuntimeDefault` or
/// `Localhost`; replaces the baseline seccomp check.
pub(crate) fn seccomp_restricted_1_19(pod: &Pod<'_>) -> CheckResult {
    let mut setters = Vec::new();
    let mut bad_values = BTreeSet::new();
    let mut pod_set = false;
    if let Some(t) = profile_type(pod.spec, "seccompProfile") {
        if valid_seccomp_type(&t) {
            pod_set = true;
        } else {
            setters.push("pod".to_string());
            bad_values.insert(t.into_owned());
        }
    }
    let mut explicitly_bad = Vec::new();
    let mut implicitly_bad = Vec::new();
    for c in containers(pod.spec) {
        match profile_type(c, "seccompProfile") {
            Some(t) if !valid_seccomp_type(&t) => {
                explicitly_bad.push(name(c));
                bad_values.insert(t.into_owned());
            }
            Some(_) => {}
            None if !pod_set => implicitly_bad.push(name(c)),
            None => {}
        }
    }
    if !explicitly_bad.is_empty() {
        setters.push(containers_phrase(&explicitly_bad));
    }
    if !setters.is_empty() {
        return CheckResult::forbid(
            "seccompProfile",
            seccomp_bad_setters_detail(&setters, bad_values),
        );
    }
    if !implicitly_bad.is_empty() {
        return CheckResult::forbid(
            "seccompProfile",
            format!(
                "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                containers_phrase(&implicitly_bad)
            ),
        );
    }
    CheckResult::allow()
}

/// As v1.19, but pods with `spec.os.name: windows` are allowed.
pub(crate) fn seccomp_restricted_1_25(pod: &Pod<'_>) -> CheckResult {
    if is_windows(pod.spec) {
        return CheckResult::allow();
    }
    seccomp_restricted_1_19(pod)
}

/// /proc mount (baseline, v1.0+): `securityContext.procMount` unset or `Default` (any value
/// for user-namespaced pods when the relaxation is on).
pub(crate) fn proc_mount_1_0(pod: &Pod<'_>) -> CheckResult {
    if pod.relaxed_for_user_namespace() {
        return CheckResult::allow();
    }
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for c in containers(pod.spec) {
        let Some(pm) = security_context(c).and_then(|sc| string(sc, "procMount")) else {
            continue;
        };
        if pm != "Default" {
            bad.push(name(c));
            types.insert(pm.into_owned());
        }
    }
    if bad.is_empty() {
        return CheckResult::allow();
    }
    let types: Vec<String> = types.into_iter().collect();
    CheckResult::forbid(
        "procMount",
        format!(
            "{} must not set securityContext.procMount to {}",
            containers_phrase(&bad),
            join_quote(&types)
        ),
    )
}

#[cfg(test)]
#[path = "profiles_tests.rs"]
mod tests;
