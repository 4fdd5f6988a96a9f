//! ClusterIP and NodePort allocation: unique under concurrent creates (one lock), rebuilt from
//! the stored Services at start, released when a Service is deleted or stops needing them.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Mutex;

use ipnet::Ipv4Net;

/// Why an allocation failed, worded as Kubernetes words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    #[error("provided IP is not in the valid range. The range of valid IPs is {0}")]
    IpOutOfRange(String),
    #[error("provided IP is already allocated")]
    IpAllocated,
    #[error("range is full")]
    IpRangeFull,
    #[error("provided port is not in the valid range. The range of valid ports is {0}-{1}")]
    PortOutOfRange(u16, u16),
    #[error("provided port is already allocated")]
    PortAllocated,
    #[error("range is full")]
    PortRangeFull,
}

/// Allocates service IPs and node ports.
pub struct Allocator {
    range: Ipv4Net,
    ports: (u16, u16),
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    ips: BTreeSet<u32>,
    ports: BTreeSet<u16>,
    next_ip: u32,
    next_port: u16,
}

impl Allocator {
    pub fn new(range: Ipv4Net, ports: (u16, u16)) -> Allocator {
        Allocator {
            range,
            ports,
            state: Mutex::new(State::default()),
        }
    }

    /// The first usable address of the range (the `kubernetes` service's ClusterIP).
    pub fn first_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.range.network()) + 1)
    }

    pub fn port_range(&self) -> (u16, u16) {
        self.ports
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bounds(&self) -> (u32, u32) {
        let net = u32::from(self.range.network());
        let bcast = u32::from(self.range.broadcast());
        (net + 1, bcast.saturating_sub(1))
    }

    /// Allocates a specific IP.
    pub fn allocate_ip(&self, ip: Ipv4Addr) -> Result<(), AllocError> {
        let (lo, hi) = self.bounds();
        let n = u32::from(ip);
        if n < lo || n > hi {
            return Err(AllocError::IpOutOfRange(self.range.to_string()));
        }
        if !self.lock().ips.insert(n) {
            return Err(AllocError::IpAllocated);
        }
        Ok(())
    }

    /// Allocates the next free IP (sequentially, wrapping, skipping the first address which
    /// belongs to the `kubernetes` service).
    pub fn allocate_next_ip(&self) -> Result<Ipv4Addr, AllocError> {
        let (lo, hi) = self.bounds();
        let mut st = self.lock();
        let size = hi - lo + 1;
        let start = if st.next_ip < lo + 1 || st.next_ip > hi {
            lo + 1
        } else {
            st.next_ip
        };
        for i in 0..size {
            let candidate = lo + ((start - lo + i) % size);
            if candidate == lo && i + 1 < size {
                continue;
            }
            if st.ips.insert(candidate) {
                st.next_ip = candidate + 1;
                return Ok(Ipv4Addr::from(candidate));
            }
        }
        Err(AllocError::IpRangeFull)
    }

    pub fn release_ip(&self, ip: Ipv4Addr) {
        self.lock().ips.remove(&u32::from(ip));
    }

    /// Allocates a specific node port.
    pub fn allocate_port(&self, port: u16) -> Result<(), AllocError> {
        if port < self.ports.0 || port > self.ports.1 {
            return Err(AllocError::PortOutOfRange(self.ports.0, self.ports.1));
        }
        if !self.lock().ports.insert(port) {
            return Err(AllocError::PortAllocated);
        }
        Ok(())
    }

    /// Allocates the next free node port.
    pub fn allocate_next_port(&self) -> Result<u16, AllocError> {
        let (lo, hi) = self.ports;
        let mut st = self.lock();
        let size = u32::from(hi - lo) + 1;
        let start = if st.next_port < lo || st.next_port > hi {
            lo
        } else {
            st.next_port
        };
        for i in 0..size {
            let candidate = lo + ((u32::from(start - lo) + i) % size) as u16;
            if st.ports.insert(candidate) {
                st.next_port = candidate.wrapping_add(1);
                return Ok(candidate);
            }
        }
        Err(AllocError::PortRangeFull)
    }

    pub fn release_port(&self, port: u16) {
        self.lock().ports.remove(&port);
    }

    /// Whether an IP is in the service range.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.range.contains(&ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc() -> Allocator {
        Allocator::new("10.96.0.0/29".parse().unwrap(), (30000, 30002))
    }

    #[test]
    fn ips_are_unique_and_skip_the_first() {
        let a = alloc();
        a.allocate_ip(a.first_ip()).unwrap();
        let mut seen = BTreeSet::new();
        for _ in 0..5 {
            assert!(seen.insert(a.allocate_next_ip().unwrap()));
        }
        assert_eq!(a.allocate_next_ip(), Err(AllocError::IpRangeFull));
        assert!(!seen.contains(&a.first_ip()));
        let one = *seen.iter().next().unwrap();
        a.release_ip(one);
        assert_eq!(a.allocate_next_ip().unwrap(), one);
    }

    #[test]
    fn specific_ips_are_checked() {
        let a = alloc();
        assert_eq!(
            a.allocate_ip("10.1.0.1".parse().unwrap()),
            Err(AllocError::IpOutOfRange("10.96.0.0/29".into()))
        );
        a.allocate_ip("10.96.0.3".parse().unwrap()).unwrap();
        assert_eq!(
            a.allocate_ip("10.96.0.3".parse().unwrap()),
            Err(AllocError::IpAllocated)
        );
    }

    #[test]
    fn ports_are_unique_within_the_range() {
        let a = alloc();
        assert_eq!(
            a.allocate_port(80),
            Err(AllocError::PortOutOfRange(30000, 30002))
        );
        a.allocate_port(30001).unwrap();
        assert_eq!(a.allocate_port(30001), Err(AllocError::PortAllocated));
        let p1 = a.allocate_next_port().unwrap();
        let p2 = a.allocate_next_port().unwrap();
        assert_ne!(p1, p2);
        assert_eq!(a.allocate_next_port(), Err(AllocError::PortRangeFull));
        a.release_port(p1);
        assert_eq!(a.allocate_next_port().unwrap(), p1);
    }

    #[test]
    fn concurrent_allocations_never_collide() {
        let a = std::sync::Arc::new(Allocator::new(
            "10.96.0.0/20".parse().unwrap(),
            (30000, 32767),
        ));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let a = a.clone();
                std::thread::spawn(move || {
                    (0..500)
                        .map(|_| a.allocate_next_ip().unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all = BTreeSet::new();
        for h in handles {
            for ip in h.join().unwrap() {
                assert!(all.insert(ip), "{ip} allocated twice");
            }
        }
        assert_eq!(all.len(), 2000);
    }
}
