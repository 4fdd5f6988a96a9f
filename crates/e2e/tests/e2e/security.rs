//! The security scenario (issue 15) on the suite's cluster: nobody without credentials gets
//! past what `system:public-info-viewer` allows; each component's identity is allowed its role
//! and no more; a pod reaches the apiserver with its mounted ServiceAccount token (busybox
//! `wget --header` in the pod, and the official Python client's in-cluster loader with that
//! pod's files), allowed exactly what a RoleBinding gives it; a token bound to a pod dies with
//! the pod; the Node authorizer keeps a kubelet to its pods' secrets; the kubelet API refuses
//! the unauthenticated and the unauthorized; PodSecurity refuses a privileged pod in a
//! restricted namespace.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use e2e::{run, wait_for, Cluster, Run};

const NS: &str = "sec";
const TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// kubectl as someone else: `kubeconfig` (a component's), or the cluster's address and CA with
/// `token`.
fn kubectl_as(cluster: &Cluster, who: &Who, args: &[&str]) -> Run {
    let kubectl = testkit::kubectl().expect("upstream kubectl (scripts/fetch-kubectl.sh)");
    let mut cmd = std::process::Command::new(kubectl);
    match who {
        Who::Kubeconfig(path) => {
            // The nodes' kubeconfigs name the apiserver's address on the lab bridge: use them
            // from a node's namespace (that address means nothing, or elsewhere, outside it).
            let text = std::fs::read_to_string(path).expect("a kubeconfig");
            if !text.contains("server: https://127.0.0.1:") {
                cmd = std::process::Command::new("ip");
                cmd.args(["netns", "exec", &cluster.node_netns(0)])
                    .arg(testkit::kubectl().expect("kubectl"));
            }
            cmd.arg("--kubeconfig").arg(path);
        }
        Who::Token(t) => {
            // A whole kubeconfig (kubectl asks for a user name when only --server is given).
            let user = format!("{{token: {t}}}");
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let path = cluster.state_dir().join(format!("as-{n}.kubeconfig"));
            let text = format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: u\n  user: {user}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n",
                server_url(cluster),
                cluster.state_dir().join("pki/ca.crt").display(),
            );
            std::fs::write(&path, text).unwrap();
            cmd.arg("--kubeconfig").arg(&path);
        }
    }
    cmd.args(args);
    run(cmd, None, Duration::from_secs(60))
}

enum Who {
    Kubeconfig(PathBuf),
    Token(String),
}

/// GET `path` from the apiserver without credentials (curl: kubectl asks for a user name).
fn anonymous(cluster: &Cluster, path: &str) -> Run {
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-sS", "--cacert"])
        .arg(cluster.state_dir().join("pki/ca.crt"))
        .arg(format!("{}{path}", server_url(cluster)));
    run(cmd, None, Duration::from_secs(30))
}

fn server_url(cluster: &Cluster) -> String {
    let text = std::fs::read_to_string(cluster.state_dir().join("controller-manager.kubeconfig"))
        .expect("the controller-manager's kubeconfig");
    text.lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .expect("a server line")
        .to_string()
}

fn kubectl_ok(cluster: &Cluster, args: &[&str]) -> String {
    cluster
        .kubectl(args)
        .ok(&format!("kubectl {}", args.join(" ")))
}

/// `kubectl auth can-i` as `who`: its exit code says yes (0) or no (1).
fn can_i(cluster: &Cluster, who: &Who, args: &[&str]) -> bool {
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    let r = kubectl_as(cluster, who, &all);
    match r.stdout.trim() {
        "yes" => {
            assert!(r.success, "{r}");
            true
        }
        // "no", or "no - <the authorizer's reason>"
        no if no == "no" || no.starts_with("no - ") => false,
        _ => panic!("kubectl auth can-i {args:?}: {r}"),
    }
}

