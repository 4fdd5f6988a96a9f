//! Network-namespace lab harness for root integration tests: named network namespaces that
//! clean up after themselves, a lab of cluster "nodes" on a private bridge (192.168.77.0/24,
//! no route out), a userspace TCP relay that lets lab processes reach a server in the test's own
//! namespace, and a leak check. Nothing here touches the root namespace's network configuration.

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
}

impl NetNs {
    /// Creates `<prefix>-<pid>-<n>`, unique within this machine while this process lives.
    pub fn new(prefix: &str) -> io::Result<NetNs> {
        let n = NETNS_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        ip(&["netns", "add", &name])?;
        let ns = NetNs { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
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
}

impl Lab {
    /// Builds a lab with `nodes` nodes. Namespace names start with `prefix`.
    pub fn new(prefix: &str, nodes: usize) -> io::Result<Lab> {
        if nodes > 80 {
            return Err(io::Error::other(format!(
                "lab {prefix}: too many nodes ({nodes})"
            )));
        }
        let bridge = NetNs::new(&format!("{prefix}-br"))?;
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
        };
        for i in 0..nodes {
            let ip = Ipv4Addr::new(192, 168, 77, 10 + i as u8);
            let node = lab.plug(&format!("{prefix}-n{i}"), &format!("n{i}"), ip)?;
            lab.nodes.push(node);
        }
        Ok(lab)
    }

    fn plug(&self, ns_prefix: &str, bridge_port: &str, ip: Ipv4Addr) -> io::Result<LabNode> {
        let ns = NetNs::new(ns_prefix)?;
        self.bridge.ip(&[
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
        self.bridge
            .ip(&["link", "set", bridge_port, "master", LAB_BRIDGE])?;
        self.bridge.ip(&["link", "set", bridge_port, "up"])?;
        ns.ip(&[
            "addr",
            "add",
            &format!("{ip}/{LAB_PREFIX_LEN}"),
            "dev",
            "eth0",
        ])?;
        ns.ip(&["link", "set", "eth0", "up"])?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn root_or_skip() -> bool {
        if !crate::is_root() {
            crate::missing("root", "run the netns tests as root");
            return false;
        }
        true
    }

    #[test]
    fn netns_is_created_and_removed_with_its_processes() {
        if !root_or_skip() {
            return;
        }
        let prefix = "tkns";
        let name;
        {
            let ns = NetNs::new(prefix).expect("create netns");
            name = ns.name().to_string();
            assert!(ns.path().exists());
            let links = ns.ip(&["-o", "link", "show", "lo"]).expect("ip link");
            assert!(links.contains("UP"), "lo is not up: {links}");
            let mut child = ns.command("sleep").arg("60").spawn().expect("spawn sleep");
            let deadline = Instant::now() + Duration::from_secs(5);
            while ns.pids().is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(!ns.pids().is_empty(), "sleep is not in the namespace");
            drop(ns);
            let status = child.wait().expect("wait sleep");
            assert!(!status.success(), "sleep should have been killed");
        }
        let left: Vec<_> = leftovers(prefix)
            .into_iter()
            .filter(|l| l.contains(&name))
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    #[test]
    fn lab_nodes_reach_each_other_and_the_relay_reaches_the_root_namespace() {
        if !root_or_skip() {
            return;
        }
        let prefix = "tklab";
        let mut lab = Lab::new(prefix, 2).expect("lab");
        assert_eq!(lab.node(0).ip, Ipv4Addr::new(192, 168, 77, 10));
        assert_eq!(lab.node(1).ip, Ipv4Addr::new(192, 168, 77, 11));
        let routes = lab.node(0).ns.ip(&["route", "show"]).expect("routes");
        assert!(
            !routes.contains("default"),
            "lab node has a default route: {routes}"
        );

        // node 1 listens, node 0 connects across the lab bridge.
        let server = lab
            .node(1)
            .ns
            .run_in(|| TcpListener::bind("192.168.77.11:0"))
            .expect("thread")
            .expect("bind in node 1");
        let port = server.local_addr().unwrap().port();
        let accepted = std::thread::spawn(move || server.accept().map(|(s, _)| s.peer_addr()));
        lab.node(0)
            .ns
            .run_in(move || TcpStream::connect(("192.168.77.11", port)))
            .expect("thread")
            .expect("node 0 connects to node 1");
        let peer = accepted.join().unwrap().expect("accept").expect("peer");
        assert_eq!(peer.ip(), IpAddr::V4(Ipv4Addr::new(192, 168, 77, 10)));

        let outsider_ip = lab.add_outsider().expect("outsider").ip;
        assert_eq!(outsider_ip, Ipv4Addr::new(192, 168, 77, 200));

        // An echo-ish server in the root namespace on loopback, reached through the relay.
        let root_server = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = root_server.local_addr().unwrap();
        let served = std::thread::spawn(move || {
            let (mut s, _) = root_server.accept().unwrap();
            let mut line = [0u8; 5];
            s.read_exact(&mut line).unwrap();
            s.write_all(b"pong:").unwrap();
            s.write_all(&line).unwrap();
        });
        let relay = lab.relay_apiserver(target).expect("relay");
        assert_eq!(
            relay.listen_addr(),
            SocketAddr::new(IpAddr::V4(LAB_BRIDGE_IP), target.port())
        );
        let listen = relay.listen_addr();
        let reply = lab
            .node(1)
            .ns
            .run_in(move || -> io::Result<String> {
                let mut s = TcpStream::connect(listen)?;
                s.write_all(b"ping!")?;
                let mut reply = String::new();
                s.read_to_string(&mut reply)?;
                Ok(reply)
            })
            .expect("thread")
            .expect("talk through the relay");
        assert_eq!(reply, "pong:ping!");
        served.join().unwrap();

        // A connection still open when the relay is dropped is closed, and the port is gone.
        let holder = TcpListener::bind("127.0.0.1:0").unwrap();
        let held_relay = Relay::start(
            &lab.bridge_ns().path(),
            SocketAddr::new(IpAddr::V4(LAB_BRIDGE_IP), 0),
            holder.local_addr().unwrap(),
        )
        .expect("second relay");
        let held_listen = held_relay.listen_addr();
        let open = lab
            .node(0)
            .ns
            .run_in(move || TcpStream::connect(held_listen))
            .unwrap()
            .expect("connect through the second relay");
        let (_upstream, _) = holder.accept().expect("relayed connection");
        drop(held_relay);
        open.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut byte = [0u8; 1];
        let read = (&open).read(&mut byte);
        assert!(
            matches!(read, Ok(0))
                || matches!(&read, Err(e) if e.kind() != io::ErrorKind::WouldBlock && e.kind() != io::ErrorKind::TimedOut),
            "connection still open after drop: {read:?}"
        );
        let refused = lab
            .node(0)
            .ns
            .run_in(move || TcpStream::connect(held_listen))
            .unwrap();
        assert!(refused.is_err(), "the relay still listens after drop");

        drop(relay);
        drop(lab);
        assert_eq!(
            leftovers(&format!("{prefix}-"))
                .iter()
                .filter(|l| l.contains(&format!("-{}-", std::process::id())))
                .count(),
            0
        );
    }
}
