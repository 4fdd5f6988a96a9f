//! The privilege-escalation check on writes of Roles, ClusterRoles and their bindings: a user
//! may only grant what they hold, unless they may `escalate` roles or `bind` the referenced
//! role. Mirrors upstream's `pkg/registry/rbac/{role,clusterrole,rolebinding,
//! clusterrolebinding}/policybased/storage.go`, `pkg/registry/rbac/escalation_check.go`
//! (`EscalationAllowed`, `RoleEscalationAuthorized`, `BindingAuthorized`,
//! `IsOnlyMutatingGCFields`) and `ConfirmNoEscalation` of
//! `pkg/registry/rbac/validation/rule.go`, with their Forbidden texts.

use std::collections::BTreeSet;

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef,
};
use serde::Serialize;

use super::{
    compact_rules, compact_string, covers, gofmt, new_forbidden_message, role_reference_rules,
    rules_for, LookupStyle, RuleResolutionError, RuleSource, GROUP,
};
use crate::{names, Attributes, UserInfo};

/// An RBAC object being created or updated.
#[derive(Debug, Clone, Copy)]
pub enum RbacObject<'a> {
    /// A Role.
    Role(&'a Role),
    /// A ClusterRole.
    ClusterRole(&'a ClusterRole),
    /// A RoleBinding.
    RoleBinding(&'a RoleBinding),
    /// A ClusterRoleBinding.
    ClusterRoleBinding(&'a ClusterRoleBinding),
}

impl RbacObject<'_> {
    /// The plural resource name (`roles`, `clusterroles`, ...).
    pub fn resource(&self) -> &'static str {
        match self {
            RbacObject::Role(_) => "roles",
            RbacObject::ClusterRole(_) => "clusterroles",
            RbacObject::RoleBinding(_) => "rolebindings",
            RbacObject::ClusterRoleBinding(_) => "clusterrolebindings",
        }
    }

    fn name(&self) -> &str {
        let meta = match self {
            RbacObject::Role(o) => &o.metadata,
            RbacObject::ClusterRole(o) => &o.metadata,
            RbacObject::RoleBinding(o) => &o.metadata,
            RbacObject::ClusterRoleBinding(o) => &o.metadata,
        };
        meta.name.as_deref().unwrap_or_default()
    }
}

/// A create (`old` None) or update of an RBAC object, as the apiserver's registry sees it.
#[derive(Debug, Clone, Copy)]
pub struct RbacWrite<'a> {
    /// Who writes.
    pub user: &'a UserInfo,
    /// The request's namespace ("" for cluster-scoped objects).
    pub namespace: &'a str,
    /// The name in the request path ("" for a create, as upstream's RequestInfo has it).
    pub request_name: &'a str,
    /// The object to be stored.
    pub object: RbacObject<'a>,
    /// The stored object an update replaces; None for a create.
    pub old: Option<RbacObject<'a>>,
}

/// Why a write would escalate privileges (the `err` inside upstream's Forbidden).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EscalationError {
    /// The rules granted are not all held by the user.
    #[error(
        "user {} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}{}",
        gofmt::quote(.user),
        gofmt::quote_list(.groups),
        .missing.join("\n"),
        resolution_suffix(.resolution_errors)
    )]
    NotHeld {
        /// The user's name.
        user: String,
        /// The user's groups.
        groups: Vec<String>,
        /// The missing rules in compact form, sorted (`{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`).
        missing: Vec<String>,
        /// Roles of the user's own bindings that could not be read.
        resolution_errors: Vec<String>,
    },
    /// Setting or changing an aggregationRule needs `*` on everything.
    #[error("must have cluster-admin privileges to use the aggregationRule")]
    AggregationRuleNeedsClusterAdmin,
    /// The role a binding refers to could not be read.
    #[error(transparent)]
    RoleRef(#[from] RuleResolutionError),
}

fn resolution_suffix(errors: &[String]) -> String {
    if errors.is_empty() {
        String::new()
    } else {
        format!("; resolution errors: [{}]", gofmt::aggregate(errors))
    }
}

/// A refused write: upstream's `apierrors.NewForbidden(<resource>.rbac.authorization.k8s.io,
/// name, cause)`; its text is the Status message (`roles.rbac.authorization.k8s.io "r" is
/// forbidden: user "alice" (groups=["system:authenticated"]) is attempting to grant ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", new_forbidden_message(GROUP, .resource, .name, &.cause.to_string()))]
pub struct EscalationDenied {
    /// The plural resource (`roles`, `clusterrolebindings`, ...), for the Status details.
    pub resource: &'static str,
    /// The object's name.
    pub name: String,
    /// Why (boxed: the error travels by value through the apiserver's request path).
    #[source]
    pub cause: Box<EscalationError>,
}

