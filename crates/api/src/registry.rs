//! The resource registry: every API resource the cluster serves, with its group, version, kind,
//! plural, singular, scope, short names, verbs and subresources, as discovery reports them.

/// Whether objects of a resource live in a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Namespaced,
    Cluster,
}

/// Subresources a resource may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    Status,
    Scale,
    Binding,
    Log,
    Exec,
    Attach,
    PortForward,
    Eviction,
    EphemeralContainers,
    /// serviceaccounts/token (TokenRequest).
    Token,
}

impl Subresource {
    /// The path segment of the subresource (`status`, `scale`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Subresource::Status => "status",
            Subresource::Scale => "scale",
            Subresource::Binding => "binding",
            Subresource::Log => "log",
            Subresource::Exec => "exec",
            Subresource::Attach => "attach",
            Subresource::PortForward => "portforward",
            Subresource::Eviction => "eviction",
            Subresource::EphemeralContainers => "ephemeralcontainers",
            Subresource::Token => "token",
        }
    }

    /// Looks a subresource up by its path segment.
    pub fn from_name(name: &str) -> Option<Subresource> {
        ALL_SUBRESOURCES.iter().copied().find(|s| s.name() == name)
    }

    /// Kind served at the subresource, as discovery reports it.
    pub fn kind(self, parent_kind: &'static str) -> &'static str {
        match self {
            Subresource::Scale => "Scale",
            Subresource::Binding => "Binding",
            Subresource::Eviction => "Eviction",
            Subresource::Token => "TokenRequest",
            Subresource::Log
            | Subresource::Exec
            | Subresource::Attach
            | Subresource::PortForward => match self {
                Subresource::Exec => "PodExecOptions",
                Subresource::Attach => "PodAttachOptions",
                Subresource::PortForward => "PodPortForwardOptions",
                _ => "Pod",
            },
            Subresource::Status | Subresource::EphemeralContainers => parent_kind,
        }
    }

    /// Verbs of the subresource, as discovery reports them.
    pub fn verbs(self) -> &'static [&'static str] {
        match self {
            Subresource::Status | Subresource::Scale | Subresource::EphemeralContainers => {
                &["get", "patch", "update"]
            }
            Subresource::Binding | Subresource::Eviction | Subresource::Token => &["create"],
            Subresource::Log => &["get"],
            Subresource::Exec | Subresource::Attach | Subresource::PortForward => {
                &["create", "get"]
            }
        }
    }
}

const ALL_SUBRESOURCES: &[Subresource] = &[
    Subresource::Status,
    Subresource::Scale,
    Subresource::Binding,
    Subresource::Log,
    Subresource::Exec,
    Subresource::Attach,
    Subresource::PortForward,
    Subresource::Eviction,
    Subresource::EphemeralContainers,
    Subresource::Token,
];

/// The full verb set of an ordinary resource.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Verbs of a review resource (TokenReview, SubjectAccessReview, ...).
const VERBS_CREATE: &[&str] = &["create"];

/// Verbs of a read-only resource (componentstatuses).
const VERBS_READ: &[&str] = &["get", "list"];

/// Verbs of a resource that cannot be deleted as a collection (namespaces, like Kubernetes).
const VERBS_NO_DELETECOLLECTION: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];

/// One API resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group; empty for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// Lowercase plural, the URL segment (`pods`).
    pub plural: &'static str,
    /// Lowercase singular (`pod`).
    pub singular: &'static str,
    pub scope: Scope,
    pub short_names: &'static [&'static str],
    pub verbs: &'static [&'static str],
    pub subresources: &'static [Subresource],
    /// Categories for `kubectl get all`.
    pub categories: &'static [&'static str],
    /// Where the objects come from.
    pub storage: Storage,
}

/// Where a resource's objects come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// The cluster store (every resource but the one below).
    Store,
    /// Probed on each request, never stored: componentstatuses (upstream's
    /// pkg/registry/core/componentstatus).
    ComponentProbes,
    /// Answered from the request on create, never stored: TokenReview, SelfSubjectReview and
    /// the access reviews (upstream's pkg/registry/authentication and authorization).
    Review,
}

