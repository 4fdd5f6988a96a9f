//! Pod and workload admission tests, ported from upstream's `admission_test.go`
//! (TestValidatePodAndController, TestPrioritizePods, TestExemptNamespaceWarning).

use serde_json::{json, Map, Value};

use super::super::*;
use super::{labels, FakeCluster};

const POD_NAME: &str = "test-pod";

fn meta() -> Value {
    json!({"name": POD_NAME, "labels": {"foo": "bar"}})
}

fn baseline_pod() -> Value {
    json!({"metadata": meta(), "spec": {
        "initContainers": [{"name": "initcontainer1", "image": "registry.k8s.io/pause"}],
        "containers": [{"name": "container1", "image": "registry.k8s.io/pause"}],
    }})
}

/// Upstream's minimal valid restricted pod for v1.22+.
fn restricted_pod() -> Value {
    let sc = json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}});
    json!({"metadata": meta(), "spec": {
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": [{"name": "initcontainer1", "image": "registry.k8s.io/pause", "securityContext": sc}],
        "containers": [{"name": "container1", "image": "registry.k8s.io/pause", "securityContext": sc}],
    }})
}

fn privileged_pod() -> Value {
    let mut p = baseline_pod();
    p["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    p
}

/// `pod` with `value` at the JSON pointer `path` (the last segment may be a new key).
fn with(mut pod: Value, path: &str, value: Value) -> Value {
    let (parent, key) = path.rsplit_once('/').expect(path);
    match pod.pointer_mut(parent).expect(path) {
        Value::Object(m) => {
            m.insert(key.to_string(), value);
        }
        Value::Array(a) => a[key.parse::<usize>().expect(path)] = value,
        _ => panic!("{path}"),
    }
    pod
}

fn cluster() -> FakeCluster {
    let ns = |e: &str, w: &str, a: &str| {
        let mut kvs = Vec::new();
        for (k, v) in [("enforce", e), ("warn", w), ("audit", a)] {
            if !v.is_empty() {
                kvs.push((k, v));
            }
        }
        labels(&kvs)
    };
    let mut c = FakeCluster::default();
    for (name, l) in [
        ("exempt-ns", ns("restricted", "restricted", "restricted")),
        ("implicit-ns", ns("", "", "")),
        (
            "privileged-ns",
            ns("privileged", "privileged", "privileged"),
        ),
        ("baseline-ns", ns("baseline", "baseline", "baseline")),
        ("baseline-warn-ns", ns("", "baseline", "")),
        ("baseline-audit-ns", ns("", "", "baseline")),
        (
            "restricted-ns",
            ns("restricted", "restricted", "restricted"),
        ),
        ("invalid-ns", ns("not-a-valid-level", "", "")),
    ] {
        c.namespaces.insert(name.into(), l);
    }
    c
}

fn admission() -> Admission {
    let mut config = Config::default();
    config.exemptions.namespaces = vec!["exempt-ns".into()];
    config.exemptions.runtime_classes = vec!["exempt-runtimeclass".into()];
    config.exemptions.usernames = vec!["exempt-user".into()];
    Admission::new(config)
}

#[derive(Clone)]
struct Case {
    desc: &'static str,
    namespace: &'static str,
    username: &'static str,
    operation: Operation,
    obj: Option<Value>,
    old: Option<Value>,
    subresource: &'static str,
    skip_pod: bool,
    skip_deployment: bool,
    expect_allowed: bool,
    expect_reason: &'static str,
    expect_exempt: bool,
    expect_error: bool,
    expect_enforce: bool,
    expect_warning: bool,
    expect_audit: bool,
}

impl Default for Case {
    fn default() -> Self {
        Case {
            desc: "",
            namespace: "",
            username: "test-user",
            operation: Operation::Create,
            obj: None,
            old: None,
            subresource: "",
            skip_pod: false,
            skip_deployment: false,
            expect_allowed: true,
            expect_reason: "",
            expect_exempt: false,
            expect_error: false,
            expect_enforce: false,
            expect_warning: false,
            expect_audit: false,
        }
    }
}

fn to_deployment(pod: &Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": pod["metadata"],
           "spec": {"template": {"metadata": pod["metadata"], "spec": pod["spec"]}}})
}

