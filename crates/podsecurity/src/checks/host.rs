//! Baseline checks on host access, as upstream's
//! `staging/src/k8s.io/pod-security-admission/policy/{check_hostNamespaces.go,
//! check_hostPathVolumes.go, check_hostPorts.go, check_privileged.go,
//! check_windowsHostProcess.go}` define them (all v1.0+).

use std::collections::BTreeSet;

use serde_json::Value;

use super::{CheckResult, Pod};
use crate::pod::{
    containers, containers_phrase, flag, join_quote, list, name, object, pluralize,
    security_context, text,
};

/// `hostNetwork`, `hostPID` and `hostIPC` must be unset or false.
pub(crate) fn host_namespaces_1_0(pod: &Pod<'_>) -> CheckResult {
    let found: Vec<&str> = [
        ("hostNetwork", "hostNetwork=true"),
        ("hostPID", "hostPID=true"),
        ("hostIPC", "hostIPC=true"),
    ]
    .into_iter()
    .filter(|(key, _)| flag(pod.spec, key, true) == Some(true))
    .map(|(_, shown)| shown)
    .collect();
    if found.is_empty() {
        return CheckResult::allow();
    }
    CheckResult::forbid("host namespaces", found.join(", "))
}

/// No `hostPath` volumes.
pub(crate) fn host_path_volumes_1_0(pod: &Pod<'_>) -> CheckResult {
    let bad: Vec<_> = list(pod.spec, "volumes")
        .iter()
        .filter(|v| crate::pod::is_set(v, "hostPath"))
        .map(name)
        .collect();
    if bad.is_empty() {
        return CheckResult::allow();
    }
    CheckResult::forbid(
        "hostPath volumes",
        format!(
            "{} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad)
        ),
    )
}

/// A port's non-zero `hostPort`, as Go prints it; `None` when unset or 0. A value that is not
/// a number counts as a host port.
fn host_port(port: &Value) -> Option<String> {
    match port.get("hostPort")? {
        Value::Null => None,
        Value::Number(n) if n.as_f64() == Some(0.0) => None,
        other => Some(text(other).into_owned()),
    }
}

/// No container port may set a `hostPort`.
pub(crate) fn host_ports_1_0(pod: &Pod<'_>) -> CheckResult {
    let mut bad = Vec::new();
    let mut ports = BTreeSet::new();
    for c in containers(pod.spec) {
        let mut valid = true;
        for p in list(c, "ports") {
            if let Some(hp) = host_port(p) {
                valid = false;
                ports.insert(hp);
            }
        }
        if !valid {
            bad.push(name(c));
        }
    }
    if bad.is_empty() {
        return CheckResult::allow();
    }
    let ports: Vec<String> = ports.into_iter().collect();
    CheckResult::forbid(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_phrase(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.join(", ")
        ),
    )
}

/// No container may set `securityContext.privileged=true`.
pub(crate) fn privileged_1_0(pod: &Pod<'_>) -> CheckResult {
    let bad: Vec<_> = containers(pod.spec)
        .filter(|c| security_context(c).and_then(|sc| flag(sc, "privileged", true)) == Some(true))
        .map(name)
        .collect();
    if bad.is_empty() {
        return CheckResult::allow();
    }
    CheckResult::forbid(
        "privileged",
        format!(
            "{} must not set securityContext.privileged=true",
            containers_phrase(&bad)
        ),
    )
}

fn host_process(v: &Value) -> bool {
    security_context(v)
        .and_then(|sc| object(sc, "windowsOptions"))
        .and_then(|w| flag(w, "hostProcess", true))
        == Some(true)
}

