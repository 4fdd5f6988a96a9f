//! RBAC escalation prevention on creates and updates of Roles, ClusterRoles, RoleBindings
//! and ClusterRoleBindings (upstream's `pkg/registry/rbac/*/policybased/storage.go`): a user
//! may only grant what they hold, unless they may `escalate` the role resource or `bind` the
//! referenced role (asked of the whole authorizer chain); system:masters may do anything;
//! updates that change only GC fields pass. The decision is `auth::rbac::escalation_allowed`.

use auth::rbac::{escalation_allowed, EscalationDenied, RbacObject, RbacWrite, RuleSource, GROUP};
use auth::{Attributes, UserInfo};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde_json::{json, Value};

use super::request::{Operation, Request};
use crate::error::ApiError;
use crate::server::ApiServer;

/// Whether the request writes one of the four RBAC kinds.
pub fn applies(req: &Request<'_>) -> bool {
    req.resource.group == GROUP
        && matches!(
            req.resource.plural,
            "roles" | "clusterroles" | "rolebindings" | "clusterrolebindings"
        )
        && matches!(req.operation, Operation::Create | Operation::Update)
        && req.subresource.is_empty()
}

/// The check for one request, asking the server's authorizers and RBAC objects.
pub fn check(srv: &ApiServer, req: &Request<'_>, obj: &Value) -> Result<(), ApiError> {
    let request_name = match req.operation {
        Operation::Create => "",
        _ => req.name,
    };
    let write = Write {
        user: req.user,
        plural: req.resource.plural,
        namespace: req.namespace,
        request_name,
        object: obj,
        old: req.old,
    };
    check_write(srv.rbac.source(), &write, |a| {
        crate::gate::authorize(srv, a).allowed()
    })
    .map_err(|e| match e {
        WriteError::Denied(d) => forbidden(&d),
        WriteError::Decode(msg) => ApiError::bad_request(msg),
    })
}

/// An RBAC write as JSON.
pub struct Write<'a> {
    /// Who writes.
    pub user: &'a UserInfo,
    /// `roles`, `clusterroles`, `rolebindings` or `clusterrolebindings`.
    pub plural: &'a str,
    /// The request's namespace.
    pub namespace: &'a str,
    /// The name in the path ("" for a create).
    pub request_name: &'a str,
    /// The object to store.
    pub object: &'a Value,
    /// The stored object, for updates.
    pub old: Option<&'a Value>,
}

/// Why a write is refused.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// It would escalate.
    #[error(transparent)]
    Denied(#[from] EscalationDenied),
    /// The object does not decode as its kind.
    #[error("{0}")]
    Decode(String),
}

enum Typed {
    Role(Role),
    ClusterRole(ClusterRole),
    RoleBinding(RoleBinding),
    ClusterRoleBinding(ClusterRoleBinding),
}

impl Typed {
    fn decode(plural: &str, v: &Value) -> Result<Typed, WriteError> {
        fn de<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, WriteError> {
            serde_json::from_value(v.clone()).map_err(|e| WriteError::Decode(e.to_string()))
        }
        Ok(match plural {
            "roles" => Typed::Role(de(v)?),
            "clusterroles" => Typed::ClusterRole(de(v)?),
            "rolebindings" => Typed::RoleBinding(de(v)?),
            _ => Typed::ClusterRoleBinding(de(v)?),
        })
    }

    fn as_object(&self) -> RbacObject<'_> {
        match self {
            Typed::Role(o) => RbacObject::Role(o),
            Typed::ClusterRole(o) => RbacObject::ClusterRole(o),
            Typed::RoleBinding(o) => RbacObject::RoleBinding(o),
            Typed::ClusterRoleBinding(o) => RbacObject::ClusterRoleBinding(o),
        }
    }
}

