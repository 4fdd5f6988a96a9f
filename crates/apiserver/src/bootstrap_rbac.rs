//! Upstream's bootstrap RBAC policy, reconciled at every start: the ClusterRoles,
//! ClusterRoleBindings, Roles and RoleBindings of [`auth::policy`] are created when missing;
//! existing ones get what they lack (rules, aggregation selectors, subjects, the
//! `kubernetes.io/bootstrapping` label and the `autoupdate` annotation) and keep what an
//! administrator added, unless annotated `rbac.authorization.kubernetes.io/autoupdate: "false"`.
//! A binding whose roleRef differs is deleted and created again (roleRef cannot change).
//! Mirrors the `rbac/bootstrap-roles` post-start hook of upstream's
//! pkg/registry/rbac/rest/storage_rbac.go; the decisions themselves are
//! [`auth::policy::reconcile_cluster_role`] and its siblings. Works on the store directly, so it
//! runs the same over the embedded store and etcd, and writes nothing when all is in place.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use store::StoreError;

use auth::policy::{self, Reconciliation};

use crate::cache;
use crate::objects;
use crate::server::ApiServer;

/// How many times one object is retried when another writer got there first.
const ATTEMPTS: usize = 5;

/// The fields reconciliation may change, besides labels and annotations.
const CONTENT: &[&str] = &["rules", "aggregationRule", "subjects", "roleRef"];

/// What [`run`] did, for the log and for tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub created: usize,
    pub updated: usize,
    pub recreated: usize,
}

fn resource(plural: &str) -> &'static api::ResourceInfo {
    api::registry::find(api::rbac::GROUP, "v1", plural).expect("the RBAC kinds are registered")
}

/// Ensures the bootstrap policy. Store errors other than a lost race end it.
pub async fn run(srv: &ApiServer) -> Result<Outcome, StoreError> {
    let mut outcome = Outcome::default();
    let r = resource("clusterroles");
    for desired in policy::cluster_roles() {
        let plan = |existing: Option<&_>| {
            let create = existing.is_none();
            policy::reconcile_cluster_role(existing, &desired).map(|o| as_plan(create, o))
        };
        ensure(srv, r, None, &desired.metadata, plan, &mut outcome).await?;
    }
    let r = resource("clusterrolebindings");
    for desired in policy::cluster_role_bindings() {
        let plan =
            |existing: Option<&_>| policy::reconcile_cluster_role_binding(existing, &desired);
        ensure(srv, r, None, &desired.metadata, plan, &mut outcome).await?;
    }
    let r = resource("roles");
    for desired in policy::roles() {
        let plan = |existing: Option<&_>| {
            let create = existing.is_none();
            policy::reconcile_role(existing, &desired).map(|o| as_plan(create, o))
        };
        let ns = desired.metadata.namespace.clone();
        ensure(srv, r, ns.as_deref(), &desired.metadata, plan, &mut outcome).await?;
    }
    let r = resource("rolebindings");
    for desired in policy::role_bindings() {
        let plan = |existing: Option<&_>| policy::reconcile_role_binding(existing, &desired);
        let ns = desired.metadata.namespace.clone();
        ensure(srv, r, ns.as_deref(), &desired.metadata, plan, &mut outcome).await?;
    }
    tracing::info!(
        created = outcome.created,
        updated = outcome.updated,
        recreated = outcome.recreated,
        "bootstrap RBAC policy reconciled"
    );
    Ok(outcome)
}

fn as_plan<T>(create: bool, object: T) -> Reconciliation<T> {
    if create {
        Reconciliation::Create(object)
    } else {
        Reconciliation::Update(object)
    }
}

