//! An in-memory [`RuleSource`] over vectors of RBAC objects, for tests and for callers that
//! already hold a snapshot (upstream's `NewTestRuleResolver` in
//! `pkg/registry/rbac/validation/rule.go` plays the same part).

use std::sync::Arc;

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};

use super::RuleSource;

/// RBAC objects held in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryRuleSource {
    /// ClusterRoles.
    pub cluster_roles: Vec<ClusterRole>,
    /// Roles (each with its namespace set).
    pub roles: Vec<Role>,
    /// ClusterRoleBindings.
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    /// RoleBindings (each with its namespace set).
    pub role_bindings: Vec<RoleBinding>,
}

impl RuleSource for MemoryRuleSource {
    fn cluster_role(&self, name: &str) -> Option<ClusterRole> {
        self.cluster_roles
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
            .cloned()
    }

    fn role(&self, namespace: &str, name: &str) -> Option<Role> {
        self.roles
            .iter()
            .find(|r| {
                r.metadata.namespace.as_deref() == Some(namespace)
                    && r.metadata.name.as_deref() == Some(name)
            })
            .cloned()
    }

    fn cluster_role_bindings(&self) -> Arc<[ClusterRoleBinding]> {
        self.cluster_role_bindings.clone().into()
    }

    fn role_bindings(&self, namespace: &str) -> Arc<[RoleBinding]> {
        self.role_bindings
            .iter()
            .filter(|b| b.metadata.namespace.as_deref() == Some(namespace))
            .cloned()
            .collect()
    }
}
