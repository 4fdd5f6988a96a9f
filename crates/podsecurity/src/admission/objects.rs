//! Which objects carry a pod spec and where, and which pod updates are re-checked, as
//! upstream's `staging/src/k8s.io/pod-security-admission/admission/admission.go` defines them
//! (`DefaultPodSpecExtractor`, `isSignificantPodUpdate`).

use serde_json::Value;

use super::{field_or_null, NULL};
use crate::pod::{list, name, object, string_or_empty};

/// The resources whose objects carry a pod spec (upstream's `defaultPodSpecResources`).
const POD_SPEC_RESOURCES: &[(&str, &str)] = &[
    ("", "pods"),
    ("", "replicationcontrollers"),
    ("", "podtemplates"),
    ("apps", "replicasets"),
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
];

/// The kind each pod-spec resource holds.
fn expected_kind(group: &str, resource: &str) -> Option<&'static str> {
    Some(match (group, resource) {
        ("", "pods") => "Pod",
        ("", "replicationcontrollers") => "ReplicationController",
        ("", "podtemplates") => "PodTemplate",
        ("apps", "replicasets") => "ReplicaSet",
        ("apps", "deployments") => "Deployment",
        ("apps", "statefulsets") => "StatefulSet",
        ("apps", "daemonsets") => "DaemonSet",
        ("batch", "jobs") => "Job",
        ("batch", "cronjobs") => "CronJob",
        _ => return None,
    })
}

/// For an object that is not of its pod-spec resource's kind (or not an object), the Go
/// `GroupVersionKind` text upstream's extractor reports (`/v1, Kind=Namespace`).
pub(super) fn unexpected_kind(group: &str, resource: &str, obj: &Value) -> Option<String> {
    let expected = expected_kind(group, resource)?;
    if super::is_kind(obj, expected) {
        return None;
    }
    let api_version = string_or_empty(obj, "apiVersion");
    let (g, v) = api_version.split_once('/').unwrap_or(("", &api_version));
    Some(format!("{g}/{v}, Kind={}", string_or_empty(obj, "kind")))
}

/// Whether objects of a group and resource carry a pod spec.
pub fn has_pod_spec(group: &str, resource: &str) -> bool {
    POD_SPEC_RESOURCES.contains(&(group, resource))
}

/// A `PodTemplateSpec`'s metadata and spec; missing parts read as empty (Go's zero value).
fn template(t: &Value) -> (&Value, &Value) {
    (field_or_null(t, "metadata"), field_or_null(t, "spec"))
}

/// The metadata and spec to check in an object of a pod-spec resource: the pod's own, or its
/// template's (`spec.template`, `template` for PodTemplates, `spec.jobTemplate.spec.template`
/// for CronJobs). `None` for other resources and for a ReplicationController without a
/// template (upstream skips it; the other templates are never nil in Go and evaluate as
/// empty when missing).
pub fn pod_template<'a>(
    group: &str,
    resource: &str,
    obj: &'a Value,
) -> Option<(&'a Value, &'a Value)> {
    let spec = field_or_null(obj, "spec");
    match (group, resource) {
        ("", "pods") => Some((field_or_null(obj, "metadata"), spec)),
        ("", "podtemplates") => Some(template(field_or_null(obj, "template"))),
        ("", "replicationcontrollers") => object(spec, "template").map(template),
        ("apps", "replicasets" | "deployments" | "statefulsets" | "daemonsets")
        | ("batch", "jobs") => Some(template(field_or_null(spec, "template"))),
        ("batch", "cronjobs") => {
            let job_spec = field_or_null(field_or_null(spec, "jobTemplate"), "spec");
            Some(template(field_or_null(job_spec, "template")))
        }
        _ => None,
    }
}

fn image(c: &Value) -> std::borrow::Cow<'_, str> {
    string_or_empty(c, "image")
}

/// Upstream's `isSignificantPodUpdate`: an update is re-checked only when the number of
/// containers or init containers changes, an image changes, or an ephemeral container is
/// added or changes image. Label, annotation, toleration, activeDeadlineSeconds, resize and
/// status changes are not.
pub fn is_significant_pod_update(pod: &Value, old_pod: &Value) -> bool {
    let spec = pod.get("spec").unwrap_or(&NULL);
    let old_spec = old_pod.get("spec").unwrap_or(&NULL);
    for key in ["containers", "initContainers"] {
        let (new, old) = (list(spec, key), list(old_spec, key));
        if new.len() != old.len() {
            return true;
        }
        if new.iter().zip(old).any(|(n, o)| image(n) != image(o)) {
            return true;
        }
    }
    let old_ephemeral = list(old_spec, "ephemeralContainers");
    list(spec, "ephemeralContainers").iter().any(|c| {
        match old_ephemeral.iter().find(|o| name(o) == name(c)) {
            None => true,
            Some(o) => image(o) != image(c),
        }
    })
}
