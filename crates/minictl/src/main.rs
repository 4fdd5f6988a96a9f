//! minictl: the kubectl-style command line of mini-cluster (parses flags, connects, runs a verb
//! from the library and reports errors the way kubectl does, exit code 1).

use std::io::IsTerminal;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};
use minictl::get::GetOptions;
use minictl::rollout::ExposeOptions;
use minictl::verbs::{self, DeleteOptions, DryRun};
use minictl::{Cluster, ConnectOptions, Error};

#[derive(Parser, Debug)]
#[command(
    name = "minictl",
    version,
    about = "minictl controls a mini-cluster (kubectl's verbs)"
)]
struct Cli {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true)]
    kubeconfig: Option<std::path::PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    context: Option<String>,
    /// The namespace (default: the context's, else "default").
    #[arg(short = 'n', long, global = true)]
    namespace: Option<String>,
    /// The API server's address, overriding the kubeconfig.
    #[arg(short = 's', long, global = true)]
    server: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug, Default)]
struct FileArgs {
    /// Manifest files or directories; `-` reads stdin.
    #[arg(short = 'f', long = "filename")]
    files: Vec<String>,
    /// Process directories recursively.
    #[arg(short = 'R', long)]
    recursive: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Display one or many resources.
    Get {
        args: Vec<String>,
        #[arg(short = 'o', long)]
        output: Option<String>,
        #[arg(short = 'l', long)]
        selector: Option<String>,
        #[arg(long)]
        field_selector: Option<String>,
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        #[arg(long)]
        show_labels: bool,
        /// After listing, watch for changes (new rows are printed as they come).
        #[arg(short = 'w', long)]
        watch: bool,
    },
    /// Show details of a resource or group of resources.
    Describe {
        args: Vec<String>,
        #[arg(short = 'l', long)]
        selector: Option<String>,
    },
    /// Apply a configuration to a resource by file name or stdin.
    Apply {
        #[command(flatten)]
        files: FileArgs,
        #[arg(long, default_value = "none", num_args = 0..=1, default_missing_value = "client")]
        dry_run: String,
    },
    /// Create a resource from a file or from a generator.
    Create {
        #[command(flatten)]
        files: FileArgs,
        #[arg(long, global = true, default_value = "none", num_args = 0..=1, default_missing_value = "client")]
        dry_run: String,
        #[arg(short = 'o', long, global = true)]
        output: Option<String>,
        #[command(subcommand)]
        what: Option<CreateWhat>,
    },
    /// Delete resources by names, files, label selector or --all.
    Delete {
        args: Vec<String>,
        #[command(flatten)]
        files: FileArgs,
        #[arg(short = 'l', long)]
        selector: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        grace_period: i64,
        /// Immediate deletion (with --grace-period=0).
        #[arg(long)]
        force: bool,
        #[arg(long, default_value = "background")]
        cascade: String,
        #[arg(long, default_value = "true", action = clap::ArgAction::Set)]
        wait: bool,
        #[arg(long)]
        ignore_not_found: bool,
        #[arg(long, value_parser = daemon_duration)]
        timeout: Option<Duration>,
    },
    /// Print the logs of a container in a pod.
    Logs {
        pod: String,
        #[arg(short = 'c', long)]
        container: Option<String>,
        #[arg(short = 'f', long)]
        follow: bool,
        #[arg(short = 'p', long)]
        previous: bool,
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        tail: i64,
        #[arg(long, value_parser = daemon_duration)]
        since: Option<Duration>,
        #[arg(long)]
        timestamps: bool,
    },
    /// Execute a command in a container.
    Exec {
        pod: String,
        #[arg(short = 'c', long)]
        container: Option<String>,
        #[arg(short = 'i', long)]
        stdin: bool,
        #[arg(short = 't', long)]
        tty: bool,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Set a new size for a deployment, replica set or stateful set.
    Scale {
        args: Vec<String>,
        #[arg(long)]
        replicas: i64,
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        current_replicas: i64,
    },
    /// Update the labels on a resource.
    Label {
        args: Vec<String>,
        #[arg(long)]
        overwrite: bool,
    },
    /// Update the annotations on a resource.
    Annotate {
        args: Vec<String>,
        #[arg(long)]
        overwrite: bool,
    },
    /// Set specific features on objects.
    Set {
        #[command(subcommand)]
        what: SetWhat,
    },
    /// Edit a resource in $EDITOR.
    Edit { args: Vec<String> },
    /// Print the supported API resources on the server.
    ApiResources {
        #[arg(long, num_args = 0..=1, default_missing_value = "true")]
        namespaced: Option<bool>,
        #[arg(short = 'o', long)]
        output: Option<String>,
    },
    /// Print the client and server version information.
    Version {
        #[arg(long)]
        client: bool,
    },
    /// Display addresses of the control plane and cluster services.
    ClusterInfo,
    /// Output shell completion code for bash, zsh or fish.
    Completion { shell: clap_complete::Shell },
    /// Start, stop and inspect a local cluster (up, down, status).
    #[command(disable_help_flag = true)]
    Cluster {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Create a Deployment with app=NAME labels.
    Deploy {
        name: String,
        #[arg(long)]
        image: String,
        #[arg(long, default_value_t = 1)]
        replicas: i32,
        #[arg(long)]
        port: Option<i32>,
        #[arg(long)]
        env: Vec<String>,
    },
    /// Manage the rollout of a deployment.
    Rollout {
        #[command(subcommand)]
        what: RolloutWhat,
    },
    /// Expose a deployment, replica set, pod or service as a new Service.
    Expose {
        args: Vec<String>,
        #[arg(long)]
        port: Option<String>,
        #[arg(long)]
        target_port: Option<String>,
        #[arg(long = "type")]
        service_type: Option<String>,
        #[arg(long)]
        node_port: Option<i64>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        protocol: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum CreateWhat {
    /// Create a deployment with the specified name.
    Deployment {
        name: String,
        #[arg(long, required = true)]
        image: Vec<String>,
        #[arg(short = 'r', long, default_value_t = 1)]
        replicas: i32,
        #[arg(long)]
        port: Option<i32>,
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Create a service.
    Service {
        #[command(subcommand)]
        what: ServiceWhat,
    },
    /// Create a config map from literals or files.
    Configmap {
        name: String,
        #[arg(long)]
        from_literal: Vec<String>,
        #[arg(long)]
        from_file: Vec<String>,
    },
    /// Create a secret.
    Secret {
        #[command(subcommand)]
        what: SecretWhat,
    },
    /// Create a namespace.
    Namespace { name: String },
    /// Create a job.
    Job {
        name: String,
        #[arg(long)]
        image: String,
        #[arg(last = true)]
        command: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
enum ServiceWhat {
    /// A ClusterIP service.
    Clusterip {
        name: String,
        #[arg(long)]
        tcp: Vec<String>,
    },
    /// A NodePort service.
    Nodeport {
        name: String,
        #[arg(long)]
        tcp: Vec<String>,
        #[arg(long)]
        node_port: Option<i32>,
    },
}

#[derive(Subcommand, Debug)]
enum SecretWhat {
    /// A secret from literals.
    Generic {
        name: String,
        #[arg(long)]
        from_literal: Vec<String>,
        #[arg(long = "type")]
        secret_type: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum SetWhat {
    /// Update the images of a pod template.
    Image { args: Vec<String> },
}

#[derive(Subcommand, Debug)]
enum RolloutWhat {
    /// Show the status of the rollout.
    Status {
        args: Vec<String>,
        #[arg(short = 'w', long, default_value = "true", action = clap::ArgAction::Set)]
        watch: bool,
        #[arg(long, value_parser = daemon_duration)]
        timeout: Option<Duration>,
    },
    /// View rollout history.
    History {
        args: Vec<String>,
        #[arg(long, default_value_t = 0)]
        revision: i64,
    },
    /// Undo a previous rollout.
    Undo {
        args: Vec<String>,
        #[arg(long, default_value_t = 0)]
        to_revision: i64,
    },
    /// Mark the resource as paused.
    Pause { args: Vec<String> },
    /// Resume a paused resource.
    Resume { args: Vec<String> },
    /// Restart a resource.
    Restart { args: Vec<String> },
}

/// `30s`, `5m`, `1h` (kubectl's duration flags).
fn daemon_duration(s: &str) -> Result<Duration, String> {
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "ms" => return Ok(Duration::from_millis(n)),
        _ => return Err(format!("invalid duration {s:?}")),
    };
    Ok(Duration::from_secs(secs))
}

/// Prints errors kubectl-style; true when there were any.
fn report(errors: Vec<Error>) -> bool {
    for e in &errors {
        eprintln!("{e}");
    }
    !errors.is_empty()
}

async fn run(cli: Cli) -> Result<bool, Error> {
    let connect = ConnectOptions {
        kubeconfig: cli.kubeconfig.clone(),
        context: cli.context.clone(),
        namespace: cli.namespace.clone(),
        server: cli.server.clone(),
    };
    match cli.command {
        Command::Completion { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "minictl",
                &mut std::io::stdout(),
            );
            return Ok(false);
        }
        Command::Version { client: true } => {
            verbs::version(None, true).await?;
            return Ok(false);
        }
        _ => {}
    }
    let cluster = Cluster::connect(&connect).await?;
    let c = &cluster;
    let failed = match cli.command {
        Command::Get {
            args,
            output,
            selector,
            field_selector,
            all_namespaces,
            show_labels,
            watch,
        } => {
            let opts = GetOptions {
                output,
                selector,
                field_selector,
                all_namespaces,
                show_labels,
            };
            if watch {
                minictl::get::watch(c, &args, &opts).await?;
                return Ok(false);
            }
            report(minictl::get::run(c, &args, &opts).await?)
        }
        Command::Describe { args, selector } => {
            report(minictl::describe::run(c, &args, selector.as_deref()).await?)
        }
        Command::Apply { files, dry_run } => {
            if files.files.is_empty() {
                return Err(Error::Usage("must specify one of -f and -k".into()));
            }
            report(verbs::apply(c, &files.files, files.recursive, DryRun::parse(&dry_run)?).await?)
        }
        Command::Create {
            files,
            dry_run,
            output,
            what,
        } => {
            let dry = DryRun::parse(&dry_run)?;
            let object = match what {
                None => {
                    if files.files.is_empty() {
                        return Err(Error::Usage("must specify one of -f and -k".into()));
                    }
                    return Ok(report(
                        verbs::create_from_files(c, &files.files, files.recursive, dry).await?,
                    ));
                }
                Some(CreateWhat::Deployment {
                    name,
                    image,
                    replicas,
                    port,
                    command,
                }) => verbs::deployment_manifest(&name, &image, replicas, port, &[], &command),
                Some(CreateWhat::Service {
                    what: ServiceWhat::Clusterip { name, tcp },
                }) => verbs::service_manifest(&name, "ClusterIP", &tcp, None)?,
                Some(CreateWhat::Service {
                    what:
                        ServiceWhat::Nodeport {
                            name,
                            tcp,
                            node_port,
                        },
                }) => verbs::service_manifest(&name, "NodePort", &tcp, node_port)?,
                Some(CreateWhat::Configmap {
                    name,
                    from_literal,
                    from_file,
                }) => verbs::configmap_manifest(&name, &from_literal, &from_file)?,
                Some(CreateWhat::Secret {
                    what:
                        SecretWhat::Generic {
                            name,
                            from_literal,
                            secret_type,
                        },
                }) => verbs::secret_manifest(&name, &from_literal, secret_type.as_deref())?,
                Some(CreateWhat::Namespace { name }) => serde_json::json!({
                    "kind": "Namespace", "apiVersion": "v1",
                    "metadata": {"name": name, "creationTimestamp": null}, "spec": {}, "status": {}
                }),
                Some(CreateWhat::Job {
                    name,
                    image,
                    command,
                }) => verbs::job_manifest(&name, &image, &command),
            };
            verbs::create_object(c, object, dry, output.as_deref()).await?;
            false
        }
        Command::Delete {
            args,
            files,
            selector,
            all,
            grace_period,
            force,
            cascade,
            wait,
            ignore_not_found,
            timeout,
        } => {
            let opts = DeleteOptions {
                files: files.files,
                recursive: files.recursive,
                selector,
                all,
                grace_period: if force && grace_period < 0 {
                    Some(0)
                } else {
                    Some(grace_period)
                },
                cascade,
                wait,
                ignore_not_found,
                timeout,
            };
            report(verbs::delete(c, &args, &opts).await?)
        }
        Command::Logs {
            pod,
            container,
            follow,
            previous,
            tail,
            since,
            timestamps,
        } => {
            let pod = pod
                .strip_prefix("pod/")
                .or_else(|| pod.strip_prefix("pods/"))
                .unwrap_or(&pod)
                .to_string();
            let path = verbs::logs_path(
                &c.namespace,
                &pod,
                container.as_deref(),
                follow,
                previous,
                Some(tail),
                since.map(|d| d.as_secs()),
                timestamps,
            );
            verbs::logs(c, &pod, &path).await?;
            false
        }
        Command::Exec {
            pod,
            container,
            stdin,
            tty,
            command,
        } => {
            let pod = pod.strip_prefix("pod/").unwrap_or(&pod).to_string();
            let code = verbs::exec(c, &pod, container.as_deref(), stdin, tty, &command).await?;
            if code != 0 {
                // kubectl exits with the remote command's status
                std::process::exit(code);
            }
            false
        }
        Command::Scale {
            args,
            replicas,
            current_replicas,
        } => {
            verbs::scale(
                c,
                &args,
                replicas,
                (current_replicas >= 0).then_some(current_replicas),
            )
            .await?;
            false
        }
        Command::Label { args, overwrite } => {
            verbs::label_or_annotate(c, "labels", &args, overwrite).await?;
            false
        }
        Command::Annotate { args, overwrite } => {
            verbs::label_or_annotate(c, "annotations", &args, overwrite).await?;
            false
        }
        Command::Set {
            what: SetWhat::Image { args },
        } => {
            verbs::set_image(c, &args).await?;
            false
        }
        Command::Edit { args } => {
            verbs::edit(c, &args).await?;
            false
        }
        Command::ApiResources { namespaced, output } => {
            verbs::api_resources(c, namespaced, output.as_deref() == Some("name")).await?;
            false
        }
        Command::Version { client } => {
            verbs::version(Some(c), client).await?;
            false
        }
        Command::ClusterInfo => {
            verbs::cluster_info(c, std::io::stdout().is_terminal()).await?;
            false
        }
        Command::Deploy {
            name,
            image,
            replicas,
            port,
            env,
        } => {
            let env = verbs::key_values(&env)?;
            let object = verbs::deployment_manifest(&name, &[image], replicas, port, &env, &[]);
            verbs::create_object(c, object, DryRun::None, None).await?;
            false
        }
        Command::Rollout { what } => {
            match what {
                RolloutWhat::Status {
                    args,
                    watch,
                    timeout,
                } => minictl::rollout::status(c, &args, timeout, watch).await?,
                RolloutWhat::History { args, revision } => {
                    minictl::rollout::history(c, &args, Some(revision)).await?
                }
                RolloutWhat::Undo { args, to_revision } => {
                    minictl::rollout::undo(c, &args, to_revision).await?
                }
                RolloutWhat::Pause { args } => minictl::rollout::set_paused(c, &args, true).await?,
                RolloutWhat::Resume { args } => {
                    minictl::rollout::set_paused(c, &args, false).await?
                }
                RolloutWhat::Restart { args } => minictl::rollout::restart(c, &args).await?,
            }
            false
        }
        Command::Expose {
            args,
            port,
            target_port,
            service_type,
            node_port,
            name,
            protocol,
        } => {
            let opts = ExposeOptions {
                port,
                target_port,
                service_type,
                node_port,
                name,
                protocol,
            };
            minictl::rollout::expose(c, &args, &opts).await?;
            false
        }
        Command::Completion { .. } => false,
        Command::Cluster { .. } => unreachable!("handled in main before connecting"),
    };
    Ok(failed)
}

/// `minictl cluster ...`, the local-cluster launcher (crates/localcluster). Parsed on its own
/// because `cluster up` has its own `--kubeconfig` (where to write the new context); a global
/// `--kubeconfig` before `cluster` means the same.
#[derive(Parser, Debug)]
#[command(
    name = "minictl cluster",
    about = "Start, stop and inspect a local cluster of network-namespace nodes"
)]
struct ClusterCli {
    #[command(subcommand)]
    command: localcluster::ClusterCommand,
}

async fn run_cluster(global_kubeconfig: Option<std::path::PathBuf>, args: &[String]) -> i32 {
    let argv = std::iter::once("minictl cluster".to_string()).chain(args.iter().cloned());
    let mut cli = match ClusterCli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    if let localcluster::ClusterCommand::Up { kubeconfig, .. } = &mut cli.command {
        if kubeconfig.is_none() {
            *kubeconfig = global_kubeconfig;
        }
    }
    match localcluster::run(cli.command).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = Cli::parse();
    if let Command::Cluster { args } = &cli.command {
        std::process::exit(run_cluster(cli.kubeconfig.clone(), args).await);
    }
    match run(cli).await {
        Ok(false) => {}
        Ok(true) => std::process::exit(1),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
