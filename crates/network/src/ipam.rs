//! Host-local IPAM: one file per allocated address in a directory (named after the address,
//! holding the sandbox id), reserved atomically with a hard link so that two processes reading
//! the same directory never hand out one address twice, and scanned round-robin from the last
//! reserved address (like the CNI host-local plugin) so released addresses are not reused at once.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use ipnet::Ipv4Net;

use crate::NetworkError;

const LAST_RESERVED: &str = "last_reserved_ip";

/// Makes every temporary reservation file name unique within this process.
static RESERVATION_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The allocator for one pod CIDR, persisted under `dir`.
#[derive(Debug)]
pub struct Ipam {
    dir: PathBuf,
    subnet: Ipv4Net,
    lock: Mutex<()>,
}

fn io_err(path: &Path, source: io::Error) -> NetworkError {
    NetworkError::State {
        path: path.to_path_buf(),
        source,
    }
}

impl Ipam {
    /// An allocator for `subnet` keeping its state in `dir` (created on first use).
    pub fn new(dir: impl Into<PathBuf>, subnet: Ipv4Net) -> Ipam {
        Ipam {
            dir: dir.into(),
            subnet: subnet.trunc(),
            lock: Mutex::new(()),
        }
    }

    /// The directory holding the allocations.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The gateway address (the subnet's first host), never handed out to a pod.
    pub fn gateway(&self) -> Ipv4Addr {
        first_host(self.subnet)
    }

    /// Addresses a pod may get: every host address except the gateway.
    fn candidates(&self) -> Vec<Ipv4Addr> {
        let gateway = self.gateway();
        self.subnet.hosts().filter(|ip| *ip != gateway).collect()
    }

    /// The address of `sandbox_id`, reserving a free one if it has none. Returns the address
    /// and whether it was newly reserved.
    pub fn allocate(&self, sandbox_id: &str) -> Result<(Ipv4Addr, bool), NetworkError> {
        validate_id(sandbox_id)?;
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        fs::create_dir_all(&self.dir).map_err(|e| io_err(&self.dir, e))?;
        if let Some(ip) = self
            .read_all()?
            .into_iter()
            .find_map(|(ip, owner)| (owner == sandbox_id).then_some(ip))
        {
            return Ok((ip, false));
        }
        let candidates = self.candidates();
        if candidates.is_empty() {
            return Err(NetworkError::Exhausted { cidr: self.subnet });
        }
        let start = self
            .last_reserved()
            .and_then(|last| candidates.iter().position(|ip| *ip == last))
            .map(|pos| pos + 1)
            .unwrap_or(0);
        let tmp = self.dir.join(format!(
            ".reserve-{}-{}",
            std::process::id(),
            RESERVATION_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        write_synced(&tmp, sandbox_id).map_err(|e| io_err(&tmp, e))?;
        let mut result = Err(NetworkError::Exhausted { cidr: self.subnet });
        for offset in 0..candidates.len() {
            let ip = candidates[(start + offset) % candidates.len()];
            let path = self.dir.join(ip.to_string());
            match fs::hard_link(&tmp, &path) {
                Ok(()) => {
                    result = Ok((ip, true));
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    result = Err(io_err(&path, e));
                    break;
                }
            }
        }
        let _ = fs::remove_file(&tmp);
        if let Ok((ip, _)) = result {
            let last = self.dir.join(LAST_RESERVED);
            write_synced(&last, &ip.to_string()).map_err(|e| io_err(&last, e))?;
            sync_dir(&self.dir);
        }
        result
    }

    /// The address held by `sandbox_id`, if any.
    pub fn lookup(&self, sandbox_id: &str) -> Result<Option<Ipv4Addr>, NetworkError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        Ok(self
            .read_all()?
            .into_iter()
            .find_map(|(ip, owner)| (owner == sandbox_id).then_some(ip)))
    }

    /// Releases every address held by `sandbox_id`; returns them.
    pub fn release(&self, sandbox_id: &str) -> Result<Vec<Ipv4Addr>, NetworkError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut released = Vec::new();
        for (ip, owner) in self.read_all()? {
            if owner == sandbox_id {
                let path = self.dir.join(ip.to_string());
                match fs::remove_file(&path) {
                    Ok(()) => released.push(ip),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(&path, e)),
                }
            }
        }
        if !released.is_empty() {
            sync_dir(&self.dir);
        }
        Ok(released)
    }

    /// Every allocation as (sandbox id, address), ordered by address.
    pub fn allocations(&self) -> Result<Vec<(String, Ipv4Addr)>, NetworkError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        Ok(self
            .read_all()?
            .into_iter()
            .map(|(ip, owner)| (owner, ip))
            .collect())
    }

    /// Removes the whole state directory.
    pub fn remove_all(&self) -> Result<(), NetworkError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&self.dir, e)),
        }
    }

    fn last_reserved(&self) -> Option<Ipv4Addr> {
        fs::read_to_string(self.dir.join(LAST_RESERVED))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn read_all(&self) -> Result<BTreeMap<Ipv4Addr, String>, NetworkError> {
        let mut found = BTreeMap::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
            Err(e) => return Err(io_err(&self.dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_err(&self.dir, e))?;
            let Some(ip) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<Ipv4Addr>().ok())
            else {
                continue;
            };
            let path = entry.path();
            match fs::read_to_string(&path) {
                Ok(owner) => {
                    found.insert(ip, owner.trim().to_string());
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path, e)),
            }
        }
        Ok(found)
    }
}

