//! mini-scheduler: places unscheduled pods on nodes, behind a leader election.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use daemon::{CommonArgs, LeaderArgs};
use scheduler::scheduler::{Config, Scheduler};

#[derive(Parser, Debug)]
#[command(name = "mini-scheduler", about = "Schedules pods onto nodes")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    leader: LeaderArgs,
    /// Address of /healthz and /metrics.
    #[arg(long, default_value = "127.0.0.1")]
    bind_address: std::net::IpAddr,
    /// Port of /healthz and /metrics (0: any free port).
    #[arg(long, default_value_t = 10259)]
    secure_port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    daemon::init_tracing(args.common.verbosity);
    let client = daemon::client_from(args.common.kubeconfig.as_deref())
        .await
        .context("building the apiserver client")?;
    let (addr, _srv) = daemon::serve::serve(SocketAddr::new(args.bind_address, args.secure_port))
        .await
        .context("serving /healthz and /metrics")?;
    tracing::info!(%addr, "serving /healthz and /metrics");
    let scheduler = Scheduler::new(client.clone(), Config::default());
    daemon::run_elected(&client, &args.leader, "kube-scheduler", scheduler.run())
        .await
        .map_err(anyhow::Error::msg)
}
