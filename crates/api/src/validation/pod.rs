//! Pod spec validation (containers, ports, env, volumes, probes, resources, policies), as
//! upstream's ValidatePodSpec words it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{
    arr, child, has, index, int, is_dns1123_label, is_dns1123_subdomain, is_env_var_name,
    is_qualified_name, is_valid_port_name, is_valid_port_num, key, obj, one_of, s, validate_labels,
    FieldError,
};
use crate::defaults::volume_sources;

pub(crate) const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const MESSAGE_POLICIES: &[&str] = &["File", "FallbackToLogsOnError"];

/// Validates a pod spec at `path` (`spec`, `spec.template.spec`).
pub(crate) fn validate_pod_spec(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    validate_pod_spec_with_claims(spec, path, &BTreeSet::new(), errs);
}

/// Validates a pod spec whose volume mounts may also name `claims` (a StatefulSet's
/// volumeClaimTemplates).
pub(crate) fn validate_pod_spec_with_claims(
    spec: &Value,
    path: &str,
    claims: &BTreeSet<String>,
    errs: &mut Vec<FieldError>,
) {
    let mut volumes = validate_volumes(spec, &child(path, "volumes"), errs);
    volumes.extend(claims.iter().cloned());
    let containers = arr(spec, "containers");
    if containers.is_empty() {
        errs.push(FieldError::required(child(path, "containers"), ""));
    }
    let mut names = BTreeSet::new();
    for (list, is_init) in [("initContainers", true), ("containers", false)] {
        let list_path = child(path, list);
        for (i, c) in arr(spec, list).iter().enumerate() {
            let cpath = index(&list_path, i);
            let name = s(c, "name");
            if name.is_empty() {
                errs.push(FieldError::required(child(&cpath, "name"), ""));
            } else {
                for msg in is_dns1123_label(name) {
                    errs.push(FieldError::invalid(child(&cpath, "name"), &c["name"], &msg));
                }
                if !names.insert(name.to_string()) {
                    errs.push(FieldError::duplicate(child(&cpath, "name"), &c["name"]));
                }
            }
            validate_container(c, &cpath, &volumes, is_init, errs);
        }
    }
    let others = names.clone();
    let list_path = child(path, "ephemeralContainers");
    for (i, c) in arr(spec, "ephemeralContainers").iter().enumerate() {
        let cpath = index(&list_path, i);
        let name = s(c, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&cpath, "name"), ""));
        } else {
            for msg in is_dns1123_label(name) {
                errs.push(FieldError::invalid(child(&cpath, "name"), &c["name"], &msg));
            }
            if !names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(child(&cpath, "name"), &c["name"]));
            }
        }
        super::ephemeral::validate_ephemeral_container(c, &cpath, &others, errs);
        // The ordinary checks, on the fields an ephemeral container may have.
        let mut common = c.clone();
        if let Some(m) = common.as_object_mut() {
            for f in [
                "ports",
                "resources",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
                "lifecycle",
            ] {
                m.remove(f);
            }
        }
        validate_container(&common, &cpath, &volumes, false, errs);
    }
    match spec.get("restartPolicy") {
        None | Some(Value::Null) => {
            errs.push(FieldError::required(child(path, "restartPolicy"), ""))
        }
        _ => one_of(spec, "restartPolicy", path, RESTART_POLICIES, true, errs),
    }
    // Upstream's validateHostUsers: a pod user namespace with none of the host's namespaces
    // (its odd field names included).
    if spec.get("hostUsers") == Some(&Value::Bool(false)) {
        for (field, name) in [
            ("hostNetwork", "hostNetwork"),
            ("hostPID", "HostPID"),
            ("hostIPC", "HostIPC"),
        ] {
            if spec.get(field) == Some(&Value::Bool(true)) {
                errs.push(FieldError::forbidden(
                    child(path, name),
                    "when `pod.Spec.HostUsers` is false",
                ));
            }
        }
    }
    one_of(spec, "dnsPolicy", path, DNS_POLICIES, true, errs);
    if s(spec, "dnsPolicy") == "None" && !has(spec, "dnsConfig") {
        errs.push(FieldError::required(
            child(path, "dnsConfig"),
            "must provide `dnsConfig` when `dnsPolicy` is None",
        ));
    }
    for k in ["hostname", "subdomain"] {
        let v = s(spec, k);
        if !v.is_empty() {
            for msg in is_dns1123_label(v) {
                errs.push(FieldError::invalid(child(path, k), &spec[k], &msg));
            }
        }
    }
    let sa = s(spec, "serviceAccountName");
    if !sa.is_empty() {
        for msg in is_dns1123_subdomain(sa) {
            errs.push(FieldError::invalid(
                child(path, "serviceAccountName"),
                &spec["serviceAccountName"],
                &msg,
            ));
        }
    }
    let node = s(spec, "nodeName");
    if !node.is_empty() {
        for msg in is_dns1123_subdomain(node) {
            errs.push(FieldError::invalid(
                child(path, "nodeName"),
                &spec["nodeName"],
                &msg,
            ));
        }
    }
    validate_labels(spec.get("nodeSelector"), &child(path, "nodeSelector"), errs);
    if let Some(n) = int(spec, "activeDeadlineSeconds") {
        if !(1..=i64::from(i32::MAX)).contains(&n) {
            errs.push(FieldError::invalid(
                child(path, "activeDeadlineSeconds"),
                &Value::from(n),
                &super::inclusive_range_error(1, i64::from(i32::MAX)),
            ));
        }
    }
    validate_tolerations(arr(spec, "tolerations"), &child(path, "tolerations"), errs);
}

