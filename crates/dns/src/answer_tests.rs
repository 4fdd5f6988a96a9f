//! Unit tests of the index and the answer logic: packets in, packets out, no sockets.

use std::net::IpAddr;
use std::str::FromStr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

use super::*;
use crate::index::Index;

fn service(ns: &str, name: &str, spec: serde_json::Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"namespace": ns, "name": name},
        "spec": spec,
    }))
    .unwrap()
}

fn clusterip(ns: &str, name: &str, ip: &str) -> Service {
    service(
        ns,
        name,
        json!({"clusterIP": ip, "clusterIPs": [ip], "ports": [
            {"name": "http", "port": 80, "protocol": "TCP"},
            {"name": "dns", "port": 53, "protocol": "UDP"}]}),
    )
}

fn headless(ns: &str, name: &str, publish_not_ready: bool) -> Service {
    service(
        ns,
        name,
        json!({"clusterIP": "None", "publishNotReadyAddresses": publish_not_ready,
               "ports": [{"name": "web", "port": 80, "protocol": "TCP"}]}),
    )
}

/// endpoints: (ip, ready, hostname)
fn slice(
    ns: &str,
    name: &str,
    svc: &str,
    endpoints: &[(&str, bool, Option<&str>)],
) -> EndpointSlice {
    let eps: Vec<_> = endpoints
        .iter()
        .map(|(ip, ready, host)| {
            let mut e = json!({"addresses": [ip], "conditions": {"ready": ready},
                               "targetRef": {"kind": "Pod", "name": format!("pod-{ip}"), "namespace": ns}});
            if let Some(h) = host {
                e["hostname"] = json!(h);
            }
            e
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": {"namespace": ns, "name": name,
                     "labels": {"kubernetes.io/service-name": svc}},
        "addressType": if endpoints.first().is_some_and(|e| e.0.contains(':')) { "IPv6" } else { "IPv4" },
        "endpoints": eps,
        "ports": [{"name": "web", "port": 8080, "protocol": "TCP"}],
    }))
    .unwrap()
}

fn settings() -> Settings {
    Settings::new("cluster.local", 5).unwrap()
}

fn query_packet(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut m = Message::new(4242, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.edns = Some(e);
    }
    m.to_vec().unwrap()
}

fn ask_with(
    index: &Index,
    name: &str,
    qtype: RecordType,
    edns: Option<u16>,
    t: Transport,
) -> Message {
    let handled = handle(index, &settings(), &query_packet(name, qtype, edns), t);
    match handled.outcome {
        Outcome::Reply(bytes) => {
            let m = Message::from_vec(&bytes).unwrap();
            assert_eq!(m.metadata.response_code, handled.rcode);
            m
        }
        other => panic!("{name} {qtype}: expected a reply, got {other:?}"),
    }
}

fn ask(index: &Index, name: &str, qtype: RecordType) -> Message {
    ask_with(index, name, qtype, None, Transport::Udp)
}

fn ips(m: &Message) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn assert_negative(m: &Message, rcode: ResponseCode) {
    assert_eq!(m.metadata.response_code, rcode);
    assert!(m.answers.is_empty(), "no answers: {:?}", m.answers);
    assert_eq!(m.authorities.len(), 1, "SOA in the authority section");
    match &m.authorities[0].data {
        RData::SOA(soa) => {
            assert_eq!(soa.minimum, 5);
            assert_eq!(soa.mname.to_string(), "ns.dns.cluster.local.");
        }
        other => panic!("expected SOA, got {other:?}"),
    }
    assert_eq!(m.authorities[0].name.to_string(), "cluster.local.");
}

fn cluster() -> Index {
    let mut index = Index::new();
    index.apply_service(&clusterip("default", "web", "10.96.0.20"));
    index.apply_service(&headless("db", "pg", false));
    index.apply_slice(&slice(
        "db",
        "pg-abc",
        "pg",
        &[
            ("10.244.1.5", true, Some("pg-0")),
            ("10.244.2.6", true, Some("pg-1")),
            ("10.244.3.7", false, Some("pg-2")),
        ],
    ));
    index.apply_service(&service(
        "default",
        "ext",
        json!({"type": "ExternalName", "externalName": "db.example.org"}),
    ));
    index
}

