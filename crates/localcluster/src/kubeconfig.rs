//! Kubeconfig entries for a cluster, the way kind writes them: the admin kubeconfig's cluster
//! and user become cluster, user and context `minicluster-<name>` merged into a kubeconfig file
//! (--kubeconfig PATH, else $KUBECONFIG's first file, else ~/.kube/config), which also becomes
//! the current context; `down` removes exactly those entries again.

use std::io;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

/// Errors reading, merging or writing a kubeconfig.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    #[error("read kubeconfig {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("parse kubeconfig {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("kubeconfig {path} has no cluster")]
    NoCluster { path: PathBuf },
    #[error("write kubeconfig {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("no kubeconfig path: neither KUBECONFIG nor HOME is set")]
    NoDefaultPath,
}

/// The file `cluster up` merges into when no --kubeconfig is given: $KUBECONFIG's first entry,
/// else ~/.kube/config (like kind and kubectl).
pub fn default_path() -> Result<PathBuf, KubeconfigError> {
    if let Some(first) = std::env::var("KUBECONFIG")
        .ok()
        .and_then(|v| v.split(':').find(|p| !p.is_empty()).map(PathBuf::from))
    {
        return Ok(first);
    }
    std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".kube/config"))
        .ok_or(KubeconfigError::NoDefaultPath)
}

fn read(path: &Path) -> Result<Option<Value>, KubeconfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(KubeconfigError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_saphyr::from_str::<Value>(&text)
        .map(Some)
        .map_err(|err| KubeconfigError::Parse {
            path: path.to_path_buf(),
            message: err.to_string(),
        })
}

fn write(path: &Path, config: &Value) -> Result<(), KubeconfigError> {
    let text = serde_saphyr::to_string(config).map_err(|err| KubeconfigError::Write {
        path: path.to_path_buf(),
        source: io::Error::other(err.to_string()),
    })?;
    let result = (|| {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("minicluster.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|source| KubeconfigError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn empty_config() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [],
        "users": [],
        "contexts": [],
        "current-context": "",
    })
}

/// Removes the entry named `name` from the list `key` (creating the list when missing).
fn without_entry<'a>(
    config: &'a mut Map<String, Value>,
    key: &str,
    name: &str,
) -> &'a mut Vec<Value> {
    let list = config
        .entry(key.to_string())
        .or_insert_with(|| Value::Array(Vec::new()));
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    let list = list.as_array_mut().expect("an array was just put there");
    list.retain(|entry| entry.get("name").and_then(Value::as_str) != Some(name));
    list
}

/// Merges the first cluster and user of the admin kubeconfig at `admin` into `target` as
/// cluster, user and context `context`, made the current context. Entries of other names stay.
pub fn merge(admin: &Path, target: &Path, context: &str) -> Result<(), KubeconfigError> {
    let source = read(admin)?.ok_or_else(|| KubeconfigError::NoCluster {
        path: admin.to_path_buf(),
    })?;
    let cluster = source
        .pointer("/clusters/0/cluster")
        .cloned()
        .ok_or_else(|| KubeconfigError::NoCluster {
            path: admin.to_path_buf(),
        })?;
    let user = source
        .pointer("/users/0/user")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut config = read(target)?.unwrap_or_else(empty_config);
    let Some(map) = config.as_object_mut() else {
        return Err(KubeconfigError::Parse {
            path: target.to_path_buf(),
            message: "not a mapping".into(),
        });
    };
    without_entry(map, "clusters", context).push(json!({"name": context, "cluster": cluster}));
    without_entry(map, "users", context).push(json!({"name": context, "user": user}));
    without_entry(map, "contexts", context).push(json!({
        "name": context,
        "context": {"cluster": context, "user": context},
    }));
    map.insert("current-context".into(), Value::String(context.to_string()));
    write(target, &config)
}

/// Removes cluster, user and context `context` from `target` (and clears the current context
/// when it was this one). A missing file is fine.
pub fn remove(target: &Path, context: &str) -> Result<(), KubeconfigError> {
    let Some(mut config) = read(target)? else {
        return Ok(());
    };
    let Some(map) = config.as_object_mut() else {
        return Ok(());
    };
    for key in ["clusters", "users", "contexts"] {
        without_entry(map, key, context);
    }
    if map.get("current-context").and_then(Value::as_str) == Some(context) {
        map.insert("current-context".into(), Value::String(String::new()));
    }
    write(target, &config)
}

/// Whether `target` has a context named `context`.
pub fn has_context(target: &Path, context: &str) -> Result<bool, KubeconfigError> {
    Ok(read(target)?
        .and_then(|config| config.get("contexts").cloned())
        .and_then(|contexts| contexts.as_array().cloned())
        .is_some_and(|list| {
            list.iter()
                .any(|entry| entry.get("name").and_then(Value::as_str) == Some(context))
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADMIN: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: mini\n  cluster:\n    server: http://127.0.0.1:6443\nusers:\n- name: admin\n  user: {}\ncontexts:\n- name: mini\n  context:\n    cluster: mini\n    user: admin\ncurrent-context: mini\n";

    #[test]
    fn merge_adds_named_entries_keeps_others_and_remove_takes_only_ours() {
        let dir = tempfile::tempdir().unwrap();
        let admin = dir.path().join("admin.kubeconfig");
        std::fs::write(&admin, ADMIN).unwrap();
        let target = dir.path().join("kube/config");
        std::fs::write(dir.path().join("other"), "").unwrap();
        merge(&admin, &target, "minicluster-a").unwrap();
        merge(&admin, &target, "minicluster-b").unwrap();
        merge(&admin, &target, "minicluster-a").unwrap();
        let config = read(&target).unwrap().unwrap();
        assert_eq!(config["current-context"], "minicluster-a");
        assert_eq!(config["clusters"].as_array().unwrap().len(), 2);
        assert_eq!(
            config.pointer("/clusters/1/cluster/server").unwrap(),
            "http://127.0.0.1:6443"
        );
        assert!(has_context(&target, "minicluster-b").unwrap());

        // kube-rs reads what we wrote.
        let parsed = kube::config::Kubeconfig::read_from(&target).unwrap();
        assert_eq!(parsed.contexts.len(), 2);

        remove(&target, "minicluster-a").unwrap();
        let config = read(&target).unwrap().unwrap();
        assert_eq!(config["current-context"], "");
        assert!(!has_context(&target, "minicluster-a").unwrap());
        assert!(has_context(&target, "minicluster-b").unwrap());
        assert_eq!(config["users"].as_array().unwrap().len(), 1);
        remove(&dir.path().join("absent"), "minicluster-a").unwrap();
    }
}
