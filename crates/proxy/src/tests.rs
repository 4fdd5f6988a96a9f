//! Unit tests of rule generation, partial sync, conntrack flushing, coalescing and health, with
//! a recording fake of the iptables runner.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

use crate::iptables::{Conntrack, ConntrackFilter, Iptables};
use crate::model::{snapshot, Snapshot};
use crate::rules::{generate, RuleConfig, RuleSet, Table};
use crate::syncer::{cleanup, Syncer};
use crate::Error;

/// Records every call; optionally fails the next restore.
#[derive(Default)]
struct Recorder {
    batches: Vec<String>,
    chains: BTreeMap<Table, Vec<String>>,
    ensured: Vec<(Table, String, Vec<String>)>,
    deleted_rules: usize,
    fail_next_restore: bool,
}

impl Iptables for Recorder {
    fn restore(&mut self, batch: &str) -> Result<(), Error> {
        if std::mem::take(&mut self.fail_next_restore) {
            return Err(Error::Command {
                command: "iptables-restore".into(),
                message: "injected failure".into(),
            });
        }
        self.batches.push(batch.to_string());
        Ok(())
    }
    fn list_chains(&mut self, table: Table) -> Result<Vec<String>, Error> {
        Ok(self.chains.get(&table).cloned().unwrap_or_default())
    }
    fn ensure_rule(&mut self, table: Table, chain: &str, args: &[String]) -> Result<(), Error> {
        self.ensured.push((table, chain.to_string(), args.to_vec()));
        Ok(())
    }
    fn delete_rule(&mut self, _: Table, _: &str, _: &[String]) -> Result<bool, Error> {
        // Each jump rule exists once.
        self.deleted_rules += 1;
        Ok(self.deleted_rules % 2 == 1)
    }
}

#[derive(Default)]
struct ConntrackRecorder {
    flushed: Vec<ConntrackFilter>,
}

impl Conntrack for ConntrackRecorder {
    fn delete(&mut self, filter: &ConntrackFilter) -> Result<(), Error> {
        self.flushed.push(filter.clone());
        Ok(())
    }
}

fn service(name: &str, spec: serde_json::Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"namespace": "ns1", "name": name},
        "spec": spec,
    }))
    .unwrap()
}

/// A slice of `service` with `endpoints` as (ip, ready, serving, terminating, node).
fn slice(
    service: &str,
    suffix: &str,
    ports: serde_json::Value,
    endpoints: &[(&str, bool, bool, bool, &str)],
) -> EndpointSlice {
    let endpoints: Vec<_> = endpoints
        .iter()
        .map(|(ip, ready, serving, terminating, node)| {
            json!({
                "addresses": [ip],
                "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
                "nodeName": node,
            })
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": {
            "namespace": "ns1",
            "name": format!("{service}-{suffix}"),
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": endpoints,
    }))
    .unwrap()
}

fn ready(ip: &str) -> (&str, bool, bool, bool, &str) {
    (ip, true, true, false, "node-b")
}

fn config() -> RuleConfig {
    RuleConfig {
        cluster_cidr: Some("10.244.0.0/16".parse().unwrap()),
        node_port_addresses: Vec::new(),
    }
}

fn web_service(extra: serde_json::Value) -> Service {
    let mut spec = json!({
        "clusterIP": "10.96.0.41",
        "ports": [{"name": "p80", "port": 80, "protocol": "TCP", "targetPort": 8080}],
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    service("svc1", spec)
}

fn p80() -> serde_json::Value {
    json!([{"name": "p80", "port": 8080, "protocol": "TCP"}])
}

fn rules_for(services: &[Service], slices: &[EndpointSlice]) -> RuleSet {
    generate(&snapshot(services, slices, "node-a"), &config())
}

fn chain<'a>(rules: &'a RuleSet, table: Table, name: &str) -> &'a [String] {
    rules.chain(table, name).unwrap_or_else(|| {
        let names: Vec<&str> = rules.chains(table).into_iter().map(|(c, _)| c).collect();
        panic!("no chain {name} in {table:?}: {names:?}")
    })
}

fn chains_with_prefix(rules: &RuleSet, table: Table, prefix: &str) -> Vec<String> {
    rules
        .chains(table)
        .into_iter()
        .map(|(c, _)| c.to_string())
        .filter(|c| c.starts_with(prefix))
        .collect()
}