#[test]
fn clusterip_service_answers_its_address_with_the_ttl() {
    let index = cluster();
    let m = ask(&index, "web.default.svc.cluster.local.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert_eq!(m.metadata.id, 4242);
    assert!(m.metadata.recursion_desired);
    assert_eq!(ips(&m), vec![ip("10.96.0.20")]);
    assert_eq!(m.answers[0].ttl, 5);
    assert_eq!(m.queries.len(), 1);
}

#[test]
fn ttl_is_configurable() {
    let index = cluster();
    let s = Settings::new("cluster.local.", 30).unwrap();
    let handled = handle(
        &index,
        &s,
        &query_packet("web.default.svc.cluster.local", RecordType::A, None),
        Transport::Udp,
    );
    let Outcome::Reply(bytes) = handled.outcome else {
        panic!("reply")
    };
    assert_eq!(Message::from_vec(&bytes).unwrap().answers[0].ttl, 30);
}

#[test]
fn names_match_case_insensitively_with_or_without_trailing_dot_and_echo_the_case() {
    let index = cluster();
    for name in [
        "WEB.Default.SVC.cluster.LOCAL.",
        "web.default.svc.cluster.local",
    ] {
        let m = ask(&index, name, RecordType::A);
        assert_eq!(ips(&m), vec![ip("10.96.0.20")], "{name}");
        // The answer's owner is the name as asked (0x20 case randomisation keeps working).
        assert_eq!(
            m.answers[0].name.to_string().trim_end_matches('.'),
            name.trim_end_matches('.')
        );
    }
}

#[test]
fn nxdomain_versus_nodata() {
    let index = cluster();
    // Unknown service: NXDOMAIN with SOA.
    assert_negative(
        &ask(&index, "nope.default.svc.cluster.local", RecordType::A),
        ResponseCode::NXDomain,
    );
    // Unknown namespace.
    assert_negative(
        &ask(&index, "web.nope.svc.cluster.local", RecordType::A),
        ResponseCode::NXDomain,
    );
    assert_negative(
        &ask(&index, "nope.svc.cluster.local", RecordType::A),
        ResponseCode::NXDomain,
    );
    // Existing name, other type: NOERROR, empty answer, SOA.
    assert_negative(
        &ask(&index, "web.default.svc.cluster.local", RecordType::AAAA),
        ResponseCode::NoError,
    );
    assert_negative(
        &ask(&index, "web.default.svc.cluster.local", RecordType::TXT),
        ResponseCode::NoError,
    );
    // Empty non-terminals exist.
    for name in [
        "default.svc.cluster.local",
        "svc.cluster.local",
        "pod.cluster.local",
        "cluster.local",
    ] {
        assert_negative(&ask(&index, name, RecordType::A), ResponseCode::NoError);
    }
    // Too deep.
    assert_negative(
        &ask(&index, "a.b.web.default.svc.cluster.local", RecordType::A),
        ResponseCode::NXDomain,
    );
    assert_negative(
        &ask(&index, "x.nope.cluster.local", RecordType::A),
        ResponseCode::NXDomain,
    );
}

#[test]
fn apex_answers_soa() {
    let index = cluster();
    let m = ask(&index, "cluster.local", RecordType::SOA);
    assert_eq!(m.answers.len(), 1);
    assert!(matches!(m.answers[0].data, RData::SOA(_)));
}

#[test]
fn headless_answers_ready_endpoints_only() {
    let index = cluster();
    let m = ask(&index, "pg.db.svc.cluster.local", RecordType::A);
    assert_eq!(ips(&m), vec![ip("10.244.1.5"), ip("10.244.2.6")]);
}

#[test]
fn headless_with_publish_not_ready_answers_every_endpoint() {
    let mut index = cluster();
    index.apply_service(&headless("db", "pg", true));
    let m = ask(&index, "pg.db.svc.cluster.local", RecordType::A);
    assert_eq!(
        ips(&m),
        vec![ip("10.244.1.5"), ip("10.244.2.6"), ip("10.244.3.7")]
    );
    let m = ask(&index, "pg-2.pg.db.svc.cluster.local", RecordType::A);
    assert_eq!(ips(&m), vec![ip("10.244.3.7")]);
}

#[test]
fn headless_without_ready_endpoints_is_nodata() {
    let mut index = cluster();
    index.apply_slice(&slice(
        "db",
        "pg-abc",
        "pg",
        &[("10.244.1.5", false, Some("pg-0"))],
    ));
    assert_negative(
        &ask(&index, "pg.db.svc.cluster.local", RecordType::A),
        ResponseCode::NoError,
    );
    assert_negative(
        &ask(&index, "pg-0.pg.db.svc.cluster.local", RecordType::A),
        ResponseCode::NXDomain,
    );
}

#[test]
fn endpoint_hostnames_resolve_for_statefulset_pods() {
    let index = cluster();
    let m = ask(&index, "pg-1.pg.db.svc.cluster.local", RecordType::A);
    assert_eq!(ips(&m), vec![ip("10.244.2.6")]);
    // Not ready: not answered.
    assert_negative(
        &ask(&index, "pg-2.pg.db.svc.cluster.local", RecordType::A),
        ResponseCode::NXDomain,
    );
    // Endpoints without a hostname answer by their dashed address.
    let mut index = cluster();
    index.apply_slice(&slice("db", "pg-xyz", "pg", &[("10.244.4.8", true, None)]));
    let m = ask(&index, "10-244-4-8.pg.db.svc.cluster.local", RecordType::A);
    assert_eq!(ips(&m), vec![ip("10.244.4.8")]);
}

#[test]
fn srv_for_named_ports_with_additional_addresses() {
    let index = cluster();
    let m = ask(
        &index,
        "_http._tcp.web.default.svc.cluster.local",
        RecordType::SRV,
    );
    assert_eq!(m.answers.len(), 1);
    let RData::SRV(srv) = &m.answers[0].data else {
        panic!("srv")
    };
    assert_eq!(srv.port, 80);
    assert_eq!(srv.target.to_string(), "web.default.svc.cluster.local.");
    assert_eq!(m.additionals.len(), 1);
    assert!(matches!(m.additionals[0].data, RData::A(a) if a.0.to_string() == "10.96.0.20"));
    // The UDP port under _udp.
    let m = ask(
        &index,
        "_dns._udp.web.default.svc.cluster.local",
        RecordType::SRV,
    );
    let RData::SRV(srv) = &m.answers[0].data else {
        panic!("srv")
    };
    assert_eq!(srv.port, 53);
    // Wrong protocol or unknown port: NXDOMAIN; the port name with type A: NODATA.
    assert_negative(
        &ask(
            &index,
            "_http._udp.web.default.svc.cluster.local",
            RecordType::SRV,
        ),
        ResponseCode::NXDomain,
    );
    assert_negative(
        &ask(
            &index,
            "_nope._tcp.web.default.svc.cluster.local",
            RecordType::SRV,
        ),
        ResponseCode::NXDomain,
    );
    assert_negative(
        &ask(
            &index,
            "_http._tcp.web.default.svc.cluster.local",
            RecordType::A,
        ),
        ResponseCode::NoError,
    );
    assert_negative(
        &ask(
            &index,
            "_tcp.web.default.svc.cluster.local",
            RecordType::SRV,
        ),
        ResponseCode::NoError,
    );
}

#[test]
fn headless_srv_lists_each_ready_endpoint_by_name() {
    let index = cluster();
    let m = ask(&index, "_web._tcp.pg.db.svc.cluster.local", RecordType::SRV);
    let mut targets: Vec<(String, u16)> = m
        .answers
        .iter()
        .map(|r| match &r.data {
            RData::SRV(s) => (s.target.to_string(), s.port),
            other => panic!("{other:?}"),
        })
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        vec![
            ("pg-0.pg.db.svc.cluster.local.".to_string(), 8080),
            ("pg-1.pg.db.svc.cluster.local.".to_string(), 8080)
        ]
    );
    assert_eq!(m.additionals.len(), 2);
}

