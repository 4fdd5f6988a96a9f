//! Resource arithmetic of the kubelet: quantities, a container's cgroup limits, and the pod's
//! QoS class (upstream's GetPodQOS).

use k8s_openapi::api::core::v1::{Container, Pod};
use runtime::cgroup::Resources;

/// A quantity string as a number (`100m` → 0.1, `1Gi` → 1073741824); 0 when malformed.
pub fn quantity_to_f64(q: &str) -> f64 {
    api::validation::parse_quantity(q).unwrap_or(0.0)
}

fn get(c: &Container, which: &str, name: &str) -> Option<f64> {
    let r = c.resources.as_ref()?;
    let m = if which == "limits" {
        r.limits.as_ref()?
    } else {
        r.requests.as_ref()?
    };
    m.get(name).map(|q| quantity_to_f64(&q.0))
}

/// The cgroup limits of a container (requests default to limits, as the apiserver defaults).
pub fn container_resources(c: &Container) -> Resources {
    let cpu_limit = get(c, "limits", "cpu");
    let cpu_request = get(c, "requests", "cpu").or(cpu_limit);
    Resources {
        memory_limit: get(c, "limits", "memory").map(|b| b as u64),
        cpu_limit_millis: cpu_limit.map(|v| (v * 1000.0).ceil() as u64),
        cpu_request_millis: cpu_request.map(|v| (v * 1000.0).ceil() as u64),
        pids_limit: None,
    }
}

/// The cgroup the pods of a QoS class live under, as upstream's kubepods tree: Guaranteed pods
/// directly in `kubepods`, the others in `kubepods/burstable` and `kubepods/besteffort`.
pub fn qos_cgroup(root: &str, qos: &str) -> String {
    match qos {
        "Guaranteed" => format!("{root}/kubepods"),
        "Burstable" => format!("{root}/kubepods/burstable"),
        _ => format!("{root}/kubepods/besteffort"),
    }
}

/// The pod-level cgroup limits: the sums of the containers' limits when every container has
/// one (as upstream's pod cgroup), the sum of cpu requests as the weight.
pub fn pod_resources(pod: &Pod) -> Resources {
    let containers: Vec<&Container> = pod.spec.iter().flat_map(|s| s.containers.iter()).collect();
    let sum = |which: &str, name: &str| -> Option<f64> {
        containers
            .iter()
            .map(|c| get(c, which, name))
            .try_fold(0.0, |acc, v| v.map(|v| acc + v))
    };
    let cpu_req: f64 = containers
        .iter()
        .map(|c| {
            get(c, "requests", "cpu")
                .or(get(c, "limits", "cpu"))
                .unwrap_or(0.0)
        })
        .sum();
    Resources {
        memory_limit: sum("limits", "memory")
            .filter(|v| *v > 0.0)
            .map(|b| b as u64),
        cpu_limit_millis: sum("limits", "cpu")
            .filter(|v| *v > 0.0)
            .map(|v| (v * 1000.0).ceil() as u64),
        cpu_request_millis: (cpu_req > 0.0).then(|| (cpu_req * 1000.0).ceil() as u64),
        pids_limit: None,
    }
}

/// Creates the node's `kubepods` tree and caps it at the node's allocatable cpu and memory
/// (node allocatable enforcement).
pub fn enforce_allocatable(
    root: &str,
    allocatable: &std::collections::BTreeMap<String, String>,
) -> Result<(), runtime::cgroup::CgroupError> {
    let h = runtime::cgroup::Hierarchy::detect()?;
    let kubepods = h.cgroup(&format!("{root}/kubepods"));
    kubepods.create()?;
    let cpu = allocatable.get("cpu").map(|q| quantity_to_f64(q));
    kubepods.apply(&Resources {
        memory_limit: allocatable
            .get("memory")
            .map(|q| quantity_to_f64(q) as u64)
            .filter(|m| *m > 0),
        cpu_limit_millis: cpu.filter(|c| *c > 0.0).map(|c| (c * 1000.0) as u64),
        cpu_request_millis: cpu.filter(|c| *c > 0.0).map(|c| (c * 1000.0) as u64),
        pids_limit: None,
    })?;
    for class in ["burstable", "besteffort"] {
        h.cgroup(&format!("{root}/kubepods/{class}")).create()?;
    }
    Ok(())
}

/// The pod's QoS class: Guaranteed when every container has equal cpu and memory requests and
/// limits, BestEffort when none has any, Burstable otherwise.
pub fn qos_class(pod: &Pod) -> &'static str {
    let Some(spec) = &pod.spec else {
        return "BestEffort";
    };
    let all: Vec<&Container> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &all {
        for name in ["cpu", "memory"] {
            let req = get(c, "requests", name);
            let lim = get(c, "limits", name);
            if req.is_some_and(|v| v > 0.0) || lim.is_some_and(|v| v > 0.0) {
                any = true;
            }
            let req = req.or(lim);
            match (req, lim) {
                (Some(r), Some(l)) if r == l && l > 0.0 => {}
                _ => guaranteed = false,
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn container(req: &[(&str, &str)], lim: &[(&str, &str)]) -> Container {
        let m = |v: &[(&str, &str)]| {
            (!v.is_empty()).then(|| {
                v.iter()
                    .map(|(k, q)| (k.to_string(), Quantity(q.to_string())))
                    .collect()
            })
        };
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                requests: m(req),
                limits: m(lim),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod(cs: Vec<Container>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: cs,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn qos_classes() {
        assert_eq!(qos_class(&pod(vec![container(&[], &[])])), "BestEffort");
        let g = container(&[], &[("cpu", "500m"), ("memory", "64Mi")]);
        assert_eq!(qos_class(&pod(vec![g.clone()])), "Guaranteed");
        let b = container(&[("cpu", "100m")], &[]);
        assert_eq!(qos_class(&pod(vec![g, b])), "Burstable");
    }

    #[test]
    fn qos_tree_and_pod_sums() {
        assert_eq!(qos_cgroup("mc-n0", "Guaranteed"), "mc-n0/kubepods");
        assert_eq!(qos_cgroup("mc-n0", "Burstable"), "mc-n0/kubepods/burstable");
        assert_eq!(
            qos_cgroup("mc-n0", "BestEffort"),
            "mc-n0/kubepods/besteffort"
        );
        let a = container(&[], &[("cpu", "500m"), ("memory", "64Mi")]);
        let b = container(&[], &[("cpu", "250m"), ("memory", "32Mi")]);
        let r = pod_resources(&pod(vec![a.clone(), b]));
        assert_eq!(r.memory_limit, Some(96 << 20));
        assert_eq!(r.cpu_limit_millis, Some(750));
        // One container without a memory limit: the pod has none.
        let r = pod_resources(&pod(vec![a, container(&[("cpu", "100m")], &[])]));
        assert_eq!(r.memory_limit, None);
        assert_eq!(r.cpu_request_millis, Some(600));
    }

    #[test]
    fn limits_become_cgroup_values() {
        let r = container_resources(&container(&[("cpu", "250m")], &[("memory", "64Mi")]));
        assert_eq!(r.memory_limit, Some(64 << 20));
        assert_eq!(r.cpu_request_millis, Some(250));
        assert_eq!(r.cpu_limit_millis, None);
    }
}