/// Validates the volumes and returns their names.
fn validate_volumes(spec: &Value, path: &str, errs: &mut Vec<FieldError>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, v) in arr(spec, "volumes").iter().enumerate() {
        let vpath = index(path, i);
        let name = s(v, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&vpath, "name"), ""));
        } else {
            for msg in is_dns1123_label(name) {
                errs.push(FieldError::invalid(child(&vpath, "name"), &v["name"], &msg));
            }
            if !names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(child(&vpath, "name"), &v["name"]));
            }
        }
        let sources: Vec<&str> = volume_sources()
            .iter()
            .copied()
            .filter(|k| has(v, k))
            .collect();
        match sources.as_slice() {
            [] => errs.push(FieldError::required(&vpath, "must specify a volume type")),
            [one] => validate_volume_source(v, one, &vpath, errs),
            [_, rest @ ..] => {
                for extra in rest {
                    errs.push(FieldError::forbidden(
                        child(&vpath, extra),
                        "may not specify more than 1 volume type",
                    ));
                }
            }
        }
    }
    names
}

fn validate_volume_source(v: &Value, source: &str, path: &str, errs: &mut Vec<FieldError>) {
    let src = &v[source];
    let spath = child(path, source);
    let required = match source {
        "configMap" => Some("name"),
        "secret" => Some("secretName"),
        "persistentVolumeClaim" => Some("claimName"),
        "hostPath" | "nfs" => Some("path"),
        _ => None,
    };
    if let Some(field) = required {
        if s(src, field).is_empty() {
            errs.push(FieldError::required(child(&spath, field), ""));
        }
    }
    if let Some(mode) = int(src, "defaultMode") {
        if !(0..=0o777).contains(&mode) {
            errs.push(FieldError::invalid(
                child(&spath, "defaultMode"),
                &Value::from(mode),
                "must be a number between 0 and 0777 (octal), both inclusive",
            ));
        }
    }
    if source == "hostPath" {
        let valid = [
            "",
            "DirectoryOrCreate",
            "Directory",
            "FileOrCreate",
            "File",
            "Socket",
            "CharDevice",
            "BlockDevice",
        ];
        if let Some(t) = src.get("type").and_then(Value::as_str) {
            if !valid.contains(&t) {
                errs.push(FieldError::not_supported(
                    child(&spath, "type"),
                    &src["type"],
                    &valid,
                ));
            }
        }
    }
}

