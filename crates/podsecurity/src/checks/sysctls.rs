//! The baseline sysctls check, as upstream's
//! `staging/src/k8s.io/pod-security-admission/policy/check_sysctls.go` defines it: only the
//! "safe" namespaced sysctls may be set in `spec.securityContext.sysctls`, a set that grows at
//! v1.27, v1.29 and v1.32.

use super::{CheckResult, Pod};
use crate::pod::{list, security_context, string_or_empty};

/// Safe sysctls from v1.0.
pub(crate) const SAFE_SYSCTLS_1_0: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
];
/// Added at v1.27.
pub(crate) const SAFE_SYSCTLS_ADDED_1_27: &[&str] = &["net.ipv4.ip_local_reserved_ports"];
/// Added at v1.29.
pub(crate) const SAFE_SYSCTLS_ADDED_1_29: &[&str] = &[
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];
/// Added at v1.32.
pub(crate) const SAFE_SYSCTLS_ADDED_1_32: &[&str] = &["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"];

fn sysctls(pod: &Pod<'_>, allowed: &[&[&str]]) -> CheckResult {
    let Some(sc) = security_context(pod.spec) else {
        return CheckResult::allow();
    };
    let forbidden: Vec<_> = list(sc, "sysctls")
        .iter()
        .map(|s| string_or_empty(s, "name"))
        .filter(|n| !allowed.iter().any(|set| set.contains(&n.as_ref())))
        .collect();
    if forbidden.is_empty() {
        return CheckResult::allow();
    }
    CheckResult::forbid("forbidden sysctls", forbidden.join(", "))
}

pub(crate) fn sysctls_1_0(pod: &Pod<'_>) -> CheckResult {
    sysctls(pod, &[SAFE_SYSCTLS_1_0])
}

pub(crate) fn sysctls_1_27(pod: &Pod<'_>) -> CheckResult {
    sysctls(pod, &[SAFE_SYSCTLS_1_0, SAFE_SYSCTLS_ADDED_1_27])
}

pub(crate) fn sysctls_1_29(pod: &Pod<'_>) -> CheckResult {
    sysctls(
        pod,
        &[
            SAFE_SYSCTLS_1_0,
            SAFE_SYSCTLS_ADDED_1_27,
            SAFE_SYSCTLS_ADDED_1_29,
        ],
    )
}

pub(crate) fn sysctls_1_32(pod: &Pod<'_>) -> CheckResult {
    sysctls(
        pod,
        &[
            SAFE_SYSCTLS_1_0,
            SAFE_SYSCTLS_ADDED_1_27,
            SAFE_SYSCTLS_ADDED_1_29,
            SAFE_SYSCTLS_ADDED_1_32,
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::super::EvalOptions;
    use super::*;
    use serde_json::{json, Value};

    fn run(check: fn(&Pod<'_>) -> CheckResult, names: &[&str]) -> CheckResult {
        let opts = EvalOptions::default();
        let meta = json!({});
        let list: Vec<Value> = names
            .iter()
            .map(|n| json!({"name": n, "value": "1"}))
            .collect();
        let spec = json!({"securityContext": {"sysctls": list}});
        check(&Pod {
            meta: &meta,
            spec: &spec,
            opts: &opts,
        })
    }

    fn forbids(check: fn(&Pod<'_>) -> CheckResult, names: &[&str], detail: &str) {
        let r = run(check, names);
        assert!(!r.allowed, "{names:?}");
        assert_eq!(r.forbidden_reason, "forbidden sysctls");
        assert_eq!(r.forbidden_detail, detail);
    }

    const ADDED_1_29: [&str; 4] = [
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    ];

    #[test]
    fn v1_0() {
        forbids(sysctls_1_0, &["a", "b"], "a, b");
        for n in [
            "net.ipv4.ip_local_reserved_ports",
            "net.ipv4.tcp_rmem",
            "net.ipv4.tcp_wmem",
        ]
        .into_iter()
        .chain(ADDED_1_29)
        {
            forbids(sysctls_1_0, &[n], n);
        }
        assert!(run(sysctls_1_0, SAFE_SYSCTLS_1_0).allowed);
    }

    #[test]
    fn v1_27() {
        forbids(sysctls_1_27, &["a", "b"], "a, b");
        assert!(run(sysctls_1_27, &["net.ipv4.ip_local_reserved_ports"]).allowed);
        forbids(
            sysctls_1_27,
            &["net.ipv4.tcp_fin_timeout"],
            "net.ipv4.tcp_fin_timeout",
        );
    }

    #[test]
    fn v1_29() {
        forbids(sysctls_1_29, &["a", "b"], "a, b");
        for n in ADDED_1_29 {
            assert!(run(sysctls_1_29, &[n]).allowed, "{n}");
        }
        forbids(sysctls_1_29, &["net.ipv4.tcp_rmem"], "net.ipv4.tcp_rmem");
    }

    #[test]
    fn v1_32() {
        forbids(sysctls_1_32, &["a", "b"], "a, b");
        assert!(run(sysctls_1_32, &["net.ipv4.tcp_rmem"]).allowed);
        assert!(run(sysctls_1_32, &["net.ipv4.tcp_wmem"]).allowed);
        // order of appearance, duplicates kept, as upstream
        forbids(
            sysctls_1_32,
            &["z", "kernel.shm_rmid_forced", "a", "z"],
            "z, a, z",
        );
    }

    #[test]
    fn no_security_context_or_missing_name() {
        let opts = EvalOptions::default();
        let meta = json!({});
        let spec = json!({});
        assert!(
            sysctls_1_0(&Pod {
                meta: &meta,
                spec: &spec,
                opts: &opts
            })
            .allowed
        );
        let spec = json!({"securityContext": {"sysctls": [{"value": "1"}]}});
        let r = sysctls_1_0(&Pod {
            meta: &meta,
            spec: &spec,
            opts: &opts,
        });
        assert!(!r.allowed);
        assert_eq!(r.forbidden_detail, "");
    }
}
