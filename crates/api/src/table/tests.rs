//! Tests of the Table printers against cells upstream's printers produce for the same objects.

use super::*;
use crate::registry;

const NOW: &str = "2024-05-01T12:00:00Z";

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

fn table(plural: &str, group: &str, version: &str, obj: Value) -> Value {
    let r = registry::find(group, version, plural).unwrap();
    to_table_at(
        r,
        &[obj],
        IncludeObject::Metadata,
        json!({"resourceVersion": "7"}),
        now(),
    )
}

fn cells(plural: &str, group: &str, version: &str, obj: Value) -> Vec<Value> {
    let t = table(plural, group, version, obj);
    t["rows"][0]["cells"].as_array().unwrap().clone()
}

fn pod(status: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default",
                     "creationTimestamp": "2024-05-01T11:55:00Z"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], "nodeName": "n1"},
        "status": status,
    })
}

#[test]
fn human_duration_matches_upstream() {
    let cases = [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (182, "3m2s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (5 * 3600 + 3 * 60, "5h3m"),
        (8 * 3600, "8h"),
        (47 * 3600 + 59 * 60, "47h"),
        (2 * 86400 + 3 * 3600, "2d3h"),
        (3 * 86400, "3d"),
        (8 * 86400, "8d"),
        (400 * 86400, "400d"),
        (2 * 365 * 86400 + 10 * 86400, "2y10d"),
        (9 * 365 * 86400, "9y"),
    ];
    for (secs, want) in cases {
        assert_eq!(human_duration(secs), want, "{secs}s");
    }
}

#[test]
fn table_shape_and_columns() {
    let t = table("pods", "", "v1", pod(json!({"phase": "Pending"})));
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(t["metadata"]["resourceVersion"], "7");
    let cols: Vec<(&str, i64)> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["priority"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        cols,
        vec![
            ("Name", 0),
            ("Ready", 0),
            ("Status", 0),
            ("Restarts", 0),
            ("Age", 0),
            ("IP", 1),
            ("Node", 1),
            ("Nominated Node", 1),
            ("Readiness Gates", 1)
        ]
    );
    assert_eq!(t["columnDefinitions"][0]["format"], "name");
    let obj = &t["rows"][0]["object"];
    assert_eq!(obj["kind"], "PartialObjectMetadata");
    assert_eq!(obj["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(obj["metadata"]["namespace"], "default");
    assert!(obj.get("spec").is_none());
    let r = registry::find("", "v1", "pods").unwrap();
    let full = to_table_at(
        r,
        &[pod(json!({}))],
        IncludeObject::Object,
        json!({}),
        now(),
    );
    assert_eq!(full["rows"][0]["object"]["kind"], "Pod");
    let none = to_table_at(r, &[pod(json!({}))], IncludeObject::None, json!({}), now());
    assert!(none["rows"][0]["object"].is_null());
    assert_eq!(IncludeObject::parse("Object"), Ok(IncludeObject::Object));
    assert_eq!(IncludeObject::parse(""), Ok(IncludeObject::Metadata));
    assert!(IncludeObject::parse("Everything").is_err());
}

#[test]
fn pending_pod() {
    let c = cells("pods", "", "v1", pod(json!({"phase": "Pending"})));
    assert_eq!(
        c,
        vec![
            json!("web"),
            json!("0/1"),
            json!("Pending"),
            json!("0"),
            json!("5m"),
            json!("<none>"),
            json!("n1"),
            json!("<none>"),
            json!("<none>")
        ]
    );
}

#[test]
fn running_pod_with_restarts() {
    let c = cells(
        "pods",
        "",
        "v1",
        pod(json!({
            "phase": "Running",
            "podIP": "10.244.1.5",
            "podIPs": [{"ip": "10.244.1.5"}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{
                "name": "c", "ready": true, "restartCount": 2,
                "state": {"running": {"startedAt": "2024-05-01T11:58:00Z"}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:57:00Z"}}
            }]
        })),
    );
    assert_eq!(c[1], "1/1");
    assert_eq!(c[2], "Running");
    assert_eq!(c[3], "2 (3m ago)");
    assert_eq!(c[5], "10.244.1.5");
}

#[test]
fn crash_loop_back_off_pod() {
    let c = cells(
        "pods",
        "",
        "v1",
        pod(json!({
            "phase": "Running",
            "containerStatuses": [{
                "name": "c", "ready": false, "restartCount": 5,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                             "finishedAt": "2024-05-01T11:59:30Z"}}
            }]
        })),
    );
    assert_eq!(c[1], "0/1");
    assert_eq!(c[2], "CrashLoopBackOff");
    assert_eq!(c[3], "5 (30s ago)");
}

#[test]
fn terminated_pods() {
    let oom = cells(
        "pods",
        "",
        "v1",
        pod(json!({"phase": "Running", "containerStatuses": [{
            "name": "c", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]})),
    );
    assert_eq!(oom[2], "OOMKilled");
    let exit = cells(
        "pods",
        "",
        "v1",
        pod(json!({"phase": "Failed", "containerStatuses": [{
            "name": "c", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 3}}}]})),
    );
    assert_eq!(exit[2], "ExitCode:3");
    let t = table(
        "pods",
        "",
        "v1",
        pod(json!({"phase": "Succeeded", "containerStatuses": [{
            "name": "c", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]})),
    );
    assert_eq!(t["rows"][0]["cells"][2], "Completed");
    assert_eq!(t["rows"][0]["conditions"][0]["reason"], "Succeeded");
}

#[test]
fn init_container_pods() {
    let mut p = pod(json!({
        "phase": "Pending",
        "initContainerStatuses": [{
            "name": "init", "ready": false, "restartCount": 0,
            "state": {"running": {"startedAt": "2024-05-01T11:59:00Z"}}
        }],
        "containerStatuses": [{"name": "c", "ready": false, "restartCount": 0,
                               "state": {"waiting": {"reason": "PodInitializing"}}}]
    }));
    p["spec"]["initContainers"] = json!([{"name": "init", "image": "busybox"}]);
    assert_eq!(cells("pods", "", "v1", p.clone())[2], "Init:0/1");

    p["status"]["initContainerStatuses"][0]["state"] =
        json!({"waiting": {"reason": "ErrImagePull"}});
    assert_eq!(cells("pods", "", "v1", p.clone())[2], "Init:ErrImagePull");

    p["status"]["initContainerStatuses"][0]["state"] =
        json!({"terminated": {"exitCode": 2, "reason": "Error"}});
    assert_eq!(cells("pods", "", "v1", p.clone())[2], "Init:Error");

    // init done, main container still being prepared
    p["status"]["initContainerStatuses"][0]["state"] =
        json!({"terminated": {"exitCode": 0, "reason": "Completed"}});
    assert_eq!(cells("pods", "", "v1", p.clone())[2], "PodInitializing");

    // a sidecar (restartable init container) counts as a container
    p["spec"]["initContainers"][0]["restartPolicy"] = json!("Always");
    p["status"]["initContainerStatuses"][0]["state"] =
        json!({"running": {"startedAt": "2024-05-01T11:59:00Z"}});
    p["status"]["initContainerStatuses"][0]["started"] = json!(true);
    p["status"]["initContainerStatuses"][0]["ready"] = json!(true);
    p["status"]["containerStatuses"][0] = json!({"name": "c", "ready": true, "restartCount": 0,
        "state": {"running": {"startedAt": "2024-05-01T11:59:30Z"}}});
    p["status"]["phase"] = json!("Running");
    let c = cells("pods", "", "v1", p);
    assert_eq!(c[1], "2/2");
    assert_eq!(c[2], "Running");
}

#[test]
fn terminating_and_lost_pods() {
    let mut p = pod(json!({"phase": "Running"}));
    p["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:00Z");
    assert_eq!(cells("pods", "", "v1", p.clone())[2], "Terminating");
    p["status"]["reason"] = json!("NodeLost");
    assert_eq!(cells("pods", "", "v1", p.clone())[2], "Unknown");
    let mut done = pod(json!({"phase": "Succeeded"}));
    done["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:00Z");
    assert_eq!(cells("pods", "", "v1", done)[2], "Succeeded");
}

#[test]
fn readiness_gates_and_nominated_node() {
    let mut p = pod(json!({
        "phase": "Running",
        "nominatedNodeName": "n2",
        "conditions": [{"type": "example.com/ready", "status": "True"}]
    }));
    p["spec"]["readinessGates"] = json!([
        {"conditionType": "example.com/ready"},
        {"conditionType": "example.com/other"}
    ]);
    let c = cells("pods", "", "v1", p);
    assert_eq!(c[7], "n2");
    assert_eq!(c[8], "1/2");
}

#[test]
fn nodes() {
    let node = json!({
        "metadata": {"name": "n1", "creationTimestamp": "2024-04-29T09:00:00Z",
                     "labels": {"node-role.kubernetes.io/control-plane": "",
                                "node-role.kubernetes.io/worker": "",
                                "kubernetes.io/role": "edge"}},
        "spec": {"unschedulable": true},
        "status": {
            "conditions": [{"type": "MemoryPressure", "status": "False"},
                           {"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "192.168.77.11"},
                          {"type": "Hostname", "address": "n1"}],
            "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Debian GNU/Linux 12",
                         "kernelVersion": "6.1.0", "containerRuntimeVersion": "minirun://0.1.0"}
        }
    });
    let c = cells("nodes", "", "v1", node.clone());
    assert_eq!(
        c,
        vec![
            json!("n1"),
            json!("Ready,SchedulingDisabled"),
            json!("control-plane,edge,worker"),
            json!("2d3h"),
            json!("v1.33.0"),
            json!("192.168.77.11"),
            json!("<none>"),
            json!("Debian GNU/Linux 12"),
            json!("6.1.0"),
            json!("minirun://0.1.0")
        ]
    );
    let bare = json!({"metadata": {"name": "n2"}, "status": {"conditions": [
        {"type": "Ready", "status": "Unknown"}]}});
    let c = cells("nodes", "", "v1", bare);
    assert_eq!(c[1], "NotReady");
    assert_eq!(c[2], "<none>");
    assert_eq!(c[3], "<unknown>");
    assert_eq!(c[7], "<unknown>");
    let c = cells("nodes", "", "v1", json!({"metadata": {"name": "n3"}}));
    assert_eq!(c[1], "Unknown");
}

#[test]
fn services() {
    let svc = json!({
        "metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:00:00Z"},
        "spec": {"type": "NodePort", "clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"],
                 "selector": {"tier": "front", "app": "web"},
                 "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080, "protocol": "TCP"},
                           {"port": 53, "protocol": "UDP"}]}
    });
    assert_eq!(
        cells("services", "", "v1", svc),
        vec![
            json!("web"),
            json!("NodePort"),
            json!("10.96.0.20"),
            json!("<none>"),
            json!("80:30080/TCP,53/UDP"),
            json!("60m"),
            json!("app=web,tier=front")
        ]
    );
    let headless = json!({"metadata": {"name": "db"},
        "spec": {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"]}});
    let c = cells("services", "", "v1", headless);
    assert_eq!(c[2], "None");
    assert_eq!(c[4], "<none>");
    assert_eq!(c[6], "<none>");
    let lb = json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer",
        "clusterIPs": ["10.96.0.9"], "ports": [{"port": 443, "protocol": "TCP", "nodePort": 31443}]}});
    assert_eq!(cells("services", "", "v1", lb)[3], "<pending>");
    let ext = json!({"metadata": {"name": "x"}, "spec": {"type": "ExternalName",
        "externalName": "example.com"}});
    let c = cells("services", "", "v1", ext);
    assert_eq!(c[2], "<none>");
    assert_eq!(c[3], "example.com");
}

