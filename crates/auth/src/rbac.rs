//! RBAC evaluation over Roles, ClusterRoles and their bindings: the authorizer, rule
//! matching, subject matching and the rules a user holds. Mirrors upstream's
//! `plugin/pkg/auth/authorizer/rbac/rbac.go` (`RBACAuthorizer`, `RuleAllows`),
//! `pkg/apis/rbac/v1/evaluation_helpers.go` (`VerbMatches`, `ResourceMatches`,
//! `NonResourceURLMatches`, ...), `pkg/registry/rbac/validation/rule.go` (`VisitRulesFor`,
//! `appliesTo`, `GetRoleReferenceRules`, the binding describers) and
//! `staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go`
//! (`forbiddenMessage`). Escalation checks, `Covers` and aggregation live in submodules.

mod aggregation;
mod covers;
mod escalation;
pub mod gofmt;
mod memory;

use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};

use crate::{names, Attributes, Decision, UserInfo};

pub use aggregation::{
    aggregated_rules, label_selector_matches, try_aggregated_rules, SelectorError,
};
pub use covers::{breakdown_rule, compact_rules, compact_string, covers};
pub use escalation::{
    escalation_allowed, escalation_questions, only_gc_fields_changed, EscalationDenied,
    EscalationError, RbacObject, RbacWrite,
};
pub use memory::MemoryRuleSource;

/// The RBAC API group.
pub const GROUP: &str = "rbac.authorization.k8s.io";
/// `*` in verbs: every verb.
pub const VERB_ALL: &str = "*";
/// `*` in apiGroups: every group.
pub const API_GROUP_ALL: &str = "*";
/// `*` in resources: every resource and subresource.
pub const RESOURCE_ALL: &str = "*";
/// `*` in nonResourceURLs: every path.
pub const NON_RESOURCE_ALL: &str = "*";
/// Subject kinds.
pub const USER_KIND: &str = "User";
/// Subject kind of groups.
pub const GROUP_KIND: &str = "Group";
/// Subject kind of ServiceAccounts.
pub const SERVICE_ACCOUNT_KIND: &str = "ServiceAccount";

/// Where the authorizer reads RBAC objects; the apiserver implements it over its watch cache.
pub trait RuleSource {
    /// The ClusterRole named `name`, if it exists.
    fn cluster_role(&self, name: &str) -> Option<ClusterRole>;
    /// The Role `namespace/name`, if it exists.
    fn role(&self, namespace: &str, name: &str) -> Option<Role>;
    /// Every ClusterRoleBinding (a shared snapshot: asked on every request, so not a copy).
    fn cluster_role_bindings(&self) -> Arc<[ClusterRoleBinding]>;
    /// Every RoleBinding in `namespace` (a shared snapshot).
    fn role_bindings(&self, namespace: &str) -> Arc<[RoleBinding]>;
}

impl<S: RuleSource + ?Sized> RuleSource for &S {
    fn cluster_role(&self, name: &str) -> Option<ClusterRole> {
        (**self).cluster_role(name)
    }
    fn role(&self, namespace: &str, name: &str) -> Option<Role> {
        (**self).role(namespace, name)
    }
    fn cluster_role_bindings(&self) -> Arc<[ClusterRoleBinding]> {
        (**self).cluster_role_bindings()
    }
    fn role_bindings(&self, namespace: &str) -> Arc<[RoleBinding]> {
        (**self).role_bindings(namespace)
    }
}

impl<S: RuleSource + ?Sized> RuleSource for Arc<S> {
    fn cluster_role(&self, name: &str) -> Option<ClusterRole> {
        (**self).cluster_role(name)
    }
    fn role(&self, namespace: &str, name: &str) -> Option<Role> {
        (**self).role(namespace, name)
    }
    fn cluster_role_bindings(&self) -> Arc<[ClusterRoleBinding]> {
        (**self).cluster_role_bindings()
    }
    fn role_bindings(&self, namespace: &str) -> Arc<[RoleBinding]> {
        (**self).role_bindings(namespace)
    }
}

/// Why a binding's role could not be read. The text is upstream's: the authorizer reads
/// through informer listers (`clusterrole.rbac.authorization.k8s.io "x" not found`), the
/// escalation check through the registry (`clusterroles.rbac.authorization.k8s.io ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleResolutionError {
    /// The referenced Role or ClusterRole does not exist.
    #[error("{resource}.{GROUP} {} not found", gofmt::quote(.name))]
    NotFound {
        /// `role`/`clusterrole` (listers) or `roles`/`clusterroles` (registry).
        resource: &'static str,
        /// The role's name.
        name: String,
    },
    /// The roleRef's kind is neither Role nor ClusterRole.
    #[error("unsupported role reference kind: {}", gofmt::quote(.0))]
    UnsupportedKind(String),
}