#[test]
fn ptr_for_cluster_ips_and_endpoint_ips() {
    let index = cluster();
    let m = ask(&index, "20.0.96.10.in-addr.arpa", RecordType::PTR);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let RData::PTR(p) = &m.answers[0].data else {
        panic!("ptr")
    };
    assert_eq!(p.0.to_string(), "web.default.svc.cluster.local.");
    let m = ask(&index, "6.2.244.10.in-addr.arpa.", RecordType::PTR);
    let RData::PTR(p) = &m.answers[0].data else {
        panic!("ptr")
    };
    assert_eq!(p.0.to_string(), "pg-1.pg.db.svc.cluster.local.");
    // Unknown addresses are not ours: forwarded.
    let h = handle(
        &index,
        &settings(),
        &query_packet("9.9.9.9.in-addr.arpa", RecordType::PTR, None),
        Transport::Udp,
    );
    assert!(matches!(h.outcome, Outcome::Forward(_)));
}

#[test]
fn ptr_follows_changes() {
    let mut index = cluster();
    index.apply_service(&clusterip("default", "web", "10.96.0.21"));
    let h = handle(
        &index,
        &settings(),
        &query_packet("20.0.96.10.in-addr.arpa", RecordType::PTR, None),
        Transport::Udp,
    );
    assert!(
        matches!(h.outcome, Outcome::Forward(_)),
        "old address forgotten"
    );
    let m = ask(&index, "21.0.96.10.in-addr.arpa", RecordType::PTR);
    assert_eq!(m.answers.len(), 1);
    index.delete_service(&clusterip("default", "web", "10.96.0.21"));
    assert_eq!(index.ptr(&ip("10.96.0.21")), Vec::<&str>::new());
}