fn pod_ready(cluster: &Cluster, name: &str) {
    wait_for(
        &format!("pod {name} running"),
        Duration::from_secs(90),
        || {
            let r = cluster.kubectl(&[
                "get",
                "pod",
                name,
                "-n",
                NS,
                "-o",
                "jsonpath={.status.phase}",
            ]);
            if r.stdout.trim() == "Running" {
                Ok(())
            } else {
                Err(r.to_string())
            }
        },
    );
}

fn pod_yaml(name: &str, node: &str, secret: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {NS}\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 0\n  containers:\n  - name: c\n    image: busybox:latest\n    imagePullPolicy: Never\n    command: [sleep, '3600']\n    volumeMounts:\n    - {{name: s, mountPath: /s}}\n  volumes:\n  - name: s\n    secret: {{secretName: {secret}}}\n"
    )
}

/// In pod `pod`: GET `path` from the apiserver with the pod's own token (busybox wget cannot be
/// given a CA, so it does not check the certificate; the Python client below does).
fn wget_in_pod(cluster: &Cluster, pod: &str, path: &str) -> Run {
    let script = format!(
        "timeout 20 wget -q -O - --no-check-certificate --header \"Authorization: Bearer $(cat {TOKEN})\" https://kubernetes.default.svc{path} 2>&1"
    );
    cluster.kubectl(&["exec", "-n", NS, pod, "--", "sh", "-c", &script])
}

