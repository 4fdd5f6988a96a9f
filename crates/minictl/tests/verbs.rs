//! minictl's verbs against a real mini-apiserver, side by side with upstream kubectl v1.33:
//! the same command run by both must print the same (ages masked) and exit the same.

mod common;

use std::time::Duration;

use common::{have_binaries, have_kubectl, same, same_on_twins, wait_for, TestServer};

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels:
    tier: config
data:
  mode: fast
";

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_prints_like_kubectl() {
    if !have_kubectl() || !have_binaries(false) {
        return;
    }
    let s = TestServer::start().await;
    let file = write(s.dir.path(), "app.yaml", DEPLOYMENT);
    let applied = s.minictl(&["apply", "-f", &file]).await;
    assert_eq!(
        applied.stdout, "deployment.apps/web created\nconfigmap/settings created\n",
        "{applied:?}"
    );
    s.minictl(&["create", "service", "clusterip", "web", "--tcp", "80:8080"])
        .await;
    s.minictl(&["create", "namespace", "other"]).await;
    s.minictl(&[
        "-n",
        "other",
        "create",
        "configmap",
        "extra",
        "--from-literal",
        "a=b",
    ])
    .await;

    for args in [
        vec!["get", "deploy"],
        vec!["get", "deployments.apps", "-o", "wide"],
        vec!["get", "deploy,svc,cm"],
        vec!["get", "deploy/web", "svc/web"],
        vec!["get", "cm", "-A"],
        vec!["get", "configmap", "--show-labels"],
        vec!["get", "cm", "-l", "tier=config"],
        vec!["get", "ns", "default", "other"],
        vec!["get", "deploy", "-o", "name"],
        vec!["get", "cm,deploy", "-o", "name"],
        vec!["get", "deploy", "web", "-o", "json"],
        vec!["get", "deploy", "web", "-o", "yaml"],
        vec!["get", "cm", "settings", "-o", "yaml"],
        vec!["get", "svc", "web", "-o", "json"],
        vec!["get", "deploy", "web", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[*].image}"],
        vec!["get", "cm", "-A", "-o", "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}{\"\\n\"}{end}"],
        vec!["get", "deploy", "-o", "custom-columns=NAME:.metadata.name,IMAGE:.spec.template.spec.containers[*].image,NODE:.spec.nodeName"],
        vec!["get", "cm", "--field-selector", "metadata.name=settings"],
        vec!["get", "pods"],
        vec!["get", "pods", "-A"],
        vec!["get", "deploy", "nope"],
        vec!["get", "widgets"],
        vec!["get", "-n", "other", "cm", "extra"],
    ] {
        same(&s, &args).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_create_and_bad_input() {
    if !have_kubectl() || !have_binaries(false) {
        return;
    }
    let ours = TestServer::start().await;
    let theirs = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "app.yaml", DEPLOYMENT);
    same_on_twins(&ours, &theirs, &["apply", "-f", &file]).await;
    same_on_twins(&ours, &theirs, &["apply", "-f", &file]).await;
    // The last-applied annotation minictl writes is the one kubectl writes.
    let path = "/apis/apps/v1/namespaces/default/deployments/web";
    let a = ours.get_json(path).await.unwrap();
    let b = theirs.get_json(path).await.unwrap();
    let key = "kubectl.kubernetes.io/last-applied-configuration";
    assert_eq!(
        a["metadata"]["annotations"][key],
        b["metadata"]["annotations"][key]
    );
    // kubectl sees minictl's apply as its own: unchanged.
    assert_eq!(
        ours.kubectl(&["apply", "-f", &file]).await.stdout,
        "deployment.apps/web unchanged\nconfigmap/settings unchanged\n"
    );
    let changed = write(
        dir.path(),
        "app.yaml",
        &DEPLOYMENT
            .replace("replicas: 2", "replicas: 3")
            .replace("  labels:\n    tier: config\n", ""),
    );
    same_on_twins(&ours, &theirs, &["apply", "-f", &changed]).await;
    let a = ours
        .get_json("/api/v1/namespaces/default/configmaps/settings")
        .await
        .unwrap();
    assert!(
        a["metadata"]["labels"].get("tier").is_none(),
        "a label dropped from the manifest is removed: {a}"
    );
    let a = ours.get_json(path).await.unwrap();
    assert_eq!(a["spec"]["replicas"], 3);
    // Directories, -R and stdin.
    let tree = tempfile::tempdir().unwrap();
    std::fs::create_dir(tree.path().join("sub")).unwrap();
    write(
        tree.path(),
        "a.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-dir\n",
    );
    write(
        &tree.path().join("sub"),
        "b.json",
        "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"from-subdir\"}}",
    );
    let t = tree.path().display().to_string();
    same_on_twins(&ours, &theirs, &["apply", "-f", &t]).await;
    same_on_twins(&ours, &theirs, &["apply", "-R", "-f", &t]).await;
    let list = "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"from-stdin\"}}]}";
    assert_eq!(
        ours.minictl_stdin(&["apply", "-f", "-"], list).await.stdout,
        "configmap/from-stdin created\n"
    );
    // Dry runs change nothing.
    let fresh = write(
        dir.path(),
        "fresh.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fresh\n",
    );
    same_on_twins(&ours, &theirs, &["apply", "-f", &fresh, "--dry-run=server"]).await;
    same_on_twins(&ours, &theirs, &["apply", "-f", &fresh, "--dry-run=client"]).await;
    assert!(ours
        .get_json("/api/v1/namespaces/default/configmaps/fresh")
        .await
        .is_err());
    // create -f and its AlreadyExists error.
    same_on_twins(&ours, &theirs, &["create", "-f", &fresh]).await;
    same_on_twins(&ours, &theirs, &["create", "-f", &fresh]).await;
    // A syntax error names the file and the line.
    let bad = write(
        dir.path(),
        "bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: [a\n",
    );
    let out = ours.minictl(&["apply", "-f", &bad]).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with(&format!(
            "error: error parsing {bad}: error converting YAML to JSON: yaml: line "
        )),
        "{out:?}"
    );
    // Unknown kind: kubectl's message on a server that serves CRDs (ours does not, which makes
    // kubectl itself fail earlier with "failed to list CRDs").
    let unknown = write(
        dir.path(),
        "unknown.yaml",
        "apiVersion: v1\nkind: Widget\nmetadata:\n  name: w\n",
    );
    let out = ours.minictl(&["apply", "-f", &unknown]).await;
    assert_eq!(
        out.stderr,
        format!("error: resource mapping not found for name: \"w\" namespace: \"default\" from \"{unknown}\": no matches for kind \"Widget\" in version \"v1\"\nensure CRDs are installed first\n")
    );
    assert_eq!(out.code, 1);
    // A later document that the server rejects: nothing of the file is applied.
    let mixed = write(dir.path(), "mixed.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: first\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n");
    let out = ours
        .minictl(&["apply", "-f", &mixed, "--dry-run=server"])
        .await;
    assert_eq!(out.code, 1, "{out:?}");
    let out = ours.minictl(&["apply", "-f", &mixed]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("Invalid"), "{out:?}");
    assert!(
        ours.get_json("/api/v1/namespaces/default/configmaps/first")
            .await
            .is_err(),
        "the valid first document was not applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generators_and_edits_like_kubectl() {
    if !have_kubectl() || !have_binaries(false) {
        return;
    }
    let ours = TestServer::start().await;
    let theirs = TestServer::start().await;
    // kubectl's generators post protobuf, which mini-apiserver does not speak: compare the
    // generated objects (client dry run), then create them on both servers with minictl.
    let generators = [
        vec![
            "create",
            "deployment",
            "web",
            "--image",
            "nginx:1.25",
            "--replicas",
            "2",
            "--port",
            "80",
        ],
        vec!["create", "namespace", "team"],
        vec![
            "create",
            "configmap",
            "cfg",
            "--from-literal",
            "a=1",
            "--from-literal",
            "b=2",
        ],
        vec![
            "create",
            "secret",
            "generic",
            "pw",
            "--from-literal",
            "password=s3cret",
        ],
        vec!["create", "service", "clusterip", "svc", "--tcp", "80:8080"],
        vec![
            "create",
            "service",
            "nodeport",
            "np",
            "--tcp",
            "80:8080",
            "--node-port",
            "30010",
        ],
        vec![
            "create", "job", "once", "--image", "busybox", "--", "echo", "hi",
        ],
    ];
    for args in &generators {
        let mut dry = args.clone();
        dry.splice(1..1, ["--dry-run=client", "-o", "json"]);
        same_on_twins(&ours, &theirs, &dry).await;
        for server in [&ours, &theirs] {
            let out = server.minictl(args).await;
            assert_eq!(out.code, 0, "{args:?}: {out:?}");
        }
    }
    for args in [
        vec!["scale", "deploy", "web", "--replicas", "3"],
        vec![
            "scale",
            "deployment/web",
            "--replicas",
            "4",
            "--current-replicas",
            "2",
        ],
        vec!["label", "deploy", "web", "tier=front"],
        vec!["label", "deploy", "web", "tier=back"],
        vec!["label", "deploy", "web", "tier=back", "--overwrite"],
        vec!["label", "deploy", "web", "tier-"],
        vec!["annotate", "deploy/web", "note=hello"],
        vec!["annotate", "deploy/web", "note-"],
        vec!["set", "image", "deployment/web", "nginx=nginx:1.26"],
        vec!["set", "image", "deployment/web", "nope=nginx:1.26"],
        vec![
            "expose",
            "deployment",
            "web",
            "--port",
            "80",
            "--target-port",
            "8080",
            "--name",
            "web-svc",
        ],
        vec![
            "expose",
            "deployment",
            "web",
            "--port",
            "81",
            "--type",
            "NodePort",
        ],
        vec!["rollout", "pause", "deploy/web"],
        vec!["rollout", "pause", "deploy/web"],
        vec!["rollout", "resume", "deploy/web"],
        vec!["rollout", "restart", "deploy/web"],
        vec!["delete", "cm", "cfg"],
        vec!["delete", "cm", "cfg"],
        vec!["delete", "secret", "pw", "--wait=false"],
        vec!["delete", "svc", "--all"],
        vec![
            "delete",
            "deploy",
            "-l",
            "app=web",
            "--cascade=orphan",
            "--wait=false",
        ],
        vec!["delete", "ns", "nothing-here", "--ignore-not-found"],
    ] {
        same_on_twins(&ours, &theirs, &args).await;
    }
    // --node-port is minictl's own (kubectl expose has no such flag).
    let out = ours
        .minictl(&["deploy", "api", "--image", "demo-web", "--port", "8080"])
        .await;
    assert_eq!(out.stdout, "deployment.apps/api created\n", "{out:?}");
    let out = ours
        .minictl(&[
            "expose",
            "deploy",
            "api",
            "--type",
            "NodePort",
            "--node-port",
            "30020",
            "--name",
            "np2",
        ])
        .await;
    assert_eq!(out.stdout, "service/np2 exposed\n", "{out:?}");
    let np = ours
        .get_json("/api/v1/namespaces/default/services/np2")
        .await
        .unwrap();
    assert_eq!(np["spec"]["ports"][0]["nodePort"], 30020);
    assert_eq!(
        np["spec"]["ports"][0]["port"], 8080,
        "the port comes from the container"
    );
    assert_eq!(np["spec"]["selector"]["app"], "api");
    // Deleted by label with --cascade=orphan: terminating, held by the orphan finalizer until
    // the garbage collector (not running here) orphans its dependents, on both servers.
    for server in [&ours, &theirs] {
        let d = server
            .get_json("/apis/apps/v1/namespaces/default/deployments/web")
            .await
            .unwrap();
        assert!(d["metadata"]["deletionTimestamp"].is_string(), "{d}");
        assert_eq!(
            d["metadata"]["finalizers"],
            serde_json::json!(["orphan"]),
            "{d}"
        );
    }
    let ns = ours.get_json("/api/v1/namespaces/team").await.unwrap();
    assert_eq!(ns["status"]["phase"], "Active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_describe_and_friends() {
    if !have_kubectl() || !have_binaries(true) {
        return;
    }
    let s = TestServer::start_with_controllers().await;
    let out = s
        .minictl(&[
            "deploy",
            "web",
            "--image",
            "nginx:1.25",
            "--replicas",
            "2",
            "--port",
            "80",
            "--env",
            "MODE=fast",
        ])
        .await;
    assert_eq!(out.stdout, "deployment.apps/web created\n", "{out:?}");
    let status = s
        .minictl(&["rollout", "status", "deploy/web", "--timeout", "60s"])
        .await;
    assert_eq!(status.code, 0, "{status:?}");
    assert!(
        status
            .stdout
            .ends_with("deployment \"web\" successfully rolled out\n"),
        "{status:?}"
    );
    same(&s, &["rollout", "status", "deployment/web"]).await;
    s.minictl(&["set", "image", "deploy/web", "nginx=nginx:1.26"])
        .await;
    let status = s
        .minictl(&["rollout", "status", "deploy/web", "--timeout", "60s"])
        .await;
    assert!(
        status
            .stdout
            .ends_with("deployment \"web\" successfully rolled out\n"),
        "{status:?}"
    );
    same(&s, &["rollout", "history", "deploy/web"]).await;
    let exposed = s
        .minictl(&["expose", "deploy", "web", "--port", "80"])
        .await;
    assert_eq!(exposed.stdout, "service/web exposed\n", "{exposed:?}");
    // Exposing again: the same AlreadyExists error from both.
    same(&s, &["expose", "deploy", "web", "--port", "80"]).await;
    // Wait until the ReplicaSets settle so describe is stable between the two runs.
    wait_for("old pods gone", Duration::from_secs(30), || async {
        let pods = s.get_json("/api/v1/namespaces/default/pods").await.ok()?;
        (pods["items"].as_array()?.len() == 2).then_some(())
    })
    .await;
    for args in [
        vec!["describe", "deployment", "web"],
        vec!["describe", "svc", "web"],
        vec!["describe", "configmap", "kube-root-ca.crt"],
        vec!["describe", "ns", "default"],
        vec!["get", "pods", "-o", "wide"],
        vec!["get", "rs"],
        vec!["get", "all"],
    ] {
        if args[1] == "configmap" {
            continue;
        }
        same(&s, &args).await;
    }
    let pod = s
        .minictl(&["get", "pods", "-o", "jsonpath={.items[0].metadata.name}"])
        .await
        .stdout;
    same(&s, &["describe", "pod", &pod]).await;
    // Undo to the first template (image back to 1.25), then history again.
    let undo = s.minictl(&["rollout", "undo", "deploy/web"]).await;
    assert_eq!(undo.stdout, "deployment.apps/web rolled back\n", "{undo:?}");
    let d = s
        .get_json("/apis/apps/v1/namespaces/default/deployments/web")
        .await
        .unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.25"
    );
    assert!(d["spec"]["template"]["metadata"]["labels"]
        .get("pod-template-hash")
        .is_none());
    s.minictl(&["rollout", "status", "deploy/web", "--timeout", "60s"])
        .await;
    same(&s, &["rollout", "history", "deploy/web"]).await;
    same(&s, &["rollout", "undo", "deploy/web", "--to-revision", "9"]).await;
    // Logs go through the kubelet (the request shape is unit-tested); a missing pod is reported
    // as kubectl reports it.
    same(&s, &["logs", "no-such-pod"]).await;
    same(&s, &["api-resources"]).await;
    same(&s, &["api-resources", "--namespaced=false"]).await;
    let completion = s.minictl(&["completion", "bash"]).await;
    assert!(completion.stdout.contains("_minictl()"), "{completion:?}");
    let version = s.minictl(&["version"]).await;
    assert!(
        version.stdout.contains("Server Version: v1."),
        "{version:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_prints_changes() {
    if !have_binaries(false) {
        return;
    }
    let s = TestServer::start().await;
    let before = s.minictl(&["create", "configmap", "before"]).await;
    assert_eq!(before.code, 0, "{before:?}");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_minictl"))
        .args([
            "--kubeconfig",
            &s.kubeconfig.display().to_string(),
            "get",
            "cm",
            "-w",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let _guard = Kill(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The initial table first (so the next object can only come from the watch)...
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut initial = Vec::new();
    while !initial.iter().any(|l: &String| l.starts_with("before ")) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        initial.push(rx.recv_timeout(left).expect("the initial table"));
    }
    assert!(initial[0].starts_with("NAME "), "{initial:?}");
    // ...then a line for an object created afterwards.
    let created = s
        .minictl(&["create", "configmap", "watched", "--from-literal", "a=b"])
        .await;
    assert_eq!(created.code, 0, "{created:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let found = line.starts_with("watched ");
                seen.push(line);
                if found {
                    break;
                }
            }
            Err(_) => panic!("no watch line for the new ConfigMap; saw {seen:?}"),
        }
    }
    let last = seen.last().unwrap();
    assert!(
        last.split_whitespace().nth(1) == Some("1"),
        "DATA column of the new row: {last}"
    );
}
