//! cgroups: a v2 driver and a v1 driver behind one [`Cgroup`] handle.
//!
//! [`Hierarchy::detect`] reads the mount table once: on a pure v2 host every controller goes
//! through the unified hierarchy; on a hybrid host (memory, cpu, pids bound to v1 hierarchies
//! and cgroup2 at /sys/fs/cgroup/unified) the v1-bound controllers go through v1 with the same
//! behaviour, and the unified hierarchy is still used to track processes. All file access is
//! relative to the detected mount points, so unit tests run against a fake tree in a tempdir.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

/// cgroup errors.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A cgroup file or directory could not be used.
    #[error("cgroup {path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// No cgroup hierarchy at all.
    #[error("no cgroup hierarchy mounted under {0}")]
    NoHierarchy(PathBuf),
    /// Processes did not go away.
    #[error("cgroup {0} still has processes after kill")]
    Busy(String),
}

type Result<T> = std::result::Result<T, CgroupError>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Which driver serves a controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Driver {
    /// Through the unified (v2) hierarchy at this mount point.
    V2(PathBuf),
    /// Through a v1 hierarchy at this mount point.
    V1(PathBuf),
}

/// The detected cgroup layout of this host.
#[derive(Debug, Clone, Serialize)]
pub struct Hierarchy {
    /// `v2`, `hybrid` or `v1`.
    pub mode: String,
    /// The cgroup2 mount, if any.
    pub unified: Option<PathBuf>,
    /// Controller (`memory`, `cpu`, `cpuacct`, `pids`) → driver.
    pub controllers: BTreeMap<String, Driver>,
}

/// Limits of one container (or pod) cgroup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Resources {
    /// Memory limit in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<u64>,
    /// CPU limit in millicores (cpu.max / cfs quota).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_limit_millis: Option<u64>,
    /// CPU request in millicores (cpu.weight / cpu.shares).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_request_millis: Option<u64>,
    /// Maximum number of processes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<u64>,
}

/// Usage numbers for metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Total CPU time in nanoseconds.
    pub cpu_usage_ns: u64,
    /// Periods throttled by the CPU limit.
    pub cpu_throttled_periods: u64,
    /// Current memory usage in bytes.
    pub memory_usage: u64,
    /// OOM kills in this cgroup.
    pub oom_kills: u64,
    /// Current number of pids.
    pub pids: u64,
}

/// CFS period used for CPU limits.
pub const CPU_PERIOD_US: u64 = 100_000;

/// Kubernetes' millicores → cpu.shares.
pub fn millis_to_shares(m: u64) -> u64 {
    (m * 1024 / 1000).max(2)
}

/// cpu.shares → cpu.weight (the formula runc and the kubelet use).
pub fn shares_to_weight(shares: u64) -> u64 {
    1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142
}

fn parse_mountinfo(text: &str, under: &Path) -> (Option<PathBuf>, BTreeMap<String, PathBuf>) {
    let mut unified = None;
    let mut v1 = BTreeMap::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let lf: Vec<&str> = left.split_whitespace().collect();
        let rf: Vec<&str> = right.split_whitespace().collect();
        if lf.len() < 5 || rf.len() < 3 {
            continue;
        }
        let mp = PathBuf::from(lf[4]);
        if !mp.starts_with(under) {
            continue;
        }
        // A later mount hides every earlier one at or below its mount point (mountinfo lists
        // mounts in the order they were made): e.g. a cgroup2 mounted over a hybrid layout.
        if unified
            .as_ref()
            .is_some_and(|u: &PathBuf| u.starts_with(&mp))
        {
            unified = None;
        }
        v1.retain(|_, p: &mut PathBuf| !p.starts_with(&mp));
        match rf[0] {
            "cgroup2" => unified = Some(mp),
            "cgroup" => {
                for opt in rf[2].split(',') {
                    if matches!(opt, "memory" | "cpu" | "cpuacct" | "pids") {
                        v1.insert(opt.to_string(), mp.clone());
                    }
                }
            }
            _ => {}
        }
    }
    (unified, v1)
}

