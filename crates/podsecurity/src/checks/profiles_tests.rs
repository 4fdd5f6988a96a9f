//! Tests of `profiles.rs`, ported from upstream's
//! `staging/src/k8s.io/pod-security-admission/policy/{check_appArmorProfile_test.go,
//! check_seLinuxOptions_test.go, check_seccompProfile_baseline_test.go,
//! check_seccompProfile_restricted_test.go, check_procMount_test.go}`.

use super::super::EvalOptions;
use super::*;
use serde_json::json;

type Check = fn(&Pod<'_>) -> CheckResult;

fn run_with(check: Check, opts: EvalOptions, meta: Value, spec: Value) -> CheckResult {
    check(&Pod {
        meta: &meta,
        spec: &spec,
        opts: &opts,
    })
}

fn run(check: Check, meta: Value, spec: Value) -> CheckResult {
    run_with(check, EvalOptions::default(), meta, spec)
}

fn expect(r: CheckResult, reason: &str, detail: &str) {
    assert!(!r.allowed, "expected disallowed: {detail}");
    assert_eq!(r.forbidden_reason, reason);
    assert_eq!(r.forbidden_detail, detail);
}

fn profile(key: &str, t: &str) -> Value {
    json!({ key: {"type": t} })
}

#[test]
fn app_armor_allowed() {
    let cases = [
        (
            json!({"annotations": {"container.apparmor.security.beta.kubernetes.io/test": "runtime/default", "env": "prod"}}),
            json!({}),
        ),
        (
            json!({"annotations": {"container.apparmor.security.beta.kubernetes.io/test": "localhost/sec-profile01", "env": "dev"}}),
            json!({}),
        ),
        (json!({"annotations": {"env": "dev"}}), json!({})),
        (json!({}), json!({})),
        (
            json!({}),
            json!({"securityContext": profile("appArmorProfile", "RuntimeDefault")}),
        ),
        (
            json!({}),
            json!({"containers": [{"name": "foo", "securityContext": profile("appArmorProfile", "RuntimeDefault")}]}),
        ),
        (
            json!({}),
            json!({"containers": [{"name": "foo", "securityContext": {"appArmorProfile": {"type": "Localhost", "localhostProfile": "p"}}}]}),
        ),
    ];
    for (meta, spec) in cases {
        assert!(run(app_armor_1_0, meta.clone(), spec).allowed, "{meta}");
    }
}

#[test]
fn app_armor_forbidden() {
    expect(
        run(
            app_armor_1_0,
            json!({}),
            json!({"securityContext": profile("appArmorProfile", "Unconfined")}),
        ),
        "forbidden AppArmor profile",
        r#"pod must not set AppArmor profile type to "Unconfined""#,
    );
    expect(
        run(
            app_armor_1_0,
            json!({}),
            json!({
                "securityContext": profile("appArmorProfile", "RuntimeDefault"),
                "containers": [{"name": "foo", "securityContext": profile("appArmorProfile", "Unconfined")}],
            }),
        ),
        "forbidden AppArmor profile",
        r#"container "foo" must not set AppArmor profile type to "Unconfined""#,
    );
    expect(
        run(
            app_armor_1_0,
            json!({}),
            json!({
                "securityContext": profile("appArmorProfile", "RuntimeDefault"),
                "containers": [{"name": "foo"}],
                "initContainers": [{"name": "bar", "securityContext": profile("appArmorProfile", "Unconfined")}],
            }),
        ),
        "forbidden AppArmor profile",
        r#"container "bar" must not set AppArmor profile type to "Unconfined""#,
    );
    expect(
        run(
            app_armor_1_0,
            json!({"annotations": {
                "container.apparmor.security.beta.kubernetes.io/": "bogus",
                "container.apparmor.security.beta.kubernetes.io/a": "",
                "container.apparmor.security.beta.kubernetes.io/b": "runtime/default",
                "container.apparmor.security.beta.kubernetes.io/c": "localhost/",
                "container.apparmor.security.beta.kubernetes.io/d": "localhost/foo",
                "container.apparmor.security.beta.kubernetes.io/e": "unconfined",
                "container.apparmor.security.beta.kubernetes.io/f": "unknown",
            }}),
            json!({}),
        ),
        "forbidden AppArmor profiles",
        concat!(
            "annotations must not set AppArmor profile type to ",
            r#""container.apparmor.security.beta.kubernetes.io/="bogus"", "#,
            r#""container.apparmor.security.beta.kubernetes.io/e="unconfined"", "#,
            r#""container.apparmor.security.beta.kubernetes.io/f="unknown"""#,
        ),
    );
}

#[test]
fn app_armor_pod_containers_and_annotations_combined() {
    expect(
        run(
            app_armor_1_0,
            json!({"annotations": {"container.apparmor.security.beta.kubernetes.io/a": "unconfined"}}),
            json!({
                "securityContext": profile("appArmorProfile", "Unconfined"),
                "containers": [
                    {"name": "a", "securityContext": profile("appArmorProfile", "Bogus")},
                    {"name": "b", "securityContext": {"appArmorProfile": {}}},
                ],
            }),
        ),
        "forbidden AppArmor profiles",
        concat!(
            r#"pod and containers "a", "b" and annotation must not set AppArmor profile type to "#,
            r#""", "Bogus", "Unconfined", "container.apparmor.security.beta.kubernetes.io/a="unconfined"""#,
        ),
    );
}

fn selinux(t: &str, user: &str, role: &str) -> Value {
    let mut o = serde_json::Map::new();
    for (k, v) in [("type", t), ("user", user), ("role", role)] {
        if !v.is_empty() {
            o.insert(k.into(), json!(v));
        }
    }
    json!({"seLinuxOptions": o})
}

fn selinux_containers(extra: bool) -> Vec<Value> {
    let mut v = vec![
        json!({"name": "a", "securityContext": selinux("container_t", "", "")}),
        json!({"name": "b", "securityContext": selinux("container_init_t", "", "")}),
        json!({"name": "c", "securityContext": selinux("container_kvm_t", "", "")}),
        json!({"name": "d", "securityContext": selinux("container_engine_t", "", "")}),
    ];
    if extra {
        v.push(json!({"name": "e", "securityContext": selinux("bar", "", "")}));
        v.push(json!({"name": "f", "securityContext": selinux("", "bar", "")}));
        v.push(json!({"name": "g", "securityContext": selinux("", "", "baz")}));
    }
    v
}

#[test]
fn se_linux_options_1_31_cases() {
    let c = se_linux_options_1_31;
    expect(
        run(
            c,
            json!({}),
            json!({"securityContext": selinux("foo", "bar", "baz"), "containers": selinux_containers(true)}),
        ),
        "seLinuxOptions",
        r#"pod and containers "e", "f", "g" set forbidden securityContext.seLinuxOptions: types "bar", "foo"; user may not be set; role may not be set"#,
    );
    expect(
        run(
            c,
            json!({}),
            json!({"securityContext": selinux("foo", "bar", "baz"), "containers": selinux_containers(false)}),
        ),
        "seLinuxOptions",
        r#"pod set forbidden securityContext.seLinuxOptions: type "foo"; user may not be set; role may not be set"#,
    );
    expect(
        run(
            c,
            json!({}),
            json!({"securityContext": {"seLinuxOptions": {}}, "containers": selinux_containers(true)}),
        ),
        "seLinuxOptions",
        r#"containers "e", "f", "g" set forbidden securityContext.seLinuxOptions: type "bar"; user may not be set; role may not be set"#,
    );
    expect(
        run(
            c,
            json!({}),
            json!({"securityContext": selinux("bad", "", "")}),
        ),
        "seLinuxOptions",
        r#"pod set forbidden securityContext.seLinuxOptions: type "bad""#,
    );
    expect(
        run(
            c,
            json!({}),
            json!({"securityContext": selinux("", "bad", "")}),
        ),
        "seLinuxOptions",
        "pod set forbidden securityContext.seLinuxOptions: user may not be set",
    );
    expect(
        run(
            c,
            json!({}),
            json!({"securityContext": selinux("", "", "bad")}),
        ),
        "seLinuxOptions",
        "pod set forbidden securityContext.seLinuxOptions: role may not be set",
    );
}

#[test]
fn se_linux_container_engine_t_from_1_31() {
    let spec = json!({"containers": [{"name": "d", "securityContext": selinux("container_engine_t", "", "")}]});
    assert!(run(se_linux_options_1_31, json!({}), spec.clone()).allowed);
    expect(
        run(se_linux_options_1_0, json!({}), spec),
        "seLinuxOptions",
        r#"container "d" set forbidden securityContext.seLinuxOptions: type "container_engine_t""#,
    );
    // level is not restricted
    let level = json!({"securityContext": {"seLinuxOptions": {"level": "s0:c1"}}});
    assert!(run(se_linux_options_1_0, json!({}), level).allowed);
}

#[test]
fn seccomp_baseline_1_0_annotations() {
    let c = seccomp_baseline_1_0;
    expect(
        run(
            c,
            json!({"annotations": {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}}),
            json!({}),
        ),
        "seccompProfile",
        r#"forbidden annotation seccomp.security.alpha.kubernetes.io/pod="unconfined""#,
    );
    let containers = json!({"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]});
    expect(
        run(
            c,
            json!({"annotations": {
                "container.seccomp.security.alpha.kubernetes.io/a": "unconfined",
                "container.seccomp.security.alpha.kubernetes.io/b": "unknown",
            }}),
            containers.clone(),
        ),
        "seccompProfile",
        r#"forbidden annotations container.seccomp.security.alpha.kubernetes.io/a="unconfined", container.seccomp.security.alpha.kubernetes.io/b="unknown""#,
    );
    expect(
        run(
            c,
            json!({"annotations": {
                "seccomp.security.alpha.kubernetes.io/pod": "unconfined",
                "container.seccomp.security.alpha.kubernetes.io/a": "unconfined",
                "container.seccomp.security.alpha.kubernetes.io/b": "unknown",
            }}),
            containers,
        ),
        "seccompProfile",
        r#"forbidden annotations container.seccomp.security.alpha.kubernetes.io/a="unconfined", container.seccomp.security.alpha.kubernetes.io/b="unknown", seccomp.security.alpha.kubernetes.io/pod="unconfined""#,
    );
    let ok = json!({"annotations": {
        "seccomp.security.alpha.kubernetes.io/pod": "runtime/default",
        "container.seccomp.security.alpha.kubernetes.io/a": "docker/default",
        "container.seccomp.security.alpha.kubernetes.io/b": "localhost/testing",
        "container.seccomp.security.alpha.kubernetes.io/zz": "unconfined",
    }});
    assert!(run(c, ok, json!({"containers": [{"name": "a"}, {"name": "b"}]})).allowed);
}

fn seccomp_containers() -> Value {
    json!([
        {"name": "a", "securityContext": null},
        {"name": "b", "securityContext": {}},
        {"name": "c", "securityContext": profile("seccompProfile", "Unconfined")},
        {"name": "d", "securityContext": profile("seccompProfile", "Unconfined")},
        {"name": "e", "securityContext": profile("seccompProfile", "RuntimeDefault")},
        {"name": "f", "securityContext": profile("seccompProfile", "RuntimeDefault")},
    ])
}

fn fallthrough_containers() -> Value {
    json!([
        {"name": "a", "securityContext": null},
        {"name": "b", "securityContext": {}},
        {"name": "d", "securityContext": profile("seccompProfile", "RuntimeDefault")},
        {"name": "e", "securityContext": profile("seccompProfile", "RuntimeDefault")},
    ])
}

/// Cases shared by the baseline v1.19 and restricted checks.
fn seccomp_explicit_cases(c: Check) {
    expect(
        run(
            c,
            json!({}),
            json!({"securityContext": profile("seccompProfile", "Unconfined"), "containers": [{"name": "a"}]}),
        ),
        "seccompProfile",
        r#"pod must not set securityContext.seccompProfile.type to "Unconfined""#,
    );
    expect(
        run(
            c,
            json!({}),
            json!({"securityContext": profile("seccompProfile", "RuntimeDefault"), "containers": seccomp_containers()}),
        ),
        "seccompProfile",
        r#"containers "c", "d" must not set securityContext.seccompProfile.type to "Unconfined""#,
    );
}

#[test]
fn seccomp_baseline_1_19_cases() {
    seccomp_explicit_cases(seccomp_baseline_1_19);
    expect(
        run(
            seccomp_baseline_1_19,
            json!({}),
            json!({"securityContext": profile("seccompProfile", "Unconfined"), "containers": seccomp_containers()}),
        ),
        "seccompProfile",
        r#"pod and containers "c", "d" must not set securityContext.seccompProfile.type to "Unconfined""#,
    );
    assert!(
        run(
            seccomp_baseline_1_19,
            json!({}),
            json!({"containers": [{"name": "a"}]})
        )
        .allowed
    );
}

const IMPLICIT_A: &str = r#"pod or container "a" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost""#;
const IMPLICIT_AB: &str = r#"pod or containers "a", "b" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost""#;

#[test]
fn seccomp_restricted_1_19_cases() {
    let c = seccomp_restricted_1_19;
    seccomp_explicit_cases(c);
    expect(
        run(c, json!({}), json!({"containers": [{"name": "a"}]})),
        "seccompProfile",
        IMPLICIT_A,
    );
    expect(
        run(
            c,
            json!({}),
            json!({"containers": fallthrough_containers()}),
        ),
        "seccompProfile",
        IMPLICIT_AB,
    );
}

#[test]
fn seccomp_restricted_1_25_cases() {
    let c = seccomp_restricted_1_25;
    seccomp_explicit_cases(c);
    expect(
        run(c, json!({}), json!({"containers": [{"name": "a"}]})),
        "seccompProfile",
        IMPLICIT_A,
    );
    let win = run(
        c,
        json!({}),
        json!({"os": {"name": "windows"}, "containers": [{"name": "a"}]}),
    );
    assert!(win.allowed);
    expect(
        run(
            c,
            json!({}),
            json!({"os": {"name": "linux"}, "containers": [{"name": "a"}]}),
        ),
        "seccompProfile",
        IMPLICIT_A,
    );
    expect(
        run(
            c,
            json!({}),
            json!({"containers": fallthrough_containers()}),
        ),
        "seccompProfile",
        IMPLICIT_AB,
    );
    // an explicit bad value is reported before containers that set nothing
    expect(
        run(
            c,
            json!({}),
            json!({"containers": [{"name": "a"}, {"name": "b", "securityContext": {"seccompProfile": {}}}]}),
        ),
        "seccompProfile",
        r#"container "b" must not set securityContext.seccompProfile.type to """#,
    );
}

fn proc_mount_pod() -> Value {
    json!({
        "containers": [
            {"name": "a", "securityContext": null},
            {"name": "b", "securityContext": {}},
            {"name": "c", "securityContext": {"procMount": "Default"}},
            {"name": "d", "securityContext": {"procMount": "Unmasked"}},
            {"name": "e", "securityContext": {"procMount": "other"}},
        ],
        "hostUsers": false,
    })
}

#[test]
fn proc_mount() {
    expect(
        run(proc_mount_1_0, json!({}), proc_mount_pod()),
        "procMount",
        r#"containers "d", "e" must not set securityContext.procMount to "Unmasked", "other""#,
    );
    let relaxed = EvalOptions {
        relax_policy_for_user_namespace_pods: true,
    };
    let r = run_with(proc_mount_1_0, relaxed, json!({}), proc_mount_pod());
    assert!(r.allowed);
    assert_eq!(r.forbidden_reason, "");
    assert_eq!(r.forbidden_detail, "");
    // the relaxation needs hostUsers: false
    let mut host_users = proc_mount_pod();
    host_users["hostUsers"] = json!(true);
    assert!(!run_with(proc_mount_1_0, relaxed, json!({}), host_users).allowed);
}
