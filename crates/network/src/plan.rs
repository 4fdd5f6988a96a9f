//! Pure planning: host-side veth names, the host-gw route diff, and the iptables-restore input
//! for this network's own nat chains. No system calls here, so all of it is unit-tested.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// nat chain for masquerading traffic that leaves the cluster CIDR (jumped to from POSTROUTING).
pub const POSTROUTING_CHAIN: &str = "MINI-CNI-POSTROUTING";
/// nat chain holding the hostPort DNAT rules (jumped to from PREROUTING and OUTPUT).
pub const HOSTPORTS_CHAIN: &str = "MINI-CNI-HOSTPORTS";

/// The jump rules from the built-in nat chains into ours: (built-in chain, match arguments,
/// our chain, insert at the top instead of appending).
pub fn jump_rules() -> Vec<(&'static str, Vec<String>, &'static str, bool)> {
    let local = ["-m", "addrtype", "--dst-type", "LOCAL"]
        .map(String::from)
        .to_vec();
    vec![
        (
            "POSTROUTING",
            comment("mini-cni masquerade"),
            POSTROUTING_CHAIN,
            false,
        ),
        (
            "PREROUTING",
            [local.clone(), comment("mini-cni hostports")].concat(),
            HOSTPORTS_CHAIN,
            true,
        ),
        (
            "OUTPUT",
            [local, comment("mini-cni hostports")].concat(),
            HOSTPORTS_CHAIN,
            true,
        ),
    ]
}

fn comment(text: &str) -> Vec<String> {
    vec![
        "-m".into(),
        "comment".into(),
        "--comment".into(),
        text.into(),
    ]
}

/// The name of the node-side veth of a sandbox: `mcv` and 12 hex digits of the sandbox id's
/// SHA-256, so it is stable across restarts and fits IFNAMSIZ (15).
pub fn host_veth_name(sandbox_id: &str) -> String {
    let digest = Sha256::digest(sandbox_id.as_bytes());
    let mut name = String::from("mcv");
    for byte in &digest[..6] {
        let _ = write!(name, "{byte:02x}");
    }
    name
}

/// Transport protocol of a hostPort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    fn as_iptables(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// One hostPort mapping of a pod (containers[].ports[] with hostPort set).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HostPort {
    pub protocol: Protocol,
    pub host_port: u16,
    pub container_port: u16,
    /// Only this node address; `None` means every address of the node.
    pub host_ip: Option<Ipv4Addr>,
}

/// The hostPorts of one sandbox and the pod address they lead to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxHostPorts {
    pub pod_ip: Ipv4Addr,
    pub ports: Vec<HostPort>,
}

/// What sync_routes must do to reach the wanted host-gw routes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RouteDiff {
    pub add: Vec<(Ipv4Net, Ipv4Addr)>,
    pub delete: Vec<(Ipv4Net, Ipv4Addr)>,
}

/// Compares the routes this network installed (`current`) with the wanted ones. The node's own
/// pod CIDR is never routed via a peer; a destination wanted twice keeps its first gateway; a
/// route whose gateway changed is deleted and re-added.
pub fn diff_routes(
    own_pod_cidr: Ipv4Net,
    current: &[(Ipv4Net, Ipv4Addr)],
    wanted: &[(Ipv4Net, Ipv4Addr)],
) -> RouteDiff {
    let mut wanted_by_dst: BTreeMap<Ipv4Net, Ipv4Addr> = BTreeMap::new();
    for (dst, via) in wanted {
        let dst = dst.trunc();
        if dst == own_pod_cidr.trunc() {
            continue;
        }
        wanted_by_dst.entry(dst).or_insert(*via);
    }
    let mut diff = RouteDiff::default();
    let mut kept: BTreeMap<Ipv4Net, Ipv4Addr> = BTreeMap::new();
    for (dst, via) in current {
        if wanted_by_dst.get(dst) == Some(via) && !kept.contains_key(dst) {
            kept.insert(*dst, *via);
        } else {
            diff.delete.push((*dst, *via));
        }
    }
    for (dst, via) in wanted_by_dst {
        if !kept.contains_key(&dst) {
            diff.add.push((dst, via));
        }
    }
    diff
}

