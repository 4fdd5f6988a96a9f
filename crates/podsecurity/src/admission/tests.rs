//! Tests of the admission decisions, ported from upstream's
//! `staging/src/k8s.io/pod-security-admission/admission/admission_test.go`
//! (TestDefaultExtractPodSpec, TestDefaultHasPodSpec, TestValidateNamespace,
//! TestValidatePodAndController, TestPrioritizePods, TestExemptNamespaceWarning).

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::*;

fn labels(kvs: &[(&str, &str)]) -> Map<String, Value> {
    kvs.iter()
        .map(|(k, v)| (format!("{LABEL_PREFIX}{k}"), json!(v)))
        .collect()
}

#[derive(Default)]
struct FakeCluster {
    namespaces: HashMap<String, Map<String, Value>>,
    pods: Option<Result<Vec<Value>, String>>,
    listed: RefCell<bool>,
}

impl Cluster for FakeCluster {
    fn namespace_labels(&self, namespace: &str) -> Result<Map<String, Value>, String> {
        self.namespaces
            .get(namespace)
            .cloned()
            .ok_or_else(|| format!("namespaces \"{namespace}\" not found"))
    }

    fn list_pods(&self, _: &str) -> Result<Vec<Value>, String> {
        *self.listed.borrow_mut() = true;
        self.pods.clone().unwrap_or(Ok(Vec::new()))
    }
}

/// Upstream's testEvaluator: fails pods whose `error` annotation is set, with that reason.
#[derive(Default)]
struct AnnotationEvaluator {
    last: RefCell<Option<LevelVersion>>,
}

impl Evaluator for AnnotationEvaluator {
    fn evaluate_pod(&self, lv: &LevelVersion, meta: &Value, _: &Value) -> Vec<CheckResult> {
        *self.last.borrow_mut() = Some(*lv);
        match meta.pointer("/annotations/error").and_then(Value::as_str) {
            Some(e) if !e.is_empty() => vec![CheckResult::forbid(e, "")],
            _ => vec![CheckResult::allow()],
        }
    }
}

#[test]
fn extract_pod_spec_from_every_workload() {
    let metadata = json!({"name": "foo-pod"});
    let spec = json!({"containers": [{"name": "foo-container"}]});
    let tpl = json!({"metadata": metadata, "spec": spec});
    let objects = [
        ("", "pods", json!({"metadata": metadata, "spec": spec})),
        (
            "",
            "podtemplates",
            json!({"metadata": {"name": "t"}, "template": tpl}),
        ),
        (
            "",
            "replicationcontrollers",
            json!({"spec": {"template": tpl}}),
        ),
        ("apps", "replicasets", json!({"spec": {"template": tpl}})),
        ("apps", "deployments", json!({"spec": {"template": tpl}})),
        ("apps", "statefulsets", json!({"spec": {"template": tpl}})),
        ("apps", "daemonsets", json!({"spec": {"template": tpl}})),
        ("batch", "jobs", json!({"spec": {"template": tpl}})),
        (
            "batch",
            "cronjobs",
            json!({"spec": {"jobTemplate": {"spec": {"template": tpl}}}}),
        ),
    ];
    for (g, r, obj) in &objects {
        assert!(has_pod_spec(g, r), "{g}/{r}");
        let (m, s) = pod_template(g, r, obj).expect(r);
        assert_eq!(m, &metadata, "{r}");
        assert_eq!(s, &spec, "{r}");
    }
    assert!(pod_template("", "services", &json!({"metadata": {"name": "svc"}})).is_none());
    for (g, r) in [
        ("", "services"),
        ("admission.k8s.io", "admissionreviews"),
        ("apps", "foobars"),
        ("extensions", "deployments"),
    ] {
        assert!(!has_pod_spec(g, r), "{g}/{r}");
    }
    // An RC without a template is skipped; a Deployment without one evaluates as empty.
    assert!(pod_template("", "replicationcontrollers", &json!({"spec": {}})).is_none());
    let empty = json!({});
    let (m, s) = pod_template("apps", "deployments", &empty).expect("value template");
    assert!(m.is_null() && s.is_null());
}

