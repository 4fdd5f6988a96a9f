//! Reconciliation of the bootstrap policy at apiserver start: what to create or update so an
//! existing role or binding holds at least the bootstrap one's rules, subjects, labels and
//! annotations, never removing what an administrator added, and leaving alone objects
//! annotated `rbac.authorization.kubernetes.io/autoupdate: "false"`. Mirrors upstream's
//! `pkg/registry/rbac/reconciliation/{reconcile_role.go,reconcile_rolebindings.go}`
//! (`computeReconciledRole`, `computeReconciledRoleBinding`, `merge`, `aggregationRuleCovers`,
//! `diffSubjectLists`) as the apiserver's post-start hook runs them (union mode:
//! RemoveExtraPermissions and RemoveExtraSubjects false).

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{
    AggregationRule, ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef,
    Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::AUTOUPDATE_ANNOTATION;
use crate::rbac::covers;

/// What to do with a binding.
#[derive(Debug, Clone, PartialEq)]
pub enum Reconciliation<T> {
    /// It does not exist: create this.
    Create(T),
    /// It exists: store this (the existing object, its metadata kept, with what was missing).
    Update(T),
    /// It exists with another roleRef, which cannot change: delete it and create this.
    Recreate(T),
}

impl<T> Reconciliation<T> {
    /// The object to write.
    pub fn object(&self) -> &T {
        match self {
            Reconciliation::Create(o) | Reconciliation::Update(o) | Reconciliation::Recreate(o) => {
                o
            }
        }
    }
}

fn protected(meta: &ObjectMeta) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(AUTOUPDATE_ANNOTATION))
        .is_some_and(|v| v == "false")
}

/// `merge(expected, existing)`: the union of both maps, the existing values winning.
fn merge(
    expected: &Option<BTreeMap<String, String>>,
    existing: &Option<BTreeMap<String, String>>,
) -> Option<BTreeMap<String, String>> {
    if expected.is_none() && existing.is_none() {
        return None;
    }
    let mut merged = expected.clone().unwrap_or_default();
    merged.extend(existing.clone().unwrap_or_default());
    Some(merged)
}

fn same_map(a: &Option<BTreeMap<String, String>>, b: &Option<BTreeMap<String, String>>) -> bool {
    a.as_ref().filter(|m| !m.is_empty()) == b.as_ref().filter(|m| !m.is_empty())
}

/// Merges the desired labels and annotations into `meta`; true when that changed it.
fn merge_metadata(meta: &mut ObjectMeta, desired: &ObjectMeta) -> bool {
    let annotations = merge(&desired.annotations, &meta.annotations);
    let labels = merge(&desired.labels, &meta.labels);
    let changed = !same_map(&annotations, &meta.annotations) || !same_map(&labels, &meta.labels);
    meta.annotations = annotations;
    meta.labels = labels;
    changed
}

/// Adds the desired rules the existing ones do not cover; true when some were missing.
fn add_missing_rules(rules: &mut Option<Vec<PolicyRule>>, desired: &[PolicyRule]) -> bool {
    let (_, missing) = covers(rules.as_deref().unwrap_or_default(), desired);
    if missing.is_empty() {
        return false;
    }
    rules.get_or_insert_with(Vec::new).extend(missing);
    true
}

/// The ClusterRole to store so that `existing` holds `desired`: `desired` when absent; the
/// existing role plus desired's missing rules (as `Covers` breaks them down), labels,
/// annotations and aggregation selectors when it exists and is not protected by
/// `autoupdate: "false"`. None when nothing needs writing. An aggregationRule the bootstrap
/// role does not have is removed, as upstream does.
pub fn reconcile_cluster_role(
    existing: Option<&ClusterRole>,
    desired: &ClusterRole,
) -> Option<ClusterRole> {
    let Some(existing) = existing else {
        return Some(desired.clone());
    };
    if protected(&existing.metadata) {
        return None;
    }
    let mut role = existing.clone();
    let mut changed = merge_metadata(&mut role.metadata, &desired.metadata);
    changed |= add_missing_rules(
        &mut role.rules,
        desired.rules.as_deref().unwrap_or_default(),
    );
    match (&desired.aggregation_rule, &existing.aggregation_rule) {
        (None, Some(_)) => {
            role.aggregation_rule = None;
            changed = true;
        }
        (Some(wanted), have) => {
            let missing = missing_selectors(have.as_ref(), wanted);
            if !missing.is_empty() {
                role.aggregation_rule
                    .get_or_insert_with(AggregationRule::default)
                    .cluster_role_selectors
                    .get_or_insert_with(Vec::new)
                    .extend(missing);
                changed = true;
            }
        }
        (None, None) => {}
    }
    changed.then_some(role)
}

/// `aggregationRuleCovers(existing, desired)`: desired's selectors absent from existing's.
fn missing_selectors(
    existing: Option<&AggregationRule>,
    desired: &AggregationRule,
) -> Vec<LabelSelector> {
    let have = existing
        .and_then(|rule| rule.cluster_role_selectors.as_deref())
        .unwrap_or_default();
    desired
        .cluster_role_selectors
        .iter()
        .flatten()
        .filter(|wanted| !have.iter().any(|h| same_selector(h, wanted)))
        .cloned()
        .collect()
}

