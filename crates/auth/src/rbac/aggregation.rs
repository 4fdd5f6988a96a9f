//! What the clusterrole-aggregation controller writes into a ClusterRole with an
//! `aggregationRule`, and label-selector matching for it. Mirrors upstream's
//! `pkg/controller/clusterroleaggregation/clusterroleaggregation_controller.go`
//! (`syncClusterRole`, `ruleExists`) and apimachinery's `LabelSelectorAsSelector`.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::gofmt;

/// A label selector the controller cannot turn into a selector (it then leaves the role alone).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// An operator other than In, NotIn, Exists, DoesNotExist.
    #[error("{} is not a valid label selector operator", gofmt::quote(.0))]
    InvalidOperator(String),
    /// In/NotIn without values.
    #[error("for 'in', 'notin' operators, values set can't be empty")]
    MissingValues,
    /// Exists/DoesNotExist with values.
    #[error("values set must be empty for exists and does not exist")]
    UnexpectedValues,
}

/// The rules the aggregation controller gives `role`: for each of its selectors in order, the
/// ClusterRoles of `all` it selects (sorted by name, `role` itself skipped), their rules in
/// order, each rule once. None when `role` has no aggregationRule, or when a selector is
/// invalid (upstream's controller then fails the sync and leaves the role as it is).
pub fn aggregated_rules(role: &ClusterRole, all: &[ClusterRole]) -> Option<Vec<PolicyRule>> {
    try_aggregated_rules(role, all).ok().flatten()
}

/// [`aggregated_rules`], telling an invalid selector apart from no aggregationRule.
pub fn try_aggregated_rules(
    role: &ClusterRole,
    all: &[ClusterRole],
) -> Result<Option<Vec<PolicyRule>>, SelectorError> {
    let Some(rule) = &role.aggregation_rule else {
        return Ok(None);
    };
    let own_name = role.metadata.name.as_deref().unwrap_or_default();
    let mut sorted: Vec<&ClusterRole> = all.iter().collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let empty = BTreeMap::new();
    let mut rules: Vec<PolicyRule> = Vec::new();
    for selector in rule.cluster_role_selectors.as_deref().unwrap_or_default() {
        for candidate in &sorted {
            if candidate.metadata.name.as_deref().unwrap_or_default() == own_name {
                continue;
            }
            let labels = candidate.metadata.labels.as_ref().unwrap_or(&empty);
            if !label_selector_matches(selector, labels)? {
                continue;
            }
            for candidate_rule in candidate.rules.as_deref().unwrap_or_default() {
                if !rules.iter().any(|r| semantically_equal(r, candidate_rule)) {
                    rules.push(candidate_rule.clone());
                }
            }
        }
    }
    Ok(Some(rules))
}

/// `equality.Semantic.DeepEqual` for rules: an absent list equals an empty one.
pub(crate) fn semantically_equal(a: &PolicyRule, b: &PolicyRule) -> bool {
    fn same(x: &Option<Vec<String>>, y: &Option<Vec<String>>) -> bool {
        x.as_deref().unwrap_or_default() == y.as_deref().unwrap_or_default()
    }
    a.verbs == b.verbs
        && same(&a.api_groups, &b.api_groups)
        && same(&a.resources, &b.resources)
        && same(&a.resource_names, &b.resource_names)
        && same(&a.non_resource_urls, &b.non_resource_urls)
}

/// Whether `labels` satisfy `selector` (`metav1.LabelSelectorAsSelector(...).Matches`):
/// every matchLabels pair and every matchExpression (In, NotIn, Exists, DoesNotExist); an
/// empty selector selects everything.
pub fn label_selector_matches(
    selector: &LabelSelector,
    labels: &BTreeMap<String, String>,
) -> Result<bool, SelectorError> {
    let mut matches = true;
    for (key, value) in selector.match_labels.iter().flatten() {
        matches &= labels.get(key) == Some(value);
    }
    for requirement in selector.match_expressions.iter().flatten() {
        let values = requirement.values.as_deref().unwrap_or_default();
        let actual = labels.get(&requirement.key);
        let ok = match requirement.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => return Err(SelectorError::MissingValues),
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err(SelectorError::UnexpectedValues)
            }
            "In" => actual.is_some_and(|v| values.contains(v)),
            "NotIn" => actual.is_none_or(|v| !values.contains(v)),
            "Exists" => actual.is_some(),
            "DoesNotExist" => actual.is_none(),
            other => return Err(SelectorError::InvalidOperator(other.to_string())),
        };
        matches &= ok;
    }
    Ok(matches)
}

#[cfg(test)]
#[path = "aggregation_tests.rs"]
mod tests;
