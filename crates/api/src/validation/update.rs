//! Update rules: the metadata and spec fields that may not change once an object exists.

use serde_json::{Map, Value};

use super::{go_label_selector, go_value, s, FieldError};
use crate::registry::ResourceInfo;

/// Upstream's ValidatePodUpdate message.
pub const POD_UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// Upstream's ValidateStatefulSetUpdate message.
pub const STATEFULSET_UPDATE_FORBIDDEN: &str = "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";

/// Upstream's PVC update message.
pub const PVC_UPDATE_FORBIDDEN: &str = "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims";

pub(crate) fn validate_immutable(
    resource: &ResourceInfo,
    new: &Value,
    old: &Value,
    errs: &mut Vec<FieldError>,
) {
    for field in ["name", "namespace", "uid", "creationTimestamp"] {
        // An empty value means "unchanged": the apiserver carries it over from the old object.
        let n = new.pointer(&format!("/metadata/{field}"));
        let o = old.pointer(&format!("/metadata/{field}"));
        if norm(n).is_some() && norm(n) != norm(o) {
            errs.push(FieldError::invalid(
                format!("metadata.{field}"),
                n.unwrap_or(&Value::String(String::new())),
                "field is immutable",
            ));
        }
    }
    match (resource.group, resource.kind) {
        ("", "Pod") => validate_pod_update(new, old, errs),
        ("apps", "Deployment") | ("apps", "ReplicaSet") | ("apps", "DaemonSet") => {
            immutable_selector(new, old, errs)
        }
        ("apps", "StatefulSet") => validate_statefulset_update(new, old, errs),
        ("batch", "Job") => validate_job_update(new, old, errs),
        ("", "Service") => validate_service_update(new, old, errs),
        ("", "PersistentVolumeClaim") => validate_pvc_update(new, old, errs),
        ("", "ConfigMap") | ("", "Secret") => validate_immutable_data(resource, new, old, errs),
        ("", "Node") => validate_node_update(new, old, errs),
        ("scheduling.k8s.io", "PriorityClass") => {
            crate::priority::validate_priority_class_update(new, old, errs)
        }
        (super::rbac::GROUP, "RoleBinding" | "ClusterRoleBinding") => {
            super::rbac::validate_binding_update(new, old, errs)
        }
        ("discovery.k8s.io", "EndpointSlice")
            if new.get("addressType") != old.get("addressType") =>
        {
            errs.push(FieldError::invalid(
                "addressType",
                new.get("addressType").unwrap_or(&Value::Null),
                "field is immutable",
            ));
        }
        _ => {}
    }
}

/// Null, absent and empty strings are the same unset value.
fn norm(v: Option<&Value>) -> Option<&Value> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        other => other,
    }
}

fn spec(v: &Value) -> Map<String, Value> {
    v.get("spec")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn immutable_selector(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let n = new.pointer("/spec/selector");
    let o = old.pointer("/spec/selector");
    if norm(n) != norm(o) {
        errs.push(FieldError::invalid_raw(
            "spec.selector",
            &go_label_selector(n.unwrap_or(&Value::Null)),
            "field is immutable",
        ));
    }
}

fn validate_pod_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let new_spec = spec(new);
    let mut patched = spec(old);
    // Images may change (container counts may not).
    for list in ["containers", "initContainers"] {
        let new_list = new_spec.get(list).and_then(Value::as_array);
        if let (Some(new_list), Some(Value::Array(old_list))) = (new_list, patched.get_mut(list)) {
            if new_list.len() == old_list.len() {
                for (o, n) in old_list.iter_mut().zip(new_list) {
                    if let (Some(om), Some(image)) = (o.as_object_mut(), n.get("image")) {
                        om.insert("image".into(), image.clone());
                    }
                }
            }
        }
    }
    // activeDeadlineSeconds may be set or lowered, never unset or raised.
    let old_deadline = patched.get("activeDeadlineSeconds").and_then(Value::as_i64);
    let new_deadline = new_spec
        .get("activeDeadlineSeconds")
        .and_then(Value::as_i64);
    match (old_deadline, new_deadline) {
        (Some(_), None) => errs.push(FieldError::invalid(
            "spec.activeDeadlineSeconds",
            &Value::Null,
            "must not update from a positive integer to nil value",
        )),
        (Some(o), Some(n)) if n > o => errs.push(FieldError::invalid(
            "spec.activeDeadlineSeconds",
            &Value::from(n),
            "must be less than or equal to previous value",
        )),
        _ => {}
    }
    match new_spec.get("activeDeadlineSeconds") {
        Some(v) => {
            patched.insert("activeDeadlineSeconds".into(), v.clone());
        }
        None => {
            patched.remove("activeDeadlineSeconds");
        }
    }
    // Tolerations may only be added.
    let old_tolerations = patched
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let new_tolerations = new_spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if old_tolerations.iter().all(|t| new_tolerations.contains(t)) {
        if new_tolerations.is_empty() {
            patched.remove("tolerations");
        } else {
            patched.insert("tolerations".into(), Value::Array(new_tolerations));
        }
    }
    // terminationGracePeriodSeconds: a negative value may become 1.
    let old_grace = patched
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64);
    let new_grace = new_spec
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64);
    if old_grace.is_some_and(|g| g < 0) && new_grace == Some(1) {
        patched.insert("terminationGracePeriodSeconds".into(), Value::from(1));
    }
    if strip_nulls(&Value::Object(patched)) != strip_nulls(&Value::Object(new_spec)) {
        errs.push(FieldError::forbidden("spec", POD_UPDATE_FORBIDDEN));
    }
}

