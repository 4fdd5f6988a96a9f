//! Cross-check against upstream's serialized fixtures
//! (`staging/src/k8s.io/pod-security-admission/test/testdata/{baseline,restricted}/v1.N/{pass,fail}/*.yaml`),
//! which are not part of this repository. Point `PODSECURITY_UPSTREAM_TESTDATA` at a copy of
//! that tree converted to JSON (same layout, `.json` files) to run it; without the variable
//! the test does nothing.
//!
//! Every pass pod must be allowed at its level and version, and every fail pod denied with its
//! check's expected substring (upstream's `expectErrorSubstring`) in the message.

mod common;

use std::fs;
use std::path::Path;

use podsecurity::{enforce_message, evaluate_pod, Level, LevelVersion, Version};
use serde_json::Value;

/// Fixture file prefix (lowercased check ID) to the substring its failures must contain.
const EXPECT: &[(&str, &str)] = &[
    ("allowprivilegeescalation", "allowPrivilegeEscalation"),
    ("apparmorprofile", "forbidden AppArmor profile"),
    ("capabilities_baseline", "capabilities"),
    ("capabilities_restricted", "unrestricted capabilities"),
    ("hostnamespaces", "host namespaces"),
    ("hostpathvolumes", "hostPath"),
    ("hostports", "hostPort"),
    ("privileged", "privileged"),
    ("procmount", "procMount"),
    ("restrictedvolumes", "restricted volume types"),
    ("runasnonroot", "runAsNonRoot"),
    ("runasuser", "runAsUser"),
    ("selinuxoptions", "seLinuxOptions"),
    ("seccompprofile_baseline", "seccompProfile"),
    ("seccompprofile_restricted", "seccompProfile"),
    ("sysctls", "forbidden sysctl"),
    ("windowshostprocess", "hostProcess"),
];

fn json_files(dir: &Path) -> Vec<(String, Value)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Value)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e
                .file_name()
                .to_string_lossy()
                .strip_suffix(".json")?
                .to_string();
            let text = fs::read_to_string(e.path()).ok()?;
            Some((name, serde_json::from_str(&text).ok()?))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn upstream_serialized_fixtures() {
    let Ok(root) = std::env::var("PODSECURITY_UPSTREAM_TESTDATA") else {
        eprintln!("PODSECURITY_UPSTREAM_TESTDATA not set; skipping");
        return;
    };
    let root = Path::new(&root);
    let (mut passed, mut failed) = (0, 0);
    for level in [Level::Baseline, Level::Restricted] {
        for minor in 0..=64 {
            let dir = root.join(level.as_str()).join(format!("v1.{minor}"));
            if !dir.is_dir() {
                continue;
            }
            let lv = LevelVersion::new(level, Version::V1(minor));
            for (name, mut pod) in json_files(&dir.join("pass")) {
                common::apply_defaults(&mut pod);
                let r = evaluate_pod(&lv, &pod);
                assert!(
                    r.is_empty(),
                    "{lv} pass/{name}: {}",
                    enforce_message(&lv, &r)
                );
                passed += 1;
            }
            for (name, mut pod) in json_files(&dir.join("fail")) {
                common::apply_defaults(&mut pod);
                let r = evaluate_pod(&lv, &pod);
                let msg = enforce_message(&lv, &r);
                assert!(!r.is_empty(), "{lv} fail/{name}: allowed");
                let prefix = name.trim_end_matches(|c: char| c.is_ascii_digit());
                let expect = EXPECT
                    .iter()
                    .find(|(p, _)| *p == prefix)
                    .map(|(_, e)| *e)
                    .unwrap_or_else(|| panic!("unknown fixture {name}"));
                assert!(msg.contains(expect), "{lv} fail/{name}: {msg}");
                failed += 1;
            }
        }
    }
    println!("upstream testdata: {passed} pass, {failed} fail files checked");
    assert!(passed + failed > 0, "no fixtures under {}", root.display());
}
