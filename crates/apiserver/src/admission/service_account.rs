//! The ServiceAccount admission plugin (upstream plugin/pkg/admission/serviceaccount,
//! 1.33): a new pod gets `spec.serviceAccountName` (default `default`), which must exist; unless
//! automounting is off, a projected `kube-api-access-xxxxx` volume (a bound token, the cluster
//! CA and the namespace) mounted read-only at `/var/run/secrets/kubernetes.io/serviceaccount`
//! in every container and init container; and the ServiceAccount's imagePullSecrets when the
//! pod names none. Mirror pods are left unchanged and may reference no ServiceAccount, secret or
//! token projection. ServiceAccounts annotated `kubernetes.io/enforce-mountable-secrets: "true"`
//! limit the secrets their pods (and later ephemeral containers) reference.

use std::time::Duration;

use serde_json::{json, Value};

use super::request::{Operation, Request};
use crate::error::ApiError;
use crate::objects;
use crate::server::ApiServer;

/// The ServiceAccount a pod without one gets.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
/// Where the token volume is mounted.
pub const API_TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The prefix of the token volume's name.
pub const VOLUME_NAME: &str = "kube-api-access";
/// The annotation marking mirror pods.
pub const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// The annotation asking for mountable-secrets enforcement.
const ENFORCE_MOUNTABLE_SECRETS: &str = "kubernetes.io/enforce-mountable-secrets";
/// `WarnOnlyBoundTokenExpirationSeconds`: the token lifetime of the projected volume.
const TOKEN_EXPIRATION_SECONDS: i64 = 3607;

/// Whether a pod is a mirror pod (the kubelet's copy of a static pod).
pub fn is_mirror_pod(pod: &Value) -> bool {
    pod.pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION))
}

/// The plugin's Admit and Validate for one request.
pub async fn admit(srv: &ApiServer, req: &Request<'_>, pod: &mut Value) -> Result<(), ApiError> {
    match (req.operation, req.subresource) {
        (Operation::Create, "") => {}
        (Operation::Update, "ephemeralcontainers") => {
            return validate_ephemeral_containers(srv, req, pod).await;
        }
        _ => return Ok(()),
    }
    if is_mirror_pod(pod) {
        return match mirror_pod_refusal(pod) {
            Some(why) => Err(req.forbidden(why)),
            None => Ok(()),
        };
    }
    let sa_name = match str_at(pod, "/spec/serviceAccountName") {
        "" => DEFAULT_SERVICE_ACCOUNT.to_string(),
        name => name.to_string(),
    };
    if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("serviceAccountName".into(), json!(sa_name));
    }
    let sa = service_account(srv, req, &sa_name).await?;
    if should_automount(&sa, pod) {
        mount_token(pod, &objects::generate_name(&format!("{VOLUME_NAME}-")));
    }
    copy_image_pull_secrets(&sa, pod);
    if enforces_mountable_secrets(&sa) {
        limit_secret_references(&sa, pod).map_err(|e| req.forbidden(&e))?;
    }
    Ok(())
}

/// Validate on the ephemeralcontainers subresource: the pod's ServiceAccount must exist and,
/// when it enforces mountable secrets, the ephemeral containers may only use those.
async fn validate_ephemeral_containers(
    srv: &ApiServer,
    req: &Request<'_>,
    pod: &Value,
) -> Result<(), ApiError> {
    let sa_name = str_at(pod, "/spec/serviceAccountName");
    if sa_name.is_empty() {
        return Err(req.forbidden(&format!(
            "no service account specified for pod {}/{}",
            req.namespace,
            objects::name(pod)
        )));
    }
    let sa = service_account(srv, req, sa_name).await?;
    if !enforces_mountable_secrets(&sa) {
        return Ok(());
    }
    // upstream answers a plain error here (an internal error), not a Forbidden
    limit_ephemeral_secret_references(&sa, pod).map_err(ApiError::internal)
}

/// upstream's getServiceAccount: the informer, then live reads (ten for `default`, which its
/// controller is expected to create any moment), else NotFound.
async fn service_account(
    srv: &ApiServer,
    req: &Request<'_>,
    name: &str,
) -> Result<Value, ApiError> {
    let r = api::registry::find("", "v1", "serviceaccounts").expect("serviceaccounts registered");
    let key = r.key(Some(req.namespace), name);
    let attempts = if name == DEFAULT_SERVICE_ACCOUNT {
        10
    } else {
        1
    };
    for i in 0..attempts {
        if i > 0 {
            let jitter = rand::random_range(0..100);
            tokio::time::sleep(Duration::from_millis(100 + jitter)).await;
        }
        if let Some(sa) = crate::handlers::cached_or_stored(srv, r, &key).await? {
            return Ok(sa);
        }
    }
    Err(req.forbidden(&format!(
        "error looking up service account {}/{name}: serviceaccount \"{name}\" not found",
        req.namespace
    )))
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn array_at<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Why a mirror pod is refused, in upstream's words.
pub fn mirror_pod_refusal(pod: &Value) -> Option<&'static str> {
    if !str_at(pod, "/spec/serviceAccountName").is_empty() {
        return Some("a mirror pod may not reference service accounts");
    }
    if !secret_names(pod).is_empty() {
        return Some("a mirror pod may not reference secrets");
    }
    if has_token_projection(pod) {
        return Some("a mirror pod may not use ServiceAccountToken volume projections");
    }
    None
}

