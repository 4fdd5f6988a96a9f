//! Tests of `restricted.rs`, ported from upstream's
//! `staging/src/k8s.io/pod-security-admission/policy/{check_allowPrivilegeEscalation_test.go,
//! check_restrictedVolumes_test.go, check_runAsNonRoot_test.go, check_runAsUser_test.go}`.

use super::super::EvalOptions;
use super::*;
use serde_json::{json, Value};

type Check = fn(&Pod<'_>) -> CheckResult;

fn run_with(check: Check, opts: EvalOptions, spec: Value) -> CheckResult {
    let meta = json!({});
    check(&Pod {
        meta: &meta,
        spec: &spec,
        opts: &opts,
    })
}

fn run(check: Check, spec: Value) -> CheckResult {
    run_with(check, EvalOptions::default(), spec)
}

fn expect(r: CheckResult, reason: &str, detail: &str) {
    assert!(!r.allowed, "expected disallowed: {detail}");
    assert_eq!(r.forbidden_reason, reason);
    assert_eq!(r.forbidden_detail, detail);
}

fn expect_allowed(r: CheckResult) {
    assert!(r.allowed, "expected allowed: {r:?}");
    assert_eq!(r.forbidden_reason, "");
    assert_eq!(r.forbidden_detail, "");
}

const RELAXED: EvalOptions = EvalOptions {
    relax_policy_for_user_namespace_pods: true,
};

#[test]
fn allow_privilege_escalation() {
    let multi = json!({"containers": [
        {"name": "a"},
        {"name": "b", "securityContext": {"allowPrivilegeEscalation": null}},
        {"name": "c", "securityContext": {"allowPrivilegeEscalation": true}},
        {"name": "d", "securityContext": {"allowPrivilegeEscalation": false}},
    ]});
    for c in [
        allow_privilege_escalation_1_8 as Check,
        allow_privilege_escalation_1_25,
    ] {
        expect(
            run(c, multi.clone()),
            "allowPrivilegeEscalation != false",
            r#"containers "a", "b", "c" must set securityContext.allowPrivilegeEscalation=false"#,
        );
    }
    expect_allowed(run(
        allow_privilege_escalation_1_25,
        json!({"os": {"name": "windows"}, "containers": [{"name": "a"}]}),
    ));
    expect(
        run(
            allow_privilege_escalation_1_25,
            json!({"os": {"name": "linux"}, "containers": [{"name": "a"}]}),
        ),
        "allowPrivilegeEscalation != false",
        r#"container "a" must set securityContext.allowPrivilegeEscalation=false"#,
    );
    assert!(
        !run(
            allow_privilege_escalation_1_8,
            json!({"os": {"name": "windows"}, "containers": [{"name": "a"}]}),
        )
        .allowed
    );
}

#[test]
fn restricted_volumes() {
    let mut volumes = Vec::new();
    for (i, src) in RESTRICTED_ALLOWED_VOLUME_SOURCES.iter().enumerate() {
        volumes.push(json!({"name": format!("a{}", i + 1), *src: {}}));
    }
    for (i, src) in RESTRICTED_VOLUME_SOURCES.iter().enumerate() {
        volumes.push(json!({"name": format!("b{}", i + 1), *src: {}}));
    }
    volumes.push(json!({"name": "c1"}));
    expect(
        run(restricted_volumes_1_0, json!({"volumes": volumes})),
        "restricted volume types",
        concat!(
            "volumes ",
            r#""b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9", "b10", "b11", "b12", "b13", "b14", "b15", "b16", "b17", "b18", "b19", "b20", "b21", "c1""#,
            " use restricted volume types ",
            r#""awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "fc", "flexVolume", "flocker", "gcePersistentDisk", "gitRepo", "glusterfs", "#,
            r#""hostPath", "iscsi", "nfs", "photonPersistentDisk", "portworxVolume", "quobyte", "rbd", "scaleIO", "storageos", "unknown", "vsphereVolume""#,
        ),
    );
    expect(
        run(
            restricted_volumes_1_0,
            json!({"volumes": [{"name": "x", "hostPath": {"path": "/"}}]}),
        ),
        "restricted volume types",
        r#"volume "x" uses restricted volume type "hostPath""#,
    );
    expect_allowed(run(
        restricted_volumes_1_0,
        json!({"volumes": [{"name": "x", "emptyDir": {}}, {"name": "y", "secret": {"secretName": "s"}}]}),
    ));
    // null sources are unset; a non-object allowed source does not count
    expect(
        run(
            restricted_volumes_1_0,
            json!({"volumes": [{"name": "x", "emptyDir": null}, {"name": "y", "emptyDir": "yes", "nfs": {}}]}),
        ),
        "restricted volume types",
        r#"volumes "x", "y" use restricted volume types "nfs", "unknown""#,
    );
}

#[test]
fn run_as_non_root() {
    let c = run_as_non_root_1_0;
    expect(
        run(c, json!({"containers": [{"name": "a"}]})),
        "runAsNonRoot != true",
        r#"pod or container "a" must set securityContext.runAsNonRoot=true"#,
    );
    expect(
        run(
            c,
            json!({"securityContext": {"runAsNonRoot": false}, "containers": [{"name": "a", "securityContext": null}]}),
        ),
        "runAsNonRoot != true",
        "pod must not set securityContext.runAsNonRoot=false",
    );
    expect(
        run(
            c,
            json!({"securityContext": {"runAsNonRoot": true}, "containers": [
                {"name": "a", "securityContext": null},
                {"name": "b", "securityContext": {}},
                {"name": "c", "securityContext": {"runAsNonRoot": false}},
                {"name": "d", "securityContext": {"runAsNonRoot": false}},
                {"name": "e", "securityContext": {"runAsNonRoot": true}},
                {"name": "f", "securityContext": {"runAsNonRoot": true}},
            ]}),
        ),
        "runAsNonRoot != true",
        r#"containers "c", "d" must not set securityContext.runAsNonRoot=false"#,
    );
    expect(
        run(
            c,
            json!({"containers": [
                {"name": "a", "securityContext": null},
                {"name": "b", "securityContext": {}},
                {"name": "d", "securityContext": {"runAsNonRoot": true}},
                {"name": "e", "securityContext": {"runAsNonRoot": true}},
            ]}),
        ),
        "runAsNonRoot != true",
        r#"pod or containers "a", "b" must set securityContext.runAsNonRoot=true"#,
    );
    expect_allowed(run_with(c, RELAXED, json!({"hostUsers": false})));
    expect(
        run_with(
            c,
            RELAXED,
            json!({"hostUsers": true, "containers": [{"name": "a"}]}),
        ),
        "runAsNonRoot != true",
        r#"pod or container "a" must set securityContext.runAsNonRoot=true"#,
    );
    expect(
        run(
            c,
            json!({"securityContext": {"runAsNonRoot": false}, "containers": [{"name": "a", "securityContext": {"runAsNonRoot": false}}]}),
        ),
        "runAsNonRoot != true",
        r#"pod and container "a" must not set securityContext.runAsNonRoot=false"#,
    );
}

#[test]
fn run_as_user() {
    let c = run_as_user_1_23;
    expect(
        run(
            c,
            json!({"securityContext": {"runAsUser": 0}, "containers": [{"name": "a", "securityContext": null}]}),
        ),
        "runAsUser=0",
        "pod must not set runAsUser=0",
    );
    expect_allowed(run(
        c,
        json!({"securityContext": {"runAsUser": 1000}, "containers": [{"name": "a", "securityContext": null}]}),
    ));
    expect_allowed(run(
        c,
        json!({"securityContext": {"runAsUser": null}, "containers": [{"name": "a", "securityContext": null}]}),
    ));
    expect(
        run(
            c,
            json!({"securityContext": {"runAsUser": 1000}, "containers": [
                {"name": "a", "securityContext": null},
                {"name": "b", "securityContext": {}},
                {"name": "c", "securityContext": {"runAsUser": 0}},
                {"name": "d", "securityContext": {"runAsUser": 0}},
                {"name": "e", "securityContext": {"runAsUser": 1}},
                {"name": "f", "securityContext": {"runAsUser": 1}},
            ]}),
        ),
        "runAsUser=0",
        r#"containers "c", "d" must not set runAsUser=0"#,
    );
    expect_allowed(run(
        c,
        json!({"containers": [
            {"name": "c", "securityContext": {"runAsUser": 1}},
            {"name": "d", "securityContext": {"runAsUser": 2}},
            {"name": "e", "securityContext": {"runAsUser": 3}},
            {"name": "f", "securityContext": {"runAsUser": 4}},
        ]}),
    ));
    expect_allowed(run_with(c, RELAXED, json!({"hostUsers": false})));
    expect(
        run_with(
            c,
            RELAXED,
            json!({"hostUsers": true, "securityContext": {"runAsUser": 0}, "containers": [{"name": "a"}]}),
        ),
        "runAsUser=0",
        "pod must not set runAsUser=0",
    );
}