#[test]
fn endpoints_and_slices() {
    let ep = json!({"metadata": {"name": "web"}, "subsets": [{
        "addresses": [{"ip": "10.244.1.2"}, {"ip": "10.244.1.3"}, {"ip": "10.244.2.2"},
                      {"ip": "10.244.2.3"}, {"ip": "fd00::1"}],
        "ports": [{"port": 8080, "protocol": "TCP"}]}]});
    assert_eq!(
        cells("endpoints", "", "v1", ep)[1],
        "10.244.1.2:8080,10.244.1.3:8080,10.244.2.2:8080 + 2 more..."
    );
    let v6 = json!({"metadata": {"name": "v6"}, "subsets": [{
        "addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}]});
    assert_eq!(cells("endpoints", "", "v1", v6)[1], "[fd00::1]:80");
    let empty = json!({"metadata": {"name": "e"}});
    assert_eq!(cells("endpoints", "", "v1", empty)[1], "<none>");
    let slice = json!({"metadata": {"name": "web-abc"}, "addressType": "IPv4",
        "ports": [{"port": 8080, "name": "http"}, {"name": "metrics"}],
        "endpoints": [{"addresses": ["10.244.1.2"]}, {"addresses": ["10.244.1.3"]}]});
    let c = cells("endpointslices", "discovery.k8s.io", "v1", slice);
    assert_eq!(c[1], "IPv4");
    assert_eq!(c[2], "8080,metrics");
    assert_eq!(c[3], "10.244.1.2,10.244.1.3");
    let empty = json!({"metadata": {"name": "e"}, "addressType": "IPv4"});
    let c = cells("endpointslices", "discovery.k8s.io", "v1", empty);
    assert_eq!(c[2], "<unset>");
    assert_eq!(c[3], "<unset>");
}

#[test]
fn workloads() {
    let template = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
        {"name": "web", "image": "demo-web:v1"}, {"name": "side", "image": "busybox"}]}});
    let deploy = json!({"metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:59:58Z"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}]},
            "template": template},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
    assert_eq!(
        cells("deployments", "apps", "v1", deploy),
        vec![
            json!("web"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("2s"),
            json!("web,side"),
            json!("demo-web:v1,busybox"),
            json!("app=web,env in (dev,prod)")
        ]
    );
    let rs = json!({"metadata": {"name": "web-1"}, "spec": {"replicas": 2,
        "selector": {"matchLabels": {"app": "web"}}, "template": template},
        "status": {"replicas": 2, "readyReplicas": 1}});
    let c = cells("replicasets", "apps", "v1", rs);
    assert_eq!(c[1..4], [json!(2), json!(2), json!(1)]);
    assert_eq!(c[7], "app=web");
    let sts = json!({"metadata": {"name": "db"}, "spec": {"template": template},
        "status": {"readyReplicas": 1}});
    let c = cells("statefulsets", "apps", "v1", sts);
    assert_eq!(c[1], "1/1");
    assert_eq!(c.len(), 5);
    let ds = json!({"metadata": {"name": "agent"}, "spec": {"selector": {"matchLabels": {"app": "a"}},
        "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": []}}},
        "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                   "updatedNumberScheduled": 3, "numberAvailable": 2}});
    let c = cells("daemonsets", "apps", "v1", ds);
    assert_eq!(
        c[1..7],
        [
            json!(3),
            json!(3),
            json!(2),
            json!(3),
            json!(2),
            json!("kubernetes.io/os=linux")
        ]
    );
    let cr = json!({"metadata": {"name": "db-7c9", "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "uid": "u", "controller": true}]},
        "revision": 4});
    let c = cells("controllerrevisions", "apps", "v1", cr);
    assert_eq!(c[1], "statefulset.apps/db");
    assert_eq!(c[2], 4);
}

#[test]
fn jobs() {
    let job = json!({"metadata": {"name": "pi"}, "spec": {"completions": 3, "template": {"spec": {
        "containers": [{"name": "pi", "image": "perl"}]}}},
        "status": {"succeeded": 3, "startTime": "2024-05-01T11:00:00Z",
                   "completionTime": "2024-05-01T11:02:05Z",
                   "conditions": [{"type": "Complete", "status": "True"}]}});
    let c = cells("jobs", "batch", "v1", job);
    assert_eq!(c[1..4], [json!("Complete"), json!("3/3"), json!("2m5s")]);
    let running = json!({"metadata": {"name": "p"}, "spec": {"parallelism": 2},
        "status": {"startTime": "2024-05-01T11:59:00Z"}});
    let c = cells("jobs", "batch", "v1", running);
    assert_eq!(c[1..4], [json!("Running"), json!("0/1 of 2"), json!("60s")]);
}

#[test]
fn events_both_versions() {
    let ev = json!({"metadata": {"name": "web.17a"}, "type": "Warning", "reason": "BackOff",
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{c}"},
        "source": {"component": "kubelet", "host": "n1"},
        "message": "Back-off restarting failed container\n", "count": 7,
        "firstTimestamp": "2024-05-01T11:00:00Z", "lastTimestamp": "2024-05-01T11:59:00Z"});
    assert_eq!(
        cells("events", "", "v1", ev),
        vec![
            json!("60s"),
            json!("Warning"),
            json!("BackOff"),
            json!("pod/web"),
            json!("spec.containers{c}"),
            json!("kubelet, n1"),
            json!("Back-off restarting failed container"),
            json!("60m"),
            json!(7),
            json!("web.17a")
        ]
    );
    let v1 = json!({"metadata": {"name": "e2"}, "type": "Normal", "reason": "Scheduled",
        "regarding": {"kind": "Pod", "name": "web"}, "note": "Successfully assigned",
        "reportingController": "default-scheduler", "eventTime": "2024-05-01T11:58:00.000000Z"});
    let c = cells("events", "events.k8s.io", "v1", v1);
    assert_eq!(c[0], "2m");
    assert_eq!(c[3], "pod/web");
    assert_eq!(c[5], "default-scheduler");
    assert_eq!(c[7], "2m");
    assert_eq!(c[8], 1);
}

#[test]
fn small_kinds() {
    let ns = json!({"metadata": {"name": "default", "creationTimestamp": "2024-05-01T12:00:00Z"},
        "status": {"phase": "Active"}});
    assert_eq!(
        cells("namespaces", "", "v1", ns),
        vec![json!("default"), json!("Active"), json!("0s")]
    );
    let cm = json!({"metadata": {"name": "cfg"}, "data": {"a": "1", "b": "2"},
        "binaryData": {"c": "AA=="}});
    assert_eq!(cells("configmaps", "", "v1", cm)[1], 3);
    let secret = json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "MQ=="}});
    assert_eq!(
        cells("secrets", "", "v1", secret)[1..3],
        [json!("Opaque"), json!(1)]
    );
    let sa = json!({"metadata": {"name": "default"}});
    assert_eq!(cells("serviceaccounts", "", "v1", sa)[1], 0);
    let lease = json!({"metadata": {"name": "n1"}, "spec": {"holderIdentity": "n1"}});
    assert_eq!(cells("leases", "coordination.k8s.io", "v1", lease)[1], "n1");
    let pvc = json!({"metadata": {"name": "data"}, "spec": {"volumeName": "pv1",
        "storageClassName": "local"}, "status": {"phase": "Bound",
        "accessModes": ["ReadWriteOnce", "ReadOnlyMany"], "capacity": {"storage": "1Gi"}}});
    assert_eq!(
        cells("persistentvolumeclaims", "", "v1", pvc)[1..7],
        [
            json!("Bound"),
            json!("pv1"),
            json!("1Gi"),
            json!("RWO,ROX"),
            json!("local"),
            json!("<unset>")
        ]
    );
    let pv = json!({"metadata": {"name": "pv1"}, "spec": {"capacity": {"storage": "1Gi"},
        "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Retain",
        "claimRef": {"namespace": "default", "name": "data"}}, "status": {"phase": "Bound"}});
    assert_eq!(
        cells("persistentvolumes", "", "v1", pv)[1..6],
        [
            json!("1Gi"),
            json!("RWO"),
            json!("Retain"),
            json!("Bound"),
            json!("default/data")
        ]
    );
    let hpa = json!({"metadata": {"name": "web"}, "spec": {"scaleTargetRef":
        {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 5,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 50}}}]},
        "status": {"currentReplicas": 2, "currentMetrics": [{"type": "Resource",
            "resource": {"name": "cpu", "current": {"averageUtilization": 20}}}]}});
    assert_eq!(
        cells("horizontalpodautoscalers", "autoscaling", "v2", hpa)[1..6],
        [
            json!("Deployment/web"),
            json!("cpu: 20%/50%"),
            json!("1"),
            json!(5),
            json!(2)
        ]
    );
}

