//! A container's environment as the kubelet computes it: service link variables, envFrom,
//! env (value, fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef) and `$(VAR)`
//! expansion, in upstream's order (kubelet_pods.go makeEnvironmentVariables).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};

/// What env resolution needs besides the pod: the objects it may reference.
#[derive(Debug, Default, Clone)]
pub struct EnvSources {
    /// ConfigMaps of the pod's namespace by name.
    pub config_maps: BTreeMap<String, ConfigMap>,
    /// Secrets of the pod's namespace by name.
    pub secrets: BTreeMap<String, Secret>,
    /// Services visible to the pod: its namespace's, plus `kubernetes` in default.
    pub services: Vec<Service>,
    /// The node's IP (status.hostIP).
    pub host_ip: String,
    /// The pod's IP.
    pub pod_ip: String,
}

/// Why an environment could not be built (the container stays waiting with
/// CreateContainerConfigError, as upstream).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EnvError {
    /// A referenced ConfigMap does not exist.
    #[error("configmap \"{0}\" not found")]
    ConfigMapNotFound(String),
    /// A referenced key is missing.
    #[error("couldn't find key {key} in ConfigMap {namespace}/{name}")]
    ConfigMapKey {
        namespace: String,
        name: String,
        key: String,
    },
    /// A referenced Secret does not exist.
    #[error("secret \"{0}\" not found")]
    SecretNotFound(String),
    /// A referenced key is missing.
    #[error("couldn't find key {key} in Secret {namespace}/{name}")]
    SecretKey {
        namespace: String,
        name: String,
        key: String,
    },
    /// An unsupported fieldRef/resourceFieldRef.
    #[error("unsupported field reference {0}")]
    Field(String),
}

/// The names ConfigMaps/Secrets a container's env refers to (to fetch before building).
pub fn referenced_objects(c: &Container) -> (Vec<String>, Vec<String>) {
    let mut cms = Vec::new();
    let mut secrets = Vec::new();
    for e in c.env.iter().flatten() {
        if let Some(vf) = &e.value_from {
            if let Some(r) = &vf.config_map_key_ref {
                cms.push(r.name.clone());
            }
            if let Some(r) = &vf.secret_key_ref {
                secrets.push(r.name.clone());
            }
        }
    }
    for f in c.env_from.iter().flatten() {
        if let Some(r) = &f.config_map_ref {
            cms.push(r.name.clone());
        }
        if let Some(r) = &f.secret_ref {
            secrets.push(r.name.clone());
        }
    }
    (cms, secrets)
}

/// The docker-links style variables of one service (`FOO_SERVICE_HOST`, `FOO_PORT_80_TCP`, ...).
fn service_env(svc: &Service, out: &mut Vec<(String, String)>) {
    let Some(spec) = &svc.spec else { return };
    let ip = spec.cluster_ip.as_deref().unwrap_or("");
    if ip.is_empty() || ip == "None" {
        return;
    }
    let name = svc
        .metadata
        .name
        .clone()
        .unwrap_or_default()
        .to_uppercase()
        .replace('-', "_");
    let ports = spec.ports.clone().unwrap_or_default();
    out.push((format!("{name}_SERVICE_HOST"), ip.to_string()));
    if let Some(first) = ports.first() {
        out.push((format!("{name}_SERVICE_PORT"), first.port.to_string()));
    }
    for p in &ports {
        if let Some(pn) = p.name.as_deref().filter(|n| !n.is_empty()) {
            out.push((
                format!(
                    "{name}_SERVICE_PORT_{}",
                    pn.to_uppercase().replace('-', "_")
                ),
                p.port.to_string(),
            ));
        }
    }
    if let Some(first) = ports.first() {
        let proto = first.protocol.as_deref().unwrap_or("TCP").to_lowercase();
        out.push((
            format!("{name}_PORT"),
            format!("{proto}://{ip}:{}", first.port),
        ));
    }
    for p in &ports {
        let proto = p.protocol.as_deref().unwrap_or("TCP");
        let prefix = format!("{name}_PORT_{}_{}", p.port, proto.to_uppercase());
        let lower = proto.to_lowercase();
        out.push((prefix.clone(), format!("{lower}://{ip}:{}", p.port)));
        out.push((format!("{prefix}_PROTO"), lower));
        out.push((format!("{prefix}_PORT"), p.port.to_string()));
        out.push((format!("{prefix}_ADDR"), ip.to_string()));
    }
}

