//! Upstream kubectl v1.33 against the real mini-apiserver binary: every verb the API server
//! issue lists, with kubectl's own output and exit codes, on both store backends.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::ServerProcess;
use testkit::etcd::EtcdServer;

struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Kubectl {
    fn run_with(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Out {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.kubeconfig.parent().unwrap())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("run kubectl");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        let out = child.wait_with_output().unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn run(&self, args: &[&str]) -> Out {
        self.run_with(args, None, &[])
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(
            o.code, 0,
            "kubectl {args:?} failed: {}{}",
            o.stdout, o.stderr
        );
        o.stdout
    }
}

const MANIFEST: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  greeting: hello
---
apiVersion: apps/v1
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
        image: demo-web:v1
        ports:
        - containerPort: 8080
          name: http
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: NodePort
  selector:
    app: web
  ports:
  - port: 80
    targetPort: http
"#;

fn setup(store_args: Vec<String>, dir: &Path) -> Option<(ServerProcess, Kubectl)> {
    let bin = testkit::kubectl()?;
    let port = testkit::free_port();
    let server = ServerProcess::spawn(&store_args, port, dir.join("apiserver.log"));
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        apiserver::kubeconfig::render(&server.url, "minicluster"),
    )
    .unwrap();
    Some((server, Kubectl { bin, kubeconfig }))
}

#[test]
fn kubectl_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("--store=embedded:{}", dir.path().join("state.db").display());
    if let Some((_server, k)) = setup(vec![store], dir.path()) {
        kubectl_session(&k, dir.path());
    }
}

#[test]
fn kubectl_etcd() {
    let dir = tempfile::tempdir().unwrap();
    let Some(etcd) = EtcdServer::start() else {
        return;
    };
    let args = vec![format!("--etcd-servers={}", etcd.endpoint())];
    if let Some((_server, k)) = setup(args, dir.path()) {
        kubectl_session(&k, dir.path());
    }
}

/// `kubectl create role|clusterrole|rolebinding|clusterrolebinding` (protobuf bodies), `get`
/// in upstream's columns, `describe`, and a refused roleRef in kubectl's error form.
fn rbac_session(k: &Kubectl) {
    assert_eq!(
        k.ok(&[
            "create",
            "role",
            "pod-reader",
            "--verb=get,list",
            "--resource=pods"
        ]),
        "role.rbac.authorization.k8s.io/pod-reader created\n"
    );
    assert_eq!(
        k.ok(&[
            "create",
            "clusterrole",
            "ns-reader",
            "--verb=get",
            "--resource=namespaces"
        ]),
        "clusterrole.rbac.authorization.k8s.io/ns-reader created\n"
    );
    k.ok(&["create", "clusterrole", "agg", "--aggregation-rule=team=a"]);
    k.ok(&[
        "create",
        "rolebinding",
        "readers",
        "--role=pod-reader",
        "--user=jane",
        "--group=devs",
        "--serviceaccount=default:builder",
    ]);
    k.ok(&[
        "create",
        "clusterrolebinding",
        "ns-readers",
        "--clusterrole=ns-reader",
        "--user=joe",
    ]);
    let roles = k.ok(&["get", "clusterroles"]);
    let mut lines = roles.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["NAME", "CREATED", "AT"]
    );
    let names: Vec<&str> = lines.filter_map(|l| l.split_whitespace().next()).collect();
    for name in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:node",
        "ns-reader",
        "agg",
    ] {
        assert!(names.contains(&name), "{name} in {roles}");
    }
    let wide = k.ok(&["get", "rolebindings", "-o", "wide"]);
    let rows: Vec<Vec<&str>> = wide
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    );
    assert_eq!(rows[1][..2], ["readers", "Role/pod-reader"]);
    assert_eq!(rows[1][3..], ["jane", "devs", "default/builder"]);
    let described = k.ok(&["describe", "role", "pod-reader"]);
    assert!(
        described.contains("pods       []                 []              [get list]"),
        "{described}"
    );
    let described = k.ok(&["describe", "clusterrolebinding", "ns-readers"]);
    assert!(
        described.contains("Kind:  ClusterRole") && described.contains("Name:  ns-reader"),
        "{described}"
    );
    let bad = k.run(&["create", "rolebinding", "bad", "--role=a/b", "--user=x"]);
    assert_eq!(bad.code, 1);
    assert_eq!(
        bad.stderr,
        "error: failed to create rolebinding: RoleBinding.rbac.authorization.k8s.io \"bad\" is invalid: roleRef.name: Invalid value: \"a/b\": may not contain '/'\n"
    );
}

