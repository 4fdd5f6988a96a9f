//! Defaulting: fills the fields Kubernetes fills on create and update.
//!
//! Mirrors upstream's `pkg/apis/*/v1/defaults.go` (plus the few fields that upstream fills in
//! registry strategies, such as a Job's generated selector and a Namespace's finalizer).

use serde_json::{json, Map, Value};

use crate::registry::ResourceInfo;

/// Applies Kubernetes' defaults to an object of `resource` in place.
pub fn apply(resource: &ResourceInfo, object: &mut Value) {
    if !object.is_object() {
        return;
    }
    match (resource.group, resource.kind) {
        ("", "Pod") => default_pod(object),
        ("", "Service") => default_service(object),
        ("", "Namespace") => default_namespace(object),
        ("", "Node") => default_node(object),
        ("", "PersistentVolumeClaim") => default_pvc(object),
        ("", "PersistentVolume") => default_pv(object),
        ("", "Secret") => default_secret(object),
        ("", "Endpoints") => default_endpoints(object),
        ("discovery.k8s.io", "EndpointSlice") => default_endpoint_slice(object),
        ("apps", "Deployment") => default_deployment(object),
        ("apps", "ReplicaSet") => default_replicaset(object),
        ("", "ReplicationController") => default_replication_controller(object),
        ("apps", "StatefulSet") => default_statefulset(object),
        ("apps", "DaemonSet") => default_daemonset(object),
        ("batch", "Job") => default_job(object),
        ("autoscaling", "HorizontalPodAutoscaler") => default_hpa(object),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            crate::rbac::default_binding(object)
        }
        ("scheduling.k8s.io", "PriorityClass") => set_default(
            root(object),
            "preemptionPolicy",
            json!("PreemptLowerPriority"),
        ),
        _ => {}
    }
}

/// The tolerations the DefaultTolerationSeconds admission plugin adds to pods: NoExecute for
/// `node.kubernetes.io/not-ready` and `node.kubernetes.io/unreachable`, for the apiserver's
/// --default-not-ready-toleration-seconds and --default-unreachable-toleration-seconds (300
/// each by default), each unless the pod already tolerates that taint.
pub fn default_tolerations(pod: &mut Value, not_ready_seconds: i64, unreachable_seconds: i64) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let list = spec
        .entry("tolerations")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    let Some(items) = list.as_array_mut() else {
        return;
    };
    for (key, seconds) in [
        ("node.kubernetes.io/not-ready", not_ready_seconds),
        ("node.kubernetes.io/unreachable", unreachable_seconds),
    ] {
        let tolerated = items.iter().any(|t| {
            let t_key = t.get("key").and_then(Value::as_str).unwrap_or("");
            let op = t.get("operator").and_then(Value::as_str).unwrap_or("Equal");
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
            let key_ok = t_key == key || (t_key.is_empty() && op == "Exists");
            key_ok && (effect.is_empty() || effect == "NoExecute")
        });
        if !tolerated {
            items.push(json!({
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": seconds
            }));
        }
    }
}

fn root(object: &mut Value) -> &mut Map<String, Value> {
    if !object.is_object() {
        *object = Value::Object(Map::new());
    }
    object.as_object_mut().expect("object")
}

/// The map at `key`, created (or replacing a null) when missing.
fn child<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let v = map
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    v.as_object_mut().expect("object")
}

/// The map at `key` when present and an object.
fn child_opt<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    map.get_mut(key).and_then(Value::as_object_mut)
}

fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    match map.get(key) {
        None | Some(Value::Null) => {
            map.insert(key.to_string(), value);
        }
        _ => {}
    }
}

fn str_empty(map: &Map<String, Value>, key: &str) -> bool {
    match map.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

fn set_default_str(map: &mut Map<String, Value>, key: &str, value: &str) {
    if str_empty(map, key) {
        map.insert(key.to_string(), Value::String(value.to_string()));
    }
}

fn for_each_item(
    map: &mut Map<String, Value>,
    key: &str,
    mut f: impl FnMut(&mut Map<String, Value>),
) {
    if let Some(items) = map.get_mut(key).and_then(Value::as_array_mut) {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            f(item);
        }
    }
}