#[test]
fn chain_names_match_upstream_hashes() {
    let name = crate::model::ServicePortName {
        namespace: "ns1".into(),
        name: "svc1".into(),
        port: "p80".into(),
    };
    // Values from kube-proxy's own iptables proxier tests.
    assert_eq!(
        crate::rules::service_chain(&name, "tcp"),
        "KUBE-SVC-XPGD46QRK7WJZT7O"
    );
    assert_eq!(
        crate::rules::endpoint_chain(&name, "tcp", "10.180.0.1:80"),
        "KUBE-SEP-SXIVWICOYRO3J4NJ"
    );
    assert_eq!(crate::rules::probability(3), "0.3333333333");
    assert_eq!(crate::rules::probability(2), "0.5000000000");
}

#[test]
fn cluster_ip_balances_randomly_over_ready_endpoints() {
    let rules = rules_for(
        &[web_service(json!({}))],
        &[slice(
            "svc1",
            "a",
            p80(),
            &[
                ready("10.244.1.3"),
                ready("10.244.1.1"),
                ready("10.244.1.2"),
                ("10.244.1.9", false, false, false, "node-b"),
            ],
        )],
    );
    let services = chain(&rules, Table::Nat, "KUBE-SERVICES");
    assert_eq!(
        services[0],
        "-A KUBE-SERVICES -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 10.96.0.41 --dport 80 -j KUBE-SVC-KMNSQEF3DKTZKFQ6"
            .replace("KUBE-SVC-KMNSQEF3DKTZKFQ6", &chains_with_prefix(&rules, Table::Nat, "KUBE-SVC-")[0])
    );
    let svc_chain = &chains_with_prefix(&rules, Table::Nat, "KUBE-SVC-")[0];
    let svc = chain(&rules, Table::Nat, svc_chain);
    assert_eq!(svc.len(), 4, "{svc:#?}");
    assert_eq!(
        svc[0],
        format!("-A {svc_chain} -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 10.96.0.41 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ")
    );
    assert!(svc[1].contains("\"ns1/svc1:p80 -> 10.244.1.1:8080\" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-"), "{}", svc[1]);
    assert!(svc[2].contains("\"ns1/svc1:p80 -> 10.244.1.2:8080\" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-"), "{}", svc[2]);
    assert!(
        svc[3].contains("\"ns1/svc1:p80 -> 10.244.1.3:8080\" -j KUBE-SEP-"),
        "{}",
        svc[3]
    );
    assert!(
        !svc.iter().any(|r| r.contains("10.244.1.9")),
        "not-ready endpoint used"
    );
    assert_eq!(chains_with_prefix(&rules, Table::Nat, "KUBE-SEP-").len(), 3);
    // The nodeports tail call is last and there is no REJECT.
    assert!(services
        .last()
        .unwrap()
        .ends_with("-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS"));
    assert!(chain(&rules, Table::Filter, "KUBE-SERVICES").is_empty());
}

#[test]
fn endpoint_chain_masquerades_hairpin_and_dnats() {
    let rules = rules_for(
        &[web_service(json!({}))],
        &[slice("svc1", "a", p80(), &[ready("10.244.1.1")])],
    );
    let sep_name = &chains_with_prefix(&rules, Table::Nat, "KUBE-SEP-")[0];
    assert_eq!(
        chain(&rules, Table::Nat, sep_name),
        [
            format!("-A {sep_name} -m comment --comment ns1/svc1:p80 -s 10.244.1.1 -j KUBE-MARK-MASQ"),
            format!("-A {sep_name} -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.244.1.1:8080"),
        ]
    );
    assert_eq!(
        chain(&rules, Table::Nat, "KUBE-POSTROUTING"),
        [
            "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
            "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
            "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully",
        ]
    );
}

#[test]
fn serving_terminating_endpoints_are_the_fallback_when_none_is_ready() {
    let rules = rules_for(
        &[web_service(json!({}))],
        &[slice(
            "svc1",
            "a",
            p80(),
            &[
                ("10.244.1.1", false, true, true, "node-b"),
                ("10.244.1.2", false, false, true, "node-b"),
            ],
        )],
    );
    let seps = chains_with_prefix(&rules, Table::Nat, "KUBE-SEP-");
    assert_eq!(seps.len(), 1);
    assert!(chain(&rules, Table::Nat, &seps[0])[1].ends_with("10.244.1.1:8080"));
}

