//! Upstream's fixture run (`staging/src/k8s.io/pod-security-admission/test/run.go` with the
//! generators of `test/fixtures*.go`), over this crate instead of a live apiserver: for each
//! level and each version v1.0 .. v1.34 and `latest`, the minimal valid pods pass, every pass
//! fixture of every check in force passes, and every fail fixture is denied as a pod (with the
//! fixture's expected substring in the error) and warned about as a Deployment.

mod common;

use std::collections::HashMap;

use podsecurity::admission::{Admission, Attributes, Cluster, Config, Operation};
use podsecurity::{
    enforce_message, evaluate_pod, Level, LevelVersion, Version, UNKNOWN_FORBIDDEN_REASON,
};
use serde_json::{json, Map, Value};

use common::generators::{self, Generator};

/// Upstream's 1.33 checks: ID, restricted-only, first version.
const CHECKS: &[(&str, bool, u64)] = &[
    ("allowPrivilegeEscalation", true, 8),
    ("appArmorProfile", false, 0),
    ("capabilities_baseline", false, 0),
    ("capabilities_restricted", true, 22),
    ("hostNamespaces", false, 0),
    ("hostPathVolumes", false, 0),
    ("hostPorts", false, 0),
    ("privileged", false, 0),
    ("procMount", false, 0),
    ("restrictedVolumes", true, 0),
    ("runAsNonRoot", true, 0),
    ("runAsUser", true, 23),
    ("seLinuxOptions", false, 0),
    ("seccompProfile_baseline", false, 0),
    ("seccompProfile_restricted", true, 19),
    ("sysctls", false, 0),
    ("windowsHostProcess", false, 0),
];

/// Upstream's `checksForLevelAndVersion`: every check in force by its first version, baseline
/// checks included for restricted (even those restricted checks replace).
fn checks_for(restricted: bool, minor: u64) -> Vec<&'static str> {
    CHECKS
        .iter()
        .filter(|(_, r, min)| *min <= minor && (!r || restricted))
        .map(|(id, _, _)| *id)
        .collect()
}

/// Upstream's `getFixtures`: the newest generator registered at or before the version.
fn generator_for<'a>(
    all: &'a [Generator],
    check: &str,
    restricted: bool,
    minor: u64,
) -> &'a Generator {
    all.iter()
        .filter(|g| g.check == check && (!g.restricted_only || restricted) && g.min_minor <= minor)
        .max_by_key(|g| g.min_minor)
        .unwrap_or_else(|| panic!("no fixture generator for {check} at v1.{minor}"))
}

struct OneNamespace(Map<String, Value>);

impl Cluster for OneNamespace {
    fn namespace_labels(&self, _: &str) -> Result<Map<String, Value>, String> {
        Ok(self.0.clone())
    }
    fn list_pods(&self, _: &str) -> Result<Vec<Value>, String> {
        Ok(Vec::new())
    }
}

struct Run {
    lv: LevelVersion,
    admission: Admission,
    cluster: OneNamespace,
    counts: HashMap<&'static str, usize>,
}

impl Run {
    fn new(lv: LevelVersion) -> Self {
        let mut labels = Map::new();
        for mode in ["enforce", "warn"] {
            labels.insert(
                format!("pod-security.kubernetes.io/{mode}"),
                json!(lv.level.as_str()),
            );
            labels.insert(
                format!("pod-security.kubernetes.io/{mode}-version"),
                json!(lv.version.to_string()),
            );
        }
        Run {
            lv,
            admission: Admission::new(Config::default()),
            cluster: OneNamespace(labels),
            counts: HashMap::new(),
        }
    }

    fn admit(&self, group: &str, resource: &str, obj: &Value) -> podsecurity::Response {
        let attrs = Attributes {
            operation: Operation::Create,
            group,
            resource,
            subresource: "",
            namespace: "podsecurity-test",
            name: "test",
            username: "tester",
            object: obj,
            old_object: None,
        };
        self.admission.validate(&attrs, &self.cluster)
    }