/// The first host address of a subnet (the bridge / gateway address).
pub fn first_host(subnet: Ipv4Net) -> Ipv4Addr {
    subnet.hosts().next().unwrap_or(subnet.network())
}

pub(crate) fn validate_id(sandbox_id: &str) -> Result<(), NetworkError> {
    if sandbox_id.is_empty() || sandbox_id.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(NetworkError::InvalidSandboxId(sandbox_id.to_string()));
    }
    Ok(())
}

fn write_synced(path: &Path, contents: &str) -> io::Result<()> {
    let mut file = fs::File::create(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn allocates_distinct_addresses_skipping_network_gateway_and_broadcast() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Ipam::new(dir.path(), net("10.244.1.0/29"));
        let mut got = Vec::new();
        for i in 0..5 {
            let (ip, new) = ipam.allocate(&format!("sb{i}")).unwrap();
            assert!(new);
            got.push(ip.to_string());
        }
        assert_eq!(
            got,
            [
                "10.244.1.2",
                "10.244.1.3",
                "10.244.1.4",
                "10.244.1.5",
                "10.244.1.6"
            ]
        );
        let err = ipam.allocate("sb-extra").unwrap_err();
        assert!(matches!(err, NetworkError::Exhausted { .. }), "{err}");
        assert_eq!(err.to_string(), "no free address left in 10.244.1.0/29");
    }

    #[test]
    fn allocation_is_idempotent_per_sandbox() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Ipam::new(dir.path(), net("10.244.1.0/24"));
        let (first, new_first) = ipam.allocate("a").unwrap();
        let (again, new_again) = ipam.allocate("a").unwrap();
        assert!(new_first && !new_again);
        assert_eq!(first, again);
        assert_eq!(ipam.allocations().unwrap(), vec![("a".to_string(), first)]);
    }

    #[test]
    fn state_survives_a_new_allocator_on_the_same_directory() {
        let dir = tempfile::tempdir().unwrap();
        let subnet = net("10.244.1.0/24");
        let (a, _) = Ipam::new(dir.path(), subnet).allocate("a").unwrap();
        let restarted = Ipam::new(dir.path(), subnet);
        assert_eq!(restarted.lookup("a").unwrap(), Some(a));
        let (b, _) = restarted.allocate("b").unwrap();
        assert_ne!(a, b, "a restarted allocator handed out an address in use");
        assert_eq!(restarted.allocate("a").unwrap(), (a, false));
    }

    #[test]
    fn release_frees_the_address_and_it_is_reused_only_after_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Ipam::new(dir.path(), net("10.244.1.0/29"));
        let (a, _) = ipam.allocate("a").unwrap();
        ipam.allocate("b").unwrap();
        assert_eq!(ipam.release("a").unwrap(), vec![a]);
        assert_eq!(ipam.release("a").unwrap(), Vec::<Ipv4Addr>::new());
        assert_eq!(ipam.lookup("a").unwrap(), None);
        // Round robin: the next reservation continues after the last one, not at `a`.
        let (c, _) = ipam.allocate("c").unwrap();
        assert_ne!(c, a);
        // Fill the rest: `a`'s old address becomes available again.
        let mut rest = Vec::new();
        for i in 0..3 {
            rest.push(ipam.allocate(&format!("r{i}")).unwrap().0);
        }
        assert!(rest.contains(&a), "{rest:?} should reuse {a}");
    }

    #[test]
    fn two_allocators_on_one_directory_never_share_an_address() {
        let dir = tempfile::tempdir().unwrap();
        let subnet = net("10.244.1.0/26");
        let path = dir.path().to_path_buf();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let ipam = Ipam::new(path, subnet);
                    (0..10)
                        .map(|i| ipam.allocate(&format!("t{t}-{i}")).unwrap().0)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<Ipv4Addr> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let total = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), total, "an address was handed out twice");
        assert_eq!(Ipam::new(&path, subnet).allocations().unwrap().len(), 40);
    }

    #[test]
    fn rejects_ids_that_cannot_be_stored() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Ipam::new(dir.path(), net("10.244.1.0/24"));
        assert!(matches!(
            ipam.allocate("a b"),
            Err(NetworkError::InvalidSandboxId(_))
        ));
        assert!(matches!(
            ipam.allocate(""),
            Err(NetworkError::InvalidSandboxId(_))
        ));
    }
}