/// Removes null members (absent and null compare equal).
fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

fn validate_statefulset_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let new_spec = spec(new);
    let mut patched = spec(old);
    for k in [
        "replicas",
        "ordinals",
        "template",
        "updateStrategy",
        "revisionHistoryLimit",
        "persistentVolumeClaimRetentionPolicy",
        "minReadySeconds",
    ] {
        match new_spec.get(k) {
            Some(v) => {
                patched.insert(k.into(), v.clone());
            }
            None => {
                patched.remove(k);
            }
        }
    }
    if strip_nulls(&Value::Object(patched)) != strip_nulls(&Value::Object(new_spec)) {
        errs.push(FieldError::forbidden("spec", STATEFULSET_UPDATE_FORBIDDEN));
    }
}

fn validate_job_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    immutable_selector(new, old, errs);
    for k in ["completionMode", "podFailurePolicy", "backoffLimitPerIndex"] {
        let n = new.pointer(&format!("/spec/{k}"));
        if norm(n) != norm(old.pointer(&format!("/spec/{k}"))) {
            errs.push(FieldError::invalid(
                format!("spec.{k}"),
                n.unwrap_or(&Value::Null),
                "field is immutable",
            ));
        }
    }
    let completions_new = new.pointer("/spec/completions");
    let completions_old = old.pointer("/spec/completions");
    let indexed = s(&Value::Object(spec(new)), "completionMode") == "Indexed";
    if norm(completions_new) != norm(completions_old) && !indexed {
        errs.push(FieldError::invalid(
            "spec.completions",
            completions_new.unwrap_or(&Value::Null),
            "field is immutable",
        ));
    }
    // The template may change only while the job is suspended (scheduling directives).
    let suspended = old
        .pointer("/spec/suspend")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let nt = new.pointer("/spec/template").map(strip_nulls);
    let ot = old.pointer("/spec/template").map(strip_nulls);
    if nt != ot && !suspended {
        errs.push(FieldError::invalid(
            "spec.template",
            nt.as_ref().unwrap_or(&Value::Null),
            "field is immutable",
        ));
    }
}

fn validate_service_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let new_type = new
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    let old_type = old
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    if new_type == "ExternalName" || old_type == "ExternalName" {
        return;
    }
    let old_ip = old
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("");
    let new_ip = new
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("");
    // An empty clusterIP on update means "keep the allocated one" (the apiserver carries it over).
    if !old_ip.is_empty() && !new_ip.is_empty() && old_ip != new_ip {
        let ips: Vec<String> = new
            .pointer("/spec/clusterIPs")
            .and_then(Value::as_array)
            .map(|l| l.iter().map(go_value).collect())
            .unwrap_or_else(|| vec![go_value(&Value::String(new_ip.to_string()))]);
        errs.push(FieldError::invalid_raw(
            "spec.clusterIPs[0]",
            &format!("[]string{{{}}}", ips.join(", ")),
            "may not change once set",
        ));
    }
}