#[test]
fn node_port_is_captured_and_masqueraded() {
    let rules = rules_for(
        &[web_service(json!({"type": "NodePort", "ports": [
            {"name": "p80", "port": 80, "protocol": "TCP", "targetPort": 8080, "nodePort": 30080}
        ]}))],
        &[slice("svc1", "a", p80(), &[ready("10.244.1.1")])],
    );
    let ext = &chains_with_prefix(&rules, Table::Nat, "KUBE-EXT-")[0];
    let svc = &chains_with_prefix(&rules, Table::Nat, "KUBE-SVC-")[0];
    assert_eq!(ext[9..], svc[9..], "EXT and SVC share the hash");
    assert_eq!(
        chain(&rules, Table::Nat, "KUBE-NODEPORTS"),
        [format!("-A KUBE-NODEPORTS -m comment --comment ns1/svc1:p80 -m tcp -p tcp --dport 30080 -j {ext}")]
    );
    assert_eq!(
        chain(&rules, Table::Nat, ext),
        [
            format!("-A {ext} -m comment --comment \"masquerade traffic for ns1/svc1:p80 external destinations\" -j KUBE-MARK-MASQ"),
            format!("-A {ext} -j {svc}"),
        ]
    );
}

#[test]
fn node_port_addresses_restrict_the_tail_call() {
    let snapshot = snapshot(&[web_service(json!({}))], &[], "node-a");
    let rules = generate(
        &snapshot,
        &RuleConfig {
            cluster_cidr: None,
            node_port_addresses: vec![Ipv4Addr::new(192, 168, 77, 2)],
        },
    );
    assert!(chain(&rules, Table::Nat, "KUBE-SERVICES")
        .last()
        .unwrap()
        .ends_with("-d 192.168.77.2 -j KUBE-NODEPORTS"));
}

#[test]
fn client_ip_affinity_uses_recent_with_its_timeout() {
    let rules = rules_for(
        &[web_service(json!({
            "sessionAffinity": "ClientIP",
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}},
        }))],
        &[slice(
            "svc1",
            "a",
            p80(),
            &[ready("10.244.1.1"), ready("10.244.1.2")],
        )],
    );
    let svc_name = &chains_with_prefix(&rules, Table::Nat, "KUBE-SVC-")[0];
    let svc = chain(&rules, Table::Nat, svc_name);
    let seps = chains_with_prefix(&rules, Table::Nat, "KUBE-SEP-");
    let rcheck: Vec<&String> = svc.iter().filter(|r| r.contains("--rcheck")).collect();
    assert_eq!(rcheck.len(), 2);
    for sep in &seps {
        assert!(
            rcheck.iter().any(|r| r.ends_with(&format!(
                "-m recent --name {sep} --rcheck --seconds 600 --reap -j {sep}"
            ))),
            "{rcheck:#?}"
        );
        let dnat = &chain(&rules, Table::Nat, sep)[1];
        assert!(
            dnat.contains(&format!(
                "-m recent --name {sep} --set -m tcp -p tcp -j DNAT"
            )),
            "{dnat}"
        );
    }
    // Affinity checks come before the random rules.
    assert!(svc[1].contains("--rcheck") && svc[3].contains("--probability"));
}

#[test]
fn service_without_endpoints_is_rejected_in_filter() {
    let rules = rules_for(
        &[web_service(json!({"type": "NodePort", "ports": [
            {"name": "p80", "port": 80, "protocol": "TCP", "targetPort": 8080, "nodePort": 30080}
        ]}))],
        &[slice(
            "svc1",
            "a",
            p80(),
            &[("10.244.1.1", false, false, false, "node-b")],
        )],
    );
    assert_eq!(
        chain(&rules, Table::Filter, "KUBE-SERVICES"),
        ["-A KUBE-SERVICES -m comment --comment \"ns1/svc1:p80 has no endpoints\" -m tcp -p tcp -d 10.96.0.41 --dport 80 -j REJECT --reject-with tcp-reset"]
    );
    assert_eq!(
        chain(&rules, Table::Filter, "KUBE-EXTERNAL-SERVICES"),
        ["-A KUBE-EXTERNAL-SERVICES -m comment --comment \"ns1/svc1:p80 has no endpoints\" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j REJECT --reject-with tcp-reset"]
    );
    assert!(chains_with_prefix(&rules, Table::Nat, "KUBE-SVC-").is_empty());
    assert!(chain(&rules, Table::Nat, "KUBE-NODEPORTS").is_empty());
    assert_eq!(
        chain(&rules, Table::Nat, "KUBE-SERVICES").len(),
        1,
        "only the nodeports tail"
    );
}

