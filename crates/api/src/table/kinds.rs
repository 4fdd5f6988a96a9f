//! The cells of the printers with most logic: pods, nodes, services and endpoints, events,
//! storage, jobs and HPAs (upstream's printPod, printNode, printService, printEvent, ...).

use super::*;

// --- pods ------------------------------------------------------------------------------------

pub(super) fn is_restartable_init_container(c: Option<&Value>) -> bool {
    c.is_some_and(|c| s(c, &["restartPolicy"]) == "Always")
}

pub(super) fn has_condition(obj: &Value, ty: &str) -> bool {
    arr(obj, &["status", "conditions"])
        .iter()
        .any(|c| s(c, &["type"]) == ty && s(c, &["status"]) == "True")
}

pub(super) fn later(current: Option<Timestamp>, candidate: &Value) -> Option<Timestamp> {
    let finished = at(candidate, &["lastState", "terminated", "finishedAt"])
        .and_then(Value::as_str)
        .and_then(parse_time);
    match (current, finished) {
        (Some(c), Some(f)) if c < f => Some(f),
        (None, Some(f)) => Some(f),
        (c, _) => c,
    }
}

pub(super) fn pod_row(pod: &Value, ctx: &Ctx) -> (Vec<Value>, Option<Value>) {
    let mut restarts: i64 = 0;
    let mut restartable_init_restarts: i64 = 0;
    let mut total_containers = arr(pod, &["spec", "containers"]).len();
    let mut ready_containers = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_restartable_init_restart: Option<Timestamp> = None;

    let phase = s(pod, &["status", "phase"]);
    let mut reason = phase.to_string();
    let status_reason = s(pod, &["status", "reason"]);
    if !status_reason.is_empty() {
        reason = status_reason.to_string();
    }
    for c in arr(pod, &["status", "conditions"]) {
        if s(c, &["type"]) == "PodScheduled" && s(c, &["reason"]) == "SchedulingGated" {
            reason = "SchedulingGated".into();
        }
    }
    let conditions = match phase {
        "Succeeded" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Succeeded",
            "message": "The pod has completed successfully."
        }])),
        "Failed" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Failed",
            "message": "The pod failed."
        }])),
        _ => None,
    };

    let init_specs = arr(pod, &["spec", "initContainers"]);
    let init_spec = |name: &str| init_specs.iter().find(|c| s(c, &["name"]) == name);
    total_containers += init_specs
        .iter()
        .filter(|c| is_restartable_init_container(Some(c)))
        .count();

    let mut initializing = false;
    let init_statuses = arr(pod, &["status", "initContainerStatuses"]);
    for (i, container) in init_statuses.iter().enumerate() {
        restarts += int(container, &["restartCount"]);
        last_restart = later(last_restart, container);
        let restartable = is_restartable_init_container(init_spec(s(container, &["name"])));
        if restartable {
            restartable_init_restarts += int(container, &["restartCount"]);
            last_restartable_init_restart = later(last_restartable_init_restart, container);
        }
        let terminated = at(container, &["state", "terminated"]);
        let waiting_reason = s(container, &["state", "waiting", "reason"]);
        if terminated.is_some_and(|t| int(t, &["exitCode"]) == 0) {
            continue;
        } else if restartable && boolean(container, &["started"]) {
            if boolean(container, &["ready"]) {
                ready_containers += 1;
            }
            continue;
        } else if let Some(t) = terminated {
            let r = s(t, &["reason"]);
            reason = if r.is_empty() {
                let signal = int(t, &["signal"]);
                if signal != 0 {
                    format!("Init:Signal:{signal}")
                } else {
                    format!("Init:ExitCode:{}", int(t, &["exitCode"]))
                }
            } else {
                format!("Init:{r}")
            };
            initializing = true;
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
            initializing = true;
        } else {
            reason = format!("Init:{}/{}", i, init_specs.len());
            initializing = true;
        }
        break;
    }

    if !initializing || has_condition(pod, "Initialized") {
        restarts = restartable_init_restarts;
        last_restart = last_restartable_init_restart;
        let mut has_running = false;
        for container in arr(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += int(container, &["restartCount"]);
            last_restart = later(last_restart, container);
            let waiting_reason = s(container, &["state", "waiting", "reason"]);
            let terminated = at(container, &["state", "terminated"]);
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                let r = s(t, &["reason"]);
                reason = if !r.is_empty() {
                    r.to_string()
                } else {
                    let signal = int(t, &["signal"]);
                    if signal != 0 {
                        format!("Signal:{signal}")
                    } else {
                        format!("ExitCode:{}", int(t, &["exitCode"]))
                    }
                };
            } else if boolean(container, &["ready"])
                && at(container, &["state", "running"]).is_some()
            {
                has_running = true;
                ready_containers += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if has_condition(pod, "Ready") {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }

    let deleting = at(pod, &["metadata", "deletionTimestamp"]).is_some();
    if deleting && status_reason == "NodeLost" {
        reason = "Unknown".into();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".into();
    }

    let restarts_str = match (restarts, last_restart) {
        (r, Some(t)) if r != 0 => format!("{} ({} ago)", r, ctx.since_ts(t)),
        (r, _) => r.to_string(),
    };

    let pod_ip = arr(pod, &["status", "podIPs"])
        .first()
        .map(|p| s(p, &["ip"]))
        .unwrap_or("");
    let gates = arr(pod, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conds = arr(pod, &["status", "conditions"]);
        let true_conditions = gates
            .iter()
            .filter(|g| {
                let ty = s(g, &["conditionType"]);
                conds
                    .iter()
                    .find(|c| s(c, &["type"]) == ty)
                    .is_some_and(|c| s(c, &["status"]) == "True")
            })
            .count();
        format!("{}/{}", true_conditions, gates.len())
    };
    let cells = vec![
        name(pod),
        json!(format!("{ready_containers}/{total_containers}")),
        json!(reason),
        json!(restarts_str),
        ctx.age(pod),
        json!(or_none(pod_ip)),
        json!(or_none(s(pod, &["spec", "nodeName"]))),
        json!(or_none(s(pod, &["status", "nominatedNodeName"]))),
        json!(readiness_gates),
    ];
    (cells, conditions)
}

// --- nodes -----------------------------------------------------------------------------------

pub(super) fn node_cells(node: &Value, ctx: &Ctx) -> Vec<Value> {
    let mut status: Vec<String> = Vec::new();
    if let Some(ready) = arr(node, &["status", "conditions"])
        .iter()
        .rev()
        .find(|c| s(c, &["type"]) == "Ready")
    {
        if s(ready, &["status"]) == "True" {
            status.push("Ready".into());
        } else {
            status.push("NotReady".into());
        }
    }
    if status.is_empty() {
        status.push("Unknown".into());
    }
    if boolean(node, &["spec", "unschedulable"]) {
        status.push("SchedulingDisabled".into());
    }
    let mut roles: BTreeSet<String> = BTreeSet::new();
    if let Some(Value::Object(labels)) = at(node, &["metadata", "labels"]) {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.insert(role.to_string());
                }
            } else if k == "kubernetes.io/role" {
                if let Some(v) = v.as_str().filter(|v| !v.is_empty()) {
                    roles.insert(v.to_string());
                }
            }
        }
    }
    let roles = or_none(&roles.into_iter().collect::<Vec<_>>().join(","));
    let address = |ty: &str| -> String {
        arr(node, &["status", "addresses"])
            .iter()
            .find(|a| s(a, &["type"]) == ty)
            .map(|a| s(a, &["address"]).to_string())
            .unwrap_or_else(|| "<none>".into())
    };
    let unknown = |v: &str| -> String {
        if v.is_empty() {
            "<unknown>".into()
        } else {
            v.to_string()
        }
    };
    vec![
        name(node),
        json!(status.join(",")),
        json!(roles),
        ctx.age(node),
        json!(s(node, &["status", "nodeInfo", "kubeletVersion"])),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(unknown(s(node, &["status", "nodeInfo", "osImage"]))),
        json!(unknown(s(node, &["status", "nodeInfo", "kernelVersion"]))),
        json!(unknown(s(
            node,
            &["status", "nodeInfo", "containerRuntimeVersion"]
        ))),
    ]
}

