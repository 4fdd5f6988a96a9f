//! PodStatus from what the kubelet observed: container states from the runtime, probe results,
//! back-off and config errors. Pure functions, following upstream's generateAPIPodStatus,
//! getPhase and the status manager's condition handling.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ContainerState as ApiState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use runtime::runtime::ContainerState;

/// What the kubelet knows about one container of the pod.
#[derive(Debug, Clone, Default)]
pub struct ContainerView {
    /// The newest instance in the runtime.
    pub current: Option<ContainerState>,
    /// The instance before it (lastState).
    pub previous: Option<ContainerState>,
    /// Restarts so far.
    pub restart_count: i32,
    /// Why it is not running when it should be: (reason, message), e.g. CrashLoopBackOff.
    pub waiting: Option<(String, String)>,
    /// Readiness probe result (true without a probe once running and started).
    pub ready: bool,
    /// Startup probe passed (true without a probe once running).
    pub started: bool,
}

/// Everything status generation needs.
#[derive(Debug, Clone, Default)]
pub struct PodView {
    /// Init containers by name.
    pub init: BTreeMap<String, ContainerView>,
    /// App containers by name.
    pub containers: BTreeMap<String, ContainerView>,
    /// Ephemeral containers (`kubectl debug`) by name.
    pub ephemeral: BTreeMap<String, ContainerView>,
    /// The pod IP (empty until the sandbox has one).
    pub pod_ip: String,
    /// The node's IP.
    pub host_ip: String,
    /// When the kubelet first acknowledged the pod.
    pub start_time: Option<jiff::Timestamp>,
    /// Whether the sandbox runs with its network set up.
    pub sandbox_ready: bool,
    /// Set when the pod ended for good (Succeeded/Failed decided earlier or by deadline).
    pub terminal_phase: Option<String>,
}

fn parse_time(s: &str) -> Option<Time> {
    s.parse::<jiff::Timestamp>().ok().map(Time)
}

fn container_id(id: &str) -> String {
    format!("minirun://{id}")
}

fn terminated(st: &ContainerState) -> ContainerStateTerminated {
    let code = st.exit_code.unwrap_or(-1);
    ContainerStateTerminated {
        exit_code: code,
        reason: Some(st.reason.clone().unwrap_or_else(|| {
            if code == 0 {
                "Completed".into()
            } else {
                "Error".into()
            }
        })),
        started_at: st.started_at.as_deref().and_then(parse_time),
        finished_at: st.finished_at.as_deref().and_then(parse_time),
        container_id: Some(container_id(&st.id)),
        ..Default::default()
    }
}

fn api_state(st: &ContainerState) -> ApiState {
    match st.status.as_str() {
        "running" => ApiState {
            running: Some(ContainerStateRunning {
                started_at: st.started_at.as_deref().and_then(parse_time),
            }),
            ..Default::default()
        },
        "exited" | "unknown" => ApiState {
            terminated: Some(terminated(st)),
            ..Default::default()
        },
        _ => ApiState {
            waiting: Some(ContainerStateWaiting {
                reason: Some("ContainerCreating".into()),
                message: None,
            }),
            ..Default::default()
        },
    }
}

/// One container's status as the API shows it.
pub fn container_status(name: &str, image: &str, v: &ContainerView) -> ContainerStatus {
    let waiting = |reason: &str, message: &str| ApiState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message: (!message.is_empty()).then(|| message.to_string()),
        }),
        ..Default::default()
    };
    let (state, last) = match (&v.waiting, &v.current) {
        // A decided wait (back-off, pull or config error) shows over an exited instance, which
        // becomes lastState.
        (Some((r, m)), cur) => (
            waiting(r, m),
            cur.as_ref()
                .filter(|c| c.status == "exited")
                .or(v.previous.as_ref())
                .map(api_state),
        ),
        (None, Some(cur)) => (api_state(cur), v.previous.as_ref().map(api_state)),
        (None, None) => (waiting("ContainerCreating", ""), None),
    };
    let running = state.running.is_some();
    ContainerStatus {
        name: name.to_string(),
        image: image.to_string(),
        image_id: v
            .current
            .as_ref()
            .map(|c| c.image_id.clone())
            .unwrap_or_default(),
        container_id: v.current.as_ref().map(|c| container_id(&c.id)),
        ready: running && v.ready,
        started: Some(running && v.started),
        restart_count: v.restart_count,
        state: Some(state),
        last_state: Some(last.unwrap_or_default()),
        ..Default::default()
    }
}

