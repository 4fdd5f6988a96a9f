//! The mutating and informational verbs: apply, create, delete, scale, label, annotate, set
//! image, logs, exec, edit, api-resources, version, cluster-info. Each prints what kubectl
//! prints on success and returns the errors kubectl would report.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::apply::{three_way_patch, with_last_applied, LAST_APPLIED};
use crate::cluster::{encode_query, Cluster, ResourceType};
use crate::error::{Error, Result};
use crate::get::{parse_targets, Target};
use crate::manifest::{read_all, ManifestObject};
use crate::output;

/// `--dry-run` as kubectl understands it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DryRun {
    #[default]
    None,
    Client,
    Server,
}

impl DryRun {
    /// Parses `none|client|server`.
    pub fn parse(s: &str) -> Result<DryRun> {
        match s {
            "none" | "" | "false" => Ok(DryRun::None),
            "client" => Ok(DryRun::Client),
            "server" => Ok(DryRun::Server),
            other => Err(Error::Usage(format!(
                "Invalid dry-run value ({other}). Must be \"none\", \"server\", or \"client\"."
            ))),
        }
    }

    /// The suffix kubectl adds to its messages.
    pub fn suffix(self) -> &'static str {
        match self {
            DryRun::None => "",
            DryRun::Client => " (dry run)",
            DryRun::Server => " (server dry run)",
        }
    }
}

/// Adds a query parameter to a path.
fn with_query(path: &str, param: &str) -> String {
    if param.is_empty() {
        path.to_string()
    } else if path.contains('?') {
        format!("{path}&{param}")
    } else {
        format!("{path}?{param}")
    }
}

/// Rewrites a server error the way kubectl prefixes it with the operation and file.
fn in_context(e: Error, what: &str) -> Error {
    match e {
        Error::Server {
            reason,
            message,
            code,
        } => Error::Server {
            reason,
            message: format!("{what}: {message}"),
            code,
        },
        other => other,
    }
}

struct Resolved {
    rt: ResourceType,
    namespace: Option<String>,
    name: String,
    object: Value,
    source: String,
}

