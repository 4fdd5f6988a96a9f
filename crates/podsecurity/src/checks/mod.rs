//! The checks and their registry, as upstream's
//! `staging/src/k8s.io/pod-security-admission/policy/{checks.go,registry.go}` define them:
//! each check has an ID, a level and versioned implementations; a restricted check may
//! override baseline checks; results come in upstream's order (baseline checks by ID, then
//! restricted checks by ID); versions newer than the newest check version (and `latest`) use
//! the newest checks.

mod capabilities;
mod host;
mod profiles;
mod restricted;
mod sysctls;

use serde_json::Value;

use crate::api::{Level, LevelVersion, Version};

/// The result of one check: whether the pod is allowed and, if not, upstream's reason
/// (`host namespaces`) and detail (`hostNetwork=true, hostPID=true`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckResult {
    /// Whether the check allowed the pod.
    pub allowed: bool,
    /// Set when not allowed; always printed.
    pub forbidden_reason: String,
    /// Optional; printed in parentheses after the reason.
    pub forbidden_detail: String,
}

impl CheckResult {
    /// An allowing result.
    pub fn allow() -> Self {
        CheckResult {
            allowed: true,
            ..CheckResult::default()
        }
    }

    /// A forbidding result.
    pub fn forbid(reason: impl Into<String>, detail: impl Into<String>) -> Self {
        CheckResult {
            allowed: false,
            forbidden_reason: reason.into(),
            forbidden_detail: detail.into(),
        }
    }
}

/// Options upstream sets process-wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EvalOptions {
    /// Upstream's `RelaxPolicyForUserNamespacePods` (the `UserNamespacesPodSecurityStandards`
    /// feature gate, off by default in 1.33): pods with `hostUsers: false` pass the procMount,
    /// runAsNonRoot and runAsUser checks.
    pub relax_policy_for_user_namespace_pods: bool,
}

/// What a check sees: the pod's (or template's) metadata and spec.
pub(crate) struct Pod<'a> {
    pub meta: &'a Value,
    pub spec: &'a Value,
    pub opts: &'a EvalOptions,
}

impl Pod<'_> {
    /// Upstream's `relaxPolicyForUserNamespacePod`.
    pub fn relaxed_for_user_namespace(&self) -> bool {
        self.opts.relax_policy_for_user_namespace_pods && crate::pod::in_user_namespace(self.spec)
    }
}

type CheckFn = fn(&Pod<'_>) -> CheckResult;

/// One implementation of a check, in force from `min_minor` (a v1 minor version) on.
struct Versioned {
    min_minor: u64,
    check: CheckFn,
    /// Baseline check IDs this restricted check replaces while in force.
    overrides: &'static [&'static str],
}

/// A registered check.
struct Check {
    id: &'static str,
    level: Level,
    versions: &'static [Versioned],
}

const fn v(min_minor: u64, check: CheckFn) -> Versioned {
    Versioned {
        min_minor,
        check,
        overrides: &[],
    }
}

const fn vo(min_minor: u64, check: CheckFn, overrides: &'static [&'static str]) -> Versioned {
    Versioned {
        min_minor,
        check,
        overrides,
    }
}

/// The newest minor version any check changes at in Kubernetes 1.33 (sysctls, v1.32).
/// Newer versions and `latest` evaluate as this one.
pub const NEWEST_POLICY_MINOR: u64 = 32;

