//! Hostile input: wrong types, nulls and huge arrays anywhere in a pod never panic, and
//! wrongly-typed security fields fail closed.

use podsecurity::admission::{Admission, Attributes, Cluster, Config, Operation};
use podsecurity::{evaluate, evaluate_pod, policy_from_labels, Level, LevelVersion, Version};
use serde_json::{json, Map, Value};

const LEVELS: [LevelVersion; 6] = [
    LevelVersion {
        level: Level::Baseline,
        version: Version::V1(0),
    },
    LevelVersion {
        level: Level::Baseline,
        version: Version::V1(18),
    },
    LevelVersion {
        level: Level::Baseline,
        version: Version::Latest,
    },
    LevelVersion {
        level: Level::Restricted,
        version: Version::V1(0),
    },
    LevelVersion {
        level: Level::Restricted,
        version: Version::V1(24),
    },
    LevelVersion {
        level: Level::Restricted,
        version: Version::Latest,
    },
];

/// A small deterministic xorshift generator (no dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn junk(&mut self, depth: u32) -> Value {
        match self.below(if depth > 2 { 6 } else { 8 }) {
            0 => Value::Null,
            1 => json!(self.below(2) == 0),
            2 => json!(self.below(70000) as i64 - 5),
            3 => json!(-0.0),
            4 => json!(
                ["ALL", "x", "", "Default", "windows", "RuntimeDefault"][self.below(6) as usize]
            ),
            5 => json!(u64::MAX),
            6 => Value::Array((0..self.below(3)).map(|_| self.junk(depth + 1)).collect()),
            _ => {
                let keys = [
                    "type",
                    "name",
                    "hostPort",
                    "privileged",
                    "add",
                    "drop",
                    "runAsUser",
                ];
                let mut m = Map::new();
                for _ in 0..self.below(3) {
                    m.insert(
                        keys[self.below(keys.len() as u64) as usize].into(),
                        self.junk(depth + 1),
                    );
                }
                Value::Object(m)
            }
        }
    }
}

fn sample_pod() -> Value {
    let sc = json!({
        "privileged": true, "allowPrivilegeEscalation": false, "runAsNonRoot": true, "runAsUser": 0,
        "procMount": "Unmasked", "capabilities": {"add": ["NET_RAW"], "drop": ["ALL"]},
        "seccompProfile": {"type": "Unconfined"}, "appArmorProfile": {"type": "Unconfined"},
        "seLinuxOptions": {"type": "spc_t", "user": "u", "role": "r"},
        "windowsOptions": {"hostProcess": true}, "sysctls": [{"name": "kernel.msgmax"}],
    });
    let c = json!({"name": "c", "image": "i", "ports": [{"hostPort": 80}], "securityContext": sc});
    json!({
        "kind": "Pod",
        "metadata": {"name": "p", "annotations": {
            "container.apparmor.security.beta.kubernetes.io/c": "unconfined",
            "seccomp.security.alpha.kubernetes.io/pod": "unconfined"}},
        "spec": {
            "hostNetwork": true, "hostPID": true, "hostIPC": true, "hostUsers": false,
            "os": {"name": "windows"}, "runtimeClassName": "rc",
            "securityContext": sc,
            "volumes": [{"name": "v", "hostPath": {"path": "/"}}],
            "containers": [c.clone()], "initContainers": [c.clone()], "ephemeralContainers": [c],
        },
    })
}

/// Every JSON pointer in a value.
fn pointers(v: &Value, prefix: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{prefix}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(x, p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let p = format!("{prefix}/{i}");
                out.push(p.clone());
                pointers(x, p, out);
            }
        }
        _ => {}
    }
}

struct Labels(Map<String, Value>);

impl Cluster for Labels {
    fn namespace_labels(&self, _: &str) -> Result<Map<String, Value>, String> {
        Ok(self.0.clone())
    }
    fn list_pods(&self, _: &str) -> Result<Vec<Value>, String> {
        Ok(vec![
            sample_pod(),
            json!(null),
            json!({"metadata": 5, "spec": []}),
        ])
    }
}

fn exercise(pod: &Value, old: &Value) {
    for lv in &LEVELS {
        let _ = evaluate_pod(lv, pod);
    }
    let mut labels = Map::new();
    labels.insert(
        "pod-security.kubernetes.io/enforce".into(),
        json!("restricted"),
    );
    let cluster = Labels(labels);
    let a = Admission::new(Config::default());
    for (group, resource) in [
        ("", "pods"),
        ("apps", "deployments"),
        ("batch", "cronjobs"),
        ("", "namespaces"),
    ] {
        for op in [Operation::Create, Operation::Update] {
            let attrs = Attributes {
                operation: op,
                group,
                resource,
                subresource: "",
                namespace: "ns",
                name: "p",
                username: "u",
                object: pod,
                old_object: Some(old),
            };
            let r = a.validate(&attrs, &cluster);
            if let Some(d) = &r.denial {
                let _ = d.message(&attrs);
            }
        }
    }
}