fn pod_cases() -> Vec<Case> {
    let c = Case::default;
    let restricted = restricted_pod();
    vec![
        Case {
            desc: "ignored subresource",
            namespace: "restricted-ns",
            obj: Some(privileged_pod()),
            subresource: "status",
            ..c()
        },
        Case {
            desc: "exempt namespace",
            namespace: "exempt-ns",
            obj: Some(privileged_pod()),
            expect_exempt: true,
            ..c()
        },
        Case {
            desc: "exempt user",
            namespace: "restricted-ns",
            username: "exempt-user",
            obj: Some(privileged_pod()),
            expect_exempt: true,
            ..c()
        },
        Case {
            desc: "exempt runtimeClass",
            namespace: "restricted-ns",
            obj: Some(with(
                privileged_pod(),
                "/spec/runtimeClassName",
                json!("exempt-runtimeclass"),
            )),
            expect_exempt: true,
            ..c()
        },
        Case {
            desc: "namespace not found",
            namespace: "missing-ns",
            obj: Some(restricted.clone()),
            expect_allowed: false,
            expect_reason: "InternalError",
            expect_error: true,
            ..c()
        },
        Case {
            desc: "short-circuit privileged:latest (implicit)",
            namespace: "implicit-ns",
            obj: Some(privileged_pod()),
            expect_enforce: true,
            ..c()
        },
        Case {
            desc: "short-circuit privileged:latest (explicit)",
            namespace: "privileged-ns",
            obj: Some(privileged_pod()),
            expect_enforce: true,
            ..c()
        },
        Case {
            desc: "invalid object",
            namespace: "baseline-ns",
            operation: Operation::Update,
            obj: Some(json!({"kind": "Namespace", "metadata": {"name": POD_NAME}})),
            expect_allowed: false,
            expect_reason: "BadRequest",
            expect_error: true,
            ..c()
        },
        Case {
            desc: "missing old object",
            namespace: "baseline-ns",
            operation: Operation::Update,
            obj: Some(restricted.clone()),
            expect_allowed: false,
            expect_reason: "BadRequest",
            expect_error: true,
            skip_deployment: true,
            ..c()
        },
        Case {
            desc: "invalid old object",
            namespace: "baseline-ns",
            operation: Operation::Update,
            obj: Some(restricted.clone()),
            old: Some(json!({"kind": "Namespace"})),
            expect_allowed: false,
            expect_reason: "BadRequest",
            expect_error: true,
            skip_deployment: true,
            ..c()
        },
        Case {
            desc: "insignificant update",
            namespace: "restricted-ns",
            operation: Operation::Update,
            obj: Some(with(
                privileged_pod(),
                "/spec/tolerations",
                json!([{"operator": "Exists"}]),
            )),
            old: Some(privileged_pod()),
            skip_deployment: true,
            ..c()
        },
        Case {
            desc: "significant update denied",
            namespace: "restricted-ns",
            operation: Operation::Update,
            obj: Some(with(
                privileged_pod(),
                "/spec/containers/0/image",
                json!("https://example.com/a-different-image"),
            )),
            old: Some(privileged_pod()),
            expect_allowed: false,
            expect_reason: "Forbidden",
            expect_enforce: true,
            expect_warning: true,
            expect_audit: true,
            ..c()
        },
        Case {
            desc: "significant update allowed",
            namespace: "restricted-ns",
            operation: Operation::Update,
            obj: Some(with(
                restricted.clone(),
                "/spec/containers/0/image",
                json!("https://example.com/a-different-image"),
            )),
            old: Some(restricted.clone()),
            expect_enforce: true,
            ..c()
        },
        Case {
            desc: "invalid namespace labels",
            namespace: "invalid-ns",
            obj: Some(baseline_pod()),
            expect_allowed: false,
            expect_reason: "Forbidden",
            expect_enforce: true,
            expect_error: true,
            ..c()
        },
        Case {
            desc: "enforce deny",
            namespace: "restricted-ns",
            obj: Some(privileged_pod()),
            expect_allowed: false,
            expect_reason: "Forbidden",
            expect_enforce: true,
            expect_warning: true,
            expect_audit: true,
            ..c()
        },
        Case {
            desc: "enforce allow",
            namespace: "baseline-ns",
            obj: Some(baseline_pod()),
            expect_enforce: true,
            ..c()
        },
        Case {
            desc: "warn deny",
            namespace: "baseline-warn-ns",
            obj: Some(privileged_pod()),
            expect_enforce: true,
            expect_warning: true,
            ..c()
        },
        Case {
            desc: "audit deny",
            namespace: "baseline-audit-ns",
            obj: Some(privileged_pod()),
            expect_enforce: true,
            expect_audit: true,
            ..c()
        },
        Case {
            desc: "no pod template",
            namespace: "restricted-ns",
            obj: Some(
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(), "spec": {}}),
            ),
            skip_pod: true,
            ..c()
        },
    ]
}

