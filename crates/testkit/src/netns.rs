//! Network-namespace lab harness for root integration tests. The lab itself (named network
//! namespaces, the 192.168.77.0/24 lab bridge, the relay, the leak check) lives in
//! `network::lab` so the local-cluster launcher can use it too; this module re-exports it for
//! the test suites and holds its root tests.

pub use network::lab::*;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{self, Read, Write};
    use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
    use std::time::{Duration, Instant};

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
        // The listener is closed when drop returns; a child that another test of this
        // process is forking at that moment may hold a copy of it until its exec, so allow
        // a moment.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        let refused = loop {
            let attempt = lab
                .node(0)
                .ns
                .run_in(move || TcpStream::connect(held_listen))
                .unwrap();
            if attempt.is_err() || std::time::Instant::now() > deadline {
                break attempt;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
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

    #[test]
    fn named_lab_persists_after_drop_and_is_destroyed_by_name() {
        if !root_or_skip() {
            return;
        }
        let prefix = format!("tknamed{}", std::process::id());
        {
            let mut lab = Lab::create_named(&prefix, 2).expect("named lab");
            assert_eq!(lab.bridge_ns().name(), format!("{prefix}-br"));
            assert_eq!(lab.node(1).ns.name(), format!("{prefix}-n1"));
            assert!(
                Lab::create_named(&prefix, 1).is_err(),
                "a second lab with the same name was created"
            );
            lab.persist();
        }
        let names = Lab::named_namespaces(&prefix);
        assert_eq!(
            names,
            vec![
                format!("{prefix}-n0"),
                format!("{prefix}-n1"),
                format!("{prefix}-br")
            ]
        );
        let node = NetNs::open(&format!("{prefix}-n0")).expect("open node 0");
        let addrs = node.ip(&["-o", "addr", "show", "eth0"]).expect("ip addr");
        assert!(addrs.contains("192.168.77.10/24"), "eth0: {addrs}");
        drop(node);
        assert!(
            NetNs::exists(&format!("{prefix}-n0")),
            "open() deleted on drop"
        );
        Lab::destroy_named(&prefix).expect("destroy");
        Lab::destroy_named(&prefix).expect("destroy is idempotent");
        assert!(Lab::named_namespaces(&prefix).is_empty());
        assert!(leftovers(&prefix).is_empty(), "{:?}", leftovers(&prefix));
    }
}
