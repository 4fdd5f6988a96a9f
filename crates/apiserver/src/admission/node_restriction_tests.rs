//! NodeRestriction's decisions over JSON objects, with upstream's texts.

use serde_json::json;

use super::*;

fn mirror(node: &str) -> Value {
    json!({"metadata": {"name": "static-web-n1", "annotations": {"kubernetes.io/config.mirror": "h"},
        "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": "u1", "controller": true}]},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]}})
}

#[test]
fn nodes_create_only_clean_mirror_pods_of_their_own() {
    assert_eq!(pod_create_refusal("n1", &mirror("n1"), Some("u1")), None);
    let mut plain = mirror("n1");
    plain["metadata"]["annotations"] = json!({});
    assert_eq!(
        pod_create_refusal("n1", &plain, Some("u1")).unwrap(),
        "pod does not have \"kubernetes.io/config.mirror\" annotation, node \"n1\" can only create mirror pods"
    );
    let mut other = mirror("n1");
    other["spec"]["nodeName"] = json!("n2");
    assert_eq!(
        pod_create_refusal("n1", &other, Some("u1")).unwrap(),
        "node \"n1\" can only create pods with spec.nodeName set to itself"
    );
    assert_eq!(
        pod_create_refusal("n1", &mirror("n1"), Some("u2")).unwrap(),
        "node n1 UID mismatch: expected u1 got u2"
    );
    let mut secret = mirror("n1");
    secret["spec"]["volumes"] = json!([{"name": "s", "secret": {"secretName": "x"}}]);
    assert_eq!(
        pod_create_refusal("n1", &secret, Some("u1")).unwrap(),
        "node \"n1\" can not create pods that reference secrets"
    );
    let mut cm = mirror("n1");
    cm["spec"]["containers"][0]["envFrom"] = json!([{"configMapRef": {"name": "c"}}]);
    assert_eq!(
        pod_create_refusal("n1", &cm, Some("u1")).unwrap(),
        "node \"n1\" can not create pods that reference configmaps"
    );
    let mut pvc = mirror("n1");
    pvc["spec"]["volumes"] = json!([{"name": "d", "persistentVolumeClaim": {"claimName": "c"}}]);
    assert_eq!(
        pod_create_refusal("n1", &pvc, Some("u1")).unwrap(),
        "node \"n1\" can not create pods that reference persistentvolumeclaims"
    );
    let mut sa = mirror("n1");
    sa["spec"]["serviceAccountName"] = json!("default");
    assert_eq!(
        pod_create_refusal("n1", &sa, Some("u1")).unwrap(),
        "node \"n1\" can not create pods that reference a service account"
    );
    let mut unowned = mirror("n1");
    unowned["metadata"]["ownerReferences"] = json!([]);
    assert_eq!(
        pod_create_refusal("n1", &unowned, Some("u1")).unwrap(),
        "node \"n1\" can only create pods with an owner reference set to itself"
    );
}

#[test]
fn pod_status_only_of_own_pods_and_not_labels() {
    let old = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"nodeName": "n1"}});
    let mut new = old.clone();
    new["status"] = json!({"phase": "Running"});
    assert_eq!(pod_status_refusal("n1", &old, &new), None);
    assert_eq!(
        pod_status_refusal("n2", &old, &new).unwrap(),
        "node \"n2\" can only update pod status for pods with spec.nodeName set to itself"
    );
    new["metadata"]["labels"]["a"] = json!("2");
    assert_eq!(
        pod_status_refusal("n1", &old, &new).unwrap(),
        "node \"n1\" cannot update labels through pod status"
    );
}

#[test]
fn nodes_write_only_themselves_without_taints_or_protected_labels() {
    let n = json!({"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1",
        "node.kubernetes.io/exclude-from-external-load-balancers": "", "custom": "x"}}, "spec": {}});
    assert_eq!(
        node_refusal("n1", Operation::Create, "n1", Some(&n), None),
        None
    );
    assert_eq!(
        node_refusal("n1", Operation::Update, "n2", Some(&n), Some(&n)).unwrap(),
        "node \"n1\" is not allowed to modify node \"n2\""
    );
    let mut bad = n.clone();
    bad["metadata"]["labels"]["node-role.kubernetes.io/master"] = json!("");
    bad["metadata"]["labels"]["node-restriction.kubernetes.io/pci"] = json!("yes");
    assert_eq!(
        node_refusal("n1", Operation::Create, "n1", Some(&bad), None).unwrap(),
        "node \"n1\" is not allowed to set the following labels: node-restriction.kubernetes.io/pci, node-role.kubernetes.io/master"
    );
    assert_eq!(
        node_refusal("n1", Operation::Update, "n1", Some(&bad), Some(&n)).unwrap(),
        "is not allowed to modify labels: node-restriction.kubernetes.io/pci, node-role.kubernetes.io/master"
    );
    let mut tainted = n.clone();
    tainted["spec"]["taints"] = json!([{"key": "k", "effect": "NoSchedule"}]);
    assert_eq!(
        node_refusal("n1", Operation::Update, "n1", Some(&n), Some(&tainted)).unwrap(),
        "node \"n1\" is not allowed to modify taints"
    );
}

#[test]
fn leases_only_own_in_kube_node_lease() {
    assert_eq!(
        lease_refusal("n1", Operation::Update, "kube-node-lease", "n1", None),
        None
    );
    assert_eq!(
        lease_refusal("n1", Operation::Update, "default", "n1", None).unwrap(),
        "can only access leases in the \"kube-node-lease\" system namespace"
    );
    assert_eq!(
        lease_refusal("n1", Operation::Update, "kube-node-lease", "n2", None).unwrap(),
        "can only access node lease with the same name as the requesting node"
    );
}

#[test]
fn token_requests_only_for_own_pods() {
    let pod = json!({"metadata": {"name": "p", "uid": "pu"}, "spec": {"nodeName": "n1"}});
    let tr = json!({"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "pu"}}});
    assert_eq!(token_request_refusal("n1", &tr, Some(&pod)), None);
    assert_eq!(
        token_request_refusal("n2", &tr, Some(&pod)).unwrap(),
        "node requested token bound to a pod scheduled on a different node"
    );
    assert_eq!(
        token_request_refusal("n1", &json!({"spec": {}}), Some(&pod)).unwrap(),
        "node requested token not bound to a pod"
    );
}
