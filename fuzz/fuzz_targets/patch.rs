//! Fuzz target: PATCH application. Byte 0 picks the patch type (JSON patch, merge patch,
//! strategic merge patch, apply), byte 1 the original (a Deployment, a Pod, a Service, all
//! defaulted as stored); the rest is the patch body. Nothing may panic.

#![no_main]

mod common;

use std::sync::OnceLock;

use api::patch::{apply_patch, PatchType};
use common::check_type;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

const TYPES: [PatchType; 4] = [
    PatchType::Json,
    PatchType::Merge,
    PatchType::StrategicMerge,
    PatchType::Apply,
];

fn resource(plural: &str, group: &str) -> &'static api::ResourceInfo {
    api::RESOURCES
        .iter()
        .find(|r| r.plural == plural && r.group == group)
        .expect("registered resource")
}

fn originals() -> &'static [(&'static api::ResourceInfo, Value)] {
    static ORIGINALS: OnceLock<Vec<(&'static api::ResourceInfo, Value)>> = OnceLock::new();
    ORIGINALS.get_or_init(|| {
        let deploy = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
                         "annotations": {"a": "b"}, "finalizers": ["x/y"],
                         "resourceVersion": "12", "uid": "2c8e1c1e-1f0e-4b7a-9d3e-1a2b3c4d5e6f",
                         "generation": 3},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [
                                      {"name": "web", "image": "demo-web:v1",
                                       "ports": [{"containerPort": 8080, "name": "http"}],
                                       "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                                       "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                                      {"name": "side", "image": "busybox:latest", "args": ["sleep", "1d"]}],
                                           "volumes": [{"name": "data", "emptyDir": {}}],
                                           "tolerations": [{"key": "k", "operator": "Exists"}]}}},
            "status": {"replicas": 3, "readyReplicas": 2,
                       "conditions": [{"type": "Available", "status": "True"}]}
        });
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                              "name": "web-x", "uid": "u1", "controller": true}]},
            "spec": {"nodeName": "node-1", "containers": [
                         {"name": "web", "image": "demo-web:v1",
                          "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                          "resources": {"limits": {"cpu": "100m"}, "requests": {"memory": "16Mi"}}}],
                     "initContainers": [{"name": "init", "image": "busybox:latest"}],
                     "imagePullSecrets": [{"name": "reg"}]},
            "status": {"phase": "Running", "podIP": "10.244.1.5",
                       "podIPs": [{"ip": "10.244.1.5"}],
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": "web", "ready": true, "restartCount": 0,
                                              "image": "demo-web:v1", "imageID": "", "state": {"running": {}}}]}
        });
        let svc = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "clusterIP": "10.96.0.20",
                     "clusterIPs": ["10.96.0.20"],
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080},
                               {"name": "https", "port": 443, "protocol": "TCP"}]},
            "status": {"loadBalancer": {}}
        });
        [
            (resource("deployments", "apps"), deploy),
            (resource("pods", ""), pod),
            (resource("services", ""), svc),
        ]
        .into_iter()
        .map(|(r, mut v)| {
            api::defaults::apply(r, &mut v);
            (r, v)
        })
        .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let patch_type = TYPES[data[0] as usize % TYPES.len()];
    let originals = originals();
    let (r, original) = &originals[data[1] as usize % originals.len()];
    let Ok(mut patched) = apply_patch(r, original, patch_type, &data[2..]) else {
        return;
    };
    // What the apiserver's PATCH handler does next must not panic either.
    if !check_type(r, &mut patched) {
        return;
    }
    let Ok((mut pruned, _unknown)) = api::validation::prune_unknown_fields(r, patched) else {
        return;
    };
    api::defaults::apply(r, &mut pruned);
    let _ = api::validation::validate_update(r, &pruned, original);
});
