//! Real clients against the real mini-apiserver binary: the official Python client, a kube-rs
//! reflector that must stay exact across an apiserver restart, and durability across kill -9
//! (every object back with the same resourceVersion, and a resumed watch missing nothing).

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use common::ServerProcess;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use serde_json::Value;
use testkit::etcd::EtcdServer;

fn configmap(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"suite": "clients"}},
        "data": {"v": value},
    }))
    .unwrap()
}

fn embedded_args(dir: &tempfile::TempDir) -> Vec<String> {
    vec![format!(
        "--store=embedded:{}",
        dir.path().join("state.db").display()
    )]
}

#[test]
fn python_client() {
    let ok = Command::new("python3")
        .args(["-c", "import kubernetes"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        testkit::missing("the Python client", "python3 -m pip install kubernetes");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::spawn(
        &embedded_args(&dir),
        testkit::free_port(),
        dir.path().join("log"),
    );
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        apiserver::kubeconfig::render(&server.url, "py"),
    )
    .unwrap();
    let script = testkit::repo_root().join("tests/python/client_check.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&kubeconfig)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn names_and_versions(api: &Api<ConfigMap>) -> BTreeMap<String, String> {
    api.list(&ListParams::default().labels("suite=clients"))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| {
            (
                c.metadata.name.unwrap(),
                c.metadata.resource_version.unwrap(),
            )
        })
        .collect()
}

async fn reflector_survives_restart(mut server: ServerProcess) {
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..5 {
        api.create(&PostParams::default(), &configmap(&format!("r{i}"), "a"))
            .await
            .unwrap();
    }
    let (reader, writer) = reflector::store();
    let stream = watcher(
        api.clone(),
        watcher::Config::default().labels("suite=clients"),
    )
    .default_backoff()
    .reflect(writer)
    .applied_objects();
    let task = tokio::spawn(async move {
        let mut stream = Box::pin(stream);
        while stream.next().await.is_some() {}
    });
    let cache_matches = |want: BTreeMap<String, String>| {
        let reader = reader.clone();
        async move {
            for _ in 0..200 {
                let have: BTreeMap<String, String> = reader
                    .state()
                    .iter()
                    .map(|c| {
                        (
                            c.metadata.name.clone().unwrap(),
                            c.metadata.resource_version.clone().unwrap(),
                        )
                    })
                    .collect();
                if have == want {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            false
        }
    };
    assert!(
        cache_matches(names_and_versions(&api).await).await,
        "initial sync"
    );

    // Restart the server (kill -9) and change things while it was down... and after.
    tokio::task::block_in_place(|| server.kill9_and_restart());
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    api.delete("r0", &Default::default()).await.unwrap();
    api.replace("r1", &PostParams::default(), &{
        let mut c = api.get("r1").await.unwrap();
        c.data = Some([("v".to_string(), "b".to_string())].into());
        c
    })
    .await
    .unwrap();
    api.create(&PostParams::default(), &configmap("r9", "new"))
        .await
        .unwrap();
    assert!(
        cache_matches(names_and_versions(&api).await).await,
        "the reflector's cache differs from the server after a restart"
    );
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_reflector_across_restart_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::spawn(
        &embedded_args(&dir),
        testkit::free_port(),
        dir.path().join("log"),
    );
    reflector_survives_restart(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_reflector_across_restart_etcd() {
    let dir = tempfile::tempdir().unwrap();
    let Some(etcd) = EtcdServer::start() else {
        return;
    };
    let args = vec![format!("--etcd-servers={}", etcd.endpoint())];
    let server = ServerProcess::spawn(&args, testkit::free_port(), dir.path().join("log"));
    reflector_survives_restart(server).await;
}

async fn durable_across_kill9(mut server: ServerProcess) {
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for i in 0..20 {
        api.create(&PostParams::default(), &configmap(&format!("d{i}"), "x"))
            .await
            .unwrap();
    }
    let before = names_and_versions(&api).await;
    let list_rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    // Changes after the last version the client saw.
    api.delete("d3", &Default::default()).await.unwrap();
    let mut d4 = api.get("d4").await.unwrap();
    d4.data = Some([("v".to_string(), "y".to_string())].into());
    api.replace("d4", &PostParams::default(), &d4)
        .await
        .unwrap();
    tokio::task::block_in_place(|| server.kill9_and_restart());
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let after = names_and_versions(&api).await;
    for (name, rv) in &before {
        if name == "d3" || name == "d4" {
            continue;
        }
        assert_eq!(
            after.get(name),
            Some(rv),
            "{name} changed across the restart"
        );
    }
    assert!(!after.contains_key("d3"));
    // A watch resumed from the last seen version gets exactly the two missed changes.
    let evs = common::watch_lines(
        &server.url,
        &format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={list_rv}"),
        2,
        Duration::from_secs(10),
    )
    .await;
    let got: Vec<(String, String)> = evs
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("DELETED".into(), "d3".into()),
            ("MODIFIED".into(), "d4".into())
        ],
        "{evs:?}"
    );
    assert_eq!(evs[1]["object"]["data"]["v"], Value::from("y"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_across_kill9_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::spawn(
        &embedded_args(&dir),
        testkit::free_port(),
        dir.path().join("log"),
    );
    durable_across_kill9(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_across_kill9_etcd() {
    let dir = tempfile::tempdir().unwrap();
    let Some(etcd) = EtcdServer::start() else {
        return;
    };
    let args = vec![format!("--etcd-servers={}", etcd.endpoint())];
    let server = ServerProcess::spawn(&args, testkit::free_port(), dir.path().join("log"));
    durable_across_kill9(server).await;
}
