//! Rule generation in kube-proxy's iptables layout: the chain names (upstream's hashes), the
//! per-table chain contents for a snapshot, the jump rules from the built-in chains, and the
//! `iptables-restore --noflush` text that rewrites only the chains that changed.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::sync::Arc;

use ipnet::Ipv4Net;
use sha2::{Digest, Sha256};

use crate::model::{categorize, Endpoint, ServicePort, ServicePortName, Snapshot};

pub const KUBE_SERVICES: &str = "KUBE-SERVICES";
pub const KUBE_EXTERNAL_SERVICES: &str = "KUBE-EXTERNAL-SERVICES";
pub const KUBE_NODEPORTS: &str = "KUBE-NODEPORTS";
pub const KUBE_POSTROUTING: &str = "KUBE-POSTROUTING";
pub const KUBE_MARK_MASQ: &str = "KUBE-MARK-MASQ";
pub const KUBE_FORWARD: &str = "KUBE-FORWARD";

/// The mark bit of packets that need SNAT (upstream `--iptables-masquerade-bit` 14).
pub const MASQ_MARK: &str = "0x4000";

/// Prefixes of the per-service chains (upstream's, including the retired XLB and FW).
pub const SERVICE_CHAIN_PREFIXES: [&str; 6] = [
    "KUBE-SVC-",
    "KUBE-SVL-",
    "KUBE-EXT-",
    "KUBE-SEP-",
    "KUBE-FW-",
    "KUBE-XLB-",
];

/// Whether `chain` is one this proxy creates (base chain or per-service chain).
pub fn is_own_chain(chain: &str) -> bool {
    [
        KUBE_SERVICES,
        KUBE_EXTERNAL_SERVICES,
        KUBE_NODEPORTS,
        KUBE_POSTROUTING,
        KUBE_MARK_MASQ,
        KUBE_FORWARD,
    ]
    .contains(&chain)
        || SERVICE_CHAIN_PREFIXES.iter().any(|p| chain.starts_with(p))
}

/// The tables the proxy writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    Nat,
    Filter,
}

impl Table {
    /// The table's name for `-t` and `*table`.
    pub fn as_str(self) -> &'static str {
        match self {
            Table::Nat => "nat",
            Table::Filter => "filter",
        }
    }

    /// Both tables, filter first as upstream writes them.
    pub const ALL: [Table; 2] = [Table::Filter, Table::Nat];
}

/// What rule generation needs besides the snapshot.
#[derive(Debug, Clone, Default)]
pub struct RuleConfig {
    /// The pod network: traffic to a ClusterIP from outside it is masqueraded.
    pub cluster_cidr: Option<Ipv4Net>,
    /// Addresses NodePorts answer on; empty means every local address except 127.0.0.0/8
    /// (upstream's default `nodePortAddresses` with `localhostNodePorts` false).
    pub node_port_addresses: Vec<Ipv4Addr>,
}

/// The first 16 characters of base32(sha256(input)), upstream's chain-name hash.
fn hash16(input: &str) -> String {
    let digest = Sha256::digest(input.as_bytes());
    let mut encoded = data_encoding::BASE32.encode(&digest);
    encoded.truncate(16);
    encoded
}

/// KUBE-SVC-<hash>: the Cluster-policy chain of a service port.
pub fn service_chain(name: &ServicePortName, protocol: &str) -> String {
    format!("KUBE-SVC-{}", hash16(&format!("{name}{protocol}")))
}

/// KUBE-SVL-<hash>: the Local-policy chain of a service port.
pub fn service_local_chain(name: &ServicePortName, protocol: &str) -> String {
    format!("KUBE-SVL-{}", hash16(&format!("{name}{protocol}")))
}

/// KUBE-EXT-<hash>: the external-traffic chain of a service port.
pub fn external_chain(name: &ServicePortName, protocol: &str) -> String {
    format!("KUBE-EXT-{}", hash16(&format!("{name}{protocol}")))
}

/// KUBE-SEP-<hash>: the chain of one endpoint (`ip:port`) of a service port.
pub fn endpoint_chain(name: &ServicePortName, protocol: &str, endpoint: &str) -> String {
    format!(
        "KUBE-SEP-{}",
        hash16(&format!("{name}{protocol}{endpoint}"))
    )
}

/// The probability of the i-th of n remaining endpoints, formatted as upstream (`%0.10f`).
pub fn probability(remaining: usize) -> String {
    format!("{:.10}", 1.0 / remaining as f64)
}

