//! Network-namespace labs: named network namespaces, a lab of cluster "nodes" on a private
//! bridge (192.168.77.0/24, no route out), a userspace TCP relay that lets lab processes reach a
//! server in the caller's own namespace, and a leak check. Test labs clean up on drop; a lab
//! built with [`Lab::create_named`] and [`Lab::persist`]ed outlives its creator (the local
//! cluster launcher) and is removed later by name with [`Lab::destroy_named`]. Nothing here
//! touches the root namespace's network configuration.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Name of the bridge inside a lab's bridge namespace.
pub const LAB_BRIDGE: &str = "lab0";
/// Address of the lab bridge (the "gateway" every node can reach).
pub const LAB_BRIDGE_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 1);
/// Prefix length of the lab network.
pub const LAB_PREFIX_LEN: u8 = 24;

static NETNS_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Runs `ip ARGS`, turning a non-zero exit into an error that carries the command and stderr.
pub fn ip(args: &[&str]) -> io::Result<String> {
    run("ip", args)
}

fn run(program: &str, args: &[&str]) -> io::Result<String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A named network namespace (`ip netns add`), with `lo` up. Dropping it kills every process
/// still inside and deletes it.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    /// When set, Drop leaves the namespace (and its processes) alone.
    keep: bool,
}

impl NetNs {
    /// Creates `<prefix>-<pid>-<n>`, unique within this machine while this process lives.
    pub fn new(prefix: &str) -> io::Result<NetNs> {
        let n = NETNS_COUNTER.fetch_add(1, Ordering::Relaxed);
        NetNs::create_named(&format!("{prefix}-{}-{n}", std::process::id()))
    }

