//! The NodeRestriction admission plugin (upstream plugin/pkg/admission/noderestriction,
//! 1.33): a kubelet (`system:node:<name>` in `system:nodes`) may create only mirror pods bound
//! to itself that reference nothing else, update the status and delete or evict only pods bound
//! to itself, write only its own Node (not its taints, configSource or protected labels), its
//! own Lease in kube-node-lease and CSINode, and request tokens only for pods bound to it.
//! Upstream's Forbidden texts.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::request::{Operation, Request};
use super::service_account::{configmap_names, is_mirror_pod, secret_names};
use crate::error::ApiError;
use crate::server::ApiServer;

/// The node-restriction label namespace kubelets may not set.
const NODE_RESTRICTION_NAMESPACE: &str = "node-restriction.kubernetes.io";

/// kubeletapis.IsKubeletLabel: the kubernetes.io labels kubelets may set.
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
    "kubernetes.io/os",
    "kubernetes.io/arch",
];
const KUBELET_LABEL_NAMESPACES: &[&str] = &["kubelet.kubernetes.io", "node.kubernetes.io"];

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn node_name_of(pod: &Value) -> &str {
    str_at(pod, "/spec/nodeName")
}

/// The plugin on one request; `obj` is the new object (None for deletes).
pub async fn admit(
    srv: &ApiServer,
    req: &Request<'_>,
    obj: Option<&Value>,
) -> Result<(), ApiError> {
    let Some(node) = auth::node::node_identity(req.user) else {
        return Ok(());
    };
    if node.is_empty() {
        return Err(req.forbidden(&format!(
            "could not determine node from user \"{}\"",
            req.user.name
        )));
    }
    let refusal = match (req.resource.group, req.resource.plural) {
        ("", "pods") => match req.subresource {
            "" => match (req.operation, obj, req.old) {
                (Operation::Create, Some(pod), _) => {
                    let node_uid = node_uid(srv, node).await?;
                    pod_create_refusal(node, pod, node_uid.as_deref())
                }
                (Operation::Delete, _, Some(old)) => (node_name_of(old) != node).then(|| {
                    format!("node \"{node}\" can only delete pods with spec.nodeName set to itself")
                }),
                (op, _, _) => Some(format!(
                    "unexpected operation \"{}\", node \"{node}\" can only create and delete mirror pods",
                    op.as_str()
                )),
            },
            "status" => match (req.operation, obj, req.old) {
                (Operation::Update, Some(new), Some(old)) => pod_status_refusal(node, old, new),
                (op, _, _) => Some(format!("unexpected operation \"{}\"", op.as_str())),
            },
            "eviction" => match req.operation {
                Operation::Create => {
                    let pods = req.resource;
                    let pod = crate::handlers::cached_or_stored(
                        srv,
                        pods,
                        &pods.key(Some(req.namespace), req.name),
                    )
                    .await?
                    .ok_or_else(|| ApiError::not_found(pods, req.name))?;
                    (node_name_of(&pod) != node).then(|| {
                        format!("node {node} can only evict pods with spec.nodeName set to itself")
                    })
                }
                op => Some(format!("unexpected operation {}", op.as_str())),
            },
            other => Some(format!(
                "unexpected pod subresource \"{other}\", only 'status' and 'eviction' are allowed"
            )),
        },
        ("", "serviceaccounts") => match (req.operation, req.subresource, obj) {
            (Operation::Create, "token", Some(tr)) => {
                let pods = api::registry::find("", "v1", "pods").expect("pods registered");
                let pod_name = str_at(tr, "/spec/boundObjectRef/name");
                let pod = if pod_name.is_empty() {
                    None
                } else {
                    crate::handlers::cached_or_stored(
                        srv,
                        pods,
                        &pods.key(Some(req.namespace), pod_name),
                    )
                    .await?
                };
                token_request_refusal(node, tr, pod.as_ref())
            }
            _ => None,
        },
        ("", "nodes") => node_refusal(node, req.operation, req.name, obj, req.old),
        ("", "persistentvolumeclaims") => {
            (req.subresource != "status").then(|| "may only update PVC status".to_string())
        }
        ("coordination.k8s.io", "leases") => {
            lease_refusal(node, req.operation, req.namespace, req.name, obj)
        }
        ("storage.k8s.io", "csinodes") => {
            let name = match (req.operation, obj) {
                (Operation::Create, Some(o)) => str_at(o, "/metadata/name"),
                _ => req.name,
            };
            (name != node).then(|| {
                "can only access CSINode with the same name as the requesting node".to_string()
            })
        }
        _ => None,
    };
    match refusal {
        Some(why) => Err(req.forbidden(&why)),
        None => Ok(()),
    }
}