// --- services and endpoints ------------------------------------------------------------------

pub(super) fn service_cells(svc: &Value, ctx: &Ctx) -> Vec<Value> {
    let svc_type = s(svc, &["spec", "type"]);
    let internal_ip = arr(svc, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    let external_ips: Vec<&str> = arr(svc, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let external = match svc_type {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            // the server prints wide: the load balancer list is not clipped
            let mut lb: BTreeSet<&str> = BTreeSet::new();
            for ing in arr(svc, &["status", "loadBalancer", "ingress"]) {
                let ip = s(ing, &["ip"]);
                let host = s(ing, &["hostname"]);
                if !ip.is_empty() {
                    lb.insert(ip);
                } else if !host.is_empty() {
                    lb.insert(host);
                }
            }
            let lb_ips = lb.into_iter().collect::<Vec<_>>().join(",");
            if !external_ips.is_empty() {
                let mut results: Vec<&str> = Vec::new();
                if !lb_ips.is_empty() {
                    results.extend(lb_ips.split(','));
                }
                results.extend(external_ips.iter().copied());
                results.join(",")
            } else if !lb_ips.is_empty() {
                lb_ips
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => s(svc, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = arr(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            let port = int(p, &["port"]);
            let proto = s(p, &["protocol"]);
            let node_port = int(p, &["nodePort"]);
            if node_port > 0 {
                format!("{port}:{node_port}/{proto}")
            } else {
                format!("{port}/{proto}")
            }
        })
        .collect();
    vec![
        name(svc),
        json!(svc_type),
        json!(internal_ip),
        json!(external),
        json!(or_none(&ports.join(","))),
        ctx.age(svc),
        json!(format_labels(at(svc, &["spec", "selector"]))),
    ]
}

pub(super) fn format_endpoints(ep: &Value) -> String {
    let subsets = arr(ep, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".into();
    }
    let max = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for ss in subsets {
        let addresses = arr(ss, &["addresses"]);
        let ports = arr(ss, &["ports"]);
        if ports.is_empty() {
            count += addresses.len();
            for a in addresses {
                if list.len() == max {
                    more = true;
                    break;
                }
                list.push(s(a, &["ip"]).to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for a in addresses {
                if list.len() == max {
                    more = true;
                    break;
                }
                list.push(join_host_port(s(a, &["ip"]), int(port, &["port"])));
            }
        }
    }
    let ret = list.join(",");
    if more {
        return format!("{} + {} more...", ret, count - max);
    }
    ret
}

pub(super) fn format_discovery_ports(ports: &[Value]) -> String {
    let max = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    for p in ports {
        if list.len() < max {
            let num = match at(p, &["port"]).and_then(Value::as_i64) {
                Some(n) => n.to_string(),
                None => match at(p, &["name"]).and_then(Value::as_str) {
                    Some(n) => n.to_string(),
                    None => "*".to_string(),
                },
            };
            list.push(num);
        } else if list.len() == max {
            more = true;
        }
    }
    list_with_more(&list, more, ports.len(), max)
}

pub(super) fn format_discovery_endpoints(endpoints: &[Value]) -> String {
    let max = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for e in endpoints {
        for a in arr(e, &["addresses"]) {
            if list.len() < max {
                list.push(a.as_str().unwrap_or("").to_string());
            } else if list.len() == max {
                more = true;
            }
            count += 1;
        }
    }
    list_with_more(&list, more, count, max)
}

// --- events ----------------------------------------------------------------------------------

/// An events.k8s.io/v1 Event in core/v1 shape (the printer works on the internal type,
/// which both versions convert to).
pub(super) fn events_v1_as_core(e: &Value) -> Value {
    let mut out = json!({
        "metadata": e.get("metadata").cloned().unwrap_or(Value::Null),
        "involvedObject": e.get("regarding").cloned().unwrap_or(Value::Null),
        "message": e.get("note").cloned().unwrap_or(Value::Null),
        "reason": e.get("reason").cloned().unwrap_or(Value::Null),
        "type": e.get("type").cloned().unwrap_or(Value::Null),
        "source": e.get("deprecatedSource").cloned().unwrap_or(Value::Null),
        "firstTimestamp": e.get("deprecatedFirstTimestamp").cloned().unwrap_or(Value::Null),
        "lastTimestamp": e.get("deprecatedLastTimestamp").cloned().unwrap_or(Value::Null),
        "count": e.get("deprecatedCount").cloned().unwrap_or(Value::Null),
        "eventTime": e.get("eventTime").cloned().unwrap_or(Value::Null),
        "reportingComponent": e.get("reportingController").cloned().unwrap_or(Value::Null),
        "reportingInstance": e.get("reportingInstance").cloned().unwrap_or(Value::Null),
    });
    if let Some(series) = e.get("series").filter(|v| !v.is_null()) {
        out["series"] = series.clone();
    }
    out
}

pub(super) fn event_cells(e: &Value, ctx: &Ctx) -> Vec<Value> {
    let first_raw = s(e, &["firstTimestamp"]);
    let first = if parse_time(first_raw).is_none() {
        ctx.since(s(e, &["eventTime"]))
    } else {
        ctx.since(first_raw)
    };
    let last_raw = s(e, &["lastTimestamp"]);
    let mut last = if parse_time(last_raw).is_none() {
        first.clone()
    } else {
        ctx.since(last_raw)
    };
    let mut count = int(e, &["count"]);
    if let Some(series) = at(e, &["series"]) {
        last = ctx.since(s(series, &["lastObservedTime"]));
        count = int(series, &["count"]);
    } else if count == 0 {
        count = 1;
    }
    let kind = s(e, &["involvedObject", "kind"]).to_lowercase();
    let obj_name = s(e, &["involvedObject", "name"]);
    let target = if obj_name.is_empty() {
        kind
    } else {
        format!("{kind}/{obj_name}")
    };
    let component = first_non_empty(
        s(e, &["source", "component"]),
        s(e, &["reportingComponent"]),
    );
    let instance = first_non_empty(s(e, &["source", "host"]), s(e, &["reportingInstance"]));
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last),
        json!(s(e, &["type"])),
        json!(s(e, &["reason"])),
        json!(target),
        json!(s(e, &["involvedObject", "fieldPath"])),
        json!(source),
        json!(s(e, &["message"]).trim()),
        json!(first),
        json!(count),
        name(e),
    ]
}

pub(super) fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() {
        b
    } else {
        a
    }
}

// --- storage ---------------------------------------------------------------------------------

pub(super) fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    let mut out: Vec<&str> = Vec::new();
    if has("ReadWriteOnce") {
        out.push("RWO");
    }
    if has("ReadOnlyMany") {
        out.push("ROX");
    }
    if has("ReadWriteMany") {
        out.push("RWX");
    }
    if has("ReadWriteOncePod") {
        out.push("RWOP");
    }
    out.join(",")
}

pub(super) const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

pub(super) fn storage_class(obj: &Value) -> String {
    if let Some(class) = at(obj, &["metadata", "annotations", BETA_STORAGE_CLASS]) {
        return class.as_str().unwrap_or("").to_string();
    }
    s(obj, &["spec", "storageClassName"]).to_string()
}

pub(super) fn pvc_cells(pvc: &Value, ctx: &Ctx) -> Vec<Value> {
    let mut phase = s(pvc, &["status", "phase"]).to_string();
    if at(pvc, &["metadata", "deletionTimestamp"]).is_some() {
        phase = "Terminating".into();
    }
    let volume_name = s(pvc, &["spec", "volumeName"]);
    let (capacity, modes) = if volume_name.is_empty() {
        (String::new(), String::new())
    } else {
        (
            s(pvc, &["status", "capacity", "storage"]).to_string(),
            access_modes(arr(pvc, &["status", "accessModes"])),
        )
    };
    let vac = at(pvc, &["spec", "volumeAttributesClassName"])
        .and_then(Value::as_str)
        .unwrap_or("<unset>");
    let mode = at(pvc, &["spec", "volumeMode"])
        .and_then(Value::as_str)
        .unwrap_or("<unset>");
    vec![
        name(pvc),
        json!(phase),
        json!(volume_name),
        json!(capacity),
        json!(modes),
        json!(storage_class(pvc)),
        json!(vac),
        ctx.age(pvc),
        json!(mode),
    ]
}

pub(super) fn pv_cells(pv: &Value, ctx: &Ctx) -> Vec<Value> {
    let claim = match at(pv, &["spec", "claimRef"]) {
        Some(c) => format!("{}/{}", s(c, &["namespace"]), s(c, &["name"])),
        None => String::new(),
    };
    let mut phase = s(pv, &["status", "phase"]).to_string();
    if at(pv, &["metadata", "deletionTimestamp"]).is_some() {
        phase = "Terminating".into();
    }
    let capacity = match s(pv, &["spec", "capacity", "storage"]) {
        "" => "0".to_string(),
        q => q.to_string(),
    };
    let vac = at(pv, &["spec", "volumeAttributesClassName"])
        .and_then(Value::as_str)
        .unwrap_or("<unset>");
    let mode = at(pv, &["spec", "volumeMode"])
        .and_then(Value::as_str)
        .unwrap_or("<unset>");
    vec![
        name(pv),
        json!(capacity),
        json!(access_modes(arr(pv, &["spec", "accessModes"]))),
        json!(s(pv, &["spec", "persistentVolumeReclaimPolicy"])),
        json!(phase),
        json!(claim),
        json!(storage_class(pv)),
        json!(vac),
        json!(s(pv, &["status", "reason"])),
        ctx.age(pv),
        json!(mode),
    ]
}

// --- workloads -------------------------------------------------------------------------------

/// `kind.group/name` (lowercase kind) of the controlling owner, or `<none>`.
pub(super) fn controller_of(obj: &Value) -> String {
    let Some(owner) = arr(obj, &["metadata", "ownerReferences"])
        .iter()
        .find(|o| boolean(o, &["controller"]))
    else {
        return "<none>".into();
    };
    let api_version = s(owner, &["apiVersion"]);
    let group = match api_version.split_once('/') {
        Some((g, _)) => g,
        None => "",
    };
    let kind = s(owner, &["kind"]);
    let owner_name = s(owner, &["name"]);
    if kind.is_empty() && group.is_empty() {
        return owner_name.to_string();
    }
    let group_kind = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    format!("{}/{}", group_kind.to_lowercase(), owner_name)
}

pub(super) fn job_condition(job: &Value, ty: &str) -> bool {
    arr(job, &["status", "conditions"])
        .iter()
        .find(|c| s(c, &["type"]) == ty)
        .is_some_and(|c| s(c, &["status"]) == "True")
}

pub(super) fn job_cells(job: &Value, ctx: &Ctx) -> Vec<Value> {
    let succeeded = int(job, &["status", "succeeded"]);
    let completions = match at(job, &["spec", "completions"]).and_then(Value::as_i64) {
        Some(c) => format!("{succeeded}/{c}"),
        None => {
            let parallelism = int(job, &["spec", "parallelism"]);
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let start = parse_time(s(job, &["status", "startTime"]));
    let completion = parse_time(s(job, &["status", "completionTime"]));
    let duration = match (start, completion) {
        (None, _) => String::new(),
        (Some(st), None) => ctx.since_ts(st),
        (Some(st), Some(done)) => {
            let nanos = done.as_nanosecond() - st.as_nanosecond();
            human_duration((nanos / 1_000_000_000) as i64)
        }
    };
    let status = if job_condition(job, "Complete") {
        "Complete"
    } else if job_condition(job, "Failed") {
        "Failed"
    } else if at(job, &["metadata", "deletionTimestamp"]).is_some() {
        "Terminating"
    } else if job_condition(job, "Suspended") {
        "Suspended"
    } else if job_condition(job, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = container_cells(template_containers(job));
    vec![
        name(job),
        json!(status),
        json!(completions),
        json!(duration),
        ctx.age(job),
        names,
        images,
        json!(format_label_selector(at(job, &["spec", "selector"]))),
    ]
}

pub(super) fn hpa_metrics(hpa: &Value) -> String {
    let specs = arr(hpa, &["spec", "metrics"]);
    if specs.is_empty() {
        return "<none>".into();
    }
    let statuses = arr(hpa, &["status", "currentMetrics"]);
    let status_of = |i: usize, key: &str| statuses.get(i).and_then(|st| at(st, &[key]));
    let q = |v: Option<&Value>| -> String {
        match v {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        }
    };
    let max = 2;
    let mut list: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let item = match s(spec, &["type"]) {
            "External" | "Object" => {
                let key = if s(spec, &["type"]) == "External" {
                    "external"
                } else {
                    "object"
                };
                let target = at(spec, &[key, "target"]);
                let avg = target.and_then(|t| at(t, &["averageValue"]));
                if avg.is_some() {
                    let current = status_of(i, key)
                        .and_then(|st| at(st, &["current", "averageValue"]))
                        .map(|v| q(Some(v)))
                        .unwrap_or_else(|| "<unknown>".into());
                    format!("{}/{} (avg)", current, q(avg))
                } else {
                    let current = status_of(i, key)
                        .map(|st| q(at(st, &["current", "value"])))
                        .unwrap_or_else(|| "<unknown>".into());
                    format!("{}/{}", current, q(target.and_then(|t| at(t, &["value"]))))
                }
            }
            "Pods" => {
                let current = status_of(i, "pods")
                    .map(|st| q(at(st, &["current", "averageValue"])))
                    .unwrap_or_else(|| "<unknown>".into());
                format!(
                    "{}/{}",
                    current,
                    q(at(spec, &["pods", "target", "averageValue"]))
                )
            }
            "Resource" | "ContainerResource" => {
                let key = if s(spec, &["type"]) == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let res_name = s(spec, &[key, "name"]);
                let avg = at(spec, &[key, "target", "averageValue"]);
                if avg.is_some() {
                    let current = status_of(i, key)
                        .map(|st| q(at(st, &["current", "averageValue"])))
                        .unwrap_or_else(|| "<unknown>".into());
                    format!("{}: {}/{}", res_name, current, q(avg))
                } else {
                    let current = status_of(i, key)
                        .and_then(|st| at(st, &["current", "averageUtilization"]))
                        .and_then(Value::as_i64)
                        .map(|u| format!("{u}%"))
                        .unwrap_or_else(|| "<unknown>".into());
                    let target = at(spec, &[key, "target", "averageUtilization"])
                        .and_then(Value::as_i64)
                        .map(|u| format!("{u}%"))
                        .unwrap_or_else(|| "<auto>".into());
                    format!("{res_name}: {current}/{target}")
                }
            }
            _ => "<unknown type>".into(),
        };
        list.push(item);
    }
    let count = list.len();
    if count > max {
        list.truncate(max);
        return format!("{} + {} more...", list.join(", "), count - max);
    }
    list.join(", ")
}

pub(super) fn hpa_cells(hpa: &Value, ctx: &Ctx) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        s(hpa, &["spec", "scaleTargetRef", "kind"]),
        s(hpa, &["spec", "scaleTargetRef", "name"])
    );
    let min_pods = at(hpa, &["spec", "minReplicas"])
        .and_then(Value::as_i64)
        .map(|m| m.to_string())
        .unwrap_or_else(|| "<unset>".into());
    vec![
        name(hpa),
        json!(reference),
        json!(hpa_metrics(hpa)),
        json!(min_pods),
        json!(int(hpa, &["spec", "maxReplicas"])),
        json!(int(hpa, &["status", "currentReplicas"])),
        ctx.age(hpa),
    ]
}
