//! bench-apiserver: starts mini-apiserver on the embedded store and on a real etcd (started
//! here), plain and secured (TLS, x509 authentication, Node,RBAC), measures creates, gets,
//! lists and watch delivery on each, next to raw etcd puts, and prints a Markdown table, the
//! secured ÷ plain ratios and the aims.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use bench::procs::{find_apiserver, ApiServerProcess, Security, StoreArg};
use bench::{markdown, run_backend, secure, BackendResult, Params};
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
    /// How the apiserver is secured: plain (HTTP, AlwaysAllow) and/or tls (its own PKI, x509
    /// authentication, Node,RBAC; measured as an ordinary user). Both: ratios and aims too.
    #[arg(long, value_delimiter = ',', default_value = "plain,tls")]
    modes: Vec<String>,
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
    /// Sequential GETs of existing pods.
    #[arg(long)]
    gets: Option<usize>,
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
    if let Some(v) = f.gets {
        p.gets = v.max(1);
    }
    p
}

/// Measures one backend secured as `security`, on a fresh apiserver (and a fresh etcd).
async fn measure(
    binary: &std::path::Path,
    backend: &str,
    security: Security,
    p: &Params,
) -> anyhow::Result<BackendResult> {
    let column = match security {
        Security::Plain => backend.to_string(),
        Security::Tls => format!("{backend} {}", security.name()),
    };
    match backend {
        "embedded" => {
            let server = ApiServerProcess::start_with(binary, &StoreArg::Embedded, security)?;
            eprintln!(
                "[{column}] apiserver at {} ({})",
                server.base(),
                server.dir().display()
            );
            let client = secure::prepare(&server).await?;
            run_backend(&column, &client, p, None).await
        }
        "etcd" => {
            let Some(etcd) = testkit::etcd::EtcdServer::start() else {
                bail!(
                    "etcd is needed for the etcd backend ({})",
                    testkit::etcd::ETCD
                );
            };
            let endpoint = etcd.endpoint().to_string();
            let server =
                ApiServerProcess::start_with(binary, &StoreArg::Etcd(endpoint.clone()), security)
                    .context("starting mini-apiserver on etcd")?;
            eprintln!(
                "[{column}] apiserver at {} on etcd {endpoint}",
                server.base()
            );
            let client = secure::prepare(&server).await?;
            // Raw etcd puts once per backend, next to the plain run.
            let raw = (security == Security::Plain).then_some(endpoint.as_str());
            let r = run_backend(&column, &client, p, raw).await;
            drop(server);
            drop(etcd);
            r
        }
        other => bail!("unknown backend {other:?}: want embedded or etcd"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    let p = params(&flags);
    let mut modes = Vec::new();
    for m in &flags.modes {
        modes.push(match m.as_str() {
            "plain" => Security::Plain,
            "tls" => Security::Tls,
            other => bail!("unknown mode {other:?}: want plain or tls"),
        });
    }
    let binary = find_apiserver(flags.apiserver.as_deref())?;
    eprintln!("apiserver: {}", binary.display());
    let mut results = Vec::new();
    let mut comparisons = Vec::new();
    for backend in &flags.backends {
        let mut plain = None;
        let mut secured = None;
        for &security in &modes {
            let r = measure(&binary, backend, security, &p).await?;
            match security {
                Security::Plain => plain = Some(r.clone()),
                Security::Tls => secured = Some(r.clone()),
            }
            results.push(r);
        }
        if let (Some(pl), Some(s)) = (plain, secured) {
            comparisons.push(secure::comparison(backend, &pl, &s));
        }
    }
    println!("{}", markdown(&results, &p));
    for c in comparisons {
        println!("{c}");
    }
    Ok(())
}
