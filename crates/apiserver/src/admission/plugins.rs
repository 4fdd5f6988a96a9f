//! Which admission plugins run: upstream's `--enable-admission-plugins` and
//! `--disable-admission-plugins` over its default set (k8s.io/kubernetes/pkg/kubeapiserver/
//! options/plugins.go). Names upstream registers but this server does not implement are
//! accepted and have no effect; unknown names are refused as upstream refuses them.

use std::collections::BTreeSet;
use std::fmt;

/// An admission plugin this server implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Plugin {
    /// No new objects in missing or terminating namespaces.
    NamespaceLifecycle,
    /// Pods get a ServiceAccount and its token volume.
    ServiceAccount,
    /// Kubelets touch only their own Node and the pods bound to them.
    NodeRestriction,
    /// Pod Security Standards from namespace labels.
    PodSecurity,
    /// Pod priority from PriorityClasses; one default class.
    Priority,
    /// Every pod tolerates not-ready and unreachable for a while.
    DefaultTolerationSeconds,
}

impl Plugin {
    /// Every implemented plugin, in upstream's order (`AllOrderedPlugins`).
    pub const ALL: [Plugin; 6] = [
        Plugin::NamespaceLifecycle,
        Plugin::ServiceAccount,
        Plugin::NodeRestriction,
        Plugin::PodSecurity,
        Plugin::Priority,
        Plugin::DefaultTolerationSeconds,
    ];

    /// Upstream's name of the plugin.
    pub fn name(self) -> &'static str {
        match self {
            Plugin::NamespaceLifecycle => "NamespaceLifecycle",
            Plugin::ServiceAccount => "ServiceAccount",
            Plugin::NodeRestriction => "NodeRestriction",
            Plugin::PodSecurity => "PodSecurity",
            Plugin::Priority => "Priority",
            Plugin::DefaultTolerationSeconds => "DefaultTolerationSeconds",
        }
    }

    /// Whether upstream enables it when no flag says otherwise (NodeRestriction is off by
    /// default upstream; kubeadm enables it).
    pub fn on_by_default(self) -> bool {
        self != Plugin::NodeRestriction
    }

    fn from_name(name: &str) -> Option<Plugin> {
        Plugin::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl fmt::Display for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The other plugins upstream registers (1.33): accepted in the flags, not implemented here.
const UNIMPLEMENTED: &[&str] = &[
    "AlwaysAdmit",
    "AlwaysDeny",
    "AlwaysPullImages",
    "CertificateApproval",
    "CertificateSigning",
    "CertificateSubjectRestriction",
    "ClusterTrustBundleAttest",
    "DefaultIngressClass",
    "DefaultStorageClass",
    "DenyServiceExternalIPs",
    "EventRateLimit",
    "ExtendedResourceToleration",
    "ImagePolicyWebhook",
    "LimitPodHardAntiAffinityTopology",
    "LimitRanger",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionWebhook",
    "NamespaceAutoProvision",
    "NamespaceExists",
    "OwnerReferencesPermissionEnforcement",
    "PersistentVolumeClaimResize",
    "PodNodeSelector",
    "PodTolerationRestriction",
    "ResourceQuota",
    "RuntimeClass",
    "StorageObjectInUseProtection",
    "TaintNodesByCondition",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionWebhook",
];

/// Why the admission flags are refused (upstream's `AdmissionOptions.Validate` texts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// A name neither upstream nor this server knows.
    #[error("{flag} plugin {name:?} is unknown")]
    Unknown {
        /// `enable-admission-plugins` or `disable-admission-plugins`.
        flag: &'static str,
        /// The name given.
        name: String,
    },
    /// Names in both flags.
    #[error("[{}] in enable-admission-plugins and disable-admission-plugins overlapped", .0.join(" "))]
    Overlap(Vec<String>),
}

/// The enabled plugins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plugins {
    enabled: BTreeSet<Plugin>,
}

impl Default for Plugins {
    /// Upstream's default set.
    fn default() -> Plugins {
        Plugins {
            enabled: Plugin::ALL
                .into_iter()
                .filter(|p| p.on_by_default())
                .collect(),
        }
    }
}

impl Plugins {
    /// Upstream's default set changed by the two flags' lists.
    pub fn from_flags(enable: &[String], disable: &[String]) -> Result<Plugins, PluginError> {
        let check = |flag: &'static str, names: &[String]| -> Result<Vec<Plugin>, PluginError> {
            let mut out = Vec::new();
            for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
                match Plugin::from_name(name) {
                    Some(p) => out.push(p),
                    None if UNIMPLEMENTED.contains(&name) => {
                        tracing::info!(plugin = name, "{flag}: plugin not implemented, ignored");
                    }
                    None => {
                        return Err(PluginError::Unknown {
                            flag,
                            name: name.to_string(),
                        })
                    }
                }
            }
            Ok(out)
        };
        let on = check("enable-admission-plugins", enable)?;
        let off = check("disable-admission-plugins", disable)?;
        let both: BTreeSet<String> = enable
            .iter()
            .filter(|e| disable.contains(e))
            .cloned()
            .collect();
        if !both.is_empty() {
            return Err(PluginError::Overlap(both.into_iter().collect()));
        }
        let mut plugins = Plugins::default();
        plugins.enabled.extend(on);
        for p in off {
            plugins.enabled.remove(&p);
        }
        Ok(plugins)
    }

    /// Every implemented plugin on.
    pub fn all() -> Plugins {
        Plugins {
            enabled: Plugin::ALL.into_iter().collect(),
        }
    }

    /// This set with `p` on.
    pub fn with(mut self, p: Plugin) -> Plugins {
        self.enabled.insert(p);
        self
    }

    /// This set with `p` off.
    pub fn without(mut self, p: Plugin) -> Plugins {
        self.enabled.remove(&p);
        self
    }

    /// Whether `p` runs.
    pub fn enabled(&self, p: Plugin) -> bool {
        self.enabled.contains(&p)
    }

    /// The enabled plugins in upstream's order.
    pub fn names(&self) -> Vec<&'static str> {
        Plugin::ALL
            .into_iter()
            .filter(|p| self.enabled(*p))
            .map(Plugin::name)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn default_is_upstreams_set_and_flags_change_it() {
        let d = Plugins::default();
        assert!(d.enabled(Plugin::ServiceAccount));
        assert!(d.enabled(Plugin::PodSecurity));
        assert!(!d.enabled(Plugin::NodeRestriction));
        let p = Plugins::from_flags(
            &s(&["NodeRestriction", "LimitRanger"]),
            &s(&["ServiceAccount"]),
        )
        .unwrap();
        assert_eq!(
            p.names(),
            [
                "NamespaceLifecycle",
                "NodeRestriction",
                "PodSecurity",
                "Priority",
                "DefaultTolerationSeconds"
            ]
        );
    }

    #[test]
    fn unknown_and_overlapping_names_are_refused() {
        let e = Plugins::from_flags(&s(&["Nope"]), &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "enable-admission-plugins plugin \"Nope\" is unknown"
        );
        let e = Plugins::from_flags(&s(&["PodSecurity"]), &s(&["PodSecurity"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "[PodSecurity] in enable-admission-plugins and disable-admission-plugins overlapped"
        );
    }
}
