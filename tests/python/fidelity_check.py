"""Wire fidelity through the official Python client (PyPI `kubernetes`): for every kind the
server serves, a create/get/list/watch/error round trip through the typed API, whose models
(pydantic ones in the newest releases) must accept every response; Status bodies of the errors
compared byte for byte with upstream's; `utils.create_from_yaml` of a multi-document manifest.

Usage: fidelity_check.py KUBECONFIG SUFFIX (SUFFIX keeps two runs' objects apart).
Exits non-zero with the failing check's message."""

import json
import os
import sys
import tempfile

from kubernetes import client, config, utils, watch
from kubernetes.client.rest import ApiException


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def status_bytes(message, reason, details, code):
    """A Status body exactly as upstream's apiserver writes it (Go's field order, `\\n`)."""
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return json.dumps(body, separators=(",", ":")) + "\n"


def template(app):
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "busybox:latest"}]},
    }


def kinds(suffix):
    """(api, snake name, namespaced, group, plural, expected model class name, body)."""
    core = client.CoreV1Api()
    apps = client.AppsV1Api()
    app = f"fid-{suffix}"
    sel = {"matchLabels": {"app": app}}
    return [
        (core, "namespace", False, "", "namespaces", "V1Namespace", {}),
        (core, "pod", True, "", "pods", "V1Pod", {"spec": template(app)["spec"]}),
        (core, "node", False, "", "nodes", "V1Node", {}),
        (core, "service", True, "", "services", "V1Service",
         {"spec": {"ports": [{"port": 80}], "selector": {"app": app}}}),
        (core, "endpoints", True, "", "endpoints", "V1Endpoints",
         {"subsets": [{"addresses": [{"ip": "10.1.2.3"}], "ports": [{"port": 80}]}]}),
        (core, "config_map", True, "", "configmaps", "V1ConfigMap", {"data": {"k": "v"}}),
        (core, "secret", True, "", "secrets", "V1Secret", {"stringData": {"k": "v"}}),
        (core, "event", True, "", "events", "CoreV1Event",
         {"involvedObject": {"kind": "Pod", "name": "x", "namespace": "default"},
          "reason": "Checked", "message": "fidelity", "type": "Normal"}),
        (core, "service_account", True, "", "serviceaccounts", "V1ServiceAccount", {}),
        (core, "persistent_volume_claim", True, "", "persistentvolumeclaims",
         "V1PersistentVolumeClaim",
         {"spec": {"accessModes": ["ReadWriteOnce"],
                   "resources": {"requests": {"storage": "1Gi"}}}}),
        (core, "persistent_volume", False, "", "persistentvolumes", "V1PersistentVolume",
         {"spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                   "hostPath": {"path": "/tmp/fidelity"}}}),
        (core, "replication_controller", True, "", "replicationcontrollers",
         "V1ReplicationController",
         {"spec": {"replicas": 0, "selector": {"app": app}, "template": template(app)}}),
        (apps, "deployment", True, "apps", "deployments", "V1Deployment",
         {"spec": {"replicas": 0, "selector": sel, "template": template(app)}}),
        (apps, "replica_set", True, "apps", "replicasets", "V1ReplicaSet",
         {"spec": {"replicas": 0, "selector": sel, "template": template(app)}}),
        (apps, "stateful_set", True, "apps", "statefulsets", "V1StatefulSet",
         {"spec": {"replicas": 0, "serviceName": app, "selector": sel,
                   "template": template(app)}}),
        (apps, "daemon_set", True, "apps", "daemonsets", "V1DaemonSet",
         {"spec": {"selector": sel, "template": template(app)}}),
        (apps, "controller_revision", True, "apps", "controllerrevisions",
         "V1ControllerRevision", {"revision": 1, "data": {"k": "v"}}),
        (client.BatchV1Api(), "job", True, "batch", "jobs", "V1Job",
         {"spec": {"suspend": True, "template": {
             "spec": {"restartPolicy": "Never",
                      "containers": [{"name": "c", "image": "busybox:latest"}]}}}}),
        (client.CoordinationV1Api(), "lease", True, "coordination.k8s.io", "leases",
         "V1Lease", {"spec": {"holderIdentity": "fidelity"}}),
        (client.SchedulingV1Api(), "priority_class", False, "scheduling.k8s.io",
         "priorityclasses", "V1PriorityClass", {"value": 1000}),
        (client.DiscoveryV1Api(), "endpoint_slice", True, "discovery.k8s.io",
         "endpointslices", "V1EndpointSlice",
         {"addressType": "IPv4", "endpoints": [{"addresses": ["10.1.2.3"]}]}),
        (client.AutoscalingV2Api(), "horizontal_pod_autoscaler", True, "autoscaling",
         "horizontalpodautoscalers", "V2HorizontalPodAutoscaler",
         {"spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                      "name": app}, "maxReplicas": 3}}),
        (client.EventsV1Api(), "event", True, "events.k8s.io", "events", "EventsV1Event",
         {"eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "fidelity/check",
          "reportingInstance": "fidelity", "action": "Check", "reason": "Checked",
          "regarding": {"kind": "Pod", "name": "x", "namespace": "default"},
          "type": "Normal"}),
    ]


def call(api, verb, snake, namespaced, ns, *args, **kwargs):
    """`api.<verb>_[namespaced_]<snake>`: read takes (name, namespace), create and list
    (namespace, ...)."""
    if not namespaced:
        return getattr(api, f"{verb}_{snake}")(*args, **kwargs)
    method = getattr(api, f"{verb}_namespaced_{snake}")
    if verb == "read":
        return method(args[0], ns, **kwargs)
    return method(ns, *args, **kwargs)


def round_trip(api, snake, namespaced, group, plural, model, body, ns, suffix):
    name = f"fid-{snake.replace('_', '-')}-{suffix}"
    label = {"fidelity": f"{snake.replace('_', '-')}-{suffix}"}
    obj = dict(body)
    obj["metadata"] = {"name": name, "labels": label}
    what = f"{group or 'core'}/{plural}"
    created = call(api, "create", snake, namespaced, ns, obj)
    check(type(created).__name__ == model, f"{what}: create gave {type(created).__name__}")
    check(created.metadata.uid, f"{what}: created object has a uid")
    got = call(api, "read", snake, namespaced, ns, name)
    check(type(got).__name__ == model and got.metadata.name == name, f"{what}: get")
    listed = call(api, "list", snake, namespaced, ns,
                  label_selector=f"fidelity={label['fidelity']}")
    check([o.metadata.name for o in listed.items] == [name], f"{what}: list")
    w = watch.Watch()
    seen = None
    for ev in w.stream(getattr(api, f"list_namespaced_{snake}" if namespaced else f"list_{snake}"),
                       *([ns] if namespaced else []),
                       label_selector=f"fidelity={label['fidelity']}", timeout_seconds=5):
        seen = ev
        w.stop()
    check(seen is not None and seen["type"] == "ADDED", f"{what}: watch ADDED")
    check(type(seen["object"]).__name__ == model, f"{what}: watch object typed")
    # Errors: AlreadyExists and NotFound, in upstream's exact bytes.
    details = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = plural
    try:
        call(api, "create", snake, namespaced, ns, obj)
        raise AssertionError(f"{what}: second create succeeded")
    except ApiException as e:
        check(e.status == 409, f"{what}: second create gave {e.status}")
        qualified = f"{plural}.{group}" if group else plural
        want = status_bytes(f'{qualified} "{name}" already exists', "AlreadyExists", details, 409)
        check(e.body == want, f"{what}: 409 body\n got {e.body!r}\nwant {want!r}")
    missing = name + "-missing"
    try:
        call(api, "read", snake, namespaced, ns, missing)
        raise AssertionError(f"{what}: get of a missing object succeeded")
    except ApiException as e:
        check(e.status == 404, f"{what}: missing gave {e.status}")
        d = {"name": missing}
        if group:
            d["group"] = group
        d["kind"] = plural
        qualified = f"{plural}.{group}" if group else plural
        want = status_bytes(f'{qualified} "{missing}" not found', "NotFound", d, 404)
        check(e.body == want, f"{what}: 404 body\n got {e.body!r}\nwant {want!r}")
    return created


def main(kubeconfig, suffix):
    config.load_kube_config(config_file=kubeconfig)
    core = client.CoreV1Api()
    ns = f"fidelity-{suffix}"
    core.create_namespace({"metadata": {"name": ns}})
    for api, snake, namespaced, group, plural, model, body in kinds(suffix):
        created = round_trip(api, snake, namespaced, group, plural, model, body, ns, suffix)
        if snake == "service":
            check(created.status is not None and created.status.load_balancer is not None,
                  "a new Service has status.loadBalancer")

    # componentstatuses: get and list only (nothing listens on the components' ports here).
    cs = core.list_component_status()
    check([c.metadata.name for c in cs.items][:2] == ["scheduler", "controller-manager"],
          "componentstatuses list")
    one = core.read_component_status("scheduler")
    check(one.conditions[0].type == "Healthy", "componentstatus condition")

    # create_from_yaml of a multi-document manifest: every kind in it is accepted.
    manifest = f"""
apiVersion: v1
kind: Namespace
metadata:
  name: yaml-{suffix}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: yaml-{suffix}
spec:
  replicas: 0
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: demo-web:v1
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: yaml-{suffix}
spec:
  selector: {{app: web}}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: ReplicationController
metadata:
  name: legacy
  namespace: yaml-{suffix}
spec:
  replicas: 0
  template:
    metadata:
      labels: {{app: legacy}}
    spec:
      containers:
      - name: c
        image: busybox:latest
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: yaml-{suffix}
data:
  k: v
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: runner
  namespace: yaml-{suffix}
"""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(manifest)
    try:
        created = utils.create_from_yaml(client.ApiClient(), f.name)
    finally:
        os.unlink(f.name)
    kinds_made = [o.kind for group in created for o in group]
    check(kinds_made == ["Namespace", "Deployment", "Service", "ReplicationController",
                         "ConfigMap", "ServiceAccount"], f"create_from_yaml made {kinds_made}")
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