/// Upstream's check before storing an RBAC write. `may` asks the apiserver's whole
/// authorizer chain whether the user may do something (`escalate` on roles/clusterroles,
/// `bind` on the referenced role); `source` gives the RBAC objects.
///
/// - members of `system:masters` may write anything;
/// - Role/ClusterRole: allowed when the user may `escalate` it, when an update changes only
///   ownerReferences/finalizers, or when the user's rules in the request's namespace cover the
///   role's rules; a ClusterRole with (or losing) an aggregationRule also needs `*` on `*.*`
///   and `*` on nonResourceURLs `*`;
/// - RoleBinding/ClusterRoleBinding: allowed when an update changes only GC fields, when the
///   user may `bind` the referenced role, or when the user's rules in the binding's namespace
///   cover the referenced role's rules.
pub fn escalation_allowed<S: RuleSource + ?Sized>(
    source: &S,
    write: &RbacWrite<'_>,
    may: impl Fn(&Attributes) -> bool,
) -> Result<(), EscalationDenied> {
    if write.user.groups.iter().any(|g| g == names::MASTERS) {
        return Ok(());
    }
    let deny = |cause: EscalationError| EscalationDenied {
        resource: write.object.resource(),
        name: write.object.name().to_string(),
        cause: Box::new(cause),
    };
    let gc_only = write
        .old
        .is_some_and(|old| same_but_gc_fields(&write.object, &old));
    match write.object {
        RbacObject::Role(role) => {
            if may(&escalate_attributes(write)) || gc_only {
                return Ok(());
            }
            confirm_no_escalation(source, write, role.rules.as_deref().unwrap_or_default())
                .map_err(deny)
        }
        RbacObject::ClusterRole(role) => {
            if may(&escalate_attributes(write)) || gc_only {
                return Ok(());
            }
            confirm_no_escalation(source, write, role.rules.as_deref().unwrap_or_default())
                .map_err(deny)?;
            let old_aggregates = matches!(write.old, Some(RbacObject::ClusterRole(old)) if has_aggregation_rule(old));
            if (has_aggregation_rule(role) || old_aggregates)
                && confirm_no_escalation(source, write, &full_authority()).is_err()
            {
                return Err(deny(EscalationError::AggregationRuleNeedsClusterAdmin));
            }
            Ok(())
        }
        RbacObject::RoleBinding(binding) => {
            check_binding(source, write, &binding.role_ref, write.namespace, &may).map_err(deny)
        }
        RbacObject::ClusterRoleBinding(binding) => {
            check_binding(source, write, &binding.role_ref, "", &may).map_err(deny)
        }
    }
}

/// The questions [`escalation_allowed`] may put to `may` for this write (`escalate` on a role
/// resource, `bind` on a binding's role), for callers whose authorizer chain cannot be asked
/// synchronously: ask these first, then answer `may` from the results.
pub fn escalation_questions(write: &RbacWrite<'_>) -> Vec<Attributes> {
    match write.object {
        RbacObject::Role(_) | RbacObject::ClusterRole(_) => vec![escalate_attributes(write)],
        RbacObject::RoleBinding(b) => bind_attributes(write.user, &b.role_ref, write.namespace)
            .into_iter()
            .collect(),
        RbacObject::ClusterRoleBinding(b) => bind_attributes(write.user, &b.role_ref, "")
            .into_iter()
            .collect(),
    }
}

fn check_binding<S: RuleSource + ?Sized>(
    source: &S,
    write: &RbacWrite<'_>,
    role_ref: &RoleRef,
    binding_namespace: &str,
    may: &impl Fn(&Attributes) -> bool,
) -> Result<(), EscalationError> {
    let gc_only = write
        .old
        .is_some_and(|old| same_but_gc_fields(&write.object, &old));
    if gc_only || binding_authorized(write.user, role_ref, binding_namespace, may) {
        return Ok(());
    }
    let rules = role_reference_rules(source, LookupStyle::Registry, role_ref, binding_namespace)?;
    confirm_no_escalation(source, write, &rules)
}

/// `RoleEscalationAuthorized`'s question: may the user `escalate` this role resource.
fn escalate_attributes(write: &RbacWrite<'_>) -> Attributes {
    Attributes {
        user: write.user.clone(),
        verb: "escalate".into(),
        resource_request: true,
        namespace: write.namespace.into(),
        api_group: GROUP.into(),
        api_version: "*".into(),
        resource: write.object.resource().into(),
        name: write.request_name.into(),
        ..Attributes::default()
    }
}