/// Chain contents of one table: chain name → full rule lines (`-A CHAIN ...`), in order.
pub type Chains = BTreeMap<String, Vec<String>>;

/// The generated rules of one service port: its lines in the base chains (KUBE-SERVICES,
/// KUBE-NODEPORTS, KUBE-EXTERNAL-SERVICES) and the chains only it uses (KUBE-SVC/SVL/EXT/SEP,
/// whose names hash the service port name, so no two ports share one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceRules {
    /// Lines for the base chains, in order: (table, base chain, line).
    pub shared: Vec<(Table, &'static str, String)>,
    /// The port's own chains with their lines.
    pub own: BTreeMap<(Table, String), Vec<String>>,
}

/// One rule line of `chain` as iptables-restore reads it.
fn rule_line(chain: &str, args: std::fmt::Arguments<'_>) -> String {
    let mut line = String::with_capacity(128);
    let _ = write!(line, "-A {chain} {args}");
    line
}

impl ServiceRules {
    fn shared(&mut self, table: Table, chain: &'static str, args: std::fmt::Arguments<'_>) {
        self.shared.push((table, chain, rule_line(chain, args)));
    }

    fn own_chain(&mut self, table: Table, chain: &str) -> &mut Vec<String> {
        self.own.entry((table, chain.to_string())).or_default()
    }

    fn own(&mut self, table: Table, chain: &str, args: std::fmt::Arguments<'_>) {
        let line = rule_line(chain, args);
        self.own_chain(table, chain).push(line);
    }
}

/// One service port as generated: the inputs (to tell whether it changed) and its rules.
#[derive(Debug, PartialEq, Eq)]
pub struct ServiceEntry {
    pub port: ServicePort,
    pub endpoints: Vec<Endpoint>,
    pub rules: ServiceRules,
    /// Per table (in `Table::ALL` order): own chains and own rules.
    own_counts: [(usize, usize); 2],
}

impl ServiceEntry {
    fn new(port: &ServicePort, endpoints: &[Endpoint], config: &RuleConfig) -> Self {
        let rules = service_rules(port, endpoints, config);
        let own_counts = Table::ALL.map(|table| {
            rules
                .own
                .iter()
                .filter(|((t, _), _)| *t == table)
                .fold((0, 0), |(chains, lines), (_, l)| {
                    (chains + 1, lines + l.len())
                })
        });
        ServiceEntry {
            port: port.clone(),
            endpoints: endpoints.to_vec(),
            rules,
            own_counts,
        }
    }
}

/// The desired content of every chain the proxy owns. Each service port's rules are kept
/// apart and shared (`Arc`) between successive rule sets while the port and its endpoints do
/// not change, so a sync regenerates and compares only the ports that changed (upstream's
/// change trackers serve the same purpose).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSet {
    /// The base chains, complete with every service port's lines in them.
    base: BTreeMap<Table, Chains>,
    /// Per service port, its inputs and rules.
    services: BTreeMap<ServicePortName, Arc<ServiceEntry>>,
}

impl RuleSet {
    fn base_chain(&mut self, table: Table, chain: &str) -> &mut Vec<String> {
        let chains = self.base.entry(table).or_default();
        if !chains.contains_key(chain) {
            chains.insert(chain.to_string(), Vec::new());
        }
        chains.get_mut(chain).expect("chain just inserted")
    }

    fn rule(&mut self, table: Table, chain: &str, args: std::fmt::Arguments<'_>) {
        let line = rule_line(chain, args);
        self.base_chain(table, chain).push(line);
    }

    /// The lines of `chain` in `table`, if the proxy wants that chain.
    pub fn chain(&self, table: Table, chain: &str) -> Option<&[String]> {
        if let Some(lines) = self.base.get(&table).and_then(|c| c.get(chain)) {
            return Some(lines);
        }
        let key = (table, chain.to_string());
        self.services
            .values()
            .find_map(|e| e.rules.own.get(&key).map(Vec::as_slice))
    }

    /// Every chain with its table and lines, base chains first, in no particular order.
    fn all_chains(&self) -> impl Iterator<Item = (Table, &str, &[String])> {
        let base = self.base.iter().flat_map(|(table, chains)| {
            chains
                .iter()
                .map(move |(name, lines)| (*table, name.as_str(), lines.as_slice()))
        });
        let own = self.services.values().flat_map(|entry| {
            entry
                .rules
                .own
                .iter()
                .map(|((table, name), lines)| (*table, name.as_str(), lines.as_slice()))
        });
        base.chain(own)
    }

