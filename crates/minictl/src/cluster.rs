//! The connection to the API server: kubeconfig loading like kubectl's (KUBECONFIG list merged,
//! --kubeconfig, --context, the context's namespace), discovery of the served resources and the
//! raw JSON requests every verb is built on.

use std::path::PathBuf;

use http::Request;
use serde_json::Value;

use crate::error::{Error, Result};

/// Where to connect: the global flags of minictl.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespace: Option<String>,
    pub server: Option<String>,
}

/// One served resource type, from discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub verbs: Vec<String>,
    /// Categories such as `all` (what `get all` expands to).
    pub categories: Vec<String>,
}

impl ResourceType {
    /// `group/version` or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, or `pods`: the qualified plural servers use in messages.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `deployment.apps`, or `pod`: the prefix of `-o name` and of verb messages.
    pub fn qualified_kind(&self) -> String {
        let kind = self.kind.to_lowercase();
        if self.group.is_empty() {
            kind
        } else {
            format!("{kind}.{}", self.group)
        }
    }

    /// The collection path, namespaced when the type is and a namespace is given.
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace {
            Some(ns) if self.namespaced => format!("{base}/namespaces/{ns}/{}", self.plural),
            _ => format!("{base}/{}", self.plural),
        }
    }

    /// The path of one object.
    pub fn object_path(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}/{name}", self.collection_path(namespace))
    }

    /// True when `word` names this type (plural, singular, short name or kind, optionally
    /// qualified by its group: `deployments.apps`, `deploy`, `Deployment`).
    pub fn is_named(&self, word: &str) -> bool {
        let (base, group) = match word.split_once('.') {
            Some((b, g)) => (b, Some(g)),
            None => (word, None),
        };
        if let Some(g) = group {
            if g != self.group && g != format!("{}.{}", self.version, self.group) {
                return false;
            }
        }
        let lower = base.to_lowercase();
        lower == self.plural
            || lower == self.singular
            || lower == self.kind.to_lowercase()
            || self.short_names.contains(&lower)
    }
}

/// A connected client with its default namespace and the discovered resources.
pub struct Cluster {
    pub client: kube::Client,
    pub namespace: String,
    pub server: String,
    resources: tokio::sync::OnceCell<Vec<ResourceType>>,
}

