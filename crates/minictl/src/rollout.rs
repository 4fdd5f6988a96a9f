//! `rollout status|history|undo|pause|resume|restart` for Deployments and `expose`, with
//! kubectl's messages and its undo semantics (the ReplicaSet's template copied back into the
//! Deployment, minus the pod-template-hash label).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cluster::{Cluster, ResourceType};
use crate::error::{Error, Result};
use crate::output;
use crate::verbs::one_object;

/// Annotations undo does not copy from a ReplicaSet (kubectl's annotationsToSkip).
const SKIPPED_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

/// kubectl's deployment status line, and whether the rollout is done.
pub fn deployment_status(d: &Value) -> Result<(String, bool)> {
    let name = d["metadata"]["name"].as_str().unwrap_or_default();
    let generation = d["metadata"]["generation"].as_i64().unwrap_or(0);
    let status = &d["status"];
    let observed = status["observedGeneration"].as_i64().unwrap_or(0);
    if generation > observed {
        return Ok((
            "Waiting for deployment spec update to be observed...".into(),
            false,
        ));
    }
    let progressing = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Progressing");
    if progressing.is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded") {
        return Err(Error::Usage(format!(
            "deployment \"{name}\" exceeded its progress deadline"
        )));
    }
    let count = |f: &str| status[f].as_i64().unwrap_or(0);
    let (updated, replicas, available) = (
        count("updatedReplicas"),
        count("replicas"),
        count("availableReplicas"),
    );
    if let Some(wanted) = d["spec"]["replicas"].as_i64() {
        if updated < wanted {
            return Ok((format!("Waiting for deployment \"{name}\" rollout to finish: {updated} out of {wanted} new replicas have been updated..."), false));
        }
    }
    if replicas > updated {
        return Ok((format!("Waiting for deployment \"{name}\" rollout to finish: {} old replicas are pending termination...", replicas - updated), false));
    }
    if available < updated {
        return Ok((format!("Waiting for deployment \"{name}\" rollout to finish: {available} of {updated} updated replicas are available..."), false));
    }
    Ok((
        format!("deployment \"{name}\" successfully rolled out"),
        true,
    ))
}

async fn deployment(
    cluster: &Cluster,
    args: &[String],
) -> Result<(ResourceType, String, String, Value)> {
    let (rt, name) = one_object(cluster, args).await?;
    if rt.kind != "Deployment" {
        return Err(Error::Usage(format!(
            "no status viewer has been implemented for {}",
            rt.kind
        )));
    }
    let path = rt.object_path(Some(&cluster.namespace), &name);
    let d = cluster.get(&path).await?;
    Ok((rt, name, path, d))
}

