"""The official Python client (PyPI `kubernetes`) against mini-apiserver: create, list with
selectors, patch and watch pods and deployments. Usage: client_check.py KUBECONFIG.
Exits non-zero with the failing check's message."""

import sys
import threading

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def pod(name, labels):
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox:latest")]),
    )


def deployment(name):
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="web", image="demo-web:v1")]
                ),
            ),
        ),
    )


def main(kubeconfig):
    config.load_kube_config(config_file=kubeconfig)
    core = client.CoreV1Api()
    apps = client.AppsV1Api()
    ns = "default"

    # Create pods and list them with label and field selectors.
    for i in range(4):
        tier = "front" if i % 2 == 0 else "back"
        created = core.create_namespaced_pod(ns, pod(f"py-{i}", {"suite": "py", "tier": tier}))
        check(created.metadata.uid, "created pod has a uid")
        check(created.status.phase == "Pending", f"new pod phase {created.status.phase}")
    front = core.list_namespaced_pod(ns, label_selector="suite=py,tier=front")
    check(sorted(p.metadata.name for p in front.items) == ["py-0", "py-2"], "label selector")
    notin = core.list_namespaced_pod(ns, label_selector="suite=py,tier notin (front)")
    check(sorted(p.metadata.name for p in notin.items) == ["py-1", "py-3"], "notin selector")
    by_name = core.list_namespaced_pod(ns, field_selector="metadata.name=py-3")
    check([p.metadata.name for p in by_name.items] == ["py-3"], "field selector")
    paged = core.list_namespaced_pod(ns, label_selector="suite=py", limit=3)
    check(len(paged.items) == 3 and paged.metadata._continue, "first page with continue")
    rest = core.list_namespaced_pod(ns, label_selector="suite=py", limit=3, _continue=paged.metadata._continue)
    check(len(rest.items) == 1, "second page")

    # Patch a pod (strategic merge by default for dicts) and check.
    patched = core.patch_namespaced_pod("py-0", ns, {"metadata": {"labels": {"patched": "yes"}}})
    check(patched.metadata.labels.get("patched") == "yes", "pod patch")
    check(patched.metadata.labels.get("tier") == "front", "patch keeps other labels")

    # Deployments: create, read, patch replicas and image, scale subresource.
    d = apps.create_namespaced_deployment(ns, deployment("py-web"))
    check(d.spec.strategy.type == "RollingUpdate", "deployment defaults")
    check(d.metadata.generation == 1, "generation 1")
    d = apps.patch_namespaced_deployment(
        "py-web", ns,
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "demo-web:v2"}]}}}},
    )
    check(d.spec.template.spec.containers[0].image == "demo-web:v2", "image patched")
    check(len(d.spec.template.spec.containers) == 1, "containers merged by name")
    check(d.metadata.generation == 2, "generation bumped")
    scale = apps.patch_namespaced_deployment_scale("py-web", ns, {"spec": {"replicas": 5}})
    check(scale.spec.replicas == 5, "scale patched")
    listed = apps.list_namespaced_deployment(ns, label_selector="app=py-web")
    check([x.metadata.name for x in listed.items] == ["py-web"], "deployment list")

    # Errors come back as ApiException with Kubernetes' status codes.
    try:
        core.read_namespaced_pod("nope", ns)
        check(False, "reading a missing pod must fail")
    except ApiException as e:
        check(e.status == 404, f"missing pod status {e.status}")
    try:
        apps.create_namespaced_deployment(ns, deployment("py-web"))
        check(False, "creating a duplicate must fail")
    except ApiException as e:
        check(e.status == 409, f"duplicate status {e.status}")

    # Watch: a watch started at the list's version sees later changes, in order.
    rv = core.list_namespaced_pod(ns, label_selector="suite=py").metadata.resource_version
    seen = []
    w = watch.Watch()

    def run():
        for ev in w.stream(core.list_namespaced_pod, ns, label_selector="suite=py",
                           resource_version=rv, timeout_seconds=15):
            seen.append((ev["type"], ev["object"].metadata.name))
            if len(seen) >= 3:
                w.stop()

    t = threading.Thread(target=run)
    t.start()
    core.create_namespaced_pod(ns, pod("py-new", {"suite": "py"}))
    core.patch_namespaced_pod("py-new", ns, {"metadata": {"labels": {"x": "y"}}})
    core.delete_namespaced_pod("py-new", ns)
    t.join(20)
    check(seen == [("ADDED", "py-new"), ("MODIFIED", "py-new"), ("DELETED", "py-new")],
          f"watch events {seen}")

    dw = watch.Watch()
    events = []
    for ev in dw.stream(apps.list_namespaced_deployment, ns, timeout_seconds=5):
        events.append((ev["type"], ev["object"].metadata.name))
        if ("ADDED", "py-web") in events:
            dw.stop()
    check(("ADDED", "py-web") in events, f"deployment watch {events}")

    apps.delete_namespaced_deployment("py-web", ns)
    core.delete_collection_namespaced_pod(ns, label_selector="suite=py")
    left = core.list_namespaced_pod(ns, label_selector="suite=py")
    check(len(left.items) == 0, "deletecollection")
    print("python client: all checks passed")


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except AssertionError as e:
        print(f"python client check failed: {e}", file=sys.stderr)
        sys.exit(1)
