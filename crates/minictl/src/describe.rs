//! `describe`: kubectl's describe layout (its tabwriter, minwidth 0 and padding 2, fed with
//! tab-separated lines) for the common kinds, with the Events section of the object.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::cluster::{encode_query, Cluster, ResourceType};
use crate::error::Result;
use crate::output::tabwriter;

/// Builds describe text: lines with tabs, laid out at the end.
#[derive(Default)]
struct Text(String);

impl Text {
    fn line(&mut self, level: usize, s: &str) {
        self.0.push_str(&"  ".repeat(level));
        self.0.push_str(s);
        self.0.push('\n');
    }
}

/// The value of a string field, or `<none>`.
fn or_none(v: &Value) -> String {
    match v {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => "<none>".into(),
    }
}

/// kubectl's `Mon, 02 Jan 2006 15:04:05 -0700` (in UTC).
pub fn describe_time(ts: &str) -> String {
    ts.parse::<jiff::Timestamp>()
        .map(|t| t.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string())
        .unwrap_or_else(|_| "<unknown>".into())
}

/// kubectl's short human durations (`5s`, `3m2s`, `4h`, `2d`).
pub fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    if s < 120 {
        format!("{s}s")
    } else if s < 600 {
        let (m, r) = (s / 60, s % 60);
        if r == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{r}s")
        }
    } else if s < 3 * 3600 {
        format!("{}m", s / 60)
    } else if s < 8 * 3600 {
        let (h, m) = (s / 3600, (s % 3600) / 60);
        if m == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{m}m")
        }
    } else if s < 48 * 3600 {
        format!("{}h", s / 3600)
    } else {
        format!("{}d", s / 86400)
    }
}

fn age_of(ts: &Value) -> String {
    ts.as_str()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .map(|t| human_duration(jiff::Timestamp::now().as_second() - t.as_second()))
        .unwrap_or_else(|| "<unknown>".into())
}

/// Labels/annotations as kubectl lists them: first on the line, the rest indented below.
fn map_lines(t: &mut Text, level: usize, title: &str, map: &Value, separator: &str) {
    let entries: BTreeMap<String, String> = map
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let entries: Vec<(String, String)> = entries
        .into_iter()
        .filter(|(k, _)| k != crate::apply::LAST_APPLIED)
        .collect();
    if entries.is_empty() {
        t.line(level, &format!("{title}:\t<none>"));
        return;
    }
    for (i, (k, v)) in entries.iter().enumerate() {
        let head = if i == 0 {
            format!("{title}:")
        } else {
            String::new()
        };
        t.line(level, &format!("{head}\t{k}{separator}{v}"));
    }
}

fn selector_text(sel: &Value) -> String {
    let labels = crate::get::format_labels(sel);
    if labels == "<none>" {
        String::new()
    } else {
        labels
    }
}

