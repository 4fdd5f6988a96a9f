//! Validation of the workload kinds: Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, plus
//! HorizontalPodAutoscaler and ControllerRevision, as upstream's apps and batch validation.

use serde_json::Value;

use super::{
    arr, child, go_label_selector, go_string_map, has, int, non_negative, one_of, pod, s,
    validate_labels, validate_object_meta, FieldError, NameRule,
};
use crate::selectors::Selector;

/// Which workload is validated (for the messages that name it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Workload {
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    Job,
    /// core/v1 ReplicationController: a plain label map as selector.
    ReplicationController,
}

impl Workload {
    fn noun(self) -> &'static str {
        match self {
            // Upstream's ReplicaSet validation reuses the Deployment wording.
            Workload::Deployment | Workload::ReplicaSet => "deployment",
            Workload::StatefulSet => "statefulset",
            Workload::DaemonSet => "daemonset",
            Workload::Job => "job",
            Workload::ReplicationController => "replicationcontroller",
        }
    }
}

/// Validates the label selector (syntax, non-empty) and that it matches the template labels.
fn validate_selector_and_template(
    spec: &Value,
    path: &str,
    kind: Workload,
    errs: &mut Vec<FieldError>,
) {
    let sel_path = child(path, "selector");
    let selector = spec.get("selector").filter(|v| !v.is_null());
    let parsed = if kind == Workload::ReplicationController {
        // upstream's ValidateNonEmptySelector over a label map
        let labels = selector
            .and_then(Value::as_object)
            .filter(|m| !m.is_empty());
        if labels.is_none() {
            errs.push(FieldError::required(&sel_path, ""));
        }
        let as_selector =
            serde_json::json!({"matchLabels": selector.cloned().unwrap_or(Value::Null)});
        Selector::from_value(Some(&as_selector)).ok()
    } else {
        match selector {
            None => {
                if kind != Workload::DaemonSet {
                    errs.push(FieldError::required(&sel_path, ""));
                }
                Some(Selector::nothing())
            }
            Some(sel) => {
                validate_label_selector(sel, &sel_path, errs);
                let count = sel
                    .get("matchLabels")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len())
                    + arr(sel, "matchExpressions").len();
                if count == 0 {
                    errs.push(FieldError::invalid_raw(
                        &sel_path,
                        &go_label_selector(sel),
                        &format!("empty selector is invalid for {}", kind.noun()),
                    ));
                }
                match Selector::from_value(Some(sel)) {
                    Ok(s) => Some(s),
                    Err(_) => {
                        errs.push(FieldError::invalid_raw(
                            &sel_path,
                            &go_label_selector(sel),
                            "invalid label selector",
                        ));
                        None
                    }
                }
            }
        }
    };
    let template_path = child(path, "template");
    let Some(template) = spec.get("template").filter(|v| !v.is_null()) else {
        errs.push(FieldError::required(&template_path, ""));
        return;
    };
    let labels = template
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .cloned()
        .unwrap_or(Value::Null);
    if let Some(sel) = parsed {
        let check = !sel.is_empty() || kind == Workload::DaemonSet;
        if check && !sel.matches_object(template) {
            errs.push(FieldError::invalid_raw(
                child(&template_path, "metadata.labels"),
                &go_string_map(&labels),
                "`selector` does not match template `labels`",
            ));
        }
    }
    validate_object_meta(
        template.get("metadata"),
        &child(&template_path, "metadata"),
        NameRule::Dns1123Subdomain,
        None,
        errs,
    );
    let spec_path = child(&template_path, "spec");
    let empty = Value::Object(Default::default());
    let pod_spec = template.get("spec").unwrap_or(&empty);
    if kind == Workload::Job {
        // The generic restartPolicy check is replaced by the Job one.
        let mut tmp = Vec::new();
        pod::validate_pod_spec(pod_spec, &spec_path, &mut tmp);
        let rp_path = child(&spec_path, "restartPolicy");
        errs.extend(tmp.into_iter().filter(|e| e.field != rp_path));
        match s(pod_spec, "restartPolicy") {
            "OnFailure" | "Never" => {}
            "" => errs.push(FieldError::required(
                rp_path,
                "valid values: \"OnFailure\", \"Never\"",
            )),
            _ => errs.push(FieldError::not_supported(
                rp_path,
                &pod_spec["restartPolicy"],
                &["OnFailure", "Never"],
            )),
        }
    } else {
        let claims: std::collections::BTreeSet<String> = arr(spec, "volumeClaimTemplates")
            .iter()
            .filter_map(|t| t.pointer("/metadata/name").and_then(Value::as_str))
            .map(str::to_string)
            .collect();
        pod::validate_pod_spec_with_claims(pod_spec, &spec_path, &claims, errs);
        let rp = s(pod_spec, "restartPolicy");
        if !rp.is_empty() && rp != "Always" {
            errs.push(FieldError::not_supported(
                child(&spec_path, "restartPolicy"),
                &pod_spec["restartPolicy"],
                &["Always"],
            ));
        }
        if has(pod_spec, "activeDeadlineSeconds") {
            let path = child(&spec_path, "activeDeadlineSeconds");
            let value = &pod_spec["activeDeadlineSeconds"];
            errs.push(match kind {
                Workload::DaemonSet => FieldError::forbidden(
                    path,
                    "activeDeadlineSeconds in DaemonSet is not Supported",
                ),
                Workload::StatefulSet => FieldError::invalid(path, value, "must not be specified"),
                Workload::ReplicationController => FieldError::forbidden(
                    path,
                    "activeDeadlineSeconds in ReplicationController is not Supported",
                ),
                _ => FieldError::invalid(
                    path,
                    value,
                    "activeDeadlineSeconds in ReplicaSet is not Supported",
                ),
            });
        }
    }
}

