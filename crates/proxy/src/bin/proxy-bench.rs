//! proxy-bench: mini-proxy sync times for 1,000 / 5,000 / 10,000 services × 5 endpoints and a
//! one-endpoint change at each size, each against the bare `iptables-restore` time of the
//! same rule text (the physical floor), inside throwaway network namespaces. The one-endpoint
//! change also reports the proxy's own share (the sync minus the time spent in iptables) and the
//! time to build the proxy's snapshot from 10,000 Service and EndpointSlice objects. Run as root:
//! `cargo run --release -p proxy --bin proxy-bench`; `PROXY_BENCH_SIZES=10000` runs one size.

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher::Event;
use proxy::iptables::{Exec, Iptables};
use proxy::model::{Endpoint, Protocol, ServicePort, ServicePortName, Snapshot};
use proxy::rules::{generate, jump_rules, render_batch, RuleConfig, Table};
use proxy::syncer::Syncer;
use proxy::tracker::ChangeTracker;
use proxy::Error;

/// The real iptables, with the time spent in it added up.
struct Timed {
    inner: Exec,
    spent: Duration,
}

impl Timed {
    fn timed<T>(&mut self, f: impl FnOnce(&mut Exec) -> T) -> T {
        let started = Instant::now();
        let out = f(&mut self.inner);
        self.spent += started.elapsed();
        out
    }
}

impl Iptables for Timed {
    fn restore(&mut self, batch: &str) -> Result<(), Error> {
        self.timed(|i| i.restore(batch))
    }
    fn list_chains(&mut self, table: Table) -> Result<Vec<String>, Error> {
        self.timed(|i| i.list_chains(table))
    }
    fn ensure_rule(&mut self, table: Table, chain: &str, args: &[String]) -> Result<(), Error> {
        self.timed(|i| i.ensure_rule(table, chain, args))
    }
    fn delete_rule(&mut self, table: Table, chain: &str, args: &[String]) -> Result<bool, Error> {
        self.timed(|i| i.delete_rule(table, chain, args))
    }
}

/// A network namespace deleted on drop.
struct Namespace(String);

impl Namespace {
    fn new(tag: &str) -> anyhow::Result<Namespace> {
        let name = format!("proxy-bench-{}-{tag}", std::process::id());
        let status = Command::new("ip").args(["netns", "add", &name]).status()?;
        ensure!(status.success(), "ip netns add {name} failed");
        Ok(Namespace(name))
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

fn endpoint(service: usize, i: usize) -> Endpoint {
    let n = service * 8 + i;
    Endpoint {
        ip: Ipv4Addr::new(10, 244, (n >> 8) as u8, (n & 0xff) as u8),
        port: 8080,
        ready: true,
        serving: true,
        terminating: false,
        local: false,
    }
}

fn snapshot(services: usize, endpoints: usize) -> Snapshot {
    let mut out = Snapshot::default();
    for s in 0..services {
        let name = ServicePortName {
            namespace: "bench".into(),
            name: format!("svc-{s}"),
            port: "http".into(),
        };
        let port = ServicePort {
            name: name.clone(),
            protocol: Protocol::Tcp,
            cluster_ip: Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 10)) + s as u32),
            port: 80,
            node_port: None,
            affinity_timeout_seconds: None,
            external_policy_local: false,
            internal_policy_local: false,
        };
        let eps = (0..endpoints).map(|i| endpoint(s, i)).collect();
        out.services.insert(name, (port, eps));
    }
    out
}