/// Upstream's getPhase over app container statuses.
pub fn phase(pod: &Pod, init_done: bool, statuses: &[ContainerStatus]) -> &'static str {
    let restart = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always");
    if !init_done {
        return "Pending";
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in statuses {
        let st = s.state.clone().unwrap_or_default();
        if st.running.is_some() {
            running += 1;
        } else if let Some(t) = &st.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if let Some(t) = s.last_state.as_ref().and_then(|l| l.terminated.as_ref()) {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else {
            waiting += 1;
        }
    }
    if waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped > 0 {
        if restart == "Always" {
            "Running"
        } else if stopped == succeeded {
            "Succeeded"
        } else if restart == "Never" {
            "Failed"
        } else {
            "Running"
        }
    } else {
        "Pending"
    }
}

fn condition(
    old: &[PodCondition],
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: jiff::Timestamp,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let since = old
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    PodCondition {
        type_: type_.into(),
        status: status.into(),
        last_transition_time: Some(since),
        last_probe_time: None,
        reason: reason.map(str::to_string),
        message,
        ..Default::default()
    }
}

/// The full status the kubelet writes for `pod`.
pub fn pod_status(pod: &Pod, view: &PodView, now: jiff::Timestamp) -> PodStatus {
    let spec = pod.spec.clone().unwrap_or_default();
    let old = pod.status.clone().unwrap_or_default();
    let old_conds = old.conditions.clone().unwrap_or_default();
    let default_view = ContainerView::default();
    let init_statuses: Vec<ContainerStatus> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| {
            let v = view.init.get(&c.name).unwrap_or(&default_view);
            let mut s = container_status(&c.name, c.image.as_deref().unwrap_or(""), v);
            // An init container is "ready" once it completed.
            s.ready = s
                .state
                .as_ref()
                .and_then(|st| st.terminated.as_ref())
                .is_some_and(|t| t.exit_code == 0);
            s
        })
        .collect();
    let init_done = init_statuses.iter().all(|s| s.ready);
    let statuses: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| {
            let v = view.containers.get(&c.name).unwrap_or(&default_view);
            container_status(&c.name, c.image.as_deref().unwrap_or(""), v)
        })
        .collect();
    // Ephemeral containers never make a pod ready or unready, nor change its phase.
    let ephemeral: Vec<ContainerStatus> = spec
        .ephemeral_containers
        .iter()
        .flatten()
        .map(|c| {
            let v = view.ephemeral.get(&c.name).unwrap_or(&default_view);
            let mut s = container_status(&c.name, c.image.as_deref().unwrap_or(""), v);
            s.ready = false;
            s.started = Some(s.state.as_ref().is_some_and(|st| st.running.is_some()));
            s
        })
        .collect();
    let phase = view
        .terminal_phase
        .clone()
        .unwrap_or_else(|| phase(pod, init_done, &statuses).to_string());
    let terminal = phase == "Succeeded" || phase == "Failed";
    let unready: Vec<&str> = statuses
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let incomplete: Vec<&str> = init_statuses
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let mut conditions = Vec::new();
    conditions.push(condition(
        &old_conds,
        "PodReadyToStartContainers",
        view.sandbox_ready,
        None,
        None,
        now,
    ));
    conditions.push(if init_done || terminal && incomplete.is_empty() {
        condition(&old_conds, "Initialized", true, None, None, now)
    } else {
        condition(
            &old_conds,
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: [{}]",
                incomplete.join(" ")
            )),
            now,
        )
    });
    let (ready, reason, message) = if terminal {
        (false, Some("PodCompleted"), None)
    } else if unready.is_empty() {
        (true, None, None)
    } else {
        (
            false,
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    conditions.push(condition(
        &old_conds,
        "ContainersReady",
        ready,
        reason,
        message.clone(),
        now,
    ));
    conditions.push(condition(&old_conds, "Ready", ready, reason, message, now));
    if let Some(s) = old_conds.iter().find(|c| c.type_ == "PodScheduled") {
        conditions.push(s.clone());
    } else {
        conditions.push(condition(&old_conds, "PodScheduled", true, None, None, now));
    }
    // Keep conditions the kubelet does not own (readiness gates, DisruptionTarget, ...).
    for c in &old_conds {
        if !conditions.iter().any(|n| n.type_ == c.type_) {
            conditions.push(c.clone());
        }
    }
    let pod_ip = (!view.pod_ip.is_empty()).then(|| view.pod_ip.clone());
    PodStatus {
        phase: Some(phase),
        conditions: Some(conditions),
        host_ip: (!view.host_ip.is_empty()).then(|| view.host_ip.clone()),
        host_ips: (!view.host_ip.is_empty()).then(|| {
            vec![HostIP {
                ip: view.host_ip.clone(),
            }]
        }),
        pod_ip: pod_ip.clone(),
        pod_ips: pod_ip.map(|ip| vec![PodIP { ip }]),
        start_time: old.start_time.clone().or(view.start_time.map(Time)),
        qos_class: Some(crate::resources::qos_class(pod).to_string()),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        container_statuses: Some(statuses),
        ephemeral_container_statuses: (!ephemeral.is_empty()).then_some(ephemeral),
        nominated_node_name: old.nominated_node_name.clone(),
        ..Default::default()
    }
}

/// Whether two statuses differ in anything but condition probe times.
pub fn differs(a: &PodStatus, b: &PodStatus) -> bool {
    serde_json::to_value(a).ok() != serde_json::to_value(b).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn pod(restart: &str, containers: &[&str], init: &[&str]) -> Pod {
        let c = |n: &&str| Container {
            name: n.to_string(),
            image: Some("busybox:latest".into()),
            ..Default::default()
        };
        Pod {
            spec: Some(PodSpec {
                restart_policy: Some(restart.into()),
                containers: containers.iter().map(c).collect(),
                init_containers: (!init.is_empty()).then(|| init.iter().map(c).collect()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn state(id: &str, status: &str, code: Option<i32>) -> ContainerState {
        ContainerState {
            id: id.into(),
            name: "c".into(),
            sandbox_id: "s".into(),
            status: status.into(),
            pid: if status == "running" { 42 } else { 0 },
            exit_code: code,
            reason: None,
            created_at: "2026-11-23T10:00:00Z".into(),
            started_at: Some("2026-11-23T10:00:01Z".into()),
            finished_at: (status == "exited").then(|| "2026-11-23T10:00:05Z".into()),
            image: "busybox:latest".into(),
            image_id: "sha256:abc".into(),
            log_path: "/tmp/x".into(),
            stdin_path: None,
            stdin_once: false,
            tty: false,
            labels: Default::default(),
            annotations: Default::default(),
        }
    }

    fn running(ready: bool) -> ContainerView {
        ContainerView {
            current: Some(state("a1", "running", None)),
            ready,
            started: true,
            ..Default::default()
        }
    }

    fn now() -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000).unwrap()
    }

    fn cond<'a>(s: &'a PodStatus, t: &str) -> &'a PodCondition {
        s.conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == t)
            .unwrap()
    }

    #[test]
    fn running_and_ready() {
        let p = pod("Always", &["a", "b"], &[]);
        let mut v = PodView {
            pod_ip: "10.244.1.5".into(),
            host_ip: "192.168.77.10".into(),
            sandbox_ready: true,
            ..Default::default()
        };
        v.containers.insert("a".into(), running(true));
        v.containers.insert("b".into(), running(false));
        let s = pod_status(&p, &v, now());
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(cond(&s, "Ready").status, "False");
        assert_eq!(
            cond(&s, "ContainersReady").message.as_deref(),
            Some("containers with unready status: [b]")
        );
        assert_eq!(s.pod_ip.as_deref(), Some("10.244.1.5"));
        assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
        v.containers.insert("b".into(), running(true));
        let s2 = pod_status(&p, &v, now());
        assert_eq!(cond(&s2, "Ready").status, "True");
        let cs = &s2.container_statuses.unwrap()[0];
        assert_eq!(cs.container_id.as_deref(), Some("minirun://a1"));
        assert_eq!(cs.image_id, "sha256:abc");
    }

    #[test]
    fn phases_by_restart_policy() {
        for (policy, code, want) in [
            ("Never", 0, "Succeeded"),
            ("Never", 1, "Failed"),
            ("OnFailure", 0, "Succeeded"),
            ("OnFailure", 1, "Running"),
            ("Always", 0, "Running"),
        ] {
            let p = pod(policy, &["a"], &[]);
            let mut v = PodView::default();
            v.containers.insert(
                "a".into(),
                ContainerView {
                    current: Some(state("a1", "exited", Some(code))),
                    ..Default::default()
                },
            );
            let s = pod_status(&p, &v, now());
            assert_eq!(s.phase.as_deref(), Some(want), "{policy} exit {code}");
        }
    }

    #[test]
    fn crash_loop_shows_waiting_with_last_state() {
        let p = pod("Always", &["a"], &[]);
        let mut v = PodView::default();
        v.containers.insert(
            "a".into(),
            ContainerView {
                current: Some(state("a2", "exited", Some(1))),
                restart_count: 2,
                waiting: Some((
                    "CrashLoopBackOff".into(),
                    "back-off 20s restarting failed container=a".into(),
                )),
                ..Default::default()
            },
        );
        let s = pod_status(&p, &v, now());
        let cs = &s.container_statuses.as_ref().unwrap()[0];
        let w = cs.state.as_ref().unwrap().waiting.as_ref().unwrap();
        assert_eq!(w.reason.as_deref(), Some("CrashLoopBackOff"));
        let last = cs.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!(last.exit_code, 1);
        assert_eq!(last.reason.as_deref(), Some("Error"));
        assert_eq!(cs.restart_count, 2);
        // A container that has run before counts as stopped, not waiting: Running.
        assert_eq!(s.phase.as_deref(), Some("Running"));
    }

    #[test]
    fn init_containers_gate_the_pod() {
        let p = pod("Always", &["a"], &["setup"]);
        let mut v = PodView::default();
        v.init.insert(
            "setup".into(),
            ContainerView {
                current: Some(state("i1", "running", None)),
                ..Default::default()
            },
        );
        let s = pod_status(&p, &v, now());
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        assert_eq!(cond(&s, "Initialized").status, "False");
        v.init.insert(
            "setup".into(),
            ContainerView {
                current: Some(state("i1", "exited", Some(0))),
                ..Default::default()
            },
        );
        v.containers.insert("a".into(), running(true));
        let s = pod_status(&p, &v, now());
        assert_eq!(cond(&s, "Initialized").status, "True");
        assert_eq!(s.phase.as_deref(), Some("Running"));
        let init = &s.init_container_statuses.unwrap()[0];
        assert_eq!(
            init.state
                .as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("Completed")
        );
    }

    #[test]
    fn transition_times_are_kept_while_status_is_unchanged() {
        let mut p = pod("Always", &["a"], &[]);
        let mut v = PodView::default();
        v.containers.insert("a".into(), running(true));
        let s1 = pod_status(&p, &v, now());
        p.status = Some(s1.clone());
        let later = now() + jiff::SignedDuration::from_secs(30);
        let s2 = pod_status(&p, &v, later);
        assert_eq!(
            cond(&s2, "Ready").last_transition_time,
            cond(&s1, "Ready").last_transition_time
        );
        assert!(!differs(&s1, &s2));
    }
}