fn run_case(tc: &Case, deployment: bool) {
    let a = admission();
    let cluster = cluster();
    let obj = tc.obj.clone().unwrap_or(Value::Null);
    let old = tc.old.clone();
    let (resource, group, obj, old) = if deployment {
        let conv = |p: Value| {
            if p.get("kind").is_some() {
                p
            } else {
                to_deployment(&p)
            }
        };
        ("deployments", "apps", conv(obj), old.map(conv))
    } else {
        ("pods", "", obj, old)
    };
    let attrs = Attributes {
        operation: tc.operation,
        group,
        resource,
        subresource: tc.subresource,
        namespace: tc.namespace,
        name: POD_NAME,
        username: tc.username,
        object: &obj,
        old_object: old.as_ref(),
    };
    let r = a.validate(&attrs, &cluster);
    let desc = format!(
        "{}:{}",
        if deployment { "deployment" } else { "pod" },
        tc.desc
    );
    // workloads are never denied and never enforced
    let expect_allowed = deployment || tc.expect_allowed;
    let expect_enforce = !deployment && tc.expect_enforce;
    // warnings only accompany allowed requests
    let expect_warning = tc.expect_warning && expect_allowed;
    assert_eq!(r.allowed, expect_allowed, "{desc}: {r:?}");
    match &r.denial {
        None => assert!(expect_allowed, "{desc}"),
        Some(d) => assert_eq!(d.reason(), tc.expect_reason, "{desc}"),
    }
    assert_eq!(
        !r.warnings.is_empty(),
        expect_warning,
        "{desc}: {:?}",
        r.warnings
    );
    let mut keys = Vec::new();
    if expect_enforce {
        keys.push("enforce-policy");
    }
    if tc.expect_audit {
        keys.push("audit-violations");
    }
    if tc.expect_error {
        keys.push("error");
    }
    if tc.expect_exempt {
        keys.push("exempt");
    }
    keys.sort();
    let actual: Vec<&str> = r.audit_annotations.keys().map(String::as_str).collect();
    assert_eq!(actual, keys, "{desc}: {:?}", r.audit_annotations);
}

#[test]
fn validate_pod_and_controller() {
    for tc in pod_cases() {
        if !tc.skip_pod {
            run_case(&tc, false);
        }
        if !tc.skip_deployment {
            run_case(&tc, true);
        }
    }
}

