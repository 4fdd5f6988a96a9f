//! The upstream resolvers: `--upstream` values, or the nameservers of /etc/resolv.conf that are
//! not this server itself.

use std::net::{IpAddr, SocketAddr};

use crate::Error;

/// Parses `IP`, `IP:PORT` or `[IPv6]:PORT` (port 53 when absent).
pub fn parse_upstream(value: &str) -> Result<SocketAddr, Error> {
    let value = value.trim();
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    value
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| Error::Upstream(value.to_string()))
}

/// The `nameserver` lines of a resolv.conf text.
pub fn resolv_conf_nameservers(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "nameserver")
                .then(|| words.next())
                .flatten()
                .and_then(|w| w.split('%').next())
                .and_then(|w| w.parse().ok())
        })
        .collect()
}

/// The nameservers of a resolv.conf as upstreams, without this server itself: the listen
/// address, or (listening on every address) any loopback nameserver on the same port.
pub fn default_upstreams(resolv_conf: &str, listen: SocketAddr) -> Vec<SocketAddr> {
    resolv_conf_nameservers(resolv_conf)
        .into_iter()
        .map(|ip| SocketAddr::new(ip, 53))
        .filter(|ns| {
            let ourselves = *ns == listen
                || (listen.ip().is_unspecified()
                    && ns.port() == listen.port()
                    && ns.ip().is_loopback());
            !ourselves
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_values_parse_with_and_without_port() {
        assert_eq!(
            parse_upstream("1.2.3.4").unwrap(),
            "1.2.3.4:53".parse().unwrap()
        );
        assert_eq!(
            parse_upstream("1.2.3.4:5353").unwrap(),
            "1.2.3.4:5353".parse().unwrap()
        );
        assert_eq!(
            parse_upstream("[fd00::1]:54").unwrap(),
            "[fd00::1]:54".parse().unwrap()
        );
        assert_eq!(
            parse_upstream("fd00::1").unwrap(),
            "[fd00::1]:53".parse().unwrap()
        );
        assert!(parse_upstream("resolver.example").is_err());
    }

    #[test]
    fn resolv_conf_nameservers_skip_ourselves() {
        let text = "# generated\nsearch example.org\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\noptions ndots:5\n";
        assert_eq!(
            resolv_conf_nameservers(text),
            vec![
                "127.0.0.53".parse::<IpAddr>().unwrap(),
                "10.0.0.2".parse().unwrap(),
                "fe80::1".parse().unwrap()
            ]
        );
        let all: SocketAddr = "0.0.0.0:53".parse().unwrap();
        assert_eq!(
            default_upstreams(text, all),
            vec![
                "10.0.0.2:53".parse().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
        let specific: SocketAddr = "10.0.0.2:53".parse().unwrap();
        assert_eq!(
            default_upstreams(text, specific),
            vec![
                "127.0.0.53:53".parse().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
    }
}
