//! The answer logic, without sockets: a request packet and the index in, a response packet (or
//! "forward this upstream") out, following CoreDNS' kubernetes plugin.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, PTR, SOA, SRV};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::index::{Index, ServiceKind};

/// The UDP payload size without EDNS (RFC 1035).
pub const CLASSIC_UDP_SIZE: usize = 512;
/// The largest UDP payload we answer with, whatever a client advertises.
pub const MAX_UDP_SIZE: usize = 4096;
/// The UDP payload size we advertise in our own OPT record (the DNS flag day 2020 value).
pub const ADVERTISED_UDP_SIZE: u16 = 1232;

/// How a request arrived (decides the size limit and truncation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: answers over the client's size limit are truncated (TC bit).
    Udp,
    /// TCP: answers up to 65,535 bytes.
    Tcp,
}

/// The answer settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The cluster domain, lowercase labels (cluster.local → ["cluster", "local"]).
    zone_labels: Vec<String>,
    /// The cluster domain as a name.
    zone: Name,
    /// TTL of every record and of negative answers (the SOA minimum).
    pub ttl: u32,
}

impl Settings {
    /// Settings for `cluster_domain` (with or without a trailing dot) and `ttl` seconds.
    pub fn new(cluster_domain: &str, ttl: u32) -> Result<Settings, crate::Error> {
        let trimmed = cluster_domain.trim_end_matches('.').to_ascii_lowercase();
        let bad = || crate::Error::ClusterDomain(cluster_domain.to_string());
        if trimmed.is_empty() {
            return Err(bad());
        }
        let zone = Name::from_ascii(format!("{trimmed}.")).map_err(|_| bad())?;
        Ok(Settings {
            zone_labels: trimmed.split('.').map(str::to_string).collect(),
            zone,
            ttl,
        })
    }

    /// A name inside the cluster domain: `relative` + the domain.
    fn name(&self, relative: &str) -> Option<Name> {
        Name::from_ascii(format!("{relative}.{}", self.zone)).ok()
    }

    fn soa(&self, serial: u32) -> Record {
        let mname = self.name("ns.dns").unwrap_or_else(|| self.zone.clone());
        let rname = self.name("hostmaster").unwrap_or_else(|| self.zone.clone());
        let soa = SOA::new(mname, rname, serial, 7200, 1800, 86400, self.ttl);
        Record::from_rdata(self.zone.clone(), self.ttl, RData::SOA(soa))
    }
}

/// What became of a request.
#[derive(Debug)]
pub enum Outcome {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Not ours: forward upstream (the parsed request, for SERVFAIL or REFUSED replies).
    Forward(Box<Message>),
    /// Not a query we can answer at all (a response, or garbage without a header): drop it.
    Drop,
}

/// The result of [`handle`] with what the metrics need.
#[derive(Debug)]
pub struct Handled {
    /// What to do.
    pub outcome: Outcome,
    /// The query type, when there was a question.
    pub qtype: Option<RecordType>,
    /// The response code of a reply.
    pub rcode: ResponseCode,
}

/// Answers one request packet from the index.
pub fn handle(index: &Index, settings: &Settings, packet: &[u8], transport: Transport) -> Handled {
    let request = match Message::from_vec(packet) {
        Ok(m) => m,
        Err(_) => return malformed(packet),
    };
    if request.metadata.message_type != MessageType::Query {
        return Handled {
            outcome: Outcome::Drop,
            qtype: None,
            rcode: ResponseCode::NoError,
        };
    }
    let qtype = request.queries.first().map(|q| q.query_type());
    let refusal = |rcode: ResponseCode| Handled {
        outcome: Outcome::Reply(error_reply(&request, rcode)),
        qtype,
        rcode,
    };
    if request.metadata.op_code != OpCode::Query {
        return refusal(ResponseCode::NotImp);
    }
    if request.queries.len() != 1 {
        return refusal(ResponseCode::FormErr);
    }
    let query = &request.queries[0];
    let labels: Vec<String> = query
        .name()
        .iter()
        .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
        .collect();

    let in_zone = labels.len() >= settings.zone_labels.len()
        && labels[labels.len() - settings.zone_labels.len()..] == settings.zone_labels[..];
    let answer = if in_zone {
        if query.query_class() != DNSClass::IN {
            return refusal(ResponseCode::Refused);
        }
        let relative = &labels[..labels.len() - settings.zone_labels.len()];
        resolve(index, settings, query, relative)
    } else if let Some(ip) = reverse_ip(&labels) {
        let names = index.ptr(&ip);
        if names.is_empty() || query.query_class() != DNSClass::IN {
            return forward(request, qtype);
        }
        match query.query_type() {
            RecordType::PTR | RecordType::ANY => Lookup::Records {
                answers: names
                    .iter()
                    .filter_map(|n| settings.name(n))
                    .map(|target| {
                        Record::from_rdata(
                            query.name().clone(),
                            settings.ttl,
                            RData::PTR(PTR(target)),
                        )
                    })
                    .collect(),
                additionals: Vec::new(),
            },
            _ => Lookup::NoData,
        }
    } else {
        return forward(request, qtype);
    };

    let mut response = response_to(&request);
    response.metadata.authoritative = true;
    let rcode = match answer {
        Lookup::Records {
            answers,
            additionals,
        } => {
            response.answers = answers;
            response.additionals = additionals;
            ResponseCode::NoError
        }
        Lookup::NoData => {
            response.authorities.push(settings.soa(index.serial()));
            ResponseCode::NoError
        }
        Lookup::NxDomain => {
            response.authorities.push(settings.soa(index.serial()));
            ResponseCode::NXDomain
        }
    };
    response.metadata.response_code = rcode;
    Handled {
        outcome: Outcome::Reply(encode(response, &request, transport)),
        qtype,
        rcode,
    }
}