#[test]
fn enforce_texts_and_annotations() {
    let a = admission();
    let cluster = cluster();
    let pod = privileged_pod();
    let attrs = Attributes {
        operation: Operation::Create,
        group: "",
        resource: "pods",
        subresource: "",
        namespace: "baseline-ns",
        name: POD_NAME,
        username: "u",
        object: &pod,
        old_object: None,
    };
    let r = a.validate(&attrs, &cluster);
    let d = r.denial.clone().expect("denied");
    assert_eq!(d.code(), 403);
    assert_eq!(
        d.message(&attrs),
        r#"pods "test-pod" is forbidden: violates PodSecurity "baseline:latest": privileged (container "container1" must not set securityContext.privileged=true)"#
    );
    assert!(r.warnings.is_empty());
    let ann = r.prefixed_audit_annotations();
    assert_eq!(
        ann["pod-security.kubernetes.io/enforce-policy"],
        "baseline:latest"
    );
    assert_eq!(
        ann["pod-security.kubernetes.io/audit-violations"],
        r#"would violate PodSecurity "baseline:latest": privileged (container "container1" must not set securityContext.privileged=true)"#
    );

    // a Deployment in the same namespace gets the warning, not a denial
    let deploy = to_deployment(&pod);
    let attrs = Attributes {
        group: "apps",
        resource: "deployments",
        object: &deploy,
        ..attrs
    };
    let r = a.validate(&attrs, &cluster);
    assert!(r.allowed);
    assert_eq!(
        r.warnings,
        [
            r#"would violate PodSecurity "baseline:latest": privileged (container "container1" must not set securityContext.privileged=true)"#
        ]
    );

    // a CronJob's job template is found
    let cron = json!({"apiVersion": "batch/v1", "kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {"hostPID": true}}}}}});
    let attrs = Attributes {
        group: "batch",
        resource: "cronjobs",
        object: &cron,
        ..attrs
    };
    assert_eq!(
        a.validate(&attrs, &cluster).warnings,
        [r#"would violate PodSecurity "baseline:latest": host namespaces (hostPID=true)"#]
    );

    // namespace lookup failures
    let attrs = Attributes {
        namespace: "missing-ns",
        ..attrs
    };
    let r = a.validate(&attrs, &cluster);
    assert!(r.allowed);
    assert_eq!(
        r.audit_annotations["error"],
        r#"failed to lookup namespace "missing-ns": namespaces "missing-ns" not found"#
    );
    let pod_attrs = Attributes {
        group: "",
        resource: "pods",
        object: &pod,
        ..attrs
    };
    let r = a.validate(&pod_attrs, &cluster);
    let d = r.denial.clone().expect("denied");
    assert_eq!(
        (d.code(), d.message(&pod_attrs).as_str()),
        (
            500,
            r#"Internal error occurred: failed to lookup namespace "missing-ns""#
        )
    );
    assert_eq!(
        r.audit_annotations["error"],
        r#"Internal error occurred: failed to lookup namespace "missing-ns": namespaces "missing-ns" not found"#
    );
}

#[test]
fn invalid_labels_fail_closed_with_parse_error_annotation() {
    let a = admission();
    let pod = baseline_pod();
    let attrs = Attributes {
        operation: Operation::Create,
        group: "",
        resource: "pods",
        subresource: "",
        namespace: "invalid-ns",
        name: POD_NAME,
        username: "u",
        object: &pod,
        old_object: None,
    };
    let r = a.validate(&attrs, &cluster());
    assert_eq!(r.audit_annotations["enforce-policy"], "restricted:latest");
    assert_eq!(
        r.audit_annotations["error"],
        r#"Failed to parse policy: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "not-a-valid-level": must be one of privileged, baseline, restricted"#
    );
    assert!(d_message(&r, &attrs).starts_with(r#"pods "test-pod" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false"#));
}

fn d_message(r: &Response, attrs: &Attributes<'_>) -> String {
    r.denial
        .as_ref()
        .map(|d| d.message(attrs))
        .unwrap_or_default()
}

#[test]
fn prioritize_pods() {
    let a = admission();
    let mut pods = Vec::new();
    for (uid, n) in [("u1", 5), ("u2", 3), ("u3", 4)] {
        for i in 0..n {
            pods.push(
                json!({"metadata": {"name": format!("{uid}-{i}"), "ownerReferences": [
                    {"uid": "not-controller", "controller": false},
                    {"uid": uid, "controller": true},
                ]}}),
            );
        }
    }
    pods.push(json!({"metadata": {"name": "exempt"}, "spec": {"runtimeClassName": "exempt-runtimeclass"}}));
    let total = pods.len();
    let out = a.prioritize_pods(pods);
    assert_eq!(out.len(), total - 1);
    let first: Vec<&str> = out[..3]
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(first, ["u1-0", "u2-0", "u3-0"]);
}

#[test]
fn exempt_namespace_warning() {
    let privileged = Policy::default();
    let b123 = LevelVersion::new(Level::Baseline, Version::V1(23));
    let baseline = Policy {
        enforce: b123,
        audit: b123,
        warn: b123,
    };
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Policy, Option<&'a str>);
    let cases: Vec<Case<'_>> = vec![
        ("empty-case", vec![], privileged, None),
        (
            "ignore-privileged",
            vec![
                ("enforce", "privileged"),
                ("enforce-version", "v1.24"),
                ("warn-version", "v1.25"),
            ],
            privileged,
            None,
        ),
        (
            "warn-on-enforce",
            vec![("enforce", "baseline")],
            privileged,
            Some("(enforce=baseline:latest)"),
        ),
        (
            "warn-on-warn",
            vec![("warn", "baseline")],
            privileged,
            Some("(warn=baseline:latest)"),
        ),
        (
            "warn-on-audit",
            vec![("audit", "restricted")],
            privileged,
            Some("(audit=restricted:latest)"),
        ),
        ("ignore-default-policy", vec![], baseline, None),
        (
            "warn-versions-default-policy",
            vec![("warn-version", "latest")],
            baseline,
            Some("(warn=baseline:latest)"),
        ),
    ];
    for (name, kvs, defaults, expect) in cases {
        let a = Admission::new(Config {
            defaults,
            ..Config::default()
        });
        let mut l: Map<String, Value> = labels(&kvs);
        l.insert("qqincegidneocgu".into(), json!("vpmxkpcjphxrcpx"));
        let (policy, errs) = a.policy_to_evaluate(&l);
        assert!(errs.is_empty(), "{name}");
        let w = a.exempt_namespace_warning(name, &policy, &l);
        match expect {
            None => assert_eq!(w, "", "{name}"),
            Some(part) => {
                assert!(w.contains(part), "{name}: {w}");
                assert!(!w.contains("qqincegidneocgu") && !w.contains("vpmxkpcjphxrcpx"));
                assert!(w.starts_with(&format!("namespace \"{name}\" is exempt from Pod Security")));
            }
        }
    }
}
