//! Root integration test of pod user namespaces (`hostUsers: false`): the pod's root is an
//! unprivileged host user, its files and volumes are idmapped so root's files are root's
//! inside, and it still owns its network (binds port 80) and hostname. On a kernel that cannot
//! make the idmapped mounts, the sandbox is refused with a clear error instead.

mod common;

use common::{root_or_skip, TestRuntime};
use serde_json::json;

const HOST_ID: u32 = 3_000_000_000;

/// The Uid: line of a host process (real, effective, saved, fs).
fn host_uids(pid: i64) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect()
}

#[test]
fn a_pod_in_a_user_namespace_is_root_inside_and_nobody_outside() {
    if !root_or_skip("a_pod_in_a_user_namespace_is_root_inside_and_nobody_outside") {
        return;
    }
    let rt = TestRuntime::new();
    let cfg = json!({
        "name": "userns-pod", "namespace": "default", "uid": "u1",
        "user_namespace": {"host_id": HOST_ID, "size": 65536},
    });
    let created = rt.run_stdin(&["sandbox", "create", "--config", "-"], &cfg.to_string());
    if !created.status.success() {
        let err = String::from_utf8_lossy(&created.stderr).to_string();
        // Refused only for want of idmapped mounts, and then it says so.
        assert!(err.contains("idmapped mounts"), "{err}");
        eprintln!("SKIPPED the rest: this kernel refuses pod user namespaces: {err}");
        return;
    }
    let sb: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let sid = sb["id"].as_str().unwrap().to_string();
    let vol = rt.root().join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("from-host"), b"host root's file").unwrap();
    let c = rt.start(
        &sid,
        json!({"name": "app", "image": "busybox:latest", "command": ["sleep", "1000"],
               "mounts": [{"host_path": vol, "container_path": "/data"}]}),
    );
    // Inside: root, through the pod's mapping.
    let (code, map) = rt.exec(&c, &["cat", "/proc/self/uid_map"]);
    assert_eq!(code, 0, "{map}");
    let fields: Vec<&str> = map.split_whitespace().collect();
    assert_eq!(fields, vec!["0", &HOST_ID.to_string(), "65536"], "{map}");
    assert_eq!(rt.exec(&c, &["id", "-u"]).1.trim(), "0");
    // Outside: the container's processes are an unprivileged host user.
    let pid = rt.state(&c)["pid"].as_i64().unwrap();
    assert_eq!(host_uids(pid), vec![HOST_ID; 4]);
    let pause_pid = sb["pid"].as_i64().unwrap();
    assert_eq!(host_uids(pause_pid), vec![HOST_ID; 4]);
    // The image's root-owned files are root's inside, and the root can write (copy-up).
    let (code, out) = rt.exec(
        &c,
        &[
            "sh",
            "-c",
            "stat -c %u /bin/busybox && touch /etc/new && echo ok",
        ],
    );
    assert_eq!((code, out.as_str()), (0, "0\nok\n"), "{out}");
    // A volume too: the host's root-owned file reads as root's, a new file is root's on disk.
    let (code, out) = rt.exec(
        &c,
        &[
            "sh",
            "-c",
            "stat -c %u /data/from-host && echo made > /data/new",
        ],
    );
    assert_eq!((code, out.as_str()), (0, "0\n"), "{out}");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(vol.join("new")).unwrap().uid(), 0);
    // The pod owns its network and hostname namespaces: port 80 binds, the hostname is set.
    let (code, out) = rt.exec(&c, &["sh", "-c", "httpd -p 80 -h /tmp && echo bound"]);
    assert_eq!((code, out.as_str()), (0, "bound\n"), "{out}");
    assert_eq!(rt.exec(&c, &["hostname"]).1.trim(), "userns-pod");
    // Root inside is not root outside: the host's files stay out of reach.
    let (code, _) = rt.exec(&c, &["sh", "-c", "cat /proc/1/root/etc/shadow"]);
    assert_ne!(code, 0);
    let left = rt.cleanup();
    assert!(left.is_empty(), "left behind: {left:?}");
}