fn forward(request: Message, qtype: Option<RecordType>) -> Handled {
    Handled {
        outcome: Outcome::Forward(Box::new(request)),
        qtype,
        rcode: ResponseCode::NoError,
    }
}

/// A packet that does not parse: FORMERR when it has a query header (so the client stops
/// waiting), nothing otherwise.
fn malformed(packet: &[u8]) -> Handled {
    let drop = Handled {
        outcome: Outcome::Drop,
        qtype: None,
        rcode: ResponseCode::FormErr,
    };
    if packet.len() < 12 || packet[2] & 0x80 != 0 {
        return drop;
    }
    let id = u16::from_be_bytes([packet[0], packet[1]]);
    let op_code = OpCode::from_u8((packet[2] >> 3) & 0x0f);
    let mut response = Message::error_msg(id, op_code, ResponseCode::FormErr);
    response.metadata.recursion_desired = packet[2] & 0x01 != 0;
    match response.to_vec() {
        Ok(bytes) => Handled {
            outcome: Outcome::Reply(bytes),
            ..drop
        },
        Err(_) => drop,
    }
}

/// An empty response with `rcode` to `request` (REFUSED, SERVFAIL, FORMERR, NOTIMP).
pub fn error_reply(request: &Message, rcode: ResponseCode) -> Vec<u8> {
    let mut response = response_to(request);
    response.metadata.response_code = rcode;
    if request.queries.len() > 1 {
        response.queries.clear();
    }
    // An error reply is tiny; should it not encode, send the bare header.
    response
        .to_vec()
        .or_else(|_| {
            Message::error_msg(request.metadata.id, request.metadata.op_code, rcode).to_vec()
        })
        .unwrap_or_default()
}

/// The response skeleton: id, opcode, RD echoed, RA set, the question, OPT when asked with one.
fn response_to(request: &Message) -> Message {
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.metadata.checking_disabled = request.metadata.checking_disabled;
    response.queries = request.queries.clone();
    if request.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(ADVERTISED_UDP_SIZE);
        response.edns = Some(edns);
    }
    response
}

/// The client's UDP size limit: its EDNS payload size (at least 512, at most 4096), else 512.
pub fn udp_limit(request: &Message) -> usize {
    request
        .edns
        .as_ref()
        .map(|e| (e.max_payload() as usize).clamp(CLASSIC_UDP_SIZE, MAX_UDP_SIZE))
        .unwrap_or(CLASSIC_UDP_SIZE)
}

/// Encodes a response within the transport's limit: drops the additional section first, then
/// sends the question alone with TC set.
fn encode(mut response: Message, request: &Message, transport: Transport) -> Vec<u8> {
    let limit = match transport {
        Transport::Udp => udp_limit(request),
        Transport::Tcp => u16::MAX as usize,
    };
    if let Ok(bytes) = response.to_vec() {
        if bytes.len() <= limit {
            return bytes;
        }
    }
    response.additionals.clear();
    if let Ok(bytes) = response.to_vec() {
        if bytes.len() <= limit {
            return bytes;
        }
    }
    let truncated = response.truncate();
    truncated
        .to_vec()
        .unwrap_or_else(|_| error_reply(request, ResponseCode::ServFail))
}

/// The outcome of a lookup in the cluster domain.
#[derive(Debug)]
enum Lookup {
    Records {
        answers: Vec<Record>,
        additionals: Vec<Record>,
    },
    NoData,
    NxDomain,
}

/// A target of an SRV record with the addresses that go in the additional section.
struct SrvTarget {
    weight: u16,
    port: u16,
    target: Name,
    addresses: Vec<IpAddr>,
}

