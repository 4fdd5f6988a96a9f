//! Per-kind validation dispatch and the core kinds: Pod, Service, ConfigMap, Secret, Namespace,
//! Node, Endpoints, EndpointSlice, PersistentVolume(Claim), Lease (the RBAC kinds are in
//! `rbac.rs`).

use std::collections::BTreeSet;

use serde_json::Value;

use super::{
    arr, child, has, index, int, is_config_map_key, is_dns1123_label, is_dns1123_subdomain,
    is_qualified_name, is_valid_ip, is_valid_port_num, key, obj, one_of, pod, rbac, s,
    validate_labels, workloads, FieldError,
};
use crate::registry::ResourceInfo;

/// Runs the kind-specific checks (metadata is validated by the caller).
pub(crate) fn validate_kind(resource: &ResourceInfo, object: &Value, errs: &mut Vec<FieldError>) {
    match (resource.group, resource.kind) {
        ("", "Pod") => {
            let empty = Value::Object(Default::default());
            pod::validate_pod_spec(object.get("spec").unwrap_or(&empty), "spec", errs);
        }
        ("", "Service") => validate_service(object, errs),
        ("", "ConfigMap") => validate_data_keys(object, false, errs),
        ("", "Secret") => validate_secret(object, errs),
        ("", "Namespace") => validate_namespace(object, errs),
        ("", "Node") => validate_node(object, errs),
        ("", "Endpoints") => validate_endpoints(object, errs),
        ("", "PersistentVolumeClaim") => validate_pvc(object, errs),
        ("", "PersistentVolume") => validate_pv(object, errs),
        ("discovery.k8s.io", "EndpointSlice") => validate_endpoint_slice(object, errs),
        ("coordination.k8s.io", "Lease") => validate_lease(object, errs),
        ("scheduling.k8s.io", "PriorityClass") => {
            crate::priority::validate_priority_class(object, errs)
        }
        ("apps", "Deployment") => workloads::validate_deployment(object, errs),
        ("apps", "ReplicaSet") => workloads::validate_replicaset(object, errs),
        ("", "ReplicationController") => workloads::validate_replication_controller(object, errs),
        ("apps", "StatefulSet") => workloads::validate_statefulset(object, errs),
        ("apps", "DaemonSet") => workloads::validate_daemonset(object, errs),
        ("apps", "ControllerRevision") => workloads::validate_controller_revision(object, errs),
        ("batch", "Job") => workloads::validate_job(object, errs),
        ("autoscaling", "HorizontalPodAutoscaler") => workloads::validate_hpa(object, errs),
        (rbac::GROUP, "Role") => rbac::validate_role(object, errs),
        (rbac::GROUP, "ClusterRole") => rbac::validate_cluster_role(object, errs),
        (rbac::GROUP, "RoleBinding") => rbac::validate_role_binding(object, errs),
        (rbac::GROUP, "ClusterRoleBinding") => rbac::validate_cluster_role_binding(object, errs),
        _ => {}
    }
}

const SERVICE_TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

