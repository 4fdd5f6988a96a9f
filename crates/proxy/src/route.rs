//! The route for the service network that locally generated traffic needs on a node without a
//! default route: `<service CIDR> dev <node interface>`, tagged with its own route protocol so
//! `--cleanup` removes only this route.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::iptables::Exec;
use crate::Error;

/// The route protocol number marking the proxy's route (`proto 199`).
pub const ROUTE_PROTOCOL: &str = "199";

fn ip(exec: &Exec, args: &[&str]) -> Result<(bool, String, String), Error> {
    let output = exec
        .command("ip")
        .args(args)
        .output()
        .map_err(|source| Error::Spawn {
            program: "ip".into(),
            source,
        })?;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

/// The interface to route through: the one holding one of `node_ips`, else the first with a
/// global IPv4 address.
pub fn node_interface(exec: &Exec, node_ips: &[Ipv4Addr]) -> Result<Option<String>, Error> {
    let (_, out, _) = ip(exec, &["-4", "-o", "addr", "show", "scope", "global"])?;
    let mut first = None;
    for line in out.lines() {
        // "2: eth0    inet 192.168.77.2/24 brd ... scope global eth0"
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(dev), Some(addr)) = (fields.get(1), fields.get(3)) else {
            continue;
        };
        let dev = dev.split('@').next().unwrap_or(dev).to_string();
        let address = addr
            .split('/')
            .next()
            .and_then(|a| a.parse::<Ipv4Addr>().ok());
        if address.is_some_and(|a| node_ips.contains(&a)) {
            return Ok(Some(dev));
        }
        first.get_or_insert(dev);
    }
    Ok(first)
}

/// Adds `<cidr> dev <interface> proto 199` unless the service network is routable already;
/// returns the interface when the route was added or refreshed.
pub fn ensure_service_route(
    exec: &Exec,
    cidr: Ipv4Net,
    node_ips: &[Ipv4Addr],
) -> Result<Option<String>, Error> {
    let probe = cidr.hosts().next().unwrap_or(cidr.network()).to_string();
    let (_, existing, _) = ip(exec, &["-4", "route", "show", "proto", ROUTE_PROTOCOL])?;
    let ours = existing.lines().any(|l| l.starts_with(&cidr.to_string()));
    if !ours && ip(exec, &["-4", "route", "get", &probe])?.0 {
        return Ok(None);
    }
    let Some(dev) = node_interface(exec, node_ips)? else {
        return Err(Error::NoInterface {
            cidr: cidr.to_string(),
        });
    };
    let target = cidr.to_string();
    let (ok, _, stderr) = ip(
        exec,
        &[
            "route",
            "replace",
            &target,
            "dev",
            &dev,
            "proto",
            ROUTE_PROTOCOL,
        ],
    )?;
    if !ok {
        return Err(Error::Command {
            command: format!("ip route replace {target} dev {dev} proto {ROUTE_PROTOCOL}"),
            message: stderr.trim().to_string(),
        });
    }
    Ok(Some(dev))
}

/// Deletes the proxy's route for `cidr`; Ok(false) when there was none.
pub fn remove_service_route(exec: &Exec, cidr: Ipv4Net) -> Result<bool, Error> {
    let target = cidr.to_string();
    Ok(ip(exec, &["route", "del", &target, "proto", ROUTE_PROTOCOL])?.0)
}