/// The escalation check of one write over `source`; `may` asks the authorizers.
pub fn check_write<S: RuleSource + ?Sized>(
    source: &S,
    write: &Write<'_>,
    may: impl Fn(&Attributes) -> bool,
) -> Result<(), WriteError> {
    let new = Typed::decode(write.plural, write.object)?;
    let old = write
        .old
        .map(|o| Typed::decode(write.plural, o))
        .transpose()?;
    let w = RbacWrite {
        user: write.user,
        namespace: write.namespace,
        request_name: write.request_name,
        object: new.as_object(),
        old: old.as_ref().map(Typed::as_object),
    };
    escalation_allowed(source, &w, may)?;
    Ok(())
}

fn forbidden(d: &EscalationDenied) -> ApiError {
    let mut e = ApiError::new(403, "Forbidden", d.to_string());
    e.details = Some(json!({"name": d.name, "group": GROUP, "kind": d.resource}));
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth::rbac::MemoryRuleSource;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..UserInfo::default()
        }
    }

    /// alice may get and list pods in every namespace.
    fn world() -> MemoryRuleSource {
        MemoryRuleSource {
            cluster_roles: vec![serde_json::from_value(json!({
                "metadata": {"name": "pod-reader"},
                "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]}))
            .unwrap()],
            cluster_role_bindings: vec![serde_json::from_value(json!({
                "metadata": {"name": "alice-reads"},
                "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "pod-reader"},
                "subjects": [{"kind": "User", "apiGroup": GROUP, "name": "alice"}]}))
            .unwrap()],
            ..MemoryRuleSource::default()
        }
    }

    fn role(verbs: &[&str]) -> Value {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "r", "namespace": "ns1"},
            "rules": [{"verbs": verbs, "apiGroups": [""], "resources": ["pods"]}]})
    }

    fn write<'a>(u: &'a UserInfo, plural: &'a str, obj: &'a Value) -> Write<'a> {
        Write {
            user: u,
            plural,
            namespace: "ns1",
            request_name: "",
            object: obj,
            old: None,
        }
    }

    #[test]
    fn roles_grant_only_what_the_writer_holds() {
        let alice = user("alice", &["system:authenticated"]);
        let held = role(&["get"]);
        check_write(&world(), &write(&alice, "roles", &held), |_| false).unwrap();
        let more = role(&["get", "delete"]);
        let err = check_write(&world(), &write(&alice, "roles", &more), |_| false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "roles.rbac.authorization.k8s.io \"r\" is forbidden: user \"alice\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}"
        );
        // escalate on roles lets it through; so does system:masters
        check_write(&world(), &write(&alice, "roles", &more), |a| {
            a.verb == "escalate" && a.resource == "roles"
        })
        .unwrap();
        let root = user("root", &["system:masters"]);
        check_write(&world(), &write(&root, "roles", &more), |_| false).unwrap();
    }

    #[test]
    fn bindings_need_the_roles_permissions_or_bind() {
        let bob = user("bob", &["system:authenticated"]);
        let binding = json!({"metadata": {"name": "b", "namespace": "ns1"},
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "pod-reader"},
            "subjects": [{"kind": "User", "apiGroup": GROUP, "name": "bob"}]});
        let err =
            check_write(&world(), &write(&bob, "rolebindings", &binding), |_| false).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "rolebindings.rbac.authorization.k8s.io \"b\" is forbidden: user \"bob\""
            ),
            "{err}"
        );
        check_write(&world(), &write(&bob, "rolebindings", &binding), |a| {
            a.verb == "bind" && a.name == "pod-reader"
        })
        .unwrap();
        let alice = user("alice", &["system:authenticated"]);
        check_write(&world(), &write(&alice, "rolebindings", &binding), |_| {
            false
        })
        .unwrap();
    }

    #[test]
    fn gc_only_updates_pass() {
        let bob = user("bob", &[]);
        let old = role(&["*"]);
        let mut new = old.clone();
        new["metadata"]["finalizers"] = json!(["foregroundDeletion"]);
        let mut w = write(&bob, "roles", &new);
        w.old = Some(&old);
        w.request_name = "r";
        check_write(&world(), &w, |_| false).unwrap();
        let mut changed = new.clone();
        changed["rules"][0]["verbs"] = json!(["create"]);
        let mut w = write(&bob, "roles", &changed);
        w.old = Some(&old);
        assert!(check_write(&world(), &w, |_| false).is_err());
    }
}