#[test]
fn external_policy_local_keeps_the_client_and_uses_local_endpoints() {
    let local_service = web_service(
        json!({"type": "NodePort", "externalTrafficPolicy": "Local", "ports": [
            {"name": "p80", "port": 80, "protocol": "TCP", "targetPort": 8080, "nodePort": 30080}
        ]}),
    );
    let rules = rules_for(
        std::slice::from_ref(&local_service),
        &[slice(
            "svc1",
            "a",
            p80(),
            &[
                ("10.244.0.5", true, true, false, "node-a"),
                ready("10.244.1.1"),
            ],
        )],
    );
    let svl = &chains_with_prefix(&rules, Table::Nat, "KUBE-SVL-")[0];
    let svc = &chains_with_prefix(&rules, Table::Nat, "KUBE-SVC-")[0];
    let ext = &chains_with_prefix(&rules, Table::Nat, "KUBE-EXT-")[0];
    let local_rules = chain(&rules, Table::Nat, svl);
    assert_eq!(local_rules.len(), 1);
    assert!(local_rules[0].contains("-> 10.244.0.5:8080"));
    let ext_rules = chain(&rules, Table::Nat, ext);
    assert!(
        !ext_rules
            .iter()
            .any(|r| r.contains("\"masquerade traffic for")),
        "no blanket masquerade"
    );
    assert_eq!(ext_rules.last().unwrap(), &format!("-A {ext} -j {svl}"));
    assert!(ext_rules[0].contains("-s 10.244.0.0/16 -j ") && ext_rules[0].ends_with(svc.as_str()));
    assert!(ext_rules[1].contains("--src-type LOCAL -j KUBE-MARK-MASQ"));
    // ClusterIP traffic still uses every endpoint.
    assert_eq!(chain(&rules, Table::Nat, svc).len(), 3);

    // Without a local endpoint: external traffic is dropped, the cluster IP still works.
    let rules = rules_for(
        &[local_service],
        &[slice("svc1", "a", p80(), &[ready("10.244.1.1")])],
    );
    assert_eq!(
        chain(&rules, Table::Filter, "KUBE-EXTERNAL-SERVICES"),
        ["-A KUBE-EXTERNAL-SERVICES -m comment --comment \"ns1/svc1:p80 has no local endpoints\" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j DROP"]
    );
    assert!(chains_with_prefix(&rules, Table::Nat, "KUBE-SVL-").is_empty());
    assert!(chain(&rules, Table::Filter, "KUBE-SERVICES").is_empty());
}

#[test]
fn multiple_ports_and_named_target_ports_get_their_own_chains() {
    let svc = service(
        "multi",
        json!({"clusterIP": "10.96.0.50", "ports": [
            {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "web"},
            {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353},
        ]}),
    );
    // The endpointslice controller resolved the named port "web" to 8080 in the slice.
    let slices = [slice(
        "multi",
        "a",
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "dns", "port": 5353, "protocol": "UDP"}]),
        &[ready("10.244.1.1")],
    )];
    let rules = rules_for(&[svc], &slices);
    assert_eq!(chains_with_prefix(&rules, Table::Nat, "KUBE-SVC-").len(), 2);
    let dnats: Vec<&String> = rules
        .chains(Table::Nat)
        .into_iter()
        .flat_map(|(_, lines)| lines)
        .filter(|r| r.contains("DNAT"))
        .collect();
    assert_eq!(dnats.len(), 2);
    assert!(dnats
        .iter()
        .any(|r| r.contains("-m tcp -p tcp -j DNAT --to-destination 10.244.1.1:8080")));
    assert!(dnats
        .iter()
        .any(|r| r.contains("-m udp -p udp -j DNAT --to-destination 10.244.1.1:5353")));
    let services = chain(&rules, Table::Nat, "KUBE-SERVICES");
    assert!(services
        .iter()
        .any(|r| r.contains("multi:http cluster IP\" -m tcp -p tcp -d 10.96.0.50 --dport 80")));
    assert!(services
        .iter()
        .any(|r| r.contains("multi:dns cluster IP\" -m udp -p udp -d 10.96.0.50 --dport 53")));
}

