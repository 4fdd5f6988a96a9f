//! Rule generation in kube-proxy's iptables layout: the chain names (upstream's hashes), the
//! per-table chain contents for a snapshot, the jump rules from the built-in chains, and the
//! `iptables-restore --noflush` text that rewrites only the chains that changed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

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

/// The desired content of every chain the proxy owns, per table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSet {
    pub tables: BTreeMap<Table, Chains>,
}

impl RuleSet {
    fn chain(&mut self, table: Table, chain: &str) -> &mut Vec<String> {
        let chains = self.tables.entry(table).or_default();
        if !chains.contains_key(chain) {
            chains.insert(chain.to_string(), Vec::new());
        }
        chains.get_mut(chain).expect("chain just inserted")
    }

    fn rule(&mut self, table: Table, chain: &str, args: std::fmt::Arguments<'_>) {
        let mut line = String::with_capacity(128);
        let _ = write!(line, "-A {chain} {args}");
        self.chain(table, chain).push(line);
    }

    /// The chains of `table` (empty when the table has none).
    pub fn chains(&self, table: Table) -> impl Iterator<Item = (&String, &Vec<String>)> {
        self.tables.get(&table).into_iter().flatten()
    }

    /// Number of rules in `table`.
    pub fn rule_count(&self, table: Table) -> usize {
        self.chains(table).map(|(_, rules)| rules.len()).sum()
    }

    /// Number of chains in `table`.
    pub fn chain_count(&self, table: Table) -> usize {
        self.tables.get(&table).map_or(0, BTreeMap::len)
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

/// Generates every chain for `snapshot`.
pub fn generate(snapshot: &Snapshot, config: &RuleConfig) -> RuleSet {
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
        rules.chain(table, chain);
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

    for (port, endpoints) in snapshot.services.values() {
        service_rules(&mut rules, port, endpoints, config);
    }

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
fn service_rules(
    rules: &mut RuleSet,
    port: &ServicePort,
    endpoints: &[Endpoint],
    config: &RuleConfig,
) {
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
        rules.rule(
            nat,
            KUBE_SERVICES,
            format_args!(
                "-m comment --comment \"{name} cluster IP\" -m {protocol} -p {protocol} -d {ip} --dport {dport} -j {internal_chain}"
            ),
        );
    } else if let Some((target, comment)) = &internal_filter {
        rules.rule(
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
            rules.rule(
                nat,
                KUBE_NODEPORTS,
                format_args!(
                    "-m comment --comment {name} -m {protocol} -p {protocol} --dport {node_port} -j {external_chain}"
                ),
            );
        }
        if let Some((target, comment)) = &external_filter {
            rules.rule(
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
            rules.rule(
                nat,
                internal_chain,
                format_args!(
                    "-m comment --comment \"{name} cluster IP\" -m {protocol} -p {protocol} -d {ip} --dport {dport} ! -s {cidr} -j {KUBE_MARK_MASQ}"
                ),
            );
        } else {
            // Without a pod network to tell local from remote, masquerade everything.
            rules.rule(
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
        rules.chain(nat, &external_chain);
        if !port.external_policy_local {
            rules.rule(
                nat,
                &external_chain,
                format_args!(
                    "-m comment --comment \"masquerade traffic for {name} external destinations\" -j {KUBE_MARK_MASQ}"
                ),
            );
        } else {
            if let Some(cidr) = config.cluster_cidr {
                rules.rule(
                    nat,
                    &external_chain,
                    format_args!(
                        "-m comment --comment \"pod traffic for {name} external destinations\" -s {cidr} -j {cluster_chain}"
                    ),
                );
            }
            rules.rule(
                nat,
                &external_chain,
                format_args!(
                    "-m comment --comment \"masquerade LOCAL traffic for {name} external destinations\" -m addrtype --src-type LOCAL -j {KUBE_MARK_MASQ}"
                ),
            );
            rules.rule(
                nat,
                &external_chain,
                format_args!(
                    "-m comment --comment \"route LOCAL traffic for {name} external destinations\" -m addrtype --src-type LOCAL -j {cluster_chain}"
                ),
            );
        }
        if has_external {
            rules.rule(
                nat,
                &external_chain,
                format_args!("-j {external_policy_chain}"),
            );
        }
    }

    if uses_cluster_chain {
        rules.chain(nat, &cluster_chain);
        endpoint_jumps(rules, port, &name, &cluster_chain, &categorized.cluster);
    }
    if uses_local_chain {
        rules.chain(nat, &local_chain);
        endpoint_jumps(rules, port, &name, &local_chain, &categorized.local);
    }

    // One chain per endpoint: hairpin masquerade, affinity bookkeeping, DNAT.
    for endpoint in &reachable {
        let address = endpoint.to_string();
        let chain = endpoint_chain(&port.name, protocol, &address);
        let endpoint_ip = endpoint.ip;
        rules.rule(
            nat,
            &chain,
            format_args!("-m comment --comment {name} -s {endpoint_ip} -j {KUBE_MARK_MASQ}"),
        );
        if port.affinity_timeout_seconds.is_some() {
            rules.rule(
                nat,
                &chain,
                format_args!(
                    "-m comment --comment {name} -m recent --name {chain} --set -m {protocol} -p {protocol} -j DNAT --to-destination {address}"
                ),
            );
        } else {
            rules.rule(
                nat,
                &chain,
                format_args!(
                    "-m comment --comment {name} -m {protocol} -p {protocol} -j DNAT --to-destination {address}"
                ),
            );
        }
    }
}

/// Affinity and random-balancing jumps from a policy chain to its endpoints' chains.
fn endpoint_jumps(
    rules: &mut RuleSet,
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
            rules.rule(
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
            rules.rule(
                Table::Nat,
                policy_chain,
                format_args!(
                    "-m comment --comment \"{name} -> {address}\" -m statistic --mode random --probability {p} -j {chain}"
                ),
            );
        } else {
            rules.rule(
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
/// nothing to do.
pub fn render_batch(
    desired: &RuleSet,
    applied: Option<&RuleSet>,
    stale: &BTreeMap<Table, Vec<String>>,
) -> (String, BatchStats) {
    let mut out = String::new();
    let mut stats = BatchStats::default();
    for table in Table::ALL {
        let empty = Chains::new();
        let want = desired.tables.get(&table).unwrap_or(&empty);
        let have = applied.map(|a| a.tables.get(&table).unwrap_or(&empty));
        let changed: Vec<(&String, &Vec<String>)> = want
            .iter()
            .filter(|(chain, rules)| have.is_none_or(|h| h.get(*chain) != Some(*rules)))
            .collect();
        let mut removed: Vec<&String> = have
            .into_iter()
            .flat_map(|h| h.keys())
            .filter(|chain| !want.contains_key(*chain))
            .collect();
        for chain in stale.get(&table).into_iter().flatten() {
            if !want.contains_key(chain) && !removed.contains(&chain) {
                removed.push(chain);
            }
        }
        if changed.is_empty() && removed.is_empty() {
            continue;
        }
        let _ = writeln!(out, "*{}", table.as_str());
        for (chain, _) in &changed {
            let _ = writeln!(out, ":{chain} - [0:0]");
        }
        for chain in &removed {
            let _ = writeln!(out, ":{chain} - [0:0]");
        }
        for (_, lines) in &changed {
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
        stats.chains_written += changed.len();
        stats.chains_deleted += removed.len();
    }
    (out, stats)
}