#[test]
fn significant_pod_updates() {
    let pod = json!({"spec": {
        "containers": [{"name": "a", "image": "x"}],
        "initContainers": [{"name": "i", "image": "y"}],
        "ephemeralContainers": [{"name": "e", "image": "z"}],
    }});
    let mut tolerations = pod.clone();
    tolerations["spec"]["tolerations"] = json!([{"operator": "Exists"}]);
    tolerations["spec"]["activeDeadlineSeconds"] = json!(5);
    tolerations["metadata"] = json!({"labels": {"a": "b"}, "annotations": {"c": "d"}});
    tolerations["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    assert!(!is_significant_pod_update(&tolerations, &pod));
    let changes = [
        ("/spec/containers/0/image", json!("x2")),
        ("/spec/initContainers/0/image", json!("y2")),
        ("/spec/ephemeralContainers/0/image", json!("z2")),
        ("/spec/ephemeralContainers/0/name", json!("e2")),
        ("/spec/containers", json!([])),
        (
            "/spec/initContainers",
            json!([{"image": "y"}, {"image": "y"}]),
        ),
    ];
    for (path, value) in changes {
        let mut changed = pod.clone();
        *changed.pointer_mut(path).expect(path) = value;
        assert!(is_significant_pod_update(&changed, &pod), "{path}");
    }
    // removing an ephemeral container is not significant
    let mut removed = pod.clone();
    removed["spec"]["ephemeralContainers"] = json!([]);
    assert!(!is_significant_pod_update(&removed, &pod));
    assert!(!is_significant_pod_update(&json!("junk"), &json!(null)));
}

struct NsCase {
    name: &'static str,
    exempt_namespaces: Vec<&'static str>,
    exempt_runtime_classes: Vec<&'static str>,
    default_policy: Option<Policy>,
    new_labels: Map<String, Value>,
    old_labels: Option<Map<String, Value>>,
    pods: Option<Vec<Value>>,
    list_error: bool,
    expect_allowed: bool,
    expect_error: &'static str,
    expect_list_pods: bool,
    expect_evaluate: Option<LevelVersion>,
    expect_warnings: Vec<&'static str>,
}

impl Default for NsCase {
    fn default() -> Self {
        NsCase {
            name: "",
            exempt_namespaces: vec![],
            exempt_runtime_classes: vec![],
            default_policy: None,
            new_labels: Map::new(),
            old_labels: None,
            pods: None,
            list_error: false,
            expect_allowed: true,
            expect_error: "",
            expect_list_pods: false,
            expect_evaluate: None,
            expect_warnings: vec![],
        }
    }
}

fn epod(name: &str, error: &str) -> Value {
    json!({"metadata": {"name": name, "annotations": {"error": error}}})
}

fn rcpod(name: &str, error: &str, rc: &str) -> Value {
    json!({"metadata": {"name": name, "annotations": {"error": error}}, "spec": {"runtimeClassName": rc}})
}

fn owned(name: &str, error: &str, uid: &str) -> Value {
    json!({"metadata": {"name": name, "annotations": {"error": error}, "ownerReferences": [{"uid": uid, "controller": true}]}})
}

const RESTRICTED_LATEST: LevelVersion = LevelVersion {
    level: Level::Restricted,
    version: Version::Latest,
};

fn run_ns_case(tc: NsCase) {
    let mut config = Config::default();
    config.exemptions.namespaces = tc.exempt_namespaces.iter().map(|s| s.to_string()).collect();
    config.exemptions.runtime_classes = tc
        .exempt_runtime_classes
        .iter()
        .map(|s| s.to_string())
        .collect();
    config.namespace_max_pods_to_check = 4;
    if let Some(p) = tc.default_policy {
        config.defaults = p;
    }
    let a = Admission {
        config,
        evaluator: AnnotationEvaluator::default(),
    };
    let pods = tc.pods.unwrap_or_else(|| {
        vec![
            epod("noruntimeclasspod", "message"),
            rcpod("runtimeclass1pod", "message", "runtimeclass1"),
            rcpod("runtimeclass2pod", "message", "runtimeclass2"),
            epod("runtimeclass3pod", "message, message2"),
        ]
    });
    let cluster = FakeCluster {
        pods: Some(if tc.list_error {
            Err("timeout".into())
        } else {
            Ok(pods)
        }),
        ..FakeCluster::default()
    };
    let new = json!({"metadata": {"name": "test", "labels": tc.new_labels}});
    let old = tc
        .old_labels
        .as_ref()
        .map(|l| json!({"metadata": {"name": "test", "labels": l}}));
    let attrs = Attributes {
        operation: if old.is_some() {
            Operation::Update
        } else {
            Operation::Create
        },
        group: "",
        resource: "namespaces",
        subresource: "",
        namespace: "test",
        name: "test",
        username: "",
        object: &new,
        old_object: old.as_ref(),
    };
    let r = a.validate(&attrs, &cluster);
    assert_eq!(r.allowed, tc.expect_allowed, "{}", tc.name);
    let message = r
        .denial
        .as_ref()
        .map(|d| d.message(&attrs))
        .unwrap_or_default();
    assert_eq!(
        message.is_empty(),
        tc.expect_error.is_empty(),
        "{}: {message}",
        tc.name
    );
    assert!(message.contains(tc.expect_error), "{}: {message}", tc.name);
    assert_eq!(*cluster.listed.borrow(), tc.expect_list_pods, "{}", tc.name);
    assert_eq!(
        *a.evaluator.last.borrow(),
        tc.expect_evaluate,
        "{}",
        tc.name
    );
    assert_eq!(r.warnings, tc.expect_warnings, "{}", tc.name);
}

#[test]
fn validate_namespace() {
    let restricted_v1_0 = || labels(&[("enforce", "restricted"), ("enforce-version", "v1.0")]);
    let cases = vec![
        NsCase {
            name: "create privileged",
            new_labels: labels(&[("enforce", "privileged"), ("enforce-version", "v1.0")]),
            ..NsCase::default()
        },
        NsCase { name: "create baseline", new_labels: labels(&[("enforce", "baseline")]), ..NsCase::default() },
        NsCase { name: "create restricted", new_labels: labels(&[("enforce", "restricted")]), ..NsCase::default() },
        NsCase {
            name: "create restricted exempt",
            new_labels: labels(&[("enforce", "restricted")]),
            exempt_namespaces: vec!["test"],
            expect_warnings: vec![r#"namespace "test" is exempt from Pod Security, and the policy (enforce=restricted:latest) will be ignored"#],
            ..NsCase::default()
        },
        NsCase {
            name: "create malformed level",
            new_labels: labels(&[("enforce", "unknown")]),
            expect_allowed: false,
            expect_error: "must be one of privileged, baseline, restricted",
            ..NsCase::default()
        },
        NsCase {
            name: "create malformed version",
            new_labels: labels(&[("enforce", "privileged"), ("enforce-version", "unknown")]),
            expect_allowed: false,
            expect_error: r#"must be "latest" or "v1.x""#,
            ..NsCase::default()
        },
        NsCase { name: "update no-op", new_labels: restricted_v1_0(), old_labels: Some(restricted_v1_0()), ..NsCase::default() },
        NsCase {
            name: "update no-op malformed level",
            new_labels: labels(&[("enforce", "unknown")]),
            old_labels: Some(labels(&[("enforce", "unknown")])),
            ..NsCase::default()
        },
        NsCase {
            name: "update no-op malformed version",
            new_labels: labels(&[("enforce", "baseline"), ("enforce-version", "unknown")]),
            old_labels: Some(labels(&[("enforce", "baseline"), ("enforce-version", "unknown")])),
            ..NsCase::default()
        },
        NsCase {
            name: "update relax level identical version",
            new_labels: labels(&[("enforce", "baseline"), ("enforce-version", "v1.0")]),
            old_labels: Some(restricted_v1_0()),
            ..NsCase::default()
        },
        NsCase {
            name: "update relax level explicit latest",
            new_labels: labels(&[("enforce", "baseline"), ("enforce-version", "latest")]),
            old_labels: Some(labels(&[("enforce", "restricted"), ("enforce-version", "latest")])),
            ..NsCase::default()
        },
        NsCase {
            name: "update relax level implicit latest",
            new_labels: labels(&[("enforce", "baseline")]),
            old_labels: Some(labels(&[("enforce", "restricted")])),
            ..NsCase::default()
        },
        NsCase {
            name: "update to explicit privileged",
            new_labels: labels(&[("enforce", "privileged")]),
            old_labels: Some(restricted_v1_0()),
            ..NsCase::default()
        },
        NsCase { name: "update to implicit privileged", old_labels: Some(restricted_v1_0()), ..NsCase::default() },
        NsCase {
            name: "update exempt to restricted",
            exempt_namespaces: vec!["test"],
            new_labels: labels(&[("enforce", "restricted"), ("enforce-version", "v1.0"), ("audit", "restricted"), ("warn", "baseline")]),
            old_labels: Some(Map::new()),
            expect_warnings: vec![r#"namespace "test" is exempt from Pod Security, and the policy (enforce=restricted:v1.0, audit=restricted:latest, warn=baseline:latest) will be ignored"#],
            ..NsCase::default()
        },
        NsCase {
            name: "update malformed level",
            new_labels: labels(&[("enforce", "unknown")]),
            old_labels: Some(restricted_v1_0()),
            expect_allowed: false,
            expect_error: "must be one of privileged, baseline, restricted",
            ..NsCase::default()
        },
        NsCase {
            name: "update malformed version",
            new_labels: labels(&[("enforce", "privileged"), ("enforce-version", "unknown")]),
            old_labels: Some(restricted_v1_0()),
            expect_allowed: false,
            expect_error: r#"must be "latest" or "v1.x""#,
            ..NsCase::default()
        },
        NsCase {
            name: "update to implicit restricted",
            old_labels: Some(labels(&[("enforce", "baseline"), ("enforce-version", "v1.0")])),
            default_policy: Some(Policy { enforce: RESTRICTED_LATEST, ..Policy::default() }),
            expect_list_pods: true,
            expect_evaluate: Some(RESTRICTED_LATEST),
            expect_warnings: vec![
                r#"existing pods in namespace "test" violate the new PodSecurity enforce level "restricted:latest""#,
                "noruntimeclasspod (and 2 other pods): message",
                "runtimeclass3pod: message, message2",
            ],
            ..NsCase::default()
        },
        NsCase {
            name: "update with runtimeclass exempt pods",
            exempt_runtime_classes: vec!["runtimeclass1"],
            new_labels: labels(&[("enforce", "restricted")]),
            old_labels: Some(labels(&[("enforce", "baseline")])),
            expect_list_pods: true,
            expect_evaluate: Some(RESTRICTED_LATEST),
            expect_warnings: vec![
                r#"existing pods in namespace "test" violate the new PodSecurity enforce level "restricted:latest""#,
                "noruntimeclasspod (and 1 other pod): message",
                "runtimeclass3pod: message, message2",
            ],
            ..NsCase::default()
        },
        NsCase {
            name: "list failure",
            new_labels: labels(&[("enforce", "restricted")]),
            old_labels: Some(labels(&[("enforce", "baseline")])),
            list_error: true,
            expect_list_pods: true,
            expect_warnings: vec!["failed to list pods while checking new PodSecurity enforce level"],
            ..NsCase::default()
        },
        NsCase {
            name: "bound number of pods",
            new_labels: labels(&[("enforce", "restricted")]),
            old_labels: Some(labels(&[("enforce", "baseline")])),
            pods: Some((1..=5).map(|i| epod(&format!("pod{i}"), "message")).collect()),
            expect_list_pods: true,
            expect_evaluate: Some(RESTRICTED_LATEST),
            expect_warnings: vec![
                "new PodSecurity enforce level only checked against the first 4 of 5 existing pods",
                r#"existing pods in namespace "test" violate the new PodSecurity enforce level "restricted:latest""#,
                "pod1 (and 3 other pods): message",
            ],
            ..NsCase::default()
        },
        NsCase {
            name: "prioritized pods",
            exempt_runtime_classes: vec!["runtimeclass1"],
            new_labels: labels(&[("enforce", "restricted")]),
            old_labels: Some(labels(&[("enforce", "baseline")])),
            pods: Some(
                (1..=4)
                    .map(|i| rcpod(&format!("exemptpod{i}"), "message1", "runtimeclass1"))
                    .chain((1..=4).map(|i| owned(&format!("replicaset1pod{i}"), "replicaset1error", "1")))
                    .chain((1..=4).map(|i| owned(&format!("replicaset2pod{i}"), "replicaset2error", "2")))
                    .chain((1..=4).map(|i| epod(&format!("uniquepod{i}"), &format!("uniquemessage{i}"))))
                    .collect(),
            ),
            expect_list_pods: true,
            expect_evaluate: Some(RESTRICTED_LATEST),
            expect_warnings: vec![
                "new PodSecurity enforce level only checked against the first 4 of 12 existing pods",
                r#"existing pods in namespace "test" violate the new PodSecurity enforce level "restricted:latest""#,
                "replicaset1pod1: replicaset1error",
                "replicaset2pod1: replicaset2error",
                "uniquepod1: uniquemessage1",
                "uniquepod2: uniquemessage2",
            ],
            ..NsCase::default()
        },
    ];
    for tc in cases {
        run_ns_case(tc);
    }
}

#[test]
fn invalid_namespace_message_and_subresources() {
    let a = Admission::new(Config::default());
    let ns = json!({"metadata": {"name": "team", "labels": labels(&[("enforce", "strict"), ("warn-version", "v2")])}});
    let mut attrs = Attributes {
        operation: Operation::Create,
        group: "",
        resource: "namespaces",
        subresource: "",
        namespace: "",
        name: "team",
        username: "admin",
        object: &ns,
        old_object: None,
    };
    let r = a.validate(&attrs, &FakeCluster::default());
    let denial = r.denial.clone().expect("denied");
    assert_eq!((denial.code(), denial.reason()), (422, "Invalid"));
    assert_eq!(
        denial.message(&attrs),
        concat!(
            r#"Namespace "team" is invalid: [metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted, "#,
            r#"metadata.labels[pod-security.kubernetes.io/warn-version]: Invalid value: "v2": must be "latest" or "v1.x"]"#
        )
    );
    attrs.subresource = "finalize";
    assert!(a.validate(&attrs, &FakeCluster::default()).allowed);
    attrs.subresource = "";
    attrs.operation = Operation::Delete;
    assert!(a.validate(&attrs, &FakeCluster::default()).allowed);
}

mod pods;
