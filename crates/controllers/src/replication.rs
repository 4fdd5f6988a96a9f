//! The objects the ReplicaSet controller manages: apps/v1 ReplicaSets, or core/v1
//! ReplicationControllers seen as ReplicaSets. Like upstream's replication manager
//! (pkg/controller/replication/conversion.go), a ReplicationController is converted to a
//! ReplicaSet (its label-map selector becoming matchLabels) and the same controller runs over
//! it, with the owner kind, the status writes and the events its own.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{
    ReplicaSet, ReplicaSetCondition, ReplicaSetSpec, ReplicaSetStatus,
};
use k8s_openapi::api::core::v1::{
    ObjectReference, ReplicationController, ReplicationControllerCondition,
    ReplicationControllerStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};

use crate::informer::Informer;
use crate::Result;

/// Where the controller's objects come from.
#[derive(Clone)]
pub enum Replicated {
    ReplicaSets(Arc<Informer<ReplicaSet>>),
    ReplicationControllers(Arc<Informer<ReplicationController>>),
}

impl Replicated {
    /// The owner kind written in the pods' controller references.
    pub fn kind(&self) -> &'static str {
        match self {
            Replicated::ReplicaSets(_) => "ReplicaSet",
            Replicated::ReplicationControllers(_) => "ReplicationController",
        }
    }

    /// The owner's apiVersion.
    pub fn api_version(&self) -> &'static str {
        match self {
            Replicated::ReplicaSets(_) => "apps/v1",
            Replicated::ReplicationControllers(_) => "v1",
        }
    }

    /// The work queue's name.
    pub fn controller_name(&self) -> &'static str {
        match self {
            Replicated::ReplicaSets(_) => "replicaset",
            Replicated::ReplicationControllers(_) => "replicationmanager",
        }
    }

    /// The events' source component, as upstream names it.
    pub fn component(&self) -> &'static str {
        match self {
            Replicated::ReplicaSets(_) => "replicaset-controller",
            Replicated::ReplicationControllers(_) => "replication-controller",
        }
    }

    /// Calls `h` with the `ns/name` key of every object that changes.
    pub fn on_change(&self, h: impl Fn(String) + Send + Sync + 'static) {
        fn key<K: kube::Resource>(old: Option<&K>, new: Option<&K>) -> Option<String> {
            new.or(old).map(crate::util::key_of)
        }
        match self {
            Replicated::ReplicaSets(i) => i.on_change(move |o, n| {
                if let Some(k) = key(o, n) {
                    h(k)
                }
            }),
            Replicated::ReplicationControllers(i) => i.on_change(move |o, n| {
                if let Some(k) = key(o, n) {
                    h(k)
                }
            }),
        }
    }

    /// Waits for the first list.
    pub async fn wait_synced(&self) {
        match self {
            Replicated::ReplicaSets(i) => i.wait_synced().await,
            Replicated::ReplicationControllers(i) => i.wait_synced().await,
        }
    }

    /// Every cached object, as ReplicaSets.
    pub fn state(&self) -> Vec<ReplicaSet> {
        match self {
            Replicated::ReplicaSets(i) => i.store().state().iter().map(|r| (**r).clone()).collect(),
            Replicated::ReplicationControllers(i) => i
                .store()
                .state()
                .iter()
                .map(|r| to_replica_set(r))
                .collect(),
        }
    }

    /// The cached object `ns/name`.
    pub fn find(&self, ns: &str, name: &str) -> Option<ReplicaSet> {
        let hit = |n: Option<String>, o: String| n.as_deref() == Some(ns) && o == name;
        match self {
            Replicated::ReplicaSets(i) => i
                .store()
                .find(|r| hit(r.namespace(), r.name_any()))
                .map(|r| (*r).clone()),
            Replicated::ReplicationControllers(i) => i
                .store()
                .find(|r| hit(r.namespace(), r.name_any()))
                .map(|r| to_replica_set(&r)),
        }
    }

    /// The object as the API has it now (upstream's canAdopt recheck).
    pub async fn get_fresh(
        &self,
        client: &Client,
        ns: &str,
        name: &str,
    ) -> Result<Option<ReplicaSet>> {
        Ok(match self {
            Replicated::ReplicaSets(_) => {
                Api::<ReplicaSet>::namespaced(client.clone(), ns)
                    .get_opt(name)
                    .await?
            }
            Replicated::ReplicationControllers(_) => {
                Api::<ReplicationController>::namespaced(client.clone(), ns)
                    .get_opt(name)
                    .await?
                    .map(|rc| to_replica_set(&rc))
            }
        })
    }

    /// Writes `status` through the status subresource; Ok(false) when the object is gone.
    pub async fn write_status(
        &self,
        client: &Client,
        rs: &ReplicaSet,
        status: &ReplicaSetStatus,
    ) -> Result<bool> {
        let ns = rs.namespace().unwrap_or_default();
        let result = match self {
            Replicated::ReplicaSets(_) => {
                let mut new = rs.clone();
                new.status = Some(status.clone());
                Api::<ReplicaSet>::namespaced(client.clone(), &ns)
                    .replace_status(&rs.name_any(), &PostParams::default(), &new)
                    .await
                    .map(|_| ())
            }
            Replicated::ReplicationControllers(_) => {
                let rc = ReplicationController {
                    metadata: rs.metadata.clone(),
                    spec: None,
                    status: Some(to_rc_status(status)),
                };
                Api::<ReplicationController>::namespaced(client.clone(), &ns)
                    .replace_status(&rs.name_any(), &PostParams::default(), &rc)
                    .await
                    .map(|_| ())
            }
        };
        match result {
            Ok(()) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The controller reference a pod of `rs` carries.
    pub fn controller_ref(&self, rs: &ReplicaSet) -> OwnerReference {
        OwnerReference {
            api_version: self.api_version().to_string(),
            kind: self.kind().to_string(),
            name: rs.name_any(),
            uid: rs.uid().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    /// What events about `rs` are about.
    pub fn object_reference(&self, rs: &ReplicaSet) -> ObjectReference {
        ObjectReference {
            api_version: Some(self.api_version().to_string()),
            kind: Some(self.kind().to_string()),
            name: Some(rs.name_any()),
            namespace: rs.namespace(),
            uid: rs.uid(),
            resource_version: rs.resource_version(),
            field_path: None,
        }
    }
}

/// A ReplicationController as the ReplicaSet it amounts to.
pub fn to_replica_set(rc: &ReplicationController) -> ReplicaSet {
    ReplicaSet {
        metadata: rc.metadata.clone(),
        spec: rc.spec.as_ref().map(|s| ReplicaSetSpec {
            replicas: s.replicas,
            min_ready_seconds: s.min_ready_seconds,
            selector: LabelSelector {
                match_labels: s.selector.clone(),
                match_expressions: None,
            },
            template: s.template.clone(),
        }),
        status: rc.status.as_ref().map(|s| ReplicaSetStatus {
            replicas: s.replicas,
            fully_labeled_replicas: s.fully_labeled_replicas,
            ready_replicas: s.ready_replicas,
            available_replicas: s.available_replicas,
            observed_generation: s.observed_generation,
            conditions: s.conditions.as_ref().map(|cs| {
                cs.iter()
                    .map(|c| ReplicaSetCondition {
                        type_: c.type_.clone(),
                        status: c.status.clone(),
                        reason: c.reason.clone(),
                        message: c.message.clone(),
                        last_transition_time: c.last_transition_time.clone(),
                    })
                    .collect()
            }),
            terminating_replicas: None,
        }),
    }
}

/// A ReplicaSet status as a ReplicationController's.
pub fn to_rc_status(s: &ReplicaSetStatus) -> ReplicationControllerStatus {
    ReplicationControllerStatus {
        replicas: s.replicas,
        fully_labeled_replicas: s.fully_labeled_replicas,
        ready_replicas: s.ready_replicas,
        available_replicas: s.available_replicas,
        observed_generation: s.observed_generation,
        conditions: s.conditions.as_ref().map(|cs| {
            cs.iter()
                .map(|c| ReplicationControllerCondition {
                    type_: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_transition_time: c.last_transition_time.clone(),
                })
                .collect()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replication_controller_converts_both_ways() {
        let rc: ReplicationController = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "ns", "generation": 3},
            "spec": {"replicas": 2, "selector": {"app": "web"},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
            "status": {"replicas": 1, "readyReplicas": 1, "observedGeneration": 2,
                "conditions": [{"type": "ReplicaFailure", "status": "True"}]},
        }))
        .unwrap();
        let rs = to_replica_set(&rc);
        let spec = rs.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(2));
        assert_eq!(
            spec.selector.match_labels.as_ref().unwrap().get("app"),
            Some(&"web".to_string())
        );
        let status = rs.status.as_ref().unwrap();
        assert_eq!(status.ready_replicas, Some(1));
        let back = to_rc_status(status);
        assert_eq!(back, rc.status.unwrap());
    }
}
