//! Namespace requests, as upstream's
//! `staging/src/k8s.io/pod-security-admission/admission/admission.go` handles them
//! (`ValidateNamespace`, `EvaluatePodsInNamespace`, `prioritizePods`, `decoratePodWarnings`,
//! `exemptNamespaceWarning`): invalid labels are rejected, and when the enforce level
//! tightens the existing pods are checked against it and the violations returned as warnings.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};

use super::{
    field_or_null, is_kind, pod_name, Admission, Attributes, Cluster, Denial, Evaluator, Operation,
    Response,
};
use crate::api::{
    Level, LevelVersion, Policy, AUDIT_LEVEL_LABEL, AUDIT_VERSION_LABEL, ENFORCE_LEVEL_LABEL,
    ENFORCE_VERSION_LABEL, WARN_LEVEL_LABEL, WARN_VERSION_LABEL,
};
use crate::checks::aggregate_reason;
use crate::pod::{list, string, string_or_empty};

fn labels_of(ns: &Value) -> Map<String, Value> {
    field_or_null(ns, "metadata")
        .get("labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn invalid(errors: Vec<crate::api::LabelError>) -> Response {
    Response {
        allowed: false,
        denial: Some(Denial::Invalid(errors)),
        warnings: Vec::new(),
        audit_annotations: BTreeMap::new(),
    }
}

impl<E: Evaluator> Admission<E> {
    /// Upstream's `ValidateNamespace`.
    pub fn validate_namespace(&self, attrs: &Attributes<'_>, cluster: &dyn Cluster) -> Response {
        if !attrs.subresource.is_empty() {
            return Response::allow();
        }
        if !is_kind(attrs.object, "Namespace") {
            return Response::bad_request("failed to decode namespace");
        }
        let labels = labels_of(attrs.object);
        let ns_name = string_or_empty(field_or_null(attrs.object, "metadata"), "name").into_owned();
        let (new_policy, new_errors) = self.policy_to_evaluate(&labels);
        let exempt_warning = |policy: &Policy| -> Response {
            let mut r = Response::allow();
            let w = self.exempt_namespace_warning(&ns_name, policy, &labels);
            if !w.is_empty() {
                r.warnings.push(w);
            }
            r
        };
        match attrs.operation {
            Operation::Create => {
                if !new_errors.is_empty() {
                    return invalid(new_errors);
                }
                if self.exempt_namespace(attrs.namespace) {
                    return exempt_warning(&new_policy);
                }
                Response::allow()
            }
            Operation::Update => {
                let Some(old) = attrs.old_object else {
                    return Response::bad_request("failed to decode  old object");
                };
                if !is_kind(old, "Namespace") {
                    return Response::bad_request("failed to decode  old namespace");
                }
                let (old_policy, old_errors) = self.policy_to_evaluate(&labels_of(old));
                if !new_errors.is_empty() && (old_errors.is_empty() || new_errors != old_errors) {
                    return invalid(new_errors);
                }
                if new_policy.enforce == old_policy.enforce
                    || new_policy.enforce.level == Level::Privileged
                    || (new_policy.enforce.version == old_policy.enforce.version
                        && new_policy.enforce.level <= old_policy.enforce.level)
                {
                    return Response::allow();
                }
                if self.exempt_namespace(attrs.namespace) {
                    return exempt_warning(&new_policy);
                }
                let mut r = Response::allow();
                r.warnings = match cluster.list_pods(&ns_name) {
                    Ok(pods) => {
                        self.evaluate_pods_in_namespace(&ns_name, &new_policy.enforce, pods)
                    }
                    Err(_) => {
                        vec![
                            "failed to list pods while checking new PodSecurity enforce level"
                                .into(),
                        ]
                    }
                };
                r
            }
            Operation::Delete | Operation::Connect => Response::allow(),
        }
    }

    /// Upstream's `EvaluatePodsInNamespace` over the namespace's pods: which of them (exempt
    /// runtime classes skipped, one pod per controller first, at most
    /// `namespace_max_pods_to_check`) violate `enforce`, grouped by their forbidden reasons.
    pub fn evaluate_pods_in_namespace(
        &self,
        namespace: &str,
        enforce: &LevelVersion,
        pods: Vec<Value>,
    ) -> Vec<String> {
        let prioritized = self.prioritize_pods(pods);
        let total = prioritized.len();
        let checked = total.min(self.config.namespace_max_pods_to_check);
        let mut order: Vec<String> = Vec::new();
        let mut counts: BTreeMap<String, (String, usize)> = BTreeMap::new();
        for pod in &prioritized[..checked] {
            let meta = field_or_null(pod, "metadata");
            let spec = field_or_null(pod, "spec");
            let results = self.evaluator.evaluate_pod(enforce, meta, spec);
            if results.iter().all(|r| r.allowed) {
                continue;
            }
            let warning = aggregate_reason(&results);
            let name = pod_name(pod);
            match counts.get_mut(&warning) {
                Some((first, count)) => {
                    if name < *first {
                        *first = name;
                    }
                    *count += 1;
                }
                None => {
                    order.push(warning.clone());
                    counts.insert(warning, (name, 1));
                }
            }
        }
        let mut warnings = Vec::new();
        if checked < total {
            warnings.push(format!(
                "new PodSecurity enforce level only checked against the first {checked} of {total} existing pods"
            ));
        }
        if !order.is_empty() {
            warnings.push(format!(
                "existing pods in namespace \"{namespace}\" violate the new PodSecurity enforce level \"{enforce}\""
            ));
        }
        let mut pod_warnings: Vec<String> = order
            .into_iter()
            .map(|w| match counts.get(&w) {
                Some((first, 1)) => format!("{first}: {w}"),
                Some((first, 2)) => format!("{first} (and 1 other pod): {w}"),
                Some((first, n)) => format!("{first} (and {} other pods): {w}", n - 1),
                None => w,
            })
            .collect();
        pod_warnings.sort();
        warnings.extend(pod_warnings);
        warnings
    }

    /// Upstream's `prioritizePods`: pods of exempt runtime classes dropped; pods without a
    /// controller and the first pod of each controller first, further replicas after.
    pub(super) fn prioritize_pods(&self, pods: Vec<Value>) -> Vec<Value> {
        let mut first = Vec::with_capacity(pods.len());
        let mut replicas = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for pod in pods {
            if self.exempt_runtime_class(field_or_null(&pod, "spec")) {
                continue;
            }
            match controller_uid(&pod) {
                None => first.push(pod),
                Some(uid) if seen.contains(&uid) => replicas.push(pod),
                Some(uid) => {
                    seen.insert(uid);
                    first.push(pod);
                }
            }
        }
        first.extend(replicas);
        first
    }

    /// Upstream's `exemptNamespaceWarning`: for an exempt namespace whose labels set a
    /// non-privileged policy other than the default, `namespace "x" is exempt from Pod
    /// Security, and the policy (enforce=..., audit=..., warn=...) will be ignored`; else empty.
    pub fn exempt_namespace_warning(
        &self,
        namespace: &str,
        policy: &Policy,
        labels: &Map<String, Value>,
    ) -> String {
        if policy.fully_privileged() || policy.equivalent(&self.config.defaults) {
            return String::new();
        }
        let has = |k: &str| labels.contains_key(k);
        let mut parts = Vec::new();
        for (mode, lv, level_label, version_label) in [
            (
                "enforce",
                &policy.enforce,
                ENFORCE_LEVEL_LABEL,
                ENFORCE_VERSION_LABEL,
            ),
            (
                "audit",
                &policy.audit,
                AUDIT_LEVEL_LABEL,
                AUDIT_VERSION_LABEL,
            ),
            ("warn", &policy.warn, WARN_LEVEL_LABEL, WARN_VERSION_LABEL),
        ] {
            if lv.level != Level::Privileged && (has(level_label) || has(version_label)) {
                parts.push(format!("{mode}={lv}"));
            }
        }
        format!(
            "namespace \"{namespace}\" is exempt from Pod Security, and the policy ({}) will be ignored",
            parts.join(", ")
        )
    }
}

/// The UID of a pod's controller: its first owner reference with `controller: true`.
fn controller_uid(pod: &Value) -> Option<String> {
    list(field_or_null(pod, "metadata"), "ownerReferences")
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .map(|r| string(r, "uid").map(|u| u.into_owned()).unwrap_or_default())
}