/// Expands `$(VAR)` from `vars` as upstream's expansion package: `$$` is an escaped `$`,
/// unknown references stay as written.
pub fn expand(input: &str, vars: &BTreeMap<String, String>) -> String {
    let b = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            match b[i + 1] {
                b'$' => {
                    out.push('$');
                    i += 2;
                    continue;
                }
                b'(' => {
                    if let Some(end) = input[i + 2..].find(')') {
                        let name = &input[i + 2..i + 2 + end];
                        match vars.get(name) {
                            Some(v) => out.push_str(v),
                            None => out.push_str(&input[i..i + 3 + end]),
                        }
                        i += 3 + end;
                        continue;
                    }
                }
                _ => {}
            }
        }
        let ch = input[i..].chars().next().expect("in bounds");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// The value of a downward-API field path of `pod` (env fieldRef and downwardAPI volumes).
pub fn field_value(pod: &Pod, path: &str, host_ip: &str, pod_ip: &str) -> Result<String, EnvError> {
    let meta = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let map_line = |m: &Option<BTreeMap<String, String>>| {
        m.clone()
            .unwrap_or_default()
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let subscript = |p: &str, prefix: &str| -> Option<String> {
        p.strip_prefix(prefix)?
            .strip_suffix("']")
            .map(str::to_string)
    };
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => map_line(&meta.labels),
        "metadata.annotations" => map_line(&meta.annotations),
        "spec.nodeName" => spec.node_name.unwrap_or_default(),
        "spec.serviceAccountName" => spec.service_account_name.unwrap_or_default(),
        "status.hostIP" => host_ip.to_string(),
        "status.hostIPs" => host_ip.to_string(),
        "status.podIP" => pod_ip.to_string(),
        "status.podIPs" => pod_ip.to_string(),
        p => {
            if let Some(k) = subscript(p, "metadata.labels['") {
                meta.labels
                    .clone()
                    .unwrap_or_default()
                    .get(&k)
                    .cloned()
                    .unwrap_or_default()
            } else if let Some(k) = subscript(p, "metadata.annotations['") {
                meta.annotations
                    .clone()
                    .unwrap_or_default()
                    .get(&k)
                    .cloned()
                    .unwrap_or_default()
            } else {
                return Err(EnvError::Field(p.to_string()));
            }
        }
    })
}

/// The value of a resourceFieldRef (limits.cpu, requests.memory, ...) with its divisor,
/// rounded up as upstream; an unset limit is the node's allocatable.
pub fn resource_value(
    c: &Container,
    resource: &str,
    divisor: Option<&str>,
    node_allocatable: &BTreeMap<String, String>,
) -> Result<String, EnvError> {
    let (kind, name) = resource
        .split_once('.')
        .ok_or_else(|| EnvError::Field(resource.to_string()))?;
    let res = c.resources.clone().unwrap_or_default();
    let map = match kind {
        "limits" => res.limits,
        "requests" => res.requests,
        _ => return Err(EnvError::Field(resource.to_string())),
    };
    let q = map
        .as_ref()
        .and_then(|m| m.get(name))
        .map(|q| q.0.clone())
        .or_else(|| node_allocatable.get(name).cloned())
        .unwrap_or_else(|| "0".into());
    let value = crate::resources::quantity_to_f64(&q);
    let div = crate::resources::quantity_to_f64(divisor.unwrap_or("1"));
    let div = if div == 0.0 { 1.0 } else { div };
    Ok(format!("{}", (value / div).ceil() as i64))
}

