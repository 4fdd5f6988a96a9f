//! `mini-cluster up|down|status`: the local-cluster launcher on its own (minictl embeds the same
//! commands as `minictl cluster ...`).

use clap::Parser;

/// Start, stop and inspect local mini-clusters of network-namespace nodes.
#[derive(Debug, Parser)]
#[command(name = "mini-cluster", version)]
struct Cli {
    #[command(subcommand)]
    command: localcluster::ClusterCommand,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(err) = localcluster::run(cli.command).await {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
