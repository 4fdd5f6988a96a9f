//! Resource quantities and pod requests as the scheduler counts them.

use k8s_openapi::api::core::v1::{Pod, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Requested or allocatable resources: milli-CPU, memory bytes, pod count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub pods: i64,
}

impl Resources {
    /// Adds `o`.
    pub fn add(&mut self, o: &Resources) {
        self.milli_cpu += o.milli_cpu;
        self.memory += o.memory;
        self.pods += o.pods;
    }
    /// Subtracts `o`.
    pub fn sub(&mut self, o: &Resources) {
        self.milli_cpu -= o.milli_cpu;
        self.memory -= o.memory;
        self.pods -= o.pods;
    }
}

/// Parses a Kubernetes quantity ("100m", "1.5", "128Mi", "1G", "2e3") to a float.
pub fn parse_quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let v: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        s if s.starts_with('e') || s.starts_with('E') => 10f64.powi(s[1..].parse().ok()?),
        _ => return None,
    };
    Some(v * mult)
}

/// Milli-units of a quantity, rounded up.
pub fn milli(q: &Quantity) -> i64 {
    parse_quantity(&q.0)
        .map(|v| (v * 1000.0).ceil() as i64)
        .unwrap_or(0)
}

/// Units of a quantity, rounded up.
pub fn units(q: &Quantity) -> i64 {
    parse_quantity(&q.0).map(|v| v.ceil() as i64).unwrap_or(0)
}

fn requests_of(r: Option<&ResourceRequirements>) -> (i64, i64) {
    let Some(req) = r.and_then(|r| r.requests.as_ref()) else {
        return (0, 0);
    };
    (
        req.get("cpu").map(milli).unwrap_or(0),
        req.get("memory").map(units).unwrap_or(0),
    )
}

/// The pod's requests (sum of containers, at least the largest init container, plus overhead),
/// counting one pod.
pub fn pod_requests(pod: &Pod) -> Resources {
    let Some(spec) = pod.spec.as_ref() else {
        return Resources {
            pods: 1,
            ..Default::default()
        };
    };
    let (mut cpu, mut mem) = (0, 0);
    for c in &spec.containers {
        let (a, b) = requests_of(c.resources.as_ref());
        cpu += a;
        mem += b;
    }
    for c in spec.init_containers.iter().flatten() {
        let (a, b) = requests_of(c.resources.as_ref());
        cpu = cpu.max(a);
        mem = mem.max(b);
    }
    if let Some(o) = &spec.overhead {
        cpu += o.get("cpu").map(milli).unwrap_or(0);
        mem += o.get("memory").map(units).unwrap_or(0);
    }
    Resources {
        milli_cpu: cpu,
        memory: mem,
        pods: 1,
    }
}

/// Requests with upstream's non-zero defaults for scoring (100m CPU, 200Mi memory per container
/// that requests nothing).
pub fn pod_requests_nonzero(pod: &Pod) -> Resources {
    let Some(spec) = pod.spec.as_ref() else {
        return Resources::default();
    };
    let (mut cpu, mut mem) = (0, 0);
    for c in &spec.containers {
        let (a, b) = requests_of(c.resources.as_ref());
        cpu += if a == 0 { 100 } else { a };
        mem += if b == 0 { 200 * 1024 * 1024 } else { b };
    }
    Resources {
        milli_cpu: cpu,
        memory: mem,
        pods: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(milli(&Quantity("100m".into())), 100);
        assert_eq!(milli(&Quantity("1.5".into())), 1500);
        assert_eq!(units(&Quantity("128Mi".into())), 128 * 1024 * 1024);
        assert_eq!(units(&Quantity("1G".into())), 1_000_000_000);
        assert_eq!(units(&Quantity("2e3".into())), 2000);
        assert_eq!(units(&Quantity("110".into())), 110);
    }
}
