//! Pass and fail pods per check, as upstream's
//! `staging/src/k8s.io/pod-security-admission/test/fixtures_*.go` generate them from the
//! minimal valid pod of a level and version.

use serde_json::{json, Value};

use super::restricted_generators::*;
use super::{
    ensure_annotations, ensure_capabilities, ensure_security_context, ensure_selinux_options,
    first_name, set, tweak,
};

/// A fixture generator registered for a check from a minimum version on.
pub struct Generator {
    pub check: &'static str,
    /// Registered at baseline (also used for restricted) or restricted only.
    pub restricted_only: bool,
    pub min_minor: u64,
    /// Substring the failure message must contain; the check ID when `None`.
    pub expect: Option<&'static str>,
    pub pass: fn(&Value) -> Vec<Value>,
    pub fail: fn(&Value) -> Vec<Value>,
}

pub const DEFAULT_CAPS: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];
const APPARMOR: &str = "container.apparmor.security.beta.kubernetes.io/";
const SECCOMP_POD: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER: &str = "container.seccomp.security.alpha.kubernetes.io/";

fn none(_: &Value) -> Vec<Value> {
    Vec::new()
}

pub fn c0(field: &str) -> String {
    format!("/spec/containers/0/{field}")
}

pub fn i0(field: &str) -> String {
    format!("/spec/initContainers/0/{field}")
}

pub fn is_windows(p: &Value) -> bool {
    p.pointer("/spec/os/name").and_then(Value::as_str) == Some("windows")
}

/// Sets an annotation (its key holds `/`, so not through a JSON pointer).
fn set_ann(p: &mut Value, key: &str, value: &str) {
    p["metadata"]["annotations"][key] = json!(value);
}

fn apparmor_pass(p: &Value) -> Vec<Value> {
    let p = ensure_annotations(p);
    vec![tweak(&p, |p| {
        let c = first_name(p, "containers");
        set_ann(p, &format!("{APPARMOR}{c}"), "runtime/default");
        // upstream's fixture reads the container's name again for the "init container"
        set_ann(p, &format!("{APPARMOR}{c}"), "localhost/foo");
    })]
}

fn apparmor_fail(p: &Value) -> Vec<Value> {
    let p = ensure_annotations(p);
    ["containers", "initContainers"]
        .iter()
        .map(|l| {
            tweak(&p, |p| {
                let n = first_name(p, l);
                set_ann(p, &format!("{APPARMOR}{n}"), "unconfined");
            })
        })
        .collect()
}

fn caps_baseline_pass(p: &Value) -> Vec<Value> {
    let drops_all = p
        .pointer("/spec/containers/0/securityContext/capabilities/drop")
        .and_then(Value::as_array)
        .is_some_and(|d| d.iter().any(|x| x == "ALL"));
    if drops_all {
        return Vec::new();
    }
    let p = ensure_capabilities(p);
    vec![tweak(&p, |p| {
        set(
            p,
            &c0("securityContext/capabilities/add"),
            json!(DEFAULT_CAPS),
        );
        set(
            p,
            &i0("securityContext/capabilities/add"),
            json!(DEFAULT_CAPS),
        );
    })]
}

fn caps_baseline_fail(p: &Value) -> Vec<Value> {
    let p = ensure_capabilities(p);
    vec![
        tweak(&p, |p| {
            set(
                p,
                &c0("securityContext/capabilities/add"),
                json!(["NET_RAW"]),
            )
        }),
        tweak(&p, |p| {
            set(
                p,
                &i0("securityContext/capabilities/add"),
                json!(["NET_RAW"]),
            )
        }),
        tweak(&p, |p| {
            set(p, &c0("securityContext/capabilities/add"), json!(["chown"]))
        }),
        tweak(&p, |p| {
            set(
                p,
                &c0("securityContext/capabilities/add"),
                json!(["CAP_CHOWN"]),
            )
        }),
    ]
}

fn host_namespaces_fail(p: &Value) -> Vec<Value> {
    ["hostIPC", "hostNetwork", "hostPID"]
        .iter()
        .map(|k| tweak(p, |p| set(p, &format!("/spec/{k}"), json!(true))))
        .collect()
}

fn host_path_fail(p: &Value) -> Vec<Value> {
    vec![
        tweak(p, |p| {
            set(
                p,
                "/spec/volumes",
                json!([
                    {"name": "volume-emptydir", "emptyDir": {}},
                    {"name": "volume-hostpath", "hostPath": {"path": "/a"}},
                ]),
            )
        }),
        tweak(p, |p| {
            set(
                p,
                "/spec/volumes",
                json!([
                    {"name": "volume-hostpath-a", "hostPath": {"path": "/a"}},
                    {"name": "volume-hostpath-b", "hostPath": {"path": "/b"}},
                ]),
            )
        }),
    ]
}