fn default_pod(object: &mut Value) {
    let obj = root(object);
    let spec = child(obj, "spec");
    default_pod_spec(spec, true);
    set_default_str(spec, "serviceAccountName", "default");
    let sa = spec
        .get("serviceAccountName")
        .cloned()
        .unwrap_or(Value::Null);
    set_default(spec, "serviceAccount", sa);
    // spec.priority is the Priority admission's (the apiserver), not a default
    // SetDefaults_Pod: requests default to limits.
    for key in ["containers", "initContainers"] {
        for_each_item(spec, key, |c| {
            let Some(limits) = c
                .get("resources")
                .and_then(|r| r.get("limits"))
                .and_then(Value::as_object)
                .cloned()
            else {
                return;
            };
            if limits.is_empty() {
                return;
            }
            let requests = child(child(c, "resources"), "requests");
            for (k, v) in limits {
                requests.entry(k).or_insert(v);
            }
        });
    }
}

/// Pod spec defaults shared by pods and pod templates (`restart_policy` false for Job
/// templates, which must set it themselves).
fn default_pod_spec(spec: &mut Map<String, Value>, restart_policy: bool) {
    if restart_policy {
        set_default_str(spec, "restartPolicy", "Always");
    }
    set_default_str(spec, "dnsPolicy", "ClusterFirst");
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "securityContext", json!({}));
    set_default_str(spec, "schedulerName", "default-scheduler");
    set_default(spec, "enableServiceLinks", json!(true));
    let host_network = spec
        .get("hostNetwork")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    for key in ["containers", "initContainers", "ephemeralContainers"] {
        for_each_item(spec, key, |c| default_container(c, host_network));
    }
    for_each_item(spec, "volumes", default_volume);
}

fn image_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent",
        _ => "Always",
    }
}

fn default_container(c: &mut Map<String, Value>, host_network: bool) {
    if str_empty(c, "imagePullPolicy") {
        let image = c.get("image").and_then(Value::as_str).unwrap_or("");
        let policy = image_pull_policy(image);
        c.insert("imagePullPolicy".into(), json!(policy));
    }
    set_default_str(c, "terminationMessagePath", "/dev/termination-log");
    set_default_str(c, "terminationMessagePolicy", "File");
    for_each_item(c, "ports", |p| {
        set_default_str(p, "protocol", "TCP");
        if host_network {
            if let Some(cp) = p.get("containerPort").cloned() {
                let unset = matches!(p.get("hostPort"), None | Some(Value::Null))
                    || p.get("hostPort").and_then(Value::as_i64) == Some(0);
                if unset {
                    p.insert("hostPort".into(), cp);
                }
            }
        }
    });
    for_each_item(c, "env", |e| {
        if let Some(from) = child_opt(e, "valueFrom") {
            if let Some(fr) = child_opt(from, "fieldRef") {
                set_default_str(fr, "apiVersion", "v1");
            }
        }
    });
    for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(probe) = child_opt(c, key) {
            set_default(probe, "timeoutSeconds", json!(1));
            set_default(probe, "periodSeconds", json!(10));
            set_default(probe, "successThreshold", json!(1));
            set_default(probe, "failureThreshold", json!(3));
            default_handler(probe);
        }
    }
    if let Some(lifecycle) = child_opt(c, "lifecycle") {
        for key in ["postStart", "preStop"] {
            if let Some(h) = child_opt(lifecycle, key) {
                default_handler(h);
            }
        }
    }
}

fn default_handler(handler: &mut Map<String, Value>) {
    if let Some(get) = child_opt(handler, "httpGet") {
        set_default_str(get, "path", "/");
        set_default_str(get, "scheme", "HTTP");
    }
}

const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

/// The volume source fields a volume may carry.
pub fn volume_sources() -> &'static [&'static str] {
    VOLUME_SOURCES
}

fn default_volume(v: &mut Map<String, Value>) {
    let has_source = VOLUME_SOURCES
        .iter()
        .any(|k| !matches!(v.get(*k), None | Some(Value::Null)));
    if !has_source {
        v.insert("emptyDir".into(), json!({}));
    }
    for key in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(src) = child_opt(v, key) {
            set_default(src, "defaultMode", json!(420));
        }
    }
    if let Some(hp) = child_opt(v, "hostPath") {
        set_default(hp, "type", json!(""));
    }
    if let Some(d) = child_opt(v, "downwardAPI") {
        for_each_item(d, "items", |i| {
            if let Some(fr) = child_opt(i, "fieldRef") {
                set_default_str(fr, "apiVersion", "v1");
            }
        });
    }
}

