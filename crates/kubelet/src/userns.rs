//! Host id ranges for pods with `hostUsers: false`, as upstream's kubelet user-namespace
//! manager hands them out: 65536 ids per pod, in blocks above the node's own users (from
//! 65536) and below 2^31, the lowest free block first. A pod's block is kept in its pod
//! directory (`<root>/pods/<uid>/userns`), so a restarted kubelet gives it the same one, and
//! is free again once the pod's directory is removed.

use std::collections::BTreeSet;
use std::io;
use std::path::Path;
use std::sync::Mutex;

use runtime::userns::IdMapping;

/// Ids per pod.
pub const IDS_PER_POD: u32 = 65536;
/// The first block handed out (host ids below 65536 belong to the node).
const FIRST_BLOCK: u32 = 1;
/// One past the last block (host ids stay below 2^31).
const END_BLOCK: u32 = 1 << 15;
/// The file in a pod's directory that records its block's first host id.
const FILE: &str = "userns";

/// Allocation is one at a time: pod workers run concurrently.
static ALLOCATING: Mutex<()> = Mutex::new(());

/// The mapping of the pod with `uid`, whose directories are under `pods_dir`: the one it has,
/// or the lowest block no other pod there holds.
pub fn mapping_for(pods_dir: &Path, uid: &str) -> io::Result<IdMapping> {
    let _one = ALLOCATING.lock().unwrap_or_else(|e| e.into_inner());
    let mine = pods_dir.join(uid).join(FILE);
    if let Some(host_id) = read(&mine) {
        return Ok(IdMapping {
            host_id,
            size: IDS_PER_POD,
        });
    }
    let mut used = BTreeSet::new();
    for e in std::fs::read_dir(pods_dir).into_iter().flatten().flatten() {
        if let Some(id) = read(&e.path().join(FILE)) {
            used.insert(id / IDS_PER_POD);
        }
    }
    let block = (FIRST_BLOCK..END_BLOCK)
        .find(|b| !used.contains(b))
        .ok_or_else(|| io::Error::other("no free user namespace range left on this node"))?;
    let host_id = block * IDS_PER_POD;
    std::fs::create_dir_all(pods_dir.join(uid))?;
    runtime::util::write_atomic(&mine, host_id.to_string().as_bytes())?;
    Ok(IdMapping {
        host_id,
        size: IDS_PER_POD,
    })
}

fn read(p: &Path) -> Option<u32> {
    let id: u32 = std::fs::read_to_string(p).ok()?.trim().parse().ok()?;
    (id >= FIRST_BLOCK * IDS_PER_POD && id.is_multiple_of(IDS_PER_POD)).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_get_distinct_blocks_kept_across_calls_and_freed_with_their_dir() {
        let d = tempfile::tempdir().unwrap();
        let a = mapping_for(d.path(), "a").unwrap();
        let b = mapping_for(d.path(), "b").unwrap();
        assert_eq!(a.host_id, 65536);
        assert_eq!(b.host_id, 2 * 65536);
        assert_eq!(a.size, 65536);
        // The same pod keeps its block (a restarted kubelet reads it back).
        assert_eq!(mapping_for(d.path(), "a").unwrap(), a);
        // A removed pod's block is the next one given out.
        std::fs::remove_dir_all(d.path().join("a")).unwrap();
        assert_eq!(mapping_for(d.path(), "c").unwrap().host_id, 65536);
        // A tampered record is not trusted.
        std::fs::write(d.path().join("b").join(FILE), "0").unwrap();
        assert_ne!(mapping_for(d.path(), "b").unwrap().host_id, 0);
    }
}