async fn node_uid(srv: &ApiServer, node: &str) -> Result<Option<String>, ApiError> {
    let nodes = api::registry::find("", "v1", "nodes").expect("nodes registered");
    let got = crate::handlers::cached_or_stored(srv, nodes, &nodes.key(None, node)).await?;
    Ok(got.map(|n| str_at(&n, "/metadata/uid").to_string()))
}

/// `admitPodCreate`: only mirror pods bound to the node, owned by its Node (with `node_uid`,
/// None when the Node does not exist), referencing no other API objects.
pub fn pod_create_refusal(node: &str, pod: &Value, node_uid: Option<&str>) -> Option<String> {
    if !is_mirror_pod(pod) {
        return Some(format!(
            "pod does not have \"kubernetes.io/config.mirror\" annotation, node \"{node}\" can only create mirror pods"
        ));
    }
    if node_name_of(pod) != node {
        return Some(format!(
            "node \"{node}\" can only create pods with spec.nodeName set to itself"
        ));
    }
    let owners = pod
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    match owners {
        [] => {
            return Some(format!(
                "node \"{node}\" can only create pods with an owner reference set to itself"
            ))
        }
        [owner] => {
            if str_at(owner, "/apiVersion") != "v1"
                || str_at(owner, "/kind") != "Node"
                || str_at(owner, "/name") != node
            {
                return Some(format!(
                    "node \"{node}\" can only create pods with an owner reference set to itself"
                ));
            }
            if owner.get("controller").and_then(Value::as_bool) != Some(true) {
                return Some(format!(
                    "node \"{node}\" can only create pods with a controller owner reference set to itself"
                ));
            }
            if owner.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true) {
                return Some(format!(
                    "node \"{node}\" must not set blockOwnerDeletion on an owner reference"
                ));
            }
            let uid = str_at(owner, "/uid");
            match node_uid {
                None => return Some(format!("nodes \"{node}\" not found")),
                Some(actual) if actual != uid => {
                    return Some(format!(
                        "node {node} UID mismatch: expected {uid} got {actual}"
                    ))
                }
                Some(_) => {}
            }
        }
        _ => {
            return Some(format!(
                "node \"{node}\" can only create pods with a single owner reference set to itself"
            ))
        }
    }
    if !str_at(pod, "/spec/serviceAccountName").is_empty() {
        return Some(format!(
            "node \"{node}\" can not create pods that reference a service account"
        ));
    }
    if !secret_names(pod).is_empty() {
        return Some(format!(
            "node \"{node}\" can not create pods that reference secrets"
        ));
    }
    if !configmap_names(pod).is_empty() {
        return Some(format!(
            "node \"{node}\" can not create pods that reference configmaps"
        ));
    }
    let volumes = pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let projected = |key: &str| {
        volumes.iter().any(|v| {
            v.pointer("/projected/sources")
                .and_then(Value::as_array)
                .is_some_and(|s| s.iter().any(|s| s.get(key).is_some()))
        })
    };
    if projected("clusterTrustBundle") {
        return Some(format!(
            "node \"{node}\" can not create pods that reference clustertrustbundles"
        ));
    }
    if volumes
        .iter()
        .any(|v| v.get("persistentVolumeClaim").is_some())
    {
        return Some(format!(
            "node \"{node}\" can not create pods that reference persistentvolumeclaims"
        ));
    }
    None
}

