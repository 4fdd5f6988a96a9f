//! Server-side Table output (`meta.k8s.io/v1` Table) for `kubectl get`, as kube-apiserver
//! answers `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
//!
//! Columns and cells follow upstream's printers (`pkg/printers/internalversion/printers.go`)
//! with the wide columns always filled (kube-apiserver prints with `Wide: true`; kubectl hides
//! priority-1 columns unless `-o wide`). Resources without a printer get upstream's default
//! table (Name, Created At). Ages use [`human_duration`], upstream's `duration.HumanDuration`.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::{json, Map, Value};

use crate::registry::ResourceInfo;

mod kinds;
use kinds::*;

/// Errors of table requests.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TableError {
    #[error("invalid includeObject {0:?}: must be one of None, Metadata, Object")]
    InvalidIncludeObject(String),
}

/// Which part of each object a row carries (`?includeObject=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No object (`"object": null`).
    None,
    /// A `PartialObjectMetadata` with the object's metadata (the default; kubectl reads the
    /// namespace and labels from it).
    #[default]
    Metadata,
    /// The full object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter; empty means the default (Metadata).
    pub fn parse(value: &str) -> Result<IncludeObject, TableError> {
        match value {
            "" | "Metadata" => Ok(IncludeObject::Metadata),
            "None" => Ok(IncludeObject::None),
            "Object" => Ok(IncludeObject::Object),
            other => Err(TableError::InvalidIncludeObject(other.to_string())),
        }
    }
}

/// Builds the `meta.k8s.io/v1` Table of `objects` (all of kind `resource.kind`), with
/// `list_meta` (`resourceVersion`, `continue`, ...) as the table's metadata. Ages are computed
/// against the current time.
pub fn to_table(
    resource: &ResourceInfo,
    objects: &[Value],
    include_object: IncludeObject,
    list_meta: Value,
) -> Value {
    to_table_at(
        resource,
        objects,
        include_object,
        list_meta,
        Timestamp::now(),
    )
}

/// [`to_table`] with an explicit "now" (for tests).
pub fn to_table_at(
    resource: &ResourceInfo,
    objects: &[Value],
    include_object: IncludeObject,
    list_meta: Value,
    now: Timestamp,
) -> Value {
    let printer = printer_for(resource);
    let columns: Vec<Value> = printer
        .columns()
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.ty,
                "format": c.format,
                "description": c.description,
                "priority": c.priority,
            })
        })
        .collect();
    let ctx = Ctx { now };
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let (cells, conditions) = printer.row(obj, &ctx);
            let mut row = Map::new();
            row.insert("cells".into(), Value::Array(cells));
            if let Some(c) = conditions {
                row.insert("conditions".into(), c);
            }
            row.insert("object".into(), embedded_object(obj, include_object));
            Value::Object(row)
        })
        .collect();
    let metadata = match list_meta {
        Value::Object(m) => Value::Object(m),
        _ => json!({}),
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

fn embedded_object(obj: &Value, include: IncludeObject) -> Value {
    match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Object => obj.clone(),
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
    }
}

/// Upstream's `duration.HumanDuration`: "5s", "3m2s", "10m", "5h3m", "2d3h", "400d", "2y10d".
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    } else if seconds < 0 {
        return "0s".into();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        return format!("{hours}h{m}m");
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        return format!("{}d{}h", hours / 24, h);
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        return format!("{}y{}d", hours / 24 / 365, dy);
    }
    format!("{}y", hours / 24 / 365)
}

// ---------------------------------------------------------------------------------------------
// JSON helpers

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    if cur.is_null() {
        None
    } else {
        Some(cur)
    }
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path).and_then(Value::as_str).unwrap_or("")
}

fn int(v: &Value, path: &[&str]) -> i64 {
    at(v, path).and_then(Value::as_i64).unwrap_or(0)
}

fn boolean(v: &Value, path: &[&str]) -> bool {
    at(v, path).and_then(Value::as_bool).unwrap_or(false)
}