/// What exists at a name: its addresses, SRV records or CNAME (all empty: the name exists
/// without data, an empty non-terminal).
#[derive(Default)]
struct Node {
    addresses: Vec<IpAddr>,
    srv: Vec<SrvTarget>,
    cname: Option<Name>,
    apex: bool,
}

/// Resolves a name inside the cluster domain (`relative` = its labels before the domain).
fn resolve(index: &Index, settings: &Settings, query: &Query, relative: &[String]) -> Lookup {
    let Some(node) = find_node(index, settings, relative) else {
        return Lookup::NxDomain;
    };
    let owner = query.name().clone();
    let ttl = settings.ttl;
    let qtype = query.query_type();
    let mut answers = Vec::new();
    let mut additionals = Vec::new();
    if let Some(target) = &node.cname {
        answers.push(Record::from_rdata(
            owner,
            ttl,
            RData::CNAME(CNAME(target.clone())),
        ));
        return Lookup::Records {
            answers,
            additionals,
        };
    }
    let want = |t: RecordType| qtype == t || qtype == RecordType::ANY;
    if node.apex && want(RecordType::SOA) {
        answers.push(settings.soa(index.serial()));
    }
    for ip in &node.addresses {
        match ip {
            IpAddr::V4(v4) if want(RecordType::A) => {
                answers.push(Record::from_rdata(owner.clone(), ttl, RData::A(A(*v4))))
            }
            IpAddr::V6(v6) if want(RecordType::AAAA) => answers.push(Record::from_rdata(
                owner.clone(),
                ttl,
                RData::AAAA(AAAA(*v6)),
            )),
            _ => {}
        }
    }
    if want(RecordType::SRV) {
        let mut seen = std::collections::BTreeSet::new();
        for s in &node.srv {
            let srv = SRV::new(0, s.weight, s.port, s.target.clone());
            answers.push(Record::from_rdata(owner.clone(), ttl, RData::SRV(srv)));
            if !seen.insert(s.target.clone()) {
                continue;
            }
            for ip in &s.addresses {
                let rdata = match ip {
                    IpAddr::V4(v4) => RData::A(A(*v4)),
                    IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
                };
                additionals.push(Record::from_rdata(s.target.clone(), ttl, rdata));
            }
        }
    }
    if answers.is_empty() {
        Lookup::NoData
    } else {
        Lookup::Records {
            answers,
            additionals,
        }
    }
}

/// Weight of each of `n` SRV records of one name (CoreDNS spreads 100 over them).
fn srv_weight(n: usize) -> u16 {
    u16::try_from((100 / n.max(1)).max(1)).unwrap_or(1)
}

/// Finds what exists at `relative` (labels before the cluster domain, in query order).
fn find_node(index: &Index, settings: &Settings, relative: &[String]) -> Option<Node> {
    let r: Vec<&str> = relative.iter().rev().map(String::as_str).collect();
    match r.as_slice() {
        [] => Some(Node {
            apex: true,
            ..Node::default()
        }),
        ["svc"] | ["pod"] => Some(Node::default()),
        ["svc", ns] | ["pod", ns] => {
            // Pods are answered from the name in any namespace; services need one to exist.
            (r[0] == "pod" || index.namespace_exists(ns)).then(Node::default)
        }
        ["pod", _ns, ip] => pod_ip(ip).map(|ip| Node {
            addresses: vec![ip],
            ..Node::default()
        }),
        ["svc", ns, svc] => service_node(index, settings, ns, svc),
        ["svc", ns, svc, proto] if proto.starts_with('_') => {
            let entry = index.service(ns, svc)?;
            let proto = &proto[1..];
            entry
                .ports
                .iter()
                .any(|p| !p.name.is_empty() && p.protocol == proto)
                .then(Node::default)
        }
        ["svc", ns, svc, label] => endpoint_node(index, ns, svc, label),
        ["svc", ns, svc, proto, port] if proto.starts_with('_') && port.starts_with('_') => {
            port_node(index, settings, ns, svc, &proto[1..], &port[1..])
        }
        _ => None,
    }
}

/// `<a-b-c-d>.<ns>.pod.<domain>` (and IPv6 with dashes for colons).
fn pod_ip(label: &str) -> Option<IpAddr> {
    if let Ok(v4) = label.replace('-', ".").parse::<Ipv4Addr>() {
        return Some(IpAddr::V4(v4));
    }
    label
        .replace('-', ":")
        .parse::<Ipv6Addr>()
        .ok()
        .map(IpAddr::V6)
}