/// Every default check of Kubernetes 1.33, baseline then restricted, each group sorted by ID
/// (bytewise, as Go's sort.Strings), which is upstream's evaluation and message order.
static CHECKS: &[Check] = &[
    Check {
        id: "appArmorProfile",
        level: Level::Baseline,
        versions: &[v(0, profiles::app_armor_1_0)],
    },
    Check {
        id: "capabilities_baseline",
        level: Level::Baseline,
        versions: &[v(0, capabilities::baseline_1_0)],
    },
    Check {
        id: "hostNamespaces",
        level: Level::Baseline,
        versions: &[v(0, host::host_namespaces_1_0)],
    },
    Check {
        id: "hostPathVolumes",
        level: Level::Baseline,
        versions: &[v(0, host::host_path_volumes_1_0)],
    },
    Check {
        id: "hostPorts",
        level: Level::Baseline,
        versions: &[v(0, host::host_ports_1_0)],
    },
    Check {
        id: "privileged",
        level: Level::Baseline,
        versions: &[v(0, host::privileged_1_0)],
    },
    Check {
        id: "procMount",
        level: Level::Baseline,
        versions: &[v(0, profiles::proc_mount_1_0)],
    },
    Check {
        id: "seLinuxOptions",
        level: Level::Baseline,
        versions: &[
            v(0, profiles::se_linux_options_1_0),
            v(31, profiles::se_linux_options_1_31),
        ],
    },
    Check {
        id: "seccompProfile_baseline",
        level: Level::Baseline,
        versions: &[
            v(0, profiles::seccomp_baseline_1_0),
            v(19, profiles::seccomp_baseline_1_19),
        ],
    },
    Check {
        id: "sysctls",
        level: Level::Baseline,
        versions: &[
            v(0, sysctls::sysctls_1_0),
            v(27, sysctls::sysctls_1_27),
            v(29, sysctls::sysctls_1_29),
            v(32, sysctls::sysctls_1_32),
        ],
    },
    Check {
        id: "windowsHostProcess",
        level: Level::Baseline,
        versions: &[v(0, host::windows_host_process_1_0)],
    },
    Check {
        id: "allowPrivilegeEscalation",
        level: Level::Restricted,
        versions: &[
            v(8, restricted::allow_privilege_escalation_1_8),
            v(25, restricted::allow_privilege_escalation_1_25),
        ],
    },
    Check {
        id: "capabilities_restricted",
        level: Level::Restricted,
        versions: &[
            vo(
                22,
                capabilities::restricted_1_22,
                &["capabilities_baseline"],
            ),
            vo(
                25,
                capabilities::restricted_1_25,
                &["capabilities_baseline"],
            ),
        ],
    },
    Check {
        id: "restrictedVolumes",
        level: Level::Restricted,
        versions: &[vo(
            0,
            restricted::restricted_volumes_1_0,
            &["hostPathVolumes"],
        )],
    },
    Check {
        id: "runAsNonRoot",
        level: Level::Restricted,
        versions: &[v(0, restricted::run_as_non_root_1_0)],
    },
    Check {
        id: "runAsUser",
        level: Level::Restricted,
        versions: &[v(23, restricted::run_as_user_1_23)],
    },
    Check {
        id: "seccompProfile_restricted",
        level: Level::Restricted,
        versions: &[
            vo(
                19,
                profiles::seccomp_restricted_1_19,
                &["seccompProfile_baseline"],
            ),
            vo(
                25,
                profiles::seccomp_restricted_1_25,
                &["seccompProfile_baseline"],
            ),
        ],
    },
];

/// The v1 minor version whose checks a version evaluates with.
fn effective_minor(version: Version) -> u64 {
    match version {
        Version::V1(minor) => minor.min(NEWEST_POLICY_MINOR),
        Version::Latest => NEWEST_POLICY_MINOR,
    }
}

/// The checks in force for a level and version, in upstream's order.
fn active(lv: &LevelVersion) -> Vec<(&'static str, &'static Versioned)> {
    if lv.level == Level::Privileged {
        return Vec::new();
    }
    let minor = effective_minor(lv.version);
    let in_force = |c: &'static Check| c.versions.iter().rev().find(|x| x.min_minor <= minor);
    let restricted = lv.level == Level::Restricted;
    let overridden: Vec<&str> = if restricted {
        CHECKS
            .iter()
            .filter(|c| c.level == Level::Restricted)
            .filter_map(in_force)
            .flat_map(|x| x.overrides.iter().copied())
            .collect()
    } else {
        Vec::new()
    };
    CHECKS
        .iter()
        .filter(|c| match c.level {
            Level::Baseline => !overridden.contains(&c.id),
            Level::Restricted => restricted,
            Level::Privileged => false,
        })
        .filter_map(|c| in_force(c).map(|x| (c.id, x)))
        .collect()
}

/// The IDs of the checks a level and version runs, in upstream's order.
pub fn check_ids(lv: &LevelVersion) -> Vec<&'static str> {
    active(lv).into_iter().map(|(id, _)| id).collect()
}

/// Upstream's `EvaluatePod` with explicit options, keeping only the failed results, in
/// upstream's order.
pub fn evaluate_with(
    opts: &EvalOptions,
    lv: &LevelVersion,
    pod_metadata: &Value,
    pod_spec: &Value,
) -> Vec<CheckResult> {
    let pod = Pod {
        meta: pod_metadata,
        spec: pod_spec,
        opts,
    };
    active(lv)
        .into_iter()
        .map(|(_, x)| (x.check)(&pod))
        .filter(|r| !r.allowed)
        .collect()
}

/// The failed checks of a pod's metadata and spec at a level and version, in upstream's
/// order; empty when the pod is allowed (always for privileged).
pub fn evaluate(lv: &LevelVersion, pod_metadata: &Value, pod_spec: &Value) -> Vec<CheckResult> {
    evaluate_with(&EvalOptions::default(), lv, pod_metadata, pod_spec)
}

/// Placeholder reason for a failed check without one (upstream's `UnknownForbiddenReason`).
pub const UNKNOWN_FORBIDDEN_REASON: &str = "unknown forbidden reason";

fn reason(r: &CheckResult) -> &str {
    if r.forbidden_reason.is_empty() {
        UNKNOWN_FORBIDDEN_REASON
    } else {
        &r.forbidden_reason
    }
}

