//! Writes an admin kubeconfig pointing at this apiserver (`--write-kubeconfig`).

use std::path::Path;

/// The kubeconfig YAML for a server URL, with one cluster, user and context named `name`.
pub fn render(server_url: &str, name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: {server_url}\nusers:\n- name: {name}-admin\n  user: {{}}\ncontexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {name}-admin\ncurrent-context: {name}\npreferences: {{}}\n"
    )
}

/// Writes the kubeconfig atomically (temp file then rename), creating parent directories.
pub fn write(path: &Path, server_url: &str, name: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, render(server_url, name))?;
    std::fs::rename(&tmp, path)
}