fn validate_container(
    c: &Value,
    path: &str,
    volumes: &BTreeSet<String>,
    is_init: bool,
    errs: &mut Vec<FieldError>,
) {
    let image = s(c, "image");
    if image.is_empty() {
        errs.push(FieldError::required(child(path, "image"), ""));
    } else if image.trim() != image {
        errs.push(FieldError::invalid(
            child(path, "image"),
            &c["image"],
            "must not have leading or trailing whitespace",
        ));
    }
    one_of(c, "imagePullPolicy", path, PULL_POLICIES, false, errs);
    let sc = &c["securityContext"];
    if sc["privileged"] == Value::Bool(true) && sc["allowPrivilegeEscalation"] == Value::Bool(false)
    {
        errs.push(FieldError::invalid(
            child(path, "securityContext"),
            sc,
            "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
        ));
    }
    one_of(
        c,
        "terminationMessagePolicy",
        path,
        MESSAGE_POLICIES,
        false,
        errs,
    );
    // ports
    let ports_path = child(path, "ports");
    let mut port_names = BTreeSet::new();
    for (i, p) in arr(c, "ports").iter().enumerate() {
        let ppath = index(&ports_path, i);
        let name = s(p, "name");
        if !name.is_empty() {
            for msg in is_valid_port_name(name) {
                errs.push(FieldError::invalid(child(&ppath, "name"), &p["name"], &msg));
            }
            if !port_names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(child(&ppath, "name"), &p["name"]));
            }
        }
        match int(p, "containerPort") {
            None => errs.push(FieldError::required(child(&ppath, "containerPort"), "")),
            Some(n) => {
                for msg in is_valid_port_num(n) {
                    errs.push(FieldError::invalid(
                        child(&ppath, "containerPort"),
                        &Value::from(n),
                        &msg,
                    ));
                }
            }
        }
        if let Some(n) = int(p, "hostPort") {
            if n != 0 {
                for msg in is_valid_port_num(n) {
                    errs.push(FieldError::invalid(
                        child(&ppath, "hostPort"),
                        &Value::from(n),
                        &msg,
                    ));
                }
            }
        }
        one_of(p, "protocol", &ppath, PROTOCOLS, true, errs);
    }
    // env
    let env_path = child(path, "env");
    for (i, e) in arr(c, "env").iter().enumerate() {
        let epath = index(&env_path, i);
        let name = s(e, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&epath, "name"), ""));
        } else {
            for msg in is_env_var_name(name) {
                errs.push(FieldError::invalid(child(&epath, "name"), &e["name"], &msg));
            }
        }
        if let Some(from) = e.get("valueFrom").filter(|v| !v.is_null()) {
            let fpath = child(&epath, "valueFrom");
            let sources = [
                "fieldRef",
                "resourceFieldRef",
                "configMapKeyRef",
                "secretKeyRef",
            ]
            .iter()
            .filter(|k| has(from, k))
            .count();
            if sources == 0 {
                errs.push(FieldError::invalid(
                    &fpath,
                    &Value::String(String::new()),
                    "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
                ));
            } else if sources > 1 {
                errs.push(FieldError::invalid(
                    &fpath,
                    &Value::String(String::new()),
                    "may not have more than one field specified at a time",
                ));
            }
            if !s(e, "value").is_empty() {
                errs.push(FieldError::invalid(
                    &fpath,
                    &Value::String(String::new()),
                    "may not be specified when `value` is not empty",
                ));
            }
            for k in ["configMapKeyRef", "secretKeyRef"] {
                if let Some(r) = from.get(k).filter(|v| !v.is_null()) {
                    if s(r, "key").is_empty() {
                        errs.push(FieldError::required(child(&child(&fpath, k), "key"), ""));
                    }
                }
            }
            if let Some(r) = from.get("fieldRef").filter(|v| !v.is_null()) {
                if s(r, "fieldPath").is_empty() {
                    errs.push(FieldError::required(
                        child(&child(&fpath, "fieldRef"), "fieldPath"),
                        "",
                    ));
                }
            }
        }
    }
    // volume mounts
    let mounts_path = child(path, "volumeMounts");
    let mut mount_paths = BTreeSet::new();
    for (i, m) in arr(c, "volumeMounts").iter().enumerate() {
        let mpath = index(&mounts_path, i);
        let name = s(m, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&mpath, "name"), ""));
        } else if !volumes.contains(name) {
            errs.push(FieldError::not_found(child(&mpath, "name"), &m["name"]));
        }
        let mount = s(m, "mountPath");
        if mount.is_empty() {
            errs.push(FieldError::required(child(&mpath, "mountPath"), ""));
        } else if !mount_paths.insert(mount.to_string()) {
            errs.push(FieldError::invalid(
                child(&mpath, "mountPath"),
                &m["mountPath"],
                "must be unique",
            ));
        }
    }
    // probes
    let sidecar = s(c, "restartPolicy") == "Always";
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let Some(p) = c.get(probe).filter(|v| !v.is_null()) else {
            continue;
        };
        let ppath = child(path, probe);
        if is_init && !sidecar {
            errs.push(FieldError::forbidden(
                &ppath,
                "may not be set for init containers without restartPolicy=Always",
            ));
            continue;
        }
        for k in [
            "initialDelaySeconds",
            "timeoutSeconds",
            "periodSeconds",
            "successThreshold",
            "failureThreshold",
        ] {
            super::non_negative(p, k, &ppath, errs);
        }
        if probe != "readinessProbe" {
            if let Some(n) = int(p, "successThreshold") {
                if n != 1 {
                    errs.push(FieldError::invalid(
                        child(&ppath, "successThreshold"),
                        &Value::from(n),
                        "must be 1",
                    ));
                }
            }
        }
        validate_handler(p, &ppath, errs);
    }
    if let Some(lc) = obj(c, "lifecycle") {
        for (k, h) in lc {
            if !h.is_null() {
                validate_handler(h, &child(&child(path, "lifecycle"), k), errs);
            }
        }
    }
    validate_resources(c.get("resources"), &child(path, "resources"), errs);
    if let Some(policy) = c.get("restartPolicy").filter(|v| !v.is_null()) {
        if !is_init {
            errs.push(FieldError::forbidden(
                child(path, "restartPolicy"),
                "may not be set for non-init containers",
            ));
        } else if policy.as_str() != Some("Always") {
            errs.push(FieldError::not_supported(
                child(path, "restartPolicy"),
                policy,
                &["Always"],
            ));
        }
    }
}

