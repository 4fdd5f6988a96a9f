//! The clusterrole-aggregation controller (upstream's pkg/controller/clusterroleaggregation):
//! a ClusterRole with an `aggregationRule` gets, as its rules, the rules of every ClusterRole
//! its selectors match (so `admin`, `edit` and `view` grow with the roles labelled
//! `rbac.authorization.k8s.io/aggregate-to-*`, custom resources' included). Any change to any
//! ClusterRole re-aggregates the roles that have a rule.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};

use crate::informer::Informer;
use crate::queue::WorkQueue;
use crate::Result;

/// The controller.
pub struct ClusterRoleAggregation {
    client: Client,
    roles: Arc<Informer<ClusterRole>>,
    queue: Arc<WorkQueue>,
}

impl ClusterRoleAggregation {
    /// Wires the controller: any ClusterRole change enqueues every aggregating role.
    pub fn new(client: Client, roles: Arc<Informer<ClusterRole>>) -> Arc<Self> {
        let queue = WorkQueue::new("clusterrole-aggregation");
        let q = queue.clone();
        let store = roles.store().clone();
        roles.on_change(move |_, _| {
            for r in store.state() {
                if r.aggregation_rule.is_some() {
                    q.add(r.name_any());
                }
            }
        });
        Arc::new(ClusterRoleAggregation {
            client,
            roles,
            queue,
        })
    }

    /// Runs `workers` workers.
    pub async fn run(self: Arc<Self>, workers: usize) {
        self.roles.wait_synced().await;
        for r in self.roles.store().state() {
            if r.aggregation_rule.is_some() {
                self.queue.add(r.name_any());
            }
        }
        let c = self.clone();
        crate::queue::run_workers(self.queue.clone(), workers, move |key| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
    }

    /// Sets role `name`'s rules to what its aggregation rule selects, when they differ.
    pub async fn sync(&self, name: &str) -> Result<Option<Duration>> {
        let all: Vec<ClusterRole> = self
            .roles
            .store()
            .state()
            .iter()
            .map(|r| (**r).clone())
            .collect();
        let Some(role) = all.iter().find(|r| r.name_any() == name) else {
            return Ok(None);
        };
        let Some(rules) = auth::rbac::aggregated_rules(role, &all) else {
            return Ok(None);
        };
        if role.rules.as_deref().unwrap_or_default() == rules.as_slice() {
            return Ok(None);
        }
        let mut updated = role.clone();
        updated.rules = Some(rules);
        let api: Api<ClusterRole> = Api::all(self.client.clone());
        match api.replace(name, &PostParams::default(), &updated).await {
            Ok(_) => Ok(None),
            // Someone else wrote it meanwhile: the change comes back as an event.
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
