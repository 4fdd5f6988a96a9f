//! The commands the proxy runs on the node behind small traits: [`Iptables`] (restore batches,
//! jump rules, chain listing) and [`Conntrack`] (flushing UDP flows), with implementations that
//! exec the real tools, optionally inside a named network namespace (`ip netns exec`).

use std::ffi::OsString;
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::rules::Table;
use crate::Error;

/// Programs iptables. The proxy owns one; tests use a recording fake.
pub trait Iptables: Send {
    /// Applies `batch` with `iptables-restore --noflush` (one atomic transaction per table).
    fn restore(&mut self, batch: &str) -> Result<(), Error>;
    /// The names of the chains in `table`.
    fn list_chains(&mut self, table: Table) -> Result<Vec<String>, Error>;
    /// Adds the rule `args` at the top of `chain` unless it is there already.
    fn ensure_rule(&mut self, table: Table, chain: &str, args: &[String]) -> Result<(), Error>;
    /// Deletes the rule `args` from `chain`; Ok(false) when it was not there.
    fn delete_rule(&mut self, table: Table, chain: &str, args: &[String]) -> Result<bool, Error>;
}

/// What flows to delete from the conntrack table (all UDP).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConntrackFilter {
    /// Every flow to a service IP (the service got endpoints after having none).
    ServiceIp(Ipv4Addr),
    /// Every flow to a NodePort.
    NodePort(u16),
    /// Flows to a service IP translated to a removed endpoint.
    ServiceEndpoint {
        service: Ipv4Addr,
        endpoint: Ipv4Addr,
    },
    /// Flows to a NodePort translated to a removed endpoint.
    NodePortEndpoint { node_port: u16, endpoint: Ipv4Addr },
}

impl ConntrackFilter {
    /// The `conntrack` tool's arguments for deleting these flows.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = ["-D", "-p", "udp"].map(String::from).to_vec();
        match self {
            ConntrackFilter::ServiceIp(ip) => args.extend(["--orig-dst".into(), ip.to_string()]),
            ConntrackFilter::NodePort(port) => {
                args.extend(["--orig-port-dst".into(), port.to_string()])
            }
            ConntrackFilter::ServiceEndpoint { service, endpoint } => args.extend([
                "--orig-dst".into(),
                service.to_string(),
                "--dst-nat".into(),
                endpoint.to_string(),
            ]),
            ConntrackFilter::NodePortEndpoint {
                node_port,
                endpoint,
            } => args.extend([
                "--orig-port-dst".into(),
                node_port.to_string(),
                "--dst-nat".into(),
                endpoint.to_string(),
            ]),
        }
        args
    }
}

/// Flushes conntrack flows.
pub trait Conntrack: Send {
    /// Deletes the flows `filter` selects (none matching is not an error).
    fn delete(&mut self, filter: &ConntrackFilter) -> Result<(), Error>;
}

/// Runs the real tools, in the current network namespace or in a named one.
#[derive(Debug, Clone, Default)]
pub struct Exec {
    prefix: Vec<OsString>,
}

impl Exec {
    /// Runs the tools in the proxy's own network namespace.
    pub fn new() -> Exec {
        Exec::default()
    }

    /// Runs the tools inside the named network namespace (`ip netns exec NAME`).
    pub fn in_netns(name: &str) -> Exec {
        Exec {
            prefix: ["ip", "netns", "exec", name].map(OsString::from).to_vec(),
        }
    }

    /// A command for `program`, behind the namespace prefix if any.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = match self.prefix.split_first() {
            Some((first, rest)) => {
                let mut cmd = Command::new(first);
                cmd.args(rest).arg(program);
                cmd
            }
            None => Command::new(program),
        };
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs `program args`, returning (success, stdout, stderr).
    fn run(&self, program: &str, args: &[String]) -> Result<(bool, String, String), Error> {
        let output = self
            .command(program)
            .args(args)
            .output()
            .map_err(|source| Error::Spawn {
                program: program.to_string(),
                source,
            })?;
        Ok((
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ))
    }

    fn rule_args(table: Table, op: &str, chain: &str, args: &[String]) -> Vec<String> {
        let mut full = vec![
            "-w".to_string(),
            "-t".into(),
            table.as_str().into(),
            op.into(),
            chain.into(),
        ];
        full.extend(args.iter().cloned());
        full
    }
}

impl Iptables for Exec {
    fn restore(&mut self, batch: &str) -> Result<(), Error> {
        let program = "iptables-restore";
        let mut child = self
            .command(program)
            .args(["-w", "--noflush"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| Error::Spawn {
                program: program.into(),
                source,
            })?;
        let write_result = child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(batch.as_bytes());
        let output = child.wait_with_output().map_err(|source| Error::Spawn {
            program: program.into(),
            source,
        })?;
        if !output.status.success() {
            return Err(Error::Command {
                command: "iptables-restore --noflush".into(),
                message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        write_result.map_err(|source| Error::Spawn {
            program: program.into(),
            source,
        })
    }

    fn list_chains(&mut self, table: Table) -> Result<Vec<String>, Error> {
        let args = vec!["-t".to_string(), table.as_str().to_string()];
        let (ok, stdout, stderr) = self.run("iptables-save", &args)?;
        if !ok {
            return Err(Error::Command {
                command: format!("iptables-save -t {}", table.as_str()),
                message: stderr.trim().to_string(),
            });
        }
        Ok(stdout
            .lines()
            .filter_map(|l| l.strip_prefix(':'))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect())
    }

    fn ensure_rule(&mut self, table: Table, chain: &str, args: &[String]) -> Result<(), Error> {
        let (exists, _, _) = self.run("iptables", &Self::rule_args(table, "-C", chain, args))?;
        if exists {
            return Ok(());
        }
        let full = Self::rule_args(table, "-I", chain, args);
        let (ok, _, stderr) = self.run("iptables", &full)?;
        if !ok {
            return Err(Error::Command {
                command: format!("iptables {}", full.join(" ")),
                message: stderr.trim().to_string(),
            });
        }
        Ok(())
    }

    fn delete_rule(&mut self, table: Table, chain: &str, args: &[String]) -> Result<bool, Error> {
        let (ok, _, _) = self.run("iptables", &Self::rule_args(table, "-D", chain, args))?;
        Ok(ok)
    }
}

impl Conntrack for Exec {
    fn delete(&mut self, filter: &ConntrackFilter) -> Result<(), Error> {
        let args = filter.args();
        let (ok, stdout, stderr) = self.run("conntrack", &args)?;
        // conntrack exits 1 when no flow matched: that is success for a flush.
        if ok || format!("{stdout}{stderr}").contains("0 flow entries") {
            return Ok(());
        }
        Err(Error::Command {
            command: format!("conntrack {}", args.join(" ")),
            message: stderr.trim().to_string(),
        })
    }
}