fn host_ports_pass(p: &Value) -> Vec<Value> {
    vec![tweak(p, |p| {
        set(p, &c0("ports"), json!([{"containerPort": 12345}]));
        set(p, &i0("ports"), json!([{"containerPort": 12346}]));
    })]
}

fn host_ports_fail(p: &Value) -> Vec<Value> {
    vec![
        tweak(p, |p| {
            set(
                p,
                &c0("ports"),
                json!([{"containerPort": 12345, "hostPort": 12345}]),
            )
        }),
        tweak(p, |p| {
            set(
                p,
                &i0("ports"),
                json!([{"containerPort": 12346, "hostPort": 12346}]),
            )
        }),
        tweak(p, |p| {
            set(
                p,
                &c0("ports"),
                json!([{"containerPort": 12345, "hostPort": 12345}, {"containerPort": 12347}]),
            );
            set(
                p,
                &i0("ports"),
                json!([{"containerPort": 12346, "hostPort": 12346}, {"containerPort": 12348}]),
            );
        }),
    ]
}

fn privileged_pass(p: &Value) -> Vec<Value> {
    let p = ensure_security_context(p);
    vec![tweak(&p, |p| {
        set(p, &c0("securityContext/privileged"), json!(false));
        set(p, &i0("securityContext/privileged"), json!(false));
    })]
}

fn privileged_fail(p: &Value) -> Vec<Value> {
    let p = ensure_security_context(p);
    [c0, i0]
        .iter()
        .map(|f| {
            tweak(&p, |p| {
                set(p, &f("securityContext/privileged"), json!(true));
                set(
                    p,
                    &f("securityContext/allowPrivilegeEscalation"),
                    Value::Null,
                );
            })
        })
        .collect()
}

fn proc_mount_pass(p: &Value) -> Vec<Value> {
    let p = ensure_security_context(p);
    vec![tweak(&p, |p| {
        set(p, &c0("securityContext/procMount"), json!("Default"));
        set(p, &i0("securityContext/procMount"), json!("Default"));
        set(p, "/spec/hostUsers", json!(false));
    })]
}

fn proc_mount_fail(p: &Value) -> Vec<Value> {
    let p = ensure_security_context(p);
    [c0, i0]
        .iter()
        .map(|f| {
            tweak(&p, |p| {
                set(p, &f("securityContext/procMount"), json!("Unmasked"));
                set(p, "/spec/hostUsers", json!(false));
            })
        })
        .collect()
}

fn selinux_pass(p: &Value) -> Vec<Value> {
    let p = ensure_selinux_options(p);
    vec![
        tweak(&p, |p| {
            set(p, "/spec/securityContext/seLinuxOptions", Value::Null);
            set(p, &c0("securityContext/seLinuxOptions"), Value::Null);
            set(p, &i0("securityContext/seLinuxOptions"), json!({}));
        }),
        tweak(&p, |p| {
            set(
                p,
                "/spec/securityContext/seLinuxOptions/type",
                json!("container_t"),
            );
            set(
                p,
                &c0("securityContext/seLinuxOptions/type"),
                json!("container_init_t"),
            );
            set(
                p,
                &i0("securityContext/seLinuxOptions/type"),
                json!("container_kvm_t"),
            );
            set(
                p,
                &c0("securityContext/seLinuxOptions/level"),
                json!("somevalue"),
            );
        }),
    ]
}

fn selinux_fail(p: &Value) -> Vec<Value> {
    let p = ensure_selinux_options(p);
    [
        "/spec/securityContext/seLinuxOptions/type".to_string(),
        c0("securityContext/seLinuxOptions/type"),
        i0("securityContext/seLinuxOptions/type"),
        "/spec/securityContext/seLinuxOptions/user".to_string(),
        "/spec/securityContext/seLinuxOptions/role".to_string(),
    ]
    .iter()
    .map(|path| tweak(&p, |p| set(p, path, json!("somevalue"))))
    .collect()
}

fn seccomp_baseline_1_0_pass(p: &Value) -> Vec<Value> {
    if p.pointer("/metadata/annotations")
        .and_then(|a| a.get(SECCOMP_POD))
        == Some(&json!("runtime/default"))
    {
        return Vec::new();
    }
    let p = ensure_annotations(p);
    vec![tweak(&p, |p| {
        set_ann(p, SECCOMP_POD, "runtime/default");
        let c = first_name(p, "containers");
        set_ann(p, &format!("{SECCOMP_CONTAINER}{c}"), "localhost/testing");
    })]
}

