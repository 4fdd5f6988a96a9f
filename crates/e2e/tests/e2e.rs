//! The end-to-end suite (root): a real 3-node `cluster up`, once on the embedded store and once
//! on etcd, driven by minictl and upstream kubectl the way a user would drive it. One cluster per
//! store runs every scenario in order: deploy → expose → reach by DNS name and ClusterIP from a
//! pod on each node (all backends, roughly evenly); NodePort on every node from a namespace
//! outside the cluster network; sessionAffinity ClientIP; backends following scale and readiness
//! (times printed, not asserted); a Service without ready backends refused at once; headless
//! Service, StatefulSet stable names and SRV records through cluster DNS; a ConfigMap change
//! reaching a pod; the authenticated gate (tests/e2e/security.rs); rolling update and undo answering throughout; a node's kubelet killed → the
//! node goes NotReady and its pods come back on the other nodes; `cluster down` leaves nothing
//! behind and the machine's own network namespace is never touched.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

#[path = "e2e/security.rs"]
mod security;

use e2e::{backends, host_network_snapshot, wait_for, Cluster};
use serde_json::Value;

/// One cluster at a time: two would compete for the two cores and make every wait longer.
static ONE_CLUSTER: Mutex<()> = Mutex::new(());

const NODES: usize = 3;
/// Requests per client in the spread checks: with 3 backends picked at random, each is expected
/// 15 times; fewer than 5 happens with probability < 0.1 %.
const REQUESTS: usize = 45;

fn prerequisites(test: &str) -> bool {
    if !testkit::is_root() {
        testkit::missing(&format!("{test}: root"), "run the suite as root; CI does");
        return false;
    }
    for (tool, install) in [
        ("ip", "apt-get install iproute2"),
        ("iptables-save", "apt-get install iptables"),
        ("busybox", "apt-get install busybox-static"),
    ] {
        if std::process::Command::new("which")
            .arg(tool)
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            testkit::missing(&format!("{test}: {tool}"), install);
            return false;
        }
    }
    if testkit::kubectl().is_none() {
        return false;
    }
    true
}

#[test]
fn e2e_on_the_embedded_store() {
    if prerequisites("e2e (embedded store)") {
        scenarios("e2em", "embedded");
    }
}

#[test]
fn e2e_on_etcd() {
    if !prerequisites("e2e (etcd store)") {
        return;
    }
    if std::process::Command::new("etcd")
        .arg("--version")
        .output()
        .is_err()
    {
        testkit::missing("e2e (etcd store): etcd", "apt-get install etcd-server");
        return;
    }
    scenarios("e2ee", "etcd");
}

fn scenarios(tag: &str, store: &str) {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let host_before = host_network_snapshot();
    let cluster = Cluster::up(
        tag,
        store,
        NODES,
        // A silent node is NotReady after 15 s (the kubelet renews its Lease every 10 s) and its
        // pods' default unreachable toleration runs out 2 s later, so the node-loss scenario
        // fits in the suite's time.
        &[
            "--node-monitor-grace-period",
            "15s",
            "--default-unreachable-toleration-seconds",
            "2",
        ],
    );
    // E2E_ONLY=lost,dns,... runs only those scenarios after the first (for debugging one).
    let only = std::env::var("E2E_ONLY").unwrap_or_default();
    let want = |tag: &str| only.is_empty() || only.split(',').any(|t| t == tag);
    // The first one (no tag) always runs: the others build on it.
    let scenarios: &[(&str, &str, &dyn Fn())] = &[
        (
            "",
            "deploy, expose, reach by DNS name and ClusterIP",
            &|| deploy_expose_and_reach_from_every_node(&cluster),
        ),
        ("nodeport", "NodePort from outside", &|| {
            node_port_from_outside(&cluster)
        }),
        ("affinity", "session affinity", &|| {
            session_affinity_pins_a_client(&cluster)
        }),
        ("backends", "backends follow scale and readiness", &|| {
            backends_follow_scale_and_readiness(&cluster, store)
        }),
        ("dns", "headless, StatefulSet, SRV", &|| {
            headless_statefulset_and_srv(&cluster)
        }),
        ("configmap", "ConfigMap change", &|| {
            configmap_change_reaches_the_pod(&cluster)
        }),
        ("private", "state files private", &|| {
            let exposed = testkit::privacy::exposed(&[cluster.state_dir()]);
            assert!(exposed.is_empty(), "state readable by others: {exposed:#?}");
        }),
        ("security", "the authenticated gate", &|| {
            security::the_gate_holds(&cluster)
        }),
        (
            "verbs",
            "logs, exec, edit side by side with kubectl",
            &|| logs_exec_and_edit_side_by_side(&cluster),
        ),
        ("rollout", "rolling update and undo", &|| {
            rolling_update_and_undo_answer_throughout(&cluster)
        }),
        ("lost", "lost node", &|| {
            lost_node_pods_come_back_elsewhere(&cluster)
        }),
    ];
    for (tag, name, run) in scenarios {
        if tag.is_empty() || want(tag) {
            let started = Instant::now();
            run();
            eprintln!("e2e[{store}]: {name} done in {:?}", started.elapsed());
        }
    }

    assert_eq!(
        host_network_snapshot(),
        host_before,
        "the machine's own network namespace changed while the cluster ran"
    );
    let down = cluster.down();
    assert!(down.success, "cluster down failed: {down}");
    let left = cluster.leftovers();
    assert!(left.is_empty(), "cluster down left behind: {left:#?}");
    assert_eq!(
        host_network_snapshot(),
        host_before,
        "the machine's own network namespace changed"
    );
}

