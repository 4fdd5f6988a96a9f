//! Capability checks, as upstream's
//! `staging/src/k8s.io/pod-security-admission/policy/{check_capabilities_baseline.go,
//! check_capabilities_restricted.go}` define them: baseline (v1.0+) allows adding only the
//! default container runtime set; restricted (v1.22+, Windows pods exempt from v1.25) requires
//! dropping `ALL` and allows adding only `NET_BIND_SERVICE`, and replaces the baseline check.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{CheckResult, Pod};
use crate::pod::{
    containers, containers_phrase, is_windows, join_quote, list, name, object, security_context,
    text,
};

/// Capabilities baseline allows in `securityContext.capabilities.add`.
pub(crate) const BASELINE_ALLOWED_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn capabilities(c: &Value) -> Option<&Value> {
    security_context(c).and_then(|sc| object(sc, "capabilities"))
}

/// Baseline: only the default capabilities may be added.
pub(crate) fn baseline_1_0(pod: &Pod<'_>) -> CheckResult {
    let mut bad = Vec::new();
    let mut caps = BTreeSet::new();
    for c in containers(pod.spec) {
        let Some(cap) = capabilities(c) else { continue };
        let mut valid = true;
        for add in list(cap, "add") {
            let add = text(add);
            if !BASELINE_ALLOWED_CAPABILITIES.contains(&add.as_ref()) {
                valid = false;
                caps.insert(add.into_owned());
            }
        }
        if !valid {
            bad.push(name(c));
        }
    }
    if bad.is_empty() {
        return CheckResult::allow();
    }
    let caps: Vec<String> = caps.into_iter().collect();
    CheckResult::forbid(
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&bad),
            join_quote(&caps)
        ),
    )
}

/// Restricted: drop `ALL`, add nothing but `NET_BIND_SERVICE`.
pub(crate) fn restricted_1_22(pod: &Pod<'_>) -> CheckResult {
    let mut missing_drop_all = Vec::new();
    let mut adding_forbidden = Vec::new();
    let mut forbidden = BTreeSet::new();
    for c in containers(pod.spec) {
        let Some(cap) = capabilities(c) else {
            missing_drop_all.push(name(c));
            continue;
        };
        if !list(cap, "drop").iter().any(|d| d.as_str() == Some("ALL")) {
            missing_drop_all.push(name(c));
        }
        let mut added_forbidden = false;
        for add in list(cap, "add") {
            if add.as_str() != Some("NET_BIND_SERVICE") {
                added_forbidden = true;
                forbidden.insert(text(add).into_owned());
            }
        }
        if added_forbidden {
            adding_forbidden.push(name(c));
        }
    }
    let mut details = Vec::new();
    if !missing_drop_all.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_phrase(&missing_drop_all)
        ));
    }
    if !adding_forbidden.is_empty() {
        let forbidden: Vec<String> = forbidden.into_iter().collect();
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding_forbidden),
            join_quote(&forbidden)
        ));
    }
    if details.is_empty() {
        return CheckResult::allow();
    }
    CheckResult::forbid("unrestricted capabilities", details.join("; "))
}

/// As v1.22, but pods with `spec.os.name: windows` are allowed.
pub(crate) fn restricted_1_25(pod: &Pod<'_>) -> CheckResult {
    if is_windows(pod.spec) {
        return CheckResult::allow();
    }
    restricted_1_22(pod)
}

#[cfg(test)]
mod tests {
    use super::super::EvalOptions;
    use super::*;
    use serde_json::json;