impl ResourceInfo {
    /// `group/version`, or just `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// True for namespaced resources.
    pub fn namespaced(&self) -> bool {
        self.scope == Scope::Namespaced
    }

    /// True when the resource has the subresource.
    pub fn has_subresource(&self, sub: Subresource) -> bool {
        self.subresources.contains(&sub)
    }

    /// The store key prefix of every object of this resource, ending with `/`.
    pub fn key_prefix(&self) -> String {
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        format!("/registry/{}/{}/", group, self.plural)
    }

    /// The store key prefix of this resource's objects in one namespace, ending with `/`.
    pub fn namespace_prefix(&self, namespace: &str) -> String {
        format!("{}{}/", self.key_prefix(), namespace)
    }

    /// The store key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match (self.scope, namespace) {
            (Scope::Namespaced, Some(ns)) => format!("{}{}/{}", self.key_prefix(), ns, name),
            _ => format!("{}{}", self.key_prefix(), name),
        }
    }

    /// The list kind (`PodList`).
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
}

macro_rules! resource {
    ($group:expr, $version:expr, $kind:expr, $plural:expr, $singular:expr, $scope:ident,
     short: [$($short:expr),*], verbs: $verbs:expr, sub: [$($sub:ident),*], cat: [$($cat:expr),*]) => {
        ResourceInfo {
            group: $group,
            version: $version,
            kind: $kind,
            plural: $plural,
            singular: $singular,
            scope: Scope::$scope,
            short_names: &[$($short),*],
            verbs: $verbs,
            subresources: &[$(Subresource::$sub),*],
            categories: &[$($cat),*],
            storage: Storage::Store,
        }
    };
}

