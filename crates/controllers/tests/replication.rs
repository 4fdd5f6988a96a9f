//! The replication manager: a core/v1 ReplicationController gets its pods (owned through a
//! `v1 ReplicationController` controller reference), its status, scaling through the scale
//! subresource, events about it, and its pods deleted with it by the garbage collector.

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::core::v1::{Event, Pod, ReplicationController};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

const T: Duration = Duration::from_secs(20);

async fn owned_by(client: &Client, uid: &str) -> Vec<Pod> {
    active_pods(client, "default")
        .await
        .into_iter()
        .filter(|p| {
            p.owner_references().iter().any(|r| {
                r.uid == uid
                    && r.controller == Some(true)
                    && r.kind == "ReplicationController"
                    && r.api_version == "v1"
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_controller_runs_scales_and_is_collected() {
    let srv = TestServer::start().await;
    let client = srv.client();
    add_node(&client, hollow_node("n1", "4", "8Gi", "110")).await;
    let _t = Tasks(vec![
        start_controllers(client.clone()),
        hollow_kubelet(client.clone(), vec!["n1".into()]),
    ]);
    let rcs: Api<ReplicationController> = Api::namespaced(client.clone(), "default");
    // No selector: defaulted from the template's labels, as upstream.
    let rc: ReplicationController = serde_json::from_value(json!({
        "metadata": {"name": "legacy"},
        "spec": {"replicas": 2,
            "template": {"metadata": {"labels": {"app": "legacy"}},
                "spec": {"containers": [{"name": "c", "image": "busybox:latest"}]}}}
    }))
    .unwrap();
    let created = rcs.create(&PostParams::default(), &rc).await.unwrap();
    let spec = created.spec.clone().unwrap();
    assert_eq!(
        spec.selector.unwrap().get("app").map(String::as_str),
        Some("legacy")
    );
    assert_eq!(created.metadata.generation, Some(1));
    let uid = created.uid().unwrap();
    wait_for("2 owned pods", T, || {
        let (c, u) = (client.clone(), uid.clone());
        async move { (owned_by(&c, &u).await.len() == 2).then_some(()) }
    })
    .await;
    let st = wait_for("status", T, || {
        let rcs = rcs.clone();
        async move {
            let st = rcs.get("legacy").await.ok()?.status?;
            (st.ready_replicas == Some(2) && st.available_replicas == Some(2)).then_some(st)
        }
    })
    .await;
    assert_eq!(st.replicas, 2);
    assert_eq!(st.observed_generation, Some(1));

    // kubectl scale rc: the scale subresource, its selector the label map.
    let scale: Scale = rcs.get_scale("legacy").await.unwrap();
    assert_eq!(
        scale
            .status
            .as_ref()
            .and_then(|s| s.selector.clone())
            .as_deref(),
        Some("app=legacy")
    );
    rcs.patch_scale(
        "legacy",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .unwrap();
    wait_for("3 owned pods", T, || {
        let (c, u) = (client.clone(), uid.clone());
        async move { (owned_by(&c, &u).await.len() == 3).then_some(()) }
    })
    .await;
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    wait_for("a SuccessfulCreate event about the RC", T, || {
        let events = events.clone();
        async move {
            let list = events.list(&Default::default()).await.ok()?;
            list.items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some("SuccessfulCreate")
                        && e.involved_object.kind.as_deref() == Some("ReplicationController")
                        && e.involved_object.name.as_deref() == Some("legacy")
                })
                .then_some(())
        }
    })
    .await;

    // Deleting it (background propagation) takes its pods with it.
    rcs.delete("legacy", &DeleteParams::background())
        .await
        .unwrap();
    wait_for("pods collected", T, || {
        let (c, u) = (client.clone(), uid.clone());
        async move { owned_by(&c, &u).await.is_empty().then_some(()) }
    })
    .await;
}