fn config() -> RuleConfig {
    RuleConfig {
        cluster_cidr: Some("10.244.0.0/16".parse().expect("cidr")),
        node_port_addresses: Vec::new(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    ensure!(nix_is_root(), "proxy-bench needs root (network namespaces)");
    println!("| services × endpoints | what | mini-proxy sync (ms) | bare iptables-restore (ms) | ratio |");
    println!("|---|---|---|---|---|");
    let sizes: Vec<usize> = match std::env::var("PROXY_BENCH_SIZES") {
        Ok(list) => list
            .split(',')
            .map(|s| s.trim().parse().context("PROXY_BENCH_SIZES"))
            .collect::<anyhow::Result<_>>()?,
        Err(_) => vec![1_000, 5_000, 10_000],
    };
    for services in sizes {
        let snap = snapshot(services, 5);
        // Floor: the same full batch text fed to iptables-restore directly.
        let floor_ns = Namespace::new(&format!("floor{services}"))?;
        let (batch, _) = render_batch(&generate(&snap, &config()), None, &Default::default());
        let mut floor = Exec::in_netns(&floor_ns.0);
        let started = Instant::now();
        floor.restore(&batch).context("bare restore")?;
        let floor_full = started.elapsed();
        // The proxy's jumps from the built-in chains, as the proxy's namespace has them: with
        // them, every commit makes the kernel validate the whole jump graph, which is most of
        // an incremental restore's cost.
        for jump in jump_rules() {
            floor.ensure_rule(jump.table, jump.from, &jump.args)?;
        }

        let proxy_ns = Namespace::new(&format!("proxy{services}"))?;
        let mut syncer = Syncer::new(
            Timed {
                inner: Exec::in_netns(&proxy_ns.0),
                spent: Duration::ZERO,
            },
            Exec::in_netns(&proxy_ns.0),
            config(),
        );
        let started = Instant::now();
        let report = syncer.sync(&snap).context("full sync")?;
        let full = started.elapsed();
        ensure!(report.full, "first sync was not full");
        println!(
            "| {services} × 5 | full sync ({} rules) | {:.1} | {:.1} | {:.2} |",
            report.rules.values().sum::<usize>(),
            ms(full),
            ms(floor_full),
            full.as_secs_f64() / floor_full.as_secs_f64()
        );

        {
            let mut proxy_times = Vec::new();
            let mut own_times = Vec::new();
            let mut floor_times = Vec::new();
            let mut current = snap.clone();
            for round in 0..5 {
                let mut next = current.clone();
                let (_, eps) = next
                    .services
                    .values_mut()
                    .nth(services * 4 / 10)
                    .expect("service");
                eps[0] = endpoint(20_000 + round, 0);
                let (partial, _) = render_batch(
                    &generate(&next, &config()),
                    Some(&generate(&current, &config())),
                    &Default::default(),
                );
                syncer.iptables().spent = Duration::ZERO;
                let started = Instant::now();
                let report = syncer.sync(&next).context("partial sync")?;
                let took = started.elapsed();
                proxy_times.push(took);
                own_times.push(took.saturating_sub(syncer.iptables().spent));
                ensure!(!report.full, "one-endpoint change was a full sync");
                let started = Instant::now();
                floor.restore(&partial).context("bare partial restore")?;
                floor_times.push(started.elapsed());
                eprintln!(
                    "round {round}: {:?}, sync {:.1} ms (iptables {:.1} ms), bare {:.1} ms for {} bytes",
                    report.batch_stats,
                    ms(took),
                    ms(syncer.iptables().spent),
                    ms(*floor_times.last().expect("just pushed")),
                    partial.len()
                );
                current = next;
            }
            let (p, f) = (median(proxy_times), median(floor_times));
            println!(
                "| {services} × 5 | one-endpoint change (median of 5) | {:.1} | {:.1} | {:.2} |",
                ms(p),
                ms(f),
                p.as_secs_f64() / f.as_secs_f64()
            );
            println!(
                "| {services} × 5 | one-endpoint change: the proxy's own work (sync minus iptables, median) | {:.1} | | |",
                ms(median(own_times))
            );
            let (svc_objects, slice_objects) = objects(&snap);
            let mut service_store = Writer::<Service>::default();
            let mut slice_store = Writer::<EndpointSlice>::default();
            let mut tracker = ChangeTracker::new("bench-node");
            for service in svc_objects {
                let event = Event::Apply(service);
                service_store.apply_watcher_event(&event);
                tracker.service_event(&event);
            }
            for slice in &slice_objects {
                let event = Event::Apply(slice.clone());
                slice_store.apply_watcher_event(&event);
                tracker.slice_event(&event);
            }
            let (service_reader, slice_reader) =
                (service_store.as_reader(), slice_store.as_reader());
            let started = Instant::now();
            let built = tracker.snapshot(&service_reader, &slice_reader);
            let first = started.elapsed();
            ensure!(built.services.len() == services, "snapshot lost services");
            drop(built);
            let mut updates = Vec::new();
            for round in 0..5 {
                let mut slice = slice_objects[services * 4 / 10].clone();
                slice.endpoints[0].addresses = vec![endpoint(30_000 + round, 0).ip.to_string()];
                let event = Event::Apply(slice);
                slice_store.apply_watcher_event(&event);
                let started = Instant::now();
                tracker.slice_event(&event);
                let snap = tracker.snapshot(&service_reader, &slice_reader);
                updates.push(started.elapsed());
                ensure!(snap.services.len() == services, "snapshot lost services");
            }
            println!(
                "| {services} × 5 | proxy snapshot from {services} Services + EndpointSlices, first build | {:.1} | | |",
                ms(first)
            );
            println!(
                "| {services} × 5 | proxy snapshot after one EndpointSlice change (median of 5) | {:.3} | | |",
                ms(median(updates))
            );
        }
    }
    Ok(())
}

/// The Service and EndpointSlice objects a snapshot was made of.
fn objects(snap: &Snapshot) -> (Vec<Service>, Vec<EndpointSlice>) {
    let mut services = Vec::new();
    let mut slices = Vec::new();
    for (port, endpoints) in snap.services.values() {
        let service: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": port.name.name, "namespace": port.name.namespace},
            "spec": {"clusterIP": port.cluster_ip.to_string(), "ports": [
                {"name": port.name.port, "port": port.port, "protocol": "TCP"}
            ]}
        }))
        .expect("service");
        let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": format!("{}-abcde", port.name.name),
                "namespace": port.name.namespace,
                "labels": {"kubernetes.io/service-name": port.name.name}
            },
            "addressType": "IPv4",
            "ports": [{"name": port.name.port, "port": 8080, "protocol": "TCP"}],
            "endpoints": endpoints.iter().map(|e| serde_json::json!({
                "addresses": [e.ip.to_string()],
                "conditions": {"ready": true},
                "nodeName": "other-node"
            })).collect::<Vec<_>>()
        }))
        .expect("slice");
        services.push(service);
        slices.push(slice);
    }
    (services, slices)
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}