/// The iptables-restore input (for `--noflush`) that rewrites this network's two nat chains:
/// masquerade pod traffic leaving the cluster CIDR (not pod-to-pod, not multicast), masquerade
/// hairpin hostPort traffic, and DNAT every hostPort to its pod.
pub fn render_nat_rules(
    pod_cidr: Ipv4Net,
    cluster_cidr: Ipv4Net,
    host_ports: &BTreeMap<String, SandboxHostPorts>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "*nat");
    let _ = writeln!(out, ":{POSTROUTING_CHAIN} - [0:0]");
    let _ = writeln!(out, ":{HOSTPORTS_CHAIN} - [0:0]");
    for (sandbox_id, mapping) in host_ports {
        if mapping.ports.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "-A {POSTROUTING_CHAIN} -s {ip}/32 -d {ip}/32 -m comment --comment \"hairpin {sandbox_id}\" -j MASQUERADE",
            ip = mapping.pod_ip
        );
    }
    let _ = writeln!(
        out,
        "-A {POSTROUTING_CHAIN} -s {pod_cidr} -d {cluster_cidr} -m comment --comment \"pod to pod\" -j RETURN"
    );
    let _ = writeln!(
        out,
        "-A {POSTROUTING_CHAIN} -s {pod_cidr} ! -d 224.0.0.0/4 -m comment --comment \"leaving the cluster network\" -j MASQUERADE"
    );
    for (sandbox_id, mapping) in host_ports {
        for port in &mapping.ports {
            let proto = port.protocol.as_iptables();
            let dst = port
                .host_ip
                .map(|ip| format!(" -d {ip}/32"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "-A {HOSTPORTS_CHAIN} -p {proto}{dst} -m {proto} --dport {hp} -m comment --comment \"{sandbox_id}\" -j DNAT --to-destination {ip}:{cp}",
                hp = port.host_port,
                ip = mapping.pod_ip,
                cp = port.container_port,
            );
        }
    }
    let _ = writeln!(out, "COMMIT");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn veth_names_are_stable_distinct_and_short() {
        let a = host_veth_name("sandbox-a");
        assert_eq!(a, host_veth_name("sandbox-a"));
        assert_ne!(a, host_veth_name("sandbox-b"));
        assert!(a.len() <= 15 && a.starts_with("mcv"), "{a}");
        assert!(a[3..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn route_diff_adds_missing_removes_stale_and_changed() {
        let own = net("10.244.1.0/24");
        let current = vec![
            (net("10.244.2.0/24"), ip("192.168.77.11")), // kept
            (net("10.244.3.0/24"), ip("192.168.77.12")), // node gone
            (net("10.244.4.0/24"), ip("192.168.77.13")), // node moved to .14
        ];
        let wanted = vec![
            (net("10.244.1.0/24"), ip("192.168.77.10")), // our own: never a route
            (net("10.244.2.0/24"), ip("192.168.77.11")),
            (net("10.244.4.0/24"), ip("192.168.77.14")),
            (net("10.244.5.0/24"), ip("192.168.77.15")), // new node
        ];
        let diff = diff_routes(own, &current, &wanted);
        assert_eq!(
            diff.delete,
            vec![
                (net("10.244.3.0/24"), ip("192.168.77.12")),
                (net("10.244.4.0/24"), ip("192.168.77.13")),
            ]
        );
        assert_eq!(
            diff.add,
            vec![
                (net("10.244.4.0/24"), ip("192.168.77.14")),
                (net("10.244.5.0/24"), ip("192.168.77.15")),
            ]
        );
    }

    #[test]
    fn route_diff_of_a_synced_table_is_empty() {
        let routes = vec![(net("10.244.2.0/24"), ip("192.168.77.11"))];
        assert_eq!(
            diff_routes(net("10.244.1.0/24"), &routes, &routes),
            RouteDiff::default()
        );
        let everything_gone = diff_routes(net("10.244.1.0/24"), &routes, &[]);
        assert_eq!(everything_gone.delete, routes);
        assert!(everything_gone.add.is_empty());
    }

    #[test]
    fn nat_rules_masquerade_only_traffic_leaving_the_cluster_and_dnat_host_ports() {
        let mut ports = BTreeMap::new();
        ports.insert(
            "sb1".to_string(),
            SandboxHostPorts {
                pod_ip: ip("10.244.1.5"),
                ports: vec![
                    HostPort {
                        protocol: Protocol::Tcp,
                        host_port: 8080,
                        container_port: 80,
                        host_ip: None,
                    },
                    HostPort {
                        protocol: Protocol::Udp,
                        host_port: 5353,
                        container_port: 53,
                        host_ip: Some(ip("192.168.77.10")),
                    },
                ],
            },
        );
        let rules = render_nat_rules(net("10.244.1.0/24"), net("10.244.0.0/16"), &ports);
        let lines: Vec<&str> = rules.lines().collect();
        assert_eq!(lines.first(), Some(&"*nat"));
        assert_eq!(lines.last(), Some(&"COMMIT"));
        let ret = lines
            .iter()
            .position(|l| {
                l.contains("-s 10.244.1.0/24 -d 10.244.0.0/16") && l.ends_with("-j RETURN")
            })
            .expect("pod-to-pod return rule");
        let masq = lines
            .iter()
            .position(|l| {
                l.contains("-s 10.244.1.0/24 ! -d 224.0.0.0/4") && l.ends_with("-j MASQUERADE")
            })
            .expect("masquerade rule");
        assert!(
            ret < masq,
            "pod-to-pod must return before masquerade:\n{rules}"
        );
        assert!(rules.contains(
            "-A MINI-CNI-HOSTPORTS -p tcp -m tcp --dport 8080 -m comment --comment \"sb1\" -j DNAT --to-destination 10.244.1.5:80"
        ), "{rules}");
        assert!(rules.contains(
            "-A MINI-CNI-HOSTPORTS -p udp -d 192.168.77.10/32 -m udp --dport 5353 -m comment --comment \"sb1\" -j DNAT --to-destination 10.244.1.5:53"
        ), "{rules}");
        assert!(
            rules.contains("-s 10.244.1.5/32 -d 10.244.1.5/32"),
            "hairpin: {rules}"
        );
        assert!(
            !rules.contains("-j ACCEPT") && !rules.contains("-F") && !rules.contains("-X"),
            "only our own chains are touched: {rules}"
        );
    }

    #[test]
    fn nat_rules_without_host_ports_have_no_dnat() {
        let rules = render_nat_rules(net("10.244.2.0/24"), net("10.244.0.0/16"), &BTreeMap::new());
        assert!(!rules.contains("DNAT"));
        assert!(rules.contains(":MINI-CNI-HOSTPORTS - [0:0]"));
        assert!(rules.contains(":MINI-CNI-POSTROUTING - [0:0]"));
    }
}