fn default_template(spec: &mut Map<String, Value>, restart_policy: bool) {
    let template = child(spec, "template");
    let pod_spec = child(template, "spec");
    default_pod_spec(pod_spec, restart_policy);
}

fn default_deployment(object: &mut Value) {
    let spec = child(root(object), "spec");
    set_default(spec, "replicas", json!(1));
    let strategy = child(spec, "strategy");
    set_default_str(strategy, "type", "RollingUpdate");
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        let ru = child(strategy, "rollingUpdate");
        set_default(ru, "maxUnavailable", json!("25%"));
        set_default(ru, "maxSurge", json!("25%"));
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
    set_default(spec, "progressDeadlineSeconds", json!(600));
    default_template(spec, true);
}

fn default_replicaset(object: &mut Value) {
    let spec = child(root(object), "spec");
    set_default(spec, "replicas", json!(1));
    default_template(spec, true);
}

/// upstream's SetDefaults_ReplicationController: the selector and the object's labels come from
/// the template's labels when empty, one replica.
fn default_replication_controller(object: &mut Value) {
    let template_labels = object
        .pointer("/spec/template/metadata/labels")
        .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
        .cloned();
    if let Some(labels) = template_labels {
        let spec = child(root(object), "spec");
        if spec
            .get("selector")
            .and_then(Value::as_object)
            .is_none_or(|m| m.is_empty())
        {
            spec.insert("selector".into(), labels.clone());
        }
        let meta = child(root(object), "metadata");
        if meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(|m| m.is_empty())
        {
            meta.insert("labels".into(), labels);
        }
    }
    let spec = child(root(object), "spec");
    set_default(spec, "replicas", json!(1));
    if spec.get("template").is_some_and(Value::is_object) {
        default_template(spec, true);
    }
}

fn default_statefulset(object: &mut Value) {
    let spec = child(root(object), "spec");
    set_default(spec, "replicas", json!(1));
    set_default_str(spec, "podManagementPolicy", "OrderedReady");
    let strategy = child(spec, "updateStrategy");
    set_default_str(strategy, "type", "RollingUpdate");
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        let ru = child(strategy, "rollingUpdate");
        set_default(ru, "partition", json!(0));
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
    let retention = child(spec, "persistentVolumeClaimRetentionPolicy");
    set_default_str(retention, "whenDeleted", "Retain");
    set_default_str(retention, "whenScaled", "Retain");
    if let Some(templates) = spec
        .get_mut("volumeClaimTemplates")
        .and_then(Value::as_array_mut)
    {
        for t in templates.iter_mut().filter(|t| t.is_object()) {
            default_pvc(t);
        }
    }
    default_template(spec, true);
}

fn default_daemonset(object: &mut Value) {
    let spec = child(root(object), "spec");
    let strategy = child(spec, "updateStrategy");
    set_default_str(strategy, "type", "RollingUpdate");
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        let ru = child(strategy, "rollingUpdate");
        set_default(ru, "maxUnavailable", json!(1));
        set_default(ru, "maxSurge", json!(0));
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
    default_template(spec, true);
}