#[test]
fn ipv6_services_answer_aaaa_and_ip6_arpa() {
    let mut index = Index::new();
    index.apply_service(&service(
        "default",
        "v6",
        json!({"clusterIP": "fd00:10:96::a", "clusterIPs": ["fd00:10:96::a"]}),
    ));
    let m = ask(&index, "v6.default.svc.cluster.local", RecordType::AAAA);
    assert_eq!(ips(&m), vec![ip("fd00:10:96::a")]);
    assert_negative(
        &ask(&index, "v6.default.svc.cluster.local", RecordType::A),
        ResponseCode::NoError,
    );
    let rev = "a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa";
    let m = ask(&index, rev, RecordType::PTR);
    let RData::PTR(p) = &m.answers[0].data else {
        panic!("ptr")
    };
    assert_eq!(p.0.to_string(), "v6.default.svc.cluster.local.");
}

#[test]
fn pod_names_answer_from_the_name() {
    let index = Index::new();
    let m = ask(
        &index,
        "10-244-1-5.default.pod.cluster.local",
        RecordType::A,
    );
    assert_eq!(ips(&m), vec![ip("10.244.1.5")]);
    assert_negative(
        &ask(
            &index,
            "10-244-1-5.default.pod.cluster.local",
            RecordType::AAAA,
        ),
        ResponseCode::NoError,
    );
    assert_negative(
        &ask(&index, "not-an-ip.default.pod.cluster.local", RecordType::A),
        ResponseCode::NXDomain,
    );
    assert_negative(
        &ask(
            &index,
            "10-244-1-999.default.pod.cluster.local",
            RecordType::A,
        ),
        ResponseCode::NXDomain,
    );
}

#[test]
fn external_name_is_a_cname() {
    let index = cluster();
    for qtype in [RecordType::A, RecordType::AAAA, RecordType::CNAME] {
        let m = ask(&index, "ext.default.svc.cluster.local", qtype);
        assert_eq!(m.answers.len(), 1, "{qtype}");
        let RData::CNAME(c) = &m.answers[0].data else {
            panic!("cname")
        };
        assert_eq!(c.0.to_string(), "db.example.org.");
    }
}