/// Which upstream code path a lookup imitates, for the text of not-found errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LookupStyle {
    /// Informer listers: singular resource names.
    Lister,
    /// The RBAC registry: plural resource names.
    Registry,
}

/// The binding and subject that granted a rule (upstream's binding describers).
#[derive(Debug, Clone, Copy)]
pub enum Grant<'a> {
    /// Granted cluster-wide.
    ClusterRoleBinding {
        /// The binding.
        binding: &'a ClusterRoleBinding,
        /// The subject that matched the user.
        subject: &'a Subject,
    },
    /// Granted in the binding's namespace.
    RoleBinding {
        /// The binding.
        binding: &'a RoleBinding,
        /// The subject that matched the user.
        subject: &'a Subject,
    },
}

impl fmt::Display for Grant<'_> {
    /// `ClusterRoleBinding "x" of ClusterRole "y" to User "z"`,
    /// `RoleBinding "x/ns" of Role "y" to ServiceAccount "sa/ns"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grant::ClusterRoleBinding { binding, subject } => write!(
                f,
                "ClusterRoleBinding {} of {} {} to {}",
                gofmt::quote(binding.metadata.name.as_deref().unwrap_or_default()),
                binding.role_ref.kind,
                gofmt::quote(&binding.role_ref.name),
                describe_subject(subject, "")
            ),
            Grant::RoleBinding { binding, subject } => {
                let namespace = binding.metadata.namespace.as_deref().unwrap_or_default();
                let name = binding.metadata.name.as_deref().unwrap_or_default();
                write!(
                    f,
                    "RoleBinding {} of {} {} to {}",
                    gofmt::quote(&format!("{name}/{namespace}")),
                    binding.role_ref.kind,
                    gofmt::quote(&binding.role_ref.name),
                    describe_subject(subject, namespace)
                )
            }
        }
    }
}

fn describe_subject(subject: &Subject, binding_namespace: &str) -> String {
    if subject.kind == SERVICE_ACCOUNT_KIND {
        let namespace = match subject.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => ns,
            _ => binding_namespace,
        };
        return format!(
            "{} {}",
            subject.kind,
            gofmt::quote(&format!("{}/{namespace}", subject.name))
        );
    }
    format!("{} {}", subject.kind, gofmt::quote(&subject.name))
}

/// The RBAC authorizer (upstream's `RBACAuthorizer`).
#[derive(Debug, Clone)]
pub struct RbacAuthorizer<S: RuleSource> {
    source: S,
}

impl<S: RuleSource> RbacAuthorizer<S> {
    /// An authorizer reading `source`.
    pub fn new(source: S) -> Self {
        RbacAuthorizer { source }
    }

    /// The source it reads.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Allows when a rule bound to the user allows the request, saying which binding did it
    /// (`RBAC: allowed by ClusterRoleBinding "x" of ClusterRole "y" to User "z"`). Otherwise
    /// no opinion, with upstream's reason: "" or the roles that could not be read
    /// (`RBAC: clusterrole.rbac.authorization.k8s.io "y" not found`), which the apiserver
    /// appends to the Forbidden message.
    pub fn authorize(&self, a: &Attributes) -> Decision {
        let mut allowed_by = None;
        let mut errors = Vec::new();
        visit_rules_for(
            &self.source,
            LookupStyle::Lister,
            &a.user,
            &a.namespace,
            &mut |grant, rule| {
                if rule_allows(rule, a) {
                    allowed_by = Some(format!("RBAC: allowed by {grant}"));
                    return false;
                }
                true
            },
            &mut |err| errors.push(err.to_string()),
        );
        match allowed_by {
            Some(reason) => Decision::Allow(reason),
            None if errors.is_empty() => Decision::NoOpinion(String::new()),
            None => Decision::NoOpinion(format!("RBAC: {}", gofmt::aggregate(&errors))),
        }
    }

    /// The rules the user holds in `namespace` (cluster-wide ones first, then the
    /// namespace's; "" for cluster-wide only), and the errors met on the way (missing roles),
    /// as SelfSubjectRulesReview reports them (upstream's `RulesFor`).
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> (Vec<PolicyRule>, Vec<String>) {
        let (rules, errors) = rules_for(&self.source, LookupStyle::Lister, user, namespace);
        (rules, errors.iter().map(ToString::to_string).collect())
    }

    /// The rules of the role a binding refers to (`GetRoleReferenceRules`); a RoleBinding's
    /// Role is looked up in `binding_namespace`.
    pub fn role_reference_rules(
        &self,
        role_ref: &RoleRef,
        binding_namespace: &str,
    ) -> Result<Vec<PolicyRule>, RuleResolutionError> {
        role_reference_rules(
            &self.source,
            LookupStyle::Lister,
            role_ref,
            binding_namespace,
        )
    }
}