#[test]
fn headless_and_external_name_services_get_no_rules() {
    let headless = service("h", json!({"clusterIP": "None", "ports": [{"port": 80}]}));
    let external = service(
        "e",
        json!({"type": "ExternalName", "externalName": "example.org"}),
    );
    let rules = rules_for(&[headless, external], &[]);
    assert_eq!(chain(&rules, Table::Nat, "KUBE-SERVICES").len(), 1);
    assert!(chain(&rules, Table::Filter, "KUBE-SERVICES").is_empty());
}

fn lines(batch: &str) -> Vec<&str> {
    batch.lines().collect()
}

fn snap(endpoints: &[&str]) -> Snapshot {
    let eps: Vec<_> = endpoints.iter().map(|ip| ready(ip)).collect();
    snapshot(
        &[
            web_service(json!({})),
            service(
                "other",
                json!({"clusterIP": "10.96.0.42", "ports": [{"name": "p80", "port": 80}]}),
            ),
        ],
        &[
            slice("svc1", "a", p80(), &eps),
            slice("other", "a", p80(), &[ready("10.244.2.1")]),
        ],
        "node-a",
    )
}

#[test]
fn first_sync_is_full_and_keeps_jump_rules() {
    let mut recorder = Recorder::default();
    recorder.chains.insert(
        Table::Nat,
        vec![
            "KUBE-SVC-STALESTALESTALE1".into(),
            "DOCKER".into(),
            "KUBE-SERVICES".into(),
        ],
    );
    let mut syncer = Syncer::new(recorder, ConntrackRecorder::default(), config());
    let report = syncer.sync(&snap(&["10.244.1.1"])).unwrap();
    assert!(report.full);
    let rec = syncer.iptables();
    assert_eq!(rec.batches.len(), 1);
    let batch = lines(&rec.batches[0]);
    assert!(batch.contains(&"*filter") && batch.contains(&"*nat"));
    assert!(batch.contains(&":KUBE-SERVICES - [0:0]"));
    assert!(
        batch.contains(&"-X KUBE-SVC-STALESTALESTALE1"),
        "stale chain deleted"
    );
    assert!(
        !rec.batches[0].contains("DOCKER"),
        "foreign chains untouched"
    );
    assert_eq!(rec.ensured.len(), crate::rules::jump_rules().len());
    assert!(rec.ensured.iter().any(|(t, c, a)| *t == Table::Nat
        && c == "PREROUTING"
        && a.ends_with(&["-j".to_string(), "KUBE-SERVICES".to_string()])));
}

#[test]
fn partial_sync_sends_only_changed_chains() {
    let mut syncer = Syncer::new(Recorder::default(), ConntrackRecorder::default(), config());
    syncer.sync(&snap(&["10.244.1.1", "10.244.1.2"])).unwrap();
    let ensured = syncer.iptables().ensured.len();

    // No change: nothing is sent.
    let report = syncer.sync(&snap(&["10.244.1.1", "10.244.1.2"])).unwrap();
    assert!(!report.full);
    assert_eq!(syncer.iptables().batches.len(), 1);

    // One endpoint replaced: the service chain, the new endpoint chain, the old one deleted.
    let report = syncer.sync(&snap(&["10.244.1.1", "10.244.1.3"])).unwrap();
    assert!(!report.full);
    let rec = syncer.iptables();
    assert_eq!(rec.batches.len(), 2);
    assert_eq!(
        rec.ensured.len(),
        ensured,
        "jumps are only checked on full syncs"
    );
    let batch = &rec.batches[1];
    let name = crate::model::ServicePortName {
        namespace: "ns1".into(),
        name: "svc1".into(),
        port: "p80".into(),
    };
    let svc = crate::rules::service_chain(&name, "tcp");
    let kept = crate::rules::endpoint_chain(&name, "tcp", "10.244.1.1:8080");
    let added = crate::rules::endpoint_chain(&name, "tcp", "10.244.1.3:8080");
    let removed = crate::rules::endpoint_chain(&name, "tcp", "10.244.1.2:8080");
    let declared: Vec<&str> = batch.lines().filter(|l| l.starts_with(':')).collect();
    assert_eq!(
        declared,
        [
            format!(":{added} - [0:0]"),
            format!(":{svc} - [0:0]"),
            format!(":{removed} - [0:0]")
        ]
    );
    assert!(batch.contains(&format!("-X {removed}\n")));
    assert!(
        !batch.contains(&format!("-A {kept} ")),
        "unchanged endpoint chain rewritten"
    );
    assert!(
        batch.contains(&format!("-j {kept}\n")),
        "the service chain still jumps to it"
    );
    assert!(!batch.contains("*filter"), "unchanged table sent");
    assert!(
        !batch.contains("KUBE-SERVICES"),
        "unchanged KUBE-SERVICES rewritten"
    );
    assert_eq!(report.batch_stats.chains_written, 2);
    assert_eq!(report.batch_stats.chains_deleted, 1);

    // All endpoints gone: KUBE-SERVICES in both tables changes, the service chains go.
    syncer.sync(&snap(&[])).unwrap();
    let batch = syncer.iptables().batches[2].clone();
    assert!(batch.contains("*filter") && batch.contains("has no endpoints"));
    assert!(batch.contains(&format!("-X {svc}\n")));
    assert!(batch.contains(&format!("-X {kept}\n")));
}