    /// Every chain of `table` with its lines, sorted by name.
    pub fn chains(&self, table: Table) -> Vec<(&str, &[String])> {
        let mut out: Vec<(&str, &[String])> = self
            .all_chains()
            .filter(|(t, _, _)| *t == table)
            .map(|(_, name, lines)| (name, lines))
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(b.0));
        out
    }

    /// Number of rules in `table`.
    pub fn rule_count(&self, table: Table) -> usize {
        let base: usize = self
            .base
            .get(&table)
            .map_or(0, |c| c.values().map(Vec::len).sum());
        base + self.own_counts(table).1
    }

    /// Number of chains in `table`.
    pub fn chain_count(&self, table: Table) -> usize {
        self.base.get(&table).map_or(0, BTreeMap::len) + self.own_counts(table).0
    }

    /// The service ports' own (chains, rules) in `table`.
    fn own_counts(&self, table: Table) -> (usize, usize) {
        let index = Table::ALL
            .iter()
            .position(|t| *t == table)
            .expect("a known table");
        self.services
            .values()
            .map(|e| e.own_counts[index])
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    }

    /// The rules generated for one service port.
    pub fn service(&self, name: &ServicePortName) -> Option<&Arc<ServiceEntry>> {
        self.services.get(name)
    }

    /// The generated service ports.
    pub fn services(&self) -> &BTreeMap<ServicePortName, Arc<ServiceEntry>> {
        &self.services
    }
}

/// A rule in a built-in chain that jumps to one of the proxy's chains (kept with `-C`/`-I`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpRule {
    pub table: Table,
    pub from: &'static str,
    pub to: &'static str,
    pub args: Vec<String>,
}

/// The jumps from the built-in chains, as upstream's `iptablesJumpChains` (less the load
/// balancer firewall, which this proxy does not implement).
pub fn jump_rules() -> Vec<JumpRule> {
    let jump =
        |table: Table, from: &'static str, to: &'static str, comment: &str, extra: &[&str]| {
            let mut args = vec![
                "-m".to_string(),
                "comment".into(),
                "--comment".into(),
                comment.to_string(),
            ];
            args.extend(extra.iter().map(|s| s.to_string()));
            args.extend(["-j".to_string(), to.to_string()]);
            JumpRule {
                table,
                from,
                to,
                args,
            }
        };
    let new = ["-m", "conntrack", "--ctstate", "NEW"];
    vec![
        jump(
            Table::Filter,
            "INPUT",
            KUBE_EXTERNAL_SERVICES,
            "kubernetes externally-visible service portals",
            &new,
        ),
        jump(
            Table::Filter,
            "FORWARD",
            KUBE_EXTERNAL_SERVICES,
            "kubernetes externally-visible service portals",
            &new,
        ),
        jump(
            Table::Filter,
            "INPUT",
            KUBE_NODEPORTS,
            "kubernetes health check service ports",
            &[],
        ),
        jump(
            Table::Filter,
            "FORWARD",
            KUBE_SERVICES,
            "kubernetes service portals",
            &new,
        ),
        jump(
            Table::Filter,
            "OUTPUT",
            KUBE_SERVICES,
            "kubernetes service portals",
            &new,
        ),
        jump(
            Table::Filter,
            "FORWARD",
            KUBE_FORWARD,
            "kubernetes forwarding rules",
            &[],
        ),
        jump(
            Table::Nat,
            "OUTPUT",
            KUBE_SERVICES,
            "kubernetes service portals",
            &[],
        ),
        jump(
            Table::Nat,
            "PREROUTING",
            KUBE_SERVICES,
            "kubernetes service portals",
            &[],
        ),
        jump(
            Table::Nat,
            "POSTROUTING",
            KUBE_POSTROUTING,
            "kubernetes postrouting rules",
            &[],
        ),
    ]
}

/// The endpoints reachable through a service port's chains (cluster ∪ local, sorted).
pub fn reachable_endpoints(port: &ServicePort, endpoints: &[Endpoint]) -> Vec<Endpoint> {
    let categorized = categorize(port, endpoints);
    let mut all = categorized.cluster;
    for e in categorized.local {
        if !all.contains(&e) {
            all.push(e);
        }
    }
    all.sort();
    all
}