fn validate_handler(h: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let kinds: Vec<&str> = ["exec", "httpGet", "tcpSocket", "grpc", "sleep"]
        .into_iter()
        .filter(|k| has(h, k))
        .collect();
    match kinds.as_slice() {
        [] => errs.push(FieldError::required(path, "must specify a handler type")),
        [one] => {
            let hp = child(path, one);
            let target = &h[*one];
            if matches!(*one, "httpGet" | "tcpSocket") {
                validate_port_ref(target.get("port"), &child(&hp, "port"), errs);
            }
            if *one == "exec" && arr(target, "command").is_empty() {
                errs.push(FieldError::required(child(&hp, "command"), ""));
            }
        }
        [_, rest @ ..] => {
            for extra in rest {
                errs.push(FieldError::forbidden(
                    child(path, extra),
                    "may not specify more than 1 handler type",
                ));
            }
        }
    }
}

/// An IntOrString port: a number 1..65535 or an IANA service name.
pub(crate) fn validate_port_ref(port: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    match port {
        None | Some(Value::Null) => errs.push(FieldError::required(path, "")),
        Some(Value::Number(n)) => {
            for msg in is_valid_port_num(n.as_i64().unwrap_or(0)) {
                errs.push(FieldError::invalid(path, &Value::Number(n.clone()), &msg));
            }
        }
        Some(v @ Value::String(name)) => {
            for msg in is_valid_port_name(name) {
                errs.push(FieldError::invalid(path, v, &msg));
            }
        }
        Some(other) => errs.push(FieldError::invalid(
            path,
            other,
            "must be a port number or name",
        )),
    }
}

