//! The clusterrole-aggregation controller over the served rbac.authorization.k8s.io/v1 API:
//! the bootstrap `admin`, `edit` and `view` roles get their rules from the roles labelled
//! `rbac.authorization.k8s.io/aggregate-to-*`, and a role labelled later joins them.

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, PostParams};
use serde_json::json;

const T: Duration = Duration::from_secs(20);

fn grants(role: &ClusterRole, resource: &str) -> bool {
    role.rules
        .iter()
        .flatten()
        .any(|r| r.resources.iter().flatten().any(|res| res == resource))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_aggregated_roles_are_filled_and_follow_new_labels() {
    let srv = TestServer::start().await;
    let client = srv.client();
    let _t = Tasks(vec![start_controllers(client.clone())]);
    let roles: Api<ClusterRole> = Api::all(client.clone());
    for name in ["admin", "edit", "view"] {
        let api = roles.clone();
        wait_for(&format!("{name} aggregated"), T, || {
            let api = api.clone();
            async move {
                let role = api.get(name).await.ok()?;
                grants(&role, "pods").then_some(())
            }
        })
        .await;
    }
    let view = roles.get("view").await.unwrap();
    assert!(!grants(&view, "secrets"), "view never reads secrets");
    let widgets: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": "widget-viewer",
            "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
        "rules": [{"verbs": ["get"], "apiGroups": ["example.com"], "resources": ["widgets"]}]
    }))
    .unwrap();
    roles
        .create(&PostParams::default(), &widgets)
        .await
        .unwrap();
    let api = roles.clone();
    wait_for("view gets widgets", T, || {
        let api = api.clone();
        async move {
            let role = api.get("view").await.ok()?;
            grants(&role, "widgets").then_some(())
        }
    })
    .await;
}
