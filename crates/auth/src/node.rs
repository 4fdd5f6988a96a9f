//! The Node authorizer, as upstream's plugin/pkg/auth/authorizer/node (1.33, with
//! AuthorizeNodeWithSelectors): a kubelet (`system:node:<name>` in `system:nodes`) reads only
//! the secrets, configmaps, PersistentVolumeClaims and PersistentVolumes of pods bound to it,
//! makes tokens only for their ServiceAccounts, touches only its own Lease and CSINode, lists
//! pods only with `spec.nodeName=<name>` and nodes only its own; everything else it may do is
//! the static `system:node` rules. Who is related to the node (the graph upstream keeps) is
//! asked of the caller through [`Relations`].

use k8s_openapi::api::rbac::v1::PolicyRule;

use crate::{names, rbac, Attributes, Decision, UserInfo};

/// The node a user is, upstream's NodeIdentifier: `system:node:<name>` in `system:nodes`.
/// `Some("")` for a user in the group whose name has no node.
pub fn node_identity(user: &UserInfo) -> Option<&str> {
    if !user.groups.iter().any(|g| g == names::NODES) {
        return None;
    }
    Some(user.name.strip_prefix(names::NODE_PREFIX).unwrap_or(""))
}

/// Objects the kubelet may reach because a pod bound to its node uses them.
pub trait Relations {
    /// Whether a pod bound to `node` refers to the object (`secret`, `configmap`,
    /// `persistentvolumeclaim`, `serviceaccount`, or `pod` itself) `ns/name`, or (for
    /// `persistentvolume`) a claim of such a pod is bound to PersistentVolume `name`.
    fn related(&self, node: &str, kind: &str, ns: &str, name: &str) -> bool;
}

fn no(reason: impl Into<String>) -> Decision {
    Decision::NoOpinion(reason.into())
}

/// The decision for `a` by the node authorizer; `node_rules` are the static `system:node`
/// rules (`policy::node_rules()`).
pub fn authorize(a: &Attributes, rel: &dyn Relations, node_rules: &[PolicyRule]) -> Decision {
    let Some(node) = node_identity(&a.user) else {
        return no("");
    };
    if node.is_empty() {
        return no(format!("unknown node for user {:?}", a.user.name));
    }
    if a.resource_request {
        match (a.api_group.as_str(), a.resource.as_str()) {
            ("", "secrets") => return read_named(a, rel, node, "secret"),
            ("", "configmaps") => return read_named(a, rel, node, "configmap"),
            ("", "persistentvolumeclaims") if a.subresource == "status" => {
                return status_update(a, rel, node, "persistentvolumeclaim")
            }
            ("", "persistentvolumeclaims") => {
                return get_only(a, rel, node, "persistentvolumeclaim")
            }
            ("", "persistentvolumes") => return get_only(a, rel, node, "persistentvolume"),
            ("", "serviceaccounts") => return create_token(a, rel, node),
            ("coordination.k8s.io", "leases") => return lease(a, node, node_rules),
            ("storage.k8s.io", "csinodes") => return own_named(a, node, node_rules, "csinode"),
            ("", "pods") if a.subresource.is_empty() => return pods(a, rel, node, node_rules),
            ("", "nodes") if a.subresource.is_empty() => return nodes(a, node, node_rules),
            _ => {}
        }
    }
    if node_rules.iter().any(|r| rbac::rule_allows(r, a)) {
        return Decision::Allow(String::new());
    }
    no("")
}

fn relationship(rel: &dyn Relations, node: &str, kind: &str, a: &Attributes) -> Decision {
    if rel.related(node, kind, &a.namespace, &a.name) {
        Decision::Allow(String::new())
    } else {
        no(format!(
            "no relationship found between node '{node}' and this object"
        ))
    }
}

/// Secrets and configmaps: get, list or watch of one named object of a related pod.
fn read_named(a: &Attributes, rel: &dyn Relations, node: &str, kind: &str) -> Decision {
    if !matches!(a.verb.as_str(), "get" | "list" | "watch") {
        return no("can only read resources of this type");
    }
    if !a.subresource.is_empty() {
        return no("cannot read subresource");
    }
    if a.namespace.is_empty() {
        return no("can only read namespaced object of this type");
    }
    if a.name.is_empty() {
        return no("No Object name found");
    }
    relationship(rel, node, kind, a)
}

