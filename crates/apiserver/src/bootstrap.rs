//! Objects every cluster has from its first start: the namespaces default, kube-system,
//! kube-public and kube-node-lease, the system PriorityClasses, and the `kubernetes` Service
//! with its Endpoints and EndpointSlice pointing at this apiserver; then the bootstrap RBAC
//! policy ([`crate::bootstrap_rbac`]).

use std::sync::Arc;

use serde_json::{json, Value};
use store::StoreError;

use crate::cache;
use crate::objects;
use crate::server::ApiServer;

const NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

fn resource(group: &str, version: &str, plural: &str) -> &'static api::ResourceInfo {
    api::registry::find(group, version, plural).expect("bootstrap resources are registered")
}

fn base(kind: &str, api_version: &str, name: &str, namespace: Option<&str>) -> Value {
    let mut meta = json!({
        "name": name,
        "uid": uuid::Uuid::new_v4().to_string(),
        "creationTimestamp": objects::now_rfc3339(),
    });
    if let Some(ns) = namespace {
        meta["namespace"] = json!(ns);
    }
    json!({"apiVersion": api_version, "kind": kind, "metadata": meta})
}

async fn create_if_absent(
    srv: &ApiServer,
    r: &api::ResourceInfo,
    key: &str,
    obj: &Value,
) -> Result<(), StoreError> {
    let mut obj = obj.clone();
    match srv
        .store
        .create(key, objects::to_stored_bytes(r, &mut obj))
        .await
    {
        Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes `obj` unless the stored object already has the same `field` (the endpoints of this
/// apiserver follow its advertise address across restarts).
async fn ensure(
    srv: &ApiServer,
    r: &api::ResourceInfo,
    key: &str,
    obj: &Value,
    field: &str,
) -> Result<(), StoreError> {
    match srv.store.get(key).await? {
        None => create_if_absent(srv, r, key, obj).await,
        Some(kv) => {
            let mut obj = obj.clone();
            api::wire::canonicalize(r, &mut obj);
            let current: Value = cache::decode(&kv.value, kv.mod_revision).unwrap_or(json!({}));
            if current.get(field) == obj.get(field) {
                return Ok(());
            }
            let mut updated = current.clone();
            updated[field] = obj[field].clone();
            match srv
                .store
                .update(
                    key,
                    objects::to_stored_bytes(r, &mut updated),
                    kv.mod_revision,
                )
                .await
            {
                Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        }
    }
}

/// Creates what is missing.
pub async fn run(srv: &Arc<ApiServer>) -> Result<(), StoreError> {
    let nsr = resource("", "v1", "namespaces");
    for ns in NAMESPACES {
        let mut obj = base("Namespace", "v1", ns, None);
        api::defaults::apply(nsr, &mut obj);
        obj["status"] = json!({"phase": "Active"});
        create_if_absent(srv, nsr, &nsr.key(None, ns), &obj).await?;
    }
    let pcr = resource("scheduling.k8s.io", "v1", "priorityclasses");
    for (name, value, description) in api::priority::SYSTEM_CLASSES {
        let mut obj = base("PriorityClass", "scheduling.k8s.io/v1", name, None);
        obj["value"] = json!(value);
        obj["description"] = json!(description);
        api::defaults::apply(pcr, &mut obj);
        create_if_absent(srv, pcr, &pcr.key(None, name), &obj).await?;
    }
    let ip = srv.alloc.first_ip();
    let port = srv.config.advertise.port();
    let svcr = resource("", "v1", "services");
    let svc_key = svcr.key(Some("default"), "kubernetes");
    if srv.store.get(&svc_key).await?.is_none() {
        let _ = srv.alloc.allocate_ip(ip);
        let mut svc = base("Service", "v1", "kubernetes", Some("default"));
        svc["metadata"]["labels"] = json!({"component": "apiserver", "provider": "kubernetes"});
        svc["spec"] = json!({
            "type": "ClusterIP",
            "clusterIP": ip.to_string(),
            "clusterIPs": [ip.to_string()],
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
            "sessionAffinity": "None",
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
        });
        svc["status"] = json!({"loadBalancer": {}});
        create_if_absent(srv, svcr, &svc_key, &svc).await?;
    }
    let address = srv.advertise_ip().to_string();
    let epr = resource("", "v1", "endpoints");
    let mut ep = base("Endpoints", "v1", "kubernetes", Some("default"));
    ep["metadata"]["labels"] = json!({"endpointslice.kubernetes.io/skip-mirror": "true"});
    ep["subsets"] = json!([{
        "addresses": [{"ip": address}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }]);
    ensure(
        srv,
        epr,
        &epr.key(Some("default"), "kubernetes"),
        &ep,
        "subsets",
    )
    .await?;
    let slr = resource("discovery.k8s.io", "v1", "endpointslices");
    let mut slice = base(
        "EndpointSlice",
        "discovery.k8s.io/v1",
        "kubernetes",
        Some("default"),
    );
    slice["metadata"]["labels"] = json!({
        "kubernetes.io/service-name": "kubernetes",
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
    });
    slice["addressType"] = json!("IPv4");
    slice["endpoints"] = json!([{"addresses": [address], "conditions": {"ready": true}}]);
    slice["ports"] = json!([{"name": "https", "port": port, "protocol": "TCP"}]);
    ensure(
        srv,
        slr,
        &slr.key(Some("default"), "kubernetes"),
        &slice,
        "endpoints",
    )
    .await?;
    crate::bootstrap_rbac::run(srv).await?;
    Ok(())
}