impl Hierarchy {
    /// Detects the layout from /proc/self/mountinfo (mounts under /sys/fs/cgroup).
    pub fn detect() -> Result<Self> {
        let p = Path::new("/proc/self/mountinfo");
        let text = fs::read_to_string(p).map_err(io_err(p))?;
        Self::from_mountinfo(&text, Path::new("/sys/fs/cgroup"))
    }

    /// Builds the layout from mountinfo text, considering only mounts under `under`.
    pub fn from_mountinfo(text: &str, under: &Path) -> Result<Self> {
        let (unified, v1) = parse_mountinfo(text, under);
        let v2_ctrls: Vec<String> = unified
            .as_ref()
            .and_then(|u| fs::read_to_string(u.join("cgroup.controllers")).ok())
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let mut controllers = BTreeMap::new();
        for c in ["memory", "cpu", "cpuacct", "pids"] {
            if let Some(mp) = v1.get(c) {
                controllers.insert(c.to_string(), Driver::V1(mp.clone()));
            } else if let Some(u) = &unified {
                let v2name = if c == "cpuacct" { "cpu" } else { c };
                if v2_ctrls.iter().any(|x| x == v2name) {
                    controllers.insert(c.to_string(), Driver::V2(u.clone()));
                }
            }
        }
        if unified.is_none() && v1.is_empty() {
            return Err(CgroupError::NoHierarchy(under.to_path_buf()));
        }
        let mode = match (unified.is_some(), v1.is_empty()) {
            (true, true) => "v2",
            (true, false) => "hybrid",
            _ => "v1",
        };
        Ok(Self {
            mode: mode.to_string(),
            unified,
            controllers,
        })
    }

    fn driver(&self, c: &str) -> Option<&Driver> {
        self.controllers.get(c)
    }

    /// Every distinct directory a cgroup at `rel` lives in (one per hierarchy).
    fn dirs(&self, rel: &str) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = Vec::new();
        if let Some(u) = &self.unified {
            v.push(u.join(rel));
        }
        for d in self.controllers.values() {
            if let Driver::V1(mp) = d {
                let p = mp.join(rel);
                if !v.contains(&p) {
                    v.push(p);
                }
            }
        }
        v
    }

    /// The cgroup handle for `rel` (e.g. `minicluster/<pod>/<container>`); nothing is created.
    pub fn cgroup(&self, rel: &str) -> Cgroup {
        Cgroup {
            h: self.clone(),
            rel: rel.trim_matches('/').to_string(),
        }
    }
}

/// One cgroup, present in every hierarchy the runtime uses.
#[derive(Debug, Clone)]
pub struct Cgroup {
    h: Hierarchy,
    rel: String,
}

