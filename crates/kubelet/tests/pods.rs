//! Root integration tests of the kubelet on a lab cluster: the seed flow (two containers on
//! localhost, port-forward), probes, restart policies and phases, logs and exec through the apiserver,
//! ConfigMaps/Secrets/emptyDir, graceful deletion, adoption after a kubelet SIGKILL, pod-to-pod
//! traffic across two nodes, startup probes, preStop hooks and hostNetwork pods; after each,
//! nothing is left behind.

mod common;

use std::time::Duration;

use common::{apply, container, err, in_a_terminal, phase, ready, text, Cluster, T};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_flow_two_containers_share_localhost() {
    if !common::prerequisites("seed_flow_two_containers_share_localhost") {
        return;
    }
    let c = Cluster::start(&format!("ks{}", std::process::id() % 10000), 1).await;
    let manifest = r#"
apiVersion: v1
kind: Pod
metadata:
  name: seed
spec:
  containers:
  - name: web
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 8080 -h /www"]
  - name: client
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "while true; do wget -q -O - http://127.0.0.1:8080/ 2>&1; sleep 1; done"]
"#;
    let path = c.tmp.path().join("seed.yaml");
    std::fs::write(&path, manifest).unwrap();
    let Some(o) = c.kubectl(&["apply", "-f", path.to_str().unwrap()]) else {
        return;
    };
    assert!(o.status.success(), "kubectl apply: {}", err(&o));
    let p = c
        .wait_pod(
            "default",
            "seed",
            T,
            "Running with both containers ready",
            |p| phase(p) == "Running" && ready(p),
        )
        .await;
    let ip = p
        .status
        .as_ref()
        .unwrap()
        .pod_ip
        .clone()
        .unwrap_or_default();
    assert!(
        ip.starts_with("10.244."),
        "pod IP {ip} from the node's podCIDR"
    );
    assert_eq!(
        p.status.as_ref().unwrap().host_ip.as_deref(),
        Some("192.168.77.10")
    );
    // The client reaches the web container over the shared localhost.
    c.wait_for(T, "the client's logs to show the page", || async {
        c.kubectl(&["logs", "seed", "-c", "client"])
            .is_some_and(|o| text(&o).contains("hello-from-web"))
    })
    .await;
    let o = c.kubectl(&["get", "pod", "seed", "--no-headers"]).unwrap();
    let cols: Vec<String> = text(&o).split_whitespace().map(str::to_string).collect();
    assert_eq!(cols[..4], ["seed", "2/2", "Running", "0"], "{}", text(&o));
    // kubectl port-forward (SPDY tunnelled in a WebSocket through the apiserver to the
    // kubelet): two connections through one session reach the web container's port.
    let mut forward = PortForward::start(&c, "seed", "8080");
    for _ in 0..2 {
        let page = forward.get("/");
        if page.is_empty() {
            panic!("nothing through port-forward: {}", forward.stop());
        }
        assert!(
            page.starts_with("HTTP/1.0 200") || page.starts_with("HTTP/1.1 200"),
            "{page}"
        );
        assert!(page.ends_with("hello-from-web\n"), "{page}");
    }
    drop(forward);
    // The official Python client's portforward (the WebSocket channel protocol, ports in the
    // query) reaches the same port.
    if let Some(page) = python_port_forward(&c, "seed", 8080) {
        assert!(page.ends_with("hello-from-web\n"), "{page}");
    }
    // A port nothing listens on: the connection closes and kubectl reports the kubelet's error.
    let mut forward = PortForward::start(&c, "seed", "9");
    let page = forward.get("/");
    assert!(page.is_empty(), "{page}");
    let stderr = forward.stop();
    assert!(
        stderr.contains("error forwarding port 9 to pod seed"),
        "{stderr}"
    );
    // The pod's cgroups sit in the node's kubepods tree by QoS class (BestEffort here).
    let id = common::container(&p, "web")
        .and_then(|s| s.container_id.clone())
        .unwrap_or_default()
        .trim_start_matches("minirun://")
        .to_string();
    let inspect = c.minirun(0, &["inspect", &id]);
    let want = format!("{}/kubepods/besteffort/", c.nodes[0].cgroup_root);
    assert!(
        String::from_utf8_lossy(&inspect.stdout).contains(&want),
        "container cgroup under {want}: {}",
        String::from_utf8_lossy(&inspect.stdout)
    );
    let node = c.client.clone();
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(node);
    let n = nodes.get(&c.nodes[0].name).await.unwrap();
    let ready_cond = n
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.clone());
    assert_eq!(ready_cond.as_deref(), Some("True"));
    // Node allocatable: capacity minus --system-reserved (cpu=100m,memory=100Mi), enforced on
    // the kubepods cgroup and by admission.
    let status = n.status.as_ref().unwrap();
    let quantity = |m: &Option<
        std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >,
                    k: &str| {
        api::validation::parse_quantity(&m.as_ref().unwrap()[k].0).unwrap()
    };
    let cap_cpu = quantity(&status.capacity, "cpu");
    let alloc_cpu = quantity(&status.allocatable, "cpu");
    assert!(
        (cap_cpu - alloc_cpu - 0.1).abs() < 1e-9,
        "{cap_cpu} vs {alloc_cpu}"
    );
    let alloc_mem = quantity(&status.allocatable, "memory") as u64;
    assert_eq!(
        quantity(&status.capacity, "memory") as u64 - alloc_mem,
        100 * 1024 * 1024
    );
    let root = &c.nodes[0].cgroup_root;
    let limit = [
        format!("/sys/fs/cgroup/{root}/kubepods/memory.max"),
        format!("/sys/fs/cgroup/memory/{root}/kubepods/memory.limit_in_bytes"),
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .and_then(|v| v.trim().parse::<u64>().ok())
    .expect("the kubepods memory limit");
    // the kernel rounds the limit down to whole pages
    assert!(
        alloc_mem - limit < 4096,
        "kubepods limit {limit}, allocatable {alloc_mem}"
    );
    let node_name = c.nodes[0].name.clone();
    let too_big = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: too-big}}