fn labels(obj: Option<&Value>) -> Map<String, Value> {
    obj.and_then(|o| o.pointer("/metadata/labels"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// `admitPodStatus`: only pods bound to the node, and not their labels.
pub fn pod_status_refusal(node: &str, old: &Value, new: &Value) -> Option<String> {
    if node_name_of(old) != node {
        return Some(format!(
            "node \"{node}\" can only update pod status for pods with spec.nodeName set to itself"
        ));
    }
    if labels(Some(old)) != labels(Some(new)) {
        return Some(format!(
            "node \"{node}\" cannot update labels through pod status"
        ));
    }
    if new.pointer("/status/resourceClaimStatuses") != old.pointer("/status/resourceClaimStatuses")
    {
        return Some(format!(
            "node \"{node}\" cannot update resource claim statues"
        ));
    }
    None
}

/// `getModifiedLabels`: keys added, removed or changed.
fn modified_labels(new: &Map<String, Value>, old: &Map<String, Value>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (k, v) in new {
        if old.get(k) != Some(v) {
            out.insert(k.clone());
        }
    }
    for (k, v) in old {
        if new.get(k) != Some(v) {
            out.insert(k.clone());
        }
    }
    out
}

fn label_namespace(key: &str) -> &str {
    key.split_once('/').map(|(ns, _)| ns).unwrap_or("")
}

fn in_namespace(ns: &str, domain: &str) -> bool {
    ns == domain || ns.ends_with(&format!(".{domain}"))
}

fn is_kubelet_label(key: &str) -> bool {
    KUBELET_LABELS.contains(&key)
        || KUBELET_LABEL_NAMESPACES
            .iter()
            .any(|d| in_namespace(label_namespace(key), d))
}

/// `getForbiddenLabels`: node-restriction labels, and kubernetes.io / k8s.io labels that are
/// not kubelet labels.
pub fn forbidden_labels(modified: &BTreeSet<String>) -> Vec<String> {
    modified
        .iter()
        .filter(|k| {
            let ns = label_namespace(k);
            in_namespace(ns, NODE_RESTRICTION_NAMESPACE)
                || ((in_namespace(ns, "kubernetes.io") || in_namespace(ns, "k8s.io"))
                    && !is_kubelet_label(k))
        })
        .cloned()
        .collect()
}

/// `admitNode`: only its own Node; at create no configSource and no forbidden labels; at
/// update no new configSource, no taint changes, no forbidden label changes.
pub fn node_refusal(
    node: &str,
    op: Operation,
    requested: &str,
    new: Option<&Value>,
    old: Option<&Value>,
) -> Option<String> {
    if requested != node {
        return Some(format!(
            "node \"{node}\" is not allowed to modify node \"{requested}\""
        ));
    }
    match (op, new) {
        (Operation::Create, Some(n)) => {
            if n.pointer("/spec/configSource")
                .is_some_and(|c| !c.is_null())
            {
                return Some(format!(
                    "node \"{node}\" is not allowed to create pods with a non-nil configSource"
                ));
            }
            let forbidden = forbidden_labels(&modified_labels(&labels(new), &Map::new()));
            if !forbidden.is_empty() {
                return Some(format!(
                    "node \"{node}\" is not allowed to set the following labels: {}",
                    forbidden.join(", ")
                ));
            }
        }
        (Operation::Update, Some(n)) => {
            let old = old.unwrap_or(&Value::Null);
            let config = n.pointer("/spec/configSource").filter(|c| !c.is_null());
            if config.is_some() && config != old.pointer("/spec/configSource") {
                return Some(format!(
                    "node \"{node}\" is not allowed to update configSource to a new non-nil configSource"
                ));
            }
            let taints = |o: &Value| {
                o.pointer("/spec/taints")
                    .filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
                    .cloned()
            };
            if taints(n) != taints(old) {
                return Some(format!("node \"{node}\" is not allowed to modify taints"));
            }
            let forbidden = forbidden_labels(&modified_labels(&labels(new), &labels(Some(old))));
            if !forbidden.is_empty() {
                return Some(format!(
                    "is not allowed to modify labels: {}",
                    forbidden.join(", ")
                ));
            }
        }
        _ => {}
    }
    None
}

/// `admitLease`: only in kube-node-lease and only the node's own.
pub fn lease_refusal(
    node: &str,
    op: Operation,
    namespace: &str,
    name: &str,
    obj: Option<&Value>,
) -> Option<String> {
    if namespace != "kube-node-lease" {
        return Some(
            "can only access leases in the \"kube-node-lease\" system namespace".to_string(),
        );
    }
    let name = match (op, obj) {
        (Operation::Create, Some(o)) => str_at(o, "/metadata/name"),
        _ => name,
    };
    (name != node)
        .then(|| "can only access node lease with the same name as the requesting node".into())
}

/// `admitServiceAccount` on a TokenRequest: bound to a pod (with uid) that is `pod` (None: not
/// found) and runs on the node. (The TokenRequest API is not served yet; this waits for it.)
pub fn token_request_refusal(node: &str, tr: &Value, pod: Option<&Value>) -> Option<String> {
    let r = tr.pointer("/spec/boundObjectRef").unwrap_or(&Value::Null);
    if r.is_null()
        || str_at(r, "/apiVersion") != "v1"
        || str_at(r, "/kind") != "Pod"
        || str_at(r, "/name").is_empty()
    {
        return Some("node requested token not bound to a pod".into());
    }
    let uid = str_at(r, "/uid");
    if uid.is_empty() {
        return Some("node requested token with a pod binding without a uid".into());
    }
    let Some(pod) = pod else {
        return Some(format!("pods \"{}\" not found", str_at(r, "/name")));
    };
    if str_at(pod, "/metadata/uid") != uid {
        return Some(format!("the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"));
    }
    (node_name_of(pod) != node)
        .then(|| "node requested token bound to a pod scheduled on a different node".into())
}

#[cfg(test)]
#[path = "node_restriction_tests.rs"]
mod tests;
