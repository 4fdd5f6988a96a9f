//! One sync of the proxy rules: generate the chains for a snapshot, diff them against what the
//! last successful sync applied, send one `iptables-restore --noflush` batch with only the
//! changed chains (everything on a full sync, plus stale chains found in the kernel), keep the
//! jump rules, and flush the UDP flows of removed endpoints. Also `--cleanup`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::iptables::{Conntrack, ConntrackFilter, Iptables};
use crate::model::{Protocol, Snapshot};
use crate::rules::{
    generate, is_own_chain, jump_rules, reachable_endpoints, render_batch, BatchStats, RuleConfig,
    RuleSet, Table, SERVICE_CHAIN_PREFIXES,
};
use crate::Error;

/// A full resync at least this often even when partial syncs succeed (upstream's
/// `FullSyncPeriod`).
pub const FULL_SYNC_PERIOD: Duration = Duration::from_secs(3600);

/// What one sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Whether every chain was rewritten.
    pub full: bool,
    /// The batch sent to iptables-restore (empty when nothing changed).
    pub batch_stats: BatchStats,
    /// Rules per table after the sync.
    pub rules: BTreeMap<Table, usize>,
    /// Chains per table after the sync.
    pub chains: BTreeMap<Table, usize>,
    /// Conntrack filters flushed.
    pub conntrack_flushed: Vec<ConntrackFilter>,
}

/// Keeps the node's rules in line with snapshots.
pub struct Syncer<I: Iptables, C: Conntrack> {
    iptables: I,
    conntrack: C,
    config: RuleConfig,
    applied: Option<RuleSet>,
    applied_snapshot: Option<Snapshot>,
    last_full_sync: Option<Instant>,
}

impl<I: Iptables, C: Conntrack> Syncer<I, C> {
    /// A syncer whose first sync is a full one.
    pub fn new(iptables: I, conntrack: C, config: RuleConfig) -> Self {
        Syncer {
            iptables,
            conntrack,
            config,
            applied: None,
            applied_snapshot: None,
            last_full_sync: None,
        }
    }

    /// The iptables runner (tests inspect their fake through it).
    pub fn iptables(&mut self) -> &mut I {
        &mut self.iptables
    }

    /// The conntrack runner.
    pub fn conntrack(&mut self) -> &mut C {
        &mut self.conntrack
    }

    /// Makes the next sync a full one.
    pub fn force_full_sync(&mut self) {
        self.applied = None;
    }

    /// Brings the rules to `snapshot`. On failure the next sync is a full one.
    pub fn sync(&mut self, snapshot: &Snapshot) -> Result<SyncReport, Error> {
        let desired = generate(snapshot, &self.config);
        let full = self.applied.is_none()
            || self
                .last_full_sync
                .is_none_or(|t| t.elapsed() >= FULL_SYNC_PERIOD);
        let result = self.apply(&desired, full);
        let batch_stats = match result {
            Ok(stats) => stats,
            Err(e) => {
                self.applied = None;
                return Err(e);
            }
        };
        if full {
            self.last_full_sync = Some(Instant::now());
        }
        let conntrack_flushed = stale_udp_flows(self.applied_snapshot.as_ref(), snapshot);
        for filter in &conntrack_flushed {
            if let Err(e) = self.conntrack.delete(filter) {
                tracing::warn!(error = %e, ?filter, "conntrack flush failed");
            }
        }
        let report = SyncReport {
            full,
            batch_stats,
            rules: Table::ALL
                .iter()
                .map(|t| (*t, desired.rule_count(*t)))
                .collect(),
            chains: Table::ALL
                .iter()
                .map(|t| (*t, desired.chain_count(*t)))
                .collect(),
            conntrack_flushed,
        };
        self.applied = Some(desired);
        self.applied_snapshot = Some(snapshot.clone());
        Ok(report)
    }