fn write(path: &Path, val: &str) -> Result<()> {
    fs::write(path, val).map_err(io_err(path))
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn keyed(path: &Path, key: &str) -> Option<u64> {
    fs::read_to_string(path).ok()?.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

impl Cgroup {
    /// The relative path.
    pub fn rel(&self) -> &str {
        &self.rel
    }

    fn ctl(&self, c: &str) -> Option<(bool, PathBuf)> {
        match self.h.driver(c)? {
            Driver::V2(u) => Some((true, u.join(&self.rel))),
            Driver::V1(m) => Some((false, m.join(&self.rel))),
        }
    }

    /// Creates the cgroup in every hierarchy; on v2 enables the controllers down the path.
    pub fn create(&self) -> Result<()> {
        if let Some(u) = &self.h.unified {
            let wanted: Vec<&str> = ["memory", "cpu", "pids"]
                .into_iter()
                .filter(|c| matches!(self.h.driver(c), Some(Driver::V2(_))))
                .collect();
            let mut cur = u.clone();
            for comp in self.rel.split('/') {
                if !wanted.is_empty() {
                    let ctl = wanted
                        .iter()
                        .map(|c| format!("+{c}"))
                        .collect::<Vec<_>>()
                        .join(" ");
                    let _ = fs::write(cur.join("cgroup.subtree_control"), ctl);
                }
                cur.push(comp);
                if !cur.is_dir() {
                    fs::create_dir(&cur).map_err(io_err(&cur))?;
                }
            }
        }
        for d in self.h.dirs(&self.rel) {
            fs::create_dir_all(&d).map_err(io_err(&d))?;
        }
        Ok(())
    }

    /// Applies limits.
    pub fn apply(&self, r: &Resources) -> Result<()> {
        if let Some(mem) = r.memory_limit {
            match self.ctl("memory") {
                Some((true, d)) => {
                    write(&d.join("memory.max"), &mem.to_string())?;
                    let _ = fs::write(d.join("memory.swap.max"), "0");
                }
                Some((false, d)) => {
                    write(&d.join("memory.limit_in_bytes"), &mem.to_string())?;
                    // No swap either (like the kubelet with swap off).
                    let _ = fs::write(d.join("memory.memsw.limit_in_bytes"), mem.to_string());
                }
                None => {}
            }
        }
        if let Some(m) = r.cpu_limit_millis {
            let quota = (m * CPU_PERIOD_US / 1000).max(1000);
            match self.ctl("cpu") {
                Some((true, d)) => write(&d.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))?,
                Some((false, d)) => {
                    write(&d.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                    write(&d.join("cpu.cfs_quota_us"), &quota.to_string())?;
                }
                None => {}
            }
        }
        if let Some(m) = r.cpu_request_millis {
            let shares = millis_to_shares(m);
            match self.ctl("cpu") {
                Some((true, d)) => {
                    write(&d.join("cpu.weight"), &shares_to_weight(shares).to_string())?
                }
                Some((false, d)) => write(&d.join("cpu.shares"), &shares.to_string())?,
                None => {}
            }
        }
        if let Some(p) = r.pids_limit {
            if let Some((_, d)) = self.ctl("pids") {
                write(&d.join("pids.max"), &p.to_string())?;
            }
        }
        Ok(())
    }

    /// Moves a process (host pid) into the cgroup in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        for d in self.h.dirs(&self.rel) {
            write(&d.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// The cgroup's directory in the unified (v2) hierarchy, when there is one: a child can be
    /// forked straight into it (`clone3` with `CLONE_INTO_CGROUP`, see
    /// [`crate::process::fork_into_cgroup`]) instead of being moved there.
    pub fn unified_dir(&self) -> Option<PathBuf> {
        self.h.unified.as_ref().map(|u| u.join(&self.rel))
    }

    /// Moves a process into the cgroup in every v1 hierarchy only (for a child that was forked
    /// into the unified one).
    pub fn add_pid_v1(&self, pid: i32) -> Result<()> {
        let unified = self.unified_dir();
        for d in self.h.dirs(&self.rel) {
            if Some(&d) != unified.as_ref() {
                write(&d.join("cgroup.procs"), &pid.to_string())?;
            }
        }
        Ok(())
    }

    /// Host pids of the processes in the cgroup (union over hierarchies).
    pub fn pids(&self) -> Vec<i32> {
        let mut v = Vec::new();
        for d in self.h.dirs(&self.rel) {
            if let Ok(s) = fs::read_to_string(d.join("cgroup.procs")) {
                for p in s.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    if !v.contains(&p) {
                        v.push(p);
                    }
                }
            }
        }
        v
    }

    /// Whether the cgroup exists in any hierarchy.
    pub fn exists(&self) -> bool {
        self.h.dirs(&self.rel).iter().any(|d| d.is_dir())
    }

    /// SIGKILLs every process (cgroup.kill on v2, else a bounded procs loop) until empty.
    pub fn kill_all(&self, sys: &dyn crate::sys::Syscall, timeout: Duration) -> Result<()> {
        if let Some(u) = &self.h.unified {
            let _ = fs::write(u.join(&self.rel).join("cgroup.kill"), "1");
        }
        let deadline = Instant::now() + timeout;
        loop {
            let pids = self.pids();
            if pids.is_empty() {
                return Ok(());
            }
            for p in pids {
                let _ = sys.kill(p, nix::sys::signal::Signal::SIGKILL);
            }
            if Instant::now() > deadline {
                return Err(CgroupError::Busy(self.rel.clone()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// OOM kills recorded for this cgroup.
    pub fn oom_kills(&self) -> u64 {
        match self.ctl("memory") {
            Some((true, d)) => keyed(&d.join("memory.events"), "oom_kill").unwrap_or(0),
            Some((false, d)) => keyed(&d.join("memory.oom_control"), "oom_kill").unwrap_or(0),
            None => 0,
        }
    }

    /// Usage numbers.
    pub fn stats(&self) -> Stats {
        let mut s = Stats {
            oom_kills: self.oom_kills(),
            ..Default::default()
        };
        match self.ctl("cpuacct").or_else(|| self.ctl("cpu")) {
            Some((true, d)) => {
                s.cpu_usage_ns = keyed(&d.join("cpu.stat"), "usage_usec").unwrap_or(0) * 1000
            }
            Some((false, d)) => s.cpu_usage_ns = read_u64(&d.join("cpuacct.usage")).unwrap_or(0),
            None => {}
        }
        if let Some((_, d)) = self.ctl("cpu") {
            s.cpu_throttled_periods = keyed(&d.join("cpu.stat"), "nr_throttled").unwrap_or(0);
        }
        match self.ctl("memory") {
            Some((true, d)) => s.memory_usage = read_u64(&d.join("memory.current")).unwrap_or(0),
            Some((false, d)) => {
                s.memory_usage = read_u64(&d.join("memory.usage_in_bytes")).unwrap_or(0)
            }
            None => {}
        }
        if let Some((_, d)) = self.ctl("pids") {
            s.pids = read_u64(&d.join("pids.current")).unwrap_or(0);
        }
        s
    }

    /// Removes the cgroup (children first) from every hierarchy; retries briefly while busy.
    pub fn remove(&self) -> Result<()> {
        for d in self.h.dirs(&self.rel) {
            remove_tree(&d)?;
        }
        Ok(())
    }
}

fn remove_tree(d: &Path) -> Result<()> {
    if !d.is_dir() {
        return Ok(());
    }
    if let Ok(rd) = fs::read_dir(d) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path())?;
            }
        }
    }
    let mut last = None;
    for _ in 0..100 {
        match fs::remove_dir(d) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                last = Some(e);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    Err(CgroupError::Io {
        path: d.to_path_buf(),
        source: last.unwrap_or_else(|| io::ErrorKind::Other.into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 23 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
31 23 0:27 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
32 23 0:28 / /sys/fs/cgroup/cpu rw,nosuid - cgroup cgroup rw,cpu
33 23 0:29 / /sys/fs/cgroup/cpuacct rw,nosuid - cgroup cgroup rw,cpuacct
34 23 0:30 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
";

    #[test]
    fn detects_hybrid() {
        let h = Hierarchy::from_mountinfo(HYBRID, Path::new("/sys/fs/cgroup")).unwrap();
        assert_eq!(h.mode, "hybrid");
        assert_eq!(
            h.controllers.get("memory"),
            Some(&Driver::V1("/sys/fs/cgroup/memory".into()))
        );
        assert_eq!(h.unified, Some("/sys/fs/cgroup/unified".into()));
        assert_eq!(h.dirs("x").len(), 5);
    }

    #[test]
    fn a_cgroup2_mounted_over_a_hybrid_layout_hides_it() {
        let info = format!("{HYBRID}40 23 0:40 / /sys/fs/cgroup rw - cgroup2 none rw\n");
        let h = Hierarchy::from_mountinfo(&info, Path::new("/sys/fs/cgroup")).unwrap();
        assert_eq!(h.mode, "v2");
        assert_eq!(h.unified, Some("/sys/fs/cgroup".into()));
        assert_eq!(h.dirs("x"), vec![PathBuf::from("/sys/fs/cgroup/x")]);
        // The usual tmpfs under the hybrid layout comes first and hides nothing.
        let info = format!("22 1 0:20 / /sys/fs/cgroup ro - tmpfs tmpfs ro\n{HYBRID}");
        let h = Hierarchy::from_mountinfo(&info, Path::new("/sys/fs/cgroup")).unwrap();
        assert_eq!(h.mode, "hybrid");
    }

    #[test]
    fn weights() {
        assert_eq!(millis_to_shares(1000), 1024);
        assert_eq!(millis_to_shares(1), 2);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
    }

    fn fake(v2: bool) -> (tempfile::TempDir, Hierarchy) {
        let t = tempfile::tempdir().unwrap();
        let base = t.path();
        let info = if v2 {
            fs::create_dir_all(base.join("cg")).unwrap();
            fs::write(base.join("cg/cgroup.controllers"), "cpu memory pids").unwrap();
            format!("1 1 0:1 / {}/cg rw - cgroup2 cgroup2 rw\n", base.display())
        } else {
            let mut s = String::new();
            for c in ["memory", "cpu", "pids"] {
                fs::create_dir_all(base.join(c)).unwrap();
                s += &format!(
                    "1 1 0:1 / {}/{c} rw - cgroup cgroup rw,{c}\n",
                    base.display()
                );
            }
            s
        };
        let h = Hierarchy::from_mountinfo(&info, base).unwrap();
        (t, h)
    }

    #[test]
    fn v1_limits_written() {
        let (t, h) = fake(false);
        let cg = h.cgroup("minicluster/pod/c");
        cg.create().unwrap();
        cg.apply(&Resources {
            memory_limit: Some(1 << 20),
            cpu_limit_millis: Some(200),
            cpu_request_millis: Some(500),
            pids_limit: Some(10),
        })
        .unwrap();
        let d = |c: &str, f: &str| {
            fs::read_to_string(t.path().join(c).join("minicluster/pod/c").join(f)).unwrap()
        };
        assert_eq!(d("memory", "memory.limit_in_bytes"), "1048576");
        assert_eq!(d("cpu", "cpu.cfs_quota_us"), "20000");
        assert_eq!(d("cpu", "cpu.shares"), "512");
        assert_eq!(d("pids", "pids.max"), "10");
        fs::write(
            t.path().join("memory/minicluster/pod/c/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        assert_eq!(cg.oom_kills(), 2);
    }

    #[test]
    fn v2_limits_written() {
        let (t, h) = fake(true);
        assert_eq!(h.mode, "v2");
        let cg = h.cgroup("minicluster/pod/c");
        cg.create().unwrap();
        cg.apply(&Resources {
            memory_limit: Some(4096),
            cpu_limit_millis: Some(200),
            cpu_request_millis: Some(1000),
            pids_limit: Some(5),
        })
        .unwrap();
        let d =
            |f: &str| fs::read_to_string(t.path().join("cg/minicluster/pod/c").join(f)).unwrap();
        assert_eq!(d("memory.max"), "4096");
        assert_eq!(d("cpu.max"), "20000 100000");
        assert_eq!(d("cpu.weight"), "39");
        assert_eq!(d("pids.max"), "5");
        let sc =
            fs::read_to_string(t.path().join("cg/minicluster/cgroup.subtree_control")).unwrap();
        assert_eq!(sc, "+memory +cpu +pids");
    }
}
