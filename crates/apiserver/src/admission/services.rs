//! Service allocations: ClusterIPs and NodePorts taken at create and update, released on
//! delete and on type changes, and restored at start-up (upstream's Service REST storage).

use std::net::Ipv4Addr;

use api::validation::FieldError;
use api::ResourceInfo;
use serde_json::{json, Value};

use crate::allocator::{AllocError, Allocator};
use crate::error::ApiError;
use crate::objects;

/// Allocations made while handling one request: rolled back if the request fails, and the
/// releases it implies applied only once it succeeds.
#[derive(Debug, Default)]
pub struct Allocations {
    ips: Vec<Ipv4Addr>,
    ports: Vec<u16>,
    release_ips: Vec<Ipv4Addr>,
    release_ports: Vec<u16>,
}

impl Allocations {
    /// Undoes the allocations (the request failed or was a dry run).
    pub fn rollback(&mut self, alloc: &Allocator) {
        for ip in self.ips.drain(..) {
            alloc.release_ip(ip);
        }
        for port in self.ports.drain(..) {
            alloc.release_port(port);
        }
        self.release_ips.clear();
        self.release_ports.clear();
    }

    /// Keeps the allocations and applies the releases (the request was stored).
    pub fn commit(&mut self, alloc: &Allocator) {
        self.ips.clear();
        self.ports.clear();
        for ip in self.release_ips.drain(..) {
            alloc.release_ip(ip);
        }
        for port in self.release_ports.drain(..) {
            alloc.release_port(port);
        }
    }
}

fn alloc_error(field: String, value: Value, what: &str, e: AllocError) -> FieldError {
    FieldError {
        reason: "FieldValueInvalid",
        field,
        message: format!("Invalid value: {value}: {what}{e}"),
    }
}

/// Changes a new object gets before it is stored.
pub fn on_create(
    resource: &ResourceInfo,
    obj: &mut Value,
    alloc: &Allocator,
    allocations: &mut Allocations,
) -> Result<(), ApiError> {
    match (resource.group, resource.kind) {
        ("", "Pod") => {
            let qos = super::qos_class(obj);
            obj["status"] = json!({"phase": "Pending", "qosClass": qos});
        }
        ("", "Service") => {
            let errors = allocate_service(obj, None, alloc, allocations);
            if !errors.is_empty() {
                allocations.rollback(alloc);
                return Err(ApiError::invalid(resource, objects::name(obj), &errors));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Changes an updated object gets before it is stored.
pub fn on_update(
    resource: &ResourceInfo,
    old: &Value,
    new: &mut Value,
    alloc: &Allocator,
    allocations: &mut Allocations,
) -> Result<(), ApiError> {
    if (resource.group, resource.kind) == ("", "Service") {
        let errors = allocate_service(new, Some(old), alloc, allocations);
        if !errors.is_empty() {
            allocations.rollback(alloc);
            return Err(ApiError::invalid(resource, objects::name(new), &errors));
        }
    }
    Ok(())
}

/// Releases what a deleted object held.
pub fn on_delete(resource: &ResourceInfo, obj: &Value, alloc: &Allocator) {
    if (resource.group, resource.kind) == ("", "Service") {
        for ip in service_ips(obj) {
            alloc.release_ip(ip);
        }
        for port in node_ports(obj) {
            alloc.release_port(port);
        }
    }
}

/// Re-registers what an existing object holds (at start-up).
pub fn restore(resource: &ResourceInfo, obj: &Value, alloc: &Allocator) {
    if (resource.group, resource.kind) == ("", "Service") {
        for ip in service_ips(obj) {
            let _ = alloc.allocate_ip(ip);
        }
        for port in node_ports(obj) {
            let _ = alloc.allocate_port(port);
        }
    }
}

fn service_ips(obj: &Value) -> Vec<Ipv4Addr> {
    let mut ips: Vec<Ipv4Addr> = obj
        .pointer("/spec/clusterIPs")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str()?.parse().ok()).collect())
        .unwrap_or_default();
    if let Some(ip) = obj
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
    {
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    ips
}

fn node_ports(obj: &Value) -> Vec<u16> {
    obj.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| p.get("nodePort")?.as_u64())
                .filter_map(|p| u16::try_from(p).ok())
                .filter(|p| *p > 0)
                .collect()
        })
        .unwrap_or_default()
}