fn validate_service(object: &Value, errs: &mut Vec<FieldError>) {
    let empty = Value::Object(Default::default());
    let spec = object.get("spec").unwrap_or(&empty);
    one_of(spec, "type", "spec", SERVICE_TYPES, false, errs);
    let svc_type = match s(spec, "type") {
        "" => "ClusterIP",
        t => t,
    };
    let cluster_ip = s(spec, "clusterIP");
    let headless = cluster_ip == "None";
    let ports = arr(spec, "ports");
    if svc_type == "ExternalName" {
        let name = s(spec, "externalName");
        if name.is_empty() {
            errs.push(FieldError::required("spec.externalName", ""));
        } else {
            for msg in is_dns1123_subdomain(name.trim_end_matches('.')) {
                errs.push(FieldError::invalid(
                    "spec.externalName",
                    &spec["externalName"],
                    &msg,
                ));
            }
        }
        if !cluster_ip.is_empty() || !arr(spec, "clusterIPs").is_empty() {
            errs.push(FieldError::forbidden(
                "spec.clusterIPs",
                "may not be set for ExternalName services",
            ));
        }
    } else if ports.is_empty() && !headless {
        errs.push(FieldError::required("spec.ports", ""));
    }
    let ips: Vec<Value> = match spec.get("clusterIPs").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => list.clone(),
        _ if !cluster_ip.is_empty() => vec![Value::String(cluster_ip.to_string())],
        _ => Vec::new(),
    };
    if svc_type != "ExternalName" {
        let go_list = |list: &[Value]| {
            let items: Vec<String> = list.iter().map(super::go_value).collect();
            format!("[]string{{{}}}", items.join(", "))
        };
        let explicit = arr(spec, "clusterIPs");
        if !explicit.is_empty() {
            if cluster_ip.is_empty() {
                errs.push(FieldError::invalid_raw(
                    "spec.clusterIPs",
                    &go_list(explicit),
                    "must be empty when `clusterIP` is not specified",
                ));
            } else if explicit[0].as_str() != Some(cluster_ip) {
                errs.push(FieldError::invalid_raw(
                    "spec.clusterIPs",
                    &go_list(explicit),
                    "first value must match `clusterIP`",
                ));
            }
        }
        for (i, ip) in ips.iter().enumerate() {
            let text = ip.as_str().unwrap_or("");
            if i == 0 && text == "None" {
                if ips.len() > 1 {
                    errs.push(FieldError::invalid_raw(
                        "spec.clusterIPs",
                        &go_list(&ips),
                        "'None' must be the first and only value",
                    ));
                } else if svc_type == "LoadBalancer" || svc_type == "NodePort" {
                    errs.push(FieldError::invalid(
                        index("spec.clusterIPs", 0),
                        ip,
                        &format!("may not be set to 'None' for {svc_type} services"),
                    ));
                }
                continue;
            }
            for msg in is_valid_ip(text) {
                errs.push(FieldError::invalid(index("spec.clusterIPs", i), ip, &msg));
            }
        }
        if ips.len() > 2 {
            errs.push(FieldError::invalid_raw(
                "spec.clusterIPs",
                &go_list(&ips),
                "may only hold up to 2 values",
            ));
        }
    }
    let require_name = ports.len() > 1;
    let mut names = BTreeSet::new();
    let mut keys = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let ppath = index("spec.ports", i);
        let name = s(p, "name");
        if require_name && name.is_empty() {
            errs.push(FieldError::required(child(&ppath, "name"), ""));
        } else if !name.is_empty() {
            for msg in is_dns1123_label(name) {
                errs.push(FieldError::invalid(child(&ppath, "name"), &p["name"], &msg));
            }
            if !names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(child(&ppath, "name"), &p["name"]));
            }
        }
        match int(p, "port") {
            None => errs.push(FieldError::required(child(&ppath, "port"), "")),
            Some(n) => {
                for msg in is_valid_port_num(n) {
                    errs.push(FieldError::invalid(
                        child(&ppath, "port"),
                        &Value::from(n),
                        &msg,
                    ));
                }
            }
        }
        one_of(p, "protocol", &ppath, PROTOCOLS, true, errs);
        if has(p, "targetPort") {
            pod::validate_port_ref(p.get("targetPort"), &child(&ppath, "targetPort"), errs);
        }
        if let Some(np) = int(p, "nodePort").filter(|n| *n != 0) {
            if svc_type == "ClusterIP" || svc_type == "ExternalName" {
                errs.push(FieldError::forbidden(
                    child(&ppath, "nodePort"),
                    &format!("may not be used when `type` is '{svc_type}'"),
                ));
            } else {
                for msg in is_valid_port_num(np) {
                    errs.push(FieldError::invalid(
                        child(&ppath, "nodePort"),
                        &Value::from(np),
                        &msg,
                    ));
                }
            }
        }
        let k = (int(p, "port").unwrap_or(0), s(p, "protocol").to_string());
        if !keys.insert(k.clone()) {
            errs.push(FieldError::duplicate(
                &ppath,
                &serde_json::json!({"port": k.0, "protocol": k.1}),
            ));
        }
    }
    if svc_type != "ExternalName" {
        validate_labels(spec.get("selector"), "spec.selector", errs);
    }
    one_of(
        spec,
        "sessionAffinity",
        "spec",
        &["ClientIP", "None"],
        false,
        errs,
    );
    if s(spec, "sessionAffinity") == "ClientIP" {
        if let Some(t) = spec
            .pointer("/sessionAffinityConfig/clientIP/timeoutSeconds")
            .and_then(Value::as_i64)
        {
            if !(1..=86400).contains(&t) {
                errs.push(FieldError::invalid(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    &Value::from(t),
                    "must be greater than 0 and less than 86400",
                ));
            }
        }
    } else if has(spec, "sessionAffinityConfig") && s(spec, "sessionAffinity") == "None" {
        errs.push(FieldError::invalid(
            "spec.sessionAffinityConfig",
            &spec["sessionAffinityConfig"],
            "must not be set when session affinity is None",
        ));
    }
    if let Some(etp) = spec
        .get("externalTrafficPolicy")
        .filter(|v| !v.is_null() && v.as_str() != Some(""))
    {
        if svc_type == "ClusterIP" || svc_type == "ExternalName" {
            errs.push(FieldError::invalid(
                "spec.externalTrafficPolicy",
                etp,
                "may only be set when `type` is 'NodePort' or 'LoadBalancer'",
            ));
        } else {
            one_of(
                spec,
                "externalTrafficPolicy",
                "spec",
                &["Cluster", "Local"],
                false,
                errs,
            );
        }
    }
    one_of(
        spec,
        "internalTrafficPolicy",
        "spec",
        &["Cluster", "Local"],
        false,
        errs,
    );
    one_of(
        spec,
        "ipFamilyPolicy",
        "spec",
        &["SingleStack", "PreferDualStack", "RequireDualStack"],
        false,
        errs,
    );
    for (i, f) in arr(spec, "ipFamilies").iter().enumerate() {
        if !matches!(f.as_str(), Some("IPv4" | "IPv6")) {
            errs.push(FieldError::not_supported(
                index("spec.ipFamilies", i),
                f,
                &["IPv4", "IPv6"],
            ));
        }
    }
    for (i, ip) in arr(spec, "externalIPs").iter().enumerate() {
        if !is_valid_ip(ip.as_str().unwrap_or("")).is_empty() {
            errs.push(FieldError::invalid(
                index("spec.externalIPs", i),
                ip,
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ));
        }
    }
}