fn default_job(object: &mut Value) {
    let obj = root(object);
    let uid = obj
        .get("metadata")
        .and_then(|m| m.get("uid"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let name = obj
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let spec = child(obj, "spec");
    let parallelism_unset = matches!(spec.get("parallelism"), None | Some(Value::Null));
    let completions_unset = matches!(spec.get("completions"), None | Some(Value::Null));
    if parallelism_unset && completions_unset {
        spec.insert("completions".into(), json!(1));
    }
    set_default(spec, "parallelism", json!(1));
    if matches!(spec.get("backoffLimitPerIndex"), None | Some(Value::Null)) {
        set_default(spec, "backoffLimit", json!(6));
    } else {
        set_default(spec, "backoffLimit", json!(i32::MAX));
    }
    set_default_str(spec, "completionMode", "NonIndexed");
    set_default(spec, "suspend", json!(false));
    let has_failure_policy = !matches!(spec.get("podFailurePolicy"), None | Some(Value::Null));
    set_default_str(
        spec,
        "podReplacementPolicy",
        if has_failure_policy {
            "Failed"
        } else {
            "TerminatingOrFailed"
        },
    );
    let manual = spec
        .get("manualSelector")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !manual && !uid.is_empty() {
        let template = child(spec, "template");
        let labels = child(child(template, "metadata"), "labels");
        labels.insert("batch.kubernetes.io/controller-uid".into(), json!(uid));
        labels.insert("batch.kubernetes.io/job-name".into(), json!(name));
        labels.insert("controller-uid".into(), json!(uid));
        labels.insert("job-name".into(), json!(name));
        if matches!(spec.get("selector"), None | Some(Value::Null)) {
            spec.insert(
                "selector".into(),
                json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
            );
        }
    }
    default_template(spec, false);
    let template_labels = spec
        .get("template")
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .cloned();
    let meta = child(obj, "metadata");
    let labels_empty = meta
        .get("labels")
        .and_then(Value::as_object)
        .is_none_or(Map::is_empty);
    if labels_empty {
        if let Some(l) = template_labels {
            meta.insert("labels".into(), l);
        }
    }
}

fn default_service(object: &mut Value) {
    let spec = child(root(object), "spec");
    set_default_str(spec, "type", "ClusterIP");
    set_default_str(spec, "sessionAffinity", "None");
    let svc_type = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    for_each_item(spec, "ports", |p| {
        set_default_str(p, "protocol", "TCP");
        let target_unset = match p.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            _ => false,
        };
        if target_unset {
            if let Some(port) = p.get("port").cloned() {
                p.insert("targetPort".into(), port);
            }
        }
    });
    // Upstream SetDefaults_Service: None drops the ClientIP config (so patching a service back
    // to None works), ClientIP gets the 3-hour timeout.
    if spec.get("sessionAffinity").and_then(Value::as_str) == Some("None") {
        spec.remove("sessionAffinityConfig");
    }
    if spec.get("sessionAffinity").and_then(Value::as_str) == Some("ClientIP") {
        let cfg = child(spec, "sessionAffinityConfig");
        let client = child(cfg, "clientIP");
        set_default(client, "timeoutSeconds", json!(10800));
    }
    if svc_type == "ExternalName" {
        return;
    }
    set_default_str(spec, "internalTrafficPolicy", "Cluster");
    if svc_type == "NodePort" || svc_type == "LoadBalancer" {
        set_default_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if svc_type == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    let cluster_ip = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !cluster_ip.is_empty() && matches!(spec.get("clusterIPs"), None | Some(Value::Null)) {
        spec.insert("clusterIPs".into(), json!([cluster_ip]));
    }
    let headless_no_selector = cluster_ip == "None"
        && spec
            .get("selector")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty);
    set_default_str(
        spec,
        "ipFamilyPolicy",
        if headless_no_selector {
            "RequireDualStack"
        } else {
            "SingleStack"
        },
    );
    let families_empty = spec
        .get("ipFamilies")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if families_empty {
        let family = if cluster_ip.contains(':') {
            "IPv6"
        } else {
            "IPv4"
        };
        spec.insert("ipFamilies".into(), json!([family]));
    }
}

fn default_namespace(object: &mut Value) {
    let obj = root(object);
    let name = obj
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !name.is_empty() {
        let labels = child(child(obj, "metadata"), "labels");
        labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    let spec = child(obj, "spec");
    set_default(spec, "finalizers", json!(["kubernetes"]));
    let status = child(obj, "status");
    set_default_str(status, "phase", "Active");
}

fn default_node(object: &mut Value) {
    let obj = root(object);
    if let Some(status) = child_opt(obj, "status") {
        if let Some(capacity) = status.get("capacity").cloned() {
            if capacity.as_object().is_some_and(|c| !c.is_empty()) {
                set_default(status, "allocatable", capacity);
            }
        }
    }
}

fn default_pvc(object: &mut Value) {
    let obj = root(object);
    let spec = child(obj, "spec");
    set_default_str(spec, "volumeMode", "Filesystem");
    let status = child(obj, "status");
    set_default_str(status, "phase", "Pending");
}

fn default_pv(object: &mut Value) {
    let obj = root(object);
    let spec = child(obj, "spec");
    set_default_str(spec, "persistentVolumeReclaimPolicy", "Retain");
    set_default_str(spec, "volumeMode", "Filesystem");
    let status = child(obj, "status");
    set_default_str(status, "phase", "Pending");
}

/// `type: Opaque`, and `stringData` merged into `data` (base64) as upstream's conversion does.
fn default_secret(object: &mut Value) {
    let obj = root(object);
    set_default_str(obj, "type", "Opaque");
    let Some(Value::Object(string_data)) = obj.remove("stringData") else {
        return;
    };
    let data = child(obj, "data");
    for (k, v) in string_data {
        if let Some(text) = v.as_str() {
            data.insert(k, Value::String(base64_encode(text.as_bytes())));
        }
    }
}

/// Standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Carries the allocated fields of a Service over an update that omits them (a PUT of the
/// original manifest): `clusterIP`/`clusterIPs`, `ipFamilies`/`ipFamilyPolicy`, each port's
/// `nodePort` (matched by port and protocol) and `healthCheckNodePort`, as upstream's
/// `patchAllocatedValues` does. Call before defaulting and validating the new object.
pub fn retain_service_allocations(new: &mut Value, old: &Value) {
    let Some(old_spec) = old.get("spec").and_then(Value::as_object) else {
        return;
    };
    let new_spec = child(root(new), "spec");
    let new_type = new_spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    if new_type == "ExternalName" {
        return;
    }
    if str_empty(new_spec, "clusterIP") {
        for k in ["clusterIP", "clusterIPs"] {
            if let Some(v) = old_spec.get(k) {
                new_spec.insert(k.into(), v.clone());
            }
        }
        for k in ["ipFamilies", "ipFamilyPolicy"] {
            if let (None | Some(Value::Null), Some(v)) = (new_spec.get(k), old_spec.get(k)) {
                new_spec.insert(k.into(), v.clone());
            }
        }
    }
    if new_type == "NodePort" || new_type == "LoadBalancer" {
        let old_ports: Vec<Value> = old_spec
            .get("ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for_each_item(new_spec, "ports", |p| {
            let unset = p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) == 0;
            if !unset {
                return;
            }
            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            let found = old_ports.iter().find(|o| {
                o.get("port") == p.get("port")
                    && o.get("protocol").and_then(Value::as_str).unwrap_or("TCP") == proto
            });
            if let Some(np) = found
                .and_then(|o| o.get("nodePort"))
                .filter(|v| !v.is_null())
            {
                p.insert("nodePort".into(), np.clone());
            }
        });
        let hc_unset = new_spec
            .get("healthCheckNodePort")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            == 0;
        if hc_unset {
            if let Some(v) = old_spec.get("healthCheckNodePort").filter(|v| !v.is_null()) {
                new_spec.insert("healthCheckNodePort".into(), v.clone());
            }
        }
    }
}