fn allocate_service(
    obj: &mut Value,
    old: Option<&Value>,
    alloc: &Allocator,
    allocations: &mut Allocations,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let svc_type = obj
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    let spec = match obj.get_mut("spec").and_then(Value::as_object_mut) {
        Some(s) => s,
        None => return errors,
    };
    // ClusterIP: carried over on update, allocated on create.
    let old_ips = old.map(service_ips).unwrap_or_default();
    if svc_type == "ExternalName" {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
        allocations.release_ips.extend(old_ips);
    } else {
        let requested = spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .map(String::from)
            .or_else(|| {
                spec.get("clusterIPs")
                    .and_then(|v| v.get(0))
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .unwrap_or_default();
        let old_ip = old
            .and_then(|o| o.pointer("/spec/clusterIP"))
            .and_then(Value::as_str)
            .map(String::from);
        let ip = match (requested.as_str(), &old_ip) {
            ("", Some(o)) => o.clone(),
            (r, Some(o)) if r == o => o.clone(),
            ("None", None) => "None".to_string(),
            ("", None) => match alloc.allocate_next_ip() {
                Ok(ip) => {
                    allocations.ips.push(ip);
                    ip.to_string()
                }
                Err(e) => {
                    errors.push(FieldError {
                        reason: "FieldValueInvalid",
                        field: "spec.clusterIPs".into(),
                        message: format!("Invalid value: []: failed to allocate a serviceIP: {e}"),
                    });
                    String::new()
                }
            },
            (r, None) => match r.parse::<Ipv4Addr>() {
                Ok(ip) => match alloc.allocate_ip(ip) {
                    Ok(()) => {
                        allocations.ips.push(ip);
                        r.to_string()
                    }
                    Err(e) => {
                        errors.push(alloc_error(
                            "spec.clusterIPs".into(),
                            json!([r]),
                            &format!("failed to allocate IP {r}: "),
                            e,
                        ));
                        String::new()
                    }
                },
                // Validation reports malformed addresses.
                Err(_) => r.to_string(),
            },
            // Changing the ClusterIP is left to validation (immutable field).
            (r, Some(_)) => r.to_string(),
        };
        if !ip.is_empty() {
            spec.insert("clusterIP".into(), json!(ip));
            spec.insert("clusterIPs".into(), json!([ip]));
            if ip != "None" || !spec.contains_key("ipFamilies") {
                spec.entry("ipFamilies").or_insert(json!(["IPv4"]));
                spec.entry("ipFamilyPolicy").or_insert(json!("SingleStack"));
            }
        }
    }
    // NodePorts.
    let wants_node_ports = matches!(svc_type.as_str(), "NodePort" | "LoadBalancer");
    let old_ports: Vec<(i64, String, u16)> = old
        .and_then(|o| o.pointer("/spec/ports"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    Some((
                        p.get("port")?.as_i64()?,
                        p.get("protocol")
                            .and_then(Value::as_str)
                            .unwrap_or("TCP")
                            .to_string(),
                        u16::try_from(p.get("nodePort")?.as_u64()?).ok()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut kept: Vec<u16> = Vec::new();
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for (i, p) in ports.iter_mut().enumerate() {
            let Some(p) = p.as_object_mut() else { continue };
            if !wants_node_ports {
                p.remove("nodePort");
                continue;
            }
            let requested = p.get("nodePort").and_then(Value::as_u64).unwrap_or(0);
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            let proto = p
                .get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("TCP")
                .to_string();
            let previous = old_ports
                .iter()
                .find(|(op, opr, _)| *op == port && *opr == proto)
                .map(|(_, _, np)| *np);
            if requested == 0 {
                if let Some(np) = previous.filter(|np| !kept.contains(np)) {
                    p.insert("nodePort".into(), json!(np));
                    kept.push(np);
                    continue;
                }
                match alloc.allocate_next_port() {
                    Ok(np) => {
                        allocations.ports.push(np);
                        p.insert("nodePort".into(), json!(np));
                    }
                    Err(e) => errors.push(FieldError {
                        reason: "FieldValueInvalid",
                        field: format!("spec.ports[{i}].nodePort"),
                        message: format!("Invalid value: 0: {e}"),
                    }),
                }
                continue;
            }
            let Ok(np) = u16::try_from(requested) else {
                errors.push(FieldError {
                    reason: "FieldValueInvalid",
                    field: format!("spec.ports[{i}].nodePort"),
                    message: format!(
                        "Invalid value: {requested}: must be between 1 and 65535, inclusive"
                    ),
                });
                continue;
            };
            if old_ports.iter().any(|(_, _, o)| *o == np) && !kept.contains(&np) {
                kept.push(np);
                continue;
            }
            match alloc.allocate_port(np) {
                Ok(()) => allocations.ports.push(np),
                Err(e) => errors.push(alloc_error(
                    format!("spec.ports[{i}].nodePort"),
                    json!(np),
                    "",
                    e,
                )),
            }
        }
    }
    for (_, _, np) in old_ports {
        if !kept.contains(&np) {
            allocations.release_ports.push(np);
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc() -> Allocator {
        Allocator::new("10.96.0.0/24".parse().unwrap(), (30000, 30010))
    }

    #[test]
    fn services_get_an_ip_and_node_ports() {
        let a = alloc();
        let mut allocs = Allocations::default();
        let mut svc = json!({"metadata": {"name": "web"}, "spec": {"type": "NodePort",
            "ports": [{"port": 80, "protocol": "TCP"}]}});
        let errors = allocate_service(&mut svc, None, &a, &mut allocs);
        assert!(errors.is_empty(), "{errors:?}");
        allocs.commit(&a);
        assert_eq!(svc["spec"]["clusterIP"], json!("10.96.0.2"));
        assert_eq!(svc["spec"]["ports"][0]["nodePort"], json!(30000));
        // The same node port again is refused.
        let mut other = json!({"spec": {"type": "NodePort",
            "ports": [{"port": 81, "nodePort": 30000}]}});
        let errors = allocate_service(&mut other, None, &a, &mut allocs);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "spec.ports[0].nodePort");
        assert!(errors[0].message.contains("already allocated"));
        allocs.rollback(&a);
    }

    #[test]
    fn updates_keep_ip_and_node_port_and_release_on_type_change() {
        let a = alloc();
        let mut allocs = Allocations::default();
        let mut svc = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        assert!(allocate_service(&mut svc, None, &a, &mut allocs).is_empty());
        allocs.commit(&a);
        let mut updated = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        assert!(allocate_service(&mut updated, Some(&svc), &a, &mut allocs).is_empty());
        allocs.commit(&a);
        assert_eq!(updated["spec"]["clusterIP"], svc["spec"]["clusterIP"]);
        assert_eq!(
            updated["spec"]["ports"][0]["nodePort"],
            svc["spec"]["ports"][0]["nodePort"]
        );
        let mut cluster_ip = json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80}]}});
        assert!(allocate_service(&mut cluster_ip, Some(&updated), &a, &mut allocs).is_empty());
        allocs.commit(&a);
        assert!(cluster_ip["spec"]["ports"][0].get("nodePort").is_none());
        // The port is free again.
        a.allocate_port(30000).unwrap();
    }
}