/// `equality.Semantic.DeepEqual` for selectors: absent lists and maps equal empty ones.
fn same_selector(a: &LabelSelector, b: &LabelSelector) -> bool {
    a.match_labels.clone().unwrap_or_default() == b.match_labels.clone().unwrap_or_default()
        && a.match_expressions.clone().unwrap_or_default().len()
            == b.match_expressions.clone().unwrap_or_default().len()
        && a.match_expressions
            .iter()
            .flatten()
            .zip(b.match_expressions.iter().flatten())
            .all(|(x, y)| {
                x.key == y.key
                    && x.operator == y.operator
                    && x.values.as_deref().unwrap_or_default()
                        == y.values.as_deref().unwrap_or_default()
            })
}

/// [`reconcile_cluster_role`] for a namespaced Role.
pub fn reconcile_role(existing: Option<&Role>, desired: &Role) -> Option<Role> {
    let Some(existing) = existing else {
        return Some(desired.clone());
    };
    if protected(&existing.metadata) {
        return None;
    }
    let mut role = existing.clone();
    let mut changed = merge_metadata(&mut role.metadata, &desired.metadata);
    changed |= add_missing_rules(
        &mut role.rules,
        desired.rules.as_deref().unwrap_or_default(),
    );
    changed.then_some(role)
}

/// The ClusterRoleBinding to write so that `existing` binds what `desired` does: Create when
/// absent, Recreate when its roleRef differs, else Update with desired's missing subjects,
/// labels and annotations added. None when protected by `autoupdate: "false"` or when
/// nothing changes.
pub fn reconcile_cluster_role_binding(
    existing: Option<&ClusterRoleBinding>,
    desired: &ClusterRoleBinding,
) -> Option<Reconciliation<ClusterRoleBinding>> {
    let Some(existing) = existing else {
        return Some(Reconciliation::Create(desired.clone()));
    };
    let mut binding = existing.clone();
    let outcome = reconcile_binding_parts(
        (
            &mut binding.metadata,
            &mut binding.subjects,
            &existing.role_ref,
        ),
        (
            &desired.metadata,
            desired.subjects.as_deref().unwrap_or_default(),
            &desired.role_ref,
        ),
    )?;
    Some(match outcome {
        BindingOutcome::Recreate => Reconciliation::Recreate(desired.clone()),
        BindingOutcome::Update => Reconciliation::Update(binding),
    })
}

/// [`reconcile_cluster_role_binding`] for a namespaced RoleBinding.
pub fn reconcile_role_binding(
    existing: Option<&RoleBinding>,
    desired: &RoleBinding,
) -> Option<Reconciliation<RoleBinding>> {
    let Some(existing) = existing else {
        return Some(Reconciliation::Create(desired.clone()));
    };
    let mut binding = existing.clone();
    let outcome = reconcile_binding_parts(
        (
            &mut binding.metadata,
            &mut binding.subjects,
            &existing.role_ref,
        ),
        (
            &desired.metadata,
            desired.subjects.as_deref().unwrap_or_default(),
            &desired.role_ref,
        ),
    )?;
    Some(match outcome {
        BindingOutcome::Recreate => Reconciliation::Recreate(desired.clone()),
        BindingOutcome::Update => Reconciliation::Update(binding),
    })
}

enum BindingOutcome {
    Recreate,
    Update,
}

type BindingParts<'a> = (
    &'a mut ObjectMeta,
    &'a mut Option<Vec<Subject>>,
    &'a RoleRef,
);

/// `computeReconciledRoleBinding` in union mode, on the parts both binding kinds share.
fn reconcile_binding_parts(
    (meta, subjects, role_ref): BindingParts<'_>,
    (desired_meta, desired_subjects, desired_role_ref): (&ObjectMeta, &[Subject], &RoleRef),
) -> Option<BindingOutcome> {
    if protected(meta) {
        return None;
    }
    if role_ref != desired_role_ref {
        return Some(BindingOutcome::Recreate);
    }
    let mut changed = merge_metadata(meta, desired_meta);
    let mut missing: Vec<Subject> = Vec::new();
    for wanted in desired_subjects {
        if !subjects.iter().flatten().any(|s| same_subject(s, wanted))
            && !missing.iter().any(|m| same_subject(m, wanted))
        {
            missing.push(wanted.clone());
        }
    }
    if !missing.is_empty() {
        subjects.get_or_insert_with(Vec::new).extend(missing);
        changed = true;
    }
    changed.then_some(BindingOutcome::Update)
}

/// Subjects compare as upstream's structs do, an absent apiGroup or namespace being "".
fn same_subject(a: &Subject, b: &Subject) -> bool {
    let text = |s: &Option<String>| s.clone().unwrap_or_default();
    a.kind == b.kind
        && a.name == b.name
        && text(&a.api_group) == text(&b.api_group)
        && text(&a.namespace) == text(&b.namespace)
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