/// Neither the pod nor a container may set `securityContext.windowsOptions.hostProcess=true`.
pub(crate) fn windows_host_process_1_0(pod: &Pod<'_>) -> CheckResult {
    let bad: Vec<_> = containers(pod.spec)
        .filter(|c| host_process(c))
        .map(name)
        .collect();
    let mut setters = Vec::new();
    if host_process(pod.spec) {
        setters.push("pod".to_string());
    }
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return CheckResult::allow();
    }
    CheckResult::forbid(
        "hostProcess",
        format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            setters.join(" and ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::super::EvalOptions;
    use super::*;
    use serde_json::json;

    fn run(check: fn(&Pod<'_>) -> CheckResult, spec: Value) -> CheckResult {
        let opts = EvalOptions::default();
        let meta = json!({});
        check(&Pod {
            meta: &meta,
            spec: &spec,
            opts: &opts,
        })
    }

    fn expect(r: CheckResult, reason: &str, detail: &str) {
        assert!(!r.allowed, "expected disallowed");
        assert_eq!(r.forbidden_reason, reason);
        assert_eq!(r.forbidden_detail, detail);
    }

    #[test]
    fn host_namespaces() {
        let r = run(
            host_namespaces_1_0,
            json!({"hostNetwork": true, "hostIPC": true, "hostPID": true}),
        );
        expect(
            r,
            "host namespaces",
            "hostNetwork=true, hostPID=true, hostIPC=true",
        );
        let ok = run(
            host_namespaces_1_0,
            json!({"hostNetwork": false, "hostPID": null}),
        );
        assert!(ok.allowed);
    }

    #[test]
    fn host_path_volumes() {
        let r = run(
            host_path_volumes_1_0,
            json!({"volumes": [
                {"name": "a", "hostPath": {}},
                {"name": "b", "hostPath": {}},
                {"name": "c", "emptyDir": {}},
            ]}),
        );
        expect(r, "hostPath volumes", "volumes \"a\", \"b\"");
        let one = run(
            host_path_volumes_1_0,
            json!({"volumes": [{"name": "x", "hostPath": {"path": "/"}}, {"name": "y", "hostPath": null}]}),
        );
        expect(one, "hostPath volumes", "volume \"x\"");
    }

    #[test]
    fn host_ports() {
        let r = run(
            host_ports_1_0,
            json!({"containers": [
                {"name": "a", "ports": [{"hostPort": 0}]},
                {"name": "b", "ports": [{"hostPort": 0}, {"hostPort": 20}]},
            ]}),
        );
        expect(r, "hostPort", "container \"b\" uses hostPort 20");
        let r = run(
            host_ports_1_0,
            json!({"containers": [
                {"name": "a", "ports": [{"hostPort": 0}]},
                {"name": "b", "ports": [{"hostPort": 0}, {"hostPort": 10}, {"hostPort": 20}]},
                {"name": "c", "ports": [{"hostPort": 0}, {"hostPort": 10}, {"hostPort": 30}]},
            ]}),
        );
        expect(
            r,
            "hostPort",
            "containers \"b\", \"c\" use hostPorts 10, 20, 30",
        );
        // Ports sort as strings, as upstream's sets.String does.
        let r = run(
            host_ports_1_0,
            json!({"initContainers": [{"name": "i", "ports": [{"hostPort": 9}, {"hostPort": 8080}, {"hostPort": 80}]}]}),
        );
        expect(r, "hostPort", "container \"i\" uses hostPorts 80, 8080, 9");
    }

    #[test]
    fn privileged() {
        let r = run(
            privileged_1_0,
            json!({"containers": [
                {"name": "a", "securityContext": null},
                {"name": "b", "securityContext": {}},
                {"name": "c", "securityContext": {"privileged": false}},
                {"name": "d", "securityContext": {"privileged": true}},
                {"name": "e", "securityContext": {"privileged": true}},
            ]}),
        );
        expect(
            r,
            "privileged",
            "containers \"d\", \"e\" must not set securityContext.privileged=true",
        );
    }

    #[test]
    fn windows_host_process() {
        let r = run(
            windows_host_process_1_0,
            json!({
                "securityContext": {"windowsOptions": {"hostProcess": true}},
                "containers": [
                    {"name": "a", "securityContext": null},
                    {"name": "b", "securityContext": {}},
                    {"name": "c", "securityContext": {"windowsOptions": {}}},
                    {"name": "d", "securityContext": {"windowsOptions": {"hostProcess": false}}},
                    {"name": "e", "securityContext": {"windowsOptions": {"hostProcess": true}}},
                    {"name": "f", "securityContext": {"windowsOptions": {"hostProcess": true}}},
                ],
            }),
        );
        expect(
            r,
            "hostProcess",
            "pod and containers \"e\", \"f\" must not set securityContext.windowsOptions.hostProcess=true",
        );
    }

    #[test]
    fn wrong_types_fail_closed() {
        expect(
            run(host_namespaces_1_0, json!({"hostPID": "yes"})),
            "host namespaces",
            "hostPID=true",
        );
        expect(
            run(
                host_ports_1_0,
                json!({"containers": [{"name": "a", "ports": [{"hostPort": "80"}]}]}),
            ),
            "hostPort",
            "container \"a\" uses hostPort 80",
        );
        assert!(
            !run(
                privileged_1_0,
                json!({"containers": [{"securityContext": {"privileged": 1}}]})
            )
            .allowed
        );
    }
}