/// Percent-encodes a query value.
pub fn encode_query(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl Cluster {
    /// Connects as kubectl would with these flags.
    pub async fn connect(opts: &ConnectOptions) -> Result<Cluster> {
        let bad = |path: &str, e: String| Error::Kubeconfig {
            path: path.to_string(),
            message: e,
        };
        let kube_opts = kube::config::KubeConfigOptions {
            context: opts.context.clone(),
            ..Default::default()
        };
        let mut config = if let Some(path) = &opts.kubeconfig {
            let shown = path.display().to_string();
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| bad(&shown, e.to_string()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube_opts)
                .await
                .map_err(|e| bad(&shown, e.to_string()))?
        } else if let Some(server) = &opts.server {
            kube::Config::new(server.parse().map_err(|e| bad(server, format!("{e}")))?)
        } else {
            match kube::config::Kubeconfig::from_env()
                .map_err(|e| bad("$KUBECONFIG", e.to_string()))?
            {
                Some(kc) => kube::Config::from_custom_kubeconfig(kc, &kube_opts)
                    .await
                    .map_err(|e| bad("$KUBECONFIG", e.to_string()))?,
                None => {
                    let home = std::env::var("HOME").unwrap_or_default();
                    let path = format!("{home}/.kube/config");
                    let kc = kube::config::Kubeconfig::read_from(&path)
                        .map_err(|e| bad(&path, e.to_string()))?;
                    kube::Config::from_custom_kubeconfig(kc, &kube_opts)
                        .await
                        .map_err(|e| bad(&path, e.to_string()))?
                }
            }
        };
        if let Some(server) = &opts.server {
            config.cluster_url = server.parse().map_err(|e| bad(server, format!("{e}")))?;
        }
        if let Some(ns) = &opts.namespace {
            config.default_namespace = ns.clone();
        }
        let server = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string();
        let namespace = config.default_namespace.clone();
        let client = kube::Client::try_from(config).map_err(|e| Error::Transport(e.to_string()))?;
        Ok(Cluster {
            client,
            namespace,
            server,
            resources: tokio::sync::OnceCell::new(),
        })
    }

    /// A raw request returning the body as JSON.
    pub async fn request(
        &self,
        method: http::Method,
        path: &str,
        content_type: Option<&str>,
        accept: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Value> {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(ct) = content_type {
            builder = builder.header(http::header::CONTENT_TYPE, ct);
        }
        if let Some(a) = accept {
            builder = builder.header(http::header::ACCEPT, a);
        }
        let bytes = match body {
            Some(v) => serde_json::to_vec(v).map_err(|e| Error::Transport(e.to_string()))?,
            None => Vec::new(),
        };
        let request = builder
            .body(bytes)
            .map_err(|e| Error::Transport(e.to_string()))?;
        let text = self.client.request_text(request).await?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .map_err(|e| Error::Transport(format!("bad answer of {path}: {e}")))
    }

    /// A raw request returning the body as text (logs).
    pub async fn request_text(&self, path: &str) -> Result<String> {
        let request = Request::builder()
            .uri(path)
            .body(Vec::new())
            .map_err(|e| Error::Transport(e.to_string()))?;
        Ok(self.client.request_text(request).await?)
    }

    /// GET as JSON.
    pub async fn get(&self, path: &str) -> Result<Value> {
        self.request(http::Method::GET, path, None, None, None)
            .await
    }

    /// POST a new object.
    pub async fn create(&self, path: &str, body: &Value) -> Result<Value> {
        self.request(
            http::Method::POST,
            path,
            Some("application/json"),
            None,
            Some(body),
        )
        .await
    }

    /// PUT a whole object.
    pub async fn replace(&self, path: &str, body: &Value) -> Result<Value> {
        self.request(
            http::Method::PUT,
            path,
            Some("application/json"),
            None,
            Some(body),
        )
        .await
    }

    /// PATCH with the given patch media type.
    pub async fn patch(&self, path: &str, content_type: &str, body: &Value) -> Result<Value> {
        self.request(
            http::Method::PATCH,
            path,
            Some(content_type),
            None,
            Some(body),
        )
        .await
    }

    /// DELETE with DeleteOptions.
    pub async fn delete(&self, path: &str, options: &Value) -> Result<Value> {
        self.request(
            http::Method::DELETE,
            path,
            Some("application/json"),
            None,
            Some(options),
        )
        .await
    }

    /// Every resource type the server serves (preferred versions), from /api and /apis.
    pub async fn resources(&self) -> Result<&[ResourceType]> {
        self.resources
            .get_or_try_init(|| async {
                let mut out = Vec::new();
                let core = self.get("/api/v1").await?;
                collect_resources(&core, "", "v1", &mut out);
                let groups = self.get("/apis").await?;
                for group in groups["groups"].as_array().cloned().unwrap_or_default() {
                    let name = group["name"].as_str().unwrap_or_default().to_string();
                    let version = group["preferredVersion"]["version"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    let list = self.get(&format!("/apis/{name}/{version}")).await?;
                    collect_resources(&list, &name, &version, &mut out);
                }
                Ok::<_, Error>(out)
            })
            .await
            .map(Vec::as_slice)
    }

    /// The resource type a word names (`deploy`, `pods`, `Service`, `deployments.apps`).
    pub async fn resolve(&self, word: &str) -> Result<ResourceType> {
        let all = self.resources().await?;
        // Exact plural first (as kubectl's RESTMapper), then the other names.
        all.iter()
            .find(|r| r.plural == word.to_lowercase())
            .or_else(|| all.iter().find(|r| r.is_named(word)))
            .cloned()
            .ok_or_else(|| Error::UnknownResource(word.to_string()))
    }

    /// The types a word names: one type, or every type of a category (`all`), in discovery
    /// order.
    pub async fn resolve_many(&self, word: &str) -> Result<Vec<ResourceType>> {
        match self.resolve(word).await {
            Ok(rt) => Ok(vec![rt]),
            Err(e) => {
                let members: Vec<ResourceType> = self
                    .resources()
                    .await?
                    .iter()
                    .filter(|r| r.categories.iter().any(|c| c == word))
                    .cloned()
                    .collect();
                if members.is_empty() {
                    Err(e)
                } else {
                    Ok(members)
                }
            }
        }
    }

    /// The resource type of a manifest's apiVersion and kind.
    pub async fn resolve_kind(&self, api_version: &str, kind: &str) -> Option<ResourceType> {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let all = self.resources().await.ok()?;
        all.iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
            .cloned()
    }
}

/// Adds the top-level resources of one APIResourceList.
fn collect_resources(list: &Value, group: &str, version: &str, out: &mut Vec<ResourceType>) {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    for r in list["resources"].as_array().cloned().unwrap_or_default() {
        let name = r["name"].as_str().unwrap_or_default();
        if name.contains('/') {
            continue;
        }
        let kind = r["kind"].as_str().unwrap_or_default().to_string();
        let singular = match r["singularName"].as_str() {
            Some(s) if !s.is_empty() => s.to_string(),
            _ => kind.to_lowercase(),
        };
        out.push(ResourceType {
            group: group.to_string(),
            version: version.to_string(),
            plural: name.to_string(),
            singular,
            kind,
            namespaced: r["namespaced"].as_bool().unwrap_or(false),
            short_names: strings(&r["shortNames"]),
            verbs: strings(&r["verbs"]),
            categories: strings(&r["categories"]),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployments() -> ResourceType {
        ResourceType {
            group: "apps".into(),
            version: "v1".into(),
            plural: "deployments".into(),
            singular: "deployment".into(),
            kind: "Deployment".into(),
            namespaced: true,
            short_names: vec!["deploy".into()],
            verbs: vec![],
            categories: vec!["all".into()],
        }
    }

    #[test]
    fn names_of_a_type() {
        let d = deployments();
        for word in [
            "deploy",
            "deployments",
            "deployment",
            "Deployment",
            "deployments.apps",
            "deploy.apps",
        ] {
            assert!(d.is_named(word), "{word}");
        }
        assert!(!d.is_named("deployments.extensions"));
        assert!(!d.is_named("pods"));
    }

    #[test]
    fn paths_of_a_type() {
        let d = deployments();
        assert_eq!(
            d.object_path(Some("ns"), "web"),
            "/apis/apps/v1/namespaces/ns/deployments/web"
        );
        assert_eq!(d.collection_path(None), "/apis/apps/v1/deployments");
        assert_eq!(d.qualified_kind(), "deployment.apps");
    }

    #[test]
    fn query_encoding() {
        assert_eq!(
            encode_query("app=web,tier in (a)"),
            "app%3Dweb%2Ctier%20in%20%28a%29"
        );
    }
}