/// Whether a volume of the pod projects a ServiceAccount token.
pub fn has_token_projection(pod: &Value) -> bool {
    array_at(pod, "/spec/volumes").iter().any(|v| {
        array_at(v, "/projected/sources")
            .iter()
            .any(|s| s.get("serviceAccountToken").is_some())
    })
}

/// The containers of every kind (`AllContainers`).
fn all_containers(pod: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .flat_map(move |f| array_at(pod, &format!("/spec/{f}")).iter())
}

/// The secrets a pod references (upstream's `VisitPodSecretNames` over all containers).
pub fn secret_names(pod: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |v: Option<&Value>| {
        if let Some(s) = v.and_then(Value::as_str).filter(|s| !s.is_empty()) {
            out.push(s.to_string());
        }
    };
    for s in array_at(pod, "/spec/imagePullSecrets") {
        push(s.get("name"));
    }
    for c in all_containers(pod) {
        for e in array_at(c, "/envFrom") {
            push(e.pointer("/secretRef/name"));
        }
        for e in array_at(c, "/env") {
            push(e.pointer("/valueFrom/secretKeyRef/name"));
        }
    }
    for v in array_at(pod, "/spec/volumes") {
        push(v.pointer("/secret/secretName"));
        push(v.pointer("/azureFile/secretName"));
        for src in [
            "cephfs",
            "cinder",
            "flexVolume",
            "rbd",
            "scaleIO",
            "iscsi",
            "storageos",
        ] {
            push(v.pointer(&format!("/{src}/secretRef/name")));
        }
        push(v.pointer("/csi/nodePublishSecretRef/name"));
        for p in array_at(v, "/projected/sources") {
            push(p.pointer("/secret/name"));
        }
    }
    out
}

/// The ConfigMaps a pod references (upstream's `VisitPodConfigmapNames`).
pub fn configmap_names(pod: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |v: Option<&Value>| {
        if let Some(s) = v.and_then(Value::as_str).filter(|s| !s.is_empty()) {
            out.push(s.to_string());
        }
    };
    for c in all_containers(pod) {
        for e in array_at(c, "/envFrom") {
            push(e.pointer("/configMapRef/name"));
        }
        for e in array_at(c, "/env") {
            push(e.pointer("/valueFrom/configMapKeyRef/name"));
        }
    }
    for v in array_at(pod, "/spec/volumes") {
        push(v.pointer("/configMap/name"));
        for p in array_at(v, "/projected/sources") {
            push(p.pointer("/configMap/name"));
        }
    }
    out
}

/// The pod's own choice wins, then the ServiceAccount's; true when neither says.
pub fn should_automount(sa: &Value, pod: &Value) -> bool {
    pod.pointer("/spec/automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| {
            sa.get("automountServiceAccountToken")
                .and_then(Value::as_bool)
        })
        .unwrap_or(true)
}

/// upstream's `TokenVolumeSource`.
pub fn token_volume_source() -> Value {
    json!({
        "defaultMode": 420,
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ],
    })
}

/// upstream's `mountServiceAccountToken`: reuses a `kube-api-access-*` volume the pod has or
/// adds one named `new_name`, mounted in every init container and container that mounts
/// nothing at the token path yet.
pub fn mount_token(pod: &mut Value, new_name: &str) {
    let existing = array_at(pod, "/spec/volumes")
        .iter()
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .find(|n| n.starts_with(&format!("{VOLUME_NAME}-")))
        .map(String::from);
    let has_volume = existing.is_some();
    let name = existing.unwrap_or_else(|| new_name.to_string());
    let mount = json!({"name": name, "readOnly": true, "mountPath": API_TOKEN_MOUNT_PATH});
    let mut needs_volume = false;
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for field in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(field).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers.iter_mut().filter_map(Value::as_object_mut) {
            let mounts = c.entry("volumeMounts").or_insert_with(|| json!([]));
            let Some(mounts) = mounts.as_array_mut() else {
                continue;
            };
            if mounts
                .iter()
                .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(API_TOKEN_MOUNT_PATH))
            {
                continue;
            }
            mounts.push(mount.clone());
            needs_volume = true;
        }
    }
    if !has_volume && needs_volume {
        let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
        if let Some(volumes) = volumes.as_array_mut() {
            volumes.push(json!({"name": name, "projected": token_volume_source()}));
        }
    }
}