#[test]
fn role_bindings_show_role_and_subjects() {
    const RBAC: &str = "rbac.authorization.k8s.io";
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
    "metadata": {"name": "readers", "namespace": "default",
                 "creationTimestamp": "2024-05-01T11:00:00Z"},
    "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "view"},
    "subjects": [
        {"kind": "User", "name": "jane", "apiGroup": RBAC},
        {"kind": "ServiceAccount", "name": "builder", "namespace": "ci"},
        {"kind": "Group", "name": "devs", "apiGroup": RBAC},
        {"kind": "User", "name": "joe", "apiGroup": RBAC},
    ]});
    assert_eq!(
        cells("rolebindings", RBAC, "v1", binding.clone()),
        vec![
            json!("readers"),
            json!("ClusterRole/view"),
            json!("60m"),
            json!("jane, joe"),
            json!("devs"),
            json!("ci/builder"),
        ]
    );
    let t = table("clusterrolebindings", RBAC, "v1", binding);
    let names: Vec<(&str, i64)> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["priority"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("Name", 0),
            ("Role", 0),
            ("Age", 0),
            ("Users", 1),
            ("Groups", 1),
            ("ServiceAccounts", 1)
        ]
    );
    assert_eq!(
        t["columnDefinitions"][3]["description"],
        "Users in the clusterRoleBinding"
    );
}

#[test]
fn roles_show_name_and_creation_time() {
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "view", "creationTimestamp": "2024-05-01T11:00:00.000000Z"},
        "rules": []});
    assert_eq!(
        cells("clusterroles", "rbac.authorization.k8s.io", "v1", role),
        vec![json!("view"), json!("2024-05-01T11:00:00Z")]
    );
}
