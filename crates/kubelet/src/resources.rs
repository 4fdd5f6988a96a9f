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
    fn limits_become_cgroup_values() {
        let r = container_resources(&container(&[("cpu", "250m")], &[("memory", "64Mi")]));
        assert_eq!(r.memory_limit, Some(64 << 20));
        assert_eq!(r.cpu_request_millis, Some(250));
        assert_eq!(r.cpu_limit_millis, None);
    }
}
