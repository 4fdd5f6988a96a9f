//! Node allocatable: capacity minus the --kube-reserved and --system-reserved amounts, and pod
//! admission against it (upstream's predicate admit handler): a new pod whose requests do not
//! fit beside the pods already admitted is rejected with phase Failed and reason
//! `OutOf<resource>`, as upstream's kubelet does for pods that bypass the scheduler.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use crate::resources::quantity_to_f64;

/// Resources a reservation flag may name.
pub const RESERVABLE: &[&str] = &["cpu", "memory", "ephemeral-storage"];

/// Errors of the reservation flags.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ReservedError {
    #[error("reserved resource {0:?} is not one of cpu, memory, ephemeral-storage")]
    UnknownResource(String),
    #[error("reserved {name}={value}: not a quantity")]
    BadQuantity { name: String, value: String },
    #[error("reserved entry {0:?} is not name=quantity")]
    Malformed(String),
}

/// Parses `cpu=100m,memory=256Mi` (the form of upstream's --kube-reserved).
pub fn parse_reserved(s: &str) -> Result<BTreeMap<String, String>, ReservedError> {
    let mut out = BTreeMap::new();
    for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, value) = entry
            .split_once('=')
            .ok_or_else(|| ReservedError::Malformed(entry.to_string()))?;
        if !RESERVABLE.contains(&name) {
            return Err(ReservedError::UnknownResource(name.to_string()));
        }
        match api::validation::parse_quantity(value) {
            Some(v) if v >= 0.0 => {}
            _ => {
                return Err(ReservedError::BadQuantity {
                    name: name.to_string(),
                    value: value.to_string(),
                })
            }
        }
        out.insert(name.to_string(), value.to_string());
    }
    Ok(out)
}

/// Capacity minus every reservation, never below zero: cpu in millicores (`1900m`), memory and
/// ephemeral storage in Ki when whole Ki, else bytes; pods unchanged.
pub fn allocatable(
    capacity: &BTreeMap<String, String>,
    reserved: &[&BTreeMap<String, String>],
) -> BTreeMap<String, String> {
    let mut out = capacity.clone();
    for (name, cap) in capacity {
        let taken: f64 = reserved
            .iter()
            .filter_map(|r| r.get(name))
            .map(|q| quantity_to_f64(q))
            .sum();
        if taken == 0.0 {
            continue;
        }
        let left = (quantity_to_f64(cap) - taken).max(0.0);
        let rendered = match name.as_str() {
            "cpu" => format!("{}m", (left * 1000.0).round() as u64),
            _ => {
                let bytes = left.round() as u64;
                if bytes.is_multiple_of(1024) {
                    format!("{}Ki", bytes / 1024)
                } else {
                    bytes.to_string()
                }
            }
        };
        out.insert(name.clone(), rendered);
    }
    out
}

/// A pod's requests as upstream's admission counts them: (millicores, bytes) summed over the
/// containers, at least the largest init container's, plus the pod overhead.
pub fn pod_requests(pod: &Pod) -> (u64, u64) {
    let Some(spec) = &pod.spec else {
        return (0, 0);
    };
    let req = |c: &k8s_openapi::api::core::v1::Container, name: &str| -> f64 {
        c.resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get(name))
            .map(|q| quantity_to_f64(&q.0))
            .unwrap_or(0.0)
    };
    let (mut cpu, mut mem) = (0.0, 0.0);
    for c in &spec.containers {
        cpu += req(c, "cpu");
        mem += req(c, "memory");
    }
    for c in spec.init_containers.iter().flatten() {
        cpu = f64::max(cpu, req(c, "cpu"));
        mem = f64::max(mem, req(c, "memory"));
    }
    if let Some(o) = &spec.overhead {
        cpu += o.get("cpu").map(|q| quantity_to_f64(&q.0)).unwrap_or(0.0);
        mem += o
            .get("memory")
            .map(|q| quantity_to_f64(&q.0))
            .unwrap_or(0.0);
    }
    ((cpu * 1000.0).ceil() as u64, mem.ceil() as u64)
}