fn kubectl_session(k: &Kubectl, dir: &Path) {
    rbac_session(k);

    // apply of a multi-document manifest, then re-apply after an edit.
    let manifest = dir.join("app.yaml");
    std::fs::write(&manifest, MANIFEST).unwrap();
    let m = manifest.to_str().unwrap();
    let out = k.ok(&["apply", "-f", m]);
    assert_eq!(
        out,
        "configmap/cfg created\ndeployment.apps/web created\nservice/web created\n"
    );
    let again = k.ok(&["apply", "-f", m]);
    assert_eq!(
        again,
        "configmap/cfg unchanged\ndeployment.apps/web unchanged\nservice/web unchanged\n"
    );
    std::fs::write(&manifest, MANIFEST.replace("replicas: 2", "replicas: 3")).unwrap();
    let edited = k.ok(&["apply", "-f", m]);
    assert_eq!(
        edited,
        "configmap/cfg unchanged\ndeployment.apps/web configured\nservice/web unchanged\n"
    );
    assert_eq!(
        k.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "3"
    );
    let annotations = k.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.metadata.annotations}",
    ]);
    assert!(
        annotations.contains("kubectl.kubernetes.io/last-applied-configuration"),
        "{annotations}"
    );

    // get of every type in table form, and the other output formats.
    let deploy = k.ok(&["get", "deployments"]);
    let header: Vec<&str> = deploy.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        vec!["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert!(deploy.lines().nth(1).unwrap().starts_with("web"));
    let svc = k.ok(&["get", "svc", "web"]);
    assert!(svc.starts_with("NAME"), "{svc}");
    assert!(svc.contains("NodePort") && svc.contains("80:30"), "{svc}");
    for ty in [
        "pods",
        "nodes",
        "namespaces",
        "services",
        "endpoints",
        "configmaps",
        "secrets",
        "events",
        "serviceaccounts",
        "pvc",
        "pv",
        "deployments",
        "replicasets",
        "statefulsets",
        "daemonsets",
        "controllerrevisions",
        "jobs",
        "leases",
        "endpointslices",
        "hpa",
        "pc",
        "events.events.k8s.io",
    ] {
        let o = k.run(&["get", ty, "-A"]);
        assert_eq!(o.code, 0, "kubectl get {ty}: {}", o.stderr);
    }
    let classes = k.ok(&["get", "priorityclasses"]);
    let mut lines = classes.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"]
    );
    assert!(
        lines.any(|l| l.starts_with("system-node-critical")
            && l.split_whitespace().nth(1) == Some("2000001000")
            && l.ends_with("PreemptLowerPriority")),
        "{classes}"
    );
    let wide = k.ok(&["get", "deploy", "web", "-o", "wide"]);
    assert!(wide.contains("SELECTOR") && wide.contains("demo-web:v1") && wide.contains("app=web"));
    let yaml = k.ok(&["get", "cm", "cfg", "-o", "yaml"]);
    assert!(
        yaml.contains("greeting: hello") && yaml.contains("kind: ConfigMap"),
        "{yaml}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&k.ok(&["get", "deploy", "web", "-o", "json"])).unwrap();
    assert_eq!(json["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    assert_eq!(
        k.ok(&["get", "cm", "-o", "name"])
            .lines()
            .filter(|l| *l == "configmap/cfg")
            .count(),
        1
    );
    let labels = k.ok(&["get", "deploy", "--show-labels"]);
    assert!(labels.contains("app=web"), "{labels}");

    // get -w sees a later change.
    let mut watch = Command::new(&k.bin)
        .args(["get", "configmaps", "-w", "--output-watch-events"])
        .env("KUBECONFIG", &k.kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The initial listing first, then the change.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen_initial = false;
    let mut seen_change = false;
    let mut created = false;
    while Instant::now() < deadline && !seen_change {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if line.contains("cfg") {
                seen_initial = true;
            }
            if line.contains("ADDED") && line.contains("watched") {
                seen_change = true;
            }
        }
        if seen_initial && !created {
            k.ok(&["create", "configmap", "watched", "--from-literal=a=b"]);
            created = true;
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(
        seen_initial && seen_change,
        "kubectl get -w did not see the new configmap"
    );

    // describe, scale, patch (three types), label, annotate.
    let describe = k.ok(&["describe", "deployment", "web"]);
    assert!(
        describe.contains("Name:                   web"),
        "{describe}"
    );
    assert!(describe.contains("RollingUpdateStrategy:  25% max unavailable, 25% max surge"));
    assert_eq!(
        k.ok(&["scale", "deployment", "web", "--replicas=4"]),
        "deployment.apps/web scaled\n"
    );
    assert_eq!(
        k.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "4"
    );
    assert_eq!(
        k.ok(&[
            "patch",
            "deployment",
            "web",
            "--type=merge",
            "-p",
            r#"{"spec":{"minReadySeconds":5}}"#
        ]),
        "deployment.apps/web patched\n"
    );
    assert_eq!(
        k.ok(&[
            "patch",
            "deployment",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/replicas","value":2}]"#
        ]),
        "deployment.apps/web patched\n"
    );
    assert_eq!(
        k.ok(&["patch", "deployment", "web", "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"demo-web:v2"}]}}}}"#]),
        "deployment.apps/web patched\n"
    );
    assert_eq!(
        k.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image} {.spec.replicas} {.spec.minReadySeconds}"]),
        "demo-web:v2 2 5"
    );
    let unchanged = k.ok(&[
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"minReadySeconds":5}}"#,
    ]);
    assert_eq!(unchanged, "deployment.apps/web patched (no change)\n");
    assert_eq!(
        k.ok(&["label", "deployment", "web", "tier=frontend"]),
        "deployment.apps/web labeled\n"
    );
    assert_eq!(
        k.ok(&["annotate", "deployment", "web", "owner=team-a"]),
        "deployment.apps/web annotated\n"
    );
    let o = k.run(&["label", "deployment", "web", "tier=backend"]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("already has a value (frontend)"),
        "{}",
        o.stderr
    );
    assert_eq!(
        k.ok(&["get", "deploy", "-l", "tier=frontend", "-o", "name"]),
        "deployment.apps/web\n"
    );

    // edit through an EDITOR script.
    let editor = dir.join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/greeting: hello/greeting: edited/' \"$1\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let e = k.run_with(
        &["edit", "configmap", "cfg"],
        None,
        &[("EDITOR", editor.to_str().unwrap())],
    );
    assert_eq!(e.code, 0, "{}", e.stderr);
    assert_eq!(e.stdout, "configmap/cfg edited\n");
    assert_eq!(
        k.ok(&["get", "cm", "cfg", "-o", "jsonpath={.data.greeting}"]),
        "edited"
    );

    // rollout history lists the revisions of the deployment's ReplicaSets.
    let uid = k.ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.uid}"]);
    let rs = format!(
        r#"{{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{{"name":"web-abc","labels":{{"app":"web"}},
        "annotations":{{"deployment.kubernetes.io/revision":"1"}},
        "ownerReferences":[{{"apiVersion":"apps/v1","kind":"Deployment","name":"web","uid":"{uid}","controller":true}}]}},
        "spec":{{"replicas":0,"selector":{{"matchLabels":{{"app":"web"}}}},"template":{{"metadata":{{"labels":{{"app":"web"}}}},
        "spec":{{"containers":[{{"name":"web","image":"demo-web:v1"}}]}}}}}}}}"#
    );
    let o = k.run_with(&["create", "-f", "-"], Some(&rs), &[]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let history = k.ok(&["rollout", "history", "deployment/web"]);
    assert!(
        history.contains("REVISION") && history.lines().any(|l| l.trim_start().starts_with('1')),
        "{history}"
    );

    // create namespace, api-resources, api-versions, explain, get --raw.
    assert_eq!(
        k.ok(&["create", "namespace", "team-a"]),
        "namespace/team-a created\n"
    );
    let o = k.run(&["create", "namespace", "team-a"]);
    assert_eq!(o.code, 1);
    assert_eq!(
        o.stderr.trim(),
        "Error from server (AlreadyExists): namespaces \"team-a\" already exists"
    );
    let resources = k.ok(&["api-resources"]);
    assert!(resources
        .lines()
        .any(|l| l.starts_with("deployments") && l.contains("deploy") && l.contains("apps/v1")));
    let versions = k.ok(&["api-versions"]);
    for v in [
        "v1",
        "apps/v1",
        "batch/v1",
        "coordination.k8s.io/v1",
        "discovery.k8s.io/v1",
    ] {
        assert!(versions.lines().any(|l| l == v), "{v} missing: {versions}");
    }
    let explain = k.ok(&["explain", "pod.spec.containers"]);
    assert!(
        explain.contains("FIELD: containers <[]Container>"),
        "{explain}"
    );
    assert!(
        explain.contains("image\t<string>") || explain.contains("image"),
        "{explain}"
    );
    assert_eq!(k.ok(&["get", "--raw", "/healthz"]), "ok");

    // Errors read as on Kubernetes.
    let o = k.run(&["get", "configmap", "nope"]);
    assert_eq!(o.code, 1);
    assert_eq!(
        o.stderr.trim(),
        "Error from server (NotFound): configmaps \"nope\" not found"
    );
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n",
    )
    .unwrap();
    let o = k.run(&["apply", "-f", bad.to_str().unwrap()]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains(
            "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\""
        ),
        "{}",
        o.stderr
    );
    let unknown = dir.join("unknown.yaml");
    std::fs::write(
        &unknown,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: u\nspec:\n  x: 1\n",
    )
    .unwrap();
    let o = k.run(&["apply", "-f", unknown.to_str().unwrap()]);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(o.stderr.contains("unknown field \"spec\""), "{}", o.stderr);

    // `kubectl create service` sends a protobuf body (client-go's typed client): the Service
    // is stored exactly as the same service sent as JSON.
    k.ok(&[
        "create",
        "service",
        "nodeport",
        "pb",
        "--tcp=80:http",
        "--node-port=30011",
    ]);
    let pb: serde_json::Value =
        serde_json::from_str(&k.ok(&["get", "service", "pb", "-o", "json"])).unwrap();
    let spec = &pb["spec"];
    assert_eq!(spec["type"], "NodePort", "{pb}");
    assert_eq!(spec["ports"][0]["targetPort"], "http", "{pb}");
    assert_eq!(spec["ports"][0]["nodePort"], 30011, "{pb}");
    assert_eq!(spec["selector"]["app"], "pb", "{pb}");
    assert_eq!(spec["externalTrafficPolicy"], "Cluster", "{pb}");
    assert!(
        spec.get("loadBalancerIP").is_none() && spec.get("externalName").is_none(),
        "{pb}"
    );
    k.ok(&["delete", "service", "pb"]);

    // delete by name, -f and -l.
    assert_eq!(
        k.ok(&["delete", "configmap", "watched"]),
        "configmap \"watched\" deleted\n"
    );
    k.ok(&["create", "configmap", "l1", "--from-literal=a=b"]);
    k.ok(&["label", "configmap", "l1", "sweep=yes"]);
    assert_eq!(
        k.ok(&["delete", "configmap", "-l", "sweep=yes"]),
        "configmap \"l1\" deleted\n"
    );
    let del = k.ok(&["delete", "-f", m]);
    assert_eq!(
        del,
        "configmap \"cfg\" deleted\ndeployment.apps \"web\" deleted\nservice \"web\" deleted\n"
    );
    let o = k.run(&["get", "deploy", "web"]);
    assert_eq!(o.code, 1);
}