async fn resolve_objects(cluster: &Cluster, objects: Vec<ManifestObject>) -> Result<Vec<Resolved>> {
    let mut out = Vec::new();
    for m in objects {
        let api_version = m.object["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let kind = m.object["kind"].as_str().unwrap_or_default().to_string();
        let name = m.object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let Some(rt) = cluster.resolve_kind(&api_version, &kind).await else {
            return Err(Error::NoKindMatch {
                name,
                namespace: m.object["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or(&cluster.namespace)
                    .to_string(),
                path: m.source,
                kind,
                api_version,
            });
        };
        let mut object = m.object;
        let namespace = if rt.namespaced {
            let ns = object["metadata"]["namespace"]
                .as_str()
                .unwrap_or(&cluster.namespace)
                .to_string();
            object["metadata"]["namespace"] = json!(ns);
            Some(ns)
        } else {
            None
        };
        out.push(Resolved {
            rt,
            namespace,
            name,
            object,
            source: m.source,
        });
    }
    Ok(out)
}

/// What apply would do with one object.
enum ApplyStep {
    Create(Value),
    Patch(Value, &'static str),
    Unchanged,
}

async fn plan_apply(cluster: &Cluster, r: &Resolved) -> Result<ApplyStep> {
    let modified = with_last_applied(&r.object);
    let path = r.rt.object_path(r.namespace.as_deref(), &r.name);
    match cluster.get(&path).await {
        Ok(live) => {
            let original = live["metadata"]["annotations"][LAST_APPLIED]
                .as_str()
                .and_then(|s| serde_json::from_str::<Value>(s).ok());
            let patch = three_way_patch(original.as_ref(), &modified, &live);
            if patch.as_object().is_some_and(Map::is_empty) {
                return Ok(ApplyStep::Unchanged);
            }
            let media = if api::registry::find(&r.rt.group, &r.rt.version, &r.rt.plural).is_some() {
                "application/strategic-merge-patch+json"
            } else {
                "application/merge-patch+json"
            };
            Ok(ApplyStep::Patch(patch, media))
        }
        Err(e) if e.is_not_found() => Ok(ApplyStep::Create(modified)),
        Err(e) => Err(e),
    }
}

async fn execute_apply(
    cluster: &Cluster,
    r: &Resolved,
    step: &ApplyStep,
    dry_run: bool,
) -> Result<&'static str> {
    let dry = if dry_run {
        "dryRun=All&fieldValidation=Strict"
    } else {
        "fieldValidation=Strict"
    };
    match step {
        ApplyStep::Unchanged => Ok("unchanged"),
        ApplyStep::Create(body) => {
            let path = with_query(&r.rt.collection_path(r.namespace.as_deref()), dry);
            cluster
                .create(&path, body)
                .await
                .map_err(|e| in_context(e, &format!("error when creating \"{}\"", r.source)))?;
            Ok("created")
        }
        ApplyStep::Patch(patch, media) => {
            let path = with_query(&r.rt.object_path(r.namespace.as_deref(), &r.name), dry);
            cluster.patch(&path, media, patch).await.map_err(|e| {
                in_context(
                    e,
                    &format!(
                        "error when applying patch:\n{}\n\nto:\nResource: \"{}/{}, Resource={}\", GroupVersionKind: \"{}, Kind={}\"\nName: \"{}\", Namespace: \"{}\"\nfor: \"{}\"",
                        output::to_compact_json(patch),
                        r.rt.group, r.rt.version, r.rt.plural, r.rt.api_version(), r.rt.kind,
                        r.name, r.namespace.clone().unwrap_or_default(), r.source
                    ),
                )
            })?;
            Ok("configured")
        }
    }
}

/// `apply -f`: every object is first validated by a server dry run; only when all pass are
/// they applied (so a bad later document leaves the earlier ones untouched).
pub async fn apply(
    cluster: &Cluster,
    files: &[String],
    recursive: bool,
    dry_run: DryRun,
) -> Result<Vec<Error>> {
    let objects = resolve_objects(cluster, read_all(files, recursive)?).await?;
    let mut plans = Vec::new();
    let mut errors = Vec::new();
    for r in &objects {
        match plan_apply(cluster, r).await {
            Ok(step) => match execute_apply(cluster, r, &step, true).await {
                Ok(_) => plans.push(step),
                Err(e) => errors.push(e),
            },
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Ok(errors);
    }
    for (r, step) in objects.iter().zip(&plans) {
        let result = if dry_run == DryRun::None {
            execute_apply(cluster, r, step, false).await
        } else {
            Ok(match step {
                ApplyStep::Create(_) => "created",
                ApplyStep::Patch(..) => "configured",
                ApplyStep::Unchanged => "unchanged",
            })
        };
        match result {
            Ok(word) => println!(
                "{}/{} {word}{}",
                r.rt.qualified_kind(),
                r.name,
                dry_run.suffix()
            ),
            Err(e) => errors.push(e),
        }
    }
    Ok(errors)
}

/// `create -f`.
pub async fn create_from_files(
    cluster: &Cluster,
    files: &[String],
    recursive: bool,
    dry_run: DryRun,
) -> Result<Vec<Error>> {
    let objects = resolve_objects(cluster, read_all(files, recursive)?).await?;
    let mut errors = Vec::new();
    for r in objects {
        let query = if dry_run == DryRun::Server {
            "dryRun=All&fieldValidation=Strict"
        } else {
            "fieldValidation=Strict"
        };
        let path = with_query(&r.rt.collection_path(r.namespace.as_deref()), query);
        let result = if dry_run == DryRun::Client {
            Ok(Value::Null)
        } else {
            cluster.create(&path, &r.object).await
        };
        match result {
            Ok(_) => println!(
                "{}/{} created{}",
                r.rt.qualified_kind(),
                r.name,
                dry_run.suffix()
            ),
            Err(e) => errors.push(in_context(
                e,
                &format!("error when creating \"{}\"", r.source),
            )),
        }
    }
    Ok(errors)
}

/// Creates one generated object and prints `kind/name created`.
pub async fn create_object(
    cluster: &Cluster,
    object: Value,
    dry_run: DryRun,
    output_format: Option<&str>,
) -> Result<()> {
    let api_version = object["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    let rt = cluster
        .resolve_kind(&api_version, &kind)
        .await
        .ok_or_else(|| Error::UnknownResource(kind.clone()))?;
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ns = rt.namespaced.then_some(cluster.namespace.as_str());
    let created = match dry_run {
        DryRun::Client => object.clone(),
        DryRun::Server => {
            cluster
                .create(&with_query(&rt.collection_path(ns), "dryRun=All"), &object)
                .await?
        }
        DryRun::None => cluster.create(&rt.collection_path(ns), &object).await?,
    };
    match output_format {
        Some("json") if dry_run == DryRun::Client => {
            print!("{}", output::to_json_in_order(&created))
        }
        Some("json") => print!("{}", output::to_json(&created)),
        Some("yaml") => print!("{}", output::to_yaml(&created)),
        Some("name") => println!("{}/{name}", rt.qualified_kind()),
        _ => println!("{}/{name} created{}", rt.qualified_kind(), dry_run.suffix()),
    }
    Ok(())
}

/// The container name kubectl derives from an image (`registry/nginx:1.25` → `nginx`).
pub fn container_name_of(image: &str) -> String {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    let base = last.split(':').next().unwrap_or(last);
    base.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// The Deployment `kubectl create deployment` generates, fields in the order of the Go types
/// (kubectl prints typed objects in that order).
pub fn deployment_manifest(
    name: &str,
    images: &[String],
    replicas: i32,
    port: Option<i32>,
    env: &[(String, String)],
    command: &[String],
) -> Value {
    let containers: Vec<Value> = images
        .iter()
        .map(|image| {
            let mut c = json!({"name": container_name_of(image), "image": image});
            if !command.is_empty() {
                c["command"] = json!(command);
            }
            if let Some(p) = port {
                c["ports"] = json!([{"containerPort": p}]);
            }
            if !env.is_empty() {
                c["env"] = Value::Array(
                    env.iter()
                        .map(|(k, v)| json!({"name": k, "value": v}))
                        .collect(),
                );
            }
            c["resources"] = json!({});
            c
        })
        .collect();
    json!({
        "kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": name, "creationTimestamp": null, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": name}},
                "spec": {"containers": containers}
            },
            "strategy": {}
        },
        "status": {}
    })
}

/// Parses `k=v` pairs (`--from-literal`, `--env`).
pub fn key_values(pairs: &[String]) -> Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| {
                    Error::Usage(format!("invalid literal source {p}, expected key=value"))
                })
        })
        .collect()
}