/// Every resource the cluster serves, in discovery order.
pub static RESOURCES: &[ResourceInfo] = &[
    // core/v1
    resource!("", "v1", "Namespace", "namespaces", "namespace", Cluster,
        short: ["ns"], verbs: VERBS_NO_DELETECOLLECTION, sub: [Status], cat: []),
    resource!("", "v1", "Pod", "pods", "pod", Namespaced,
        short: ["po"], verbs: ALL_VERBS,
        sub: [Status, Binding, Log, Exec, Attach, PortForward, Eviction, EphemeralContainers],
        cat: ["all"]),
    resource!("", "v1", "Node", "nodes", "node", Cluster,
        short: ["no"], verbs: ALL_VERBS, sub: [Status], cat: []),
    resource!("", "v1", "Service", "services", "service", Namespaced,
        short: ["svc"], verbs: ALL_VERBS, sub: [Status], cat: ["all"]),
    resource!("", "v1", "Endpoints", "endpoints", "endpoints", Namespaced,
        short: ["ep"], verbs: ALL_VERBS, sub: [], cat: []),
    resource!("", "v1", "ConfigMap", "configmaps", "configmap", Namespaced,
        short: ["cm"], verbs: ALL_VERBS, sub: [], cat: []),
    resource!("", "v1", "Secret", "secrets", "secret", Namespaced,
        short: [], verbs: ALL_VERBS, sub: [], cat: []),
    resource!("", "v1", "Event", "events", "event", Namespaced,
        short: ["ev"], verbs: ALL_VERBS, sub: [], cat: []),
    resource!("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", Namespaced,
        short: ["sa"], verbs: ALL_VERBS, sub: [Token], cat: []),
    resource!("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim",
        Namespaced, short: ["pvc"], verbs: ALL_VERBS, sub: [Status], cat: []),
    resource!("", "v1", "PersistentVolume", "persistentvolumes", "persistentvolume", Cluster,
        short: ["pv"], verbs: ALL_VERBS, sub: [Status], cat: []),
    resource!("", "v1", "ReplicationController", "replicationcontrollers",
        "replicationcontroller", Namespaced, short: ["rc"], verbs: ALL_VERBS,
        sub: [Status, Scale], cat: ["all"]),
    ResourceInfo {
        storage: Storage::ComponentProbes,
        ..resource!("", "v1", "ComponentStatus", "componentstatuses", "componentstatus", Cluster,
            short: ["cs"], verbs: VERBS_READ, sub: [], cat: [])
    },
    // apps/v1
    resource!("apps", "v1", "Deployment", "deployments", "deployment", Namespaced,
        short: ["deploy"], verbs: ALL_VERBS, sub: [Status, Scale], cat: ["all"]),
    resource!("apps", "v1", "ReplicaSet", "replicasets", "replicaset", Namespaced,
        short: ["rs"], verbs: ALL_VERBS, sub: [Status, Scale], cat: ["all"]),
    resource!("apps", "v1", "StatefulSet", "statefulsets", "statefulset", Namespaced,
        short: ["sts"], verbs: ALL_VERBS, sub: [Status, Scale], cat: ["all"]),
    resource!("apps", "v1", "DaemonSet", "daemonsets", "daemonset", Namespaced,
        short: ["ds"], verbs: ALL_VERBS, sub: [Status], cat: ["all"]),
    resource!("apps", "v1", "ControllerRevision", "controllerrevisions", "controllerrevision",
        Namespaced, short: [], verbs: ALL_VERBS, sub: [], cat: []),
    // batch/v1
    resource!("batch", "v1", "Job", "jobs", "job", Namespaced,
        short: [], verbs: ALL_VERBS, sub: [Status], cat: ["all"]),
    // coordination.k8s.io/v1
    resource!("coordination.k8s.io", "v1", "Lease", "leases", "lease", Namespaced,
        short: [], verbs: ALL_VERBS, sub: [], cat: []),
    // scheduling.k8s.io/v1
    resource!("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", "priorityclass",
        Cluster, short: ["pc"], verbs: ALL_VERBS, sub: [], cat: []),
    // discovery.k8s.io/v1
    resource!("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice",
        Namespaced, short: [], verbs: ALL_VERBS, sub: [], cat: []),
    // authentication.k8s.io/v1
    ResourceInfo {
        storage: Storage::Review,
        ..resource!("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews",
            "selfsubjectreview", Cluster, short: [], verbs: VERBS_CREATE, sub: [], cat: [])
    },
    ResourceInfo {
        storage: Storage::Review,
        ..resource!("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", "tokenreview",
            Cluster, short: [], verbs: VERBS_CREATE, sub: [], cat: [])
    },
    // authorization.k8s.io/v1
    ResourceInfo {
        storage: Storage::Review,
        ..resource!("authorization.k8s.io", "v1", "LocalSubjectAccessReview",
            "localsubjectaccessreviews", "localsubjectaccessreview", Namespaced, short: [],
            verbs: VERBS_CREATE, sub: [], cat: [])
    },
    ResourceInfo {
        storage: Storage::Review,
        ..resource!("authorization.k8s.io", "v1", "SelfSubjectAccessReview",
            "selfsubjectaccessreviews", "selfsubjectaccessreview", Cluster, short: [],
            verbs: VERBS_CREATE, sub: [], cat: [])
    },
    ResourceInfo {
        storage: Storage::Review,
        ..resource!("authorization.k8s.io", "v1", "SelfSubjectRulesReview",
            "selfsubjectrulesreviews", "selfsubjectrulesreview", Cluster, short: [],
            verbs: VERBS_CREATE, sub: [], cat: [])
    },
    ResourceInfo {
        storage: Storage::Review,
        ..resource!("authorization.k8s.io", "v1", "SubjectAccessReview",
            "subjectaccessreviews", "subjectaccessreview", Cluster, short: [],
            verbs: VERBS_CREATE, sub: [], cat: [])
    },
    // autoscaling/v2
    resource!("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
        "horizontalpodautoscaler", Namespaced, short: ["hpa"], verbs: ALL_VERBS, sub: [Status],
        cat: ["all"]),
    // events.k8s.io/v1
    resource!("events.k8s.io", "v1", "Event", "events", "event", Namespaced,
        short: ["ev"], verbs: ALL_VERBS, sub: [], cat: []),
    // rbac.authorization.k8s.io/v1 (upstream's pkg/registry/rbac: no short names, no
    // categories, no subresources)
    resource!("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings",
        "clusterrolebinding", Cluster, short: [], verbs: ALL_VERBS, sub: [], cat: []),
    resource!("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "clusterrole",
        Cluster, short: [], verbs: ALL_VERBS, sub: [], cat: []),
    resource!("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "rolebinding",
        Namespaced, short: [], verbs: ALL_VERBS, sub: [], cat: []),
    resource!("rbac.authorization.k8s.io", "v1", "Role", "roles", "role", Namespaced,
        short: [], verbs: ALL_VERBS, sub: [], cat: []),
];