const MAX_DATA_SIZE: usize = 1024 * 1024;

fn validate_data_keys(object: &Value, secret: bool, errs: &mut Vec<FieldError>) {
    let mut total = 0;
    let (data_field, binary_field) = if secret {
        ("data", "stringData")
    } else {
        ("data", "binaryData")
    };
    for field in [data_field, binary_field] {
        for (k, v) in obj(object, field).into_iter().flatten() {
            for msg in is_config_map_key(k) {
                errs.push(FieldError::invalid(
                    key(field, k),
                    &Value::String(k.clone()),
                    &msg,
                ));
            }
            total += v.as_str().map(str::len).unwrap_or(0);
            if field == binary_field
                && !secret
                && obj(object, data_field).is_some_and(|d| d.contains_key(k))
            {
                errs.push(FieldError::invalid(
                    key(data_field, k),
                    &Value::String(k.clone()),
                    "duplicate of key present in binaryData",
                ));
            }
        }
    }
    if total > MAX_DATA_SIZE {
        let path = if secret { "data" } else { "" };
        errs.push(FieldError {
            reason: "FieldValueTooLong",
            field: path.to_string(),
            message: format!("Too long: must have at most {MAX_DATA_SIZE} bytes"),
        });
    }
}

fn validate_secret(object: &Value, errs: &mut Vec<FieldError>) {
    validate_data_keys(object, true, errs);
    let has_key = |k: &str| {
        obj(object, "data").is_some_and(|d| d.contains_key(k))
            || obj(object, "stringData").is_some_and(|d| d.contains_key(k))
    };
    let secret_type = s(object, "type");
    let required: &[&str] = match secret_type {
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
        "kubernetes.io/dockercfg" => &[".dockercfg"],
        "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
        _ => &[],
    };
    for k in required {
        if !has_key(k) {
            errs.push(FieldError::required(key("data", k), ""));
        }
    }
    if secret_type == "kubernetes.io/basic-auth" && !has_key("username") && !has_key("password") {
        errs.push(FieldError::required(
            "data[username]",
            "either username or password is required",
        ));
    }
    if secret_type == "kubernetes.io/service-account-token" {
        let annotated = object
            .pointer("/metadata/annotations/kubernetes.io~1service-account.name")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        if !annotated {
            errs.push(FieldError::required(
                "metadata.annotations[kubernetes.io/service-account.name]",
                "",
            ));
        }
    }
}