/// PersistentVolumeClaims and PersistentVolumes: get of a related one.
fn get_only(a: &Attributes, rel: &dyn Relations, node: &str, kind: &str) -> Decision {
    if a.verb != "get" {
        return no("can only get individual resources of this type");
    }
    if !a.subresource.is_empty() {
        return no("cannot get subresource");
    }
    if a.name.is_empty() {
        return no("No Object name found");
    }
    relationship(rel, node, kind, a)
}

/// A related claim's status (the kubelet reports volume expansion).
fn status_update(a: &Attributes, rel: &dyn Relations, node: &str, kind: &str) -> Decision {
    if !matches!(a.verb.as_str(), "get" | "update" | "patch") {
        return no("can only get/update/patch this type");
    }
    if a.name.is_empty() {
        return no("No Object name found");
    }
    relationship(rel, node, kind, a)
}

/// serviceaccounts/token for the ServiceAccount of a pod on the node.
fn create_token(a: &Attributes, rel: &dyn Relations, node: &str) -> Decision {
    if a.verb != "create" || a.subresource != "token" {
        return no("can only create tokens for individual service accounts");
    }
    if a.name.is_empty() {
        return no("No Object name found");
    }
    relationship(rel, node, "serviceaccount", a)
}

/// The node's own Lease in kube-node-lease.
fn lease(a: &Attributes, node: &str, node_rules: &[PolicyRule]) -> Decision {
    if !matches!(
        a.verb.as_str(),
        "get" | "create" | "update" | "patch" | "delete"
    ) {
        return no("can only get, create, update, patch, or delete a node lease");
    }
    if a.namespace != "kube-node-lease" {
        return no("can only access leases in the kube-node-lease namespace");
    }
    if a.verb != "create" && a.name != node {
        return no("can only access node lease with the same name as the requesting node");
    }
    static_rules(a, node_rules)
}

/// The node's own object of a cluster-scoped kind named after it (CSINode).
fn own_named(a: &Attributes, node: &str, node_rules: &[PolicyRule], what: &str) -> Decision {
    if a.verb != "create" && a.name != node {
        return no(format!(
            "can only access {what} with the same name as the requesting node"
        ));
    }
    static_rules(a, node_rules)
}

/// Pods: one related pod by name, or a list/watch restricted to the node's pods.
fn pods(a: &Attributes, rel: &dyn Relations, node: &str, node_rules: &[PolicyRule]) -> Decision {
    match a.verb.as_str() {
        "get" => relationship(rel, node, "pod", a),
        "list" | "watch" => {
            if a.name.is_empty() && !selects(&a.field_selector, "spec.nodeName", node) {
                return no("can only list/watch pods with spec.nodeName field selector");
            }
            if !a.name.is_empty() {
                return relationship(rel, node, "pod", a);
            }
            static_rules(a, node_rules)
        }
        _ => static_rules(a, node_rules),
    }
}

/// Nodes: get its own, list/watch only with `metadata.name=<node>`.
fn nodes(a: &Attributes, node: &str, node_rules: &[PolicyRule]) -> Decision {
    match a.verb.as_str() {
        "get" if a.name != node => no("node can only get its own Node object"),
        "list" | "watch"
            if a.name != node && !selects(&a.field_selector, "metadata.name", node) =>
        {
            no("node can only list/watch its own Node object")
        }
        _ => static_rules(a, node_rules),
    }
}

fn static_rules(a: &Attributes, node_rules: &[PolicyRule]) -> Decision {
    if node_rules.iter().any(|r| rbac::rule_allows(r, a)) {
        Decision::Allow(String::new())
    } else {
        no("")
    }
}