/// A served group/version and its preferred status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupVersion {
    pub group: &'static str,
    pub version: &'static str,
}

impl GroupVersion {
    /// `group/version` (or `v1` for core).
    pub fn as_string(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// Every served group/version in discovery order (core first).
pub fn group_versions() -> Vec<GroupVersion> {
    let mut out: Vec<GroupVersion> = Vec::new();
    for r in RESOURCES {
        if !out
            .iter()
            .any(|gv| gv.group == r.group && gv.version == r.version)
        {
            out.push(GroupVersion {
                group: r.group,
                version: r.version,
            });
        }
    }
    out
}

/// Resources of one group/version.
pub fn resources_in<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static ResourceInfo> + 'a {
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// Finds a resource by group, version and plural (the URL form).
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Finds a resource by apiVersion (`apps/v1`, `v1`) and kind.
pub fn find_by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceInfo> {
    let (group, version) = split_api_version(api_version);
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// Splits `apps/v1` into (`apps`, `v1`) and `v1` into (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_scope() {
        let pods = find("", "v1", "pods").unwrap();
        assert_eq!(
            pods.key(Some("default"), "web"),
            "/registry/core/pods/default/web"
        );
        let nodes = find("", "v1", "nodes").unwrap();
        assert_eq!(nodes.key(None, "n1"), "/registry/core/nodes/n1");
        let deploy = find_by_kind("apps/v1", "Deployment").unwrap();
        assert_eq!(deploy.plural, "deployments");
        assert_eq!(deploy.key_prefix(), "/registry/apps/deployments/");
    }

    #[test]
    fn group_versions_are_unique_and_core_first() {
        let gvs = group_versions();
        assert_eq!(gvs[0].as_string(), "v1");
        let mut names: Vec<String> = gvs.iter().map(|g| g.as_string()).collect();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
        assert!(names.contains(&"events.k8s.io/v1".to_string()));
    }

    #[test]
    fn rbac_kinds_are_served_with_upstreams_scopes() {
        let scope = |plural| {
            let r = find("rbac.authorization.k8s.io", "v1", plural).expect(plural);
            assert_eq!(r.verbs, ALL_VERBS, "{plural}");
            assert!(
                r.short_names.is_empty() && r.categories.is_empty() && r.subresources.is_empty()
            );
            r.scope
        };
        assert_eq!(scope("roles"), Scope::Namespaced);
        assert_eq!(scope("rolebindings"), Scope::Namespaced);
        assert_eq!(scope("clusterroles"), Scope::Cluster);
        assert_eq!(scope("clusterrolebindings"), Scope::Cluster);
        let crb = find_by_kind("rbac.authorization.k8s.io/v1", "ClusterRoleBinding").unwrap();
        assert_eq!(
            crb.key(None, "cluster-admin"),
            "/registry/rbac.authorization.k8s.io/clusterrolebindings/cluster-admin"
        );
    }

    #[test]
    fn every_plural_is_unique_within_its_group() {
        for (i, a) in RESOURCES.iter().enumerate() {
            for b in &RESOURCES[i + 1..] {
                assert!(
                    !(a.group == b.group && a.version == b.version && a.plural == b.plural),
                    "{} twice",
                    a.plural
                );
            }
        }
    }
}