#[test]
fn incremental_generation_reuses_unchanged_ports_and_equals_a_fresh_one() {
    use crate::rules::{generate_from, render_batch};
    let steps = [
        snap(&["10.244.1.1", "10.244.1.2"]),
        snap(&["10.244.1.1", "10.244.1.3"]),
        snap(&[]),
        snap(&["10.244.1.9"]),
        snapshot(&[web_service(json!({}))], &[], "node-a"),
        snap(&["10.244.1.1"]),
    ];
    let mut previous = generate(&steps[0], &config());
    for next in &steps[1..] {
        let incremental = generate_from(Some(&previous), next, &config());
        let fresh = generate(next, &config());
        assert_eq!(
            incremental, fresh,
            "incremental generation differs for {next:?}"
        );
        // Ports whose inputs are unchanged share their generated rules with the last set.
        for (name, entry) in incremental.services() {
            let unchanged = previous
                .service(name)
                .is_some_and(|p| p.port == entry.port && p.endpoints == entry.endpoints);
            let shared = previous
                .service(name)
                .is_some_and(|p| std::sync::Arc::ptr_eq(p, entry));
            assert_eq!(
                unchanged, shared,
                "{name}: reuse does not follow the inputs"
            );
        }
        // The incremental batch and the one from fresh sets are the same text.
        let fresh_previous = {
            let mut rebuilt = Snapshot::default();
            for (name, entry) in previous.services() {
                rebuilt
                    .services
                    .insert(name.clone(), (entry.port.clone(), entry.endpoints.clone()));
            }
            generate(&rebuilt, &config())
        };
        let none = Default::default();
        assert_eq!(
            render_batch(&incremental, Some(&previous), &none),
            render_batch(&fresh, Some(&fresh_previous), &none)
        );
        previous = incremental;
    }
}

#[test]
fn a_failed_restore_makes_the_next_sync_full() {
    let mut syncer = Syncer::new(Recorder::default(), ConntrackRecorder::default(), config());
    syncer.sync(&snap(&["10.244.1.1"])).unwrap();
    syncer.iptables().fail_next_restore = true;
    assert!(syncer.sync(&snap(&["10.244.1.2"])).is_err());
    let report = syncer.sync(&snap(&["10.244.1.2"])).unwrap();
    assert!(report.full);
    assert!(syncer.iptables().batches[1].contains(":KUBE-MARK-MASQ - [0:0]"));
}

#[test]
fn removed_udp_endpoints_have_their_flows_flushed() {
    let dns = |eps: &[&str]| {
        let eps: Vec<_> = eps.iter().map(|ip| ready(ip)).collect();
        snapshot(
            &[service(
                "dns",
                json!({"clusterIP": "10.96.0.10", "type": "NodePort", "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053}
                ]}),
            )],
            &[slice(
                "dns",
                "a",
                json!([{"name": "dns", "port": 53, "protocol": "UDP"}]),
                &eps,
            )],
            "node-a",
        )
    };
    let mut syncer = Syncer::new(Recorder::default(), ConntrackRecorder::default(), config());
    syncer.sync(&dns(&[])).unwrap();
    let report = syncer.sync(&dns(&["10.244.1.1", "10.244.1.2"])).unwrap();
    assert_eq!(
        report.conntrack_flushed,
        [
            ConntrackFilter::ServiceIp(Ipv4Addr::new(10, 96, 0, 10)),
            ConntrackFilter::NodePort(30053)
        ]
    );
    let report = syncer.sync(&dns(&["10.244.1.2"])).unwrap();
    let gone = Ipv4Addr::new(10, 244, 1, 1);
    assert_eq!(
        report.conntrack_flushed,
        [
            ConntrackFilter::ServiceEndpoint {
                service: Ipv4Addr::new(10, 96, 0, 10),
                endpoint: gone
            },
            ConntrackFilter::NodePortEndpoint {
                node_port: 30053,
                endpoint: gone
            },
        ]
    );
    assert_eq!(syncer.conntrack().flushed.len(), 4);
    assert_eq!(
        report.conntrack_flushed[0].args(),
        [
            "-D",
            "-p",
            "udp",
            "--orig-dst",
            "10.96.0.10",
            "--dst-nat",
            "10.244.1.1"
        ]
    );
    // TCP services never flush.
    let report = syncer.sync(&snap(&["10.244.1.1"])).unwrap();
    assert!(report.conntrack_flushed.iter().all(|f| matches!(
        f,
        ConntrackFilter::ServiceEndpoint { .. } | ConntrackFilter::NodePortEndpoint { .. }
    )));
}

