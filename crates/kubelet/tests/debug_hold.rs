//! Not a test: `MINI_HOLD=1 cargo test -p kubelet --test debug_hold -- --ignored` starts a
//! one-node lab cluster with a busybox pod and keeps it for 10 minutes for manual debugging.

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn hold() {
    if std::env::var("MINI_HOLD").is_err() || !common::prerequisites("hold") {
        return;
    }
    let c = common::Cluster::start("khold", 1).await;
    let p = common::pod(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: box}
spec:
  containers:
  - {name: app, image: "busybox:latest", imagePullPolicy: IfNotPresent, command: ["sleep", "100000"]}
"#,
    );
    c.pods("default")
        .create(&Default::default(), &p)
        .await
        .unwrap();
    eprintln!(
        "HOLD kubeconfig {} dir {}",
        c.kubeconfig.display(),
        c.tmp.path().display()
    );
    tokio::time::sleep(std::time::Duration::from_secs(600)).await;
}
