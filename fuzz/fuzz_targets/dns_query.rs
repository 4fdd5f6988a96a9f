//! Fuzz target: the mini-dns query path. The input is a DNS request packet, answered from a
//! fixed index (a ClusterIP service, a headless one with endpoints, an ExternalName) over UDP and
//! TCP. Nothing may panic; every reply must parse, carry the request's id and fit the transport.

#![no_main]

use std::sync::OnceLock;

use dns::answer::{handle, udp_limit, Outcome, Settings, Transport};
use dns::index::Index;
use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fn index() -> &'static (Index, Settings) {
    static INDEX: OnceLock<(Index, Settings)> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut index = Index::new();
        let services = [
            json!({"metadata": {"namespace": "default", "name": "web"},
                   "spec": {"clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"],
                            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}),
            json!({"metadata": {"namespace": "db", "name": "pg"},
                   "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}}),
            json!({"metadata": {"namespace": "default", "name": "ext"},
                   "spec": {"type": "ExternalName", "externalName": "db.example.org"}}),
        ];
        for s in services {
            index.apply_service(&serde_json::from_value(s).expect("service"));
        }
        let endpoints: Vec<_> = (0..40)
            .map(|i| json!({"addresses": [format!("10.244.0.{}", i + 1)],
                            "conditions": {"ready": i % 3 != 0},
                            "hostname": format!("pg-{i}")}))
            .collect();
        let slice = json!({"metadata": {"namespace": "db", "name": "pg-1",
                                        "labels": {"kubernetes.io/service-name": "pg"}},
                           "addressType": "IPv4", "endpoints": endpoints,
                           "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]});
        index.apply_slice(&serde_json::from_value(slice).expect("slice"));
        (index, Settings::new("cluster.local", 5).expect("settings"))
    })
}

fuzz_target!(|data: &[u8]| {
    let (index, settings) = index();
    for transport in [Transport::Udp, Transport::Tcp] {
        let handled = handle(index, settings, data, transport);
        if let Outcome::Reply(bytes) = handled.outcome {
            let reply = Message::from_vec(&bytes).expect("replies parse");
            assert_eq!(&bytes[..2], &data[..2], "reply keeps the request id");
            match transport {
                Transport::Udp => {
                    let limit = Message::from_vec(data).map(|r| udp_limit(&r)).unwrap_or(512);
                    assert!(bytes.len() <= limit, "udp reply of {} > {limit}", bytes.len());
                }
                Transport::Tcp => assert!(bytes.len() <= usize::from(u16::MAX)),
            }
            assert!(reply.metadata.message_type == hickory_proto::op::MessageType::Response);
        }
    }
});
