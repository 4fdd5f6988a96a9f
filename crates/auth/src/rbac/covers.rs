//! Whether one set of rules covers another, for the escalation check and reconciliation.
//! Mirrors upstream's `pkg/registry/rbac/validation/policy_comparator.go` (`Covers`,
//! `BreakdownRule`, `ruleCovers`), `policy_compact.go` (`CompactRules`) and
//! `pkg/apis/rbac/v1/evaluation_helpers.go` (`CompactString`).

use k8s_openapi::api::rbac::v1::PolicyRule;

use super::{gofmt, list, API_GROUP_ALL, RESOURCE_ALL, VERB_ALL};

/// Whether `owner`'s rules cover every rule in `requested`, and the parts they do not cover,
/// each broken down to one API group, resource, verb and resource name (or one URL and verb)
/// as upstream's `Covers` reports them.
pub fn covers(owner: &[PolicyRule], requested: &[PolicyRule]) -> (bool, Vec<PolicyRule>) {
    let uncovered: Vec<PolicyRule> = requested
        .iter()
        .flat_map(breakdown_rule)
        .filter(|sub| !owner.iter().any(|o| rule_covers(o, sub)))
        .collect();
    (uncovered.is_empty(), uncovered)
}

/// `BreakdownRule`: an equivalent list of rules with at most one verb, resource and name
/// each, the non-resource URLs last.
pub fn breakdown_rule(rule: &PolicyRule) -> Vec<PolicyRule> {
    let one = |s: &str| Some(vec![s.to_string()]);
    let mut subrules = Vec::new();
    for group in list(&rule.api_groups) {
        for resource in list(&rule.resources) {
            for verb in &rule.verbs {
                let names = list(&rule.resource_names);
                if names.is_empty() {
                    subrules.push(PolicyRule {
                        api_groups: one(group),
                        resources: one(resource),
                        verbs: vec![verb.clone()],
                        ..PolicyRule::default()
                    });
                }
                for name in names {
                    subrules.push(PolicyRule {
                        api_groups: one(group),
                        resources: one(resource),
                        verbs: vec![verb.clone()],
                        resource_names: one(name),
                        ..PolicyRule::default()
                    });
                }
            }
        }
    }
    for url in list(&rule.non_resource_urls) {
        for verb in &rule.verbs {
            subrules.push(PolicyRule {
                non_resource_urls: one(url),
                verbs: vec![verb.clone()],
                ..PolicyRule::default()
            });
        }
    }
    subrules
}

fn has(set: &[String], item: &str) -> bool {
    set.iter().any(|s| s == item)
}

fn has_all(set: &[String], items: &[String]) -> bool {
    items.iter().all(|i| has(set, i))
}

/// `resourceCoversAll`: `*`, an exact match, or `*/subresource` for `resource/subresource`.
fn resource_covers_all(owned: &[String], requested: &[String]) -> bool {
    if has(owned, RESOURCE_ALL) || has_all(owned, requested) {
        return true;
    }
    requested.iter().all(|path| {
        has(owned, path)
            || path
                .split_once('/')
                .is_some_and(|(_, subresource)| has(owned, &format!("*/{subresource}")))
    })
}

/// `nonResourceURLCovers`: exact, or a prefix when the owner ends in `*`.
pub(crate) fn non_resource_url_covers(owner: &str, path: &str) -> bool {
    owner == path || (owner.ends_with('*') && path.starts_with(owner.trim_end_matches('*')))
}

/// `ruleCovers`: whether `owner` covers `sub` (one verb, resource and name at most).
fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let verbs = has(&owner.verbs, VERB_ALL) || has_all(&owner.verbs, &sub.verbs);
    let groups = has(list(&owner.api_groups), API_GROUP_ALL)
        || has_all(list(&owner.api_groups), list(&sub.api_groups));
    let resources = resource_covers_all(list(&owner.resources), list(&sub.resources));
    let urls = list(&sub.non_resource_urls).iter().all(|path| {
        list(&owner.non_resource_urls)
            .iter()
            .any(|o| non_resource_url_covers(o, path))
    });
    let owner_names = list(&owner.resource_names);
    let names = owner_names.is_empty()
        || (!list(&sub.resource_names).is_empty()
            && has_all(owner_names, list(&sub.resource_names)));
    verbs && groups && resources && urls && names
}

/// `CompactRules`: merges rules with one API group, one resource, at most one name and
/// nothing else that differ only by verb (the shape `Covers` reports), keeping others as
/// they are; the merged ones come last.
pub fn compact_rules(rules: &[PolicyRule]) -> Vec<PolicyRule> {
    let mut compacted = Vec::new();
    let mut simple: Vec<(SimpleResource, PolicyRule)> = Vec::new();
    for rule in rules {
        let Some(key) = simple_resource(rule) else {
            compacted.push(rule.clone());
            continue;
        };
        match simple.iter_mut().find(|(k, _)| *k == key) {
            Some((_, existing)) => {
                for verb in &rule.verbs {
                    if !existing.verbs.contains(verb) {
                        existing.verbs.push(verb.clone());
                    }
                }
            }
            None => simple.push((key, rule.clone())),
        }
    }
    compacted.extend(simple.into_iter().map(|(_, rule)| rule));
    compacted
}

/// API group, resource and resource name of a rule `CompactRules` may merge.
type SimpleResource = (String, String, Option<String>);

fn simple_resource(rule: &PolicyRule) -> Option<SimpleResource> {
    let groups = list(&rule.api_groups);
    let resources = list(&rule.resources);
    let names = list(&rule.resource_names);
    if names.len() > 1
        || !list(&rule.non_resource_urls).is_empty()
        || groups.len() != 1
        || resources.len() != 1
    {
        return None;
    }
    Some((
        groups[0].clone(),
        resources[0].clone(),
        names.first().cloned(),
    ))
}

/// `CompactString`: `{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`, only the fields set.
pub fn compact_string(rule: &PolicyRule) -> String {
    let mut parts = Vec::new();
    let mut field = |label: &str, values: &[String]| {
        if !values.is_empty() {
            parts.push(format!("{label}:{}", gofmt::quote_list(values)));
        }
    };
    field("APIGroups", list(&rule.api_groups));
    field("Resources", list(&rule.resources));
    field("NonResourceURLs", list(&rule.non_resource_urls));
    field("ResourceNames", list(&rule.resource_names));
    field("Verbs", &rule.verbs);
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
#[path = "covers_tests.rs"]
mod tests;
