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

// --- pods ------------------------------------------------------------------------------------

fn is_restartable_init_container(c: Option<&Value>) -> bool {
    c.is_some_and(|c| s(c, &["restartPolicy"]) == "Always")
}

fn has_condition(obj: &Value, ty: &str) -> bool {
    arr(obj, &["status", "conditions"])
        .iter()
        .any(|c| s(c, &["type"]) == ty && s(c, &["status"]) == "True")
}

fn later(current: Option<Timestamp>, candidate: &Value) -> Option<Timestamp> {
    let finished = at(candidate, &["lastState", "terminated", "finishedAt"])
        .and_then(Value::as_str)
        .and_then(parse_time);
    match (current, finished) {
        (Some(c), Some(f)) if c < f => Some(f),
        (None, Some(f)) => Some(f),
        (c, _) => c,
    }
}

fn pod_row(pod: &Value, ctx: &Ctx) -> (Vec<Value>, Option<Value>) {
    let mut restarts: i64 = 0;
    let mut restartable_init_restarts: i64 = 0;
    let mut total_containers = arr(pod, &["spec", "containers"]).len();
    let mut ready_containers = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_restartable_init_restart: Option<Timestamp> = None;

    let phase = s(pod, &["status", "phase"]);
    let mut reason = phase.to_string();
    let status_reason = s(pod, &["status", "reason"]);
    if !status_reason.is_empty() {
        reason = status_reason.to_string();
    }
    for c in arr(pod, &["status", "conditions"]) {
        if s(c, &["type"]) == "PodScheduled" && s(c, &["reason"]) == "SchedulingGated" {
            reason = "SchedulingGated".into();
        }
    }
    let conditions = match phase {
        "Succeeded" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Succeeded",
            "message": "The pod has completed successfully."
        }])),
        "Failed" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Failed",
            "message": "The pod failed."
        }])),
        _ => None,
    };

    let init_specs = arr(pod, &["spec", "initContainers"]);
    let init_spec = |name: &str| init_specs.iter().find(|c| s(c, &["name"]) == name);
    total_containers += init_specs
        .iter()
        .filter(|c| is_restartable_init_container(Some(c)))
        .count();

    let mut initializing = false;
    let init_statuses = arr(pod, &["status", "initContainerStatuses"]);
    for (i, container) in init_statuses.iter().enumerate() {
        restarts += int(container, &["restartCount"]);
        last_restart = later(last_restart, container);
        let restartable = is_restartable_init_container(init_spec(s(container, &["name"])));
        if restartable {
            restartable_init_restarts += int(container, &["restartCount"]);
            last_restartable_init_restart = later(last_restartable_init_restart, container);
        }
        let terminated = at(container, &["state", "terminated"]);
        let waiting_reason = s(container, &["state", "waiting", "reason"]);
        if terminated.is_some_and(|t| int(t, &["exitCode"]) == 0) {
            continue;
        } else if restartable && boolean(container, &["started"]) {
            if boolean(container, &["ready"]) {
                ready_containers += 1;
            }
            continue;
        } else if let Some(t) = terminated {
            let r = s(t, &["reason"]);
            reason = if r.is_empty() {
                let signal = int(t, &["signal"]);
                if signal != 0 {
                    format!("Init:Signal:{signal}")
                } else {
                    format!("Init:ExitCode:{}", int(t, &["exitCode"]))
                }
            } else {
                format!("Init:{r}")
            };
            initializing = true;
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
            initializing = true;
        } else {
            reason = format!("Init:{}/{}", i, init_specs.len());
            initializing = true;
        }
        break;
    }

    if !initializing || has_condition(pod, "Initialized") {
        restarts = restartable_init_restarts;
        last_restart = last_restartable_init_restart;
        let mut has_running = false;
        for container in arr(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += int(container, &["restartCount"]);
            last_restart = later(last_restart, container);
            let waiting_reason = s(container, &["state", "waiting", "reason"]);
            let terminated = at(container, &["state", "terminated"]);
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                let r = s(t, &["reason"]);
                reason = if !r.is_empty() {
                    r.to_string()
                } else {
                    let signal = int(t, &["signal"]);
                    if signal != 0 {
                        format!("Signal:{signal}")
                    } else {
                        format!("ExitCode:{}", int(t, &["exitCode"]))
                    }
                };
            } else if boolean(container, &["ready"])
                && at(container, &["state", "running"]).is_some()
            {
                has_running = true;
                ready_containers += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if has_condition(pod, "Ready") {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }

    let deleting = at(pod, &["metadata", "deletionTimestamp"]).is_some();
    if deleting && status_reason == "NodeLost" {
        reason = "Unknown".into();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".into();
    }

    let restarts_str = match (restarts, last_restart) {
        (r, Some(t)) if r != 0 => format!("{} ({} ago)", r, ctx.since_ts(t)),
        (r, _) => r.to_string(),
    };

    let pod_ip = arr(pod, &["status", "podIPs"])
        .first()
        .map(|p| s(p, &["ip"]))
        .unwrap_or("");
    let gates = arr(pod, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conds = arr(pod, &["status", "conditions"]);
        let true_conditions = gates
            .iter()
            .filter(|g| {
                let ty = s(g, &["conditionType"]);
                conds
                    .iter()
                    .find(|c| s(c, &["type"]) == ty)
                    .is_some_and(|c| s(c, &["status"]) == "True")
            })
            .count();
        format!("{}/{}", true_conditions, gates.len())
    };
    let cells = vec![
        name(pod),
        json!(format!("{ready_containers}/{total_containers}")),
        json!(reason),
        json!(restarts_str),
        ctx.age(pod),
        json!(or_none(pod_ip)),
        json!(or_none(s(pod, &["spec", "nodeName"]))),
        json!(or_none(s(pod, &["status", "nominatedNodeName"]))),
        json!(readiness_gates),
    ];
    (cells, conditions)
}

// --- nodes -----------------------------------------------------------------------------------

fn node_cells(node: &Value, ctx: &Ctx) -> Vec<Value> {
    let mut status: Vec<String> = Vec::new();
    if let Some(ready) = arr(node, &["status", "conditions"])
        .iter()
        .rev()
        .find(|c| s(c, &["type"]) == "Ready")
    {
        if s(ready, &["status"]) == "True" {
            status.push("Ready".into());
        } else {
            status.push("NotReady".into());
        }
    }
    if status.is_empty() {
        status.push("Unknown".into());
    }
    if boolean(node, &["spec", "unschedulable"]) {
        status.push("SchedulingDisabled".into());
    }
    let mut roles: BTreeSet<String> = BTreeSet::new();
    if let Some(Value::Object(labels)) = at(node, &["metadata", "labels"]) {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.insert(role.to_string());
                }
            } else if k == "kubernetes.io/role" {
                if let Some(v) = v.as_str().filter(|v| !v.is_empty()) {
                    roles.insert(v.to_string());
                }
            }
        }
    }
    let roles = or_none(&roles.into_iter().collect::<Vec<_>>().join(","));
    let address = |ty: &str| -> String {
        arr(node, &["status", "addresses"])
            .iter()
            .find(|a| s(a, &["type"]) == ty)
            .map(|a| s(a, &["address"]).to_string())
            .unwrap_or_else(|| "<none>".into())
    };
    let unknown = |v: &str| -> String {
        if v.is_empty() {
            "<unknown>".into()
        } else {
            v.to_string()
        }
    };
    vec![
        name(node),
        json!(status.join(",")),
        json!(roles),
        ctx.age(node),
        json!(s(node, &["status", "nodeInfo", "kubeletVersion"])),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(unknown(s(node, &["status", "nodeInfo", "osImage"]))),
        json!(unknown(s(node, &["status", "nodeInfo", "kernelVersion"]))),
        json!(unknown(s(
            node,
            &["status", "nodeInfo", "containerRuntimeVersion"]
        ))),
    ]
}