/// `rollout status`: prints each new status line until the rollout is done or `timeout` passes.
pub async fn status(
    cluster: &Cluster,
    args: &[String],
    timeout: Option<Duration>,
    watch: bool,
) -> Result<()> {
    let (_, _, path, _) = deployment(cluster, args).await?;
    let deadline = timeout.filter(|t| !t.is_zero()).map(|t| Instant::now() + t);
    let mut last = String::new();
    loop {
        let d = cluster.get(&path).await?;
        let (line, done) = deployment_status(&d)?;
        if line != last {
            println!("{line}");
            last = line;
        }
        if done || !watch {
            return Ok(());
        }
        if deadline.is_some_and(|t| Instant::now() > t) {
            return Err(Error::Usage("timed out waiting for the condition".into()));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The ReplicaSets a Deployment owns, with their revisions, oldest first.
async fn owned_replicasets(cluster: &Cluster, d: &Value) -> Result<Vec<(i64, Value)>> {
    let uid = d["metadata"]["uid"].as_str().unwrap_or_default();
    let ns = d["metadata"]["namespace"]
        .as_str()
        .unwrap_or(&cluster.namespace);
    let list = cluster
        .get(&format!("/apis/apps/v1/namespaces/{ns}/replicasets"))
        .await?;
    let mut out: Vec<(i64, Value)> = list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|rs| {
            rs["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|o| o["uid"] == uid && o["controller"] == true)
        })
        .map(|rs| {
            let rev = rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                .as_str()
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            (rev, rs)
        })
        .collect();
    out.sort_by_key(|(rev, _)| *rev);
    Ok(out)
}

/// `rollout history`.
pub async fn history(cluster: &Cluster, args: &[String], revision: Option<i64>) -> Result<()> {
    let (rt, name, _, d) = deployment(cluster, args).await?;
    let sets = owned_replicasets(cluster, &d).await?;
    if let Some(r) = revision.filter(|r| *r > 0) {
        let (_, rs) = sets
            .iter()
            .find(|(rev, _)| *rev == r)
            .ok_or_else(|| Error::Usage("unable to find the specified revision".into()))?;
        println!("{}/{name} with revision #{r}", rt.qualified_kind());
        print!("{}", output::to_yaml(&rs["spec"]["template"]));
        return Ok(());
    }
    println!("{}/{name} ", rt.qualified_kind());
    let mut rows = vec![vec!["REVISION".to_string(), "CHANGE-CAUSE".to_string()]];
    for (rev, rs) in sets.iter().filter(|(rev, _)| *rev > 0) {
        let cause = rs["metadata"]["annotations"]["kubernetes.io/change-cause"]
            .as_str()
            .unwrap_or("<none>");
        rows.push(vec![rev.to_string(), cause.to_string()]);
    }
    // kubectl's history printer: a tabwriter with padding 2 and no minimum width.
    let widths: Vec<usize> = (0..2)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0) + 2)
        .collect();
    for row in rows {
        println!("{:<w$}{}", row[0], row[1], w = widths[0]);
    }
    println!();
    Ok(())
}

/// `rollout undo [--to-revision N]`.
pub async fn undo(cluster: &Cluster, args: &[String], to_revision: i64) -> Result<()> {
    let (rt, name, path, d) = deployment(cluster, args).await?;
    if d["spec"]["paused"] == true {
        return Err(Error::Usage(
            "you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again".into(),
        ));
    }
    let sets = owned_replicasets(cluster, &d).await?;
    let chosen = if to_revision > 0 {
        sets.iter()
            .find(|(rev, _)| *rev == to_revision)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "unable to find specified revision {to_revision} in history"
                ))
            })?
    } else {
        if sets.len() < 2 {
            return Err(Error::Usage(format!(
                "no rollout history found for deployment \"{name}\""
            )));
        }
        &sets[sets.len() - 2]
    };
    let mut template = chosen.1["spec"]["template"].clone();
    if let Some(labels) = template["metadata"]["labels"].as_object_mut() {
        labels.remove("pod-template-hash");
    }
    if output::sorted(&template) == output::sorted(&d["spec"]["template"]) {
        println!(
            "{}/{name} skipped rollback (current template already matches revision {})",
            rt.qualified_kind(),
            chosen.0
        );
        return Ok(());
    }
    let mut annotations = d["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (k, v) in chosen.1["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default()
    {
        if !SKIPPED_ANNOTATIONS.contains(&k.as_str()) {
            annotations.insert(k, v);
        }
    }
    let patch = json!([
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations}
    ]);
    cluster
        .patch(&path, "application/json-patch+json", &patch)
        .await?;
    println!("{}/{name} rolled back", rt.qualified_kind());
    Ok(())
}

/// `rollout pause` (true) / `rollout resume` (false).
pub async fn set_paused(cluster: &Cluster, args: &[String], paused: bool) -> Result<()> {
    let (rt, name, path, d) = deployment(cluster, args).await?;
    let is_paused = d["spec"]["paused"] == true;
    if is_paused == paused {
        return Err(Error::Usage(format!(
            "{} \"{name}\" is {}",
            rt.qualified_plural(),
            if paused {
                "already paused"
            } else {
                "not paused"
            }
        )));
    }
    cluster
        .patch(
            &path,
            "application/merge-patch+json",
            &json!({"spec": {"paused": if paused { Value::Bool(true) } else { Value::Null }}}),
        )
        .await?;
    println!(
        "{}/{name} {}",
        rt.qualified_kind(),
        if paused { "paused" } else { "resumed" }
    );
    Ok(())
}

/// `rollout restart`: stamps the template with kubectl.kubernetes.io/restartedAt.
pub async fn restart(cluster: &Cluster, args: &[String]) -> Result<()> {
    let (rt, name, path, _) = deployment(cluster, args).await?;
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    cluster
        .patch(
            &path,
            "application/strategic-merge-patch+json",
            &json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}}),
        )
        .await?;
    println!("{}/{name} restarted", rt.qualified_kind());
    Ok(())
}

/// The flags of `expose`.
#[derive(Debug, Clone, Default)]
pub struct ExposeOptions {
    pub port: Option<String>,
    pub target_port: Option<String>,
    pub service_type: Option<String>,
    pub node_port: Option<i64>,
    pub name: Option<String>,
    pub protocol: Option<String>,
}