fn validate_namespace(object: &Value, errs: &mut Vec<FieldError>) {
    if let Some(spec) = object.get("spec") {
        for (i, f) in arr(spec, "finalizers").iter().enumerate() {
            let text = f.as_str().unwrap_or("");
            for msg in is_qualified_name(text) {
                errs.push(FieldError::invalid(index("spec.finalizers", i), f, &msg));
            }
        }
    }
}

fn validate_node(object: &Value, errs: &mut Vec<FieldError>) {
    let Some(spec) = object.get("spec") else {
        return;
    };
    for (i, t) in arr(spec, "taints").iter().enumerate() {
        let path = index("spec.taints", i);
        let k = s(t, "key");
        if k.is_empty() {
            errs.push(FieldError::required(child(&path, "key"), ""));
        } else {
            for msg in is_qualified_name(k) {
                errs.push(FieldError::invalid(child(&path, "key"), &t["key"], &msg));
            }
        }
        one_of(
            t,
            "effect",
            &path,
            &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            true,
            errs,
        );
    }
    for (i, c) in arr(spec, "podCIDRs").iter().enumerate() {
        let text = c.as_str().unwrap_or("");
        let ok = text.split_once('/').is_some_and(|(ip, bits)| {
            ip.parse::<std::net::IpAddr>().is_ok() && bits.parse::<u8>().is_ok()
        });
        if !ok {
            errs.push(FieldError::invalid(
                index("spec.podCIDRs", i),
                c,
                "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            ));
        }
    }
}

fn validate_endpoint_ports(ports: &[Value], path: &str, errs: &mut Vec<FieldError>, slice: bool) {
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let ppath = index(path, i);
        let name = s(p, "name");
        if !slice && ports.len() > 1 && name.is_empty() {
            errs.push(FieldError::required(child(&ppath, "name"), ""));
        } else if !name.is_empty() {
            for msg in is_dns1123_label(name) {
                errs.push(FieldError::invalid(child(&ppath, "name"), &p["name"], &msg));
            }
        }
        if (!name.is_empty() || slice) && !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(child(&ppath, "name"), &p["name"]));
        }
        match int(p, "port") {
            None if !slice => errs.push(FieldError::required(child(&ppath, "port"), "")),
            None => {}
            Some(n) => {
                for msg in is_valid_port_num(n) {
                    errs.push(FieldError::invalid(
                        child(&ppath, "port"),
                        &Value::from(n),
                        &msg,
                    ));
                }
            }
        }
        one_of(p, "protocol", &ppath, PROTOCOLS, !slice, errs);
    }
}