#[test]
fn outside_the_domain_is_forwarded() {
    let index = cluster();
    let h = handle(
        &index,
        &settings(),
        &query_packet("example.org", RecordType::A, None),
        Transport::Udp,
    );
    let Outcome::Forward(req) = h.outcome else {
        panic!("forward")
    };
    assert_eq!(req.metadata.id, 4242);
    // A REFUSED reply keeps the id and the question.
    let m = Message::from_vec(&error_reply(&req, ResponseCode::Refused)).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert_eq!(m.metadata.message_type, MessageType::Response);
    assert_eq!(m.queries.len(), 1);
    // A lookalike suffix is not the cluster domain.
    let h = handle(
        &index,
        &settings(),
        &query_packet("web.default.svc.notcluster.local", RecordType::A, None),
        Transport::Udp,
    );
    assert!(matches!(h.outcome, Outcome::Forward(_)));
}

#[test]
fn index_follows_updates_and_deletes() {
    let mut index = cluster();
    assert_eq!(index.service_count(), 3);
    assert_eq!(index.endpoint_count(), 3);
    // The slice loses an endpoint.
    index.apply_slice(&slice(
        "db",
        "pg-abc",
        "pg",
        &[("10.244.1.5", true, Some("pg-0"))],
    ));
    assert_eq!(
        ips(&ask(&index, "pg.db.svc.cluster.local", RecordType::A)),
        vec![ip("10.244.1.5")]
    );
    // A second slice of the same service adds to it.
    index.apply_slice(&slice("db", "pg-def", "pg", &[("10.244.9.9", true, None)]));
    assert_eq!(
        ips(&ask(&index, "pg.db.svc.cluster.local", RecordType::A)),
        vec![ip("10.244.1.5"), ip("10.244.9.9")]
    );
    index.delete_slice(&slice("db", "pg-abc", "pg", &[]));
    assert_eq!(
        ips(&ask(&index, "pg.db.svc.cluster.local", RecordType::A)),
        vec![ip("10.244.9.9")]
    );
    // Relist without the service: it is gone, and its namespace with it.
    let serial = index.serial();
    index.replace_services(&[clusterip("default", "web", "10.96.0.20")]);
    assert_ne!(index.serial(), serial);
    assert_negative(
        &ask(&index, "pg.db.svc.cluster.local", RecordType::A),
        ResponseCode::NXDomain,
    );
    assert_negative(
        &ask(&index, "db.svc.cluster.local", RecordType::A),
        ResponseCode::NXDomain,
    );
    index.replace_slices(&[]);
    assert_eq!(index.endpoint_count(), 0);
}

fn big_headless(n: usize) -> Index {
    let mut index = Index::new();
    index.apply_service(&headless("default", "big", false));
    let eps: Vec<(String, bool, Option<&str>)> = (0..n)
        .map(|i| (format!("10.244.{}.{}", i / 250, i % 250 + 1), true, None))
        .collect();
    let refs: Vec<(&str, bool, Option<&str>)> =
        eps.iter().map(|(a, r, h)| (a.as_str(), *r, *h)).collect();
    index.apply_slice(&slice("default", "big-1", "big", &refs));
    index
}

#[test]
fn udp_answers_over_512_bytes_are_truncated() {
    let index = big_headless(100);
    let m = ask(&index, "big.default.svc.cluster.local", RecordType::A);
    assert!(m.metadata.truncation, "TC set");
    assert!(m.answers.is_empty());
    assert_eq!(m.queries.len(), 1);
    // 100 A records fit in a 4096-byte EDNS answer.
    let m = ask_with(
        &index,
        "big.default.svc.cluster.local",
        RecordType::A,
        Some(4096),
        Transport::Udp,
    );
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 100);
    assert!(m.edns.is_some(), "OPT answered with OPT");
    // TCP carries everything.
    let m = ask_with(
        &index,
        "big.default.svc.cluster.local",
        RecordType::A,
        None,
        Transport::Tcp,
    );
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 100);
    // A small answer is not truncated.
    let index = big_headless(3);
    let m = ask(&index, "big.default.svc.cluster.local", RecordType::A);
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 3);
}