/// `BindingAuthorized`: may the user `bind` the referenced role in the binding's namespace.
fn binding_authorized(
    user: &UserInfo,
    role_ref: &RoleRef,
    binding_namespace: &str,
    may: &impl Fn(&Attributes) -> bool,
) -> bool {
    bind_attributes(user, role_ref, binding_namespace).is_some_and(|a| may(&a))
}

/// The `bind` question of `BindingAuthorized`; None for a roleRef kind it never asks about.
fn bind_attributes(
    user: &UserInfo,
    role_ref: &RoleRef,
    binding_namespace: &str,
) -> Option<Attributes> {
    let resource = match role_ref.kind.as_str() {
        "ClusterRole" => "clusterroles",
        "Role" => "roles",
        _ => return None,
    };
    Some(Attributes {
        user: user.clone(),
        verb: "bind".into(),
        resource_request: true,
        namespace: binding_namespace.into(),
        api_group: role_ref.api_group.clone(),
        resource: resource.into(),
        name: role_ref.name.clone(),
        ..Attributes::default()
    })
}

/// `ConfirmNoEscalation`: the user's rules in the request's namespace (read through the
/// registry) must cover `rules`.
fn confirm_no_escalation<S: RuleSource + ?Sized>(
    source: &S,
    write: &RbacWrite<'_>,
    rules: &[PolicyRule],
) -> Result<(), EscalationError> {
    let (owned, errors) = rules_for(source, LookupStyle::Registry, write.user, write.namespace);
    let (covered, missing) = covers(&owned, rules);
    if covered {
        return Ok(());
    }
    let missing: BTreeSet<String> = compact_rules(&missing).iter().map(compact_string).collect();
    Err(EscalationError::NotHeld {
        user: write.user.name.clone(),
        groups: write.user.groups.clone(),
        missing: missing.into_iter().collect(),
        resolution_errors: errors.iter().map(ToString::to_string).collect(),
    })
}

fn full_authority() -> Vec<PolicyRule> {
    let all = || Some(vec!["*".to_string()]);
    vec![
        PolicyRule {
            verbs: vec!["*".into()],
            api_groups: all(),
            resources: all(),
            ..PolicyRule::default()
        },
        PolicyRule {
            verbs: vec!["*".into()],
            non_resource_urls: all(),
            ..PolicyRule::default()
        },
    ]
}

fn has_aggregation_rule(role: &ClusterRole) -> bool {
    role.aggregation_rule
        .as_ref()
        .and_then(|rule| rule.cluster_role_selectors.as_ref())
        .is_some_and(|selectors| !selectors.is_empty())
}

fn same_but_gc_fields(new: &RbacObject<'_>, old: &RbacObject<'_>) -> bool {
    match (new, old) {
        (RbacObject::Role(n), RbacObject::Role(o)) => only_gc_fields_changed(*n, *o),
        (RbacObject::ClusterRole(n), RbacObject::ClusterRole(o)) => only_gc_fields_changed(*n, *o),
        (RbacObject::RoleBinding(n), RbacObject::RoleBinding(o)) => only_gc_fields_changed(*n, *o),
        (RbacObject::ClusterRoleBinding(n), RbacObject::ClusterRoleBinding(o)) => {
            only_gc_fields_changed(*n, *o)
        }
        _ => false,
    }
}

/// `IsOnlyMutatingGCFields`: whether `new` differs from `old` only in
/// `metadata.ownerReferences`, `finalizers`, `selfLink`, `deletionTimestamp` or
/// `deletionGracePeriodSeconds`, so the garbage collector may update it without holding its
/// permissions.
pub fn only_gc_fields_changed<T: Serialize>(new: &T, old: &T) -> bool {
    const GC_FIELDS: [&str; 5] = [
        "ownerReferences",
        "finalizers",
        "selfLink",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ];
    let (Ok(mut new), Ok(old)) = (serde_json::to_value(new), serde_json::to_value(old)) else {
        return false;
    };
    let Some(new_meta) = new.get_mut("metadata").and_then(|m| m.as_object_mut()) else {
        return false;
    };
    for field in GC_FIELDS {
        new_meta.remove(field);
        if let Some(value) = old.get("metadata").and_then(|m| m.get(field)) {
            new_meta.insert(field.to_string(), value.clone());
        }
    }
    new == old
}

#[cfg(test)]
#[path = "escalation_tests.rs"]
mod tests;