/// Walks two maps with the same keys in key order together: each key with its value on either
/// side (a merge join, so no lookups).
pub fn merge_join<'a, K: Ord, A, B>(
    left: &'a BTreeMap<K, A>,
    right: &'a BTreeMap<K, B>,
) -> impl Iterator<Item = (&'a K, Option<&'a A>, Option<&'a B>)> {
    let mut left = left.iter().peekable();
    let mut right = right.iter().peekable();
    std::iter::from_fn(move || match (left.peek(), right.peek()) {
        (None, None) => None,
        (Some(_), None) => left.next().map(|(k, a)| (k, Some(a), None)),
        (None, Some(_)) => right.next().map(|(k, b)| (k, None, Some(b))),
        (Some((ka, _)), Some((kb, _))) => match ka.cmp(kb) {
            std::cmp::Ordering::Less => left.next().map(|(k, a)| (k, Some(a), None)),
            std::cmp::Ordering::Greater => right.next().map(|(k, b)| (k, None, Some(b))),
            std::cmp::Ordering::Equal => {
                let (k, a) = left.next().expect("peeked");
                let (_, b) = right.next().expect("peeked");
                Some((k, Some(a), Some(b)))
            }
        },
    })
}

/// Generates every chain for `snapshot`.
pub fn generate(snapshot: &Snapshot, config: &RuleConfig) -> RuleSet {
    generate_from(None, snapshot, config)
}