// ------------------------------------------------------------------------------------------------
// helpers

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

fn name_of(obj: &Value) -> String {
    obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn is_ready(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null()
        && pod["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// Ready, not terminating pods with label `selector`: name → (node, IP).
fn ready_pods(cluster: &Cluster, selector: &str) -> BTreeMap<String, (String, String)> {
    items(&cluster.get_json(&["pods", "-l", selector]))
        .iter()
        .filter(|p| is_ready(p))
        .map(|p| {
            (
                name_of(p),
                (
                    p["spec"]["nodeName"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    p["status"]["podIP"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ),
            )
        })
        .collect()
}

fn wait_ready_pods(
    cluster: &Cluster,
    selector: &str,
    count: usize,
) -> BTreeMap<String, (String, String)> {
    wait_for(
        &format!("{count} ready pods {selector}"),
        Duration::from_secs(120),
        || {
            let pods = ready_pods(cluster, selector);
            if pods.len() == count {
                Ok(pods)
            } else {
                Err(format!("{pods:?}"))
            }
        },
    )
}

/// `n` requests to `url` from `pod`, one line per answer ("FAIL <reason>" for failures).
fn requests(cluster: &Cluster, pod: &str, url: &str, n: usize) -> String {
    let script = format!(
        "i=0; while [ $i -lt {n} ]; do wget -q -O- {url} 2>&1 || echo FAIL; i=$((i+1)); done"
    );
    cluster.sh(pod, &script).ok(&format!("requests from {pod}"))
}

fn cluster_ip(cluster: &Cluster, service: &str) -> String {
    cluster.get_json(&["service", service])["spec"]["clusterIP"]
        .as_str()
        .expect("clusterIP")
        .to_string()
}

/// Whether node `i`'s iptables (nat table) mention `ip` as a service endpoint.
fn node_routes_to(cluster: &Cluster, node: usize, ip: &str) -> bool {
    let rules = cluster
        .in_netns(&cluster.node_netns(node), "iptables-save", &["-t", "nat"])
        .ok("iptables-save in a node");
    rules
        .lines()
        .any(|l| l.contains("-j DNAT") && l.contains(&format!("--to-destination {ip}:")))
}

/// How long after `since` it took until no node routes to `ip` any more.
fn wait_unrouted(cluster: &Cluster, ip: &str, since: Instant) -> Duration {
    wait_routing(cluster, ip, false, since)
}

/// How long after `since` it took until every node routes to `ip`.
fn wait_routed(cluster: &Cluster, ip: &str, since: Instant) -> Duration {
    wait_routing(cluster, ip, true, since)
}

fn wait_routing(cluster: &Cluster, ip: &str, routed: bool, since: Instant) -> Duration {
    let what = if routed {
        format!("every node to route to {ip}")
    } else {
        format!("every node to stop routing to {ip}")
    };
    wait_for(&what, Duration::from_secs(60), || {
        let wrong: Vec<usize> = (0..NODES)
            .filter(|&i| node_routes_to(cluster, i, ip) != routed)
            .collect();
        if wrong.is_empty() {
            Ok(since.elapsed())
        } else {
            Err(format!("nodes {wrong:?} not there yet"))
        }
    })
}

// ------------------------------------------------------------------------------------------------
// scenarios

const CLIENTS: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: greeting}
data: {message: hello}
---
apiVersion: v1
kind: Pod
metadata: {name: client-0, labels: {role: client}}
spec:
  nodeName: NODE0
  terminationGracePeriodSeconds: 0
  containers:
  - {name: sh, image: busybox:latest, command: [sleep, "3600"], volumeMounts: [{name: greeting, mountPath: /etc/greeting}]}
  volumes: [{name: greeting, configMap: {name: greeting}}]
---
apiVersion: v1
kind: Pod
metadata: {name: client-1, labels: {role: client}}
spec:
  nodeName: NODE1
  terminationGracePeriodSeconds: 0
  containers:
  - {name: sh, image: busybox:latest, command: [sleep, "3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: client-2, labels: {role: client}}
spec:
  nodeName: NODE2
  terminationGracePeriodSeconds: 0
  containers:
  - {name: sh, image: busybox:latest, command: [sleep, "3600"]}
"#;

fn deploy_expose_and_reach_from_every_node(cluster: &Cluster) {
    // minictl deploy / expose / rollout status, as in the README.
    let out = cluster
        .minictl(&[
            "deploy",
            "web",
            "--image",
            "demo-web:v1",
            "--replicas",
            "3",
            "--port",
            "8080",
            "--env",
            "SHUTDOWN_DELAY=3",
        ])
        .ok("minictl deploy");
    assert!(out.contains("deployment.apps/web created"), "{out}");
    // A readiness probe on demo-web's /ready, added the way a user would (kubectl patch).
    cluster
        .kubectl(&[
            "patch",
            "deployment",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"add","path":"/spec/template/spec/containers/0/readinessProbe","value":{"httpGet":{"path":"/ready","port":8080},"periodSeconds":1,"failureThreshold":1}}]"#,
        ])
        .ok("kubectl patch readinessProbe");
    let out = cluster
        .minictl(&[
            "expose",
            "deployment",
            "web",
            "--port",
            "80",
            "--target-port",
            "8080",
        ])
        .ok("minictl expose");
    assert!(out.contains("service/web exposed"), "{out}");
    let out = cluster
        .minictl(&["rollout", "status", "deployment/web", "--timeout", "120s"])
        .ok("minictl rollout status");
    assert!(out.contains("successfully rolled out"), "{out}");
    let web = wait_ready_pods(cluster, "app=web", 3);
    let nodes: BTreeSet<&String> = web.values().map(|(n, _)| n).collect();
    assert!(nodes.len() >= 2, "3 replicas on one node: {web:?}");
    // The proxies follow the Endpoints by a moment (as on Kubernetes): wait until every node
    // routes to the ready pods and no longer to the first revision's pods (before the probe
    // patch), which may still be draining.
    for pod in items(&cluster.get_json(&["pods", "-l", "app=web"])) {
        let Some(ip) = pod["status"]["podIP"].as_str() else {
            continue;
        };
        if web.contains_key(&name_of(&pod)) {
            wait_routed(cluster, ip, Instant::now());
        } else {
            wait_unrouted(cluster, ip, Instant::now());
        }
    }

    let manifest = (0..NODES).fold(CLIENTS.to_string(), |m, i| {
        m.replace(&format!("NODE{i}"), &cluster.node_name(i))
    });
    cluster
        .kubectl_input(&["apply", "-f", "-"], Some(&manifest))
        .ok("kubectl apply clients");
    wait_ready_pods(cluster, "role=client", NODES);

    let ip = cluster_ip(cluster, "web");
    for i in 0..NODES {
        let client = format!("client-{i}");
        for url in ["http://web/".to_string(), format!("http://{ip}/")] {
            let answers = requests(cluster, &client, &url, REQUESTS);
            let seen = backends(&answers);
            assert!(!answers.contains("FAIL"), "{client} → {url}: {answers}");
            let names: BTreeSet<&String> = seen.keys().collect();
            let expected: BTreeSet<&String> = web.keys().collect();
            assert_eq!(names, expected, "{client} → {url} reached {seen:?}");
            assert!(
                seen.values().all(|&n| n >= 5),
                "{client} → {url}: uneven spread {seen:?}"
            );
        }
    }
    // The fully qualified name and the ClusterIP answer the same application.
    let fqdn = requests(
        cluster,
        "client-0",
        "http://web.default.svc.cluster.local/",
        3,
    );
    assert_eq!(backends(&fqdn).values().sum::<usize>(), 3, "{fqdn}");
}

fn node_ips(cluster: &Cluster) -> Vec<String> {
    let nodes = cluster.get_json(&["nodes"]);
    let mut ips: Vec<String> = items(&nodes)
        .iter()
        .filter_map(|n| {
            n["status"]["addresses"].as_array().and_then(|a| {
                a.iter()
                    .find(|x| x["type"] == "InternalIP")
                    .and_then(|x| x["address"].as_str())
                    .map(str::to_string)
            })
        })
        .collect();
    ips.sort();
    assert_eq!(ips.len(), NODES, "{nodes}");
    ips
}

fn node_port_from_outside(cluster: &Cluster) {
    let out = cluster
        .minictl(&[
            "expose",
            "deployment",
            "web",
            "--name",
            "web-np",
            "--type",
            "NodePort",
            "--port",
            "80",
            "--target-port",
            "8080",
            "--node-port",
            "30080",
        ])
        .ok("minictl expose NodePort");
    assert!(out.contains("service/web-np exposed"), "{out}");
    let outsider = cluster.outsider();
    for ip in node_ips(cluster) {
        let url = format!("http://{ip}:30080/");
        let answer = wait_for(
            &format!("NodePort {url} from outside"),
            Duration::from_secs(30),
            || {
                let run =
                    cluster.in_netns(outsider.name(), "busybox", &["wget", "-q", "-O-", &url]);
                if run.success && run.stdout.contains("hostname=web-") {
                    Ok(run.stdout)
                } else {
                    Err(run.to_string())
                }
            },
        );
        assert!(answer.contains("version=v1"), "{answer}");
        // and from a pod, through another node's address
        let from_pod = requests(cluster, "client-0", &url, 2);
        let answered = backends(&from_pod).values().sum::<usize>();
        if answered != 2 {
            panic!(
                "{answered} of 2 requests from client-0 to {url} answered: {from_pod}\n{}",
                node_port_state(cluster, 30080)
            );
        }
    }
}

/// Each node's NodePort rules and connection tracking for `port`: what a failed request to a
/// NodePort needs to be explained.
fn node_port_state(cluster: &Cluster, port: u16) -> String {
    let mut out = String::new();
    for i in 0..node_ips(cluster).len() {
        let netns = cluster.node_netns(i);
        let rules = cluster.in_netns(&netns, "iptables-save", &["-t", "nat"]);
        let conntrack = cluster.in_netns(
            &netns,
            "conntrack",
            &["-L", "-p", "tcp", "--dport", &port.to_string()],
        );
        out += &format!(
            "--- {netns} nat rules:\n{}\n--- {netns} conntrack:\n{}{}\n",
            rules.stdout, conntrack.stdout, conntrack.stderr
        );
    }
    out
}

fn session_affinity_pins_a_client(cluster: &Cluster) {
    cluster
        .kubectl(&[
            "patch",
            "service",
            "web",
            "-p",
            r#"{"spec":{"sessionAffinity":"ClientIP"}}"#,
        ])
        .ok("kubectl patch sessionAffinity");
    for client in ["client-0", "client-1"] {
        // Once the proxy has the affinity rules, every answer comes from one backend.
        let pinned = wait_for(
            &format!("{client} pinned to one backend"),
            Duration::from_secs(30),
            || {
                let seen = backends(&requests(cluster, client, "http://web/", 20));
                if seen.len() == 1 {
                    Ok(seen.into_keys().next().unwrap())
                } else {
                    Err(format!("{seen:?}"))
                }
            },
        );
        let again = backends(&requests(cluster, client, "http://web/", 30));
        assert_eq!(
            again.keys().collect::<Vec<_>>(),
            vec![&pinned],
            "{client} left its backend"
        );
    }
    cluster
        .kubectl(&[
            "patch",
            "service",
            "web",
            "-p",
            r#"{"spec":{"sessionAffinity":"None"}}"#,
        ])
        .ok("kubectl patch sessionAffinity None");
    wait_for(
        "spreading again without affinity",
        Duration::from_secs(30),
        || {
            let seen = backends(&requests(cluster, "client-0", "http://web/", 30));
            if seen.len() == 3 {
                Ok(())
            } else {
                Err(format!("{seen:?}"))
            }
        },
    );
}

fn backends_follow_scale_and_readiness(cluster: &Cluster, store: &str) {
    // Scale up: the new pods become backends.
    let out = cluster
        .minictl(&["scale", "deployment", "web", "--replicas", "5"])
        .ok("minictl scale up");
    assert!(out.contains("deployment.apps/web scaled"), "{out}");
    let five = wait_ready_pods(cluster, "app=web", 5);
    for (_, ip) in five.values() {
        wait_routed(cluster, ip, Instant::now());
    }
    // Scale down: the removed pods stop being backends on every node.
    let t = Instant::now();
    cluster
        .minictl(&["scale", "deployment", "web", "--replicas", "3"])
        .ok("minictl scale down");
    let three = wait_ready_pods(cluster, "app=web", 3);
    let mut slowest = Duration::ZERO;
    for (name, (_, ip)) in &five {
        if !three.contains_key(name) {
            slowest = slowest.max(wait_unrouted(cluster, ip, t));
        }
    }
    eprintln!("e2e[{store}]: scale 5 → 3: removed backends gone from every node after {slowest:?}");
    let seen = backends(&requests(cluster, "client-1", "http://web/", 30));
    assert!(
        seen.keys().all(|k| three.contains_key(k)),
        "a removed pod still answers: {seen:?} (ready: {three:?})"
    );

    // A failing readiness probe takes a pod out; recovering brings it back.
    let (victim, (_, victim_ip)) = three
        .iter()
        .next()
        .map(|(n, v)| (n.clone(), v.clone()))
        .unwrap();
    let t = Instant::now();
    cluster
        .sh(
            "client-0",
            &format!("wget -q -O- http://{victim_ip}:8080/ready/fail"),
        )
        .ok("flip readiness");
    let gone = wait_unrouted(cluster, &victim_ip, t);
    eprintln!("e2e[{store}]: readiness failed → backend gone from every node after {gone:?}");
    let seen = backends(&requests(cluster, "client-2", "http://web/", 30));
    assert!(
        !seen.contains_key(&victim),
        "{victim} answered while unready: {seen:?}"
    );
    let t = Instant::now();
    cluster
        .sh(
            "client-0",
            &format!("wget -q -O- http://{victim_ip}:8080/ready/ok"),
        )
        .ok("flip readiness back");
    let back = wait_routed(cluster, &victim_ip, t);
    eprintln!("e2e[{store}]: readiness recovered → backend back on every node after {back:?}");

    // A Service without ready endpoints refuses at once instead of timing out.
    cluster
        .kubectl(&["create", "service", "clusterip", "nobody", "--tcp=80:8080"])
        .ok("kubectl create service");
    let ip = cluster_ip(cluster, "nobody");
    // wait until the proxy knows the service (before that, the ClusterIP is not routed at all)
    wait_for(
        "the proxy to program the empty service",
        Duration::from_secs(30),
        || {
            let rules = cluster
                .in_netns(&cluster.node_netns(0), "iptables-save", &["-t", "filter"])
                .stdout;
            if rules.contains(&ip) {
                Ok(())
            } else {
                Err("no rule yet".into())
            }
        },
    );
    let refused = cluster.sh("client-0", "wget -q -O- http://nobody/");
    assert!(!refused.success, "{refused}");
    assert!(
        refused.stderr.contains("refused") || refused.stdout.contains("refused"),
        "expected a refusal: {refused}"
    );
    eprintln!(
        "e2e[{store}]: no ready backend: refused, the whole exec took {:?}",
        refused.elapsed
    );
}

const STATEFUL: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: http, port: 8080, targetPort: http}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: web
        image: demo-web:v1
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /ready, port: 8080}, periodSeconds: 1}
"#;

/// The addresses busybox nslookup printed after the "Name:" line(s).
fn resolved(nslookup: &str) -> BTreeSet<String> {
    let mut after_name = false;
    let mut out = BTreeSet::new();
    for line in nslookup.lines() {
        if line.starts_with("Name:") {
            after_name = true;
        } else if after_name {
            if let Some(a) = line.strip_prefix("Address:") {
                out.insert(a.trim().to_string());
            }
        }
    }
    out
}

fn headless_statefulset_and_srv(cluster: &Cluster) {
    cluster
        .kubectl_input(&["apply", "-f", "-"], Some(STATEFUL))
        .ok("kubectl apply statefulset");
    let out = cluster
        .kubectl(&["rollout", "status", "statefulset/db", "--timeout=120s"])
        .ok("kubectl rollout status statefulset");
    assert!(
        out.contains("partitioned roll out complete") || out.contains("roll out complete"),
        "{out}"
    );
    let db = wait_ready_pods(cluster, "app=db", 2);
    let ips: BTreeSet<String> = db.values().map(|(_, ip)| ip.clone()).collect();

    // headless: every ready pod's address
    let all = wait_for(
        "db to resolve to both pods",
        Duration::from_secs(30),
        || {
            let run = cluster.sh("client-1", "nslookup db.default.svc.cluster.local");
            let got = resolved(&run.stdout);
            if got == ips {
                Ok(got)
            } else {
                Err(run.to_string())
            }
        },
    );
    assert_eq!(all.len(), 2);
    // stable names, also through the search path (busybox's nslookup applies search domains
    // only to names without a dot, so the short forms go through the libc resolver of wget)
    for (name, (_, ip)) in &db {
        let run = cluster.sh(
            "client-2",
            &format!("nslookup {name}.db.default.svc.cluster.local"),
        );
        assert_eq!(resolved(&run.stdout), BTreeSet::from([ip.clone()]), "{run}");
        let answer = cluster
            .sh("client-2", &format!("wget -q -O- http://{name}.db:8080/"))
            .ok("wget by stable name");
        assert!(answer.contains(&format!("hostname={name} ")), "{answer}");
    }
    // kubernetes.default: by nslookup (the FQDN, and the bare name through the search path;
    // the bare name's other search candidates are NXDOMAIN, so nslookup exits 1 as it does on
    // Kubernetes), and by the resolver of wget, which reaches the apiserver through it.
    let kubernetes = cluster_ip(cluster, "kubernetes");
    let run = cluster.sh("client-0", "nslookup kubernetes.default.svc.cluster.local");
    assert_eq!(
        resolved(&run.stdout),
        BTreeSet::from([kubernetes.clone()]),
        "{run}"
    );
    let run = cluster.sh("client-0", "nslookup kubernetes");
    assert!(resolved(&run.stdout).contains(&kubernetes), "{run}");
    let version = cluster
        .sh(
            "client-0",
            "wget -q -O- --no-check-certificate https://kubernetes.default/version",
        )
        .ok("the apiserver by the name kubernetes.default");
    assert!(version.contains("\"gitVersion\""), "{version}");
    // SRV for the named port lists each pod by name
    let run = cluster.sh(
        "client-0",
        "nslookup -type=srv _http._tcp.db.default.svc.cluster.local",
    );
    for name in db.keys() {
        assert!(
            run.stdout
                .contains(&format!("8080 {name}.db.default.svc.cluster.local")),
            "SRV lacks {name}: {run}"
        );
    }
}

fn configmap_change_reaches_the_pod(cluster: &Cluster) {
    let before = cluster
        .minictl(&["exec", "client-0", "--", "cat", "/etc/greeting/message"])
        .ok("read the ConfigMap volume");
    assert_eq!(before, "hello");
    let t = Instant::now();
    cluster
        .kubectl(&[
            "patch",
            "configmap",
            "greeting",
            "-p",
            r#"{"data":{"message":"bonjour"}}"#,
        ])
        .ok("kubectl patch configmap");
    wait_for(
        "the new ConfigMap value in the pod",
        Duration::from_secs(90),
        || {
            let run = cluster.minictl(&["exec", "client-0", "--", "cat", "/etc/greeting/message"]);
            if run.stdout == "bonjour" {
                Ok(())
            } else {
                Err(run.to_string())
            }
        },
    );
    eprintln!(
        "e2e: ConfigMap change visible in the pod after {:?}",
        t.elapsed()
    );
}

/// The same command through kubectl and minictl: exit status, stdout and stderr must match.
fn same(cluster: &Cluster, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut kubectl = cluster.kubectl_command(args);
    let mut minictl = cluster.minictl_command(args);
    for (k, v) in env {
        kubectl.env(k, v);
        minictl.env(k, v);
    }
    let k = e2e::run(kubectl, None, Duration::from_secs(60));
    let m = e2e::run(minictl, None, Duration::from_secs(60));
    assert_eq!(
        (k.success, &k.stdout, &k.stderr),
        (m.success, &m.stdout, &m.stderr),
        "kubectl and minictl differ on {args:?}\nkubectl: {k}\nminictl: {m}"
    );
    k.stdout
}

fn logs_exec_and_edit_side_by_side(cluster: &Cluster) {
    let web = ready_pods(cluster, "app=web");
    let pod = web.keys().next().expect("a web pod").clone();
    let logs = same(cluster, &["logs", &pod], &[]);
    assert!(logs.contains("demo-web v1 listening on :8080"), "{logs}");
    same(cluster, &["logs", &pod, "--tail", "1"], &[]);
    same(cluster, &["logs", &pod, "-c", "demo-web"], &[]);
    let out = same(
        cluster,
        &["exec", "client-0", "--", "cat", "/etc/greeting/message"],
        &[],
    );
    assert!(out == "hello" || out == "bonjour", "{out}");
    // stdout, stderr and a failing exit status travel back the same way
    same(
        cluster,
        &[
            "exec",
            "client-0",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
        &[],
    );
    same(
        cluster,
        &["exec", "client-0", "-c", "sh", "--", "hostname"],
        &[],
    );
    same(cluster, &["exec", "no-such-pod", "--", "true"], &[]);
    let info = same(cluster, &["cluster-info"], &[]);
    assert!(info.contains("CoreDNS is running at"), "{info}");

    // edit: the same editor script through both tools
    let dir = tempfile::tempdir().expect("tempdir");
    let editor = dir.path().join("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\nsed -i 's/first/second/' \"$1\"\n").unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let editor = editor.to_string_lossy().to_string();
    for tool in ["kubectl", "minictl"] {
        let name = format!("edit-{tool}");
        cluster
            .kubectl(&["create", "configmap", &name, "--from-literal=word=first"])
            .ok("create configmap");
        let args = ["edit", "configmap", name.as_str()];
        let run = if tool == "kubectl" {
            let mut cmd = cluster.kubectl_command(&args);
            cmd.env("KUBE_EDITOR", &editor);
            e2e::run(cmd, None, Duration::from_secs(60))
        } else {
            let mut cmd = cluster.minictl_command(&args);
            cmd.env("KUBE_EDITOR", &editor);
            e2e::run(cmd, None, Duration::from_secs(60))
        };
        assert_eq!(
            run.stdout,
            format!("configmap/{name} edited\n"),
            "{tool}: {run}"
        );
        let word = cluster.get_json(&["configmap", &name])["data"]["word"].clone();
        assert_eq!(word, "second", "{tool}");
    }
    // nothing to change: both cancel the same way
    same(
        cluster,
        &["edit", "configmap", "edit-kubectl"],
        &[("KUBE_EDITOR", &editor)],
    );
}

/// Runs a request loop from `client` on a thread until `/tmp/stop` exists in the client; returns
/// the loop's answers when joined.
fn background_requests(cluster: &Cluster, client: &str) -> thread::JoinHandle<String> {
    cluster
        .sh(client, "rm -f /tmp/stop")
        .ok("reset the stop file");
    let minictl = cluster.minictl_command(&[
        "exec",
        client,
        "--",
        "sh",
        "-c",
        // bounded: at most 3 minutes even if the stop file never comes
        "end=$(( $(date +%s) + 180 )); while [ ! -e /tmp/stop ] && [ $(date +%s) -lt $end ]; do wget -q -O- http://web/ 2>&1 || echo FAIL; done",
    ]);
    thread::spawn(move || e2e::run(minictl, None, Duration::from_secs(200)).stdout)
}

fn stop_background(cluster: &Cluster, client: &str, handle: thread::JoinHandle<String>) -> String {
    cluster
        .sh(client, "touch /tmp/stop")
        .ok("stop the request loop");
    handle.join().expect("request loop")
}

/// The versions of the answers, in order, with runs collapsed: e.g. ["v1", "v2"].
fn version_runs(answers: &str) -> Vec<String> {
    let mut runs: Vec<String> = Vec::new();
    for v in answers.lines().filter_map(|l| {
        l.split_whitespace()
            .find_map(|w| w.strip_prefix("version="))
    }) {
        if runs.last().map(String::as_str) != Some(v) {
            runs.push(v.to_string());
        }
    }
    runs
}

fn rolling_update_and_undo_answer_throughout(cluster: &Cluster) {
    let loop_v2 = background_requests(cluster, "client-1");
    thread::sleep(Duration::from_secs(1));
    let out = cluster
        .minictl(&["set", "image", "deployment/web", "demo-web=demo-web:v2"])
        .ok("minictl set image");
    assert!(out.contains("deployment.apps/web image updated"), "{out}");
    let status = cluster
        .minictl(&["rollout", "status", "deployment/web", "--timeout", "180s"])
        .ok("minictl rollout status");
    assert!(status.contains("successfully rolled out"), "{status}");
    thread::sleep(Duration::from_secs(1));
    let answers = stop_background(cluster, "client-1", loop_v2);
    let failures = answers.lines().filter(|l| l.contains("FAIL")).count();
    let total = backends(&answers).values().sum::<usize>();
    assert_eq!(
        failures, 0,
        "{failures} failed requests of {total} during the rollout:\n{answers}"
    );
    assert!(total > 20, "too few requests during the rollout: {answers}");
    let runs = version_runs(&answers);
    assert_eq!(runs.first().map(String::as_str), Some("v1"), "{runs:?}");
    assert_eq!(runs.last().map(String::as_str), Some("v2"), "{runs:?}");
    eprintln!(
        "e2e: rollout v1 → v2: {total} requests, 0 failed, {} switches between versions",
        runs.len() - 1
    );

    let history = cluster
        .kubectl(&["rollout", "history", "deployment/web"])
        .ok("kubectl rollout history");
    assert!(history.contains("REVISION"), "{history}");

    let loop_undo = background_requests(cluster, "client-2");
    thread::sleep(Duration::from_secs(1));
    let out = cluster
        .minictl(&["rollout", "undo", "deployment/web"])
        .ok("minictl rollout undo");
    assert!(out.contains("deployment.apps/web rolled back"), "{out}");
    let status = cluster
        .kubectl(&["rollout", "status", "deployment/web", "--timeout=180s"])
        .ok("kubectl rollout status");
    assert!(status.contains("successfully rolled out"), "{status}");
    thread::sleep(Duration::from_secs(1));
    let answers = stop_background(cluster, "client-2", loop_undo);
    let failures = answers.lines().filter(|l| l.contains("FAIL")).count();
    let total = backends(&answers).values().sum::<usize>();
    assert_eq!(
        failures, 0,
        "{failures} failed requests of {total} during the undo:\n{answers}"
    );
    let runs = version_runs(&answers);
    assert_eq!(runs.last().map(String::as_str), Some("v1"), "{runs:?}");
    let image = cluster.get_json(&["deployment", "web"])["spec"]["template"]["spec"]["containers"]
        [0]["image"]
        .clone();
    assert_eq!(image, "demo-web:v1");
}

fn lost_node_pods_come_back_elsewhere(cluster: &Cluster) {
    let web = wait_ready_pods(cluster, "app=web", 3);
    // the node with the most web pods
    let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
    for (node, _) in web.values() {
        *per_node.entry(node.as_str()).or_default() += 1;
    }
    let lost = per_node
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(node, _)| node.to_string())
        .unwrap();
    let lost_index = (0..NODES)
        .find(|&i| cluster.node_name(i) == lost)
        .expect("node index");
    let pid = cluster
        .component_pid(&format!("kubelet-{lost}"))
        .expect("kubelet pid in cluster status");
    let t = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the kubelet");

    // kubectl shows the node NotReady
    wait_for(&format!("{lost} NotReady"), Duration::from_secs(90), || {
        let nodes = cluster.kubectl(&["get", "nodes", "--no-headers"]).stdout;
        let line = nodes
            .lines()
            .find(|l| l.starts_with(&format!("{lost} ")))
            .unwrap_or_default()
            .to_string();
        if line.contains(" NotReady ") {
            Ok(())
        } else {
            Err(nodes)
        }
    });
    eprintln!(
        "e2e: {lost} NotReady {:?} after its kubelet was killed",
        t.elapsed()
    );
    // 3 ready web pods again, none on the lost node, answering through the service from a pod
    // on a surviving node
    let moved = wait_for(
        "web pods back on the other nodes",
        Duration::from_secs(120),
        || {
            let pods = ready_pods(cluster, "app=web");
            if pods.len() == 3 && pods.values().all(|(n, _)| *n != lost) {
                Ok(pods)
            } else {
                let all = cluster.kubectl(&["get", "pods", "-A", "-o", "wide"]).stdout;
                let nodes = cluster
                    .kubectl(&[
                        "get",
                        "nodes",
                        "-o",
                        "custom-columns=NAME:.metadata.name,TAINTS:.spec.taints",
                    ])
                    .stdout;
                Err(format!("{pods:?}\n{all}\n{nodes}"))
            }
        },
    );
    eprintln!(
        "e2e: web pods running elsewhere {:?} after the kill",
        t.elapsed()
    );
    let survivor = (0..NODES)
        .find(|&i| i != lost_index)
        .map(|i| format!("client-{i}"))
        .unwrap();
    let answers = wait_for(
        "the service to answer from the moved pods",
        Duration::from_secs(60),
        || {
            let answers = requests(cluster, &survivor, "http://web/", 30);
            let seen = backends(&answers);
            if !answers.contains("FAIL")
                && seen.keys().all(|k| moved.contains_key(k))
                && seen.len() == 3
            {
                Ok(seen)
            } else {
                Err(answers)
            }
        },
    );
    assert_eq!(answers.len(), 3);
    // DNS still answers (its pods may have moved too)
    let run = cluster.sh(&survivor, "nslookup web.default.svc.cluster.local");
    assert!(
        resolved(&run.stdout).contains(&cluster_ip(cluster, "web")),
        "{run}"
    );
}