fn service_node(index: &Index, settings: &Settings, ns: &str, svc: &str) -> Option<Node> {
    let entry = index.service(ns, svc)?;
    let fqdn = settings.name(&format!("{svc}.{ns}.svc"))?;
    let mut node = Node::default();
    match &entry.kind {
        ServiceKind::ExternalName(target) => {
            let target = format!("{}.", target.trim_end_matches('.'));
            node.cname = Name::from_ascii(target).ok();
            // An ExternalName without a usable target is a name without data.
        }
        ServiceKind::ClusterIp(ips) => {
            node.addresses = ips.clone();
            let ports: Vec<_> = entry.ports.iter().collect();
            let weight = srv_weight(ports.len());
            node.srv = ports
                .iter()
                .map(|p| SrvTarget {
                    weight,
                    port: p.port,
                    target: fqdn.clone(),
                    addresses: ips.clone(),
                })
                .collect();
        }
        ServiceKind::Headless => {
            let endpoints = index.answerable(ns, svc);
            for a in &endpoints {
                node.addresses.extend(a.endpoint.addresses.iter().copied());
            }
            let mut srv = Vec::new();
            for a in &endpoints {
                let Some(label) = a.endpoint.label() else {
                    continue;
                };
                let Some(target) = settings.name(&format!("{label}.{svc}.{ns}.svc")) else {
                    continue;
                };
                for p in &a.slice.ports {
                    srv.push((p.port, target.clone(), a.endpoint.addresses.clone()));
                }
            }
            let weight = srv_weight(srv.len());
            node.srv = srv
                .into_iter()
                .map(|(port, target, addresses)| SrvTarget {
                    weight,
                    port,
                    target,
                    addresses,
                })
                .collect();
        }
    }
    Some(node)
}

fn endpoint_node(index: &Index, ns: &str, svc: &str, label: &str) -> Option<Node> {
    let entry = index.service(ns, svc)?;
    if entry.kind != ServiceKind::Headless {
        return None;
    }
    let addresses: Vec<IpAddr> = index
        .answerable(ns, svc)
        .iter()
        .filter(|a| a.endpoint.label().as_deref() == Some(label))
        .flat_map(|a| a.endpoint.addresses.iter().copied())
        .collect();
    (!addresses.is_empty()).then(|| Node {
        addresses,
        ..Node::default()
    })
}

fn port_node(
    index: &Index,
    settings: &Settings,
    ns: &str,
    svc: &str,
    proto: &str,
    port_name: &str,
) -> Option<Node> {
    let entry = index.service(ns, svc)?;
    let port = entry
        .ports
        .iter()
        .find(|p| !p.name.is_empty() && p.name == port_name && p.protocol == proto)?;
    let mut srv = Vec::new();
    match &entry.kind {
        ServiceKind::ClusterIp(ips) => {
            srv.push((
                port.port,
                settings.name(&format!("{svc}.{ns}.svc"))?,
                ips.clone(),
            ));
        }
        ServiceKind::Headless => {
            for a in index.answerable(ns, svc) {
                let Some(endpoint_port) = a
                    .slice
                    .ports
                    .iter()
                    .find(|p| p.name == port_name && p.protocol == proto)
                else {
                    continue;
                };
                let Some(label) = a.endpoint.label() else {
                    continue;
                };
                let Some(target) = settings.name(&format!("{label}.{svc}.{ns}.svc")) else {
                    continue;
                };
                srv.push((endpoint_port.port, target, a.endpoint.addresses.clone()));
            }
        }
        ServiceKind::ExternalName(_) => return None,
    }
    let weight = srv_weight(srv.len());
    Some(Node {
        srv: srv
            .into_iter()
            .map(|(port, target, addresses)| SrvTarget {
                weight,
                port,
                target,
                addresses,
            })
            .collect(),
        ..Node::default()
    })
}

/// The address of a full reverse name (d.c.b.a.in-addr.arpa or 32 nibbles.ip6.arpa).
fn reverse_ip(labels: &[String]) -> Option<IpAddr> {
    match labels {
        [a, b, c, d, in_addr, arpa] if in_addr == "in-addr" && arpa == "arpa" => {
            let octets: Option<Vec<u8>> = [d, c, b, a]
                .iter()
                .map(|s| {
                    (!s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| s.parse::<u8>().ok())
                        .flatten()
                })
                .collect();
            let o = octets?;
            Some(IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], o[3])))
        }
        _ if labels.len() == 34 && labels[32] == "ip6" && labels[33] == "arpa" => {
            let mut value: u128 = 0;
            for nibble in labels[..32].iter().rev() {
                if nibble.len() != 1 {
                    return None;
                }
                value = (value << 4) | u128::from(u8::from_str_radix(nibble, 16).ok()?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(value)))
        }
        _ => None,
    }
}

#[cfg(test)]
#[path = "answer_tests.rs"]
mod tests;