spec:
  nodeName: {node_name}
  containers:
  - {{name: c, image: "busybox:latest", imagePullPolicy: IfNotPresent, command: ["true"],
     resources: {{requests: {{cpu: "1000"}}}}}}
"#
    );
    assert!(apply(&c, "too-big", &too_big));
    let p = c
        .wait_pod("default", "too-big", T, "rejected by admission", |p| {
            phase(p) == "Failed"
        })
        .await;
    let st = p.status.unwrap();
    assert_eq!(st.reason.as_deref(), Some("OutOfcpu"));
    assert!(
        st.message.as_deref().is_some_and(|m| m.starts_with(
            "Pod was rejected: Node didn't have enough resource: cpu, requested: 1000000, used: 0, capacity: "
        )),
        "{:?}",
        st.message
    );
    let o = c
        .kubectl(&["get", "pod", "too-big", "--no-headers"])
        .unwrap();
    assert_eq!(
        text(&o).split_whitespace().nth(2),
        Some("OutOfcpu"),
        "{}",
        text(&o)
    );
    let left = c.shutdown();
    assert!(left.is_empty(), "left behind: {left:#?}");
}

/// An HTTP/1.0 GET of / through the Python client's `kubernetes.stream.portforward`: the
/// answer up to its body's first line end (None when the Python client is not installed).
fn python_port_forward(c: &Cluster, pod: &str, port: u16) -> Option<String> {
    let have_client = std::process::Command::new("python3")
        .args(["-c", "import kubernetes"])
        .status()
        .is_ok_and(|s| s.success());
    if !have_client {
        testkit::missing("the Python client", "python3 -m pip install kubernetes");
        return None;
    }
    let script = r#"
import sys, time
from kubernetes import client, config
from kubernetes.stream import portforward
config.load_kube_config(sys.argv[1])
api = client.CoreV1Api()
pf = portforward(api.connect_get_namespaced_pod_portforward, sys.argv[2], "default",
                 ports=sys.argv[3])
s = pf.socket(int(sys.argv[3]))
s.settimeout(20)
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
data = b""
def complete(data):
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False
while not complete(data):
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode())
s.close()
"#;
    let o = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&c.kubeconfig)
        .arg(pod)
        .arg(port.to_string())
        .output()
        .expect("run python3");
    assert!(o.status.success(), "python portforward: {}", err(&o));
    Some(text(&o))
}

/// A running `kubectl port-forward pod/<pod> :<port>` and the local port it listens on.
struct PortForward {
    child: std::process::Child,
    local: u16,
}