#[test]
fn srv_additionals_are_dropped_before_truncating() {
    // Six SRV answers fit in 512 bytes only without their A records (SRV targets are never
    // compressed).
    let index = big_headless(6);
    let name = "_web._tcp.big.default.svc.cluster.local";
    let full = handle(
        &index,
        &settings(),
        &query_packet(name, RecordType::SRV, None),
        Transport::Tcp,
    );
    let Outcome::Reply(full) = full.outcome else {
        panic!("reply")
    };
    assert!(
        full.len() > CLASSIC_UDP_SIZE,
        "the full answer is {} bytes",
        full.len()
    );
    let m = ask(&index, name, RecordType::SRV);
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 6);
    assert!(m.additionals.is_empty());
    let m = ask_with(&index, name, RecordType::SRV, None, Transport::Tcp);
    assert_eq!(m.additionals.len(), 6);
}

#[test]
fn malformed_and_unusual_requests() {
    let index = cluster();
    let s = settings();
    // Garbage shorter than a header: dropped.
    assert!(matches!(
        handle(&index, &s, &[1, 2, 3], Transport::Udp).outcome,
        Outcome::Drop
    ));
    // A header claiming a question that is not there: FORMERR with the id.
    let mut bad = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    bad.extend_from_slice(&[63]);
    let h = handle(&index, &s, &bad, Transport::Udp);
    let Outcome::Reply(bytes) = h.outcome else {
        panic!("formerr")
    };
    let m = Message::from_vec(&bytes).unwrap();
    assert_eq!(m.metadata.id, 0x1234);
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    // A response is never answered (no reflection loops).
    let mut resp = query_packet("web.default.svc.cluster.local", RecordType::A, None);
    resp[2] |= 0x80;
    assert!(matches!(
        handle(&index, &s, &resp, Transport::Udp).outcome,
        Outcome::Drop
    ));
    // Two questions: FORMERR.
    let mut m = Message::new(7, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        Name::from_str("a.cluster.local").unwrap(),
        RecordType::A,
    ));
    m.add_query(Query::query(
        Name::from_str("b.cluster.local").unwrap(),
        RecordType::A,
    ));
    let h = handle(&index, &s, &m.to_vec().unwrap(), Transport::Udp);
    assert_eq!(h.rcode, ResponseCode::FormErr);
    // No question: FORMERR.
    let m = Message::new(8, MessageType::Query, OpCode::Query);
    assert_eq!(
        handle(&index, &s, &m.to_vec().unwrap(), Transport::Udp).rcode,
        ResponseCode::FormErr
    );
    // An UPDATE: NOTIMP.
    let mut m = Message::new(9, MessageType::Query, OpCode::Update);
    m.add_query(Query::query(
        Name::from_str("cluster.local").unwrap(),
        RecordType::SOA,
    ));
    assert_eq!(
        handle(&index, &s, &m.to_vec().unwrap(), Transport::Udp).rcode,
        ResponseCode::NotImp
    );
    // Class CH in the cluster domain: REFUSED.
    let mut q = Query::query(
        Name::from_str("web.default.svc.cluster.local").unwrap(),
        RecordType::A,
    );
    q.set_query_class(DNSClass::CH);
    let mut m = Message::new(10, MessageType::Query, OpCode::Query);
    m.add_query(q);
    assert_eq!(
        handle(&index, &s, &m.to_vec().unwrap(), Transport::Udp).rcode,
        ResponseCode::Refused
    );
    // An oversized query (64 KiB of trailing junk) is answered or refused, not a crash.
    let mut big = query_packet("web.default.svc.cluster.local", RecordType::A, None);
    big.resize(65_535, 0xff);
    let _ = handle(&index, &s, &big, Transport::Udp);
}

#[test]
fn any_query_returns_what_exists() {
    let index = cluster();
    let m = ask(&index, "web.default.svc.cluster.local", RecordType::ANY);
    assert!(ips(&m).contains(&ip("10.96.0.20")));
}

#[test]
fn bad_cluster_domains_are_rejected() {
    assert!(Settings::new("", 5).is_err());
    assert!(Settings::new(".", 5).is_err());
    assert!(Settings::new("cluster.local", 5).is_ok());
}
