//! Root integration test of what real clients stream through the apiserver to the kubelet: exec
//! and attach from the official Python client (pinned and newest release: text and binary
//! frames, v4 and v5, the v5 close signal, exit codes), and `kubectl debug -it --target` with an
//! ephemeral container that shares the target's processes. Nothing is left behind.

mod common;

use common::{err, in_a_terminal, phase, text, Cluster, T};

/// What a command wrote, stdout then stderr.
fn output(o: &std::process::Output) -> String {
    format!("{}{}", text(o), err(o))
}

const PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: shell
spec:
  containers:
  - name: c
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
---
apiVersion: v1
kind: Pod
metadata:
  name: echoer
spec:
  containers:
  - name: echo
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    stdin: true
    command: ["sh", "-c", "while read l; do echo got:$l; done"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_streams_and_kubectl_debug() {
    if !common::prerequisites("python_streams_and_kubectl_debug") {
        return;
    }
    let clients: Vec<testkit::python::PythonClient> =
        [testkit::python::pinned(), testkit::python::newest()]
            .into_iter()
            .flatten()
            .collect();
    let c = Cluster::start(&format!("kst{}", std::process::id() % 10000), 1).await;
    let path = c.tmp.path().join("pods.yaml");
    std::fs::write(&path, PODS).unwrap();
    let o = c
        .kubectl(&["apply", "-f", path.to_str().unwrap()])
        .expect("kubectl");
    assert!(o.status.success(), "kubectl apply: {}", output(&o));
    for pod in ["shell", "echoer"] {
        c.wait_pod("default", pod, T, "Running", |p| phase(p) == "Running")
            .await;
    }

    // The Python client, each release with the protocol it negotiates.
    let script = testkit::repo_root().join("tests/python/stream_check.py");
    for py in &clients {
        let o = std::process::Command::new(&py.python)
            .arg(&script)
            .arg(&c.kubeconfig)
            .args(["shell", "echoer"])
            .output()
            .expect("run python");
        assert!(
            o.status.success(),
            "python client {}: {}\n{}",
            py.version,
            output(&o),
            c.logs_tail()
        );
        eprintln!("python client {}: {}", py.version, output(&o).trim());
    }

    // kubectl debug -it with a target: an ephemeral container in the pod's namespaces that sees
    // the target's processes.
    let session = in_a_terminal(
        &c,
        &[
            "debug",
            "-it",
            "shell",
            "--image=busybox:latest",
            "--image-pull-policy=IfNotPresent",
            "--target=c",
            "--container=dbg",
            "--",
            "sh",
        ],
        b"ps -o pid,args; echo done-$((6*7)); exit\r",
    );
    assert!(
        session.contains("sleep 3600") && session.contains("done-42"),
        "kubectl debug session:\n{session}\n{}",
        c.logs_tail()
    );
    let p = c
        .wait_pod("default", "shell", T, "the debugger terminated", |p| {
            p.status
                .as_ref()
                .and_then(|s| s.ephemeral_container_statuses.as_ref())
                .and_then(|l| l.iter().find(|s| s.name == "dbg"))
                .and_then(|s| s.state.as_ref())
                .is_some_and(|s| s.terminated.is_some())
        })
        .await;
    let spec = p.spec.unwrap();
    let ec = &spec.ephemeral_containers.unwrap()[0];
    assert_eq!(ec.target_container_name.as_deref(), Some("c"));
    // The pod itself is untouched: still running, its container not restarted.
    let st = p.status.unwrap();
    assert_eq!(st.phase.as_deref(), Some("Running"));
    assert_eq!(st.container_statuses.unwrap()[0].restart_count, 0);
    // An ephemeral container is never restarted, and never removed by an update.
    let o = c
        .kubectl(&[
            "get",
            "pod",
            "shell",
            "-o",
            "jsonpath={.status.ephemeralContainerStatuses[0].restartCount}",
        ])
        .unwrap();
    assert_eq!(text(&o).trim(), "0");

    let left = c.shutdown();
    assert!(left.is_empty(), "left behind: {left:#?}");
}