// --- services and endpoints ------------------------------------------------------------------

fn service_cells(svc: &Value, ctx: &Ctx) -> Vec<Value> {
    let svc_type = s(svc, &["spec", "type"]);
    let internal_ip = arr(svc, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    let external_ips: Vec<&str> = arr(svc, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let external = match svc_type {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            // the server prints wide: the load balancer list is not clipped
            let mut lb: BTreeSet<&str> = BTreeSet::new();
            for ing in arr(svc, &["status", "loadBalancer", "ingress"]) {
                let ip = s(ing, &["ip"]);
                let host = s(ing, &["hostname"]);
                if !ip.is_empty() {
                    lb.insert(ip);
                } else if !host.is_empty() {
                    lb.insert(host);
                }
            }
            let lb_ips = lb.into_iter().collect::<Vec<_>>().join(",");
            if !external_ips.is_empty() {
                let mut results: Vec<&str> = Vec::new();
                if !lb_ips.is_empty() {
                    results.extend(lb_ips.split(','));
                }
                results.extend(external_ips.iter().copied());
                results.join(",")
            } else if !lb_ips.is_empty() {
                lb_ips
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => s(svc, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = arr(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            let port = int(p, &["port"]);
            let proto = s(p, &["protocol"]);
            let node_port = int(p, &["nodePort"]);
            if node_port > 0 {
                format!("{port}:{node_port}/{proto}")
            } else {
                format!("{port}/{proto}")
            }
        })
        .collect();
    vec![
        name(svc),
        json!(svc_type),
        json!(internal_ip),
        json!(external),
        json!(or_none(&ports.join(","))),
        ctx.age(svc),
        json!(format_labels(at(svc, &["spec", "selector"]))),
    ]
}

fn format_endpoints(ep: &Value) -> String {
    let subsets = arr(ep, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".into();
    }
    let max = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for ss in subsets {
        let addresses = arr(ss, &["addresses"]);
        let ports = arr(ss, &["ports"]);
        if ports.is_empty() {
            count += addresses.len();
            for a in addresses {
                if list.len() == max {
                    more = true;
                    break;
                }
                list.push(s(a, &["ip"]).to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for a in addresses {
                if list.len() == max {
                    more = true;
                    break;
                }
                list.push(join_host_port(s(a, &["ip"]), int(port, &["port"])));
            }
        }
    }
    let ret = list.join(",");
    if more {
        return format!("{} + {} more...", ret, count - max);
    }
    ret
}

fn format_discovery_ports(ports: &[Value]) -> String {
    let max = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    for p in ports {
        if list.len() < max {
            let num = match at(p, &["port"]).and_then(Value::as_i64) {
                Some(n) => n.to_string(),
                None => match at(p, &["name"]).and_then(Value::as_str) {
                    Some(n) => n.to_string(),
                    None => "*".to_string(),
                },
            };
            list.push(num);
        } else if list.len() == max {
            more = true;
        }
    }
    list_with_more(&list, more, ports.len(), max)
}

fn format_discovery_endpoints(endpoints: &[Value]) -> String {
    let max = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for e in endpoints {
        for a in arr(e, &["addresses"]) {
            if list.len() < max {
                list.push(a.as_str().unwrap_or("").to_string());
            } else if list.len() == max {
                more = true;
            }
            count += 1;
        }
    }
    list_with_more(&list, more, count, max)
}

// --- events ----------------------------------------------------------------------------------

/// An events.k8s.io/v1 Event in core/v1 shape (the printer works on the internal type,
/// which both versions convert to).
fn events_v1_as_core(e: &Value) -> Value {
    let mut out = json!({
        "metadata": e.get("metadata").cloned().unwrap_or(Value::Null),
        "involvedObject": e.get("regarding").cloned().unwrap_or(Value::Null),
        "message": e.get("note").cloned().unwrap_or(Value::Null),
        "reason": e.get("reason").cloned().unwrap_or(Value::Null),
        "type": e.get("type").cloned().unwrap_or(Value::Null),
        "source": e.get("deprecatedSource").cloned().unwrap_or(Value::Null),
        "firstTimestamp": e.get("deprecatedFirstTimestamp").cloned().unwrap_or(Value::Null),
        "lastTimestamp": e.get("deprecatedLastTimestamp").cloned().unwrap_or(Value::Null),
        "count": e.get("deprecatedCount").cloned().unwrap_or(Value::Null),
        "eventTime": e.get("eventTime").cloned().unwrap_or(Value::Null),
        "reportingComponent": e.get("reportingController").cloned().unwrap_or(Value::Null),
        "reportingInstance": e.get("reportingInstance").cloned().unwrap_or(Value::Null),
    });
    if let Some(series) = e.get("series").filter(|v| !v.is_null()) {
        out["series"] = series.clone();
    }
    out
}

fn event_cells(e: &Value, ctx: &Ctx) -> Vec<Value> {
    let first_raw = s(e, &["firstTimestamp"]);
    let first = if parse_time(first_raw).is_none() {
        ctx.since(s(e, &["eventTime"]))
    } else {
        ctx.since(first_raw)
    };
    let last_raw = s(e, &["lastTimestamp"]);
    let mut last = if parse_time(last_raw).is_none() {
        first.clone()
    } else {
        ctx.since(last_raw)
    };
    let mut count = int(e, &["count"]);
    if let Some(series) = at(e, &["series"]) {
        last = ctx.since(s(series, &["lastObservedTime"]));
        count = int(series, &["count"]);
    } else if count == 0 {
        count = 1;
    }
    let kind = s(e, &["involvedObject", "kind"]).to_lowercase();
    let obj_name = s(e, &["involvedObject", "name"]);
    let target = if obj_name.is_empty() {
        kind
    } else {
        format!("{kind}/{obj_name}")
    };
    let component = first_non_empty(
        s(e, &["source", "component"]),
        s(e, &["reportingComponent"]),
    );
    let instance = first_non_empty(s(e, &["source", "host"]), s(e, &["reportingInstance"]));
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last),
        json!(s(e, &["type"])),
        json!(s(e, &["reason"])),
        json!(target),
        json!(s(e, &["involvedObject", "fieldPath"])),
        json!(source),
        json!(s(e, &["message"]).trim()),
        json!(first),
        json!(count),
        name(e),
    ]
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() {
        b
    } else {
        a
    }
}

// --- storage ---------------------------------------------------------------------------------

fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    let mut out: Vec<&str> = Vec::new();
    if has("ReadWriteOnce") {
        out.push("RWO");
    }
    if has("ReadOnlyMany") {
        out.push("ROX");
    }
    if has("ReadWriteMany") {
        out.push("RWX");
    }
    if has("ReadWriteOncePod") {
        out.push("RWOP");
    }
    out.join(",")
}

const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

fn storage_class(obj: &Value) -> String {
    if let Some(class) = at(obj, &["metadata", "annotations", BETA_STORAGE_CLASS]) {
        return class.as_str().unwrap_or("").to_string();
    }
    s(obj, &["spec", "storageClassName"]).to_string()
}

fn pvc_cells(pvc: &Value, ctx: &Ctx) -> Vec<Value> {
    let mut phase = s(pvc, &["status", "phase"]).to_string();
    if at(pvc, &["metadata", "deletionTimestamp"]).is_some() {
        phase = "Terminating".into();
    }
    let volume_name = s(pvc, &["spec", "volumeName"]);
    let (capacity, modes) = if volume_name.is_empty() {
        (String::new(), String::new())
    } else {
        (
            s(pvc, &["status", "capacity", "storage"]).to_string(),
            access_modes(arr(pvc, &["status", "accessModes"])),
        )
    };
    let vac = at(pvc, &["spec", "volumeAttributesClassName"])
        .and_then(Value::as_str)
        .unwrap_or("<unset>");
    let mode = at(pvc, &["spec", "volumeMode"])
        .and_then(Value::as_str)
        .unwrap_or("<unset>");
    vec![
        name(pvc),
        json!(phase),
        json!(volume_name),
        json!(capacity),
        json!(modes),
        json!(storage_class(pvc)),
        json!(vac),
        ctx.age(pvc),
        json!(mode),
    ]
}

fn pv_cells(pv: &Value, ctx: &Ctx) -> Vec<Value> {
    let claim = match at(pv, &["spec", "claimRef"]) {
        Some(c) => format!("{}/{}", s(c, &["namespace"]), s(c, &["name"])),
        None => String::new(),
    };
    let mut phase = s(pv, &["status", "phase"]).to_string();
    if at(pv, &["metadata", "deletionTimestamp"]).is_some() {
        phase = "Terminating".into();
    }
    let capacity = match s(pv, &["spec", "capacity", "storage"]) {
        "" => "0".to_string(),
        q => q.to_string(),
    };
    let vac = at(pv, &["spec", "volumeAttributesClassName"])
        .and_then(Value::as_str)
        .unwrap_or("<unset>");
    let mode = at(pv, &["spec", "volumeMode"])
        .and_then(Value::as_str)
        .unwrap_or("<unset>");
    vec![
        name(pv),
        json!(capacity),
        json!(access_modes(arr(pv, &["spec", "accessModes"]))),
        json!(s(pv, &["spec", "persistentVolumeReclaimPolicy"])),
        json!(phase),
        json!(claim),
        json!(storage_class(pv)),
        json!(vac),
        json!(s(pv, &["status", "reason"])),
        ctx.age(pv),
        json!(mode),
    ]
}

// --- workloads -------------------------------------------------------------------------------

/// `kind.group/name` (lowercase kind) of the controlling owner, or `<none>`.
fn controller_of(obj: &Value) -> String {
    let Some(owner) = arr(obj, &["metadata", "ownerReferences"])
        .iter()
        .find(|o| boolean(o, &["controller"]))
    else {
        return "<none>".into();
    };
    let api_version = s(owner, &["apiVersion"]);
    let group = match api_version.split_once('/') {
        Some((g, _)) => g,
        None => "",
    };
    let kind = s(owner, &["kind"]);
    let owner_name = s(owner, &["name"]);
    if kind.is_empty() && group.is_empty() {
        return owner_name.to_string();
    }
    let group_kind = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    format!("{}/{}", group_kind.to_lowercase(), owner_name)
}

fn job_condition(job: &Value, ty: &str) -> bool {
    arr(job, &["status", "conditions"])
        .iter()
        .find(|c| s(c, &["type"]) == ty)
        .is_some_and(|c| s(c, &["status"]) == "True")
}

fn job_cells(job: &Value, ctx: &Ctx) -> Vec<Value> {
    let succeeded = int(job, &["status", "succeeded"]);
    let completions = match at(job, &["spec", "completions"]).and_then(Value::as_i64) {
        Some(c) => format!("{succeeded}/{c}"),
        None => {
            let parallelism = int(job, &["spec", "parallelism"]);
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let start = parse_time(s(job, &["status", "startTime"]));
    let completion = parse_time(s(job, &["status", "completionTime"]));
    let duration = match (start, completion) {
        (None, _) => String::new(),
        (Some(st), None) => ctx.since_ts(st),
        (Some(st), Some(done)) => {
            let nanos = done.as_nanosecond() - st.as_nanosecond();
            human_duration((nanos / 1_000_000_000) as i64)
        }
    };
    let status = if job_condition(job, "Complete") {
        "Complete"
    } else if job_condition(job, "Failed") {
        "Failed"
    } else if at(job, &["metadata", "deletionTimestamp"]).is_some() {
        "Terminating"
    } else if job_condition(job, "Suspended") {
        "Suspended"
    } else if job_condition(job, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = container_cells(template_containers(job));
    vec![
        name(job),
        json!(status),
        json!(completions),
        json!(duration),
        ctx.age(job),
        names,
        images,
        json!(format_label_selector(at(job, &["spec", "selector"]))),
    ]
}

fn hpa_metrics(hpa: &Value) -> String {
    let specs = arr(hpa, &["spec", "metrics"]);
    if specs.is_empty() {
        return "<none>".into();
    }
    let statuses = arr(hpa, &["status", "currentMetrics"]);
    let status_of = |i: usize, key: &str| statuses.get(i).and_then(|st| at(st, &[key]));
    let q = |v: Option<&Value>| -> String {
        match v {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        }
    };
    let max = 2;
    let mut list: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let item = match s(spec, &["type"]) {
            "External" | "Object" => {
                let key = if s(spec, &["type"]) == "External" {
                    "external"
                } else {
                    "object"
                };
                let target = at(spec, &[key, "target"]);
                let avg = target.and_then(|t| at(t, &["averageValue"]));
                if avg.is_some() {
                    let current = status_of(i, key)
                        .and_then(|st| at(st, &["current", "averageValue"]))
                        .map(|v| q(Some(v)))
                        .unwrap_or_else(|| "<unknown>".into());
                    format!("{}/{} (avg)", current, q(avg))
                } else {
                    let current = status_of(i, key)
                        .map(|st| q(at(st, &["current", "value"])))
                        .unwrap_or_else(|| "<unknown>".into());
                    format!("{}/{}", current, q(target.and_then(|t| at(t, &["value"]))))
                }
            }
            "Pods" => {
                let current = status_of(i, "pods")
                    .map(|st| q(at(st, &["current", "averageValue"])))
                    .unwrap_or_else(|| "<unknown>".into());
                format!(
                    "{}/{}",
                    current,
                    q(at(spec, &["pods", "target", "averageValue"]))
                )
            }
            "Resource" | "ContainerResource" => {
                let key = if s(spec, &["type"]) == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let res_name = s(spec, &[key, "name"]);
                let avg = at(spec, &[key, "target", "averageValue"]);
                if avg.is_some() {
                    let current = status_of(i, key)
                        .map(|st| q(at(st, &["current", "averageValue"])))
                        .unwrap_or_else(|| "<unknown>".into());
                    format!("{}: {}/{}", res_name, current, q(avg))
                } else {
                    let current = status_of(i, key)
                        .and_then(|st| at(st, &["current", "averageUtilization"]))
                        .and_then(Value::as_i64)
                        .map(|u| format!("{u}%"))
                        .unwrap_or_else(|| "<unknown>".into());
                    let target = at(spec, &[key, "target", "averageUtilization"])
                        .and_then(Value::as_i64)
                        .map(|u| format!("{u}%"))
                        .unwrap_or_else(|| "<auto>".into());
                    format!("{res_name}: {current}/{target}")
                }
            }
            _ => "<unknown type>".into(),
        };
        list.push(item);
    }
    let count = list.len();
    if count > max {
        list.truncate(max);
        return format!("{} + {} more...", list.join(", "), count - max);
    }
    list.join(", ")
}

fn hpa_cells(hpa: &Value, ctx: &Ctx) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        s(hpa, &["spec", "scaleTargetRef", "kind"]),
        s(hpa, &["spec", "scaleTargetRef", "name"])
    );
    let min_pods = at(hpa, &["spec", "minReplicas"])
        .and_then(Value::as_i64)
        .map(|m| m.to_string())
        .unwrap_or_else(|| "<unset>".into());
    vec![
        name(hpa),
        json!(reference),
        json!(hpa_metrics(hpa)),
        json!(min_pods),
        json!(int(hpa, &["spec", "maxReplicas"])),
        json!(int(hpa, &["status", "currentReplicas"])),
        ctx.age(hpa),
    ]
}

#[cfg(test)]
mod tests;
