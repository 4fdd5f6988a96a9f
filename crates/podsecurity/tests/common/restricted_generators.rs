//! Pass and fail pods for the restricted-only checks, as upstream's
//! `staging/src/k8s.io/pod-security-admission/test/{fixtures_allowPrivilegeEscalation.go,
//! fixtures_capabilities_restricted.go, fixtures_restrictedVolumes.go, fixtures_runAsNonRoot.go,
//! fixtures_runAsUser.go, fixtures_seccompProfile_restricted.go}` generate them.

use serde_json::{json, Value};

use super::generators::{c0, i0, is_windows, localhost, rd, unconfined, DEFAULT_CAPS, POD_SECCOMP};
use super::{ensure_capabilities, ensure_security_context, set, tweak};

pub fn ape_fail(p: &Value) -> Vec<Value> {
    if is_windows(p) {
        return Vec::new();
    }
    vec![
        tweak(p, |p| {
            set(
                p,
                &c0("securityContext/allowPrivilegeEscalation"),
                json!(true),
            )
        }),
        tweak(p, |p| {
            set(
                p,
                &i0("securityContext/allowPrivilegeEscalation"),
                json!(true),
            )
        }),
        tweak(p, |p| {
            set(
                p,
                &c0("securityContext/allowPrivilegeEscalation"),
                Value::Null,
            )
        }),
        tweak(p, |p| set(p, &c0("securityContext"), Value::Null)),
    ]
}

pub fn caps_restricted_pass(p: &Value) -> Vec<Value> {
    let p = ensure_capabilities(p);
    vec![tweak(&p, |p| {
        for f in [c0, i0] {
            set(p, &f("securityContext/capabilities/drop"), json!(["ALL"]));
            set(
                p,
                &f("securityContext/capabilities/add"),
                json!(["NET_BIND_SERVICE"]),
            );
        }
    })]
}

pub fn caps_restricted_fail(p: &Value) -> Vec<Value> {
    let p = ensure_capabilities(p);
    let many = json!([
        "SYS_TIME",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "NET_ADMIN",
        "SYSLOG",
        "CHOWN",
        "NET_RAW",
        "DAC_OVERRIDE",
        "FOWNER",
        "DAC_READ_SEARCH",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_BOOT",
        "LEASE",
        "SETFCAP",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
    ]);
    vec![
        tweak(&p, |p| {
            set(p, &c0("securityContext/capabilities/drop"), json!([]))
        }),
        tweak(&p, |p| {
            set(p, &i0("securityContext/capabilities/drop"), json!([]))
        }),
        tweak(&p, |p| {
            set(p, &c0("securityContext/capabilities/drop"), many.clone());
            set(p, &i0("securityContext/capabilities/drop"), many.clone());
        }),
        tweak(&p, |p| {
            for f in [c0, i0] {
                set(p, &f("securityContext/capabilities/drop"), json!(["ALL"]));
                set(
                    p,
                    &f("securityContext/capabilities/add"),
                    json!(DEFAULT_CAPS),
                );
            }
        }),
    ]
}