async fn events(cluster: &Cluster, t: &mut Text, object: &Value) -> Result<()> {
    let uid = object["metadata"]["uid"].as_str().unwrap_or_default();
    let ns = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    let selector = format!("involvedObject.uid={uid}");
    let list = cluster
        .get(&format!(
            "/api/v1/namespaces/{ns}/events?fieldSelector={}",
            encode_query(&selector)
        ))
        .await?;
    let mut items: Vec<Value> = list["items"].as_array().cloned().unwrap_or_default();
    items.retain(|e| e["involvedObject"]["uid"] == uid);
    if items.is_empty() {
        t.line(0, "Events:\t<none>");
        return Ok(());
    }
    items.sort_by_key(|e| {
        e["lastTimestamp"]
            .as_str()
            .or(e["eventTime"].as_str())
            .unwrap_or_default()
            .to_string()
    });
    t.line(0, "Events:");
    t.line(1, "Type\tReason\tAge\tFrom\tMessage");
    t.line(1, "----\t------\t----\t----\t-------");
    for e in items {
        let last = if e["lastTimestamp"].is_string() {
            &e["lastTimestamp"]
        } else {
            &e["eventTime"]
        };
        let count = e["count"].as_i64().unwrap_or(1);
        let age = if count > 1 {
            format!(
                "{} (x{count} over {})",
                age_of(last),
                age_of(&e["firstTimestamp"])
            )
        } else {
            age_of(last)
        };
        let from = match (
            e["source"]["component"].as_str(),
            e["source"]["host"].as_str(),
        ) {
            (Some(c), Some(h)) => format!("{c}, {h}"),
            (Some(c), None) => c.to_string(),
            _ => e["reportingComponent"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        };
        t.line(
            1,
            &format!(
                "{}\t{}\t{age}\t{from}\t{}",
                or_none(&e["type"]),
                or_none(&e["reason"]),
                e["message"].as_str().unwrap_or_default().trim()
            ),
        );
    }
    Ok(())
}

fn header(t: &mut Text, o: &Value, namespaced: bool, with_time: bool) {
    let m = &o["metadata"];
    t.line(0, &format!("Name:\t{}", or_none(&m["name"])));
    if namespaced {
        t.line(0, &format!("Namespace:\t{}", or_none(&m["namespace"])));
    }
    if with_time {
        t.line(
            0,
            &format!(
                "CreationTimestamp:\t{}",
                describe_time(m["creationTimestamp"].as_str().unwrap_or_default())
            ),
        );
    }
    map_lines(t, 0, "Labels", &m["labels"], "=");
    map_lines(t, 0, "Annotations", &m["annotations"], ": ");
}

fn pod_template(t: &mut Text, template: &Value) {
    t.line(0, "Pod Template:");
    map_lines(t, 1, "Labels", &template["metadata"]["labels"], "=");
    if template["metadata"]["annotations"]
        .as_object()
        .is_some_and(|a| !a.is_empty())
    {
        map_lines(
            t,
            1,
            "Annotations",
            &template["metadata"]["annotations"],
            ": ",
        );
    }
    let spec = &template["spec"];
    if let Some(sa) = spec["serviceAccountName"]
        .as_str()
        .filter(|s| !s.is_empty() && *s != "default")
    {
        t.line(1, &format!("Service Account:\t{sa}"));
    }
    containers(t, true, spec, "containers", "Containers", None);
    volumes(t, 1, spec);
    t.line(
        1,
        &format!(
            "Node-Selectors:\t{}",
            crate::get::format_labels(&spec["nodeSelector"])
        ),
    );
    t.line(
        1,
        &format!(
            "Tolerations:\t{}",
            if spec["tolerations"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
            {
                "<present>"
            } else {
                "<none>"
            }
        ),
    );
}

fn volumes(t: &mut Text, level: usize, spec: &Value) {
    let vols = spec["volumes"].as_array().cloned().unwrap_or_default();
    if vols.is_empty() {
        t.line(level, "Volumes:\t<none>");
        return;
    }
    t.line(level, "Volumes:");
    for v in vols {
        t.line(level + 1, &format!("{}:", or_none(&v["name"])));
        if let Some(cm) = v.get("configMap") {
            t.line(
                level + 2,
                "Type:\tConfigMap (a volume populated by a ConfigMap)",
            );
            t.line(level + 2, &format!("Name:\t{}", or_none(&cm["name"])));
            t.line(
                level + 2,
                &format!("Optional:\t{}", cm["optional"].as_bool().unwrap_or(false)),
            );
        } else if let Some(s) = v.get("secret") {
            t.line(level + 2, "Type:\tSecret (a volume populated by a Secret)");
            t.line(
                level + 2,
                &format!("SecretName:\t{}", or_none(&s["secretName"])),
            );
            t.line(
                level + 2,
                &format!("Optional:\t{}", s["optional"].as_bool().unwrap_or(false)),
            );
        } else if let Some(e) = v.get("emptyDir") {
            t.line(
                level + 2,
                "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)",
            );
            t.line(
                level + 2,
                &format!("Medium:\t{}", e["medium"].as_str().unwrap_or_default()),
            );
            t.line(
                level + 2,
                &format!(
                    "SizeLimit:\t{}",
                    e["sizeLimit"].as_str().unwrap_or("<unset>")
                ),
            );
        }
    }
}

/// The containers of a pod (`in_template` false: title at the margin, names at two spaces) or
/// of a pod template (title at two spaces, names at three); properties always at four.
fn containers(
    t: &mut Text,
    in_template: bool,
    spec: &Value,
    field: &str,
    title: &str,
    statuses: Option<&Value>,
) {
    let list = spec[field].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        return;
    }
    t.line(usize::from(in_template), &format!("{title}:"));
    for c in list {
        let name = c["name"].as_str().unwrap_or_default();
        t.line(1, &format!("{}{name}:", if in_template { " " } else { "" }));
        let l = 2;
        let status = statuses
            .and_then(|s| s.as_array())
            .and_then(|a| a.iter().find(|s| s["name"] == name));
        if let Some(s) = status {
            t.line(
                l,
                &format!(
                    "Container ID:\t{}",
                    s["containerID"].as_str().unwrap_or_default()
                ),
            );
        }
        t.line(l, &format!("Image:\t{}", or_none(&c["image"])));
        if let Some(s) = status {
            t.line(
                l,
                &format!("Image ID:\t{}", s["imageID"].as_str().unwrap_or_default()),
            );
        }
        let ports = c["ports"].as_array().cloned().unwrap_or_default();
        if ports.is_empty() {
            t.line(l, "Port:\t<none>");
            t.line(l, "Host Port:\t<none>");
        } else {
            let show = |key: &str| {
                ports
                    .iter()
                    .map(|p| {
                        format!(
                            "{}/{}",
                            p[key].as_i64().unwrap_or(0),
                            p["protocol"].as_str().unwrap_or("TCP")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            t.line(
                l,
                &format!(
                    "{}:\t{}",
                    if ports.len() > 1 { "Ports" } else { "Port" },
                    show("containerPort")
                ),
            );
            t.line(
                l,
                &format!(
                    "{}:\t{}",
                    if ports.len() > 1 {
                        "Host Ports"
                    } else {
                        "Host Port"
                    },
                    show("hostPort")
                ),
            );
        }
        if let Some(cmd) = c["command"].as_array().filter(|a| !a.is_empty()) {
            t.line(l, "Command:");
            for part in cmd {
                t.line(l + 1, part.as_str().unwrap_or_default());
            }
        }
        if let Some(args) = c["args"].as_array().filter(|a| !a.is_empty()) {
            t.line(l, "Args:");
            for part in args {
                t.line(l + 1, part.as_str().unwrap_or_default());
            }
        }
        if let Some(s) = status {
            let state = &s["state"];
            if let Some(running) = state.get("running") {
                t.line(l, "State:\tRunning");
                t.line(
                    l + 1,
                    &format!(
                        "Started:\t{}",
                        describe_time(running["startedAt"].as_str().unwrap_or_default())
                    ),
                );
            } else if let Some(waiting) = state.get("waiting") {
                t.line(l, "State:\tWaiting");
                t.line(
                    l + 1,
                    &format!(
                        "Reason:\t{}",
                        waiting["reason"].as_str().unwrap_or_default()
                    ),
                );
            } else if let Some(term) = state.get("terminated") {
                t.line(l, "State:\tTerminated");
                t.line(
                    l + 1,
                    &format!("Reason:\t{}", term["reason"].as_str().unwrap_or_default()),
                );
                t.line(
                    l + 1,
                    &format!("Exit Code:\t{}", term["exitCode"].as_i64().unwrap_or(0)),
                );
            } else {
                t.line(l, "State:\tWaiting");
            }
            t.line(
                l,
                &format!("Ready:\t{}", s["ready"].as_bool().unwrap_or(false)),
            );
            t.line(
                l,
                &format!(
                    "Restart Count:\t{}",
                    s["restartCount"].as_i64().unwrap_or(0)
                ),
            );
        }
        for (kind, title) in [("limits", "Limits"), ("requests", "Requests")] {
            if let Some(r) = c["resources"][kind].as_object().filter(|r| !r.is_empty()) {
                t.line(l, &format!("{title}:"));
                let sorted: BTreeMap<_, _> = r.iter().collect();
                for (k, v) in sorted {
                    t.line(l + 1, &format!("{k}:\t{}", v.as_str().unwrap_or_default()));
                }
            }
        }
        let env = c["env"].as_array().cloned().unwrap_or_default();
        if env.is_empty() {
            t.line(l, "Environment:\t<none>");
        } else {
            t.line(l, "Environment:");
            for e in env {
                t.line(
                    l + 1,
                    &format!(
                        "{}:\t{}",
                        or_none(&e["name"]),
                        e["value"].as_str().unwrap_or_default()
                    ),
                );
            }
        }
        let mounts = c["volumeMounts"].as_array().cloned().unwrap_or_default();
        if mounts.is_empty() {
            t.line(l, "Mounts:\t<none>");
        } else {
            t.line(l, "Mounts:");
            for m in mounts {
                let mode = if m["readOnly"] == true { "ro" } else { "rw" };
                t.line(
                    l + 1,
                    &format!(
                        "{} from {} ({mode})",
                        or_none(&m["mountPath"]),
                        or_none(&m["name"])
                    ),
                );
            }
        }
    }
}

fn conditions(t: &mut Text, status: &Value, with_reason: bool) {
    let list = status["conditions"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        return;
    }
    t.line(0, "Conditions:");
    if with_reason {
        t.line(1, "Type\tStatus\tReason");
        t.line(1, "----\t------\t------");
        for c in list {
            t.line(
                1,
                &format!(
                    "{}\t{}\t{}",
                    or_none(&c["type"]),
                    or_none(&c["status"]),
                    c["reason"].as_str().unwrap_or_default()
                ),
            );
        }
    } else {
        t.line(1, "Type\tStatus");
        for c in list {
            t.line(
                1,
                &format!("{} \t{} ", or_none(&c["type"]), or_none(&c["status"])),
            );
        }
    }
}

async fn describe_deployment(cluster: &Cluster, t: &mut Text, d: &Value) -> Result<()> {
    header(t, d, true, true);
    let spec = &d["spec"];
    let st = &d["status"];
    let n = |v: &Value| v.as_i64().unwrap_or(0);
    t.line(
        0,
        &format!(
            "Selector:\t{}",
            selector_text(&spec["selector"]["matchLabels"])
        ),
    );
    t.line(
        0,
        &format!(
            "Replicas:\t{} desired | {} updated | {} total | {} available | {} unavailable",
            n(&spec["replicas"]),
            n(&st["updatedReplicas"]),
            n(&st["replicas"]),
            n(&st["availableReplicas"]),
            n(&st["unavailableReplicas"])
        ),
    );
    let strategy = spec["strategy"]["type"].as_str().unwrap_or("RollingUpdate");
    t.line(0, &format!("StrategyType:\t{strategy}"));
    t.line(
        0,
        &format!("MinReadySeconds:\t{}", n(&spec["minReadySeconds"])),
    );
    if strategy == "RollingUpdate" {
        let ru = &spec["strategy"]["rollingUpdate"];
        let show = |v: &Value| match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => "25%".into(),
        };
        t.line(
            0,
            &format!(
                "RollingUpdateStrategy:\t{} max unavailable, {} max surge",
                show(&ru["maxUnavailable"]),
                show(&ru["maxSurge"])
            ),
        );
    }
    pod_template(t, &spec["template"]);
    conditions(t, st, true);
    // Old and new ReplicaSets (by owner and template).
    let uid = d["metadata"]["uid"].clone();
    let ns = d["metadata"]["namespace"].as_str().unwrap_or_default();
    let list = cluster
        .get(&format!("/apis/apps/v1/namespaces/{ns}/replicasets"))
        .await?;
    let revision = d["metadata"]["annotations"]["deployment.kubernetes.io/revision"].clone();
    let mut new_rs = None;
    let mut old = Vec::new();
    for rs in list["items"].as_array().cloned().unwrap_or_default() {
        let owned = rs["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|o| o["uid"] == uid);
        if !owned {
            continue;
        }
        let text = format!(
            "{} ({}/{} replicas created)",
            or_none(&rs["metadata"]["name"]),
            n(&rs["status"]["replicas"]),
            n(&rs["spec"]["replicas"])
        );
        if rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == revision {
            new_rs = Some(text);
        } else {
            old.push(text);
        }
    }
    t.line(
        0,
        &format!(
            "OldReplicaSets:\t{}",
            if old.is_empty() {
                "<none>".into()
            } else {
                old.join(", ")
            }
        ),
    );
    t.line(
        0,
        &format!(
            "NewReplicaSet:\t{}",
            new_rs.unwrap_or_else(|| "<none>".into())
        ),
    );
    Ok(())
}

fn describe_service(t: &mut Text, s: &Value, endpoints: &str) {
    header(t, s, true, false);
    let spec = &s["spec"];
    t.line(
        0,
        &format!("Selector:\t{}", selector_text(&spec["selector"])),
    );
    t.line(
        0,
        &format!("Type:\t{}", spec["type"].as_str().unwrap_or("ClusterIP")),
    );
    if let Some(p) = spec["ipFamilyPolicy"].as_str() {
        t.line(0, &format!("IP Family Policy:\t{p}"));
    }
    if let Some(f) = spec["ipFamilies"].as_array() {
        t.line(
            0,
            &format!(
                "IP Families:\t{}",
                f.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        );
    }
    t.line(0, &format!("IP:\t{}", or_none(&spec["clusterIP"])));
    if let Some(ips) = spec["clusterIPs"].as_array() {
        t.line(
            0,
            &format!(
                "IPs:\t{}",
                ips.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        );
    }
    for p in spec["ports"].as_array().cloned().unwrap_or_default() {
        let name = p["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .unwrap_or("<unset>");
        let proto = p["protocol"].as_str().unwrap_or("TCP");
        t.line(0, &format!("Port:\t{name}\t{}/{proto}", n64(&p["port"])));
        let target = match &p["targetPort"] {
            Value::String(s) => s.clone(),
            v => n64(v).to_string(),
        };
        t.line(0, &format!("TargetPort:\t{target}/{proto}"));
        if let Some(np) = p["nodePort"].as_i64() {
            t.line(0, &format!("NodePort:\t{name}\t{np}/{proto}"));
        }
        t.line(0, &format!("Endpoints:\t{endpoints}"));
    }
    t.line(
        0,
        &format!(
            "Session Affinity:\t{}",
            spec["sessionAffinity"].as_str().unwrap_or("None")
        ),
    );
    if let Some(p) = spec["externalTrafficPolicy"].as_str() {
        t.line(0, &format!("External Traffic Policy:\t{p}"));
    }
    if let Some(p) = spec["internalTrafficPolicy"].as_str() {
        t.line(0, &format!("Internal Traffic Policy:\t{p}"));
    }
}

fn n64(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn describe_pod(t: &mut Text, p: &Value) {
    let m = &p["metadata"];
    let spec = &p["spec"];
    let st = &p["status"];
    t.line(0, &format!("Name:\t{}", or_none(&m["name"])));
    t.line(0, &format!("Namespace:\t{}", or_none(&m["namespace"])));
    t.line(0, &format!("Priority:\t{}", n64(&spec["priority"])));
    if let Some(sa) = spec["serviceAccountName"].as_str() {
        t.line(0, &format!("Service Account:\t{sa}"));
    }
    let node = match (spec["nodeName"].as_str(), st["hostIP"].as_str()) {
        (Some(n), Some(ip)) => format!("{n}/{ip}"),
        (Some(n), None) => n.to_string(),
        _ => "<none>".into(),
    };
    t.line(0, &format!("Node:\t{node}"));
    if let Some(start) = st["startTime"].as_str() {
        t.line(0, &format!("Start Time:\t{}", describe_time(start)));
    }
    map_lines(t, 0, "Labels", &m["labels"], "=");
    map_lines(t, 0, "Annotations", &m["annotations"], ": ");
    t.line(0, &format!("Status:\t{}", or_none(&st["phase"])));
    t.line(
        0,
        &format!("IP:\t{}", st["podIP"].as_str().unwrap_or_default()),
    );
    let ips = st["podIPs"].as_array().cloned().unwrap_or_default();
    if ips.is_empty() {
        t.line(0, "IPs:\t<none>");
    } else {
        t.line(0, "IPs:");
        for ip in ips {
            t.line(1, &format!("IP:\t{}", or_none(&ip["ip"])));
        }
    }
    if let Some(owner) = m["ownerReferences"]
        .as_array()
        .and_then(|a| a.iter().find(|o| o["controller"] == true))
    {
        t.line(
            0,
            &format!(
                "Controlled By:\t{}/{}",
                or_none(&owner["kind"]),
                or_none(&owner["name"])
            ),
        );
    }
    containers(
        t,
        false,
        spec,
        "initContainers",
        "Init Containers",
        Some(&st["initContainerStatuses"]),
    );
    containers(
        t,
        false,
        spec,
        "containers",
        "Containers",
        Some(&st["containerStatuses"]),
    );
    conditions(t, st, false);
    volumes(t, 0, spec);
    t.line(0, &format!("QoS Class:\t{}", or_none(&st["qosClass"])));
    t.line(
        0,
        &format!(
            "Node-Selectors:\t{}",
            crate::get::format_labels(&spec["nodeSelector"])
        ),
    );
    let tolerations = spec["tolerations"].as_array().cloned().unwrap_or_default();
    if tolerations.is_empty() {
        t.line(0, "Tolerations:\t<none>");
    }
    for (i, tol) in tolerations.iter().enumerate() {
        let head = if i == 0 { "Tolerations:" } else { "" };
        let key = tol["key"].as_str().unwrap_or_default();
        let mut text = key.to_string();
        if let Some(v) = tol["value"].as_str().filter(|v| !v.is_empty()) {
            text.push_str(&format!("={v}"));
        }
        let effect = tol["effect"].as_str().unwrap_or_default();
        if !effect.is_empty() {
            text.push_str(&format!(":{effect}"));
        }
        // An Exists toleration without a value (kubectl marks it; alone it tolerates all).
        if tol["operator"] == "Exists" && tol["value"].as_str().is_none_or(str::is_empty) {
            text.push_str(if key.is_empty() && effect.is_empty() {
                "op=Exists"
            } else {
                " op=Exists"
            });
        }
        if let Some(s) = tol["tolerationSeconds"].as_i64() {
            text.push_str(&format!(" for {s}s"));
        }
        t.line(0, &format!("{head}\t{text}"));
    }
}

fn describe_data(t: &mut Text, o: &Value, secret: bool) {
    header(t, o, true, false);
    if secret {
        t.line(0, "");
        t.line(
            0,
            &format!("Type:\t{}", o["type"].as_str().unwrap_or("Opaque")),
        );
        t.line(0, "");
        t.line(0, "Data");
        t.line(0, "====");
        let data: BTreeMap<String, Value> = o["data"]
            .as_object()
            .map(|m| m.clone().into_iter().collect())
            .unwrap_or_default();
        for (k, v) in data {
            let len = base64_len(v.as_str().unwrap_or_default());
            t.line(0, &format!("{k}:\t{len} bytes"));
        }
        return;
    }
    t.line(0, "");
    t.line(0, "Data");
    t.line(0, "====");
    let data: BTreeMap<String, Value> = o["data"]
        .as_object()
        .map(|m| m.clone().into_iter().collect())
        .unwrap_or_default();
    for (k, v) in data {
        t.line(0, &format!("{k}:"));
        t.line(0, "----");
        t.line(0, v.as_str().unwrap_or_default());
        t.line(0, "");
    }
    t.line(0, "");
    t.line(0, "BinaryData");
    t.line(0, "====");
    t.line(0, "");
}

fn base64_len(s: &str) -> usize {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map(|b| b.len())
        .unwrap_or(0)
}

/// A namespace: its phase, then its quotas and limit ranges when the server serves them (as
/// kubectl, which prints nothing for a list it could not read).
async fn describe_namespace(cluster: &Cluster, t: &mut Text, o: &Value) -> Result<()> {
    header(t, o, false, false);
    t.line(0, &format!("Status:\t{}", or_none(&o["status"]["phase"])));
    let name = o["metadata"]["name"].as_str().unwrap_or_default();
    for (plural, none) in [
        ("resourcequotas", "No resource quota."),
        ("limitranges", "No LimitRange resource."),
    ] {
        if let Ok(list) = cluster
            .get(&format!("/api/v1/namespaces/{name}/{plural}"))
            .await
        {
            if list["items"].as_array().is_none_or(|a| a.is_empty()) {
                t.line(0, "");
                t.line(0, none);
            }
        }
    }
    Ok(())
}

fn describe_generic(t: &mut Text, rt: &ResourceType, o: &Value) {
    header(t, o, rt.namespaced, false);
    if let Some(spec) = o.get("spec") {
        if let Some(r) = spec["replicas"].as_i64() {
            t.line(0, &format!("Replicas:\t{r} desired"));
        }
        if spec["selector"].is_object() {
            let sel = if spec["selector"]["matchLabels"].is_object() {
                &spec["selector"]["matchLabels"]
            } else {
                &spec["selector"]
            };
            t.line(0, &format!("Selector:\t{}", selector_text(sel)));
        }
        if spec["template"].is_object() {
            pod_template(t, &spec["template"]);
        }
    }
}

/// Describes one object (already fetched) of a type.
pub async fn describe_object(
    cluster: &Cluster,
    rt: &ResourceType,
    object: &Value,
) -> Result<String> {
    let mut t = Text::default();
    match rt.kind.as_str() {
        "Deployment" => describe_deployment(cluster, &mut t, object).await?,
        "Pod" => describe_pod(&mut t, object),
        "Service" => {
            let ns = object["metadata"]["namespace"].as_str().unwrap_or_default();
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            let endpoints = match cluster
                .get(&format!("/api/v1/namespaces/{ns}/endpoints/{name}"))
                .await
            {
                Ok(ep) => {
                    let mut addrs = Vec::new();
                    for subset in ep["subsets"].as_array().cloned().unwrap_or_default() {
                        for a in subset["addresses"].as_array().cloned().unwrap_or_default() {
                            for p in subset["ports"].as_array().cloned().unwrap_or_default() {
                                addrs.push(format!("{}:{}", or_none(&a["ip"]), n64(&p["port"])));
                            }
                        }
                    }
                    addrs.join(",")
                }
                Err(_) => String::new(),
            };
            describe_service(&mut t, object, &endpoints);
        }
        "ConfigMap" => describe_data(&mut t, object, false),
        "Namespace" => describe_namespace(cluster, &mut t, object).await?,
        "Secret" => describe_data(&mut t, object, true),
        _ => describe_generic(&mut t, rt, object),
    }
    // kubectl's namespace and secret describers show no events.
    if !matches!(rt.kind.as_str(), "Namespace" | "Secret") {
        events(cluster, &mut t, object).await?;
    }
    Ok(tabwriter(&t.0, 0, 2))
}

/// `describe TYPE [NAME...]` (all objects of the type without names, as kubectl).
pub async fn run(
    cluster: &Cluster,
    args: &[String],
    selector: Option<&str>,
) -> Result<Vec<crate::Error>> {
    let targets = crate::get::parse_targets(args)?;
    let mut texts = Vec::new();
    let mut errors = Vec::new();
    for target in targets {
        let rt = cluster.resolve(&target.type_word).await?;
        let ns = rt.namespaced.then_some(cluster.namespace.as_str());
        let objects = if target.names.is_empty() {
            let mut path = rt.collection_path(ns);
            if let Some(l) = selector {
                path = format!("{path}?labelSelector={}", encode_query(l));
            }
            cluster.get(&path).await?["items"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        } else {
            let mut out = Vec::new();
            for name in &target.names {
                match cluster.get(&rt.object_path(ns, name)).await {
                    Ok(o) => out.push(o),
                    Err(e) => errors.push(e),
                }
            }
            out
        };
        for o in objects {
            texts.push(describe_object(cluster, &rt, &o).await?);
        }
    }
    print!("{}", texts.join("\n\n"));
    Ok(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(185), "3m5s");
        assert_eq!(human_duration(3600 * 5 + 60 * 7), "5h7m");
        assert_eq!(human_duration(86400 * 3), "3d");
    }

    #[test]
    fn describe_times() {
        assert_eq!(
            describe_time("2025-03-04T05:06:07Z"),
            "Tue, 04 Mar 2025 05:06:07 +0000"
        );
    }
}