fn validate_pvc_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let mut n = spec(new);
    let mut o = spec(old);
    for m in [&mut n, &mut o] {
        if let Some(Value::Object(r)) = m.get_mut("resources") {
            r.remove("requests");
        }
        m.remove("volumeAttributesClassName");
        // volumeName may be set once by the binder.
        m.remove("volumeName");
    }
    let old_volume = old
        .pointer("/spec/volumeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let new_volume = new
        .pointer("/spec/volumeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if strip_nulls(&Value::Object(n)) != strip_nulls(&Value::Object(o))
        || (!old_volume.is_empty() && old_volume != new_volume)
    {
        errs.push(FieldError::forbidden("spec", PVC_UPDATE_FORBIDDEN));
    }
}

fn validate_immutable_data(
    resource: &ResourceInfo,
    new: &Value,
    old: &Value,
    errs: &mut Vec<FieldError>,
) {
    let old_immutable = old.get("immutable").and_then(Value::as_bool) == Some(true);
    if old_immutable {
        if new.get("immutable").and_then(Value::as_bool) != Some(true) {
            errs.push(FieldError::forbidden(
                "immutable",
                "field is immutable when `immutable` is set",
            ));
        }
        for field in ["data", "binaryData"] {
            if norm(new.get(field)) != norm(old.get(field)) {
                errs.push(FieldError::forbidden(
                    field,
                    "field is immutable when `immutable` is set",
                ));
            }
        }
    }
    if resource.kind == "Secret" {
        let n = s(new, "type");
        let o = s(old, "type");
        if n != o && !(n.is_empty() || o.is_empty()) {
            errs.push(FieldError::invalid(
                "type",
                &Value::String(n.into()),
                "field is immutable",
            ));
        }
    }
}

fn validate_node_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let old_cidrs = old.pointer("/spec/podCIDRs").and_then(Value::as_array);
    let new_cidrs = new.pointer("/spec/podCIDRs").and_then(Value::as_array);
    if let Some(o) = old_cidrs.filter(|o| !o.is_empty()) {
        if new_cidrs != Some(o) {
            errs.push(FieldError::forbidden(
                "spec.podCIDRs",
                "node updates may not change podCIDR except from \"\" to valid",
            ));
        }
    }
    let old_cidr = old
        .pointer("/spec/podCIDR")
        .and_then(Value::as_str)
        .unwrap_or("");
    let new_cidr = new
        .pointer("/spec/podCIDR")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !old_cidr.is_empty() && old_cidr != new_cidr {
        errs.push(FieldError::forbidden(
            "spec.podCIDR",
            "node updates may not change podCIDR except from \"\" to valid",
        ));
    }
    let old_provider = old
        .pointer("/spec/providerID")
        .and_then(Value::as_str)
        .unwrap_or("");
    let new_provider = new
        .pointer("/spec/providerID")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !old_provider.is_empty() && old_provider != new_provider {
        errs.push(FieldError::forbidden(
            "spec.providerID",
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{messages, res};
    use super::super::validate_update;
    use super::*;
    use crate::defaults;
    use serde_json::json;

    fn pod() -> Value {
        let mut p = json!({"metadata": {"name": "p", "namespace": "default", "uid": "u1"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "demo-web:v1"}],
                "tolerations": [{"key": "a", "operator": "Exists"}]}});
        defaults::apply(res("pods"), &mut p);
        p
    }

    fn upd(plural: &str, new: &Value, old: &Value) -> Vec<String> {
        messages(&validate_update(res(plural), new, old))
    }

    #[test]
    fn pod_image_change_is_allowed() {
        let old = pod();
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("demo-web:v2");
        new["metadata"]["labels"] = json!({"x": "y"});
        new["spec"]["activeDeadlineSeconds"] = json!(100);
        new["spec"]["tolerations"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": "b", "operator": "Exists"}));
        assert!(upd("pods", &new, &old).is_empty());
    }

    #[test]
    fn pod_other_changes_are_forbidden() {
        let old = pod();
        let mut new = old.clone();
        new["spec"]["containers"][0]["name"] = json!("d");
        assert_eq!(
            upd("pods", &new, &old),
            vec![format!("spec: Forbidden: {POD_UPDATE_FORBIDDEN}")]
        );
        let mut new = old.clone();
        new["spec"]["nodeName"] = json!("n2");
        assert_eq!(upd("pods", &new, &old).len(), 1);
        let mut new = old.clone();
        new["spec"]["tolerations"] = json!([]);
        assert_eq!(upd("pods", &new, &old).len(), 1);
    }

    #[test]
    fn metadata_name_is_immutable() {
        let old = pod();
        let mut new = old.clone();
        new["metadata"]["uid"] = json!("u2");
        assert_eq!(
            upd("pods", &new, &old),
            vec!["metadata.uid: Invalid value: \"u2\": field is immutable"]
        );
        let mut omitted = old.clone();
        omitted["metadata"].as_object_mut().unwrap().remove("uid");
        assert!(upd("pods", &omitted, &old).is_empty());
        let mut renamed = old.clone();
        renamed["metadata"]["name"] = json!("q");
        assert_eq!(
            upd("pods", &renamed, &old),
            vec!["metadata.name: Invalid value: \"q\": field is immutable"]
        );
    }

    fn deploy(app: &str) -> Value {
        let mut d = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {
            "selector": {"matchLabels": {"app": app}},
            "template": {"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        defaults::apply(res("deployments"), &mut d);
        d
    }

    #[test]
    fn deployment_selector_is_immutable() {
        assert_eq!(
            upd("deployments", &deploy("web2"), &deploy("web")),
            vec!["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"]
        );
        let mut scaled = deploy("web");
        scaled["spec"]["replicas"] = json!(5);
        assert!(upd("deployments", &scaled, &deploy("web")).is_empty());
    }

    #[test]
    fn statefulset_spec_is_mostly_immutable() {
        let mut old = json!({"metadata": {"name": "db"}, "spec": {"serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        defaults::apply(res("statefulsets"), &mut old);
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(3);
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("j");
        assert!(upd("statefulsets", &new, &old).is_empty());
        new["spec"]["serviceName"] = json!("other");
        assert_eq!(
            upd("statefulsets", &new, &old),
            vec![format!("spec: Forbidden: {STATEFULSET_UPDATE_FORBIDDEN}")]
        );
    }

    #[test]
    fn service_cluster_ip_may_not_change() {
        let mut old = json!({"metadata": {"name": "web"}, "spec": {"clusterIP": "10.96.0.5", "ports": [{"port": 80}]}});
        defaults::apply(res("services"), &mut old);
        let mut new = old.clone();
        new["spec"]["clusterIP"] = json!("10.96.0.6");
        new["spec"]["clusterIPs"] = json!(["10.96.0.6"]);
        assert_eq!(
            upd("services", &new, &old),
            vec!["spec.clusterIPs[0]: Invalid value: []string{\"10.96.0.6\"}: may not change once set"]
        );
        let mut ext = new.clone();
        ext["spec"] = json!({"type": "ExternalName", "externalName": "x.example.com"});
        assert!(upd("services", &ext, &old).is_empty());
    }

    #[test]
    fn job_template_and_pvc() {
        let mut old = json!({"metadata": {"name": "j", "uid": "u"}, "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}});
        defaults::apply(res("jobs"), &mut old);
        let mut new = old.clone();
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("j");
        let m = upd("jobs", &new, &old);
        assert_eq!(m.len(), 1);
        assert!(m[0].starts_with("spec.template: Invalid value: "), "{m:?}");
        assert!(m[0].ends_with(": field is immutable"));

        let old = json!({"metadata": {"name": "c"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
        let mut new = old.clone();
        new["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        assert!(upd("persistentvolumeclaims", &new, &old).is_empty());
        new["spec"]["accessModes"] = json!(["ReadWriteMany"]);
        assert_eq!(
            upd("persistentvolumeclaims", &new, &old),
            vec![format!("spec: Forbidden: {PVC_UPDATE_FORBIDDEN}")]
        );
    }

    #[test]
    fn immutable_configmap() {
        let old = json!({"metadata": {"name": "c"}, "immutable": true, "data": {"a": "1"}});
        let mut new = old.clone();
        new["data"]["a"] = json!("2");
        assert_eq!(
            upd("configmaps", &new, &old),
            vec!["data: Forbidden: field is immutable when `immutable` is set"]
        );
    }

    /// The apiserver's pipeline: prune, default, validate; then a kubectl-apply patch.
    #[test]
    fn create_then_apply_flow() {
        use crate::patch::{apply_patch, PatchType};
        use crate::validation::{prune_unknown_fields, validate_create};
        let r = res("deployments");
        let manifest = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                    {"name": "web", "image": "demo-web:v1", "ports": [{"containerPort": 8080}],
                     "env": [{"name": "A", "value": "1"}]}]}}}});
        let (mut obj, unknown) = prune_unknown_fields(r, manifest).unwrap();
        assert!(unknown.is_empty());
        defaults::apply(r, &mut obj);
        assert!(validate_create(r, &obj).is_empty());
        let patch = json!({"spec": {"replicas": 3, "template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}],
            "containers": [{"name": "web", "image": "demo-web:v2",
                "$setElementOrder/env": [{"name": "A"}, {"name": "B"}],
                "env": [{"name": "B", "value": "2"}]}]}}}});
        let patched = apply_patch(
            r,
            &obj,
            PatchType::StrategicMerge,
            patch.to_string().as_bytes(),
        )
        .unwrap();
        let (mut new, unknown) = prune_unknown_fields(r, patched).unwrap();
        assert!(unknown.is_empty());
        defaults::apply(r, &mut new);
        assert!(validate_update(r, &new, &obj).is_empty());
        let c = &new["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["image"], "demo-web:v2");
        assert_eq!(
            c["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
        );
        assert_eq!(c["ports"][0]["protocol"], "TCP");

        let bad = apply_patch(
            r,
            &obj,
            PatchType::Merge,
            br#"{"spec":{"selector":{"matchLabels":{"app":"x"}}}}"#,
        )
        .unwrap();
        let errs = messages(&validate_update(r, &bad, &obj));
        assert_eq!(errs.len(), 2, "{errs:?}");
    }
}