/// Validates a metav1 LabelSelector's keys, operators and values.
pub(crate) fn validate_label_selector(sel: &Value, path: &str, errs: &mut Vec<FieldError>) {
    validate_labels(sel.get("matchLabels"), &child(path, "matchLabels"), errs);
    for (i, e) in arr(sel, "matchExpressions").iter().enumerate() {
        let epath = super::index(&child(path, "matchExpressions"), i);
        let values = arr(e, "values");
        match s(e, "operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        child(&epath, "values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        child(&epath, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            _ => errs.push(FieldError::invalid(
                child(&epath, "operator"),
                &e["operator"],
                "not a valid selector operator",
            )),
        }
        for msg in super::is_qualified_name(s(e, "key")) {
            errs.push(FieldError::invalid(child(&epath, "key"), &e["key"], &msg));
        }
    }
}

/// An IntOrString rendered as Go's %#v of `intstr.IntOrString`.
pub(crate) fn go_int_or_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(t)) => {
            format!("intstr.IntOrString{{Type:1, IntVal:0, StrVal:{t:?}}}")
        }
        Some(Value::Number(n)) => format!(
            "intstr.IntOrString{{Type:0, IntVal:{}, StrVal:\"\"}}",
            n.as_i64().unwrap_or(0)
        ),
        _ => "intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}".to_string(),
    }
}

/// The value of a count-or-percentage (`5`, `25%`); invalid percentages count as 0.
fn int_or_percent_value(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(t)) => t
            .strip_suffix('%')
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

/// Upstream's ValidatePositiveIntOrPercent plus IsNotMoreThan100Percent.
fn validate_int_or_percent(v: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    match v {
        Some(Value::Number(n)) => {
            let n = n.as_i64().unwrap_or(0);
            if n < 0 {
                errs.push(FieldError::invalid(
                    path,
                    &Value::from(n),
                    "must be greater than or equal to 0",
                ));
            }
        }
        Some(Value::String(text)) => {
            let valid = text
                .strip_suffix('%')
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
            if !valid {
                errs.push(FieldError::invalid_raw(
                    path,
                    &go_int_or_string(v),
                    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                ));
            }
        }
        _ => {}
    }
}