#[test]
fn cleanup_removes_only_own_chains_and_jumps() {
    let mut recorder = Recorder::default();
    recorder.chains.insert(
        Table::Nat,
        vec![
            "KUBE-SERVICES".into(),
            "KUBE-SEP-ABC".into(),
            "DOCKER".into(),
            "KUBE-MARK-MASQ".into(),
        ],
    );
    recorder.chains.insert(
        Table::Filter,
        vec!["KUBE-FORWARD".into(), "INPUT-EXTRA".into()],
    );
    let deleted = cleanup(&mut recorder).unwrap();
    assert_eq!(deleted.len(), 4);
    let batch = &recorder.batches[0];
    assert!(batch.contains("-X KUBE-SEP-ABC\n") && batch.contains("-X KUBE-FORWARD\n"));
    assert!(!batch.contains("DOCKER") && !batch.contains("INPUT-EXTRA"));
    // Every jump deleted once, then found absent.
    assert_eq!(recorder.deleted_rules, 2 * crate::rules::jump_rules().len());
}

#[tokio::test(start_paused = true)]
async fn bursts_of_changes_are_coalesced_into_few_syncs() {
    let trigger = Arc::new(tokio::sync::Notify::new());
    let syncs = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let counter = syncs.clone();
    let task = tokio::spawn(crate::controller::sync_loop(
        trigger.clone(),
        Duration::from_secs(1),
        Duration::from_secs(30),
        move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                true
            }
        },
        async {
            let _ = stop_rx.await;
        },
    ));
    // The first change syncs at once.
    trigger.notify_one();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(syncs.load(Ordering::SeqCst), 1);
    // 100 changes within 500 ms: one more sync, at the end of the min sync period.
    for _ in 0..100 {
        trigger.notify_one();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        syncs.load(Ordering::SeqCst),
        1,
        "synced inside the min sync period"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(syncs.load(Ordering::SeqCst), 2);
    // Quiet: the periodic resync comes after the sync period.
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert_eq!(syncs.load(Ordering::SeqCst), 2);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(syncs.load(Ordering::SeqCst), 3);
    stop_tx.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_failed_sync_is_retried_after_the_min_period() {
    let trigger = Arc::new(tokio::sync::Notify::new());
    let syncs = Arc::new(AtomicUsize::new(0));
    let counter = syncs.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(crate::controller::sync_loop(
        trigger.clone(),
        Duration::from_secs(1),
        Duration::from_secs(30),
        move || {
            let counter = counter.clone();
            async move { counter.fetch_add(1, Ordering::SeqCst) >= 2 }
        },
        async {
            let _ = stop_rx.await;
        },
    ));
    trigger.notify_one();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(syncs.load(Ordering::SeqCst), 3, "two failures retried");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(syncs.load(Ordering::SeqCst), 3, "success stops the retries");
    stop_tx.send(()).unwrap();
    task.await.unwrap();
}

#[test]
fn health_follows_the_last_successful_sync() {
    let health = crate::metrics::Health::new(Duration::from_secs(60));
    let now = std::time::Instant::now();
    assert!(
        health.check_at(now).is_err(),
        "unhealthy before the first sync"
    );
    health.synced(now);
    assert!(health.check_at(now + Duration::from_secs(59)).is_ok());
    assert!(health.check_at(now + Duration::from_secs(61)).is_err());
}