fn validate_endpoints(object: &Value, errs: &mut Vec<FieldError>) {
    for (i, subset) in arr(object, "subsets").iter().enumerate() {
        let spath = index("subsets", i);
        for field in ["addresses", "notReadyAddresses"] {
            for (j, a) in arr(subset, field).iter().enumerate() {
                let apath = index(&child(&spath, field), j);
                let ip = s(a, "ip");
                if ip.is_empty() {
                    errs.push(FieldError::required(child(&apath, "ip"), ""));
                } else {
                    for msg in is_valid_ip(ip) {
                        errs.push(FieldError::invalid(child(&apath, "ip"), &a["ip"], &msg));
                    }
                }
            }
        }
        validate_endpoint_ports(arr(subset, "ports"), &child(&spath, "ports"), errs, false);
    }
}

fn validate_endpoint_slice(object: &Value, errs: &mut Vec<FieldError>) {
    let address_type = s(object, "addressType");
    match object.get("addressType") {
        None | Some(Value::Null) => errs.push(FieldError::required("addressType", "")),
        Some(v) => {
            if !["IPv4", "IPv6", "FQDN"].contains(&address_type) {
                errs.push(FieldError::not_supported(
                    "addressType",
                    v,
                    &["FQDN", "IPv4", "IPv6"],
                ));
            }
        }
    }
    for (i, e) in arr(object, "endpoints").iter().enumerate() {
        let epath = index("endpoints", i);
        let addresses = arr(e, "addresses");
        if addresses.is_empty() {
            errs.push(FieldError::required(
                child(&epath, "addresses"),
                "must contain at least 1 address",
            ));
        } else if addresses.len() > 100 {
            errs.push(FieldError {
                reason: "FieldValueTooMany",
                field: child(&epath, "addresses"),
                message: format!("Too many: {}: must have at most 100 items", addresses.len()),
            });
        }
        for (j, a) in addresses.iter().enumerate() {
            let text = a.as_str().unwrap_or("");
            let apath = index(&child(&epath, "addresses"), j);
            let problem = match address_type {
                "IPv4" => text
                    .parse::<std::net::Ipv4Addr>()
                    .is_err()
                    .then_some("must be a valid IPv4 address"),
                "IPv6" => text
                    .parse::<std::net::Ipv6Addr>()
                    .is_err()
                    .then_some("must be a valid IPv6 address"),
                _ => None,
            };
            if let Some(msg) = problem {
                errs.push(FieldError::invalid(apath, a, msg));
            }
        }
        if let Some(node) = e.get("nodeName").and_then(Value::as_str) {
            for msg in is_dns1123_subdomain(node) {
                errs.push(FieldError::invalid(
                    child(&epath, "nodeName"),
                    &e["nodeName"],
                    &msg,
                ));
            }
        }
    }
    validate_endpoint_ports(arr(object, "ports"), "ports", errs, true);
}

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

fn validate_access_modes(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let modes = arr(spec, "accessModes");
    if modes.is_empty() {
        errs.push(FieldError::required(
            child(path, "accessModes"),
            "at least 1 access mode is required",
        ));
    }
    for m in modes {
        if !m.as_str().is_some_and(|x| ACCESS_MODES.contains(&x)) {
            errs.push(FieldError::not_supported(
                child(path, "accessModes"),
                m,
                ACCESS_MODES,
            ));
        }
    }
}

fn validate_storage_quantity(q: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    match q {
        None | Some(Value::Null) => errs.push(FieldError::required(path, "")),
        Some(v) => {
            let text = match v {
                Value::String(t) => t.clone(),
                other => other.to_string(),
            };
            match pod::parse_quantity(&text) {
                Some(n) if n > 0.0 => {}
                Some(_) => errs.push(FieldError::invalid(path, &Value::String(text), "must be greater than zero")),
                None => errs.push(FieldError::invalid(
                    path,
                    &Value::String(text),
                    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                )),
            }
        }
    }
}