pub fn volumes_pass(p: &Value) -> Vec<Value> {
    vec![tweak(p, |p| {
        set(
            p,
            "/spec/volumes",
            json!([
                {"name": "volume0"},
                {"name": "volume1", "emptyDir": {}},
                {"name": "volume2", "secret": {"secretName": "test"}},
                {"name": "volume3", "persistentVolumeClaim": {"claimName": "test"}},
                {"name": "volume4", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                {"name": "volume5", "configMap": {"name": "test"}},
                {"name": "volume6", "projected": {"sources": []}},
            ]),
        )
    })]
}

pub fn volumes_fail(p: &Value) -> Vec<Value> {
    let sources = [
        json!({"gcePersistentDisk": {"pdName": "test"}}),
        json!({"awsElasticBlockStore": {"volumeID": "test"}}),
        json!({"gitRepo": {"repository": "github.com/kubernetes/kubernetes"}}),
        json!({"nfs": {"server": "test", "path": "/test"}}),
        json!({"iscsi": {"targetPortal": "test", "iqn": "iqn.2001-04.com.example:storage.kube.sys1.xyz", "lun": 0}}),
        json!({"glusterfs": {"path": "test", "endpoints": "test"}}),
        json!({"rbd": {"monitors": ["test"], "image": "test"}}),
        json!({"flexVolume": {"driver": "test"}}),
        json!({"cinder": {"volumeID": "test"}}),
        json!({"cephfs": {"monitors": ["test"]}}),
        json!({"flocker": {"datasetName": "test"}}),
        json!({"fc": {"wwids": ["test"]}}),
        json!({"azureFile": {"secretName": "test", "shareName": "test"}}),
        json!({"vsphereVolume": {"volumePath": "test"}}),
        json!({"quobyte": {"registry": "localhost:1234", "volume": "test"}}),
        json!({"azureDisk": {"diskName": "test", "diskURI": "https://test.blob.core.windows.net/test/test.vhd"}}),
        json!({"portworxVolume": {"volumeID": "test", "fsType": "ext4"}}),
        json!({"scaleIO": {"volumeName": "test", "gateway": "localhost", "system": "test"}}),
        json!({"storageos": {"volumeName": "test"}}),
        json!({"hostPath": {"path": "/dev/null"}}),
    ];
    sources
        .into_iter()
        .map(|mut src| {
            src["name"] = json!("volume1");
            tweak(p, |p| set(p, "/spec/volumes", json!([src])))
        })
        .collect()
}

pub fn non_root_pass(p: &Value) -> Vec<Value> {
    let p = ensure_security_context(p);
    vec![
        tweak(&p, |p| {
            set(p, "/spec/securityContext/runAsNonRoot", json!(true));
            set(p, &c0("securityContext/runAsNonRoot"), Value::Null);
            set(p, &i0("securityContext/runAsNonRoot"), Value::Null);
        }),
        tweak(&p, |p| {
            set(p, "/spec/securityContext/runAsNonRoot", Value::Null);
            set(p, &c0("securityContext/runAsNonRoot"), json!(true));
            set(p, &i0("securityContext/runAsNonRoot"), json!(true));
        }),
    ]
}

pub fn non_root_fail(p: &Value) -> Vec<Value> {
    let p = ensure_security_context(p);
    vec![
        tweak(&p, |p| {
            set(p, "/spec/securityContext/runAsNonRoot", Value::Null);
            set(p, &c0("securityContext/runAsNonRoot"), Value::Null);
            set(p, &i0("securityContext/runAsNonRoot"), Value::Null);
        }),
        tweak(&p, |p| {
            set(p, "/spec/securityContext/runAsNonRoot", json!(false))
        }),
        tweak(&p, |p| {
            set(p, &c0("securityContext/runAsNonRoot"), json!(false))
        }),
        tweak(&p, |p| {
            set(p, &i0("securityContext/runAsNonRoot"), json!(false))
        }),
    ]
}

pub fn run_as_user_pass(p: &Value) -> Vec<Value> {
    let p = ensure_security_context(p);
    vec![tweak(&p, |p| {
        set(p, "/spec/securityContext/runAsUser", json!(1000));
        set(p, &c0("securityContext/runAsUser"), json!(1000));
        set(p, &i0("securityContext/runAsUser"), json!(1000));
    })]
}

pub fn run_as_user_fail(p: &Value) -> Vec<Value> {
    let p = ensure_security_context(p);
    [
        "/spec/securityContext/runAsUser".to_string(),
        c0("securityContext/runAsUser"),
        i0("securityContext/runAsUser"),
    ]
    .iter()
    .map(|path| tweak(&p, |p| set(p, path, json!(0))))
    .collect()
}

pub fn seccomp_restricted_pass(p: &Value) -> Vec<Value> {
    let p = ensure_security_context(p);
    vec![
        tweak(&p, |p| set(p, POD_SECCOMP, rd())),
        tweak(&p, |p| set(p, POD_SECCOMP, localhost())),
        tweak(&p, |p| {
            set(p, POD_SECCOMP, Value::Null);
            set(p, &c0("securityContext/seccompProfile"), rd());
            set(p, &i0("securityContext/seccompProfile"), localhost());
        }),
    ]
}

pub fn seccomp_restricted_fail(p: &Value) -> Vec<Value> {
    let p = ensure_security_context(p);
    vec![
        tweak(&p, |p| set(p, POD_SECCOMP, Value::Null)),
        tweak(&p, |p| set(p, POD_SECCOMP, unconfined())),
        tweak(&p, |p| {
            set(p, POD_SECCOMP, Value::Null);
            set(p, &c0("securityContext/seccompProfile"), rd());
        }),
        tweak(&p, |p| {
            set(p, POD_SECCOMP, Value::Null);
            set(p, &i0("securityContext/seccompProfile"), rd());
        }),
        tweak(&p, |p| {
            set(p, POD_SECCOMP, Value::Null);
            set(p, &c0("securityContext/seccompProfile"), rd());
            set(p, &i0("securityContext/seccompProfile"), unconfined());
        }),
    ]
}
