//! Pod Security Standards as upstream's pod-security-admission evaluates them
//! (k8s.io/pod-security-admission, Kubernetes 1.33): the `pod-security.kubernetes.io/{enforce,audit,warn}`
//! namespace labels and their `-version`s, the baseline and restricted checks over a pod's
//! metadata and spec (JSON, as the apiserver holds them), and upstream's messages
//! (`violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true), ...`).
//!
//! Module map (upstream file each mirrors):
//! - [`api`]: `api/constants.go`, `api/helpers.go` (levels, versions, label parsing).
//! - `checks`: `policy/checks.go`, `policy/registry.go` and the `policy/check_*.go` files.
//! - `pod`: `policy/visitor.go`, `policy/helpers.go` (JSON reads and message helpers).
//! - [`admission`]: `admission/admission.go`, `admission/response.go` and the in-tree plugin
//!   `plugin/pkg/admission/security/podsecurity/admission.go`.

pub mod admission;
pub mod api;
mod checks;
mod pod;

pub use admission::{
    Admission, Attributes, Cluster, Config, DefaultEvaluator, Denial, Evaluator, Exemptions,
    Operation, Response,
};
pub use api::{
    aggregate_messages, parse_policy, policy_from_labels, LabelError, Level, LevelVersion,
    ParseError, Policy, Version,
};
pub use checks::{
    aggregate_detail, aggregate_reason, check_ids, enforce_message, evaluate, evaluate_with,
    warning_message, CheckResult, EvalOptions, NEWEST_POLICY_MINOR, UNKNOWN_FORBIDDEN_REASON,
};
pub use pod::go_quote;

/// The failed checks of a whole pod object (its `metadata` and `spec`) at a level and version.
pub fn evaluate_pod(lv: &LevelVersion, pod: &serde_json::Value) -> Vec<CheckResult> {
    let null = serde_json::Value::Null;
    evaluate(
        lv,
        pod.get("metadata").unwrap_or(&null),
        pod.get("spec").unwrap_or(&null),
    )
}