/// Reconciles one object: reads it, asks `plan`, writes the answer; again on a lost race.
async fn ensure<T, F>(
    srv: &ApiServer,
    r: &'static api::ResourceInfo,
    namespace: Option<&str>,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    plan: F,
    outcome: &mut Outcome,
) -> Result<(), StoreError>
where
    T: Serialize + DeserializeOwned,
    F: Fn(Option<&T>) -> Option<Reconciliation<T>>,
{
    let name = meta.name.as_deref().unwrap_or_default();
    let key = r.key(namespace, name);
    for _ in 0..ATTEMPTS {
        let current = srv.store.get(&key).await?;
        let existing = match &current {
            None => None,
            Some(kv) => {
                let value = cache::decode(&kv.value, kv.mod_revision)
                    .map_err(|e| StoreError::Other(format!("{key}: {e}")))?;
                match serde_json::from_value::<T>(value.clone()) {
                    Ok(typed) => Some((value, typed, kv.mod_revision)),
                    Err(e) => {
                        tracing::warn!(key, error = %e, "bootstrap RBAC object unreadable: left alone");
                        return Ok(());
                    }
                }
            }
        };
        let Some(decision) = plan(existing.as_ref().map(|(_, typed, _)| typed)) else {
            return Ok(());
        };
        let written = match (decision, existing) {
            (Reconciliation::Create(object), _) => {
                let created = create(srv, r, &key, &object).await?;
                outcome.created += usize::from(created);
                created
            }
            (Reconciliation::Update(object), Some((mut value, _, revision))) => {
                merge_into(&mut value, &to_value(&object));
                let bytes = objects::to_stored_bytes(r, &mut value);
                let done = lost_race(srv.store.update(&key, bytes, revision).await)?;
                outcome.updated += usize::from(done);
                done
            }
            (Reconciliation::Recreate(object), Some((_, _, revision))) => {
                tracing::info!(key, "bootstrap binding has another roleRef: recreating it");
                match srv.store.delete(&key, Some(revision)).await {
                    Ok(_) | Err(StoreError::NotFound { .. }) => {}
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => return Err(e),
                }
                let created = create(srv, r, &key, &object).await?;
                outcome.recreated += usize::from(created);
                created
            }
            // An update of nothing: the object went away; start again.
            (_, None) => false,
        };
        if written {
            return Ok(());
        }
    }
    tracing::warn!(
        key,
        "bootstrap RBAC object kept changing under reconciliation: left as it is"
    );
    Ok(())
}

fn to_value<T: Serialize>(object: &T) -> Value {
    serde_json::to_value(object).unwrap_or(Value::Null)
}

/// Ok(true) when the write happened, Ok(false) when another writer won (read again).
fn lost_race<T>(result: Result<T, StoreError>) -> Result<bool, StoreError> {
    match result {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict { .. })
        | Err(StoreError::AlreadyExists { .. })
        | Err(StoreError::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Creates the object as the create handler would store it: with kind, uid, creation time
/// and the kind's defaults.
async fn create<T: Serialize>(
    srv: &ApiServer,
    r: &api::ResourceInfo,
    key: &str,
    object: &T,
) -> Result<bool, StoreError> {
    let mut value = to_value(object);
    value["apiVersion"] = json!(r.api_version());
    value["kind"] = json!(r.kind);
    let meta = objects::meta_mut(&mut value);
    meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), json!(objects::now_rfc3339()));
    api::defaults::apply(r, &mut value);
    lost_race(
        srv.store
            .create(key, objects::to_stored_bytes(r, &mut value))
            .await,
    )
}

/// Copies the reconciled labels, annotations and content into the stored object, leaving the
/// rest of it (uid, managedFields, fields this server does not know) as it was.
fn merge_into(stored: &mut Value, reconciled: &Value) {
    for field in ["labels", "annotations"] {
        if let Some(v) = reconciled.pointer(&format!("/metadata/{field}")) {
            objects::meta_mut(stored).insert(field.into(), v.clone());
        }
    }
    let Some(map) = stored.as_object_mut() else {
        return;
    };
    for field in CONTENT {
        match reconciled.get(*field) {
            Some(v) if !v.is_null() => {
                map.insert(field.to_string(), v.clone());
            }
            _ => {
                map.shift_remove(*field);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_what_reconciliation_does_not_own() {
        let mut stored = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "view", "uid": "u1", "labels": {"mine": "yes"}},
            "rules": [], "aggregationRule": {"clusterRoleSelectors": [{}]}});
        let reconciled = json!({"metadata": {"name": "view",
            "labels": {"mine": "yes", "kubernetes.io/bootstrapping": "rbac-defaults"}},
            "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]});
        merge_into(&mut stored, &reconciled);
        assert_eq!(stored["metadata"]["uid"], "u1");
        assert_eq!(
            stored["metadata"]["labels"]["kubernetes.io/bootstrapping"],
            "rbac-defaults"
        );
        assert_eq!(stored["rules"][0]["resources"][0], "pods");
        assert!(stored.get("aggregationRule").is_none());
        assert_eq!(stored["kind"], "ClusterRole");
    }
}