    fn run(check: fn(&Pod<'_>) -> CheckResult, spec: Value) -> CheckResult {
        let opts = EvalOptions::default();
        let meta = json!({});
        check(&Pod {
            meta: &meta,
            spec: &spec,
            opts: &opts,
        })
    }

    fn caps(add: &[&str], drop: Option<&[&str]>) -> Value {
        match drop {
            Some(d) => json!({"capabilities": {"add": add, "drop": d}}),
            None => json!({"capabilities": {"add": add}}),
        }
    }

    #[test]
    fn baseline_multiple_containers() {
        let r = run(
            baseline_1_0,
            json!({"containers": [
                {"name": "a", "securityContext": caps(&["FOO", "BAR"], None)},
                {"name": "b", "securityContext": caps(&["BAR", "BAZ"], None)},
            ]}),
        );
        assert!(!r.allowed);
        assert_eq!(r.forbidden_reason, "non-default capabilities");
        assert_eq!(
            r.forbidden_detail,
            r#"containers "a", "b" must not include "BAR", "BAZ", "FOO" in securityContext.capabilities.add"#
        );
    }

    #[test]
    fn baseline_allows_the_default_set_only() {
        let ok = run(
            baseline_1_0,
            json!({"containers": [{"name": "a", "securityContext": caps(BASELINE_ALLOWED_CAPABILITIES, None)}]}),
        );
        assert!(ok.allowed);
        for bad in ["NET_RAW", "chown", "CAP_CHOWN", "SYS_ADMIN"] {
            let r = run(
                baseline_1_0,
                json!({"initContainers": [{"name": "i", "securityContext": caps(&[bad], None)}]}),
            );
            assert!(!r.allowed, "{bad}");
        }
    }

    const MULTI: &str = r#"containers "a", "b" must set securityContext.capabilities.drop=["ALL"]; containers "a", "b", "c" must not include "BAR", "BAZ", "CHOWN", "FOO" in securityContext.capabilities.add"#;

    fn multi() -> Value {
        json!({"containers": [
            {"name": "a", "securityContext": caps(&["FOO", "BAR"], None)},
            {"name": "b", "securityContext": caps(&["BAR", "BAZ"], None)},
            {"name": "c", "securityContext": caps(&["NET_BIND_SERVICE", "CHOWN"], Some(&["ALL", "FOO"]))},
        ]})
    }

    #[test]
    fn restricted_1_22_multiple_containers() {
        let r = run(restricted_1_22, multi());
        assert!(!r.allowed);
        assert_eq!(r.forbidden_reason, "unrestricted capabilities");
        assert_eq!(r.forbidden_detail, MULTI);
    }

    #[test]
    fn restricted_1_25_cases() {
        let r = run(restricted_1_25, multi());
        assert_eq!(r.forbidden_reason, "unrestricted capabilities");
        assert_eq!(r.forbidden_detail, MULTI);
        let win = run(
            restricted_1_25,
            json!({"os": {"name": "windows"}, "containers": [{"name": "a"}]}),
        );
        assert!(win.allowed);
        assert_eq!(win.forbidden_reason, "");
        let linux = run(
            restricted_1_25,
            json!({"os": {"name": "linux"}, "containers": [{"name": "a"}]}),
        );
        assert!(!linux.allowed);
        assert_eq!(linux.forbidden_reason, "unrestricted capabilities");
        assert_eq!(
            linux.forbidden_detail,
            r#"container "a" must set securityContext.capabilities.drop=["ALL"]"#
        );
        // 1.22 applies to windows pods too
        assert!(
            !run(
                restricted_1_22,
                json!({"os": {"name": "windows"}, "containers": [{"name": "a"}]})
            )
            .allowed
        );
    }

    #[test]
    fn restricted_allows_drop_all_and_net_bind_service() {
        let ok = run(
            restricted_1_25,
            json!({"containers": [{"name": "a", "securityContext": caps(&["NET_BIND_SERVICE"], Some(&["ALL"]))}]}),
        );
        assert!(ok.allowed);
        let lower = run(
            restricted_1_25,
            json!({"containers": [{"name": "a", "securityContext": caps(&[], Some(&["all"]))}]}),
        );
        assert!(!lower.allowed, "drop must name ALL exactly");
    }
}
