//! Applies an image config to a container the way Kubernetes does: `command` replaces the
//! Entrypoint, `args` replace Cmd, env is merged (container wins), WorkingDir and User default
//! from the image.

use std::path::Path;

use super::store::ImageConfig;

/// The resolved process of a container.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResolvedProcess {
    /// argv.
    pub args: Vec<String>,
    /// `K=V` pairs, image first, overridden by the container's.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// The image's User string, if any (resolved against the rootfs later).
    pub user: Option<String>,
}

/// Kubernetes' rules for command/args against Entrypoint/Cmd.
pub fn resolve(
    img: &ImageConfig,
    command: &[String],
    args: &[String],
    env: &[(String, String)],
    working_dir: Option<&str>,
) -> ResolvedProcess {
    let argv = if !command.is_empty() {
        command.iter().chain(args).cloned().collect()
    } else if !args.is_empty() {
        img.entrypoint
            .iter()
            .flatten()
            .chain(args)
            .cloned()
            .collect()
    } else {
        img.entrypoint
            .iter()
            .flatten()
            .chain(img.cmd.iter().flatten())
            .cloned()
            .collect()
    };
    let mut merged: Vec<(String, String)> = Vec::new();
    for kv in img.env.iter().flatten() {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        merged.push((k.to_string(), v.to_string()));
    }
    for (k, v) in env {
        if let Some(e) = merged.iter_mut().find(|(ek, _)| ek == k) {
            e.1 = v.clone();
        } else {
            merged.push((k.clone(), v.clone()));
        }
    }
    if !merged.iter().any(|(k, _)| k == "PATH") {
        merged.insert(
            0,
            (
                "PATH".into(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ),
        );
    }
    let cwd = working_dir
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .or_else(|| img.working_dir.clone().filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".to_string());
    ResolvedProcess {
        args: argv,
        env: merged
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        cwd,
        user: img.user.clone().filter(|u| !u.is_empty()),
    }
}

/// Resolves `user[:group]` (numbers or names) against the image's /etc/passwd and /etc/group,
/// looked up in the layer dirs top-down. Returns (uid, gid).
pub fn resolve_user(spec: &str, layers_top_first: &[&Path]) -> Option<(u32, u32)> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let read = |file: &str| -> String {
        layers_top_first
            .iter()
            .find_map(|l| std::fs::read_to_string(l.join(file)).ok())
            .unwrap_or_default()
    };
    let passwd = read("etc/passwd");
    let (uid, primary_gid) = match u.parse::<u32>() {
        Ok(n) => (
            n,
            passwd
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() > 3 && f[2] == u)
                .and_then(|f| f[3].parse().ok())
                .unwrap_or(0),
        ),
        Err(_) => {
            let f: Vec<String> = passwd
                .lines()
                .map(|l| l.split(':').map(str::to_string).collect::<Vec<_>>())
                .find(|f| f.len() > 3 && f[0] == u)?;
            (f[2].parse().ok()?, f[3].parse().ok()?)
        }
    };
    let gid = match g {
        None => primary_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => read("etc/group")
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() > 2 && f[0] == g)
                .and_then(|f| f[2].parse().ok())?,
        },
    };
    Some((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img() -> ImageConfig {
        ImageConfig {
            entrypoint: Some(vec!["/ep".into()]),
            cmd: Some(vec!["c1".into(), "c2".into()]),
            env: Some(vec!["PATH=/bin".into(), "A=img".into()]),
            working_dir: Some("/w".into()),
            user: Some("1000".into()),
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn kubernetes_command_rules() {
        let i = img();
        assert_eq!(
            resolve(&i, &[], &[], &[], None).args,
            s(&["/ep", "c1", "c2"])
        );
        assert_eq!(
            resolve(&i, &[], &s(&["a"]), &[], None).args,
            s(&["/ep", "a"])
        );
        assert_eq!(resolve(&i, &s(&["/x"]), &[], &[], None).args, s(&["/x"]));
        assert_eq!(
            resolve(&i, &s(&["/x"]), &s(&["y"]), &[], None).args,
            s(&["/x", "y"])
        );
    }

    #[test]
    fn env_merge_and_cwd() {
        let r = resolve(
            &img(),
            &[],
            &[],
            &[("A".into(), "c".into()), ("B".into(), "b".into())],
            None,
        );
        assert_eq!(r.env, s(&["PATH=/bin", "A=c", "B=b"]));
        assert_eq!(r.cwd, "/w");
        assert_eq!(resolve(&img(), &[], &[], &[], Some("/o")).cwd, "/o");
        assert_eq!(r.user.as_deref(), Some("1000"));
    }

    #[test]
    fn user_lookup() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0::/:/bin/sh\nweb:x:33:44::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(d.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let l = [d.path()];
        assert_eq!(resolve_user("web", &l), Some((33, 44)));
        assert_eq!(resolve_user("33", &l), Some((33, 44)));
        assert_eq!(resolve_user("web:staff", &l), Some((33, 50)));
        assert_eq!(resolve_user("7:8", &l), Some((7, 8)));
        assert_eq!(resolve_user("nobody", &l), None);
    }
}
