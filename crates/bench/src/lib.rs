//! Benchmarks of mini-cluster. `bench-apiserver` starts real apiservers (embedded store and
//! etcd) and measures creates, gets, lists and watch delivery, next to raw etcd puts, plain and
//! secured (TLS, authentication, RBAC as an ordinary user); this library holds the
//! measurements so that a smoke test can run them in quick mode.

pub mod client;
pub mod procs;
pub mod scenarios;
pub mod secure;
pub mod stats;

pub use client::ApiClient;
pub use scenarios::{create_namespaces, run_backend, BackendResult, Params};

use std::fmt::Write;

use stats::Summary;

fn lat(s: &Summary) -> String {
    format!("{:.2} / {:.2} ms", s.p50_ms, s.p99_ms)
}

/// A cell about raw etcd, or a dash for a backend without it.
fn raw(r: &BackendResult, f: impl Fn(&scenarios::RawEtcd, &BackendResult) -> String) -> String {
    r.raw_etcd.as_ref().map(|e| f(e, r)).unwrap_or("–".into())
}

/// The results as a Markdown table (one column per backend) followed by the aims.
pub fn markdown(results: &[BackendResult], p: &Params) -> String {
    let mut out = String::new();
    let mut row = |name: String, cell: &dyn Fn(&BackendResult) -> String| {
        let cells: Vec<String> = results.iter().map(cell).collect();
        let _ = writeln!(out, "| {name} | {} |", cells.join(" | "));
    };
    let header: Vec<String> = results.iter().map(|r| r.backend.clone()).collect();
    let mut table = format!("| measurement | {} |\n", header.join(" | "));
    let _ = writeln!(table, "|---|{}", "---:|".repeat(results.len()));
    let n = p.concurrency;
    row(
        format!("create pod, 1 client ({} pods): pods/s", p.seq_creates),
        &|r| format!("{:.0}", r.create_seq.per_second()),
    );
    row("create pod, 1 client: latency p50 / p99".into(), &|r| {
        lat(&r.create_seq.latency)
    });
    row(
        format!("create pod, {n} clients ({} pods): pods/s", p.conc_creates),
        &|r| format!("{:.0}", r.create_conc.per_second()),
    );
    row(
        format!("create pod, {n} clients: latency p50 / p99"),
        &|r| lat(&r.create_conc.latency),
    );
    row(
        format!("get pod, 1 client ({} gets): latency p50 / p99", p.gets),
        &|r| lat(&r.get),
    );
    let list_rows = results.first().map(|r| r.lists.len()).unwrap_or(0);
    for i in 0..list_rows {
        let l = &results[0].lists[i];
        let what = if l.selector {
            format!("list {} pods, labelSelector ({} match)", l.pods, l.items)
        } else {
            format!("list {} pods (full)", l.pods)
        };
        row(format!("{what}: latency p50 / p99"), &|r| {
            r.lists.get(i).map(|l| lat(&l.latency)).unwrap_or_default()
        });
    }
    let w = format!(
        "watch delivery, {} watchers × {} creates",
        p.watchers, p.watch_events
    );
    row(format!("{w}: send → event p50 / p99 / max"), &|r| {
        let s = &r.watch.from_send;
        format!("{:.2} / {:.2} / {:.2} ms", s.p50_ms, s.p99_ms, s.max_ms)
    });
    row(format!("{w}: create ack → event p50 / p99"), &|r| {
        lat(&r.watch.from_ack)
    });
    row(format!("{w}: create latency p50 / p99"), &|r| {
        lat(&r.watch.create_latency)
    });
    row(format!("{w}: events delivered"), &|r| {
        format!(
            "{} / {}",
            r.watch.delivered,
            r.watch.watchers * r.watch.events
        )
    });
    if results.iter().any(|r| r.raw_etcd.is_some()) {
        row(
            format!("raw etcd put, 1 client ({} puts): puts/s", p.seq_creates),
            &|r| {
                raw(r, |e, _| {
                    format!(
                        "{:.0} ({} B values)",
                        e.sequential.per_second(),
                        e.value_bytes
                    )
                })
            },
        );
        row("raw etcd put, 1 client: latency p50 / p99".into(), &|r| {
            raw(r, |e, _| lat(&e.sequential.latency))
        });
        row(
            format!(
                "raw etcd put, {n} clients ({} puts): puts/s",
                p.conc_creates
            ),
            &|r| raw(r, |e, _| format!("{:.0}", e.concurrent.per_second())),
        );
        row(
            format!("raw etcd put, {n} clients: latency p50 / p99"),
            &|r| raw(r, |e, _| lat(&e.concurrent.latency)),
        );
        row("apiserver create ÷ raw etcd put, 1 client".into(), &|r| {
            raw(r, |e, r| {
                format!(
                    "{:.2}",
                    r.create_seq.per_second() / e.sequential.per_second()
                )
            })
        });
        row(
            format!("apiserver create ÷ raw etcd put, {n} clients"),
            &|r| {
                raw(r, |e, r| {
                    format!(
                        "{:.2}",
                        r.create_conc.per_second() / e.concurrent.per_second()
                    )
                })
            },
        );
    }
    table.push_str(&out);
    table.push('\n');
    for r in results {
        if let Some(e) = &r.raw_etcd {
            let ratio = r.create_seq.per_second() / e.sequential.per_second();
            let _ = writeln!(
                table,
                "- Aim: apiserver-on-{} create throughput ≥ 0.5 × raw etcd puts from one client: measured {ratio:.2} × ({:.0} vs {:.0} /s): **{}**",
                r.backend,
                r.create_seq.per_second(),
                e.sequential.per_second(),
                if ratio >= 0.5 { "met" } else { "missed" }
            );
        }
    }
    for r in results {
        let p99 = r.watch.from_send.p99_ms;
        let complete = r.watch.delivered == r.watch.watchers * r.watch.events;
        let _ = writeln!(
            table,
            "- Aim: watch delivery p99 < 10 ms with {} watchers ({}): measured {p99:.2} ms{}: **{}**",
            r.watch.watchers,
            r.backend,
            if complete { "" } else { ", some events missing" },
            if p99 < 10.0 && complete { "met" } else { "missed" }
        );
    }
    table
}