/// The environment of container `c` of `pod`, in upstream's order and precedence.
pub fn build(
    pod: &Pod,
    c: &Container,
    src: &EnvSources,
    node_allocatable: &BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, EnvError> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let mut order: Vec<String> = Vec::new();
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    fn set(vars: &mut BTreeMap<String, String>, k: String, v: String, order: &mut Vec<String>) {
        if !vars.contains_key(&k) {
            order.push(k.clone());
        }
        vars.insert(k, v);
    }
    // Service links first (overridable by the container's own env).
    let mut svc_env = Vec::new();
    let links = spec.enable_service_links.unwrap_or(true);
    for svc in &src.services {
        let sns = svc.metadata.namespace.as_deref().unwrap_or("");
        let sname = svc.metadata.name.as_deref().unwrap_or("");
        let is_master = sns == "default" && sname == "kubernetes";
        if (links && sns == ns) || is_master {
            service_env(svc, &mut svc_env);
        }
    }
    for (k, v) in svc_env {
        set(&mut vars, k, v, &mut order);
    }
    for f in c.env_from.iter().flatten() {
        let prefix = f.prefix.clone().unwrap_or_default();
        if let Some(r) = &f.config_map_ref {
            match src.config_maps.get(&r.name) {
                Some(cm) => {
                    for (k, v) in cm.data.clone().unwrap_or_default() {
                        set(&mut vars, format!("{prefix}{k}"), v, &mut order);
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(EnvError::ConfigMapNotFound(r.name.clone())),
            }
        }
        if let Some(r) = &f.secret_ref {
            match src.secrets.get(&r.name) {
                Some(s) => {
                    for (k, v) in s.data.clone().unwrap_or_default() {
                        set(
                            &mut vars,
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v.0).to_string(),
                            &mut order,
                        );
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(EnvError::SecretNotFound(r.name.clone())),
            }
        }
    }
    for e in c.env.iter().flatten() {
        let value = if let Some(v) = &e.value {
            Some(expand(v, &vars))
        } else if let Some(vf) = &e.value_from {
            if let Some(fr) = &vf.field_ref {
                Some(field_value(pod, &fr.field_path, &src.host_ip, &src.pod_ip)?)
            } else if let Some(rr) = &vf.resource_field_ref {
                let target = match rr.container_name.as_deref().filter(|n| !n.is_empty()) {
                    Some(n) => spec
                        .containers
                        .iter()
                        .find(|x| x.name == n)
                        .cloned()
                        .unwrap_or_else(|| c.clone()),
                    None => c.clone(),
                };
                Some(resource_value(
                    &target,
                    &rr.resource,
                    rr.divisor.as_ref().map(|q| q.0.as_str()),
                    node_allocatable,
                )?)
            } else if let Some(r) = &vf.config_map_key_ref {
                match src.config_maps.get(&r.name) {
                    Some(cm) => match cm.data.clone().unwrap_or_default().get(&r.key) {
                        Some(v) => Some(v.clone()),
                        None if r.optional == Some(true) => None,
                        None => {
                            return Err(EnvError::ConfigMapKey {
                                namespace: ns.clone(),
                                name: r.name.clone(),
                                key: r.key.clone(),
                            })
                        }
                    },
                    None if r.optional == Some(true) => None,
                    None => return Err(EnvError::ConfigMapNotFound(r.name.clone())),
                }
            } else if let Some(r) = &vf.secret_key_ref {
                match src.secrets.get(&r.name) {
                    Some(s) => match s.data.clone().unwrap_or_default().get(&r.key) {
                        Some(v) => Some(String::from_utf8_lossy(&v.0).to_string()),
                        None if r.optional == Some(true) => None,
                        None => {
                            return Err(EnvError::SecretKey {
                                namespace: ns.clone(),
                                name: r.name.clone(),
                                key: r.key.clone(),
                            })
                        }
                    },
                    None if r.optional == Some(true) => None,
                    None => return Err(EnvError::SecretNotFound(r.name.clone())),
                }
            } else {
                None
            }
        } else {
            Some(String::new())
        };
        if let Some(v) = value {
            set(&mut vars, e.name.clone(), v, &mut order);
        }
    }
    Ok(order
        .into_iter()
        .map(|k| {
            let v = vars.get(&k).cloned().unwrap_or_default();
            (k, v)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ConfigMapKeySelector, EnvFromSource, EnvVar, EnvVarSource, ObjectFieldSelector,
        ServicePort, ServiceSpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-1".into()),
                namespace: Some("shop".into()),
                uid: Some("u-1".into()),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            spec: Some(Default::default()),
            status: None,
        }
    }

    fn var(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        }
    }

    #[test]
    fn expansion_follows_upstream_rules() {
        let vars: BTreeMap<String, String> = [("A".to_string(), "x".to_string())].into();
        assert_eq!(expand("$(A)-$(B)-$$(A)-$", &vars), "x-$(B)-$(A)-$");
        assert_eq!(expand("no refs", &vars), "no refs");
        assert_eq!(expand("$(A", &vars), "$(A");
    }

    #[test]
    fn env_order_precedence_and_references() {
        let c = Container {
            name: "app".into(),
            env_from: Some(vec![EnvFromSource {
                config_map_ref: Some(k8s_openapi::api::core::v1::ConfigMapEnvSource {
                    name: "cfg".into(),
                    optional: None,
                }),
                prefix: Some("CFG_".into()),
                secret_ref: None,
            }]),
            env: Some(vec![
                var("GREETING", "hello"),
                var("MSG", "$(GREETING) from $(POD)"),
                EnvVar {
                    name: "POD".into(),
                    value: None,
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            field_path: "metadata.name".into(),
                            api_version: None,
                        }),
                        ..Default::default()
                    }),
                },
                EnvVar {
                    name: "COLOR".into(),
                    value: None,
                    value_from: Some(EnvVarSource {
                        config_map_key_ref: Some(ConfigMapKeySelector {
                            name: "cfg".into(),
                            key: "color".into(),
                            optional: None,
                        }),
                        ..Default::default()
                    }),
                },
            ]),
            ..Default::default()
        };
        let mut src = EnvSources::default();
        src.config_maps.insert(
            "cfg".into(),
            ConfigMap {
                data: Some([("color".to_string(), "blue".to_string())].into()),
                ..Default::default()
            },
        );
        src.services.push(Service {
            metadata: ObjectMeta {
                name: Some("db-main".into()),
                namespace: Some("shop".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some("10.96.0.20".into()),
                ports: Some(vec![ServicePort {
                    name: Some("sql".into()),
                    port: 5432,
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            status: None,
        });
        let env = build(&pod(), &c, &src, &BTreeMap::new()).unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("CFG_color").as_deref(), Some("blue"));
        // POD is defined after MSG, so it is not expanded (upstream semantics).
        assert_eq!(get("MSG").as_deref(), Some("hello from $(POD)"));
        assert_eq!(get("POD").as_deref(), Some("web-1"));
        assert_eq!(get("COLOR").as_deref(), Some("blue"));
        assert_eq!(get("DB_MAIN_SERVICE_HOST").as_deref(), Some("10.96.0.20"));
        assert_eq!(get("DB_MAIN_SERVICE_PORT").as_deref(), Some("5432"));
        assert_eq!(get("DB_MAIN_SERVICE_PORT_SQL").as_deref(), Some("5432"));
        assert_eq!(
            get("DB_MAIN_PORT_5432_TCP").as_deref(),
            Some("tcp://10.96.0.20:5432")
        );
        let names: Vec<_> = env.iter().map(|(n, _)| n.as_str()).collect();
        let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
        assert!(pos("DB_MAIN_SERVICE_HOST") < pos("CFG_color"));
        assert!(pos("CFG_color") < pos("GREETING"));
    }

    #[test]
    fn missing_configmap_is_a_config_error_unless_optional() {
        let mut c = Container {
            name: "app".into(),
            env: Some(vec![EnvVar {
                name: "X".into(),
                value: None,
                value_from: Some(EnvVarSource {
                    config_map_key_ref: Some(ConfigMapKeySelector {
                        name: "nope".into(),
                        key: "k".into(),
                        optional: None,
                    }),
                    ..Default::default()
                }),
            }]),
            ..Default::default()
        };
        let err = build(&pod(), &c, &EnvSources::default(), &BTreeMap::new()).unwrap_err();
        assert_eq!(err.to_string(), "configmap \"nope\" not found");
        c.env.as_mut().unwrap()[0]
            .value_from
            .as_mut()
            .unwrap()
            .config_map_key_ref
            .as_mut()
            .unwrap()
            .optional = Some(true);
        let env = build(&pod(), &c, &EnvSources::default(), &BTreeMap::new()).unwrap();
        assert!(env.iter().all(|(n, _)| n != "X"));
    }

    #[test]
    fn downward_fields() {
        let p = pod();
        assert_eq!(
            field_value(&p, "metadata.labels", "", "").unwrap(),
            "app=\"web\""
        );
        assert_eq!(
            field_value(&p, "metadata.labels['app']", "", "").unwrap(),
            "web"
        );
        assert_eq!(
            field_value(&p, "status.podIP", "1.2.3.4", "10.244.1.5").unwrap(),
            "10.244.1.5"
        );
        assert!(field_value(&p, "spec.bogus", "", "").is_err());
    }
}