pub(crate) fn role_reference_rules<S: RuleSource + ?Sized>(
    source: &S,
    style: LookupStyle,
    role_ref: &RoleRef,
    binding_namespace: &str,
) -> Result<Vec<PolicyRule>, RuleResolutionError> {
    let resource = |singular: &'static str, plural: &'static str| match style {
        LookupStyle::Lister => singular,
        LookupStyle::Registry => plural,
    };
    match role_ref.kind.as_str() {
        "Role" => source
            .role(binding_namespace, &role_ref.name)
            .map(|role| role.rules.unwrap_or_default())
            .ok_or_else(|| RuleResolutionError::NotFound {
                resource: resource("role", "roles"),
                name: role_ref.name.clone(),
            }),
        "ClusterRole" => source
            .cluster_role(&role_ref.name)
            .map(|role| role.rules.unwrap_or_default())
            .ok_or_else(|| RuleResolutionError::NotFound {
                resource: resource("clusterrole", "clusterroles"),
                name: role_ref.name.clone(),
            }),
        other => Err(RuleResolutionError::UnsupportedKind(other.to_string())),
    }
}

pub(crate) fn rules_for<S: RuleSource + ?Sized>(
    source: &S,
    style: LookupStyle,
    user: &UserInfo,
    namespace: &str,
) -> (Vec<PolicyRule>, Vec<RuleResolutionError>) {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    visit_rules_for(
        source,
        style,
        user,
        namespace,
        &mut |_, rule| {
            rules.push(rule.clone());
            true
        },
        &mut |err| errors.push(err),
    );
    (rules, errors)
}

/// Upstream's `VisitRulesFor`: every rule of every ClusterRoleBinding that applies to the
/// user, then (when `namespace` is set) of every RoleBinding there. `on_rule` returns false
/// to stop.
pub(crate) fn visit_rules_for<S: RuleSource + ?Sized>(
    source: &S,
    style: LookupStyle,
    user: &UserInfo,
    namespace: &str,
    on_rule: &mut dyn FnMut(&Grant<'_>, &PolicyRule) -> bool,
    on_error: &mut dyn FnMut(RuleResolutionError),
) {
    for binding in source.cluster_role_bindings().iter() {
        let subjects = binding.subjects.as_deref().unwrap_or_default();
        let Some(subject) = subjects.iter().find(|s| applies_to(s, user, "")) else {
            continue;
        };
        match role_reference_rules(source, style, &binding.role_ref, "") {
            Ok(rules) => {
                let grant = Grant::ClusterRoleBinding { binding, subject };
                for rule in &rules {
                    if !on_rule(&grant, rule) {
                        return;
                    }
                }
            }
            Err(err) => on_error(err),
        }
    }
    if namespace.is_empty() {
        return;
    }
    for binding in source.role_bindings(namespace).iter() {
        let subjects = binding.subjects.as_deref().unwrap_or_default();
        let Some(subject) = subjects.iter().find(|s| applies_to(s, user, namespace)) else {
            continue;
        };
        match role_reference_rules(source, style, &binding.role_ref, namespace) {
            Ok(rules) => {
                let grant = Grant::RoleBinding { binding, subject };
                for rule in &rules {
                    if !on_rule(&grant, rule) {
                        return;
                    }
                }
            }
            Err(err) => on_error(err),
        }
    }
}

/// Whether a binding subject names the user (upstream's `appliesToUser`): a User by name, a
/// Group by membership, a ServiceAccount by its user name, its namespace defaulting to the
/// binding's (`binding_namespace`, "" for ClusterRoleBindings, where an SA subject without a
/// namespace matches nobody).
pub fn applies_to(subject: &Subject, user: &UserInfo, binding_namespace: &str) -> bool {
    match subject.kind.as_str() {
        USER_KIND => user.name == subject.name,
        GROUP_KIND => user.groups.contains(&subject.name),
        SERVICE_ACCOUNT_KIND => {
            let namespace = match subject.namespace.as_deref() {
                Some(ns) if !ns.is_empty() => ns,
                _ => binding_namespace,
            };
            !namespace.is_empty() && service_account_matches(namespace, &subject.name, &user.name)
        }
        _ => false,
    }
}

/// `serviceaccount.MatchesUsername`: `system:serviceaccount:<namespace>:<name>`.
fn service_account_matches(namespace: &str, name: &str, username: &str) -> bool {
    username
        .strip_prefix(names::SA_PREFIX)
        .and_then(|rest| rest.strip_prefix(namespace))
        .and_then(|rest| rest.strip_prefix(':'))
        .is_some_and(|rest| rest == name)
}

/// Upstream's `RuleAllows`: a resource request matches verb, API group, `resource` or
/// `resource/subresource` (with `*` and `*/subresource`) and resource name (any when the
/// rule lists none; a request without a name, such as create, list or deletecollection, is
/// never matched by a rule that lists names); a non-resource request matches verb and path
/// (exact, `*`, or a prefix ending in `*`).
pub fn rule_allows(rule: &PolicyRule, a: &Attributes) -> bool {
    if a.resource_request {
        let combined = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        return verb_matches(rule, &a.verb)
            && api_group_matches(rule, &a.api_group)
            && resource_matches(rule, &combined, &a.subresource)
            && resource_name_matches(rule, &a.name);
    }
    verb_matches(rule, &a.verb) && non_resource_url_matches(rule, &a.path)
}

/// `VerbMatches`.
pub fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == VERB_ALL || v == verb)
}