/// The ConfigMap of `create configmap` (`--from-literal`, `--from-file`).
pub fn configmap_manifest(name: &str, literals: &[String], files: &[String]) -> Result<Value> {
    let mut data = Map::new();
    for (k, v) in key_values(literals)? {
        data.insert(k, json!(v));
    }
    for f in files {
        let (key, path) = match f.split_once('=') {
            Some((k, p)) => (k.to_string(), p.to_string()),
            None => (
                std::path::Path::new(f)
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default(),
                f.clone(),
            ),
        };
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        data.insert(key, json!(text));
    }
    let mut cm = json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": name, "creationTimestamp": null}});
    if !data.is_empty() {
        cm["data"] = output::sorted(&Value::Object(data));
    }
    Ok(cm)
}

/// The Secret of `create secret generic`.
pub fn secret_manifest(
    name: &str,
    literals: &[String],
    secret_type: Option<&str>,
) -> Result<Value> {
    use base64::Engine;
    let mut data = Map::new();
    for (k, v) in key_values(literals)? {
        data.insert(
            k,
            json!(base64::engine::general_purpose::STANDARD.encode(v)),
        );
    }
    let mut s = json!({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": name, "creationTimestamp": null}});
    if !data.is_empty() {
        s["data"] = output::sorted(&Value::Object(data));
    }
    if let Some(t) = secret_type {
        s["type"] = json!(t);
    }
    Ok(s)
}

/// The Service of `create service clusterip|nodeport NAME --tcp=port:target`.
pub fn service_manifest(
    name: &str,
    service_type: &str,
    tcp: &[String],
    node_port: Option<i32>,
) -> Result<Value> {
    let mut ports = Vec::new();
    for spec in tcp {
        let (port, target) = spec.split_once(':').unwrap_or((spec, spec));
        let port: i64 = port
            .parse()
            .map_err(|_| Error::Usage(format!("invalid port {spec}")))?;
        let target_value = target
            .parse::<i64>()
            .map(|t| json!(t))
            .unwrap_or(json!(target));
        let mut p = json!({"name": spec.replace(':', "-"), "protocol": "TCP", "port": port, "targetPort": target_value});
        if let Some(n) = node_port {
            p["nodePort"] = json!(n);
        }
        ports.push(p);
    }
    Ok(json!({
        "kind": "Service", "apiVersion": "v1",
        "metadata": {"name": name, "creationTimestamp": null, "labels": {"app": name}},
        "spec": {"ports": ports, "selector": {"app": name}, "type": service_type},
        "status": {"loadBalancer": {}}
    }))
}

/// The Job of `create job NAME --image IMG -- cmd`.
pub fn job_manifest(name: &str, image: &str, command: &[String]) -> Value {
    let mut container = json!({"name": name, "image": image});
    if !command.is_empty() {
        container["command"] = json!(command);
    }
    container["resources"] = json!({});
    json!({
        "kind": "Job", "apiVersion": "batch/v1",
        "metadata": {"name": name, "creationTimestamp": null},
        "spec": {"template": {"metadata": {"creationTimestamp": null}, "spec": {"containers": [container], "restartPolicy": "Never"}}},
        "status": {}
    })
}

/// The flags of `delete`.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub files: Vec<String>,
    pub recursive: bool,
    pub selector: Option<String>,
    pub all: bool,
    pub grace_period: Option<i64>,
    pub cascade: String,
    pub wait: bool,
    pub ignore_not_found: bool,
    pub timeout: Option<Duration>,
}

fn delete_options_body(opts: &DeleteOptions) -> Result<Value> {
    let policy = match opts.cascade.as_str() {
        "" | "background" | "true" => "Background",
        "foreground" => "Foreground",
        "orphan" | "false" => "Orphan",
        other => {
            return Err(Error::Usage(format!(
                "invalid cascade value ({other}). Must be \"background\", \"foreground\", or \"orphan\""
            )))
        }
    };
    let mut body =
        json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": policy});
    if let Some(g) = opts.grace_period.filter(|g| *g >= 0) {
        body["gracePeriodSeconds"] = json!(g);
    }
    Ok(body)
}

/// `delete`: by name, `-f`, `-l` or `--all`; waits for the objects to be gone like kubectl.
pub async fn delete(
    cluster: &Cluster,
    args: &[String],
    opts: &DeleteOptions,
) -> Result<Vec<Error>> {
    let body = delete_options_body(opts)?;
    let mut victims: Vec<(ResourceType, Option<String>, String)> = Vec::new();
    let mut errors = Vec::new();
    if !opts.files.is_empty() {
        for r in resolve_objects(cluster, read_all(&opts.files, opts.recursive)?).await? {
            victims.push((r.rt, r.namespace, r.name));
        }
    } else {
        let targets: Vec<Target> = parse_targets(args)?;
        for t in targets {
            let rt = cluster.resolve(&t.type_word).await?;
            let ns = rt.namespaced.then(|| cluster.namespace.clone());
            if t.names.is_empty() {
                if opts.selector.is_none() && !opts.all {
                    return Err(Error::Usage(
                        "resource(s) were provided, but no name was specified".into(),
                    ));
                }
                let mut path = rt.collection_path(ns.as_deref());
                if let Some(l) = &opts.selector {
                    path = with_query(&path, &format!("labelSelector={}", encode_query(l)));
                }
                let list = cluster.get(&path).await?;
                for item in list["items"].as_array().cloned().unwrap_or_default() {
                    let name = item["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    victims.push((rt.clone(), ns.clone(), name));
                }
            } else {
                for n in t.names {
                    victims.push((rt.clone(), ns.clone(), n));
                }
            }
        }
        if victims.is_empty() {
            eprintln!("No resources found");
            return Ok(errors);
        }
    }
    let mut deleted = Vec::new();
    for (rt, ns, name) in victims {
        let path = rt.object_path(ns.as_deref(), &name);
        match cluster.delete(&path, &body).await {
            Ok(_) => {
                println!("{} \"{name}\" deleted", rt.qualified_kind());
                deleted.push(path);
            }
            Err(e) if e.is_not_found() && opts.ignore_not_found => {}
            Err(e) => errors.push(e),
        }
    }
    if opts.wait {
        let deadline = opts.timeout.map(|t| Instant::now() + t);
        for path in deleted {
            loop {
                match cluster.get(&path).await {
                    Err(e) if e.is_not_found() => break,
                    Err(e) => return Err(e),
                    Ok(_) => {}
                }
                if deadline.is_some_and(|d| Instant::now() > d) {
                    errors.push(Error::Usage(format!(
                        "timed out waiting for the condition on {path}"
                    )));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    Ok(errors)
}

/// Resolves `TYPE NAME` or `TYPE/NAME` to exactly one object.
pub async fn one_object(cluster: &Cluster, args: &[String]) -> Result<(ResourceType, String)> {
    let targets = parse_targets(args)?;
    let [t] = targets.as_slice() else {
        return Err(Error::Usage("expected exactly one resource".into()));
    };
    let [name] = t.names.as_slice() else {
        return Err(Error::Usage("expected exactly one resource name".into()));
    };
    Ok((cluster.resolve(&t.type_word).await?, name.clone()))
}

/// `scale --replicas N [--current-replicas M]` through the scale subresource.
pub async fn scale(
    cluster: &Cluster,
    args: &[String],
    replicas: i64,
    current: Option<i64>,
) -> Result<()> {
    let (rt, name) = one_object(cluster, args).await?;
    let path = format!("{}/scale", rt.object_path(Some(&cluster.namespace), &name));
    let scale = cluster.get(&path).await?;
    if let Some(expected) = current {
        let actual = scale["spec"]["replicas"].as_i64().unwrap_or(0);
        if actual != expected {
            return Err(Error::Usage(format!(
                "Expected replicas to be {expected}, was {actual}"
            )));
        }
    }
    cluster
        .patch(
            &path,
            "application/merge-patch+json",
            &json!({"spec": {"replicas": replicas}}),
        )
        .await?;
    println!("{}/{name} scaled", rt.qualified_kind());
    Ok(())
}

/// Splits `k=v` and `k-` arguments of label/annotate.
pub fn parse_changes(pairs: &[String]) -> Result<(BTreeMap<String, String>, Vec<String>)> {
    let mut set = BTreeMap::new();
    let mut remove = Vec::new();
    for p in pairs {
        if let Some((k, v)) = p.split_once('=') {
            set.insert(k.to_string(), v.to_string());
        } else if let Some(k) = p.strip_suffix('-') {
            remove.push(k.to_string());
        } else {
            return Err(Error::Usage(format!("invalid label spec: {p}")));
        }
    }
    Ok((set, remove))
}

/// `label` / `annotate`: `field` is `labels` or `annotations`.
pub async fn label_or_annotate(
    cluster: &Cluster,
    field: &str,
    args: &[String],
    overwrite: bool,
) -> Result<()> {
    let split = args
        .iter()
        .position(|a| a.contains('=') || a.ends_with('-'))
        .unwrap_or(args.len());
    let (objects, changes) = args.split_at(split);
    if changes.is_empty() {
        return Err(Error::Usage(format!(
            "at least one {} update is required",
            if field == "labels" {
                "label"
            } else {
                "annotation"
            }
        )));
    }
    let (set, remove) = parse_changes(changes)?;
    let (rt, name) = one_object(cluster, objects).await?;
    let path = rt.object_path(Some(&cluster.namespace), &name);
    let live = cluster.get(&path).await?;
    let existing = &live["metadata"][field];
    if !overwrite {
        for (k, v) in &set {
            if let Some(old) = existing[k].as_str() {
                if old != v {
                    return Err(Error::Usage(format!(
                        "'{k}' already has a value ({old}), and --overwrite is false"
                    )));
                }
            }
        }
    }
    let mut patch = Map::new();
    for (k, v) in &set {
        patch.insert(k.clone(), json!(v));
    }
    for k in &remove {
        patch.insert(k.clone(), Value::Null);
    }
    let changed = set.iter().any(|(k, v)| existing[k].as_str() != Some(v))
        || remove.iter().any(|k| existing.get(k).is_some());
    let verb = if field == "labels" {
        "labeled"
    } else {
        "annotated"
    };
    if changed {
        cluster
            .patch(
                &path,
                "application/merge-patch+json",
                &json!({"metadata": {field: patch}}),
            )
            .await?;
    }
    let message = match (changed, field) {
        (false, "labels") => "not labeled".to_string(),
        (true, "labels") if set.is_empty() => "unlabeled".to_string(),
        _ => verb.to_string(),
    };
    println!("{}/{name} {message}", rt.qualified_kind());
    Ok(())
}

/// The pod spec pointer of a workload kind.
pub fn pod_spec_pointer(kind: &str) -> &'static str {
    match kind {
        "Pod" => "/spec",
        "CronJob" => "/spec/jobTemplate/spec/template/spec",
        _ => "/spec/template/spec",
    }
}

/// `set image TYPE/NAME container=image ...`.
pub async fn set_image(cluster: &Cluster, args: &[String]) -> Result<()> {
    let split = args
        .iter()
        .position(|a| a.contains('='))
        .unwrap_or(args.len());
    let (objects, images) = args.split_at(split);
    let (rt, name) = one_object(cluster, objects).await?;
    let path = rt.object_path(Some(&cluster.namespace), &name);
    let mut live = cluster.get(&path).await?;
    let pointer = pod_spec_pointer(&rt.kind);
    let spec = live.pointer_mut(pointer).ok_or_else(|| {
        Error::Usage(format!(
            "{} {name} has no pod template",
            rt.qualified_kind()
        ))
    })?;
    for pair in images {
        let (container, image) = pair.split_once('=').unwrap_or_default();
        let mut found = false;
        for list in ["initContainers", "containers"] {
            for c in spec[list].as_array_mut().into_iter().flatten() {
                if container == "*" || c["name"] == json!(container) {
                    c["image"] = json!(image);
                    found = true;
                }
            }
        }
        if !found {
            return Err(Error::Usage(format!(
                "unable to find container named \"{container}\""
            )));
        }
    }
    cluster.replace(&path, &live).await?;
    println!("{}/{name} image updated", rt.qualified_kind());
    Ok(())
}

/// `logs POD [-c C] [-f] [--previous] [--tail N] [--since D] [--timestamps]`: the request path.
#[allow(clippy::too_many_arguments)]
pub fn logs_path(
    namespace: &str,
    pod: &str,
    container: Option<&str>,
    follow: bool,
    previous: bool,
    tail: Option<i64>,
    since_seconds: Option<u64>,
    timestamps: bool,
) -> String {
    let mut q = Vec::new();
    if let Some(c) = container {
        q.push(format!("container={}", encode_query(c)));
    }
    if follow {
        q.push("follow=true".into());
    }
    if previous {
        q.push("previous=true".into());
    }
    if let Some(since) = since_seconds {
        q.push(format!("sinceSeconds={since}"));
    }
    if let Some(t) = tail.filter(|t| *t >= 0) {
        q.push(format!("tailLines={t}"));
    }
    if timestamps {
        q.push("timestamps=true".into());
    }
    let base = format!("/api/v1/namespaces/{namespace}/pods/{pod}/log");
    if q.is_empty() {
        base
    } else {
        format!("{base}?{}", q.join("&"))
    }
}

/// Streams a pod's log to stdout. Like kubectl, the pod is read first, and a missing pod is
/// reported as kubectl's logs verb reports it.
pub async fn logs(cluster: &Cluster, pod: &str, path: &str) -> Result<()> {
    let pod_path = format!("/api/v1/namespaces/{}/pods/{pod}", cluster.namespace);
    if let Err(e) = cluster.get(&pod_path).await {
        return Err(match e {
            Error::Server {
                reason, message, ..
            } if reason == "NotFound" => Error::Usage(format!(
                "error from server (NotFound): {message} in namespace \"{}\"",
                cluster.namespace
            )),
            other => other,
        });
    }
    use futures::AsyncBufReadExt;
    use std::io::Write;
    let request = http::Request::builder()
        .uri(path)
        .body(Vec::new())
        .map_err(|e| Error::Transport(e.to_string()))?;
    let reader = cluster.client.request_stream(request).await?;
    let mut lines = reader.lines();
    use futures::StreamExt;
    while let Some(line) = lines.next().await {
        let line = line.map_err(|e| Error::Transport(e.to_string()))?;
        println!("{line}");
        let _ = std::io::stdout().flush();
    }
    Ok(())
}

/// `exec POD [-c C] [-i] [-t] -- CMD...` over the websocket protocol.
pub async fn exec(
    cluster: &Cluster,
    pod: &str,
    container: Option<&str>,
    stdin: bool,
    tty: bool,
    command: &[String],
) -> Result<i32> {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, AttachParams};
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let mut params = AttachParams::default()
        .stdin(stdin)
        .stdout(true)
        .stderr(!tty)
        .tty(tty);
    if let Some(c) = container {
        params = params.container(c);
    }
    let mut attached = api.exec(pod, command.to_vec(), &params).await?;
    let mut tasks = Vec::new();
    if let Some(mut out) = attached.stdout() {
        tasks.push(tokio::spawn(async move {
            let _ = tokio::io::copy(&mut out, &mut tokio::io::stdout()).await;
        }));
    }
    if let Some(mut err) = attached.stderr() {
        tasks.push(tokio::spawn(async move {
            let _ = tokio::io::copy(&mut err, &mut tokio::io::stderr()).await;
        }));
    }
    if let Some(mut input) = attached.stdin() {
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut input).await;
        });
    }
    let status = attached.take_status();
    for t in tasks {
        let _ = t.await;
    }
    let status = match status {
        Some(s) => s.await,
        None => None,
    };
    Ok(exit_code_of(status.as_ref()))
}

/// The exit status `exec` ends with, as kubectl: the remote command's exit code (announced with
/// "command terminated with exit code N" on stderr) for a NonZeroExitCode status, 1 with the
/// message for any other failure, 0 on success.
pub fn exit_code_of(
    status: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>,
) -> i32 {
    let Some(st) = status.filter(|s| s.status.as_deref() == Some("Failure")) else {
        return 0;
    };
    let remote = (st.reason.as_deref() == Some("NonZeroExitCode"))
        .then(|| {
            st.details
                .as_ref()?
                .causes
                .as_ref()?
                .iter()
                .find(|c| c.reason.as_deref() == Some("ExitCode"))?
                .message
                .as_deref()?
                .parse::<i32>()
                .ok()
        })
        .flatten();
    match remote {
        Some(code) => {
            eprintln!("command terminated with exit code {code}");
            code
        }
        None => {
            eprintln!("error: {}", st.message.as_deref().unwrap_or("exec failed"));
            1
        }
    }
}

/// `edit TYPE/NAME`: the object as YAML in $EDITOR, saved with PUT; re-opened with the error
/// on top when the server rejects it, cancelled when the file comes back unchanged.
pub async fn edit(cluster: &Cluster, args: &[String]) -> Result<()> {
    let (rt, name) = one_object(cluster, args).await?;
    let path = rt.object_path(Some(&cluster.namespace), &name);
    let live = cluster.get(&path).await?;
    let header = "# Please edit the object below. Lines beginning with a '#' will be ignored,\n# and an empty file will abort the edit. If an error occurs while saving this file will be\n# reopened with the relevant failures.\n#\n";
    let original = output::to_yaml(&live);
    let mut text = format!("{header}{original}");
    let dir = tempfile::tempdir().map_err(|source| Error::Io {
        path: "tmp".into(),
        source,
    })?;
    let file = dir.path().join(format!("{}-{name}.yaml", rt.plural));
    let editor = std::env::var("KUBE_EDITOR")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    for _ in 0..10 {
        std::fs::write(&file, &text).map_err(|source| Error::Io {
            path: file.display().to_string(),
            source,
        })?;
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{editor} \"$1\""))
            .arg("sh")
            .arg(&file)
            .status()
            .map_err(|source| Error::Io {
                path: editor.clone(),
                source,
            })?;
        if !status.success() {
            return Err(Error::Usage(format!(
                "there was a problem with the editor \"{editor}\""
            )));
        }
        let edited = std::fs::read_to_string(&file).map_err(|source| Error::Io {
            path: file.display().to_string(),
            source,
        })?;
        let body: String = edited
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        if body.trim().is_empty() {
            return Err(Error::Usage("Edit cancelled, saved file was empty.".into()));
        }
        if body == original || edited == text {
            eprintln!("Edit cancelled, no changes made.");
            return Ok(());
        }
        let object: Value = match serde_saphyr::from_str(&body) {
            Ok(v) => v,
            Err(e) => {
                text = format!(
                    "{header}# {}\n#\n{body}",
                    e.without_snippet().to_string().replace('\n', "\n# ")
                );
                continue;
            }
        };
        match cluster.replace(&path, &object).await {
            Ok(_) => {
                println!("{}/{name} edited", rt.qualified_kind());
                return Ok(());
            }
            Err(e) => {
                text = format!(
                    "{header}# {}\n#\n{body}",
                    e.to_string().replace('\n', "\n# ")
                );
            }
        }
    }
    Err(Error::Usage(format!(
        "edit of {}/{name} abandoned after repeated errors",
        rt.qualified_kind()
    )))
}

