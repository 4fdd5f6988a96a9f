//! proxy-bench: mini-proxy sync times for 1,000 / 5,000 / 10,000 services × 5 endpoints and a
//! one-endpoint change at 10,000 services, each against the bare `iptables-restore` time of the
//! same rule text (the physical floor), inside throwaway network namespaces. Run as root:
//! `cargo run --release -p proxy --bin proxy-bench`.

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use proxy::iptables::{Exec, Iptables};
use proxy::model::{Endpoint, Protocol, ServicePort, ServicePortName, Snapshot};
use proxy::rules::{generate, render_batch, RuleConfig};
use proxy::syncer::Syncer;

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
    for services in [1_000, 5_000, 10_000] {
        let snap = snapshot(services, 5);
        // Floor: the same full batch text fed to iptables-restore directly.
        let floor_ns = Namespace::new(&format!("floor{services}"))?;
        let (batch, _) = render_batch(&generate(&snap, &config()), None, &Default::default());
        let mut floor = Exec::in_netns(&floor_ns.0);
        let started = Instant::now();
        floor.restore(&batch).context("bare restore")?;
        let floor_full = started.elapsed();

        let proxy_ns = Namespace::new(&format!("proxy{services}"))?;
        let mut syncer = Syncer::new(
            Exec::in_netns(&proxy_ns.0),
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

        if services == 10_000 {
            let mut proxy_times = Vec::new();
            let mut floor_times = Vec::new();
            let mut current = snap.clone();
            for round in 0..5 {
                let mut next = current.clone();
                let (_, eps) = next.services.values_mut().nth(4_321).expect("service");
                eps[0] = endpoint(20_000 + round, 0);
                let (partial, _) = render_batch(
                    &generate(&next, &config()),
                    Some(&generate(&current, &config())),
                    &Default::default(),
                );
                let started = Instant::now();
                let report = syncer.sync(&next).context("partial sync")?;
                proxy_times.push(started.elapsed());
                ensure!(!report.full, "one-endpoint change was a full sync");
                let started = Instant::now();
                floor.restore(&partial).context("bare partial restore")?;
                floor_times.push(started.elapsed());
                current = next;
            }
            let (p, f) = (median(proxy_times), median(floor_times));
            println!(
                "| {services} × 5 | one-endpoint change (median of 5) | {:.1} | {:.1} | {:.2} |",
                ms(p),
                ms(f),
                p.as_secs_f64() / f.as_secs_f64()
            );
        }
    }
    Ok(())
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
