//! PersistentVolumeClaims on this node: the directory of the bound PersistentVolume (hostPath
//! or local), and for an unbound claim the local-path provisioner's role: a directory under
//! the kubelet's root, a PersistentVolume pinned to this node, and the binding.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, ObjectReference,
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeSpec, VolumeNodeAffinity,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};

use crate::volumes::VolumeError;

fn not_found(claim: &str, what: &'static str) -> VolumeError {
    VolumeError::NotFound {
        volume: claim.to_string(),
        kind: what,
        name: claim.to_string(),
    }
}

fn pv_path(pv: &PersistentVolume) -> Option<PathBuf> {
    let spec = pv.spec.as_ref()?;
    spec.host_path
        .as_ref()
        .map(|h| PathBuf::from(&h.path))
        .or_else(|| spec.local.as_ref().map(|l| PathBuf::from(&l.path)))
}

/// The node directory of claim `ns/name`, provisioning and binding a local-path volume on
/// `node` when the claim is still pending.
pub async fn resolve(
    client: &Client,
    ns: &str,
    name: &str,
    node: &str,
    root: &Path,
) -> Result<PathBuf, crate::worker::SyncError> {
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let pvc = pvcs
        .get_opt(name)
        .await?
        .ok_or_else(|| not_found(name, "persistentvolumeclaim"))?;
    let bound = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .filter(|v| !v.is_empty());
    if let Some(pv_name) = bound {
        let pv = pvs
            .get_opt(&pv_name)
            .await?
            .ok_or_else(|| not_found(name, "persistentvolume"))?;
        return Ok(
            pv_path(&pv).ok_or_else(|| not_found(name, "hostPath or local persistentvolume"))?
        );
    }
    // Provision: pvc-<uid>, a directory on this node.
    let uid = pvc.uid().unwrap_or_default();
    let pv_name = format!("pvc-{uid}");
    let dir = root
        .join("local-path")
        .join(format!("{pv_name}_{ns}_{name}"));
    // Writable by whatever user the pod runs as, as local-path makes its volumes.
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)))
        .map_err(|source| crate::worker::SyncError::Io {
            path: dir.display().to_string(),
            source,
        })?;
    let spec = pvc.spec.clone().unwrap_or_default();
    let storage = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage").cloned())
        .unwrap_or(Quantity("1Gi".into()));
    let pv = PersistentVolume {
        metadata: ObjectMeta {
            name: Some(pv_name.clone()),
            annotations: Some(BTreeMap::from([(
                "pv.kubernetes.io/provisioned-by".to_string(),
                "minicluster.io/local-path".to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(PersistentVolumeSpec {
            capacity: Some(BTreeMap::from([("storage".to_string(), storage)])),
            access_modes: spec.access_modes.clone(),
            persistent_volume_reclaim_policy: Some("Retain".into()),
            storage_class_name: spec.storage_class_name.clone(),
            host_path: Some(HostPathVolumeSource {
                path: dir.display().to_string(),
                type_: Some("DirectoryOrCreate".into()),
            }),
            claim_ref: Some(ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("PersistentVolumeClaim".into()),
                name: Some(name.to_string()),
                namespace: Some(ns.to_string()),
                uid: Some(uid),
                ..Default::default()
            }),
            node_affinity: Some(VolumeNodeAffinity {
                required: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement {
                            key: "kubernetes.io/hostname".into(),
                            operator: "In".into(),
                            values: Some(vec![node.to_string()]),
                        }]),
                        match_fields: None,
                    }],
                }),
            }),
            ..Default::default()
        }),
        status: None,
    };
    match pvs.create(&PostParams::default(), &pv).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    let pp = PatchParams::default();
    pvs.patch_status(
        &pv_name,
        &pp,
        &Patch::Merge(serde_json::json!({"status": {"phase": "Bound"}})),
    )
    .await?;
    pvcs.patch(
        name,
        &pp,
        &Patch::Merge(serde_json::json!({
            "metadata": {"annotations": {"pv.kubernetes.io/bind-completed": "yes"}},
            "spec": {"volumeName": pv_name},
        })),
    )
    .await?;
    let capacity = pv
        .spec
        .as_ref()
        .and_then(|s| s.capacity.clone())
        .unwrap_or_default();
    pvcs.patch_status(
        name,
        &pp,
        &Patch::Merge(serde_json::json!({"status": {
            "phase": "Bound",
            "accessModes": spec.access_modes,
            "capacity": capacity,
        }})),
    )
    .await?;
    Ok(dir)
}