pub fn the_gate_holds(cluster: &Cluster) {
    let (n0, n1) = (cluster.node_name(0), cluster.node_name(1));
    let state = cluster.state_dir();
    kubectl_ok(cluster, &["create", "namespace", NS]);
    for s in ["s0", "s1"] {
        kubectl_ok(
            cluster,
            &[
                "create",
                "secret",
                "generic",
                s,
                "-n",
                NS,
                "--from-literal=k=v",
            ],
        );
    }
    // The ServiceAccount controller gives the namespace its default ServiceAccount.
    wait_for(
        "the default ServiceAccount",
        Duration::from_secs(30),
        || {
            let r = cluster.kubectl(&["get", "sa", "default", "-n", NS]);
            r.success.then_some(()).ok_or_else(|| r.to_string())
        },
    );
    for (pod, node, secret) in [("p0", &n0, "s0"), ("p1", &n1, "s1")] {
        let yaml = pod_yaml(pod, node, secret);
        cluster
            .kubectl_input(&["apply", "-f", "-"], Some(&yaml))
            .ok("create a pod");
    }
    pod_ready(cluster, "p0");
    pod_ready(cluster, "p1");

    // Anonymous: public info only, upstream's refusal for the rest; a bad token is a 401.
    let r = anonymous(cluster, "/version");
    assert!(r.stdout.contains("\"gitVersion\""), "{r}");
    let r = anonymous(cluster, &format!("/api/v1/namespaces/{NS}/pods"));
    assert!(
        r.stdout.contains(&format!("pods is forbidden: User \\\"system:anonymous\\\" cannot list resource \\\"pods\\\" in API group \\\"\\\" in the namespace \\\"{NS}\\\"")),
        "{r}"
    );
    let r = kubectl_as(cluster, &Who::Token("not-a-token".into()), &["get", "pods"]);
    assert!(!r.success && r.stderr.contains("Unauthorized"), "{r}");

    // Each component is allowed its role and no more.
    let cm = Who::Kubeconfig(state.join("controller-manager.kubeconfig"));
    let sched = Who::Kubeconfig(state.join("scheduler.kubeconfig"));
    let proxy = Who::Kubeconfig(state.join("node.kubeconfig"));
    let kubelet =
        |n: &str| Who::Kubeconfig(state.join("pki-nodes").join(n).join("kubelet.kubeconfig"));
    let (k0, k1) = (kubelet(&n0), kubelet(&n1));
    for (who, name, args, want) in [
        (
            &sched,
            "scheduler",
            &["create", "pods", "--subresource=binding", "-n", NS][..],
            true,
        ),
        (
            &sched,
            "scheduler",
            &["get", "secrets", "-n", NS][..],
            false,
        ),
        (
            &proxy,
            "proxy",
            &["list", "endpointslices.discovery.k8s.io"][..],
            true,
        ),
        (&proxy, "proxy", &["create", "pods", "-n", NS][..], false),
        (
            &cm,
            "controller-manager",
            &["create", "pods", "-n", NS][..],
            true,
        ),
        (
            &cm,
            "controller-manager",
            &["create", "clusterrolebindings"][..],
            false,
        ),
        (&k0, "kubelet", &["get", &format!("node/{n0}")][..], true),
        (&k0, "kubelet", &["get", &format!("node/{n1}")][..], false),
        (&k0, "kubelet", &["list", "secrets", "-n", NS][..], false),
        (&k0, "kubelet", &["delete", "nodes"][..], false),
    ] {
        assert_eq!(can_i(cluster, who, args), want, "{name} can-i {args:?}");
    }

    // The Node authorizer: a kubelet reads the secrets of its own pods only.
    kubectl_as(cluster, &k0, &["get", "secret", "s0", "-n", NS]).ok("kubelet n0 reads s0");
    let r = kubectl_as(cluster, &k1, &["get", "secret", "s0", "-n", NS]);
    assert!(
        r.stderr.contains(&format!("secrets \"s0\" is forbidden: User \"system:node:{n1}\" cannot get resource \"secrets\" in API group \"\" in the namespace \"{NS}\": no relationship found between node '{n1}' and this object")),
        "{r}"
    );
    // NodeRestriction: a kubelet may not label another node.
    let r = kubectl_as(cluster, &k0, &["label", "node", &n1, "x=y"]);
    assert!(!r.success && r.stderr.contains("forbidden"), "{r}");

    // From inside the pod, with its mounted token: refused until a RoleBinding allows it.
    let r = wget_in_pod(cluster, "p0", &format!("/api/v1/namespaces/{NS}/pods"));
    assert!(r.stdout.contains("403 Forbidden") && !r.success, "{r}");
    kubectl_ok(
        cluster,
        &[
            "create",
            "rolebinding",
            "sa-view",
            "-n",
            NS,
            "--clusterrole",
            "view",
            "--serviceaccount",
            &format!("{NS}:default"),
        ],
    );
    wait_for(
        "the pod's token to list pods",
        Duration::from_secs(30),
        || {
            let r = wget_in_pod(cluster, "p0", &format!("/api/v1/namespaces/{NS}/pods"));
            (r.success && r.stdout.contains("\"kind\":\"PodList\""))
                .then_some(())
                .ok_or_else(|| r.to_string())
        },
    );
    let r = wget_in_pod(cluster, "p0", "/api/v1/namespaces/kube-system/secrets");
    assert!(r.stdout.contains("403 Forbidden"), "{r}");

    // The official Python client's in-cluster loader with the pod's files, from the pod's node.
    let token = kubectl_ok(cluster, &["exec", "-n", NS, "p0", "--", "cat", TOKEN]);
    python_in_cluster(cluster, &token);

    // A token bound to a pod works while the pod exists, and not after.
    let bound = kubectl_ok(
        cluster,
        &[
            "create",
            "token",
            "default",
            "-n",
            NS,
            "--bound-object-kind",
            "Pod",
            "--bound-object-name",
            "p1",
            "--duration",
            "10m",
        ],
    );
    let bound = Who::Token(bound.trim().to_string());
    kubectl_as(cluster, &bound, &["get", "pods", "-n", NS]).ok("the bound token lists pods");
    kubectl_ok(
        cluster,
        &[
            "delete",
            "pod",
            "p1",
            "-n",
            NS,
            "--wait=true",
            "--timeout=60s",
        ],
    );
    wait_for(
        "the bound token to be revoked",
        Duration::from_secs(30),
        || {
            let r = kubectl_as(cluster, &bound, &["get", "pods", "-n", NS]);
            (!r.success && r.stderr.contains("Unauthorized"))
                .then_some(())
                .ok_or_else(|| r.to_string())
        },
    );

    // The kubelet API: no credentials 401, a ServiceAccount's token 403, the apiserver's proxy
    // (kubectl logs) works.
    let node_ip = kubectl_ok(
        cluster,
        &[
            "get",
            "node",
            &n0,
            "-o",
            "jsonpath={.status.addresses[?(@.type==\"InternalIP\")].address}",
        ],
    );
    let url = format!("https://{}:10250/pods", node_ip.trim());
    let r = cluster.in_netns(
        &cluster.bridge_netns(),
        "busybox",
        &["wget", "-q", "-O", "-", "--no-check-certificate", &url],
    );
    assert!(!r.success && r.stderr.contains("401"), "{r}");
    let header = format!("Authorization: Bearer {}", token.trim());
    let r = cluster.in_netns(
        &cluster.bridge_netns(),
        "busybox",
        &[
            "wget",
            "-q",
            "-O",
            "-",
            "--no-check-certificate",
            "--header",
            &header,
            &url,
        ],
    );
    assert!(!r.success && r.stderr.contains("403"), "{r}");
    cluster
        .kubectl(&["logs", "-n", NS, "p0"])
        .ok("kubectl logs through the apiserver");

    // PodSecurity: a restricted namespace refuses a privileged pod with upstream's message.
    let r = cluster.kubectl(&[
        "label",
        "namespace",
        NS,
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
    assert!(r.success, "{r}");
    assert!(
        r.stderr
            .contains("violate the new PodSecurity enforce level \"restricted:latest\""),
        "{r}"
    );
    let r = cluster.kubectl_input(
        &["apply", "-f", "-"],
        Some(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: priv\n  namespace: {NS}\nspec:\n  containers:\n  - name: c\n    image: busybox:latest\n    securityContext: {{privileged: true}}\n"
        )),
    );
    assert!(!r.success, "{r}");
    assert!(
        r.stderr
            .contains("violates PodSecurity \"restricted:latest\": privileged"),
        "{r}"
    );

    kubectl_ok(cluster, &["delete", "namespace", NS, "--wait=false"]);
}

/// `kubernetes.config.load_incluster_config` with the pod's token and CA, from the pod's node
/// (the Service address is reachable there), listing the namespace's pods.
fn python_in_cluster(cluster: &Cluster, token: &str) {
    let Some(py) = testkit::python::pinned() else {
        return;
    };
    let dir = cluster.state_dir().join("incluster");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("token"), token.trim()).unwrap();
    let ca = kubectl_ok(
        cluster,
        &[
            "get",
            "configmap",
            "kube-root-ca.crt",
            "-n",
            NS,
            "-o",
            "jsonpath={.data.ca\\.crt}",
        ],
    );
    std::fs::write(dir.join("ca.crt"), ca).unwrap();
    let script = format!(
        "import os\n\
         from kubernetes import client, config\n\
         from kubernetes.config.incluster_config import InClusterConfigLoader\n\
         os.environ['KUBERNETES_SERVICE_HOST'] = '10.96.0.1'\n\
         os.environ['KUBERNETES_SERVICE_PORT'] = '443'\n\
         InClusterConfigLoader(token_filename='{t}', cert_filename='{c}').load_and_set()\n\
         pods = client.CoreV1Api().list_namespaced_pod('{NS}')\n\
         print(sorted(p.metadata.name for p in pods.items))\n",
        t = dir.join("token").display(),
        c = dir.join("ca.crt").display(),
    );
    let r = cluster.in_netns(
        &cluster.node_netns(0),
        py.python.to_str().unwrap(),
        &["-c", &script],
    );
    assert!(
        r.success && r.stdout.contains("'p0'"),
        "Python in-cluster: {r}"
    );
}