/// The Service `expose` makes for an object.
pub fn service_for(object: &Value, kind: &str, opts: &ExposeOptions) -> Result<Value> {
    let name = opts.name.clone().unwrap_or_else(|| {
        object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    let selector = match kind {
        "Pod" => object["metadata"]["labels"].clone(),
        "Service" => object["spec"]["selector"].clone(),
        _ => {
            if object["spec"]["selector"]["matchExpressions"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
            {
                return Err(Error::Usage("couldn't retrieve selectors via --selector flag or introspection: the selector contains match expressions, which are not supported".into()));
            }
            object["spec"]["selector"]["matchLabels"].clone()
        }
    };
    if selector.as_object().is_none_or(|m| m.is_empty()) {
        return Err(Error::Usage(
            "couldn't retrieve selectors via --selector flag or introspection".into(),
        ));
    }
    let pod_spec = match kind {
        "Pod" => object["spec"].clone(),
        _ => object["spec"]["template"]["spec"].clone(),
    };
    let port = match &opts.port {
        Some(p) => p.clone(),
        None => {
            let from_containers = pod_spec["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
                .map(|p| p["containerPort"].to_string())
                .next();
            let from_service = object["spec"]["ports"][0]["port"]
                .as_i64()
                .map(|p| p.to_string());
            from_containers.or(from_service).ok_or_else(|| {
                Error::Usage("couldn't find port via --port flag or introspection".into())
            })?
        }
    };
    let port_number: i64 = port
        .parse()
        .map_err(|_| Error::Usage(format!("invalid port {port}")))?;
    let target = opts.target_port.clone().unwrap_or_else(|| port.clone());
    let target_value = target
        .parse::<i64>()
        .map(|t| json!(t))
        .unwrap_or(json!(target));
    let mut port_entry = json!({"port": port_number, "protocol": opts.protocol.clone().unwrap_or_else(|| "TCP".into()), "targetPort": target_value});
    if let Some(n) = opts.node_port {
        port_entry["nodePort"] = json!(n);
    }
    let mut service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name},
        "spec": {"ports": [port_entry], "selector": selector}
    });
    if let Some(labels) = object["metadata"]["labels"]
        .as_object()
        .filter(|l| !l.is_empty())
    {
        service["metadata"]["labels"] = Value::Object(labels.clone());
    }
    if let Some(t) = &opts.service_type {
        service["spec"]["type"] = json!(t);
    }
    Ok(service)
}

/// `expose TYPE NAME --port P ...`.
pub async fn expose(cluster: &Cluster, args: &[String], opts: &ExposeOptions) -> Result<()> {
    let (rt, name) = one_object(cluster, args).await?;
    if !matches!(
        rt.kind.as_str(),
        "Deployment" | "ReplicaSet" | "Pod" | "Service" | "ReplicationController"
    ) {
        return Err(Error::Usage(format!("cannot expose a {}", rt.kind)));
    }
    let object = cluster
        .get(&rt.object_path(Some(&cluster.namespace), &name))
        .await?;
    let service = service_for(&object, &rt.kind, opts)?;
    let created = cluster
        .create(
            &format!("/api/v1/namespaces/{}/services", cluster.namespace),
            &service,
        )
        .await?;
    println!(
        "service/{} exposed",
        created["metadata"]["name"].as_str().unwrap_or_default()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(
        generation: i64,
        observed: i64,
        spec: i64,
        replicas: i64,
        updated: i64,
        available: i64,
    ) -> Value {
        json!({"metadata": {"name": "web", "generation": generation}, "spec": {"replicas": spec},
               "status": {"observedGeneration": observed, "replicas": replicas, "updatedReplicas": updated, "availableReplicas": available}})
    }

    #[test]
    fn status_lines_like_kubectl() {
        assert_eq!(
            deployment_status(&deployment(2, 1, 3, 3, 3, 3)).unwrap().0,
            "Waiting for deployment spec update to be observed..."
        );
        assert_eq!(deployment_status(&deployment(1, 1, 3, 3, 1, 1)).unwrap().0, "Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been updated...");
        assert_eq!(deployment_status(&deployment(1, 1, 3, 4, 3, 3)).unwrap().0, "Waiting for deployment \"web\" rollout to finish: 1 old replicas are pending termination...");
        assert_eq!(deployment_status(&deployment(1, 1, 3, 3, 3, 1)).unwrap().0, "Waiting for deployment \"web\" rollout to finish: 1 of 3 updated replicas are available...");
        assert_eq!(
            deployment_status(&deployment(1, 1, 3, 3, 3, 3)).unwrap(),
            ("deployment \"web\" successfully rolled out".into(), true)
        );
        let mut stuck = deployment(1, 1, 3, 3, 1, 1);
        stuck["status"]["conditions"] =
            json!([{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]);
        assert!(deployment_status(&stuck).is_err());
    }

    #[test]
    fn expose_takes_selector_and_port_from_the_object() {
        let d = json!({"metadata": {"name": "web", "labels": {"app": "web"}},
                       "spec": {"selector": {"matchLabels": {"app": "web"}},
                                "template": {"spec": {"containers": [{"ports": [{"containerPort": 8080}]}]}}}});
        let s = service_for(&d, "Deployment", &ExposeOptions::default()).unwrap();
        assert_eq!(s["spec"]["selector"], json!({"app": "web"}));
        assert_eq!(s["spec"]["ports"][0]["port"], 8080);
        let opts = ExposeOptions {
            port: Some("80".into()),
            target_port: Some("http".into()),
            service_type: Some("NodePort".into()),
            name: Some("front".into()),
            ..Default::default()
        };
        let s = service_for(&d, "Deployment", &opts).unwrap();
        assert_eq!(s["metadata"]["name"], "front");
        assert_eq!(s["spec"]["ports"][0]["targetPort"], "http");
        assert_eq!(s["spec"]["type"], "NodePort");
    }
}