impl PortForward {
    fn start(c: &Cluster, pod: &str, port: &str) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(testkit::kubectl().expect("kubectl"))
            .arg("--kubeconfig")
            .arg(&c.kubeconfig)
            .args(["port-forward", &format!("pod/{pod}"), &format!(":{port}")])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run kubectl port-forward");
        let mut line = String::new();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        // kubectl goes on writing "Handling connection for ..." lines: keep reading them
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        // "Forwarding from 127.0.0.1:40123 -> 8080"
        let local = line
            .strip_prefix("Forwarding from 127.0.0.1:")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok());
        let Some(local) = local else {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("port-forward printed {line:?}: {}", err(&out))
        };
        PortForward { child, local }
    }

    /// An HTTP/1.0 GET of `path` through the forwarded port: the whole answer.
    fn get(&mut self, path: &str) -> String {
        use std::io::{Read, Write};
        let mut s = match std::net::TcpStream::connect(("127.0.0.1", self.local)) {
            Ok(s) => s,
            Err(e) => panic!("connect to kubectl port-forward: {e}: {}", self.kill()),
        };
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// Gives kubectl a few seconds to end by itself, then stops it; what it wrote on stderr.
    fn stop(mut self) -> String {
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.kill()
    }

    /// Kills kubectl; what it wrote on stderr.
    fn kill(&mut self) -> String {
        use std::io::Read;
        let _ = self.child.kill();
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        let _ = self.child.wait();
        stderr
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_restart_policies_logs_and_exec() {
    if !common::prerequisites("probes_restart_policies_logs_and_exec") {
        return;
    }
    let c = Cluster::start(&format!("kp{}", std::process::id() % 10000), 1).await;
    let manifests = r#"
apiVersion: v1
kind: Pod
metadata: {name: liveness}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "touch /tmp/ok; echo started; sleep 2; rm /tmp/ok; sleep 1000"]
    livenessProbe:
      exec: {command: ["test", "-f", "/tmp/ok"]}
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Pod
metadata: {name: readiness}
spec:
  containers:
  - name: app
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
    readinessProbe:
      exec: {command: ["test", "-f", "/tmp/ready"]}
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata: {name: done-ok}
spec:
  restartPolicy: Never
  containers:
  - {name: app, image: "busybox:latest", imagePullPolicy: IfNotPresent, command: ["sh", "-c", "echo line1; echo line2; echo line3; exit 0"]}
---
apiVersion: v1
kind: Pod
metadata: {name: done-fail}
spec:
  restartPolicy: Never
  containers:
  - {name: app, image: "busybox:latest", imagePullPolicy: IfNotPresent, command: ["sh", "-c", "echo failing >&2; exit 1"]}
---
apiVersion: v1
kind: Pod
metadata: {name: http-probe}
spec:
  containers:
  - name: web
    image: demo-web:v1
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /ready, port: http}
      periodSeconds: 1
    livenessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 2
---
apiVersion: v1
kind: Pod
metadata: {name: echo}
spec:
  restartPolicy: Never
  securityContext:
    seccompProfile: {type: RuntimeDefault}
  containers:
  - name: app
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    stdin: true
    command: ["sh", "-c", "echo before; while read l; do echo \"got $l\"; echo \"err $l\" >&2; [ \"$l\" = quit ] && exit 0; done"]
---
apiVersion: v1
kind: Pod
metadata: {name: once}
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    stdin: true
    stdinOnce: true
    command: ["sh", "-c", "while read l; do echo \"got $l\"; done; echo eof; sleep 1"]
---
apiVersion: v1
kind: Pod
metadata: {name: tty}
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    stdin: true
    tty: true
    command: ["sh"]
"#;
    if !apply(&c, "lifecycle", manifests) {
        return;
    }
    // restartPolicy Never: exit 0 → Succeeded (Completed), exit 1 → Failed (Error).
    c.wait_pod("default", "done-ok", T, "Succeeded", |p| {
        phase(p) == "Succeeded"
    })
    .await;
    let failed = c
        .wait_pod("default", "done-fail", T, "Failed", |p| {
            phase(p) == "Failed"
        })
        .await;
    let t = container(&failed, "app")
        .and_then(|s| s.state.as_ref())
        .and_then(|s| s.terminated.as_ref())
        .cloned()
        .expect("terminated state");
    assert_eq!((t.exit_code, t.reason.as_deref()), (1, Some("Error")));
    let o = c.kubectl(&["get", "pods", "--no-headers"]).unwrap();
    let table = text(&o);
    let row = |name: &str| -> Vec<String> {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(row("done-ok")[1..3], ["0/1", "Completed"], "{table}");
    assert_eq!(row("done-fail")[1..3], ["0/1", "Error"], "{table}");
    // Logs of a finished pod, through the apiserver and the kubelet.
    let o = c.kubectl(&["logs", "done-ok"]).unwrap();
    assert_eq!(text(&o), "line1\nline2\nline3\n", "{}", err(&o));
    let o = c.kubectl(&["logs", "done-ok", "--tail", "1"]).unwrap();
    assert_eq!(text(&o), "line3\n");
    let o = c.kubectl(&["logs", "done-fail"]).unwrap();
    assert_eq!(text(&o), "failing\n");

    // Liveness: restarts, restartCount grows, back-off shows as CrashLoopBackOff.
    let p = c
        .wait_pod(
            "default",
            "liveness",
            T,
            "CrashLoopBackOff after restarts",
            |p| {
                container(p, "app").is_some_and(|s| {
                    s.restart_count >= 2
                        && s.state
                            .as_ref()
                            .and_then(|st| st.waiting.as_ref())
                            .and_then(|w| w.reason.as_deref())
                            == Some("CrashLoopBackOff")
                })
            },
        )
        .await;
    let last = container(&p, "app")
        .and_then(|s| s.last_state.as_ref())
        .and_then(|s| s.terminated.as_ref())
        .cloned();
    assert!(last.is_some(), "lastState.terminated is set");
    let o = c
        .kubectl(&["get", "pod", "liveness", "--no-headers"])
        .unwrap();
    assert!(text(&o).contains("CrashLoopBackOff"), "{}", text(&o));
    // --previous shows the killed instance's output.
    let o = c.kubectl(&["logs", "liveness", "--previous"]).unwrap();
    assert_eq!(text(&o), "started\n", "{}", err(&o));

    // Readiness flips both ways, driven through kubectl exec.
    let p = c
        .wait_pod("default", "readiness", T, "Running, not ready", |p| {
            phase(p) == "Running" && !ready(p)
        })
        .await;
    assert!(!ready(&p));
    let o = c
        .kubectl(&["exec", "readiness", "--", "touch", "/tmp/ready"])
        .unwrap();
    assert!(o.status.success(), "exec: {}", err(&o));
    c.wait_pod("default", "readiness", T, "Ready", ready).await;
    let o = c
        .kubectl(&["exec", "readiness", "--", "rm", "/tmp/ready"])
        .unwrap();
    assert!(o.status.success(), "exec: {}", err(&o));
    c.wait_pod("default", "readiness", T, "not Ready again", |p| !ready(p))
        .await;
    // Exit codes and stdin through exec.
    let o = c
        .kubectl(&[
            "exec",
            "readiness",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ])
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", err(&o));
    assert_eq!(text(&o), "out\n");
    assert!(err(&o).contains("err"), "{}", err(&o));
    let o = c
        .kubectl_stdin(&["exec", "-i", "readiness", "--", "cat"], "piped through\n")
        .unwrap();
    assert_eq!(text(&o), "piped through\n", "{}", err(&o));
    // attach: the container's own stdin (stdin: true) and its output from now on; it ends
    // when the container exits.
    c.wait_pod("default", "echo", T, "Running", |p| phase(p) == "Running")
        .await;
    // the pod's seccompProfile RuntimeDefault: the runtime's default filter is loaded
    let o = c
        .kubectl(&[
            "exec",
            "echo",
            "--",
            "grep",
            "Seccomp:",
            "/proc/self/status",
        ])
        .unwrap();
    assert_eq!(text(&o), "Seccomp:\t2\n", "{}", err(&o));
    let o = c
        .kubectl_stdin(&["attach", "-i", "echo", "-c", "app"], "hello\nquit\n")
        .unwrap();
    assert!(o.status.success(), "attach: {}", err(&o));
    assert_eq!(text(&o), "got hello\ngot quit\n", "{}", err(&o));
    assert!(err(&o).contains("err hello"), "{}", err(&o));
    c.wait_pod("default", "echo", T, "Succeeded after quit", |p| {
        phase(p) == "Succeeded"
    })
    .await;
    // stdinOnce: the container reads end-of-file when the first attach's stdin ends (kubectl's
    // stdin here), without anything telling it to quit.
    c.wait_pod("default", "once", T, "Running", |p| phase(p) == "Running")
        .await;
    let o = c
        .kubectl_stdin(&["attach", "-i", "once"], "one\ntwo\n")
        .unwrap();
    assert!(o.status.success(), "attach: {}", err(&o));
    assert_eq!(text(&o), "got one\ngot two\neof\n", "{}", err(&o));
    c.wait_pod("default", "once", T, "Succeeded after end-of-file", |p| {
        phase(p) == "Succeeded"
    })
    .await;
    // tty: `kubectl attach -it` from a terminal of 111x33 drives an interactive shell on the
    // container's own pty, whose size kubectl's resize message set.
    c.wait_pod("default", "tty", T, "Running", |p| phase(p) == "Running")
        .await;
    // kubectl exec -it also gets a terminal of the client's size.
    let session = in_a_terminal(
        &c,
        &["exec", "-it", "tty", "--", "sh", "-c", "stty size; tty"],
        b"",
    );
    assert!(
        session.contains("33 111") && session.contains("/dev/pts/"),
        "{session}"
    );
    let session = in_a_terminal(
        &c,
        &["attach", "-it", "tty"],
        b"stty size; tty; echo done-$((6*7)); exit\r",
    );
    assert!(
        session.contains("33 111") && session.contains("/dev/pts/0") && session.contains("done-42"),
        "{session}"
    );
    c.wait_pod("default", "tty", T, "Succeeded after exit", |p| {
        phase(p) == "Succeeded"
    })
    .await;
    // httpGet readiness with a named port, tcpSocket liveness.
    c.wait_pod("default", "http-probe", T, "Ready via httpGet", ready)
        .await;
    // logs -f of a running container streams until interrupted; of a finished one it ends.
    let o = c.kubectl(&["logs", "-f", "done-ok"]).unwrap();
    assert_eq!(text(&o), "line1\nline2\nline3\n");
    let left = c.shutdown();
    assert!(left.is_empty(), "left behind: {left:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmaps_secrets_empty_dirs_deletion_and_kubelet_restart() {
    if !common::prerequisites("configmaps_secrets_empty_dirs_deletion_and_kubelet_restart") {
        return;
    }
    let mut c = Cluster::start(&format!("kv{}", std::process::id() % 10000), 1).await;
    let hostdir = c.tmp.path().join("host-share");
    std::fs::create_dir_all(&hostdir).unwrap();
    let manifests = format!(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings}}
data: {{color: blue, size: large}}
---
apiVersion: v1
kind: Secret
metadata: {{name: creds}}
stringData: {{password: hunter2}}
---
apiVersion: v1
kind: Pod
metadata: {{name: volumes}}
spec:
  containers:
  - name: writer
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    env:
    - name: COLOR
      valueFrom: {{configMapKeyRef: {{name: settings, key: color}}}}
    - name: PASSWORD
      valueFrom: {{secretKeyRef: {{name: creds, key: password}}}}
    - name: MY_POD
      valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
    - name: GREETING
      value: "hi $(MY_POD)"
    envFrom:
    - configMapRef: {{name: settings}}
      prefix: CFG_
    command: ["sh", "-c", "echo shared-by-writer > /shared/note; sleep 100000"]
    volumeMounts:
    - {{name: cfg, mountPath: /etc/cfg}}
    - {{name: secret, mountPath: /etc/secret}}
    - {{name: shared, mountPath: /shared}}
  - name: reader
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "sleep 100000"]
    volumeMounts:
    - {{name: shared, mountPath: /data}}
  volumes:
  - name: cfg
    configMap: {{name: settings}}
  - name: secret
    secret: {{secretName: creds, defaultMode: 0400}}
  - name: shared
    emptyDir: {{}}
---
apiVersion: v1
kind: Pod
metadata: {{name: graceful}}
spec:
  terminationGracePeriodSeconds: 20
  containers:
  - name: app
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "trap 'echo got-TERM > /host/term; sleep 3; exit 0' TERM; while true; do sleep 0.2; done"]
    volumeMounts:
    - {{name: host, mountPath: /host}}
  volumes:
  - name: host
    hostPath: {{path: {host}, type: Directory}}