fn arr<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    at(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn map_len(v: &Value, path: &[&str]) -> i64 {
    at(v, path)
        .and_then(Value::as_object)
        .map(|m| m.len() as i64)
        .unwrap_or(0)
}

fn name(v: &Value) -> Value {
    Value::String(s(v, &["metadata", "name"]).to_string())
}

fn or_none(v: &str) -> String {
    if v.is_empty() {
        "<none>".into()
    } else {
        v.to_string()
    }
}

fn parse_time(v: &str) -> Option<Timestamp> {
    if v.is_empty() {
        return None;
    }
    v.parse::<Timestamp>().ok()
}

struct Ctx {
    now: Timestamp,
}

impl Ctx {
    /// Upstream's translateTimestampSince: "<unknown>" for a missing time.
    fn since(&self, ts: &str) -> String {
        match parse_time(ts) {
            Some(t) => self.since_ts(t),
            None => "<unknown>".into(),
        }
    }

    fn since_ts(&self, t: Timestamp) -> String {
        let nanos = self.now.as_nanosecond() - t.as_nanosecond();
        human_duration((nanos / 1_000_000_000) as i64)
    }

    fn age(&self, obj: &Value) -> Value {
        Value::String(self.since(s(obj, &["metadata", "creationTimestamp"])))
    }
}

/// `k=v,k2=v2` with sorted keys, or `<none>` (labels.FormatLabels).
fn format_labels(m: Option<&Value>) -> String {
    let Some(Value::Object(m)) = m else {
        return "<none>".into();
    };
    let mut pairs: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{}={}", k, v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    or_none(&pairs.join(","))
}

/// metav1.LabelSelectorAsSelector(sel).String(); Err for an invalid operator.
fn selector_string(sel: Option<&Value>) -> Result<String, ()> {
    let Some(sel) = sel else {
        return Ok(String::new());
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(Value::Object(ml)) = sel.get("matchLabels") {
        for (k, v) in ml {
            reqs.push((k.clone(), format!("{}={}", k, v.as_str().unwrap_or(""))));
        }
    }
    for expr in arr(sel, &["matchExpressions"]) {
        let key = s(expr, &["key"]).to_string();
        let mut values: Vec<&str> = arr(expr, &["values"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        values.sort();
        let vals = values.join(",");
        let text = match s(expr, &["operator"]) {
            "In" => format!("{key} in ({vals})"),
            "NotIn" => format!("{key} notin ({vals})"),
            "Exists" => key.clone(),
            "DoesNotExist" => format!("!{key}"),
            _ => return Err(()),
        };
        reqs.push((key, text));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reqs
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(","))
}

/// metav1.FormatLabelSelector: `<none>` when empty, `<error>` when invalid.
fn format_label_selector(sel: Option<&Value>) -> String {
    match selector_string(sel) {
        Ok(s) => or_none(&s),
        Err(()) => "<error>".into(),
    }
}

/// Names and images of the containers, comma separated (layoutContainerCells).
fn container_cells(containers: &[Value]) -> (Value, Value) {
    let names: Vec<&str> = containers.iter().map(|c| s(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| s(c, &["image"])).collect();
    (
        Value::String(names.join(",")),
        Value::String(images.join(",")),
    )
}

fn template_containers(obj: &Value) -> &[Value] {
    arr(obj, &["spec", "template", "spec", "containers"])
}

/// `host:port`, bracketing IPv6 hosts (net.JoinHostPort).
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let ret = list.join(",");
    if more {
        return format!("{} + {} more...", ret, count - max);
    }
    if ret.is_empty() {
        return "<unset>".into();
    }
    ret
}

// ---------------------------------------------------------------------------------------------
// Column definitions

/// One column of a table.
#[derive(Debug, Clone)]
struct Column {
    name: &'static str,
    ty: &'static str,
    format: &'static str,
    description: String,
    priority: i64,
}

fn col(name: &'static str, ty: &'static str, description: &str) -> Column {
    Column {
        name,
        ty,
        format: "",
        description: description.to_string(),
        priority: 0,
    }
}

fn wide(mut c: Column) -> Column {
    c.priority = 1;
    c
}

fn name_col() -> Column {
    Column {
        name: "Name",
        ty: "string",
        format: "name",
        description: DESC_NAME.into(),
        priority: 0,
    }
}

fn age_col() -> Column {
    col("Age", "string", DESC_CREATION)
}

fn containers_col() -> Column {
    wide(col(
        "Containers",
        "string",
        "Names of each container in the template.",
    ))
}

fn images_col() -> Column {
    wide(col(
        "Images",
        "string",
        "Images referenced by each container in the template.",
    ))
}

fn selector_col(description: &str) -> Column {
    wide(col("Selector", "string", description))
}

const DESC_NAME: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const DESC_CREATION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const DESC_SELECTOR: &str = "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment. It must match the pod template's labels.";

// ---------------------------------------------------------------------------------------------
// Printers

/// The printer of each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Printer {
    Pod,
    Node,
    Namespace,
    Service,
    Endpoints,
    ConfigMap,
    Secret,
    Event,
    EventsV1,
    ServiceAccount,
    PersistentVolumeClaim,
    PersistentVolume,
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    ControllerRevision,
    Job,
    Lease,
    EndpointSlice,
    HorizontalPodAutoscaler,
    PriorityClass,
    ReplicationController,
    ComponentStatus,
    RoleBinding,
    ClusterRoleBinding,
    Default,
}

fn printer_for(r: &ResourceInfo) -> Printer {
    match (r.group, r.kind) {
        ("", "Pod") => Printer::Pod,
        ("", "Node") => Printer::Node,
        ("", "Namespace") => Printer::Namespace,
        ("", "Service") => Printer::Service,
        ("", "Endpoints") => Printer::Endpoints,
        ("", "ConfigMap") => Printer::ConfigMap,
        ("", "Secret") => Printer::Secret,
        ("", "Event") => Printer::Event,
        ("events.k8s.io", "Event") => Printer::EventsV1,
        ("", "ServiceAccount") => Printer::ServiceAccount,
        ("", "PersistentVolumeClaim") => Printer::PersistentVolumeClaim,
        ("", "PersistentVolume") => Printer::PersistentVolume,
        ("apps", "Deployment") => Printer::Deployment,
        ("apps", "ReplicaSet") => Printer::ReplicaSet,
        ("apps", "StatefulSet") => Printer::StatefulSet,
        ("apps", "DaemonSet") => Printer::DaemonSet,
        ("apps", "ControllerRevision") => Printer::ControllerRevision,
        ("batch", "Job") => Printer::Job,
        ("coordination.k8s.io", "Lease") => Printer::Lease,
        ("discovery.k8s.io", "EndpointSlice") => Printer::EndpointSlice,
        ("autoscaling", "HorizontalPodAutoscaler") => Printer::HorizontalPodAutoscaler,
        ("scheduling.k8s.io", "PriorityClass") => Printer::PriorityClass,
        ("", "ReplicationController") => Printer::ReplicationController,
        ("", "ComponentStatus") => Printer::ComponentStatus,
        ("rbac.authorization.k8s.io", "RoleBinding") => Printer::RoleBinding,
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => Printer::ClusterRoleBinding,
        // Role and ClusterRole have no printer upstream: the default NAME, CREATED AT.
        _ => Printer::Default,
    }
}

impl Printer {
    fn columns(self) -> Vec<Column> {
        match self {
            Printer::Pod => vec![
                name_col(),
                col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
                col("Status", "string", "The aggregate status of the containers in this pod."),
                col("Restarts", "string", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
                age_col(),
                wide(col("IP", "string", "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.")),
                wide(col("Node", "string", "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename")),
                wide(col("Nominated Node", "string", "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.")),
                wide(col("Readiness Gates", "string", "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates")),
            ],
            Printer::Node => vec![
                name_col(),
                col("Status", "string", "The status of the node"),
                col("Roles", "string", "The roles of the node"),
                age_col(),
                col("Version", "string", "Kubelet Version reported by the node."),
                wide(col("Internal-IP", "string", "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses")),
                wide(col("External-IP", "string", "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses")),
                wide(col("OS-Image", "string", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).")),
                wide(col("Kernel-Version", "string", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).")),
                wide(col("Container-Runtime", "string", "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).")),
            ],
            Printer::Namespace => vec![
                name_col(),
                col("Status", "string", "The status of the namespace"),
                age_col(),
            ],
            Printer::Service => vec![
                name_col(),
                col("Type", "string", "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer."),
                col("Cluster-IP", "string", "clusterIP is the IP address of the service and is usually assigned randomly."),
                col("External-IP", "string", "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service."),
                col("Port(s)", "string", "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies"),
                age_col(),
                wide(col("Selector", "string", "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/")),
            ],
            Printer::Endpoints => vec![
                name_col(),
                col("Endpoints", "string", "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service."),
                age_col(),
            ],
            Printer::ConfigMap => vec![
                name_col(),
                col("Data", "string", "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process."),
                age_col(),
            ],
            Printer::Secret => vec![
                name_col(),
                col("Type", "string", "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types"),
                col("Data", "string", "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4"),
                age_col(),
            ],
            Printer::Event | Printer::EventsV1 => vec![
                col("Last Seen", "string", "The time at which the most recent occurrence of this event was recorded."),
                col("Type", "string", "Type of this event (Normal, Warning), new types could be added in the future"),
                col("Reason", "string", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
                col("Object", "string", "The object that this event is about."),
                wide(col("Subobject", "string", "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.")),
                wide(col("Source", "string", "The component reporting this event. Should be a short machine understandable string.")),
                col("Message", "string", "A human-readable description of the status of this operation."),
                wide(col("First Seen", "string", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)")),
                wide(col("Count", "string", "The number of times this event has occurred.")),
                wide(name_col()),
            ],
            Printer::ServiceAccount => vec![
                name_col(),
                col("Secrets", "string", "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret"),
                age_col(),
            ],
            Printer::PersistentVolumeClaim => vec![
                name_col(),
                col("Status", "string", "phase represents the current phase of PersistentVolumeClaim."),
                col("Volume", "string", "volumeName is the binding reference to the PersistentVolume backing this claim."),
                col("Capacity", "string", "capacity represents the actual resources of the underlying volume."),
                col("Access Modes", "string", "accessModes contains the actual access modes the volume backing the PVC has. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1"),
                col("StorageClass", "string", "StorageClass of the pvc"),
                col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
                age_col(),
                wide(col("VolumeMode", "string", "volumeMode defines what type of volume is required by the claim. Value of Filesystem is implied when not included in claim spec.")),
            ],
            Printer::PersistentVolume => vec![
                name_col(),
                col("Capacity", "string", "capacity is the description of the persistent volume's resources and capacity. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity"),
                col("Access Modes", "string", "accessModes contains all ways the volume can be mounted. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes"),
                col("Reclaim Policy", "string", "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim. Valid options are Retain (default for manually created PersistentVolumes), Delete (default for dynamically provisioned PersistentVolumes), and Recycle (deprecated). Recycle must be supported by the volume plugin underlying this PersistentVolume. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming"),
                col("Status", "string", "phase indicates if a volume is available, bound to a claim, or released by a claim. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase"),
                col("Claim", "string", "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the authoritative bind between PV and PVC. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding"),
                col("StorageClass", "string", "StorageClass of the pv"),
                col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
                col("Reason", "string", "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI."),
                age_col(),
                wide(col("VolumeMode", "string", "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state. Value of Filesystem is implied when not included in spec.")),
            ],
            Printer::Deployment => vec![
                name_col(),
                col("Ready", "string", "Number of the pod with ready state"),
                col("Up-to-date", "string", "Total number of non-terminating pods targeted by this deployment that have the desired template spec."),
                col("Available", "string", "Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this deployment."),
                age_col(),
                containers_col(),
                images_col(),
                selector_col(DESC_SELECTOR),
            ],
            Printer::ReplicaSet => vec![
                name_col(),
                col("Desired", "integer", "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset/#what-is-a-replicaset"),
                col("Current", "integer", "Replicas is the most recently observed number of non-terminating pods. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset/#what-is-a-replicaset"),
                col("Ready", "integer", "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition."),
                age_col(),
                containers_col(),
                images_col(),
                selector_col("Selector is a label query over pods that should match the replica count. Label keys and values that must match in order to be controlled by this replica set. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"),
            ],
            Printer::StatefulSet => vec![
                name_col(),
                col("Ready", "string", "Number of the pod with ready state"),
                age_col(),
                containers_col(),
                images_col(),
            ],
            Printer::DaemonSet => vec![
                name_col(),
                col("Desired", "integer", "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"),
                col("Current", "integer", "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"),
                col("Ready", "integer", "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition."),
                col("Up-to-date", "integer", "The total number of nodes that are running updated daemon pod"),
                col("Available", "integer", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)"),
                col("Node Selector", "string", "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/"),
                age_col(),
                containers_col(),
                images_col(),
                selector_col("A label query over pods that are managed by the daemon set. Must match in order to be controlled. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"),
            ],
            Printer::ControllerRevision => vec![
                name_col(),
                col("Controller", "string", "Controller of the object"),
                col("Revision", "string", "Revision indicates the revision of the state represented by Data."),
                age_col(),
            ],
            Printer::Job => vec![
                name_col(),
                col("Status", "string", "Status of the job."),
                col("Completions", "string", "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs."),
                col("Duration", "string", "Time required to complete the job."),
                age_col(),
                containers_col(),
                images_col(),
                selector_col("A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"),
            ],
            Printer::ReplicationController => vec![
                name_col(),
                col("Desired", "integer", "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller"),
                col("Current", "integer", "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller"),
                col("Ready", "integer", "The number of ready replicas for this replication controller."),
                age_col(),
                containers_col(),
                images_col(),
                selector_col("Selector is a label query over pods that should match the Replicas count. If Selector is empty, it is defaulted to the labels present on the Pod template. Label keys and values that must match in order to be controlled by this replication controller, if empty defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"),
            ],
            Printer::ComponentStatus => vec![
                name_col(),
                col("Status", "string", "Status of the component conditions"),
                col("Message", "string", "Message of the component conditions"),
                col("Error", "string", "Error of the component conditions"),
            ],
            Printer::PriorityClass => vec![
                name_col(),
                col("Value", "integer", "value represents the integer value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec."),
                col("Global-Default", "boolean", "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class. Only one PriorityClass can be marked as `globalDefault`. However, if more than one PriorityClasses exists with their `globalDefault` field set to true, the smallest value of such global default PriorityClasses will be used as the default priority."),
                age_col(),
                col("PreemptionPolicy", "string", "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset."),
            ],
            Printer::Lease => vec![
                name_col(),
                col("Holder", "string", "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field."),
                age_col(),
            ],
            Printer::EndpointSlice => vec![
                name_col(),
                col("AddressType", "string", "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name. (Deprecated) The EndpointSlice controller only generates, and kube-proxy only processes, slices of addressType \"IPv4\" and \"IPv6\". No semantics are defined for the \"FQDN\" type."),
                col("Ports", "string", "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. Each slice may include a maximum of 100 ports. Services always have at least 1 port, so EndpointSlices generated by the EndpointSlice controller will likewise always have at least 1 port. EndpointSlices used for other purposes may have an empty ports list."),
                col("Endpoints", "string", "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints."),
                age_col(),
            ],
            Printer::HorizontalPodAutoscaler => vec![
                name_col(),
                col("Reference", "string", "reference to scaled resource; horizontal pod autoscaler will learn the current resource consumption and will set the desired number of pods by using its Scale subresource."),
                col("Targets", "string", "metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used)."),
                col("MinPods", "string", "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down. It defaults to 1 pod."),
                col("MaxPods", "string", "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. It cannot be less that minReplicas."),
                col("Replicas", "string", "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler."),
                age_col(),
            ],
            Printer::RoleBinding => binding_columns(
                "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.",
                "roleBinding",
            ),
            Printer::ClusterRoleBinding => binding_columns(
                "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.",
                "clusterRoleBinding",
            ),
            Printer::Default => vec![
                name_col(),
                col("Created At", "date", DESC_CREATION),
            ],
        }
    }

    /// The cells of one object and the row's conditions, if any.
    fn row(self, obj: &Value, ctx: &Ctx) -> (Vec<Value>, Option<Value>) {
        match self {
            Printer::Pod => return pod_row(obj, ctx),
            Printer::Event => return (event_cells(obj, ctx), None),
            Printer::EventsV1 => return (event_cells(&events_v1_as_core(obj), ctx), None),
            _ => {}
        }
        let cells = match self {
            Printer::Node => node_cells(obj, ctx),
            Printer::Namespace => {
                vec![name(obj), json!(s(obj, &["status", "phase"])), ctx.age(obj)]
            }
            Printer::Service => service_cells(obj, ctx),
            Printer::Endpoints => vec![name(obj), json!(format_endpoints(obj)), ctx.age(obj)],
            Printer::ConfigMap => vec![
                name(obj),
                json!(map_len(obj, &["data"]) + map_len(obj, &["binaryData"])),
                ctx.age(obj),
            ],
            Printer::Secret => vec![
                name(obj),
                json!(s(obj, &["type"])),
                json!(map_len(obj, &["data"])),
                ctx.age(obj),
            ],
            Printer::ServiceAccount => vec![
                name(obj),
                json!(arr(obj, &["secrets"]).len() as i64),
                ctx.age(obj),
            ],
            Printer::PersistentVolumeClaim => pvc_cells(obj, ctx),
            Printer::PersistentVolume => pv_cells(obj, ctx),
            Printer::Deployment => {
                let (names, images) = container_cells(template_containers(obj));
                let selector = selector_string(at(obj, &["spec", "selector"]))
                    .unwrap_or_else(|()| "<invalid>".into());
                vec![
                    name(obj),
                    json!(format!(
                        "{}/{}",
                        int(obj, &["status", "readyReplicas"]),
                        replicas(obj)
                    )),
                    json!(int(obj, &["status", "updatedReplicas"])),
                    json!(int(obj, &["status", "availableReplicas"])),
                    ctx.age(obj),
                    names,
                    images,
                    json!(selector),
                ]
            }
            Printer::ReplicaSet => {
                let (names, images) = container_cells(template_containers(obj));
                vec![
                    name(obj),
                    json!(replicas(obj)),
                    json!(int(obj, &["status", "replicas"])),
                    json!(int(obj, &["status", "readyReplicas"])),
                    ctx.age(obj),
                    names,
                    images,
                    json!(format_label_selector(at(obj, &["spec", "selector"]))),
                ]
            }
            Printer::StatefulSet => {
                let (names, images) = container_cells(template_containers(obj));
                vec![
                    name(obj),
                    json!(format!(
                        "{}/{}",
                        int(obj, &["status", "readyReplicas"]),
                        replicas(obj)
                    )),
                    ctx.age(obj),
                    names,
                    images,
                ]
            }
            Printer::DaemonSet => {
                let (names, images) = container_cells(template_containers(obj));
                vec![
                    name(obj),
                    json!(int(obj, &["status", "desiredNumberScheduled"])),
                    json!(int(obj, &["status", "currentNumberScheduled"])),
                    json!(int(obj, &["status", "numberReady"])),
                    json!(int(obj, &["status", "updatedNumberScheduled"])),
                    json!(int(obj, &["status", "numberAvailable"])),
                    json!(format_labels(at(
                        obj,
                        &["spec", "template", "spec", "nodeSelector"]
                    ))),
                    ctx.age(obj),
                    names,
                    images,
                    json!(format_label_selector(at(obj, &["spec", "selector"]))),
                ]
            }
            Printer::ControllerRevision => vec![
                name(obj),
                json!(controller_of(obj)),
                json!(int(obj, &["revision"])),
                ctx.age(obj),
            ],
            Printer::Job => job_cells(obj, ctx),
            Printer::ReplicationController => {
                let (names, images) = container_cells(template_containers(obj));
                vec![
                    name(obj),
                    json!(replicas(obj)),
                    json!(int(obj, &["status", "replicas"])),
                    json!(int(obj, &["status", "readyReplicas"])),
                    ctx.age(obj),
                    names,
                    images,
                    json!(format_label_map(at(obj, &["spec", "selector"]))),
                ]
            }
            Printer::ComponentStatus => component_status_cells(obj),
            Printer::PriorityClass => vec![
                name(obj),
                json!(obj.get("value").and_then(Value::as_i64).unwrap_or(0)),
                json!(obj
                    .get("globalDefault")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)),
                ctx.age(obj),
                json!(s(obj, &["preemptionPolicy"])),
            ],
            Printer::Lease => vec![
                name(obj),
                json!(s(obj, &["spec", "holderIdentity"])),
                ctx.age(obj),
            ],
            Printer::EndpointSlice => vec![
                name(obj),
                json!(s(obj, &["addressType"])),
                json!(format_discovery_ports(arr(obj, &["ports"]))),
                json!(format_discovery_endpoints(arr(obj, &["endpoints"]))),
                ctx.age(obj),
            ],
            Printer::HorizontalPodAutoscaler => hpa_cells(obj, ctx),
            Printer::RoleBinding | Printer::ClusterRoleBinding => binding_cells(obj, ctx),
            Printer::Default | Printer::Pod | Printer::Event | Printer::EventsV1 => {
                let created = s(obj, &["metadata", "creationTimestamp"]);
                let created = parse_time(created)
                    .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
                    .unwrap_or_else(|| "0001-01-01T00:00:00Z".into());
                vec![name(obj), json!(created)]
            }
        };
        (cells, None)
    }
}

/// upstream's role binding columns (the ROLE description is v1beta1's roleRef doc, as
/// printers.go takes it); USERS, GROUPS and SERVICEACCOUNTS are wide.
fn binding_columns(role_description: &str, what: &str) -> Vec<Column> {
    vec![
        name_col(),
        col("Role", "string", role_description),
        age_col(),
        wide(col("Users", "string", &format!("Users in the {what}"))),
        wide(col("Groups", "string", &format!("Groups in the {what}"))),
        wide(col(
            "ServiceAccounts",
            "string",
            &format!("ServiceAccounts in the {what}"),
        )),
    ]
}

/// upstream's printRoleBinding / printClusterRoleBinding: `Kind/name` of the role, and the
/// subjects as rbac.SubjectsStrings splits them (ServiceAccounts as `namespace/name`).
fn binding_cells(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let role = format!(
        "{}/{}",
        s(obj, &["roleRef", "kind"]),
        s(obj, &["roleRef", "name"])
    );
    let (mut users, mut groups, mut accounts) = (Vec::new(), Vec::new(), Vec::new());
    for subject in arr(obj, &["subjects"]) {
        let name = s(subject, &["name"]).to_string();
        match s(subject, &["kind"]) {
            "ServiceAccount" => {
                accounts.push(format!("{}/{name}", s(subject, &["namespace"])));
            }
            "User" => users.push(name),
            "Group" => groups.push(name),
            _ => {}
        }
    }
    vec![
        name(obj),
        json!(role),
        ctx.age(obj),
        json!(users.join(", ")),
        json!(groups.join(", ")),
        json!(accounts.join(", ")),
    ]
}

/// `a=1,b=2` (labels.FormatLabels: sorted, `<none>` when empty).
fn format_label_map(map: Option<&Value>) -> String {
    let mut pairs: Vec<String> = map
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    if pairs.is_empty() {
        "<none>".into()
    } else {
        pairs.join(",")
    }
}

/// upstream's printComponentStatus: the Healthy condition's status, message and error.
fn component_status_cells(obj: &Value) -> Vec<Value> {
    let healthy = arr(obj, &["conditions"])
        .iter()
        .find(|c| s(c, &["type"]) == "Healthy");
    let (status, message, error) = match healthy {
        Some(c) => (
            if s(c, &["status"]) == "True" {
                "Healthy"
            } else {
                "Unhealthy"
            },
            s(c, &["message"]),
            s(c, &["error"]),
        ),
        None => ("Unknown", "", ""),
    };
    vec![name(obj), json!(status), json!(message), json!(error)]
}

/// spec.replicas, defaulted to 1 as the v1 API does.
fn replicas(obj: &Value) -> i64 {
    at(obj, &["spec", "replicas"])
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests;