/// `APIGroupMatches`.
pub fn api_group_matches(rule: &PolicyRule, group: &str) -> bool {
    list(&rule.api_groups)
        .iter()
        .any(|g| g == API_GROUP_ALL || g == group)
}

/// `ResourceMatches`: `combined` is `resource` or `resource/subresource`.
pub fn resource_matches(rule: &PolicyRule, combined: &str, subresource: &str) -> bool {
    list(&rule.resources).iter().any(|r| {
        r == RESOURCE_ALL
            || r == combined
            || (!subresource.is_empty()
                && r.len() == subresource.len() + 2
                && r.starts_with("*/")
                && r.ends_with(subresource))
    })
}

/// `ResourceNameMatches`.
pub fn resource_name_matches(rule: &PolicyRule, name: &str) -> bool {
    let names = list(&rule.resource_names);
    names.is_empty() || names.iter().any(|n| n == name)
}

/// `NonResourceURLMatches`.
pub fn non_resource_url_matches(rule: &PolicyRule, path: &str) -> bool {
    list(&rule.non_resource_urls).iter().any(|url| {
        url == NON_RESOURCE_ALL
            || url == path
            || (url.ends_with('*') && path.starts_with(url.trim_end_matches('*')))
    })
}

pub(crate) fn list(field: &Option<Vec<String>>) -> &[String] {
    field.as_deref().unwrap_or_default()
}

/// Upstream's `forbiddenMessage`: `User "alice" cannot list resource "pods" in API group ""
/// in the namespace "default"`, `... at the cluster scope`, `User "x" cannot get path "/foo"`.
pub fn forbidden_message(a: &Attributes) -> String {
    let user = gofmt::quote(&a.user.name);
    if !a.resource_request {
        return format!(
            "User {user} cannot {} path {}",
            a.verb,
            gofmt::quote(&a.path)
        );
    }
    let resource = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let head = format!(
        "User {user} cannot {} resource {} in API group {}",
        a.verb,
        gofmt::quote(&resource),
        gofmt::quote(&a.api_group)
    );
    if a.namespace.is_empty() {
        format!("{head} at the cluster scope")
    } else {
        format!("{head} in the namespace {}", gofmt::quote(&a.namespace))
    }
}

/// The `message` of the 403 Status upstream's `responsewriters.Forbidden` sends:
/// `NewForbidden(group/resource, name, forbiddenMessage[: reason])`, e.g.
/// `pods "web" is forbidden: User "alice" cannot get resource "pods" in API group "" in the
/// namespace "default"` or `forbidden: User "x" cannot get path "/foo"`.
pub fn forbidden_status_message(a: &Attributes, reason: &str) -> String {
    let mut err = forbidden_message(a);
    if !reason.is_empty() {
        err = format!("{err}: {reason}");
    }
    new_forbidden_message(&a.api_group, &a.resource, &a.name, &err)
}

/// `apierrors.NewForbidden(qualifiedResource, name, err).Error()`.
pub fn new_forbidden_message(group: &str, resource: &str, name: &str, err: &str) -> String {
    let qualified = match (group.is_empty(), resource.is_empty()) {
        (_, true) if group.is_empty() => return format!("forbidden: {err}"),
        (true, _) => resource.to_string(),
        (false, _) => format!("{resource}.{group}"),
    };
    if name.is_empty() {
        format!("{qualified} is forbidden: {err}")
    } else {
        format!("{qualified} {} is forbidden: {err}", gofmt::quote(name))
    }
}

#[cfg(test)]
#[path = "rbac/authorizer_tests.rs"]
mod authorizer_tests;
#[cfg(test)]
#[path = "rbac/matching_tests.rs"]
mod matching_tests;
#[cfg(test)]
#[path = "rbac/test_support.rs"]
pub(crate) mod test_support;