    /// Creates the namespace `name` exactly (an error when it exists). Dropped like [`NetNs::new`]
    /// unless [`NetNs::persist`] is called.
    pub fn create_named(name: &str) -> io::Result<NetNs> {
        ip(&["netns", "add", name])?;
        let ns = NetNs {
            name: name.to_string(),
            keep: false,
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// A handle on the existing namespace `name`; dropping it leaves the namespace in place.
    pub fn open(name: &str) -> io::Result<NetNs> {
        let path = PathBuf::from("/run/netns").join(name);
        if !path.exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("network namespace {name} does not exist"),
            ));
        }
        Ok(NetNs {
            name: name.to_string(),
            keep: true,
        })
    }

    /// Whether the namespace `name` exists.
    pub fn exists(name: &str) -> bool {
        PathBuf::from("/run/netns").join(name).exists()
    }

    /// Keeps the namespace when this handle is dropped.
    pub fn persist(&mut self) {
        self.keep = true;
    }

    /// Kills every process inside the namespace `name` and deletes it. Succeeds when it does not
    /// exist (idempotent).
    pub fn destroy(name: &str) -> io::Result<()> {
        if !NetNs::exists(name) {
            return Ok(());
        }
        let ns = NetNs {
            name: name.to_string(),
            keep: true,
        };
        ns.kill_all();
        ip(&["netns", "delete", name]).map(|_| ())
    }

    /// The namespace's name as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bind-mounted namespace file, usable with setns(2) or as a CNI netns path.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// A command that runs `program` inside this namespace (`ip netns exec`).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Runs `ip -n NAME ARGS` and returns its stdout.
    pub fn ip(&self, args: &[&str]) -> io::Result<String> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        ip(&full)
    }

    /// Runs `program ARGS` inside the namespace and returns its stdout (error on non-zero exit).
    pub fn exec(&self, program: &str, args: &[&str]) -> io::Result<String> {
        let mut full = vec!["netns", "exec", self.name.as_str(), program];
        full.extend_from_slice(args);
        ip(&full)
    }

    /// Runs `f` on a fresh thread whose network namespace is this one and returns its result.
    /// Sockets created there stay in this namespace.
    pub fn run_in<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> io::Result<T> {
        let path = self.path();
        std::thread::spawn(move || -> io::Result<T> {
            enter_netns(&path)?;
            Ok(f())
        })
        .join()
        .map_err(|_| io::Error::other("thread inside the network namespace panicked"))?
    }

    /// Pids of the processes whose network namespace is this one.
    pub fn pids(&self) -> Vec<i32> {
        ip(&["netns", "pids", &self.name])
            .map(|out| {
                out.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn kill_all(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let pids = self.pids();
            if pids.is_empty() || Instant::now() > deadline {
                return;
            }
            for pid in pids {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        self.kill_all();
        if let Err(err) = ip(&["netns", "delete", &self.name]) {
            eprintln!("netns: cannot delete {}: {err}", self.name);
        }
    }
}

/// Moves the calling thread into the network namespace at `path` (for a dedicated thread).
pub fn enter_netns(path: &Path) -> io::Result<()> {
    let file = File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", path.display())))?;
    setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
        .map_err(|e| io::Error::other(format!("setns {}: {e}", path.display())))
}

/// One cluster node of a lab: its namespace and its address on the lab bridge (on `eth0`).
#[derive(Debug)]
pub struct LabNode {
    pub ns: NetNs,
    pub ip: Ipv4Addr,
}

/// A private lab network: a namespace holding the bridge `lab0` (192.168.77.1/24) and one
/// namespace per node whose `eth0` is a veth into that bridge with 192.168.77.(10+i)/24 and no
/// default route. Each lab has its own bridge namespace, so several labs can coexist.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    // Field order matters for Drop: nodes and outsiders first, then the bridge namespace.
    nodes: Vec<LabNode>,
    outsiders: Vec<LabNode>,
    bridge: NetNs,
    /// How namespaces are made: unique per process ([`NetNs::new`]) or exactly named.
    make_ns: fn(&str) -> io::Result<NetNs>,
}

impl Lab {
    /// Builds a lab with `nodes` nodes. Namespace names start with `prefix` and carry this
    /// process's id (unique names); everything is removed on drop.
    pub fn new(prefix: &str, nodes: usize) -> io::Result<Lab> {
        Lab::build(prefix, nodes, NetNs::new)
    }

    /// Builds a lab whose namespaces are named exactly `<prefix>-br` (the bridge) and
    /// `<prefix>-n<i>` (node i). Fails when the bridge namespace exists already. Removed on drop
    /// (also when building fails half-way) unless [`Lab::persist`] is called.
    pub fn create_named(prefix: &str, nodes: usize) -> io::Result<Lab> {
        if NetNs::exists(&format!("{prefix}-br")) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("lab {prefix}: network namespace {prefix}-br exists"),
            ));
        }
        Lab::build(prefix, nodes, NetNs::create_named)
    }

    /// Keeps every namespace of the lab when it is dropped (remove it with
    /// [`Lab::destroy_named`]).
    pub fn persist(&mut self) {
        self.bridge.persist();
        for node in self.nodes.iter_mut().chain(self.outsiders.iter_mut()) {
            node.ns.persist();
        }
    }

    /// The names of the namespaces of the named lab `prefix` that exist: nodes and outsiders
    /// first, the bridge namespace last.
    pub fn named_namespaces(prefix: &str) -> Vec<String> {
        let mut names: Vec<String> = ip(&["netns", "list"])
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .filter(|name| {
                name.strip_prefix(prefix)
                    .and_then(|rest| rest.strip_prefix("-n").or_else(|| rest.strip_prefix("-o")))
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
            .map(str::to_string)
            .collect();
        names.sort();
        let bridge = format!("{prefix}-br");
        if NetNs::exists(&bridge) {
            names.push(bridge);
        }
        names
    }

    /// Removes the named lab `prefix`: kills the processes in its namespaces and deletes them
    /// (their veths, bridge, routes and iptables rules go with them). Idempotent.
    pub fn destroy_named(prefix: &str) -> io::Result<()> {
        let mut first_error = None;
        for name in Lab::named_namespaces(prefix) {
            if let Err(err) = NetNs::destroy(&name) {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn build(
        prefix: &str,
        nodes: usize,
        make_ns: fn(&str) -> io::Result<NetNs>,
    ) -> io::Result<Lab> {
        if nodes > 80 {
            return Err(io::Error::other(format!(
                "lab {prefix}: too many nodes ({nodes})"
            )));
        }
        let bridge = make_ns(&format!("{prefix}-br"))?;
        bridge.ip(&["link", "add", LAB_BRIDGE, "type", "bridge"])?;
        bridge.ip(&[
            "addr",
            "add",
            &format!("{LAB_BRIDGE_IP}/{LAB_PREFIX_LEN}"),
            "dev",
            LAB_BRIDGE,
        ])?;
        bridge.ip(&["link", "set", LAB_BRIDGE, "up"])?;
        let mut lab = Lab {
            prefix: prefix.to_string(),
            nodes: Vec::new(),
            outsiders: Vec::new(),
            bridge,
            make_ns,
        };
        for i in 0..nodes {
            let ip = Ipv4Addr::new(192, 168, 77, 10 + i as u8);
            let node = lab.plug(&format!("{prefix}-n{i}"), &format!("n{i}"), ip)?;
            lab.nodes.push(node);
        }
        Ok(lab)
    }

    fn plug(&self, ns_prefix: &str, bridge_port: &str, ip: Ipv4Addr) -> io::Result<LabNode> {
        let ns = (self.make_ns)(ns_prefix)?;
        plug_into_bridge(&self.bridge, bridge_port, &ns, ip)?;
        Ok(LabNode { ns, ip })
    }

    /// Node `i` (0-based).
    pub fn node(&self, i: usize) -> &LabNode {
        &self.nodes[i]
    }

    /// All nodes.
    pub fn nodes(&self) -> &[LabNode] {
        &self.nodes
    }

    /// Adds a namespace on the bridge that is not a cluster node (192.168.77.(200+j)), e.g. a
    /// client for NodePort tests.
    pub fn add_outsider(&mut self) -> io::Result<&LabNode> {
        let j = self.outsiders.len();
        if j >= 50 {
            return Err(io::Error::other(format!(
                "lab {}: too many outsiders",
                self.prefix
            )));
        }
        let ip = Ipv4Addr::new(192, 168, 77, 200 + j as u8);
        let outsider = self.plug(&format!("{}-o{j}", self.prefix), &format!("o{j}"), ip)?;
        self.outsiders.push(outsider);
        Ok(&self.outsiders[j])
    }

    /// The namespace that holds the bridge (address 192.168.77.1).
    pub fn bridge_ns(&self) -> &NetNs {
        &self.bridge
    }

    /// A relay listening on 192.168.77.1:<target port> in the bridge namespace (reachable from
    /// every node) that forwards to `target` in the test's own namespace, e.g. an apiserver on
    /// 127.0.0.1. Returns the relay; its `listen_addr()` is what nodes should use.
    pub fn relay_apiserver(&self, target: SocketAddr) -> io::Result<Relay> {
        Relay::start(
            &self.bridge.path(),
            SocketAddr::new(IpAddr::V4(LAB_BRIDGE_IP), target.port()),
            target,
        )
    }
}

/// The relayed connections still open, by id: (client side, target side).
type OpenConnections = HashMap<u64, (TcpStream, TcpStream)>;

/// A userspace TCP relay: listens inside a network namespace and forwards each connection to a
/// target connected from the namespace the relay was started in. Stops on Drop (the listener
/// closes and open connections are shut down).
#[derive(Debug)]
pub struct Relay {
    listen: SocketAddr,
    stop: Arc<AtomicBool>,
    wake: UnixStream,
    connections: Arc<Mutex<OpenConnections>>,
    acceptor: Option<JoinHandle<()>>,
}

impl Relay {
    /// Binds `listen` inside the namespace at `netns_path` and forwards to `target`.
    pub fn start(netns_path: &Path, listen: SocketAddr, target: SocketAddr) -> io::Result<Relay> {
        let path = netns_path.to_path_buf();
        let listener = std::thread::spawn(move || -> io::Result<TcpListener> {
            enter_netns(&path)?;
            TcpListener::bind(listen)
                .map_err(|e| io::Error::new(e.kind(), format!("relay bind {listen}: {e}")))
        })
        .join()
        .map_err(|_| io::Error::other("relay bind thread panicked"))??;
        let listen = listener.local_addr()?;
        let (wake, wake_rx) = UnixStream::pair()?;
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(OpenConnections::new()));
        let acceptor = {
            let stop = stop.clone();
            let connections = connections.clone();
            std::thread::spawn(move || accept_loop(listener, wake_rx, stop, connections, target))
        };
        Ok(Relay {
            listen,
            stop,
            wake,
            connections,
            acceptor: Some(acceptor),
        })
    }

    /// The address the relay listens on (inside its namespace).
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }
}

fn accept_loop(
    listener: TcpListener,
    wake_rx: UnixStream,
    stop: Arc<AtomicBool>,
    connections: Arc<Mutex<OpenConnections>>,
    target: SocketAddr,
) {
    let mut next_id: u64 = 0;
    loop {
        let mut fds = [
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
            PollFd::new(wake_rx.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok((client, _)) = listener.accept() else {
            continue;
        };
        let Ok(upstream) = TcpStream::connect_timeout(&target, Duration::from_secs(5)) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        let id = next_id;
        next_id += 1;
        let (Ok(client_copy), Ok(upstream_copy), Ok(client_kept), Ok(upstream_kept)) = (
            client.try_clone(),
            upstream.try_clone(),
            client.try_clone(),
            upstream.try_clone(),
        ) else {
            continue;
        };
        connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, (client_kept, upstream_kept));
        let connections = connections.clone();
        std::thread::spawn(move || {
            let upward = std::thread::spawn(move || pump(client, upstream_copy));
            pump(upstream, client_copy);
            let _ = upward.join();
            connections
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        });
    }
}

/// Copies `from` into `to` until EOF, then half-closes `to`; on an error both are shut down
/// so the opposite direction ends too.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.wake.write_all(&[1]);
        if let Some(handle) = self.acceptor.take() {
            let _ = handle.join();
        }
        let open = std::mem::take(&mut *self.connections.lock().unwrap_or_else(|e| e.into_inner()));
        for (client, upstream) in open.into_values() {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        }
    }
}

/// What a suite left behind that starts with `prefix`: network namespaces (`netns NAME`),
/// interfaces in the calling process's namespace (`link NAME`), and mounts under /run/netns
/// (`mount PATH`). Empty when everything was cleaned up.
pub fn leftovers(prefix: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(out) = ip(&["netns", "list"]) {
        for line in out.lines() {
            if let Some(name) = line.split_whitespace().next() {
                if name.starts_with(prefix) {
                    found.push(format!("netns {name}"));
                }
            }
        }
    }
    if let Ok(out) = ip(&["-o", "link", "show"]) {
        for line in out.lines() {
            // "3: name@peer: <FLAGS> ..."
            if let Some(name) = line.split(": ").nth(1) {
                let name = name.split('@').next().unwrap_or(name);
                if name.starts_with(prefix) {
                    found.push(format!("link {name}"));
                }
            }
        }
    }
    let mount_prefix = format!("/run/netns/{prefix}");
    let mut seen = HashSet::new();
    if let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") {
        for line in mountinfo.lines() {
            if let Some(mount_point) = line.split_whitespace().nth(4) {
                if mount_point.starts_with(&mount_prefix) && seen.insert(mount_point.to_string()) {
                    found.push(format!("mount {mount_point}"));
                }
            }
        }
    }
    found
}

/// Plugs `ns` into the lab bridge living in `bridge`: a veth whose end `bridge_port` is a port of
/// the bridge and whose other end is `eth0` in `ns`, up, with `ip`/24.
pub fn plug_into_bridge(
    bridge: &NetNs,
    bridge_port: &str,
    ns: &NetNs,
    ip: Ipv4Addr,
) -> io::Result<()> {
    bridge.ip(&[
        "link",
        "add",
        bridge_port,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        ns.name(),
    ])?;
    bridge.ip(&["link", "set", bridge_port, "master", LAB_BRIDGE])?;
    bridge.ip(&["link", "set", bridge_port, "up"])?;
    ns.ip(&[
        "addr",
        "add",
        &format!("{ip}/{LAB_PREFIX_LEN}"),
        "dev",
        "eth0",
    ])?;
    ns.ip(&["link", "set", "eth0", "up"])?;
    Ok(())
}