/// The ServiceAccount's imagePullSecrets (names only) when the pod has none.
pub fn copy_image_pull_secrets(sa: &Value, pod: &mut Value) {
    if !array_at(pod, "/spec/imagePullSecrets").is_empty() {
        return;
    }
    let names: Vec<Value> = array_at(sa, "/imagePullSecrets")
        .iter()
        .map(|s| json!({"name": s.get("name").cloned().unwrap_or(json!(""))}))
        .collect();
    if names.is_empty() {
        return;
    }
    if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("imagePullSecrets".into(), Value::Array(names));
    }
}

fn enforces_mountable_secrets(sa: &Value) -> bool {
    // Go's strconv.ParseBool truths
    sa.pointer("/metadata/annotations")
        .and_then(|a| a.get(ENFORCE_MOUNTABLE_SECRETS))
        .and_then(Value::as_str)
        .is_some_and(|v| matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True"))
}

fn names_of(list: &[Value]) -> Vec<&str> {
    list.iter()
        .filter_map(|s| s.get("name").and_then(Value::as_str))
        .collect()
}

fn env_secret_refusal(sa_name: &str, mountable: &[&str], kind: &str, c: &Value) -> Option<String> {
    let cname = str_at(c, "/name");
    for e in array_at(c, "/env") {
        if let Some(s) = e
            .pointer("/valueFrom/secretKeyRef/name")
            .and_then(Value::as_str)
        {
            if !mountable.contains(&s) {
                return Some(format!(
                    "{kind} {cname} with envVar {} referencing secret.secretName=\"{s}\" is not allowed because service account {sa_name} does not reference that secret",
                    str_at(e, "/name")
                ));
            }
        }
    }
    for e in array_at(c, "/envFrom") {
        if let Some(s) = e.pointer("/secretRef/name").and_then(Value::as_str) {
            if !mountable.contains(&s) {
                return Some(format!(
                    "{kind} {cname} with envFrom referencing secret.secretName=\"{s}\" is not allowed because service account {sa_name} does not reference that secret"
                ));
            }
        }
    }
    None
}

/// upstream's `limitSecretReferences`: secret volumes, env and envFrom of init containers
/// and containers, and imagePullSecrets must be among the ServiceAccount's.
pub fn limit_secret_references(sa: &Value, pod: &Value) -> Result<(), String> {
    let sa_name = str_at(sa, "/metadata/name");
    let mountable = names_of(array_at(sa, "/secrets"));
    for v in array_at(pod, "/spec/volumes") {
        if let Some(s) = v.pointer("/secret/secretName").and_then(Value::as_str) {
            if !mountable.contains(&s) {
                return Err(format!("volume with secret.secretName=\"{s}\" is not allowed because service account {sa_name} does not reference that secret"));
            }
        }
    }
    for (field, kind) in [
        ("initContainers", "init container"),
        ("containers", "container"),
    ] {
        for c in array_at(pod, &format!("/spec/{field}")) {
            if let Some(why) = env_secret_refusal(sa_name, &mountable, kind, c) {
                return Err(why);
            }
        }
    }
    let pull = names_of(array_at(sa, "/imagePullSecrets"));
    for (i, s) in names_of(array_at(pod, "/spec/imagePullSecrets"))
        .into_iter()
        .enumerate()
    {
        if !pull.contains(&s) {
            return Err(format!("imagePullSecrets[{i}].name=\"{s}\" is not allowed because service account {sa_name} does not reference that imagePullSecret"));
        }
    }
    Ok(())
}

/// upstream's `limitEphemeralContainerSecretReferences`.
pub fn limit_ephemeral_secret_references(sa: &Value, pod: &Value) -> Result<(), String> {
    let sa_name = str_at(sa, "/metadata/name");
    let mountable = names_of(array_at(sa, "/secrets"));
    for c in array_at(pod, "/spec/ephemeralContainers") {
        if let Some(why) = env_secret_refusal(sa_name, &mountable, "ephemeral container", c) {
            return Err(why);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [
                {"name": "a", "image": "nginx"},
                {"name": "b", "image": "nginx", "volumeMounts": [
                    {"name": "own", "mountPath": API_TOKEN_MOUNT_PATH}]},
            ],
            "volumes": [{"name": "own", "emptyDir": {}}],
        }})
    }

    #[test]
    fn token_volume_is_added_and_mounted_where_nothing_is() {
        let mut p = pod();
        mount_token(&mut p, "kube-api-access-x7k2q");
        let vols = p["spec"]["volumes"].as_array().unwrap();
        assert_eq!(vols.len(), 2);
        assert_eq!(
            vols[1],
            json!({"name": "kube-api-access-x7k2q", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
            ]}})
        );
        let mount = json!({"name": "kube-api-access-x7k2q", "readOnly": true,
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"});
        assert_eq!(
            p["spec"]["initContainers"][0]["volumeMounts"],
            json!([mount.clone()])
        );
        assert_eq!(p["spec"]["containers"][0]["volumeMounts"], json!([mount]));
        // b mounts its own volume there: left alone
        assert_eq!(
            p["spec"]["containers"][1]["volumeMounts"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        // A second pass reuses the volume.
        mount_token(&mut p, "kube-api-access-other");
        assert_eq!(p["spec"]["volumes"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn no_volume_when_every_container_mounts_the_path_itself() {
        let mut p = json!({"spec": {"containers": [{"name": "b", "volumeMounts": [
            {"name": "own", "mountPath": API_TOKEN_MOUNT_PATH}]}]}});
        mount_token(&mut p, "kube-api-access-abcde");
        assert!(p["spec"].get("volumes").is_none());
    }

    #[test]
    fn automount_pod_wins_then_service_account_then_true() {
        let sa_off = json!({"automountServiceAccountToken": false});
        let sa = json!({});
        let pod_on = json!({"spec": {"automountServiceAccountToken": true}});
        let pod_off = json!({"spec": {"automountServiceAccountToken": false}});
        let pod_unset = json!({"spec": {}});
        assert!(should_automount(&sa, &pod_unset));
        assert!(!should_automount(&sa_off, &pod_unset));
        assert!(should_automount(&sa_off, &pod_on));
        assert!(!should_automount(&sa, &pod_off));
    }

    #[test]
    fn image_pull_secrets_copied_only_when_the_pod_has_none() {
        let sa = json!({"imagePullSecrets": [{"name": "reg"}]});
        let mut p = json!({"spec": {}});
        copy_image_pull_secrets(&sa, &mut p);
        assert_eq!(p["spec"]["imagePullSecrets"], json!([{"name": "reg"}]));
        let mut p = json!({"spec": {"imagePullSecrets": [{"name": "mine"}]}});
        copy_image_pull_secrets(&sa, &mut p);
        assert_eq!(p["spec"]["imagePullSecrets"], json!([{"name": "mine"}]));
    }

    #[test]
    fn mirror_pods_may_not_reference_accounts_secrets_or_tokens() {
        let base = json!({"metadata": {"annotations": {MIRROR_POD_ANNOTATION: "x"}},
            "spec": {"containers": [{"name": "a"}]}});
        assert!(is_mirror_pod(&base));
        assert_eq!(mirror_pod_refusal(&base), None);
        let mut p = base.clone();
        p["spec"]["serviceAccountName"] = json!("default");
        assert_eq!(
            mirror_pod_refusal(&p),
            Some("a mirror pod may not reference service accounts")
        );
        let mut p = base.clone();
        p["spec"]["containers"][0]["env"] =
            json!([{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]);
        assert_eq!(
            mirror_pod_refusal(&p),
            Some("a mirror pod may not reference secrets")
        );
        let mut p = base;
        p["spec"]["volumes"] = json!([{"name": "t", "projected": token_volume_source()}]);
        assert_eq!(
            mirror_pod_refusal(&p),
            Some("a mirror pod may not use ServiceAccountToken volume projections")
        );
    }

    #[test]
    fn mountable_secrets_are_enforced_when_the_account_asks() {
        let sa = json!({"metadata": {"name": "builder", "annotations": {
            "kubernetes.io/enforce-mountable-secrets": "true"}},
            "secrets": [{"name": "ok"}]});
        assert!(enforces_mountable_secrets(&sa));
        assert!(!enforces_mountable_secrets(&json!({"metadata": {}})));
        let p = json!({"spec": {"containers": [{"name": "c", "envFrom": [{"secretRef": {"name": "other"}}]}],
            "volumes": [{"name": "v", "secret": {"secretName": "ok"}}]}});
        assert_eq!(
            limit_secret_references(&sa, &p).unwrap_err(),
            "container c with envFrom referencing secret.secretName=\"other\" is not allowed because service account builder does not reference that secret"
        );
        let p = json!({"spec": {"ephemeralContainers": [{"name": "dbg", "env": [
            {"name": "T", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]}]}});
        assert_eq!(
            limit_ephemeral_secret_references(&sa, &p).unwrap_err(),
            "ephemeral container dbg with envVar T referencing secret.secretName=\"nope\" is not allowed because service account builder does not reference that secret"
        );
    }
}