fn validate_resources(resources: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    let Some(r) = resources else {
        return;
    };
    let mut parsed: BTreeMap<(&str, String), f64> = BTreeMap::new();
    for section in ["limits", "requests"] {
        let spath = child(path, section);
        for (name, q) in obj(r, section).into_iter().flatten() {
            if is_qualified_name(name).into_iter().next().is_some() {
                errs.push(FieldError::invalid(
                    key(&spath, name),
                    &Value::String(name.clone()),
                    "must be a standard resource type or fully qualified",
                ));
            }
            let text = match q {
                Value::String(t) => t.clone(),
                other => other.to_string(),
            };
            match parse_quantity(&text) {
                None => errs.push(FieldError::invalid(
                    key(&spath, name),
                    &Value::String(text.clone()),
                    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                )),
                Some(v) if v < 0.0 => errs.push(FieldError::invalid(
                    key(&spath, name),
                    &Value::String(text.clone()),
                    "must be greater than or equal to 0",
                )),
                Some(v) => {
                    parsed.insert((section, name.clone()), v);
                }
            }
        }
    }
    for ((section, name), req) in &parsed {
        if *section != "requests" {
            continue;
        }
        if let Some(limit) = parsed.get(&("limits", name.clone())) {
            if req > limit {
                let req_text = quantity_text(r, "requests", name);
                let limit_text = quantity_text(r, "limits", name);
                errs.push(FieldError::invalid(
                    key(&child(path, "requests"), name),
                    &Value::String(req_text),
                    &format!("must be less than or equal to {name} limit of {limit_text}"),
                ));
            }
        }
    }
}

fn quantity_text(r: &Value, section: &str, name: &str) -> String {
    match r.get(section).and_then(|s| s.get(name)) {
        Some(Value::String(t)) => t.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// Parses a Kubernetes quantity (`100m`, `1.5Gi`, `1e3`) into its value.
pub fn parse_quantity(text: &str) -> Option<f64> {
    let t = text.trim();
    let num_end = t
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || (*i == 0 && (*c == '+' || *c == '-'))))
        .map(|(i, _)| i)
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(num_end);
    if num.is_empty() || num == "+" || num == "-" || num.matches('.').count() > 1 {
        return None;
    }
    let base: f64 = num.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        other => {
            let exp = other
                .strip_prefix('e')
                .or_else(|| other.strip_prefix('E'))?;
            let e: i32 = exp.parse().ok()?;
            10f64.powi(e)
        }
    };
    Some(base * factor)
}