---
apiVersion: v1
kind: Pod
metadata: {{name: survivor}}
spec:
  containers:
  - {{name: app, image: "busybox:latest", imagePullPolicy: IfNotPresent, command: ["sh", "-c", "sleep 100000"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: doomed}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: app, image: "busybox:latest", imagePullPolicy: IfNotPresent, command: ["sh", "-c", "sleep 100000"]}}
"#,
        host = hostdir.display()
    );
    if !apply(&c, "volumes", &manifests) {
        return;
    }
    for name in ["volumes", "graceful", "survivor", "doomed"] {
        c.wait_pod("default", name, T, "Running and Ready", |p| {
            phase(p) == "Running" && ready(p)
        })
        .await;
    }
    let exec = |pod: &str, container: &str, script: &str| {
        let o = c
            .kubectl(&["exec", pod, "-c", container, "--", "sh", "-c", script])
            .unwrap();
        assert!(o.status.success(), "exec {script}: {}", err(&o));
        text(&o)
    };
    // Environment from ConfigMap, Secret, fieldRef, $(VAR) and envFrom.
    let env = exec("volumes", "writer", "env");
    for want in [
        "COLOR=blue",
        "PASSWORD=hunter2",
        "MY_POD=volumes",
        "GREETING=hi volumes",
        "CFG_size=large",
        "KUBERNETES_SERVICE_HOST=10.96.0.1",
    ] {
        assert!(env.lines().any(|l| l == want), "{want} missing in:\n{env}");
    }
    // Volumes: files, modes, emptyDir shared between the two containers.
    assert_eq!(exec("volumes", "writer", "cat /etc/cfg/color"), "blue");
    assert_eq!(
        exec("volumes", "writer", "cat /etc/secret/password"),
        "hunter2"
    );
    assert_eq!(
        exec("volumes", "writer", "stat -L -c %a /etc/secret/password").trim(),
        "400"
    );
    assert_eq!(
        exec("volumes", "reader", "cat /data/note"),
        "shared-by-writer\n"
    );
    // Editing the ConfigMap and the Secret updates the files in the running container.
    let o = c
        .kubectl(&[
            "patch",
            "configmap",
            "settings",
            "-p",
            r#"{"data":{"color":"green"}}"#,
        ])
        .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    let o = c
        .kubectl(&[
            "patch",
            "secret",
            "creds",
            "-p",
            r#"{"stringData":{"password":"swordfish"}}"#,
        ])
        .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    c.wait_for(T, "the configmap file to change", || async {
        c.kubectl(&[
            "exec",
            "volumes",
            "-c",
            "writer",
            "--",
            "cat",
            "/etc/cfg/color",
        ])
        .is_some_and(|o| text(&o) == "green")
    })
    .await;
    c.wait_for(T, "the secret file to change", || async {
        c.kubectl(&[
            "exec",
            "volumes",
            "-c",
            "writer",
            "--",
            "cat",
            "/etc/secret/password",
        ])
        .is_some_and(|o| text(&o) == "swordfish")
    })
    .await;

    // Kubelet SIGKILL and restart: containers keep their ids, nothing restarts; a pod deleted
    // meanwhile is cleaned up after the restart.
    let before = c.pods("default").get("survivor").await.unwrap();
    let id_before = container(&before, "app").unwrap().container_id.clone();
    let pids_before = String::from_utf8_lossy(&c.minirun(0, &["ps", "-q"]).stdout).to_string();
    c.kill_kubelet(0);
    c.pods("default")
        .delete("doomed", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let images = common::images().to_path_buf();
    c.start_kubelet(0, &images);
    c.wait_for(T, "the doomed pod to be gone", || async {
        c.pods("default")
            .get_opt("doomed")
            .await
            .ok()
            .flatten()
            .is_none()
    })
    .await;
    let after = c.pods("default").get("survivor").await.unwrap();
    let cs = container(&after, "app").unwrap();
    assert_eq!(
        cs.container_id, id_before,
        "survivor's container was not replaced"
    );
    assert_eq!(cs.restart_count, 0);
    assert!(ready(&after));
    let doomed_sandboxes: Vec<_> = c
        .sandboxes(0)
        .into_iter()
        .filter(|s| s["name"] == "doomed")
        .collect();
    assert!(doomed_sandboxes.is_empty(), "{doomed_sandboxes:?}");
    let pids_after = String::from_utf8_lossy(&c.minirun(0, &["ps", "-q"]).stdout).to_string();
    for id in pids_before.lines().filter(|l| !l.is_empty()) {
        // Every container still running before the restart (but doomed's) still runs.
        let st = c.minirun(0, &["state", id]);
        let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap_or_default();
        if v["status"] == "running" || pids_after.contains(id) {
            continue;
        }
        let name = v["labels"]["io.kubernetes.pod.name"].as_str().unwrap_or("");
        assert!(
            name.is_empty() || name == "doomed",
            "{id} of {name} stopped: {v}"
        );
    }

    // Graceful deletion: SIGTERM, the trap's 3 s run, then the object disappears.
    let started = std::time::Instant::now();
    c.pods("default")
        .delete("graceful", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        c.pods("default")
            .get_opt("graceful")
            .await
            .unwrap()
            .is_some(),
        "the pod stays while its container handles SIGTERM"
    );
    c.wait_for(T, "the graceful pod to be gone", || async {
        c.pods("default")
            .get_opt("graceful")
            .await
            .ok()
            .flatten()
            .is_none()
    })
    .await;
    assert_eq!(
        std::fs::read_to_string(hostdir.join("term")).unwrap_or_default(),
        "got-TERM\n"
    );
    assert!(started.elapsed() >= Duration::from_secs(3));
    let left = c.shutdown();
    assert!(left.is_empty(), "left behind: {left:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_pod_to_pod_and_node_status() {
    if !common::prerequisites("two_nodes_pod_to_pod_and_node_status") {
        return;
    }
    let c = Cluster::start(&format!("kn{}", std::process::id() % 10000), 2).await;
    let manifests = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: server}}
