//! bench-apiserver: starts mini-apiserver on the embedded store and on a real etcd (started
//! here), measures creates, gets, lists and watch delivery on both, next to raw etcd puts, and
//! prints a Markdown table.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use bench::procs::{find_apiserver, ApiServerProcess, StoreArg};
use bench::{markdown, run_backend, ApiClient, Params};
use clap::Parser;

/// Benchmark of the apiserver on both stores, against raw etcd.
#[derive(Debug, Parser)]
#[command(name = "bench-apiserver", about)]
struct Flags {
    /// Small counts: a smoke test of a few seconds.
    #[arg(long)]
    quick: bool,
    /// The mini-apiserver binary (default: next to this binary, built if missing).
    #[arg(long)]
    apiserver: Option<PathBuf>,
    /// Backends to measure.
    #[arg(long, value_delimiter = ',', default_value = "embedded,etcd")]
    backends: Vec<String>,
    /// Concurrent clients for the N-client creates and puts.
    #[arg(long)]
    concurrency: Option<usize>,
    /// Concurrent watchers.
    #[arg(long)]
    watchers: Option<usize>,
    /// Creates observed by the watchers.
    #[arg(long)]
    watch_events: Option<usize>,
    /// Milliseconds between the creates observed by the watchers.
    #[arg(long)]
    watch_interval_ms: Option<u64>,
    /// Pods created by one client (the small list).
    #[arg(long)]
    seq_creates: Option<usize>,
    /// Pods created by N clients (the large list).
    #[arg(long)]
    conc_creates: Option<usize>,
}

fn params(f: &Flags) -> Params {
    let mut p = if f.quick {
        Params::quick()
    } else {
        Params::full()
    };
    if let Some(v) = f.concurrency {
        p.concurrency = v.max(1);
    }
    if let Some(v) = f.watchers {
        p.watchers = v;
    }
    if let Some(v) = f.watch_events {
        p.watch_events = v;
    }
    if let Some(v) = f.watch_interval_ms {
        p.watch_interval = Duration::from_millis(v.max(1));
    }
    if let Some(v) = f.seq_creates {
        p.seq_creates = v.max(1);
    }
    if let Some(v) = f.conc_creates {
        p.conc_creates = v.max(1);
    }
    p
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    let p = params(&flags);
    let binary = find_apiserver(flags.apiserver.as_deref())?;
    eprintln!("apiserver: {}", binary.display());
    let mut results = Vec::new();
    for backend in &flags.backends {
        match backend.as_str() {
            "embedded" => {
                let server = ApiServerProcess::start(&binary, &StoreArg::Embedded)?;
                eprintln!(
                    "[embedded] apiserver at {} ({})",
                    server.base(),
                    server.dir().display()
                );
                let client = ApiClient::new(server.base());
                results.push(run_backend("embedded", &client, &p, None).await?);
            }
            "etcd" => {
                let Some(etcd) = testkit::etcd::EtcdServer::start() else {
                    bail!(
                        "etcd is needed for the etcd backend ({})",
                        testkit::etcd::ETCD
                    );
                };
                let endpoint = etcd.endpoint().to_string();
                let server = ApiServerProcess::start(&binary, &StoreArg::Etcd(endpoint.clone()))
                    .context("starting mini-apiserver on etcd")?;
                eprintln!("[etcd] apiserver at {} on etcd {endpoint}", server.base());
                let client = ApiClient::new(server.base());
                results.push(run_backend("etcd", &client, &p, Some(&endpoint)).await?);
                drop(server);
                drop(etcd);
            }
            other => bail!("unknown backend {other:?}: want embedded or etcd"),
        }
    }
    println!("{}", markdown(&results, &p));
    Ok(())
}