/// Upstream's `AggregateCheckResult.ForbiddenReason`: the reasons of the failed results,
/// joined with `, ` (`host ports, privileged`). Allowed results are skipped.
pub fn aggregate_reason(results: &[CheckResult]) -> String {
    results
        .iter()
        .filter(|r| !r.allowed)
        .map(reason)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Upstream's `AggregateCheckResult.ForbiddenDetail`: each failed result's reason with its
/// detail in parentheses when there is one, joined with `, `.
pub fn aggregate_detail(results: &[CheckResult]) -> String {
    results
        .iter()
        .filter(|r| !r.allowed)
        .map(|r| {
            if r.forbidden_detail.is_empty() {
                reason(r).to_string()
            } else {
                format!("{} ({})", reason(r), r.forbidden_detail)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The enforce error: `violates PodSecurity "baseline:latest": host namespaces
/// (hostNetwork=true), ...`. (The apiserver wraps it: `pods "x" is forbidden: violates ...`.)
pub fn enforce_message(lv: &LevelVersion, failed: &[CheckResult]) -> String {
    format!(
        "violates PodSecurity \"{lv}\": {}",
        aggregate_detail(failed)
    )
}

/// The warning and audit text: `would violate PodSecurity "restricted:latest": ...`.
pub fn warning_message(lv: &LevelVersion, failed: &[CheckResult]) -> String {
    format!(
        "would violate PodSecurity \"{lv}\": {}",
        aggregate_detail(failed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lv(level: Level, version: Version) -> LevelVersion {
        LevelVersion::new(level, version)
    }

    #[test]
    fn table_is_in_upstream_order_and_valid() {
        let baseline: Vec<_> = CHECKS
            .iter()
            .filter(|c| c.level == Level::Baseline)
            .collect();
        let restricted: Vec<_> = CHECKS
            .iter()
            .filter(|c| c.level == Level::Restricted)
            .collect();
        assert_eq!(baseline.len() + restricted.len(), CHECKS.len());
        // baseline first, then restricted
        assert!(CHECKS[..baseline.len()]
            .iter()
            .all(|c| c.level == Level::Baseline));
        for group in [&baseline, &restricted] {
            for w in group.windows(2) {
                assert!(
                    w[0].id.as_bytes() < w[1].id.as_bytes(),
                    "{} < {}",
                    w[0].id,
                    w[1].id
                );
            }
        }
        for c in CHECKS {
            assert!(!c.versions.is_empty());
            for w in c.versions.windows(2) {
                assert!(w[0].min_minor < w[1].min_minor, "{}", c.id);
            }
            for x in c.versions {
                assert!(x.min_minor <= NEWEST_POLICY_MINOR);
                for o in x.overrides {
                    assert_eq!(
                        c.level,
                        Level::Restricted,
                        "only restricted checks override"
                    );
                    let target = CHECKS.iter().find(|t| t.id == *o).expect("override exists");
                    assert_eq!(target.level, Level::Baseline);
                }
            }
        }
        let newest = CHECKS
            .iter()
            .flat_map(|c| c.versions.iter().map(|x| x.min_minor))
            .max();
        assert_eq!(newest, Some(NEWEST_POLICY_MINOR));
    }

    #[test]
    fn checks_per_level_and_version() {
        assert!(check_ids(&lv(Level::Privileged, Version::Latest)).is_empty());
        let baseline_all = [
            "appArmorProfile",
            "capabilities_baseline",
            "hostNamespaces",
            "hostPathVolumes",
            "hostPorts",
            "privileged",
            "procMount",
            "seLinuxOptions",
            "seccompProfile_baseline",
            "sysctls",
            "windowsHostProcess",
        ];
        for v in [
            Version::V1(0),
            Version::V1(18),
            Version::V1(33),
            Version::Latest,
        ] {
            assert_eq!(check_ids(&lv(Level::Baseline, v)), baseline_all);
        }
        assert_eq!(
            check_ids(&lv(Level::Restricted, Version::V1(0))),
            [
                "appArmorProfile",
                "capabilities_baseline",
                "hostNamespaces",
                "hostPorts",
                "privileged",
                "procMount",
                "seLinuxOptions",
                "seccompProfile_baseline",
                "sysctls",
                "windowsHostProcess",
                "restrictedVolumes",
                "runAsNonRoot",
            ]
        );
        assert_eq!(
            check_ids(&lv(Level::Restricted, Version::V1(19))),
            [
                "appArmorProfile",
                "capabilities_baseline",
                "hostNamespaces",
                "hostPorts",
                "privileged",
                "procMount",
                "seLinuxOptions",
                "sysctls",
                "windowsHostProcess",
                "allowPrivilegeEscalation",
                "restrictedVolumes",
                "runAsNonRoot",
                "seccompProfile_restricted",
            ]
        );
        let restricted_latest = [
            "appArmorProfile",
            "hostNamespaces",
            "hostPorts",
            "privileged",
            "procMount",
            "seLinuxOptions",
            "sysctls",
            "windowsHostProcess",
            "allowPrivilegeEscalation",
            "capabilities_restricted",
            "restrictedVolumes",
            "runAsNonRoot",
            "runAsUser",
            "seccompProfile_restricted",
        ];
        assert_eq!(
            check_ids(&lv(Level::Restricted, Version::Latest)),
            restricted_latest
        );
        assert_eq!(
            check_ids(&lv(Level::Restricted, Version::V1(10000))),
            restricted_latest
        );
    }

    #[test]
    fn version_selects_implementation() {
        // tcp_rmem is allowed from v1.32 (and so at latest and any newer version) only.
        let spec = json!({"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_rmem"}]}});
        let meta = json!({});
        for (version, fails) in [
            (Version::V1(31), true),
            (Version::V1(32), false),
            (Version::V1(40), false),
            (Version::Latest, false),
        ] {
            let r = evaluate(&lv(Level::Baseline, version), &meta, &spec);
            assert_eq!(r.len(), usize::from(fails), "{version}");
        }
    }

    #[test]
    fn aggregate_and_messages() {
        let failed = vec![
            CheckResult::forbid("host namespaces", "hostNetwork=true"),
            CheckResult::forbid("", ""),
            CheckResult::allow(),
            CheckResult::forbid(
                "privileged",
                "container \"c\" must not set securityContext.privileged=true",
            ),
        ];
        assert_eq!(
            aggregate_reason(&failed),
            "host namespaces, unknown forbidden reason, privileged"
        );
        let blv = lv(Level::Baseline, Version::Latest);
        assert_eq!(
            enforce_message(&blv, &failed),
            "violates PodSecurity \"baseline:latest\": host namespaces (hostNetwork=true), \
             unknown forbidden reason, privileged (container \"c\" must not set \
             securityContext.privileged=true)"
        );
        assert_eq!(
            warning_message(&lv(Level::Restricted, Version::V1(24)), &failed[..1]),
            "would violate PodSecurity \"restricted:v1.24\": host namespaces (hostNetwork=true)"
        );
    }

    #[test]
    fn enforce_message_for_a_pod() {
        let spec = json!({
            "hostNetwork": true,
            "containers": [{"name": "c", "image": "x", "securityContext": {"privileged": true}}],
        });
        let blv = lv(Level::Baseline, Version::Latest);
        let failed = evaluate(&blv, &json!({}), &spec);
        assert_eq!(
            enforce_message(&blv, &failed),
            "violates PodSecurity \"baseline:latest\": host namespaces (hostNetwork=true), \
             privileged (container \"c\" must not set securityContext.privileged=true)"
        );
    }

    #[test]
    fn restricted_message_for_a_bare_pod() {
        let spec = json!({"containers": [{"name": "nginx", "image": "nginx"}]});
        let rlv = lv(Level::Restricted, Version::Latest);
        let failed = evaluate(&rlv, &json!({"name": "nginx"}), &spec);
        assert_eq!(
            warning_message(&rlv, &failed),
            "would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false \
             (container \"nginx\" must set securityContext.allowPrivilegeEscalation=false), \
             unrestricted capabilities (container \"nginx\" must set \
             securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or \
             container \"nginx\" must set securityContext.runAsNonRoot=true), seccompProfile \
             (pod or container \"nginx\" must set securityContext.seccompProfile.type to \
             \"RuntimeDefault\" or \"Localhost\")"
        );
    }

    #[test]
    fn user_namespace_relaxation_is_opt_in() {
        let spec = json!({
            "hostUsers": false,
            "securityContext": {"runAsUser": 0},
            "containers": [{"name": "a", "securityContext": {"procMount": "Unmasked"}}],
        });
        let rlv = lv(Level::Restricted, Version::Latest);
        let strict = evaluate(&rlv, &json!({}), &spec);
        let reasons: Vec<_> = strict.iter().map(|r| r.forbidden_reason.as_str()).collect();
        assert!(reasons.contains(&"procMount"));
        assert!(reasons.contains(&"runAsNonRoot != true"));
        assert!(reasons.contains(&"runAsUser=0"));
        let opts = EvalOptions {
            relax_policy_for_user_namespace_pods: true,
        };
        let relaxed = evaluate_with(&opts, &rlv, &json!({}), &spec);
        let reasons: Vec<_> = relaxed
            .iter()
            .map(|r| r.forbidden_reason.as_str())
            .collect();
        assert!(!reasons.contains(&"procMount"));
        assert!(!reasons.contains(&"runAsNonRoot != true"));
        assert!(!reasons.contains(&"runAsUser=0"));
    }
}