#[test]
fn every_field_replaced_by_junk_never_panics() {
    let base = sample_pod();
    let mut paths = Vec::new();
    pointers(&base, String::new(), &mut paths);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for path in &paths {
        for _ in 0..6 {
            let mut pod = base.clone();
            if let Some(slot) = pod.pointer_mut(path) {
                *slot = rng.junk(0);
            }
            exercise(&pod, &base);
            exercise(&base, &pod);
        }
    }
    for top in [
        json!(null),
        json!([]),
        json!("pod"),
        json!(7),
        json!({"metadata": [], "spec": "x"}),
    ] {
        exercise(&top, &top);
        for lv in &LEVELS {
            let _ = evaluate(lv, &top, &top);
        }
    }
    let mut odd = Map::new();
    odd.insert(
        "pod-security.kubernetes.io/enforce".into(),
        json!({"a": [1]}),
    );
    odd.insert(
        "pod-security.kubernetes.io/audit-version".into(),
        json!("v1.99999999999999999999999"),
    );
    let (p, problems) = policy_from_labels(&odd);
    assert_eq!(p.enforce.level, Level::Restricted);
    assert_eq!(problems.len(), 2);
}

#[test]
fn wrongly_typed_security_fields_fail_closed() {
    let baseline = LevelVersion::new(Level::Baseline, Version::Latest);
    let restricted = LevelVersion::new(Level::Restricted, Version::Latest);
    let spec = |c: Value| json!({"containers": [c]});
    let m = json!({});
    let cases = [
        (baseline, json!({"hostNetwork": "true"})),
        (
            baseline,
            spec(json!({"name": "a", "securityContext": {"privileged": "yes"}})),
        ),
        (
            baseline,
            spec(json!({"name": "a", "ports": [{"hostPort": "80"}]})),
        ),
        (
            baseline,
            spec(json!({"name": "a", "ports": [{"hostPort": 1.5}]})),
        ),
        (
            baseline,
            spec(json!({"name": "a", "securityContext": {"capabilities": {"add": [5]}}})),
        ),
        (
            baseline,
            spec(json!({"name": "a", "securityContext": {"seccompProfile": {"type": 1}}})),
        ),
        (
            baseline,
            spec(json!({"name": "a", "securityContext": {"procMount": 0}})),
        ),
        (
            baseline,
            json!({"securityContext": {"seLinuxOptions": {"user": true}}}),
        ),
        (
            baseline,
            json!({"securityContext": {"windowsOptions": {"hostProcess": 1}}}),
        ),
        (
            baseline,
            json!({"volumes": [{"name": "v", "hostPath": "/"}]}),
        ),
        (
            restricted,
            spec(json!({"name": "a", "securityContext": {"allowPrivilegeEscalation": "false"}})),
        ),
        (restricted, json!({"securityContext": {"runAsUser": "0"}})),
        (
            restricted,
            json!({"volumes": [{"name": "v", "emptyDir": true}]}),
        ),
    ];
    for (lv, spec) in cases {
        assert!(!evaluate(&lv, &m, &spec).is_empty(), "{lv}: {spec}");
    }
}

#[test]
fn huge_arrays_are_handled() {
    let containers: Vec<Value> = (0..50_000)
        .map(|i| json!({"name": format!("c{i}"), "ports": [{"hostPort": i % 1000 + 1}], "securityContext": {"privileged": true}}))
        .collect();
    let volumes: Vec<Value> = (0..50_000)
        .map(|i| json!({"name": format!("v{i}"), "hostPath": {}}))
        .collect();
    let spec = json!({"containers": containers, "volumes": volumes});
    let r = evaluate(
        &LevelVersion::new(Level::Restricted, Version::Latest),
        &json!({}),
        &spec,
    );
    let reasons: Vec<&str> = r.iter().map(|x| x.forbidden_reason.as_str()).collect();
    assert!(reasons.contains(&"hostPort") && reasons.contains(&"privileged"));
    assert!(reasons.contains(&"restricted volume types"));
    // ports are listed once each, sorted as strings (upstream's sets.String)
    let mut expected: Vec<String> = (1..=1000).map(|p: u32| p.to_string()).collect();
    expected.sort();
    let detail = r
        .iter()
        .find(|x| x.forbidden_reason == "hostPort")
        .map(|x| x.forbidden_detail.clone());
    assert!(detail.is_some_and(|d| d.ends_with(&format!("use hostPorts {}", expected.join(", ")))));
}