fn validate_pvc(object: &Value, errs: &mut Vec<FieldError>) {
    let empty = Value::Object(Default::default());
    let spec = object.get("spec").unwrap_or(&empty);
    validate_access_modes(spec, "spec", errs);
    validate_storage_quantity(
        spec.pointer("/resources/requests/storage"),
        "spec.resources[storage]",
        errs,
    );
    one_of(
        spec,
        "volumeMode",
        "spec",
        &["Block", "Filesystem"],
        false,
        errs,
    );
    if let Some(sel) = spec.get("selector").filter(|v| !v.is_null()) {
        workloads::validate_label_selector(sel, "spec.selector", errs);
    }
}

fn validate_pv(object: &Value, errs: &mut Vec<FieldError>) {
    let empty = Value::Object(Default::default());
    let spec = object.get("spec").unwrap_or(&empty);
    validate_access_modes(spec, "spec", errs);
    if obj(spec, "capacity").is_none_or(|c| c.is_empty()) {
        errs.push(FieldError::required("spec.capacity", ""));
    } else {
        validate_storage_quantity(
            spec.pointer("/capacity/storage"),
            "spec.capacity[storage]",
            errs,
        );
    }
    let sources = [
        "hostPath",
        "local",
        "nfs",
        "csi",
        "iscsi",
        "fc",
        "rbd",
        "cephfs",
        "glusterfs",
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "azureDisk",
        "azureFile",
        "cinder",
        "flexVolume",
        "flocker",
        "photonPersistentDisk",
        "portworxVolume",
        "quobyte",
        "scaleIO",
        "storageos",
        "vsphereVolume",
    ];
    let n = sources.iter().filter(|k| has(spec, k)).count();
    if n == 0 {
        errs.push(FieldError::required("spec", "must specify a volume type"));
    } else if n > 1 {
        errs.push(FieldError::forbidden(
            "spec",
            "may not specify more than 1 volume type",
        ));
    }
    one_of(
        spec,
        "persistentVolumeReclaimPolicy",
        "spec",
        &["Delete", "Recycle", "Retain"],
        false,
        errs,
    );
    one_of(
        spec,
        "volumeMode",
        "spec",
        &["Block", "Filesystem"],
        false,
        errs,
    );
}