/// `api-resources`, sorted by group then name like kubectl.
pub async fn api_resources(
    cluster: &Cluster,
    namespaced: Option<bool>,
    output_name: bool,
) -> Result<()> {
    let mut all: Vec<ResourceType> = cluster.resources().await?.to_vec();
    all.sort_by(|a, b| {
        (a.group.as_str(), a.plural.as_str()).cmp(&(b.group.as_str(), b.plural.as_str()))
    });
    all.retain(|r| namespaced.is_none_or(|n| r.namespaced == n));
    if output_name {
        for r in &all {
            println!("{}", r.qualified_plural());
        }
        return Ok(());
    }
    let mut rows = vec![vec![
        "NAME".into(),
        "SHORTNAMES".into(),
        "APIVERSION".into(),
        "NAMESPACED".into(),
        "KIND".into(),
    ]];
    for r in &all {
        rows.push(vec![
            r.plural.clone(),
            r.short_names.join(","),
            r.api_version(),
            r.namespaced.to_string(),
            r.kind.clone(),
        ]);
    }
    print!("{}", output::tabulate(&rows));
    Ok(())
}

/// `version`: the client's and the server's.
pub async fn version(cluster: Option<&Cluster>, client_only: bool) -> Result<()> {
    println!("Client Version: v{}", env!("CARGO_PKG_VERSION"));
    if client_only {
        return Ok(());
    }
    if let Some(c) = cluster {
        let v = c.get("/version").await?;
        println!(
            "Server Version: {}",
            v["gitVersion"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}

/// `cluster-info`: the control plane and the cluster services of kube-system.
pub async fn cluster_info(cluster: &Cluster, colour: bool) -> Result<()> {
    cluster.get("/version").await?;
    let (green, yellow, reset) = if colour {
        ("\x1b[0;32m", "\x1b[0;33m", "\x1b[0m")
    } else {
        ("", "", "")
    };
    println!(
        "{green}Kubernetes control plane{reset} is running at {yellow}{}{reset}",
        cluster.server
    );
    let services = cluster
        .get("/api/v1/namespaces/kube-system/services?labelSelector=kubernetes.io%2Fcluster-service%3Dtrue")
        .await?;
    for s in services["items"].as_array().cloned().unwrap_or_default() {
        let name = s["metadata"]["name"].as_str().unwrap_or_default();
        let shown = s["metadata"]["labels"]["kubernetes.io/name"]
            .as_str()
            .unwrap_or(name);
        let port = &s["spec"]["ports"][0];
        let port_name = port["name"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| port["port"].to_string());
        println!(
            "{green}{shown}{reset} is running at {yellow}{}/api/v1/namespaces/kube-system/services/{name}:{port_name}/proxy{reset}",
            cluster.server
        );
    }
    println!("\nTo further debug and diagnose cluster problems, use 'kubectl cluster-info dump'.");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn exec_exit_codes_follow_kubectl() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusCause, StatusDetails};
        assert_eq!(exit_code_of(None), 0);
        let ok = Status {
            status: Some("Success".into()),
            ..Default::default()
        };
        assert_eq!(exit_code_of(Some(&ok)), 0);
        let three = Status {
            status: Some("Failure".into()),
            reason: Some("NonZeroExitCode".into()),
            details: Some(StatusDetails {
                causes: Some(vec![StatusCause {
                    reason: Some("ExitCode".into()),
                    message: Some("3".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(exit_code_of(Some(&three)), 3);
        let other = Status {
            status: Some("Failure".into()),
            reason: Some("InternalError".into()),
            message: Some("boom".into()),
            ..Default::default()
        };
        assert_eq!(exit_code_of(Some(&other)), 1);
    }
    use super::*;

    #[test]
    fn container_names_from_images() {
        assert_eq!(container_name_of("nginx:1.25"), "nginx");
        assert_eq!(
            container_name_of("registry.local:5000/team/demo_web@sha256:abc"),
            "demo-web"
        );
    }

    #[test]
    fn generated_deployment_has_app_labels() {
        let d = deployment_manifest(
            "web",
            &["nginx".into()],
            2,
            Some(80),
            &[("A".into(), "1".into())],
            &[],
        );
        assert_eq!(d["spec"]["selector"]["matchLabels"]["app"], "web");
        assert_eq!(d["spec"]["template"]["metadata"]["labels"]["app"], "web");
        assert_eq!(d["spec"]["replicas"], 2);
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
            80
        );
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["env"][0]["name"],
            "A"
        );
    }

    #[test]
    fn label_changes() {
        let (set, remove) = parse_changes(&["a=1".into(), "b-".into()]).unwrap();
        assert_eq!(set.get("a").map(String::as_str), Some("1"));
        assert_eq!(remove, ["b"]);
        assert!(parse_changes(&["junk".into()]).is_err());
    }

    #[test]
    fn log_request_shape() {
        assert_eq!(
            logs_path("ns", "p", Some("c"), true, true, Some(10), Some(60), true),
            "/api/v1/namespaces/ns/pods/p/log?container=c&follow=true&previous=true&sinceSeconds=60&tailLines=10&timestamps=true"
        );
        assert_eq!(
            logs_path("ns", "p", None, false, false, Some(-1), None, false),
            "/api/v1/namespaces/ns/pods/p/log"
        );
    }

    #[test]
    fn cascade_values() {
        let mut o = DeleteOptions {
            cascade: "orphan".into(),
            grace_period: Some(0),
            ..Default::default()
        };
        let b = delete_options_body(&o).unwrap();
        assert_eq!(b["propagationPolicy"], "Orphan");
        assert_eq!(b["gracePeriodSeconds"], 0);
        o.cascade = "sideways".into();
        assert!(delete_options_body(&o).is_err());
    }

    #[test]
    fn generated_service_and_secret() {
        let s = service_manifest("web", "NodePort", &["80:8080".into()], Some(30080)).unwrap();
        assert_eq!(s["spec"]["ports"][0]["targetPort"], 8080);
        assert_eq!(s["spec"]["ports"][0]["nodePort"], 30080);
        assert_eq!(s["spec"]["ports"][0]["name"], "80-8080");
        let sec = secret_manifest("s", &["k=v".into()], None).unwrap();
        assert_eq!(sec["data"]["k"], "dg==");
    }
}