fn seccomp_baseline_1_0_fail(p: &Value) -> Vec<Value> {
    let p = ensure_annotations(p);
    vec![
        tweak(&p, |p| set_ann(p, SECCOMP_POD, "unconfined")),
        tweak(&p, |p| {
            let c = first_name(p, "containers");
            set_ann(p, &format!("{SECCOMP_CONTAINER}{c}"), "unconfined");
        }),
        tweak(&p, |p| {
            let c = first_name(p, "initContainers");
            set_ann(p, &format!("{SECCOMP_CONTAINER}{c}"), "unconfined");
        }),
    ]
}

pub fn rd() -> Value {
    json!({"type": "RuntimeDefault"})
}

pub fn unconfined() -> Value {
    json!({"type": "Unconfined"})
}

pub fn localhost() -> Value {
    json!({"type": "Localhost", "localhostProfile": "testing"})
}

pub const POD_SECCOMP: &str = "/spec/securityContext/seccompProfile";

fn seccomp_baseline_1_19_pass(p: &Value) -> Vec<Value> {
    if p.pointer("/spec/securityContext/seccompProfile/type") == Some(&json!("RuntimeDefault")) {
        return Vec::new();
    }
    let p = ensure_security_context(p);
    vec![tweak(&p, |p| {
        set(p, POD_SECCOMP, rd());
        set(p, &c0("securityContext/seccompProfile"), rd());
    })]
}

fn seccomp_baseline_1_19_fail(p: &Value) -> Vec<Value> {
    let p = ensure_security_context(p);
    [
        POD_SECCOMP.to_string(),
        c0("securityContext/seccompProfile"),
        i0("securityContext/seccompProfile"),
    ]
    .iter()
    .map(|path| tweak(&p, |p| set(p, path, unconfined())))
    .collect()
}

fn sysctls_pass_with(p: &Value, list: Value) -> Vec<Value> {
    let mut p = p.clone();
    if p["spec"].get("securityContext").is_none_or(Value::is_null) {
        set(&mut p, "/spec/securityContext", json!({}));
    }
    vec![
        tweak(&p, |p| set(p, "/spec/securityContext/sysctls", Value::Null)),
        tweak(&p, |p| set(p, "/spec/securityContext/sysctls", list)),
    ]
}

fn sysctls_1_0_pass(p: &Value) -> Vec<Value> {
    sysctls_pass_with(
        p,
        json!([
            {"name": "kernel.shm_rmid_forced", "value": "0"},
            {"name": "net.ipv4.ip_local_port_range", "value": "1024 65535"},
            {"name": "net.ipv4.tcp_syncookies", "value": "0"},
            {"name": "net.ipv4.ping_group_range", "value": "1 0"},
            {"name": "net.ipv4.ip_unprivileged_port_start", "value": "1024"},
        ]),
    )
}

fn sysctls_1_27_pass(p: &Value) -> Vec<Value> {
    sysctls_pass_with(
        p,
        json!([
            {"name": "kernel.shm_rmid_forced", "value": "0"},
            {"name": "net.ipv4.ip_local_port_range", "value": "1024 65535"},
            {"name": "net.ipv4.tcp_syncookies", "value": "0"},
            {"name": "net.ipv4.ping_group_range", "value": "1 0"},
            {"name": "net.ipv4.ip_unprivileged_port_start", "value": "1024"},
            {"name": "net.ipv4.ip_local_reserved_ports", "value": "1024-4999"},
        ]),
    )
}

fn sysctls_1_29_pass(p: &Value) -> Vec<Value> {
    sysctls_pass_with(
        p,
        json!([
            {"name": "kernel.shm_rmid_forced", "value": "0"},
            {"name": "net.ipv4.ip_local_port_range", "value": "1024 65535"},
            {"name": "net.ipv4.tcp_syncookies", "value": "0"},
            {"name": "net.ipv4.ping_group_range", "value": "1 0"},
            {"name": "net.ipv4.ip_unprivileged_port_start", "value": "1024"},
            {"name": "net.ipv4.ip_local_reserved_ports", "value": "1024-4999"},
            {"name": "net.ipv4.tcp_keepalive_time", "value": "7200"},
            {"name": "net.ipv4.tcp_fin_timeout", "value": "60"},
            {"name": "net.ipv4.tcp_keepalive_intvl", "value": "75"},
            {"name": "net.ipv4.tcp_keepalive_probes", "value": "9"},
        ]),
    )
}

fn sysctls_1_32_pass(p: &Value) -> Vec<Value> {
    sysctls_pass_with(
        p,
        json!([
            {"name": "net.ipv4.tcp_rmem", "value": "4096 87380 16777216"},
            {"name": "net.ipv4.tcp_wmem", "value": "4096 65536 16777216"},
        ]),
    )
}