fn not_more_than_100_percent(v: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    if matches!(v, Some(Value::String(_))) && int_or_percent_value(v) > 100 {
        errs.push(FieldError::invalid_raw(
            path,
            &go_int_or_string(v),
            "must not be greater than 100%",
        ));
    }
}

fn validate_deployment_rolling_update(ru: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let unavailable_path = child(path, "maxUnavailable");
    let unavailable = ru.get("maxUnavailable");
    let surge = ru.get("maxSurge");
    validate_int_or_percent(unavailable, &unavailable_path, errs);
    validate_int_or_percent(surge, &child(path, "maxSurge"), errs);
    if int_or_percent_value(unavailable) == 0 && int_or_percent_value(surge) == 0 {
        errs.push(FieldError::invalid_raw(
            &unavailable_path,
            &go_int_or_string(unavailable),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
    not_more_than_100_percent(unavailable, &unavailable_path, errs);
}

fn validate_daemonset_rolling_update(ru: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let unavailable_path = child(path, "maxUnavailable");
    let surge_path = child(path, "maxSurge");
    let unavailable = ru.get("maxUnavailable");
    let surge = ru.get("maxSurge");
    validate_int_or_percent(unavailable, &unavailable_path, errs);
    validate_int_or_percent(surge, &surge_path, errs);
    not_more_than_100_percent(unavailable, &unavailable_path, errs);
    not_more_than_100_percent(surge, &surge_path, errs);
    let has_unavailable = int_or_percent_value(unavailable) != 0;
    let has_surge = int_or_percent_value(surge) != 0;
    if has_unavailable && has_surge {
        errs.push(FieldError::invalid_raw(
            &surge_path,
            &go_int_or_string(surge),
            "may not be set when maxUnavailable is non-zero",
        ));
    } else if !has_unavailable && !has_surge {
        errs.push(FieldError::required(
            &unavailable_path,
            "cannot be 0 when maxSurge is 0",
        ));
    }
}

/// A strategy struct rendered as Go's %#v (`apps.DeploymentStrategy{Type:"x", ...}`).
fn go_strategy(go_type: &str, rolling_type: &str, strategy: &Value) -> String {
    let rolling = if has(strategy, "rollingUpdate") {
        format!("(*apps.{rolling_type})(0xc000010000)")
    } else {
        format!("(*apps.{rolling_type})(nil)")
    };
    format!(
        "apps.{go_type}{{Type:{:?}, RollingUpdate:{rolling}}}",
        s(strategy, "type")
    )
}

pub(crate) fn validate_deployment(obj: &Value, errs: &mut Vec<FieldError>) {
    let empty = Value::Object(Default::default());
    let spec = obj.get("spec").unwrap_or(&empty);
    non_negative(spec, "replicas", "spec", errs);
    validate_selector_and_template(spec, "spec", Workload::Deployment, errs);
    if let Some(strategy) = spec.get("strategy").filter(|v| !v.is_null()) {
        match s(strategy, "type") {
            "Recreate" => {
                if has(strategy, "rollingUpdate") {
                    errs.push(FieldError::forbidden(
                        "spec.strategy.rollingUpdate",
                        "may not be specified when strategy `type` is 'Recreate'",
                    ));
                }
            }
            "RollingUpdate" => match strategy.get("rollingUpdate").filter(|v| !v.is_null()) {
                Some(ru) => {
                    validate_deployment_rolling_update(ru, "spec.strategy.rollingUpdate", errs)
                }
                None => errs.push(FieldError::required(
                    "spec.strategy.rollingUpdate",
                    "this should be defaulted and never be nil",
                )),
            },
            _ => errs.push(FieldError {
                reason: "FieldValueNotSupported",
                field: "spec.strategy".into(),
                message: format!(
                    "Unsupported value: {}: supported values: \"Recreate\", \"RollingUpdate\"",
                    go_strategy("DeploymentStrategy", "RollingUpdateDeployment", strategy)
                ),
            }),
        }
    }
    non_negative(spec, "minReadySeconds", "spec", errs);
    non_negative(spec, "revisionHistoryLimit", "spec", errs);
    if let Some(p) = int(spec, "progressDeadlineSeconds") {
        if p < 0 {
            errs.push(FieldError::invalid(
                "spec.progressDeadlineSeconds",
                &Value::from(p),
                "must be greater than or equal to 0",
            ));
        } else if p <= int(spec, "minReadySeconds").unwrap_or(0) {
            errs.push(FieldError::invalid(
                "spec.progressDeadlineSeconds",
                &Value::from(p),
                "must be greater than minReadySeconds",
            ));
        }
    }
}

pub(crate) fn validate_replicaset(obj: &Value, errs: &mut Vec<FieldError>) {
    let empty = Value::Object(Default::default());
    let spec = obj.get("spec").unwrap_or(&empty);
    non_negative(spec, "replicas", "spec", errs);
    non_negative(spec, "minReadySeconds", "spec", errs);
    validate_selector_and_template(spec, "spec", Workload::ReplicaSet, errs);
}

/// upstream's ValidateReplicationControllerSpec.
pub(crate) fn validate_replication_controller(obj: &Value, errs: &mut Vec<FieldError>) {
    let empty = Value::Object(Default::default());
    let spec = obj.get("spec").unwrap_or(&empty);
    non_negative(spec, "minReadySeconds", "spec", errs);
    non_negative(spec, "replicas", "spec", errs);
    validate_selector_and_template(spec, "spec", Workload::ReplicationController, errs);
}

pub(crate) fn validate_statefulset(obj: &Value, errs: &mut Vec<FieldError>) {
    let empty = Value::Object(Default::default());
    let spec = obj.get("spec").unwrap_or(&empty);
    one_of(
        spec,
        "podManagementPolicy",
        "spec",
        &["OrderedReady", "Parallel"],
        false,
        errs,
    );
    if let Some(strategy) = spec.get("updateStrategy").filter(|v| !v.is_null()) {
        one_of(
            strategy,
            "type",
            "spec.updateStrategy",
            &["RollingUpdate", "OnDelete"],
            false,
            errs,
        );
        if s(strategy, "type") == "OnDelete" && has(strategy, "rollingUpdate") {
            errs.push(FieldError::invalid(
                "spec.updateStrategy.rollingUpdate",
                &strategy["rollingUpdate"],
                "only allowed for updateStrategy 'RollingUpdate'",
            ));
        }
        if let Some(ru) = strategy.get("rollingUpdate").filter(|v| !v.is_null()) {
            non_negative(ru, "partition", "spec.updateStrategy.rollingUpdate", errs);
        }
    }
    if let Some(policy) = spec
        .get("persistentVolumeClaimRetentionPolicy")
        .filter(|v| !v.is_null())
    {
        let p = "spec.persistentVolumeClaimRetentionPolicy";
        one_of(policy, "whenDeleted", p, &["Retain", "Delete"], false, errs);
        one_of(policy, "whenScaled", p, &["Retain", "Delete"], false, errs);
    }
    if let Some(ordinals) = spec.get("ordinals").filter(|v| !v.is_null()) {
        non_negative(ordinals, "start", "spec.ordinals", errs);
    }
    non_negative(spec, "replicas", "spec", errs);
    non_negative(spec, "minReadySeconds", "spec", errs);
    validate_selector_and_template(spec, "spec", Workload::StatefulSet, errs);
    for (i, t) in arr(spec, "volumeClaimTemplates").iter().enumerate() {
        let tpath = super::index("spec.volumeClaimTemplates", i);
        validate_object_meta(
            t.get("metadata"),
            &child(&tpath, "metadata"),
            NameRule::Dns1123Subdomain,
            None,
            errs,
        );
        if s(t.get("metadata").unwrap_or(&Value::Null), "name").is_empty() {
            errs.push(FieldError::required(child(&tpath, "metadata.name"), ""));
        }
    }
}

pub(crate) fn validate_daemonset(obj: &Value, errs: &mut Vec<FieldError>) {
    let empty = Value::Object(Default::default());
    let spec = obj.get("spec").unwrap_or(&empty);
    validate_selector_and_template(spec, "spec", Workload::DaemonSet, errs);
    if let Some(strategy) = spec.get("updateStrategy").filter(|v| !v.is_null()) {
        match s(strategy, "type") {
            "OnDelete" => {}
            "RollingUpdate" => match strategy.get("rollingUpdate").filter(|v| !v.is_null()) {
                Some(ru) => {
                    validate_daemonset_rolling_update(ru, "spec.updateStrategy.rollingUpdate", errs)
                }
                None => errs.push(FieldError::required(
                    "spec.updateStrategy.rollingUpdate",
                    "",
                )),
            },
            _ => errs.push(FieldError {
                reason: "FieldValueNotSupported",
                field: "spec.updateStrategy".into(),
                message: format!(
                    "Unsupported value: {}: supported values: \"RollingUpdate\", \"OnDelete\"",
                    go_strategy(
                        "DaemonSetUpdateStrategy",
                        "RollingUpdateDaemonSet",
                        strategy
                    )
                ),
            }),
        }
    }
    non_negative(spec, "minReadySeconds", "spec", errs);
    non_negative(spec, "revisionHistoryLimit", "spec", errs);
}

pub(crate) fn validate_job(obj: &Value, errs: &mut Vec<FieldError>) {
    let empty = Value::Object(Default::default());
    let spec = obj.get("spec").unwrap_or(&empty);
    for k in ["parallelism", "completions", "backoffLimit"] {
        non_negative(spec, k, "spec", errs);
    }
    if let Some(n) = int(spec, "activeDeadlineSeconds") {
        if n <= 0 {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                &Value::from(n),
                "must be greater than or equal to 1",
            ));
        }
    }
    if let Some(n) = int(spec, "ttlSecondsAfterFinished") {
        if n < 0 {
            errs.push(FieldError::invalid(
                "spec.ttlSecondsAfterFinished",
                &Value::from(n),
                "must be greater than or equal to 0",
            ));
        }
    }
    one_of(
        spec,
        "completionMode",
        "spec",
        &["NonIndexed", "Indexed"],
        false,
        errs,
    );
    if s(spec, "completionMode") == "Indexed" && !has(spec, "completions") {
        errs.push(FieldError::required(
            "spec.completions",
            "when completion mode is Indexed",
        ));
    }
    one_of(
        spec,
        "podReplacementPolicy",
        "spec",
        &["Failed", "TerminatingOrFailed"],
        false,
        errs,
    );
    validate_selector_and_template(spec, "spec", Workload::Job, errs);
}

pub(crate) fn validate_hpa(obj: &Value, errs: &mut Vec<FieldError>) {
    let empty = Value::Object(Default::default());
    let spec = obj.get("spec").unwrap_or(&empty);
    let target = spec.get("scaleTargetRef").unwrap_or(&Value::Null);
    for k in ["kind", "name"] {
        if s(target, k).is_empty() {
            errs.push(FieldError::required(child("spec.scaleTargetRef", k), ""));
        }
    }
    let min = int(spec, "minReplicas").unwrap_or(1);
    if min < 1 {
        errs.push(FieldError::invalid(
            "spec.minReplicas",
            &Value::from(min),
            "must be greater than or equal to 1",
        ));
    }
    match int(spec, "maxReplicas") {
        None => errs.push(FieldError::invalid(
            "spec.maxReplicas",
            &Value::from(0),
            "must be greater than 0",
        )),
        Some(max) if max < 1 => errs.push(FieldError::invalid(
            "spec.maxReplicas",
            &Value::from(max),
            "must be greater than 0",
        )),
        Some(max) if max < min => errs.push(FieldError::invalid(
            "spec.maxReplicas",
            &Value::from(max),
            "must be greater than or equal to `minReplicas`",
        )),
        _ => {}
    }
}

pub(crate) fn validate_controller_revision(obj: &Value, errs: &mut Vec<FieldError>) {
    non_negative(obj, "revision", "", errs);
}

#[cfg(test)]
mod tests {
    use super::super::tests::{messages, res};
    use super::super::validate_create;
    use crate::defaults;
    use serde_json::{json, Value};

    fn deploy(spec: Value) -> Value {
        let mut d = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec});
        defaults::apply(res("deployments"), &mut d);
        d
    }

    fn template() -> Value {
        json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "demo-web:v1"}]}})
    }

    #[test]
    fn valid_deployment() {
        let d =
            deploy(json!({"selector": {"matchLabels": {"app": "web"}}, "template": template()}));
        assert!(validate_create(res("deployments"), &d).is_empty());
    }

    #[test]
    fn selector_must_match_template() {
        let d = deploy(json!({"selector": {"matchLabels": {"app": "db"}}, "template": template()}));
        assert_eq!(
            messages(&validate_create(res("deployments"), &d)),
            vec!["spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"]
        );
    }

    #[test]
    fn selector_required_and_non_empty() {
        let d = deploy(json!({"template": template()}));
        assert_eq!(
            messages(&validate_create(res("deployments"), &d)),
            vec![
                "spec.selector: Required value",
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
            ]
        );
        let d = deploy(json!({"selector": {}, "template": template()}));
        assert_eq!(
            messages(&validate_create(res("deployments"), &d)),
            vec!["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"]
        );
    }

    #[test]
    fn replicas_and_strategy() {
        let d = deploy(
            json!({"replicas": -1, "selector": {"matchLabels": {"app": "web"}}, "template": template(),
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}}),
        );
        assert_eq!(
            messages(&validate_create(res("deployments"), &d)),
            vec![
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0",
            ]
        );
        let d = deploy(
            json!({"selector": {"matchLabels": {"app": "web"}}, "template": template(),
            "strategy": {"type": "Sideways"}}),
        );
        assert_eq!(
            messages(&validate_create(res("deployments"), &d)),
            vec!["spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:\"Sideways\", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: \"Recreate\", \"RollingUpdate\""]
        );
        let d = deploy(
            json!({"selector": {"matchLabels": {"app": "web"}}, "template": template(),
            "strategy": {"rollingUpdate": {"maxSurge": "x%"}}}),
        );
        let m = messages(&validate_create(res("deployments"), &d));
        assert!(m[0].starts_with("spec.strategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"x%\"}: a valid percent string"), "{m:?}");
    }

    #[test]
    fn template_restart_policy_must_be_always() {
        let mut t = template();
        t["spec"]["restartPolicy"] = json!("Never");
        let d = deploy(json!({"selector": {"matchLabels": {"app": "web"}}, "template": t}));
        assert_eq!(
            messages(&validate_create(res("deployments"), &d)),
            vec!["spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""]
        );
    }

    #[test]
    fn template_container_errors_have_template_paths() {
        let mut t = template();
        t["spec"]["containers"][0]["image"] = json!("");
        let mut rs = json!({"metadata": {"name": "r"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": t}});
        defaults::apply(res("replicasets"), &mut rs);
        assert_eq!(
            messages(&validate_create(res("replicasets"), &rs)),
            vec!["spec.template.spec.containers[0].image: Required value"]
        );
    }

    #[test]
    fn statefulset_and_daemonset() {
        let mut s = json!({"metadata": {"name": "db"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": template(), "podManagementPolicy": "Random"}});
        defaults::apply(res("statefulsets"), &mut s);
        assert_eq!(
            messages(&validate_create(res("statefulsets"), &s)),
            vec!["spec.podManagementPolicy: Unsupported value: \"Random\": supported values: \"OrderedReady\", \"Parallel\""]
        );
        let mut d = json!({"metadata": {"name": "ds"}, "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": template()}});
        defaults::apply(res("daemonsets"), &mut d);
        assert_eq!(
            messages(&validate_create(res("daemonsets"), &d)),
            vec!["spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"]
        );
    }

    #[test]
    fn statefulset_mounts_may_name_claim_templates() {
        let mut t = template();
        t["spec"]["containers"][0]["volumeMounts"] =
            json!([{"name": "data", "mountPath": "/data"}]);
        let mut s = json!({"metadata": {"name": "db"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": t, "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}});
        defaults::apply(res("statefulsets"), &mut s);
        assert!(validate_create(res("statefulsets"), &s).is_empty());
        s["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] = json!("other");
        assert_eq!(
            messages(&validate_create(res("statefulsets"), &s)),
            vec!["spec.template.spec.containers[0].volumeMounts[0].name: Not found: \"data\""]
        );
    }

    #[test]
    fn daemonset_rolling_update_rules() {
        let mut d = json!({"metadata": {"name": "ds"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": template(), "updateStrategy": {"type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}}});
        defaults::apply(res("daemonsets"), &mut d);
        assert_eq!(
            messages(&validate_create(res("daemonsets"), &d)),
            vec!["spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"]
        );
        d["spec"]["updateStrategy"]["rollingUpdate"] =
            json!({"maxUnavailable": 1, "maxSurge": "10%"});
        assert_eq!(
            messages(&validate_create(res("daemonsets"), &d)),
            vec!["spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"10%\"}: may not be set when maxUnavailable is non-zero"]
        );
    }

    #[test]
    fn job_restart_policy() {
        let mut j = json!({"metadata": {"name": "pi", "uid": "u1"}, "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        defaults::apply(res("jobs"), &mut j);
        assert_eq!(
            messages(&validate_create(res("jobs"), &j)),
            vec!["spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""]
        );
        j["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        assert_eq!(
            messages(&validate_create(res("jobs"), &j)),
            vec!["spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""]
        );
        j["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        assert!(validate_create(res("jobs"), &j).is_empty());
    }

    #[test]
    fn hpa() {
        let h = json!({"metadata": {"name": "h"}, "spec": {"minReplicas": 3, "maxReplicas": 2, "scaleTargetRef": {"kind": "Deployment"}}});
        assert_eq!(
            messages(&validate_create(res("horizontalpodautoscalers"), &h)),
            vec![
                "spec.scaleTargetRef.name: Required value",
                "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`",
            ]
        );
    }

    #[test]
    fn replication_controllers_are_validated_like_upstream() {
        let rc = |spec: serde_json::Value| serde_json::json!({"metadata": {"name": "rc", "namespace": "default"}, "spec": spec});
        let template = |labels: serde_json::Value| {
            serde_json::json!({"metadata": {"labels": labels},
            "spec": {"restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                "containers": [{"name": "c", "image": "busybox", "imagePullPolicy": "Always",
                    "terminationMessagePolicy": "File"}]}})
        };
        let r = crate::registry::find("", "v1", "replicationcontrollers").unwrap();
        let msgs = |v: &serde_json::Value| -> Vec<String> {
            crate::validation::validate_create(r, v)
                .iter()
                .map(|e| e.to_string())
                .collect()
        };
        assert!(msgs(&rc(
            serde_json::json!({"replicas": 1, "selector": {"app": "a"},
            "template": template(serde_json::json!({"app": "a"}))})
        ))
        .is_empty());
        assert_eq!(
            msgs(&rc(
                serde_json::json!({"replicas": -1, "template": template(serde_json::json!({"app": "a"}))})
            )),
            [
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.selector: Required value"
            ]
        );
        assert_eq!(
            msgs(&rc(serde_json::json!({"replicas": 1, "selector": {"app": "b"},
                "template": template(serde_json::json!({"app": "a"}))}))),
            ["spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"a\"}: `selector` does not match template `labels`"]
        );
        assert_eq!(
            msgs(&rc(
                serde_json::json!({"replicas": 1, "selector": {"app": "a"}})
            )),
            ["spec.template: Required value"]
        );
    }
}