    fn apply(&mut self, desired: &RuleSet, full: bool) -> Result<BatchStats, Error> {
        let mut stale = BTreeMap::new();
        if full {
            for table in Table::ALL {
                let present = self.iptables.list_chains(table)?;
                let ours: Vec<String> = present
                    .into_iter()
                    .filter(|c| SERVICE_CHAIN_PREFIXES.iter().any(|p| c.starts_with(p)))
                    .collect();
                stale.insert(table, ours);
            }
        }
        let applied = if full { None } else { self.applied.as_ref() };
        let (batch, stats) = render_batch(desired, applied, &stale);
        if !batch.is_empty() {
            self.iptables.restore(&batch)?;
        }
        if full {
            for jump in jump_rules() {
                self.iptables
                    .ensure_rule(jump.table, jump.from, &jump.args)?;
            }
        }
        Ok(stats)
    }
}

/// The UDP flows to flush after going from `old` to `new` (upstream's conntrack cleanup):
/// flows of endpoints that are no longer reachable, and every flow to a service port that had
/// no endpoints before (its flows were rejected and would stick).
pub fn stale_udp_flows(old: Option<&Snapshot>, new: &Snapshot) -> Vec<ConntrackFilter> {
    let Some(old) = old else {
        return Vec::new();
    };
    let mut out = BTreeSet::new();
    for (name, (port, endpoints)) in &old.services {
        if port.protocol != Protocol::Udp {
            continue;
        }
        let before: BTreeSet<Ipv4Addr> = reachable_endpoints(port, endpoints)
            .iter()
            .map(|e| e.ip)
            .collect();
        let after: BTreeSet<Ipv4Addr> = new
            .services
            .get(name)
            .map(|(p, e)| reachable_endpoints(p, e).iter().map(|e| e.ip).collect())
            .unwrap_or_default();
        for endpoint in before.difference(&after) {
            out.insert(ConntrackFilter::ServiceEndpoint {
                service: port.cluster_ip,
                endpoint: *endpoint,
            });
            if let Some(node_port) = port.node_port {
                out.insert(ConntrackFilter::NodePortEndpoint {
                    node_port,
                    endpoint: *endpoint,
                });
            }
        }
    }
    for (name, (port, endpoints)) in &new.services {
        if port.protocol != Protocol::Udp || reachable_endpoints(port, endpoints).is_empty() {
            continue;
        }
        let had_none = old
            .services
            .get(name)
            .is_none_or(|(p, e)| reachable_endpoints(p, e).is_empty());
        if had_none {
            out.insert(ConntrackFilter::ServiceIp(port.cluster_ip));
            if let Some(node_port) = port.node_port {
                out.insert(ConntrackFilter::NodePort(node_port));
            }
        }
    }
    out.into_iter().collect()
}

/// Removes every jump rule and every chain of the proxy (`mini-proxy --cleanup`); returns the
/// chains deleted.
pub fn cleanup(iptables: &mut impl Iptables) -> Result<Vec<String>, Error> {
    for jump in jump_rules() {
        // A rule may have been added more than once; delete until it is gone (bounded).
        for _ in 0..16 {
            if !iptables.delete_rule(jump.table, jump.from, &jump.args)? {
                break;
            }
        }
    }
    let mut deleted = Vec::new();
    let mut batch = String::new();
    for table in Table::ALL {
        let chains: Vec<String> = iptables
            .list_chains(table)?
            .into_iter()
            .filter(|c| is_own_chain(c))
            .collect();
        if chains.is_empty() {
            continue;
        }
        batch.push_str(&format!("*{}\n", table.as_str()));
        for chain in &chains {
            batch.push_str(&format!(":{chain} - [0:0]\n"));
        }
        for chain in &chains {
            batch.push_str(&format!("-X {chain}\n"));
        }
        batch.push_str("COMMIT\n");
        deleted.extend(
            chains
                .into_iter()
                .map(|c| format!("{}/{c}", table.as_str())),
        );
    }
    if !batch.is_empty() {
        iptables.restore(&batch)?;
    }
    Ok(deleted)
}