/// Generates every chain for `snapshot`, reusing from `previous` (generated with the same
/// `config`) the rules of every service port whose port and endpoints are unchanged.
pub fn generate_from(
    previous: Option<&RuleSet>,
    snapshot: &Snapshot,
    config: &RuleConfig,
) -> RuleSet {
    let mut rules = RuleSet::default();
    for (table, chain) in [
        (Table::Filter, KUBE_SERVICES),
        (Table::Filter, KUBE_EXTERNAL_SERVICES),
        (Table::Filter, KUBE_NODEPORTS),
        (Table::Filter, KUBE_FORWARD),
        (Table::Nat, KUBE_SERVICES),
        (Table::Nat, KUBE_NODEPORTS),
        (Table::Nat, KUBE_POSTROUTING),
        (Table::Nat, KUBE_MARK_MASQ),
    ] {
        rules.base_chain(table, chain);
    }
    let nat = Table::Nat;
    let filter = Table::Filter;
    rules.rule(
        filter,
        KUBE_FORWARD,
        format_args!(
            "-m comment --comment \"kubernetes forwarding rules\" -m mark --mark {MASQ_MARK}/{MASQ_MARK} -j ACCEPT"
        ),
    );
    rules.rule(
        filter,
        KUBE_FORWARD,
        format_args!(
            "-m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
        ),
    );
    rules.rule(
        nat,
        KUBE_POSTROUTING,
        format_args!("-m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN"),
    );
    rules.rule(
        nat,
        KUBE_POSTROUTING,
        format_args!("-j MARK --xor-mark {MASQ_MARK}"),
    );
    rules.rule(
        nat,
        KUBE_POSTROUTING,
        format_args!(
            "-m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully"
        ),
    );
    rules.rule(
        nat,
        KUBE_MARK_MASQ,
        format_args!("-j MARK --or-mark {MASQ_MARK}"),
    );

    static NONE: BTreeMap<ServicePortName, Arc<ServiceEntry>> = BTreeMap::new();
    let previous_services = previous.map_or(&NONE, |p| &p.services);
    // Shared lines gathered per base chain, then appended once (chain order: service order).
    let mut shared: Vec<((Table, &'static str), Vec<String>)> = Vec::new();
    let mut services = Vec::with_capacity(snapshot.services.len());
    for (name, wanted, previous) in merge_join(&snapshot.services, previous_services) {
        let Some((port, endpoints)) = wanted else {
            continue;
        };
        let entry = match previous {
            Some(entry) if entry.port == *port && entry.endpoints == *endpoints => entry.clone(),
            _ => Arc::new(ServiceEntry::new(port, endpoints, config)),
        };
        for (table, chain, line) in &entry.rules.shared {
            let key = (*table, *chain);
            match shared.iter_mut().find(|(k, _)| *k == key) {
                Some((_, lines)) => lines.push(line.clone()),
                None => shared.push((key, vec![line.clone()])),
            }
        }
        services.push((name.clone(), entry));
    }
    for ((table, chain), lines) in shared {
        rules.base_chain(table, chain).extend(lines);
    }
    // Already in key order: a bulk build.
    rules.services = services.into_iter().collect();

    // The tail call to the nodeports chain must be the last rule of nat KUBE-SERVICES.
    if config.node_port_addresses.is_empty() {
        rules.rule(
            nat,
            KUBE_SERVICES,
            format_args!(
                "-m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j {KUBE_NODEPORTS}"
            ),
        );
    } else {
        for address in &config.node_port_addresses {
            rules.rule(
                nat,
                KUBE_SERVICES,
                format_args!(
                    "-m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -d {address} -j {KUBE_NODEPORTS}"
                ),
            );
        }
    }
    rules
}

/// The chains and rules of one service port, following upstream's `syncProxyRules` loop.
fn service_rules(port: &ServicePort, endpoints: &[Endpoint], config: &RuleConfig) -> ServiceRules {
    let mut rules = ServiceRules::default();
    let nat = Table::Nat;
    let filter = Table::Filter;
    let name = port.name.to_string();
    let protocol = port.protocol.as_str();
    let categorized = categorize(port, endpoints);
    let reachable = reachable_endpoints(port, endpoints);
    let has_endpoints = !reachable.is_empty();

    let cluster_chain = service_chain(&port.name, protocol);
    let local_chain = service_local_chain(&port.name, protocol);
    let external_chain = external_chain(&port.name, protocol);
    let uses_cluster_chain = !categorized.cluster.is_empty() && port.uses_cluster_endpoints();
    let uses_local_chain = !categorized.local.is_empty() && port.uses_local_endpoints();

    let (internal_chain, has_internal) = if port.internal_policy_local {
        (&local_chain, has_endpoints && !categorized.local.is_empty())
    } else {
        (&cluster_chain, has_endpoints)
    };
    let (external_policy_chain, has_external) = if port.external_policy_local {
        (&local_chain, has_endpoints && !categorized.local.is_empty())
    } else {
        (&cluster_chain, has_endpoints)
    };
    let uses_external_chain = has_endpoints && port.externally_accessible();

    let (internal_filter, external_filter) = if !has_endpoints {
        let comment = format!("\"{name} has no endpoints\"");
        // kube-proxy rejects with ICMP port-unreachable. When the rejecting node and the client
        // share a CPU's softirq (a pod on the node, veth), the ICMP often arrives while connect()
        // still holds the socket lock and is dropped (TcpExtLockDroppedIcmps), so the client sees
        // the refusal only after the 1 s SYN retransmit. A TCP reset is never dropped that way:
        // refused at once.
        let reject = if protocol == "tcp" {
            "REJECT --reject-with tcp-reset"
        } else {
            "REJECT"
        };
        (Some((reject, comment.clone())), Some((reject, comment)))
    } else {
        let no_local = format!("\"{name} has no local endpoints\"");
        (
            (!has_internal).then_some(("DROP", no_local.clone())),
            (!has_external).then_some(("DROP", no_local)),
        )
    };
    let ip = port.cluster_ip;
    let dport = port.port;

    // Capture the cluster IP.
    if has_internal {
        rules.shared(
            nat,
            KUBE_SERVICES,
            format_args!(
                "-m comment --comment \"{name} cluster IP\" -m {protocol} -p {protocol} -d {ip} --dport {dport} -j {internal_chain}"
            ),
        );
    } else if let Some((target, comment)) = &internal_filter {
        rules.shared(
            filter,
            KUBE_SERVICES,
            format_args!(
                "-m comment --comment {comment} -m {protocol} -p {protocol} -d {ip} --dport {dport} -j {target}"
            ),
        );
    }

    // Capture the NodePort.
    if let Some(node_port) = port.node_port {
        if has_endpoints {
            rules.shared(
                nat,
                KUBE_NODEPORTS,
                format_args!(
                    "-m comment --comment {name} -m {protocol} -p {protocol} --dport {node_port} -j {external_chain}"
                ),
            );
        }
        if let Some((target, comment)) = &external_filter {
            rules.shared(
                filter,
                KUBE_EXTERNAL_SERVICES,
                format_args!(
                    "-m comment --comment {comment} -m addrtype --dst-type LOCAL -m {protocol} -p {protocol} --dport {node_port} -j {target}"
                ),
            );
        }
    }

    // Masquerade cluster-IP traffic from outside the pod network.
    if has_internal {
        if let Some(cidr) = config.cluster_cidr {
            rules.own(
                nat,
                internal_chain,
                format_args!(
                    "-m comment --comment \"{name} cluster IP\" -m {protocol} -p {protocol} -d {ip} --dport {dport} ! -s {cidr} -j {KUBE_MARK_MASQ}"
                ),
            );
        } else {
            // Without a pod network to tell local from remote, masquerade everything.
            rules.own(
                nat,
                internal_chain,
                format_args!(
                    "-m comment --comment \"{name} cluster IP\" -m {protocol} -p {protocol} -d {ip} --dport {dport} -j {KUBE_MARK_MASQ}"
                ),
            );
        }
    }

    // External traffic: masquerade unless the policy is Local, then the policy chain.
    if uses_external_chain {
        rules.own_chain(nat, &external_chain);
        if !port.external_policy_local {
            rules.own(
                nat,
                &external_chain,
                format_args!(
                    "-m comment --comment \"masquerade traffic for {name} external destinations\" -j {KUBE_MARK_MASQ}"
                ),
            );
        } else {
            if let Some(cidr) = config.cluster_cidr {
                rules.own(
                    nat,
                    &external_chain,
                    format_args!(
                        "-m comment --comment \"pod traffic for {name} external destinations\" -s {cidr} -j {cluster_chain}"
                    ),
                );
            }
            rules.own(
                nat,
                &external_chain,
                format_args!(
                    "-m comment --comment \"masquerade LOCAL traffic for {name} external destinations\" -m addrtype --src-type LOCAL -j {KUBE_MARK_MASQ}"
                ),
            );
            rules.own(
                nat,
                &external_chain,
                format_args!(
                    "-m comment --comment \"route LOCAL traffic for {name} external destinations\" -m addrtype --src-type LOCAL -j {cluster_chain}"
                ),
            );
        }
        if has_external {
            rules.own(
                nat,
                &external_chain,
                format_args!("-j {external_policy_chain}"),
            );
        }
    }

    if uses_cluster_chain {
        rules.own_chain(nat, &cluster_chain);
        endpoint_jumps(
            &mut rules,
            port,
            &name,
            &cluster_chain,
            &categorized.cluster,
        );
    }
    if uses_local_chain {
        rules.own_chain(nat, &local_chain);
        endpoint_jumps(&mut rules, port, &name, &local_chain, &categorized.local);
    }

    // One chain per endpoint: hairpin masquerade, affinity bookkeeping, DNAT.
    for endpoint in &reachable {
        let address = endpoint.to_string();
        let chain = endpoint_chain(&port.name, protocol, &address);
        let endpoint_ip = endpoint.ip;
        rules.own(
            nat,
            &chain,
            format_args!("-m comment --comment {name} -s {endpoint_ip} -j {KUBE_MARK_MASQ}"),
        );
        if port.affinity_timeout_seconds.is_some() {
            rules.own(
                nat,
                &chain,
                format_args!(
                    "-m comment --comment {name} -m recent --name {chain} --set -m {protocol} -p {protocol} -j DNAT --to-destination {address}"
                ),
            );
        } else {
            rules.own(
                nat,
                &chain,
                format_args!(
                    "-m comment --comment {name} -m {protocol} -p {protocol} -j DNAT --to-destination {address}"
                ),
            );
        }
    }
    rules
}

/// Affinity and random-balancing jumps from a policy chain to its endpoints' chains.
fn endpoint_jumps(
    rules: &mut ServiceRules,
    port: &ServicePort,
    name: &str,
    policy_chain: &str,
    endpoints: &[Endpoint],
) {
    let protocol = port.protocol.as_str();
    let chains: Vec<(String, String)> = endpoints
        .iter()
        .map(|e| {
            let address = e.to_string();
            (endpoint_chain(&port.name, protocol, &address), address)
        })
        .collect();
    if let Some(seconds) = port.affinity_timeout_seconds {
        for (chain, address) in &chains {
            rules.own(
                Table::Nat,
                policy_chain,
                format_args!(
                    "-m comment --comment \"{name} -> {address}\" -m recent --name {chain} --rcheck --seconds {seconds} --reap -j {chain}"
                ),
            );
        }
    }
    let n = chains.len();
    for (i, (chain, address)) in chains.iter().enumerate() {
        if i + 1 < n {
            let p = probability(n - i);
            rules.own(
                Table::Nat,
                policy_chain,
                format_args!(
                    "-m comment --comment \"{name} -> {address}\" -m statistic --mode random --probability {p} -j {chain}"
                ),
            );
        } else {
            rules.own(
                Table::Nat,
                policy_chain,
                format_args!("-m comment --comment \"{name} -> {address}\" -j {chain}"),
            );
        }
    }
}

/// Counts of what a restore batch does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Chains declared and (re)written.
    pub chains_written: usize,
    /// Chains flushed and deleted.
    pub chains_deleted: usize,
    /// Rule lines in the batch.
    pub rules: usize,
}

/// The `iptables-restore --noflush` text that takes the proxy's chains from `applied` (None: an
/// unknown state, so every chain is written) to `desired`, also deleting `stale` chains (found in
/// the kernel but not desired). A table without changes is left out; an empty string means
/// nothing to do. Service ports whose rules `desired` shares with `applied` are skipped without
/// looking at their chains.
pub fn render_batch<'a>(
    desired: &'a RuleSet,
    applied: Option<&'a RuleSet>,
    stale: &'a BTreeMap<Table, Vec<String>>,
) -> (String, BatchStats) {
    static EMPTY: Chains = BTreeMap::new();
    static NO_CHAINS: BTreeMap<(Table, String), Vec<String>> = BTreeMap::new();
    static NO_SERVICES: BTreeMap<ServicePortName, Arc<ServiceEntry>> = BTreeMap::new();
    type Changes<'a> = BTreeMap<Table, (Vec<(&'a str, &'a [String])>, Vec<&'a str>)>;
    let mut changes: Changes<'a> = BTreeMap::new();
    // Without `applied` everything is compared against nothing, so everything is written.
    for table in Table::ALL {
        let want = desired.base.get(&table).unwrap_or(&EMPTY);
        let have = applied.and_then(|a| a.base.get(&table)).unwrap_or(&EMPTY);
        let (written, removed) = changes.entry(table).or_default();
        for (chain, w, h) in merge_join(want, have) {
            match (w, h) {
                (Some(w), h) if h != Some(w) => written.push((chain, w)),
                (None, Some(_)) => removed.push(chain),
                _ => {}
            }
        }
    }
    let applied_services = applied.map_or(&NO_SERVICES, |a| &a.services);
    for (_, want, have) in merge_join(&desired.services, applied_services) {
        if let (Some(w), Some(h)) = (want, have) {
            if Arc::ptr_eq(w, h) {
                continue;
            }
        }
        let want = want.map_or(&NO_CHAINS, |e| &e.rules.own);
        let have = have.map_or(&NO_CHAINS, |e| &e.rules.own);
        for ((table, chain), w, h) in merge_join(want, have) {
            let (written, removed) = changes.entry(*table).or_default();
            match (w, h) {
                (Some(w), h) if h != Some(w) => written.push((chain, w)),
                (None, Some(_)) => removed.push(chain),
                _ => {}
            }
        }
    }
    if stale.values().any(|chains| !chains.is_empty()) {
        let wanted: HashSet<(Table, &str)> = desired
            .all_chains()
            .map(|(table, chain, _)| (table, chain))
            .collect();
        for (table, chains) in stale {
            let (_, removed) = changes.entry(*table).or_default();
            for chain in chains {
                if !wanted.contains(&(*table, chain.as_str())) && !removed.contains(&chain.as_str())
                {
                    removed.push(chain);
                }
            }
        }
    }

    let mut out = String::new();
    let mut stats = BatchStats::default();
    for table in Table::ALL {
        let Some((mut written, removed)) = changes.remove(&table) else {
            continue;
        };
        if written.is_empty() && removed.is_empty() {
            continue;
        }
        written.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let _ = writeln!(out, "*{}", table.as_str());
        for (chain, _) in &written {
            let _ = writeln!(out, ":{chain} - [0:0]");
        }
        for chain in &removed {
            let _ = writeln!(out, ":{chain} - [0:0]");
        }
        for (_, lines) in &written {
            for line in lines.iter() {
                out.push_str(line);
                out.push('\n');
            }
            stats.rules += lines.len();
        }
        for chain in &removed {
            let _ = writeln!(out, "-X {chain}");
        }
        out.push_str("COMMIT\n");
        stats.chains_written += written.len();
        stats.chains_deleted += removed.len();
    }
    (out, stats)
}