/// Whether a field selector (`a=b,c==d`) requires `field` to be `value`.
fn selects(selector: &str, field: &str, value: &str) -> bool {
    selector.split(',').any(|req| {
        let req = req.trim();
        let (k, v) = match req.split_once("==").or_else(|| req.split_once('=')) {
            Some(kv) => kv,
            None => return false,
        };
        !k.ends_with('!') && k.trim() == field && v.trim() == value
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Graph(Vec<(&'static str, &'static str, &'static str, &'static str)>);

    impl Relations for Graph {
        fn related(&self, node: &str, kind: &str, ns: &str, name: &str) -> bool {
            self.0
                .iter()
                .any(|(n, k, s, o)| (*n, *k, *s, *o) == (node, kind, ns, name))
        }
    }

    fn kubelet(node: &str) -> UserInfo {
        UserInfo {
            name: format!("system:node:{node}"),
            groups: vec!["system:nodes".into(), "system:authenticated".into()],
            ..Default::default()
        }
    }

    fn req(user: UserInfo, verb: &str, resource: &str, ns: &str, name: &str) -> Attributes {
        Attributes {
            user,
            verb: verb.into(),
            resource_request: true,
            namespace: ns.into(),
            api_version: "v1".into(),
            resource: resource.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_kubelet_reads_only_what_its_pods_use() {
        let g = Graph(vec![
            ("n1", "secret", "default", "db"),
            ("n1", "configmap", "default", "cfg"),
            ("n1", "pod", "default", "web"),
            ("n1", "serviceaccount", "default", "default"),
        ]);
        let rules = crate::policy::node_rules();
        let ok = |a: &Attributes| authorize(a, &g, &rules).allowed();
        assert!(ok(&req(kubelet("n1"), "get", "secrets", "default", "db")));
        assert!(ok(&req(
            kubelet("n1"),
            "watch",
            "configmaps",
            "default",
            "cfg"
        )));
        // Another node's secret, a secret no pod of it uses, a list of all secrets: no.
        assert!(!ok(&req(kubelet("n2"), "get", "secrets", "default", "db")));
        assert!(!ok(&req(
            kubelet("n1"),
            "get",
            "secrets",
            "default",
            "other"
        )));
        let d = authorize(
            &req(kubelet("n1"), "list", "secrets", "default", ""),
            &g,
            &rules,
        );
        assert_eq!(d, Decision::NoOpinion("No Object name found".into()));
        let d = authorize(
            &req(kubelet("n1"), "get", "secrets", "kube-system", "x"),
            &g,
            &rules,
        );
        assert_eq!(
            d,
            Decision::NoOpinion("no relationship found between node 'n1' and this object".into())
        );
        assert!(!ok(&req(
            kubelet("n1"),
            "update",
            "secrets",
            "default",
            "db"
        )));
        // Tokens for its pods' ServiceAccounts only.
        let mut t = req(
            kubelet("n1"),
            "create",
            "serviceaccounts",
            "default",
            "default",
        );
        t.subresource = "token".into();
        assert!(ok(&t));
        t.name = "admin".into();
        assert!(!ok(&t));
        // Its own lease only.
        let mut l = req(kubelet("n1"), "update", "leases", "kube-node-lease", "n1");
        l.api_group = "coordination.k8s.io".into();
        assert!(ok(&l));
        l.name = "n2".into();
        assert!(!ok(&l));
        // Pods: the node's own, by field selector.
        let mut p = req(kubelet("n1"), "list", "pods", "", "");
        assert!(!ok(&p));
        p.field_selector = "spec.nodeName=n1".into();
        assert!(ok(&p));
        p.field_selector = "spec.nodeName=n2".into();
        assert!(!ok(&p));
        assert!(ok(&req(kubelet("n1"), "get", "pods", "default", "web")));
        assert!(!ok(&req(kubelet("n1"), "get", "pods", "default", "db-0")));
        // Nodes: its own.
        assert!(ok(&req(kubelet("n1"), "get", "nodes", "", "n1")));
        assert!(!ok(&req(kubelet("n1"), "get", "nodes", "", "n2")));
        let mut n = req(kubelet("n1"), "watch", "nodes", "", "");
        n.field_selector = "metadata.name=n1".into();
        assert!(ok(&n));
        // The static rules for the rest; nothing beyond them.
        assert!(ok(&req(kubelet("n1"), "list", "services", "", "")));
        assert!(!ok(&req(
            kubelet("n1"),
            "delete",
            "services",
            "default",
            "x"
        )));
        assert!(!ok(&req(kubelet("n1"), "list", "roles", "", "")));
    }

    #[test]
    fn only_nodes_are_judged() {
        let g = Graph(vec![]);
        let rules = crate::policy::node_rules();
        let alice = UserInfo {
            name: "alice".into(),
            ..Default::default()
        };
        assert_eq!(
            authorize(&req(alice, "get", "secrets", "default", "db"), &g, &rules),
            Decision::NoOpinion(String::new())
        );
        let nameless = UserInfo {
            name: "bob".into(),
            groups: vec!["system:nodes".into()],
            ..Default::default()
        };
        assert_eq!(
            authorize(&req(nameless, "get", "nodes", "", "n1"), &g, &rules),
            Decision::NoOpinion("unknown node for user \"bob\"".into())
        );
        assert!(selects("a=b,spec.nodeName==n1", "spec.nodeName", "n1"));
        assert!(!selects("spec.nodeName!=n1", "spec.nodeName", "n1"));
    }
}