spec:
  nodeName: {n1}
  containers:
  - name: web
    image: demo-web:v1
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  nodeName: {n0}
  containers:
  - {{name: app, image: "busybox:latest", imagePullPolicy: IfNotPresent, command: ["sh", "-c", "sleep 100000"]}}
"#,
        n0 = c.nodes[0].name,
        n1 = c.nodes[1].name
    );
    if !apply(&c, "two-nodes", &manifests) {
        return;
    }
    let server = c
        .wait_pod("default", "server", T, "Running", |p| {
            phase(p) == "Running" && ready(p)
        })
        .await;
    c.wait_pod("default", "client", T, "Running", |p| phase(p) == "Running")
        .await;
    let server_ip = server.status.unwrap().pod_ip.unwrap();
    let o = c
        .kubectl(&[
            "exec",
            "client",
            "--",
            // (busybox-static's wget crashes with -T on Debian; the exec is bounded anyway)
            "wget",
            "-q",
            "-O",
            "-",
            &format!("http://{server_ip}:8080/"),
        ])
        .unwrap();
    assert!(o.status.success(), "cross-node request: {}", err(&o));
    assert!(
        text(&o).contains("server") && text(&o).contains(&server_ip),
        "demo-web answers with its name and IP: {}",
        text(&o)
    );
    // Both nodes Ready with current leases.
    let o = c.kubectl(&["get", "nodes", "--no-headers"]).unwrap();
    let out = text(&o);
    for n in &c.nodes {
        let row = out.lines().find(|l| l.starts_with(&n.name)).unwrap_or("");
        assert_eq!(row.split_whitespace().nth(1), Some("Ready"), "{out}");
    }
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(c.client.clone(), "kube-node-lease");
    for n in &c.nodes {
        let l = leases.get(&n.name).await.unwrap();
        let renewed = l.spec.unwrap().renew_time.unwrap().0;
        let age = jiff::Timestamp::now().duration_since(renewed);
        assert!(
            age.as_secs() < 30,
            "lease of {} renewed {age:?} ago",
            n.name
        );
    }
    let left = c.shutdown();
    assert!(left.is_empty(), "left behind: {left:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_containers_hooks_identity_files_claims_and_pull_errors() {
    if !common::prerequisites("init_containers_hooks_identity_files_claims_and_pull_errors") {
        return;
    }
    let c = Cluster::start(&format!("ki{}", std::process::id() % 10000), 1).await;
    let manifests = r#"
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-0
  labels: {app: web, tier: front}
spec:
  hostname: web-0
  subdomain: web
  initContainers:
  - {name: first, image: "busybox:latest", imagePullPolicy: IfNotPresent, command: ["sh", "-c", "echo first >> /work/order"], volumeMounts: [{name: work, mountPath: /work}]}
  - {name: second, image: "busybox:latest", imagePullPolicy: IfNotPresent, command: ["sh", "-c", "echo second >> /work/order"], volumeMounts: [{name: work, mountPath: /work}]}
  containers:
  - name: app
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo main >> /work/order; sleep 100000"]
    lifecycle:
      postStart:
        exec: {command: ["sh", "-c", "echo post-start > /work/hook"]}
    volumeMounts:
    - {name: work, mountPath: /work}
    - {name: info, mountPath: /etc/podinfo}
    - {name: data, mountPath: /data}
  volumes:
  - {name: work, emptyDir: {medium: Memory, sizeLimit: 8Mi}}
  - name: info
    downwardAPI:
      items:
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
      - {path: name, fieldRef: {fieldPath: metadata.name}}
  - {name: data, persistentVolumeClaim: {claimName: data}}
---
apiVersion: v1
kind: Pod
metadata: {name: missing-image}
spec:
  containers:
  - {name: app, image: "nosuchimage:v9", command: ["true"]}
"#;
    if !apply(&c, "init", manifests) {
        return;
    }
    let p = c
        .wait_pod("default", "web-0", T, "Running", |p| {
            phase(p) == "Running" && ready(p)
        })
        .await;
    let ip = p.status.as_ref().unwrap().pod_ip.clone().unwrap();
    let exec = |script: &str| {
        let o = c
            .kubectl(&["exec", "web-0", "-c", "app", "--", "sh", "-c", script])
            .unwrap();
        assert!(o.status.success(), "exec {script}: {}", err(&o));
        text(&o)
    };
    // Init containers ran in order, before the app; postStart ran.
    assert_eq!(exec("cat /work/order"), "first\nsecond\nmain\n");
    assert_eq!(exec("cat /work/hook"), "post-start\n");
    assert!(
        exec("grep /work /proc/mounts").contains("tmpfs"),
        "emptyDir medium Memory"
    );
    let o = c
        .kubectl(&[
            "get",
            "pod",
            "web-0",
            "-o",
            "jsonpath={.status.initContainerStatuses[*].state.terminated.reason}",
        ])
        .unwrap();
    assert_eq!(text(&o), "Completed Completed");
    // Downward API files.
    assert_eq!(exec("cat /etc/podinfo/name"), "web-0");
    assert_eq!(
        exec("cat /etc/podinfo/labels"),
        "app=\"web\"\ntier=\"front\""
    );
    // Identity files: hostname, hosts with the FQDN, resolv.conf for ClusterFirst.
    assert_eq!(exec("hostname"), "web-0\n");
    let hosts = exec("cat /etc/hosts");
    assert!(
        hosts.contains(&format!("{ip}\tweb-0.web.default.svc.cluster.local\tweb-0")),
        "{hosts}"
    );
    let resolv = exec("cat /etc/resolv.conf");
    assert!(resolv.contains("nameserver 10.96.0.10"), "{resolv}");
    assert!(
        resolv.contains("search default.svc.cluster.local svc.cluster.local cluster.local"),
        "{resolv}"
    );
    assert!(resolv.contains("options ndots:5"), "{resolv}");
    // The claim was provisioned on this node and bound; data written there is on the node.
    exec("echo kept > /data/file");
    let pvcs: kube::Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        kube::Api::namespaced(c.client.clone(), "default");
    let pvc = pvcs.get("data").await.unwrap();
    assert_eq!(pvc.status.unwrap().phase.as_deref(), Some("Bound"));
    let pv_name = pvc.spec.unwrap().volume_name.unwrap();
    let pvs: kube::Api<k8s_openapi::api::core::v1::PersistentVolume> =
        kube::Api::all(c.client.clone());
    let pv = pvs.get(&pv_name).await.unwrap();
    let dir = pv.spec.unwrap().host_path.unwrap().path;
    assert_eq!(
        std::fs::read_to_string(format!("{dir}/file")).unwrap(),
        "kept\n"
    );
    // An image that is not on the node and names no registry: ErrImagePull, then back-off.
    c.wait_pod(
        "default",
        "missing-image",
        T,
        "ErrImagePull or ImagePullBackOff",
        |p| {
            container(p, "app")
                .and_then(|s| s.state.as_ref())
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref())
                .is_some_and(|r| r == "ErrImagePull" || r == "ImagePullBackOff")
        },
    )
    .await;
    let left = c.shutdown();
    assert!(left.is_empty(), "left behind: {left:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_probes_pre_stop_hooks_and_host_network() {
    if !common::prerequisites("startup_probes_pre_stop_hooks_and_host_network") {
        return;
    }
    let c = Cluster::start(&format!("ks{}", std::process::id() % 10000), 1).await;
    let events = c.tmp.path().join("events");
    std::fs::create_dir_all(&events).unwrap();
    let manifests = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: slow-start}}