    fn deployment(pod: &Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "test"},
               "spec": {"template": {"metadata": pod.get("metadata").cloned().unwrap_or(json!({})), "spec": pod["spec"]}}})
    }

    fn pass(&mut self, what: &str, pod: &Value) {
        let mut pod = pod.clone();
        common::apply_defaults(&mut pod);
        let failed = evaluate_pod(&self.lv, &pod);
        assert!(
            failed.is_empty(),
            "{} {what}: {}\n{pod}",
            self.lv,
            enforce_message(&self.lv, &failed)
        );
        let r = self.admit("", "pods", &pod);
        assert!(
            r.allowed && r.warnings.is_empty(),
            "{} {what}: {r:?}",
            self.lv
        );
        let r = self.admit("apps", "deployments", &Self::deployment(&pod));
        assert!(
            r.allowed && r.warnings.is_empty(),
            "{} {what} deployment: {r:?}",
            self.lv
        );
        *self.counts.entry("pass").or_default() += 1;
    }

    fn fail(&mut self, what: &str, pod: &Value, expect: &str) {
        let mut pod = pod.clone();
        common::apply_defaults(&mut pod);
        let failed = evaluate_pod(&self.lv, &pod);
        let msg = enforce_message(&self.lv, &failed);
        assert!(
            !failed.is_empty(),
            "{} {what}: expected failure\n{pod}",
            self.lv
        );
        assert!(
            msg.contains(expect),
            "{} {what}: {msg:?} lacks {expect:?}",
            self.lv
        );
        assert!(
            !msg.contains(UNKNOWN_FORBIDDEN_REASON),
            "{} {what}: {msg}",
            self.lv
        );
        let r = self.admit("", "pods", &pod);
        assert!(!r.allowed, "{} {what}: pod admitted", self.lv);
        let denial = r
            .denial
            .as_ref()
            .map(|d| format!("{d:?}"))
            .unwrap_or_default();
        assert!(denial.contains(expect), "{} {what}: {denial}", self.lv);
        let r = self.admit("apps", "deployments", &Self::deployment(&pod));
        assert!(r.allowed, "{} {what}: deployment denied", self.lv);
        let warnings = r.warnings.join("; ");
        assert!(
            warnings.contains(expect),
            "{} {what}: warnings {warnings:?} lack {expect:?}",
            self.lv
        );
        assert!(warnings.starts_with(&format!("would violate PodSecurity \"{}\": ", self.lv)));
        *self.counts.entry("fail").or_default() += 1;
    }
}

#[test]
fn upstream_fixtures_for_every_level_and_version() {
    let all = generators::all();
    let mut total_pass = 0;
    let mut total_fail = 0;
    let versions = (0..=34).map(Version::V1).chain([Version::Latest]);
    for level in [Level::Baseline, Level::Restricted] {
        for version in versions.clone() {
            let restricted = level == Level::Restricted;
            let minor = match version {
                Version::V1(m) => m.min(podsecurity::NEWEST_POLICY_MINOR),
                Version::Latest => podsecurity::NEWEST_POLICY_MINOR,
            };
            let mut run = Run::new(LevelVersion::new(level, version));
            let base = common::minimal_valid_pod(restricted, minor);
            run.pass("base", &base);
            if restricted {
                run.pass("base_linux", &common::minimal_valid_linux_pod(minor));
                run.pass("base_windows", &common::minimal_valid_windows_pod(minor));
            }
            for check in checks_for(restricted, minor) {
                let g = generator_for(&all, check, restricted, minor);
                let expect = g.expect.unwrap_or(g.check);
                for (i, pod) in (g.pass)(&base).iter().enumerate() {
                    run.pass(&format!("{check} pass {i}"), pod);
                }
                let fails = (g.fail)(&base);
                assert!(!fails.is_empty(), "{check} has no failure fixtures");
                for (i, pod) in fails.iter().enumerate() {
                    run.fail(&format!("{check} fail {i}"), pod, expect);
                }
            }
            total_pass += run.counts.get("pass").copied().unwrap_or(0);
            total_fail += run.counts.get("fail").copied().unwrap_or(0);
        }
    }
    println!("fixtures: {total_pass} passing pods, {total_fail} failing pods");
    assert!(
        total_pass > 500 && total_fail > 1500,
        "{total_pass} / {total_fail}"
    );
}

#[test]
fn windows_pods_are_exempt_from_os_specific_restricted_checks_from_1_25() {
    let lv = |m| LevelVersion::new(Level::Restricted, Version::V1(m));
    let windows = common::minimal_valid_windows_pod(25);
    assert!(evaluate_pod(&lv(25), &windows).is_empty());
    let failed = evaluate_pod(&lv(24), &windows);
    let reasons: Vec<&str> = failed.iter().map(|r| r.forbidden_reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "allowPrivilegeEscalation != false",
            "unrestricted capabilities",
            "seccompProfile"
        ]
    );
}