/// Why a pod was turned away: its status reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: String,
    pub message: String,
}

/// Whether a pod carries a rejection of this admission (Failed with an `OutOf...` reason):
/// no worker ever runs it.
pub fn was_rejected(pod: &Pod) -> bool {
    pod.status.as_ref().is_some_and(|s| {
        s.phase.as_deref() == Some("Failed")
            && s.reason
                .as_deref()
                .is_some_and(|r| ["OutOfpods", "OutOfcpu", "OutOfmemory"].contains(&r))
    })
}

/// Whether `pod` fits `allocatable` beside `admitted` (the node's other active pods). The first
/// resource short decides, in upstream's order: pods, cpu, memory.
pub fn admit(
    pod: &Pod,
    admitted: &[&Pod],
    allocatable: &BTreeMap<String, String>,
) -> Result<(), Rejection> {
    let alloc = |name: &str, scale: f64| -> u64 {
        allocatable
            .get(name)
            .map(|q| (quantity_to_f64(q) * scale).round() as u64)
            .unwrap_or(u64::MAX)
    };
    let (cpu, mem) = pod_requests(pod);
    let (used_cpu, used_mem) = admitted
        .iter()
        .map(|p| pod_requests(p))
        .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
    let checks = [
        ("pods", 1, admitted.len() as u64, alloc("pods", 1.0)),
        ("cpu", cpu, used_cpu, alloc("cpu", 1000.0)),
        ("memory", mem, used_mem, alloc("memory", 1.0)),
    ];
    for (name, requested, used, capacity) in checks {
        if requested > 0 && used.saturating_add(requested) > capacity {
            return Err(Rejection {
                reason: format!("OutOf{name}"),
                message: format!(
                    "Pod was rejected: Node didn't have enough resource: {name}, requested: {requested}, used: {used}, capacity: {capacity}"
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(cpu: &str, mem: &str) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]}}))
        .unwrap()
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reservations_parse_and_come_off_capacity() {
        let kube = parse_reserved("cpu=100m, memory=256Mi").unwrap();
        let system = parse_reserved("cpu=400m").unwrap();
        let cap = map(&[("cpu", "2"), ("memory", "4Gi"), ("pods", "110")]);
        let a = allocatable(&cap, &[&kube, &system]);
        assert_eq!(a["cpu"], "1500m");
        assert_eq!(a["memory"], format!("{}Ki", 4 * 1024 * 1024 - 256 * 1024));
        assert_eq!(a["pods"], "110");
        assert_eq!(allocatable(&cap, &[]), cap);
        assert_eq!(
            parse_reserved("gpu=1"),
            Err(ReservedError::UnknownResource("gpu".into()))
        );
        assert_eq!(
            parse_reserved("cpu=lots"),
            Err(ReservedError::BadQuantity {
                name: "cpu".into(),
                value: "lots".into()
            })
        );
        assert_eq!(
            parse_reserved("cpu"),
            Err(ReservedError::Malformed("cpu".into()))
        );
    }

    #[test]
    fn admission_rejects_what_does_not_fit_with_upstreams_words() {
        let alloc = map(&[("cpu", "1"), ("memory", "1Gi"), ("pods", "2")]);
        let running = pod("600m", "100Mi");
        assert!(admit(&pod("400m", "100Mi"), &[&running], &alloc).is_ok());
        let r = admit(&pod("500m", "100Mi"), &[&running], &alloc).unwrap_err();
        assert_eq!(r.reason, "OutOfcpu");
        assert_eq!(
            r.message,
            "Pod was rejected: Node didn't have enough resource: cpu, requested: 500, used: 600, capacity: 1000"
        );
        let r = admit(&pod("0", "2Gi"), &[], &alloc).unwrap_err();
        assert_eq!(r.reason, "OutOfmemory");
        let two = [&running, &running];
        let r = admit(&pod("0", "0"), &two, &alloc).unwrap_err();
        assert_eq!(r.reason, "OutOfpods");
    }
}