fn validate_tolerations(list: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    for (i, t) in list.iter().enumerate() {
        let tpath = index(path, i);
        let k = s(t, "key");
        if !k.is_empty() {
            for msg in is_qualified_name(k) {
                errs.push(FieldError::invalid(child(&tpath, "key"), &t["key"], &msg));
            }
        }
        let op = s(t, "operator");
        if k.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                child(&tpath, "operator"),
                &Value::String(op.to_string()),
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        match op {
            "" | "Equal" => {
                let v = s(t, "value");
                for msg in super::is_valid_label_value(v) {
                    errs.push(FieldError::invalid(
                        child(&tpath, "value"),
                        &t["value"],
                        &msg,
                    ));
                }
            }
            "Exists" => {
                if !s(t, "value").is_empty() {
                    errs.push(FieldError::invalid(
                        child(&tpath, "operator"),
                        &t["value"],
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            _ => errs.push(FieldError::not_supported(
                child(&tpath, "operator"),
                &t["operator"],
                &["Equal", "Exists"],
            )),
        }
        let effect = s(t, "effect");
        if !effect.is_empty() && !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect)
        {
            errs.push(FieldError::not_supported(
                child(&tpath, "effect"),
                &t["effect"],
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
        if has(t, "tolerationSeconds") && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                child(&tpath, "effect"),
                &Value::String(effect.to_string()),
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{messages, res};
    use super::super::validate_create;
    use super::*;
    use crate::defaults;
    use serde_json::json;

    fn pod(spec: Value) -> Value {
        let mut p = json!({"metadata": {"name": "p", "namespace": "default"}, "spec": spec});
        defaults::apply(res("pods"), &mut p);
        p
    }

    fn errors(spec: Value) -> Vec<String> {
        messages(&validate_create(res("pods"), &pod(spec)))
    }

    #[test]
    fn valid_pod_passes() {
        let e = errors(
            json!({"containers": [{"name": "web", "image": "demo-web:v1",
            "ports": [{"containerPort": 8080, "name": "http"}],
            "env": [{"name": "A", "value": "1"}],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            "readinessProbe": {"httpGet": {"port": "http"}},
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}}}],
            "volumes": [{"name": "data", "emptyDir": {}}]}),
        );
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn host_users_false_forbids_the_host_namespaces() {
        let c = json!([{"name": "c", "image": "i"}]);
        assert!(errors(json!({"hostUsers": false, "containers": c})).is_empty());
        let e = errors(
            json!({"hostUsers": false, "hostNetwork": true, "hostPID": true,
            "hostIPC": true, "containers": c}),
        );
        assert_eq!(
            e,
            vec![
                "spec.hostNetwork: Forbidden: when `pod.Spec.HostUsers` is false",
                "spec.HostPID: Forbidden: when `pod.Spec.HostUsers` is false",
                "spec.HostIPC: Forbidden: when `pod.Spec.HostUsers` is false",
            ]
        );
        assert!(
            errors(json!({"hostUsers": true, "hostNetwork": true, "containers": c})).is_empty()
        );
    }

    #[test]
    fn privileged_containers_cannot_refuse_escalation() {
        let e = errors(
            json!({"containers": [{"name": "c", "image": "i", "securityContext":
            {"privileged": true, "allowPrivilegeEscalation": false}}]}),
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("spec.containers[0].securityContext: Invalid value: "));
        assert!(e[0].ends_with(
            ": cannot set `allowPrivilegeEscalation` to false and `privileged` to true"
        ));
    }

    #[test]
    fn containers_required() {
        assert_eq!(errors(json!({})), vec!["spec.containers: Required value"]);
    }

    #[test]
    fn container_name_and_image() {
        let e = errors(
            json!({"containers": [{"name": "Web"}, {"name": "x", "image": "i"}, {"name": "x", "image": "i"}]}),
        );
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].starts_with(
            "spec.containers[0].name: Invalid value: \"Web\": a lowercase RFC 1123 label"
        ));
        assert_eq!(e[1], "spec.containers[0].image: Required value");
        assert_eq!(e[2], "spec.containers[2].name: Duplicate value: \"x\"");
    }

    #[test]
    fn init_and_app_container_names_share_a_namespace() {
        let e = errors(
            json!({"initContainers": [{"name": "a", "image": "i"}], "containers": [{"name": "a", "image": "i"}]}),
        );
        assert_eq!(e, vec!["spec.containers[0].name: Duplicate value: \"a\""]);
    }

    #[test]
    fn ports() {
        let e = errors(json!({"containers": [{"name": "c", "image": "i", "ports": [
            {"containerPort": 0}, {"containerPort": 80, "name": "HTTP"},
            {"containerPort": 81, "name": "web"}, {"containerPort": 82, "name": "web", "protocol": "FOO"}]}]}));
        assert_eq!(e[0], "spec.containers[0].ports[0].containerPort: Invalid value: 0: must be between 1 and 65535, inclusive");
        assert_eq!(e[1], "spec.containers[0].ports[1].name: Invalid value: \"HTTP\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
        assert_eq!(e[2], "spec.containers[0].ports[1].name: Invalid value: \"HTTP\": must contain at least one letter (a-z)");
        assert_eq!(
            e[3],
            "spec.containers[0].ports[3].name: Duplicate value: \"web\""
        );
        assert_eq!(e[4], "spec.containers[0].ports[3].protocol: Unsupported value: \"FOO\": supported values: \"SCTP\", \"TCP\", \"UDP\"");
        assert_eq!(e.len(), 5, "{e:?}");
    }

    #[test]
    fn policies() {
        let e = errors(json!({"restartPolicy": "Sometimes", "dnsPolicy": "Weird",
            "containers": [{"name": "c", "image": "i"}]}));
        assert_eq!(e, vec![
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            "spec.dnsPolicy: Unsupported value: \"Weird\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
        ]);
    }

    #[test]
    fn volumes() {
        let e = errors(json!({"containers": [{"name": "c", "image": "i",
            "volumeMounts": [{"name": "missing", "mountPath": "/a"}, {"name": "a", "mountPath": "/a"}]}],
            "volumes": [{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}, "hostPath": {"path": "/x"}},
                {"name": "c", "configMap": {}}]}));
        assert_eq!(
            e,
            vec![
            "spec.volumes[1].name: Duplicate value: \"a\"",
            "spec.volumes[1].emptyDir: Forbidden: may not specify more than 1 volume type",
            "spec.volumes[2].configMap.name: Required value",
            "spec.containers[0].volumeMounts[0].name: Not found: \"missing\"",
            "spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/a\": must be unique",
        ]
        );
    }

    #[test]
    fn env() {
        let e = errors(json!({"containers": [{"name": "c", "image": "i", "env": [
            {"name": "A=B"}, {"value": "x"}, {"name": "C", "value": "v", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "D", "valueFrom": {}}]}]}));
        assert_eq!(e, vec![
            "spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
            "spec.containers[0].env[1].name: Required value",
            "spec.containers[0].env[2].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty",
            "spec.containers[0].env[3].valueFrom: Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        ]);
    }

    #[test]
    fn resources_requests_within_limits() {
        let e = errors(json!({"containers": [{"name": "c", "image": "i",
            "resources": {"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"cpu": "500m", "memory": "abc"}}}]}));
        assert_eq!(e, vec![
            "spec.containers[0].resources.limits[memory]: Invalid value: \"abc\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            "spec.containers[0].resources.requests[cpu]: Invalid value: \"2\": must be less than or equal to cpu limit of 500m",
        ]);
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("100m"), Some(0.1));
        assert_eq!(parse_quantity("1Ki"), Some(1024.0));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("1.5"), Some(1.5));
        assert_eq!(parse_quantity("x"), None);
        assert_eq!(parse_quantity("1Q"), None);
    }

    #[test]
    fn probes() {
        let e = errors(json!({"containers": [{"name": "c", "image": "i",
            "livenessProbe": {"successThreshold": 2, "exec": {"command": ["true"]}},
            "readinessProbe": {}}],
            "initContainers": [{"name": "i", "image": "i", "readinessProbe": {"exec": {"command": ["x"]}}}]}));
        assert_eq!(e, vec![
            "spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always",
            "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
            "spec.containers[0].readinessProbe: Required value: must specify a handler type",
        ]);
    }

    #[test]
    fn tolerations() {
        let e = errors(
            json!({"containers": [{"name": "c", "image": "i"}], "tolerations": [
            {"operator": "Equal", "value": "x"}, {"key": "k", "operator": "Exists", "value": "v"},
            {"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}]}),
        );
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].starts_with(
            "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists"
        ));
        assert_eq!(e[1], "spec.tolerations[1].operator: Invalid value: \"v\": value must be empty when `operator` is 'Exists'");
        assert_eq!(e[2], "spec.tolerations[2].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set");
    }

    #[test]
    fn hostname_and_active_deadline() {
        let e = errors(
            json!({"containers": [{"name": "c", "image": "i"}], "hostname": "a.b", "activeDeadlineSeconds": 0}),
        );
        assert_eq!(e, vec![
            "spec.hostname: Invalid value: \"a.b\": must not contain dots",
            "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive",
        ]);
    }
}