fn default_endpoints(object: &mut Value) {
    let obj = root(object);
    for_each_item(obj, "subsets", |s| {
        for_each_item(s, "ports", |p| set_default_str(p, "protocol", "TCP"));
    });
}

fn default_endpoint_slice(object: &mut Value) {
    let obj = root(object);
    for_each_item(obj, "ports", |p| {
        set_default_str(p, "protocol", "TCP");
        set_default(p, "name", json!(""));
    });
}

fn default_hpa(object: &mut Value) {
    let spec = child(root(object), "spec");
    set_default(spec, "minReplicas", json!(1));
    let metrics_empty = spec
        .get("metrics")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if metrics_empty {
        spec.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}}]),
        );
    }
    if let Some(behavior) = child_opt(spec, "behavior") {
        let up = child(behavior, "scaleUp");
        set_default(up, "stabilizationWindowSeconds", json!(0));
        set_default_str(up, "selectPolicy", "Max");
        set_default(
            up,
            "policies",
            json!([{"type": "Pods", "value": 4, "periodSeconds": 15},
                   {"type": "Percent", "value": 100, "periodSeconds": 15}]),
        );
        let down = child(behavior, "scaleDown");
        set_default(down, "stabilizationWindowSeconds", json!(300));
        set_default_str(down, "selectPolicy", "Max");
        set_default(
            down,
            "policies",
            json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::find;

    fn run(plural: &str, group: &str, version: &str, mut v: Value) -> Value {
        apply(find(group, version, plural).unwrap(), &mut v);
        v
    }

    fn pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}]}]}})
    }

    #[test]
    fn pod_spec_defaults() {
        let p = run("pods", "", "v1", pod());
        let s = &p["spec"];
        assert_eq!(s["restartPolicy"], "Always");
        assert_eq!(s["dnsPolicy"], "ClusterFirst");
        assert_eq!(s["terminationGracePeriodSeconds"], 30);
        assert_eq!(s["schedulerName"], "default-scheduler");
        assert_eq!(s["securityContext"], json!({}));
        assert_eq!(s["enableServiceLinks"], true);
        assert!(s.get("priority").is_none());
        assert_eq!(s["serviceAccountName"], "default");
        assert_eq!(s["serviceAccount"], "default");
        let c = &s["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c["terminationMessagePolicy"], "File");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
    }

    #[test]
    fn explicit_values_are_kept() {
        let mut p = pod();
        p["spec"]["restartPolicy"] = json!("Never");
        p["spec"]["serviceAccountName"] = json!("builder");
        let p = run("pods", "", "v1", p);
        assert_eq!(p["spec"]["restartPolicy"], "Never");
        assert_eq!(p["spec"]["serviceAccount"], "builder");
    }

    #[test]
    fn image_pull_policy_by_tag() {
        assert_eq!(image_pull_policy("busybox"), "Always");
        assert_eq!(image_pull_policy("busybox:latest"), "Always");
        assert_eq!(image_pull_policy("demo-web:v1"), "IfNotPresent");
        assert_eq!(image_pull_policy("localhost:5000/web"), "Always");
        assert_eq!(image_pull_policy("localhost:5000/web:v2"), "IfNotPresent");
        assert_eq!(image_pull_policy("web@sha256:abcd"), "IfNotPresent");
    }

    #[test]
    fn probes_env_and_volumes() {
        let mut p = pod();
        p["spec"]["containers"][0]["livenessProbe"] = json!({"httpGet": {"port": 8080}});
        p["spec"]["containers"][0]["env"] =
            json!([{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]);
        p["spec"]["volumes"] = json!([{"name": "a"}, {"name": "b", "configMap": {"name": "x"}},
            {"name": "c", "secret": {"secretName": "s"}}]);
        let p = run("pods", "", "v1", p);
        let probe = &p["spec"]["containers"][0]["livenessProbe"];
        assert_eq!(probe["timeoutSeconds"], 1);
        assert_eq!(probe["periodSeconds"], 10);
        assert_eq!(probe["successThreshold"], 1);
        assert_eq!(probe["failureThreshold"], 3);
        assert_eq!(probe["httpGet"]["scheme"], "HTTP");
        assert_eq!(probe["httpGet"]["path"], "/");
        assert_eq!(
            p["spec"]["containers"][0]["env"][0]["valueFrom"]["fieldRef"]["apiVersion"],
            "v1"
        );
        assert_eq!(p["spec"]["volumes"][0]["emptyDir"], json!({}));
        assert_eq!(p["spec"]["volumes"][1]["configMap"]["defaultMode"], 420);
        assert_eq!(p["spec"]["volumes"][2]["secret"]["defaultMode"], 420);
    }

    #[test]
    fn requests_default_to_limits() {
        let mut p = pod();
        p["spec"]["containers"][0]["resources"] = json!({"limits": {"cpu": "1"}});
        let p = run("pods", "", "v1", p);
        assert_eq!(
            p["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            "1"
        );
    }

    #[test]
    fn tolerations_added_once() {
        let mut p = pod();
        default_tolerations(&mut p, 300, 300);
        default_tolerations(&mut p, 300, 300);
        let t = p["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0]["key"], "node.kubernetes.io/not-ready");
        assert_eq!(t[0]["tolerationSeconds"], 300);
        let mut q = pod();
        q["spec"]["tolerations"] = json!([{"operator": "Exists"}]);
        default_tolerations(&mut q, 300, 300);
        assert_eq!(q["spec"]["tolerations"].as_array().unwrap().len(), 1);
        let mut short = pod();
        default_tolerations(&mut short, 10, 5);
        assert_eq!(short["spec"]["tolerations"][0]["tolerationSeconds"], 10);
        assert_eq!(short["spec"]["tolerations"][1]["tolerationSeconds"], 5);
    }

    #[test]
    fn deployment_defaults() {
        let d = run(
            "deployments",
            "apps",
            "v1",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "demo-web:v1"}]}}}}),
        );
        let s = &d["spec"];
        assert_eq!(s["replicas"], 1);
        assert_eq!(s["strategy"]["type"], "RollingUpdate");
        assert_eq!(s["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(s["strategy"]["rollingUpdate"]["maxUnavailable"], "25%");
        assert_eq!(s["revisionHistoryLimit"], 10);
        assert_eq!(s["progressDeadlineSeconds"], 600);
        assert!(s.get("minReadySeconds").is_none());
        assert_eq!(s["template"]["spec"]["restartPolicy"], "Always");
        assert!(s["template"]["spec"].get("priority").is_none());
        assert_eq!(
            s["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
    }

    #[test]
    fn recreate_strategy_gets_no_rolling_update() {
        let d = run(
            "deployments",
            "apps",
            "v1",
            json!({"spec": {"strategy": {"type": "Recreate"}}}),
        );
        assert!(d["spec"]["strategy"].get("rollingUpdate").is_none());
    }

    #[test]
    fn statefulset_defaults() {
        let s = run(
            "statefulsets",
            "apps",
            "v1",
            json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {}}]}}),
        );
        let s = &s["spec"];
        assert_eq!(s["replicas"], 1);
        assert_eq!(s["podManagementPolicy"], "OrderedReady");
        assert_eq!(s["updateStrategy"]["rollingUpdate"]["partition"], 0);
        assert_eq!(s["revisionHistoryLimit"], 10);
        assert_eq!(
            s["persistentVolumeClaimRetentionPolicy"]["whenDeleted"],
            "Retain"
        );
        assert_eq!(
            s["volumeClaimTemplates"][0]["spec"]["volumeMode"],
            "Filesystem"
        );
        assert_eq!(s["volumeClaimTemplates"][0]["status"]["phase"], "Pending");
    }

    #[test]
    fn daemonset_and_replicaset_defaults() {
        let d = run("daemonsets", "apps", "v1", json!({"spec": {}}));
        assert_eq!(
            d["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
            1
        );
        assert_eq!(d["spec"]["updateStrategy"]["rollingUpdate"]["maxSurge"], 0);
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        let r = run("replicasets", "apps", "v1", json!({"spec": {}}));
        assert_eq!(r["spec"]["replicas"], 1);
    }

    #[test]
    fn job_defaults_and_selector() {
        let j = run(
            "jobs",
            "batch",
            "v1",
            json!({"metadata": {"name": "pi", "uid": "u-1"},
                "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": []}}}}),
        );
        let s = &j["spec"];
        assert_eq!(s["parallelism"], 1);
        assert_eq!(s["completions"], 1);
        assert_eq!(s["backoffLimit"], 6);
        assert_eq!(s["completionMode"], "NonIndexed");
        assert_eq!(s["suspend"], false);
        assert_eq!(s["podReplacementPolicy"], "TerminatingOrFailed");
        assert!(s.get("manualSelector").is_none());
        assert_eq!(
            s["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
            "u-1"
        );
        assert_eq!(s["template"]["metadata"]["labels"]["job-name"], "pi");
        assert_eq!(s["template"]["spec"]["restartPolicy"], "Never");
        assert_eq!(j["metadata"]["labels"]["controller-uid"], "u-1");
    }

    #[test]
    fn job_parallelism_without_completions() {
        let j = run("jobs", "batch", "v1", json!({"spec": {"parallelism": 3}}));
        assert!(j["spec"].get("completions").is_none());
        let j = run("jobs", "batch", "v1", json!({"spec": {}}));
        assert!(j["spec"]["template"]["spec"].get("restartPolicy").is_none());
    }

    #[test]
    fn service_defaults() {
        let s = run(
            "services",
            "",
            "v1",
            json!({"spec": {"selector": {"app": "web"}, "ports": [{"port": 80}, {"port": 443, "targetPort": "https"}]}}),
        );
        let sp = &s["spec"];
        assert_eq!(sp["type"], "ClusterIP");
        assert_eq!(sp["sessionAffinity"], "None");
        assert_eq!(sp["ports"][0]["protocol"], "TCP");
        assert_eq!(sp["ports"][0]["targetPort"], 80);
        assert_eq!(sp["ports"][1]["targetPort"], "https");
        assert_eq!(sp["internalTrafficPolicy"], "Cluster");
        assert!(sp.get("externalTrafficPolicy").is_none());
        assert_eq!(sp["ipFamilies"], json!(["IPv4"]));
        assert_eq!(sp["ipFamilyPolicy"], "SingleStack");
    }

    #[test]
    fn service_nodeport_and_client_ip() {
        let s = run(
            "services",
            "",
            "v1",
            json!({"spec": {"type": "NodePort", "sessionAffinity": "ClientIP", "ports": [{"port": 80}]}}),
        );
        assert_eq!(s["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(
            s["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"],
            10800
        );
        let none = run(
            "services",
            "",
            "v1",
            json!({"spec": {"sessionAffinity": "None", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}, "ports": [{"port": 80}]}}),
        );
        assert!(
            none["spec"].get("sessionAffinityConfig").is_none(),
            "{none}"
        );
        let e = run(
            "services",
            "",
            "v1",
            json!({"spec": {"type": "ExternalName", "externalName": "x.example.com"}}),
        );
        assert!(e["spec"].get("ipFamilies").is_none());
        assert!(e["spec"].get("internalTrafficPolicy").is_none());
    }

    #[test]
    fn namespace_defaults() {
        let n = run(
            "namespaces",
            "",
            "v1",
            json!({"metadata": {"name": "team"}}),
        );
        assert_eq!(n["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(n["status"]["phase"], "Active");
        assert_eq!(
            n["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "team"
        );
    }

    #[test]
    fn storage_secret_and_endpoint_defaults() {
        let c = run("persistentvolumeclaims", "", "v1", json!({"spec": {}}));
        assert_eq!(c["spec"]["volumeMode"], "Filesystem");
        assert_eq!(c["status"]["phase"], "Pending");
        let v = run("persistentvolumes", "", "v1", json!({"spec": {}}));
        assert_eq!(v["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(v["status"]["phase"], "Pending");
        let s = run("secrets", "", "v1", json!({}));
        assert_eq!(s["type"], "Opaque");
        let e = run(
            "endpoints",
            "",
            "v1",
            json!({"subsets": [{"ports": [{"port": 80}]}]}),
        );
        assert_eq!(e["subsets"][0]["ports"][0]["protocol"], "TCP");
        let es = run(
            "endpointslices",
            "discovery.k8s.io",
            "v1",
            json!({"ports": [{"port": 80}]}),
        );
        assert_eq!(es["ports"][0]["protocol"], "TCP");
        let h = run(
            "horizontalpodautoscalers",
            "autoscaling",
            "v2",
            json!({"spec": {"maxReplicas": 3}}),
        );
        assert_eq!(h["spec"]["minReplicas"], 1);
    }

    #[test]
    fn secret_string_data_is_merged() {
        let s = run(
            "secrets",
            "",
            "v1",
            json!({"data": {"a": "eA=="}, "stringData": {"b": "hello", "a": "hi"}}),
        );
        assert!(s.get("stringData").is_none());
        assert_eq!(s["data"]["b"], "aGVsbG8=");
        assert_eq!(s["data"]["a"], "aGk=");
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"foob"), "Zm9vYg==");
    }

    #[test]
    fn service_allocations_carry_over() {
        let old = json!({"spec": {"type": "NodePort", "clusterIP": "10.96.0.7",
            "clusterIPs": ["10.96.0.7"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
            "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]}});
        let mut new = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        retain_service_allocations(&mut new, &old);
        assert_eq!(new["spec"]["clusterIP"], "10.96.0.7");
        assert_eq!(new["spec"]["clusterIPs"], json!(["10.96.0.7"]));
        assert_eq!(new["spec"]["ports"][0]["nodePort"], 30080);
        let mut ext = json!({"spec": {"type": "ExternalName", "externalName": "x"}});
        retain_service_allocations(&mut ext, &old);
        assert!(ext["spec"].get("clusterIP").is_none());
    }

    #[test]
    fn defaulting_is_idempotent() {
        let once = run("pods", "", "v1", pod());
        let twice = run("pods", "", "v1", once.clone());
        assert_eq!(once, twice);
    }
}