spec:
  containers:
  - name: app
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sleep", "100000"]
    startupProbe:
      exec: {{command: ["test", "-f", "/tmp/started"]}}
      periodSeconds: 1
      failureThreshold: 120
    readinessProbe:
      exec: {{command: ["true"]}}
      periodSeconds: 1
    livenessProbe:
      exec: {{command: ["false"]}}
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Pod
metadata: {{name: never-starts}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sleep", "100000"]
    startupProbe:
      exec: {{command: ["false"]}}
      periodSeconds: 1
      failureThreshold: 2
---
apiVersion: v1
kind: Pod
metadata: {{name: drains}}
spec:
  terminationGracePeriodSeconds: 20
  containers:
  - name: app
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "trap 'echo term >> /out/events; exit 0' TERM; while true; do sleep 0.2; done"]
    lifecycle:
      preStop:
        exec: {{command: ["sh", "-c", "echo pre-stop >> /out/events; sleep 1"]}}
    volumeMounts: [{{name: out, mountPath: /out}}]
  volumes:
  - {{name: out, hostPath: {{path: "{events}", type: Directory}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: host-net}}
spec:
  hostNetwork: true
  containers:
  - name: web
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "mkdir -p /www && echo host-net > /www/index.html && exec httpd -f -p 18080 -h /www"]
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  containers:
  - {{name: app, image: "busybox:latest", imagePullPolicy: IfNotPresent, command: ["sleep", "100000"]}}
