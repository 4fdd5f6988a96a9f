//! Ephemeral containers (`kubectl debug`): added to a running pod through
//! pods/ephemeralcontainers, started once in the pod's sandbox (its network, IPC and UTS
//! namespaces; the target container's PID namespace when `targetContainerName` is set), never
//! restarted, never part of readiness. Upstream: the kubelet's ephemeral-container step of
//! SyncPod.

use k8s_openapi::api::core::v1::{Container, EphemeralContainer, PodSpec};
use runtime::runtime::ContainerState;

use crate::worker::{LABEL_CONTAINER_KIND, LABEL_CONTAINER_NAME};

/// The container kind label of ephemeral containers.
pub const KIND: &str = "ephemeral";

/// An ephemeral container as the Container it runs as (the same fields but the target).
pub fn as_container(ec: &EphemeralContainer) -> Container {
    let mut v = serde_json::to_value(ec).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.remove("targetContainerName");
    }
    serde_json::from_value(v).unwrap_or_else(|_| Container {
        name: ec.name.clone(),
        image: ec.image.clone(),
        ..Default::default()
    })
}

/// Every ephemeral container of the spec, as Containers.
pub fn containers(spec: &PodSpec) -> Vec<Container> {
    spec.ephemeral_containers
        .iter()
        .flatten()
        .map(as_container)
        .collect()
}

/// The ephemeral containers that have never been started in the sandbox (`existing` are its
/// containers): each runs at most once.
pub fn to_start(spec: &PodSpec, existing: &[ContainerState]) -> Vec<Container> {
    containers(spec)
        .into_iter()
        .filter(|c| {
            !existing.iter().any(|st| {
                st.labels.get(LABEL_CONTAINER_KIND).map(String::as_str) == Some(KIND)
                    && st.labels.get(LABEL_CONTAINER_NAME) == Some(&c.name)
            })
        })
        .collect()
}

/// The runtime id of the running app container an ephemeral container `name` targets, if it
/// names one (the pod's process namespace is otherwise its own or the sandbox's).
pub fn target_id(spec: &PodSpec, name: &str, existing: &[ContainerState]) -> Option<String> {
    if spec.share_process_namespace == Some(true) {
        return None;
    }
    let target = spec
        .ephemeral_containers
        .iter()
        .flatten()
        .find(|e| e.name == name)?
        .target_container_name
        .clone()
        .filter(|t| !t.is_empty())?;
    existing
        .iter()
        .filter(|st| {
            st.status == "running"
                && st.labels.get(LABEL_CONTAINER_KIND).map(String::as_str) == Some("app")
                && st.labels.get(LABEL_CONTAINER_NAME) == Some(&target)
        })
        .map(|st| st.id.clone())
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn state(id: &str, name: &str, kind: &str, status: &str) -> ContainerState {
        let labels = BTreeMap::from([
            (LABEL_CONTAINER_NAME.to_string(), name.to_string()),
            (LABEL_CONTAINER_KIND.to_string(), kind.to_string()),
        ]);
        serde_json::from_value(serde_json::json!({
            "id": id, "name": name, "sandbox_id": "s", "status": status, "pid": 1,
            "exit_code": null, "reason": null, "created_at": "", "started_at": null,
            "finished_at": null, "image": "busybox", "image_id": "", "log_path": "/x",
            "labels": labels, "annotations": {},
        }))
        .unwrap()
    }

    fn spec() -> PodSpec {
        serde_json::from_value(serde_json::json!({
            "containers": [{"name": "app", "image": "busybox"}],
            "ephemeralContainers": [
                {"name": "debugger", "image": "busybox", "targetContainerName": "app",
                 "stdin": true, "tty": true},
                {"name": "plain", "image": "busybox"},
            ],
        }))
        .unwrap()
    }

    #[test]
    fn each_ephemeral_container_starts_once() {
        let spec = spec();
        let names = |v: Vec<Container>| v.into_iter().map(|c| c.name).collect::<Vec<_>>();
        assert_eq!(names(to_start(&spec, &[])), ["debugger", "plain"]);
        let exited = [state("e1", "debugger", KIND, "exited")];
        assert_eq!(names(to_start(&spec, &exited)), ["plain"]);
        // an app container of the same name is not the ephemeral one
        let app = [state("a1", "plain", "app", "running")];
        assert_eq!(names(to_start(&spec, &app)), ["debugger", "plain"]);
        let c = as_container(&spec.ephemeral_containers.as_ref().unwrap()[0]);
        assert_eq!((c.stdin, c.tty), (Some(true), Some(true)));
    }

    #[test]
    fn the_target_is_the_running_app_container() {
        let mut spec = spec();
        let running = [
            state("old", "app", "app", "exited"),
            state("cur", "app", "app", "running"),
        ];
        assert_eq!(
            target_id(&spec, "debugger", &running).as_deref(),
            Some("cur")
        );
        assert_eq!(target_id(&spec, "plain", &running), None);
        spec.share_process_namespace = Some(true);
        assert_eq!(target_id(&spec, "debugger", &running), None);
    }
}