fn validate_lease(object: &Value, errs: &mut Vec<FieldError>) {
    let Some(spec) = object.get("spec") else {
        return;
    };
    if let Some(n) = int(spec, "leaseDurationSeconds") {
        if n <= 0 {
            errs.push(FieldError::invalid(
                "spec.leaseDurationSeconds",
                &Value::from(n),
                "must be greater than 0",
            ));
        }
    }
    if let Some(n) = int(spec, "leaseTransitions") {
        if n < 0 {
            errs.push(FieldError::invalid(
                "spec.leaseTransitions",
                &Value::from(n),
                "must be greater than or equal to 0",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{messages, res};
    use super::super::validate_create;
    use crate::defaults;
    use serde_json::{json, Value};

    fn svc(spec: Value) -> Vec<String> {
        let mut s = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec});
        defaults::apply(res("services"), &mut s);
        messages(&validate_create(res("services"), &s))
    }

    #[test]
    fn valid_services() {
        assert!(svc(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]})).is_empty());
        assert!(svc(json!({"clusterIP": "None", "selector": {"app": "web"}})).is_empty());
        assert!(svc(json!({"type": "ExternalName", "externalName": "db.example.com"})).is_empty());
        assert!(
            svc(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]})).is_empty()
        );
    }

    #[test]
    fn service_ports() {
        assert_eq!(svc(json!({})), vec!["spec.ports: Required value"]);
        assert_eq!(
            svc(json!({"ports": [{"port": 80}, {"port": 0, "name": "b"}]})),
            vec![
                "spec.ports[0].name: Required value",
                "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[1].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
            ]
        );
        assert_eq!(
            svc(json!({"ports": [{"port": 80, "name": "a"}, {"port": 81, "name": "a"}]})),
            vec!["spec.ports[1].name: Duplicate value: \"a\""]
        );
        assert_eq!(
            svc(json!({"ports": [{"port": 80, "nodePort": 30000}]})),
            vec!["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]
        );
    }

    #[test]
    fn service_type_and_cluster_ip() {
        assert_eq!(
            svc(json!({"type": "Foo", "ports": [{"port": 80}]})),
            vec!["spec.type: Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""]
        );
        assert_eq!(
            svc(json!({"clusterIP": "abc", "ports": [{"port": 80}]})),
            vec!["spec.clusterIPs[0]: Invalid value: \"abc\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
        );
        assert_eq!(
            svc(json!({"type": "NodePort", "clusterIP": "None", "ports": [{"port": 80}]})),
            vec!["spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"]
        );
        assert_eq!(
            svc(json!({"clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.2"], "ports": [{"port": 80}]})),
            vec!["spec.clusterIPs: Invalid value: []string{\"10.96.0.2\"}: first value must match `clusterIP`"]
        );
        assert_eq!(
            svc(json!({"type": "ExternalName"})),
            vec!["spec.externalName: Required value"]
        );
    }

    #[test]
    fn configmap_keys() {
        let cm = json!({"metadata": {"name": "c"}, "data": {"ok.key": "1", "bad/key": "2"}, "binaryData": {"ok.key": "AA=="}});
        assert_eq!(
            messages(&validate_create(res("configmaps"), &cm)),
            vec![
                "data[bad/key]: Invalid value: \"bad/key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                "data[ok.key]: Invalid value: \"ok.key\": duplicate of key present in binaryData",
            ]
        );
    }

    #[test]
    fn secret_types() {
        let s = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "AA=="}});
        assert_eq!(
            messages(&validate_create(res("secrets"), &s)),
            vec!["data[tls.key]: Required value"]
        );
    }

    #[test]
    fn node_taints_and_lease() {
        let n = json!({"metadata": {"name": "n1"}, "spec": {"taints": [{"key": "k", "effect": "Bad"}]}});
        assert_eq!(
            messages(&validate_create(res("nodes"), &n)),
            vec!["spec.taints[0].effect: Unsupported value: \"Bad\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""]
        );
        let l = json!({"metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": 0}});
        assert_eq!(
            messages(&validate_create(res("leases"), &l)),
            vec!["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]
        );
    }

    #[test]
    fn endpoints_and_slices() {
        let e = json!({"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "10.0.0"}], "ports": [{"port": 80, "protocol": "TCP"}]}]});
        assert_eq!(
            messages(&validate_create(res("endpoints"), &e)),
            vec!["subsets[0].addresses[0].ip: Invalid value: \"10.0.0\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
        );
        let s = json!({"metadata": {"name": "s"}, "addressType": "IPv4", "endpoints": [{"addresses": []}]});
        assert_eq!(
            messages(&validate_create(res("endpointslices"), &s)),
            vec!["endpoints[0].addresses: Required value: must contain at least 1 address"]
        );
    }

    #[test]
    fn pvc_and_pv() {
        let mut c = json!({"metadata": {"name": "c"}, "spec": {}});
        defaults::apply(res("persistentvolumeclaims"), &mut c);
        assert_eq!(
            messages(&validate_create(res("persistentvolumeclaims"), &c)),
            vec![
                "spec.accessModes: Required value: at least 1 access mode is required",
                "spec.resources[storage]: Required value",
            ]
        );
        let mut v = json!({"metadata": {"name": "v"}, "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}, "hostPath": {"path": "/x"}}});
        defaults::apply(res("persistentvolumes"), &mut v);
        assert!(validate_create(res("persistentvolumes"), &v).is_empty());
    }

    #[test]
    fn namespace_finalizers() {
        let mut n = json!({"metadata": {"name": "team"}});
        defaults::apply(res("namespaces"), &mut n);
        assert!(validate_create(res("namespaces"), &n).is_empty());
    }
}