"#,
        events = events.display()
    );
    if !apply(&c, "startup-prestop-hostnet", &manifests) {
        return;
    }
    let started = |p: &k8s_openapi::api::core::v1::Pod| {
        container(p, "app").and_then(|s| s.started) == Some(true)
    };
    let restarts =
        |p: &k8s_openapi::api::core::v1::Pod| container(p, "app").map_or(0, |s| s.restart_count);

    // startupProbe: until it succeeds the container is not started, not ready, and its
    // (always failing) liveness probe is not run, so nothing restarts.
    let p = c
        .wait_pod("default", "slow-start", T, "Running", |p| {
            phase(p) == "Running"
        })
        .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let p = c.pods("default").get("slow-start").await.unwrap_or(p);
    assert!(!started(&p), "started before the startup probe succeeded");
    assert!(!ready(&p), "ready before the startup probe succeeded");
    assert_eq!(restarts(&p), 0, "liveness ran before startup succeeded");
    let o = c
        .kubectl(&["exec", "slow-start", "--", "touch", "/tmp/started"])
        .unwrap();
    assert!(o.status.success(), "exec: {}", err(&o));
    // Started; then the failing liveness probe takes over and restarts the container.
    c.wait_pod(
        "default",
        "slow-start",
        T,
        "restarted by liveness after startup",
        |p| restarts(p) >= 1,
    )
    .await;
    // A startup probe that never succeeds restarts the container after failureThreshold.
    c.wait_pod(
        "default",
        "never-starts",
        T,
        "restarted by its startup probe",
        |p| restarts(p) >= 1 && !started(p),
    )
    .await;

    // hostNetwork: the pod has the node's address, and its port answers there.
    let host = c
        .wait_pod("default", "host-net", T, "Running", |p| {
            phase(p) == "Running"
        })
        .await;
    let status = host.status.clone().unwrap_or_default();
    let host_ip = status.host_ip.clone().expect("hostIP");
    assert_eq!(
        status.pod_ip.as_deref(),
        Some(host_ip.as_str()),
        "podIP of a hostNetwork pod"
    );
    c.wait_pod("default", "client", T, "Running", |p| phase(p) == "Running")
        .await;
    let url = format!("http://{host_ip}:18080/");
    let mut answer = String::new();
    for _ in 0..30 {
        let o = c
            .kubectl(&["exec", "client", "--", "wget", "-q", "-O", "-", &url])
            .unwrap();
        answer = text(&o);
        if answer == "host-net\n" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(answer, "host-net\n", "wget {url} from a pod");
    let o = c
        .kubectl(&["exec", "host-net", "--", "ip", "-4", "addr"])
        .unwrap();
    assert!(
        text(&o).contains(&host_ip),
        "hostNetwork pod sees the node's address: {}",
        text(&o)
    );

    // preStop runs to completion before SIGTERM; the pod object goes away after both.
    c.wait_pod("default", "drains", T, "Running", |p| phase(p) == "Running")
        .await;
    let o = c
        .kubectl(&["delete", "pod", "drains", "--wait=true", "--timeout=60s"])
        .unwrap();
    assert!(o.status.success(), "delete: {}", err(&o));
    let log = std::fs::read_to_string(events.join("events")).unwrap_or_default();
    assert_eq!(log, "pre-stop\nterm\n", "hook and signal order");

    let left = c.shutdown();
    assert!(left.is_empty(), "left behind: {left:#?}");
}
