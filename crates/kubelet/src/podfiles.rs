//! The identity files a pod's containers see: /etc/hosts (kubelet-managed, with the pod's IP and
//! FQDN and hostAliases), and the DNS settings behind /etc/resolv.conf by dnsPolicy.

use k8s_openapi::api::core::v1::Pod;
use runtime::spec::DnsConfig;

/// The pod's hostname and, with a subdomain, its FQDN (`host.sub.ns.svc.domain`).
pub fn hostname_and_fqdn(pod: &Pod, domain: &str) -> (String, Option<String>) {
    let spec = pod.spec.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let host = spec
        .hostname
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or(name);
    let host: String = host.chars().take(63).collect();
    let fqdn = spec
        .subdomain
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|sub| {
            format!(
                "{host}.{sub}.{}.svc.{domain}",
                pod.metadata.namespace.as_deref().unwrap_or("default")
            )
        });
    (host, fqdn)
}

/// The kubelet-managed /etc/hosts of a pod with IP `ip`.
pub fn hosts_file(pod: &Pod, ip: &str, domain: &str) -> String {
    let mut s = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    let (host, fqdn) = hostname_and_fqdn(pod, domain);
    if !ip.is_empty() {
        match fqdn {
            Some(f) => s.push_str(&format!("{ip}\t{f}\t{host}\n")),
            None => s.push_str(&format!("{ip}\t{host}\n")),
        }
    }
    let aliases = pod
        .spec
        .as_ref()
        .and_then(|s| s.host_aliases.clone())
        .unwrap_or_default();
    if !aliases.is_empty() {
        s.push_str("\n# Entries added by HostAliases.\n");
        for a in aliases {
            let names = a.hostnames.unwrap_or_default().join("\t");
            s.push_str(&format!("{}\t{names}\n", a.ip));
        }
    }
    s
}

/// Reads nameservers, search domains and options of a resolv.conf text.
pub fn parse_resolv(text: &str) -> DnsConfig {
    let mut d = DnsConfig::default();
    for line in text.lines() {
        let mut w = line.split_whitespace();
        match w.next() {
            Some("nameserver") => d.servers.extend(w.next().map(str::to_string)),
            Some("search") | Some("domain") => d.searches = w.map(str::to_string).collect(),
            Some("options") => d.options.extend(w.map(str::to_string)),
            _ => {}
        }
    }
    d
}

/// The pod's DNS settings by dnsPolicy, as upstream's dns.Configurer: ClusterFirst (the
/// default; Default for hostNetwork pods unless ClusterFirstWithHostNet), Default (the node's
/// resolv.conf), None (only dnsConfig); dnsConfig merged in every case.
pub fn dns_config(pod: &Pod, cluster_dns: &[String], domain: &str, host_resolv: &str) -> DnsConfig {
    let spec = pod.spec.clone().unwrap_or_default();
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let host = parse_resolv(host_resolv);
    let mut policy = spec
        .dns_policy
        .clone()
        .unwrap_or_else(|| "ClusterFirst".into());
    if policy == "ClusterFirst" && spec.host_network == Some(true) {
        policy = "Default".into();
    }
    if policy == "ClusterFirstWithHostNet" {
        policy = "ClusterFirst".into();
    }
    if policy == "ClusterFirst" && cluster_dns.is_empty() {
        policy = "Default".into();
    }
    let mut d = match policy.as_str() {
        "ClusterFirst" => {
            let mut searches = vec![
                format!("{ns}.svc.{domain}"),
                format!("svc.{domain}"),
                domain.to_string(),
            ];
            searches.extend(host.searches.iter().cloned());
            DnsConfig {
                servers: cluster_dns.to_vec(),
                searches,
                options: vec!["ndots:5".into()],
            }
        }
        "None" => DnsConfig::default(),
        _ => host,
    };
    if let Some(cfg) = &spec.dns_config {
        for s in cfg.nameservers.iter().flatten() {
            if !d.servers.contains(s) {
                d.servers.push(s.clone());
            }
        }
        for s in cfg.searches.iter().flatten() {
            if !d.searches.contains(s) {
                d.searches.push(s.clone());
            }
        }
        for o in cfg.options.iter().flatten() {
            let text = match &o.value {
                Some(v) => format!("{}:{v}", o.name.clone().unwrap_or_default()),
                None => o.name.clone().unwrap_or_default(),
            };
            let key = text.split(':').next().unwrap_or("").to_string();
            d.options
                .retain(|x| x.split(':').next() != Some(key.as_str()));
            d.options.push(text);
        }
    }
    d.servers.truncate(3);
    d.searches.truncate(32);
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodDNSConfig, PodDNSConfigOption, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(spec: PodSpec) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-0".into()),
                namespace: Some("shop".into()),
                ..Default::default()
            },
            spec: Some(spec),
            status: None,
        }
    }

    #[test]
    fn hosts_has_fqdn_with_subdomain() {
        let p = pod(PodSpec {
            subdomain: Some("web".into()),
            ..Default::default()
        });
        let h = hosts_file(&p, "10.244.1.7", "cluster.local");
        assert!(
            h.contains("10.244.1.7\tweb-0.web.shop.svc.cluster.local\tweb-0\n"),
            "{h}"
        );
        let plain = hosts_file(&pod(PodSpec::default()), "10.244.1.8", "cluster.local");
        assert!(plain.ends_with("10.244.1.8\tweb-0\n"));
    }

    #[test]
    fn cluster_first_search_path_and_options() {
        let p = pod(PodSpec::default());
        let d = dns_config(
            &p,
            &["10.96.0.10".into()],
            "cluster.local",
            "nameserver 192.168.77.1\nsearch lab\n",
        );
        assert_eq!(d.servers, vec!["10.96.0.10"]);
        assert_eq!(
            d.searches,
            vec![
                "shop.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "lab"
            ]
        );
        assert_eq!(d.options, vec!["ndots:5"]);
    }

    #[test]
    fn default_none_and_dns_config() {
        let host = "nameserver 192.168.77.1\n";
        let p = pod(PodSpec {
            dns_policy: Some("Default".into()),
            ..Default::default()
        });
        assert_eq!(
            dns_config(&p, &["10.96.0.10".into()], "cluster.local", host).servers,
            vec!["192.168.77.1"]
        );
        let p = pod(PodSpec {
            dns_policy: Some("None".into()),
            dns_config: Some(PodDNSConfig {
                nameservers: Some(vec!["1.1.1.1".into()]),
                searches: Some(vec!["example.org".into()]),
                options: Some(vec![PodDNSConfigOption {
                    name: Some("ndots".into()),
                    value: Some("2".into()),
                }]),
            }),
            ..Default::default()
        });
        let d = dns_config(&p, &["10.96.0.10".into()], "cluster.local", host);
        assert_eq!(d.servers, vec!["1.1.1.1"]);
        assert_eq!(d.searches, vec!["example.org"]);
        assert_eq!(d.options, vec!["ndots:2"]);
        let hostnet = pod(PodSpec {
            host_network: Some(true),
            ..Default::default()
        });
        assert_eq!(
            dns_config(&hostnet, &["10.96.0.10".into()], "cluster.local", host).servers,
            vec!["192.168.77.1"]
        );
    }
}
