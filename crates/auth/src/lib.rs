//! Who may do what, as pure functions over API objects: the authenticated user
//! ([`UserInfo`]), the attributes of a request ([`Attributes`], upstream's
//! `authorizer.Attributes`), and RBAC ([`rbac`]): rule evaluation against Roles, ClusterRoles
//! and their bindings, the escalation check, the rules a user has in a namespace, and
//! upstream's bootstrap policy ([`policy`]). The apiserver supplies the objects through
//! [`rbac::RuleSource`]; nothing here knows HTTP or the store.

pub mod node;
pub mod policy;
pub mod rbac;

use std::collections::BTreeMap;

/// Who made a request (upstream's `user.Info`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name (`alice`, `system:node:n1`, `system:serviceaccount:ns:sa`).
    pub name: String,
    /// A unique id, when the authenticator knows one.
    pub uid: String,
    /// Groups (`system:authenticated` included for every authenticated user).
    pub groups: Vec<String>,
    /// Extra attributes (`authentication.kubernetes.io/pod-name`, ...).
    pub extra: BTreeMap<String, Vec<String>>,
}

/// Well-known users and groups.
pub mod names {
    /// The user of requests without credentials.
    pub const ANONYMOUS: &str = "system:anonymous";
    /// The group of requests without credentials.
    pub const UNAUTHENTICATED: &str = "system:unauthenticated";
    /// The group of every authenticated user.
    pub const AUTHENTICATED: &str = "system:authenticated";
    /// The group that may do anything.
    pub const MASTERS: &str = "system:masters";
    /// The group of kubelets.
    pub const NODES: &str = "system:nodes";
    /// The prefix of kubelets' user names.
    pub const NODE_PREFIX: &str = "system:node:";
    /// The prefix of ServiceAccount user names (`system:serviceaccount:<ns>:<name>`).
    pub const SA_PREFIX: &str = "system:serviceaccount:";
    /// The group of all ServiceAccounts.
    pub const SERVICEACCOUNTS: &str = "system:serviceaccounts";
}

/// What a request asks to do (upstream's `authorizer.AttributesRecord`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// The user.
    pub user: UserInfo,
    /// The verb: `get list watch create update patch delete deletecollection` for resources
    /// (plus `impersonate`, `bind`, `escalate`, `approve`, `use`, ...), the lowercased HTTP
    /// method (`get`, `post`, `put`, ...) for non-resource paths.
    pub verb: String,
    /// True for requests to an API resource, false for a non-resource path (`/version`).
    pub resource_request: bool,
    /// The namespace ("" for cluster-scoped resources and for all namespaces).
    pub namespace: String,
    /// The API group ("" for core).
    pub api_group: String,
    /// The API version.
    pub api_version: String,
    /// The resource (plural).
    pub resource: String,
    /// The subresource (`log`, `status`, `exec`), or "".
    pub subresource: String,
    /// The object's name, or "" (lists, creates without a name).
    pub name: String,
    /// The request path (what non-resource rules match).
    pub path: String,
    /// The field selector of a list or watch (`spec.nodeName=n1`), as upstream's
    /// `GetFieldSelector` (the Node authorizer reads it).
    pub field_selector: String,
}

/// An authorizer's answer (upstream's `authorizer.Decision`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed, with why (which role and binding).
    Allow(String),
    /// Denied outright (no later authorizer is asked).
    Deny(String),
    /// This authorizer has nothing to say; the next one is asked, and if none allows, the
    /// request is forbidden.
    NoOpinion(String),
}

impl Decision {
    /// Whether it allows.
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}