fn sysctls_fail(p: &Value) -> Vec<Value> {
    let mut p = p.clone();
    if p["spec"].get("securityContext").is_none_or(Value::is_null) {
        set(&mut p, "/spec/securityContext", json!({}));
    }
    vec![tweak(&p, |p| {
        set(
            p,
            "/spec/securityContext/sysctls",
            json!([{"name": "othersysctl", "value": "other"}]),
        )
    })]
}

fn host_process_fail(p: &Value) -> Vec<Value> {
    let mut p = ensure_security_context(p);
    for path in [
        "/spec/securityContext".to_string(),
        c0("securityContext"),
        i0("securityContext"),
    ] {
        if p.pointer(&path)
            .and_then(|sc| sc.get("windowsOptions"))
            .is_none_or(Value::is_null)
        {
            set(&mut p, &format!("{path}/windowsOptions"), json!({}));
        }
    }
    vec![
        tweak(&p, |p| {
            set(p, "/spec/hostNetwork", json!(true));
            set(
                p,
                "/spec/securityContext/windowsOptions/hostProcess",
                json!(true),
            );
        }),
        tweak(&p, |p| {
            set(p, "/spec/hostNetwork", json!(true));
            set(
                p,
                &c0("securityContext/windowsOptions/hostProcess"),
                json!(true),
            );
            set(
                p,
                &i0("securityContext/windowsOptions/hostProcess"),
                json!(true),
            );
        }),
    ]
}

/// Every registered generator.
pub fn all() -> Vec<Generator> {
    let g = |check, restricted_only, min_minor, expect, pass, fail| Generator {
        check,
        restricted_only,
        min_minor,
        expect,
        pass,
        fail,
    };
    vec![
        g("allowPrivilegeEscalation", true, 8, None, none, ape_fail),
        g(
            "appArmorProfile",
            false,
            0,
            Some("forbidden AppArmor profile"),
            apparmor_pass,
            apparmor_fail,
        ),
        g(
            "capabilities_baseline",
            false,
            0,
            Some("capabilities"),
            caps_baseline_pass,
            caps_baseline_fail,
        ),
        g(
            "capabilities_restricted",
            true,
            22,
            Some("unrestricted capabilities"),
            caps_restricted_pass,
            caps_restricted_fail,
        ),
        g(
            "hostNamespaces",
            false,
            0,
            Some("host namespaces"),
            none,
            host_namespaces_fail,
        ),
        g(
            "hostPathVolumes",
            false,
            0,
            Some("hostPath"),
            none,
            host_path_fail,
        ),
        g(
            "hostPorts",
            false,
            0,
            Some("hostPort"),
            host_ports_pass,
            host_ports_fail,
        ),
        g(
            "privileged",
            false,
            0,
            None,
            privileged_pass,
            privileged_fail,
        ),
        g(
            "procMount",
            false,
            0,
            Some("procMount"),
            proc_mount_pass,
            proc_mount_fail,
        ),
        g(
            "restrictedVolumes",
            true,
            0,
            Some("restricted volume types"),
            volumes_pass,
            volumes_fail,
        ),
        g("runAsNonRoot", true, 0, None, non_root_pass, non_root_fail),
        g(
            "runAsUser",
            true,
            23,
            None,
            run_as_user_pass,
            run_as_user_fail,
        ),
        g(
            "seLinuxOptions",
            false,
            0,
            Some("seLinuxOptions"),
            selinux_pass,
            selinux_fail,
        ),
        g(
            "seccompProfile_baseline",
            false,
            0,
            Some("seccompProfile"),
            seccomp_baseline_1_0_pass,
            seccomp_baseline_1_0_fail,
        ),
        g(
            "seccompProfile_baseline",
            false,
            19,
            Some("seccompProfile"),
            seccomp_baseline_1_19_pass,
            seccomp_baseline_1_19_fail,
        ),
        g(
            "seccompProfile_restricted",
            true,
            19,
            Some("seccompProfile"),
            seccomp_restricted_pass,
            seccomp_restricted_fail,
        ),
        g(
            "sysctls",
            false,
            0,
            Some("forbidden sysctl"),
            sysctls_1_0_pass,
            sysctls_fail,
        ),
        g(
            "sysctls",
            false,
            27,
            Some("forbidden sysctl"),
            sysctls_1_27_pass,
            sysctls_fail,
        ),
        g(
            "sysctls",
            false,
            29,
            Some("forbidden sysctl"),
            sysctls_1_29_pass,
            sysctls_fail,
        ),
        g(
            "sysctls",
            false,
            32,
            Some("forbidden sysctl"),
            sysctls_1_32_pass,
            sysctls_fail,
        ),
        g(
            "windowsHostProcess",
            false,
            0,
            Some("hostProcess"),
            none,
            host_process_fail,
        ),
    ]
}
