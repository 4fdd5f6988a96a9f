//! Request parsing: resource paths, query parameters, content negotiation and body decoding.

use std::collections::HashMap;

use api::{ResourceInfo, Subresource};
use http::HeaderMap;
use serde_json::Value;

use crate::error::ApiError;

/// Largest request body accepted, as Kubernetes (3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// What a resource path names.
#[derive(Debug, Clone)]
pub struct ResourcePath {
    pub resource: &'static ResourceInfo,
    /// The namespace of a namespaced request; None for all namespaces or cluster scope.
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// True for the legacy `/watch/` path form.
    pub legacy_watch: bool,
}

/// Parses `/api/v1/...` and `/apis/{group}/{version}/...` paths below the group-version.
pub fn parse_resource_path(
    group: &str,
    version: &str,
    rest: &[&str],
) -> Result<ResourcePath, ApiError> {
    let mut segs: Vec<&str> = rest.to_vec();
    let mut legacy_watch = false;
    if segs.first() == Some(&"watch") {
        legacy_watch = true;
        segs.remove(0);
    }
    let find = |plural: &str| api::registry::find(group, version, plural);
    // namespaces/{ns}/{plural}/...
    if segs.len() >= 3 && segs[0] == "namespaces" {
        if let Some(r) = find(segs[2]).filter(|r| r.namespaced()) {
            if segs.len() > 5 {
                return Err(ApiError::not_found_path());
            }
            return Ok(ResourcePath {
                resource: r,
                namespace: Some(segs[1].to_string()),
                name: segs.get(3).map(|s| s.to_string()),
                subresource: segs.get(4).map(|s| s.to_string()),
                legacy_watch,
            });
        }
    }
    let Some(first) = segs.first() else {
        return Err(ApiError::not_found_path());
    };
    let Some(r) = find(first) else {
        return Err(ApiError::not_found_path());
    };
    if segs.len() > 3 {
        return Err(ApiError::not_found_path());
    }
    if r.namespaced() && segs.len() > 1 {
        // A namespaced resource addressed without its namespace.
        return Err(ApiError::not_found_path());
    }
    Ok(ResourcePath {
        resource: r,
        namespace: None,
        name: segs.get(1).map(|s| s.to_string()),
        subresource: segs.get(2).map(|s| s.to_string()),
        legacy_watch,
    })
}

impl ResourcePath {
    /// The subresource, checked against those the resource has.
    pub fn subresource_kind(&self) -> Result<Option<Subresource>, ApiError> {
        match &self.subresource {
            None => Ok(None),
            Some(s) if self.resource.kind == "Namespace" && s == "finalize" => {
                Ok(Some(Subresource::Status))
            }
            Some(s) => match Subresource::from_name(s) {
                Some(sub) if self.resource.has_subresource(sub) => Ok(Some(sub)),
                _ => Err(ApiError::not_found_path()),
            },
        }
    }
}

/// Decoded query parameters.
#[derive(Debug, Clone, Default)]
pub struct Query {
    params: HashMap<String, String>,
    /// Every pair in order, repeated keys included (exec's `command`).
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw.map(form_urlencoded_pairs).unwrap_or_default();
        let params = pairs.iter().cloned().collect::<HashMap<String, String>>();
        Query { params, pairs }
    }

    /// Sets a parameter.
    pub fn set(&mut self, key: &str, value: &str) {
        self.params.insert(key.to_string(), value.to_string());
    }

    /// Every value of a repeated parameter, in order.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Every pair in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    /// A boolean parameter, parsed as Go's strconv.ParseBool (`1`, `t`, `T`, `true`, `TRUE`,
    /// `True`; the Python client sends `True`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(
            self.get(key),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True")
        )
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid value {v:?} for query parameter {key}"))
            }),
        }
    }

    /// `dryRun=All` (the only value Kubernetes accepts).
    pub fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "Invalid dry run value: {other:?}; supported values: \"All\""
            ))),
        }
    }
}

fn form_urlencoded_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How the client wants objects rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendering {
    /// The objects themselves.
    Object,
    /// A `meta.k8s.io/v1` Table, its rows carrying what `includeObject` asks.
    Table(IncludeObject),
    /// `PartialObjectMetadata` / `PartialObjectMetadataList`.
    Metadata,
}

pub use api::table::IncludeObject;

/// Picks the rendering from the Accept header (first acceptable entry wins) and, for Tables,
/// the `includeObject` query parameter (default Metadata, as Kubernetes).
pub fn rendering(headers: &HeaderMap, query: &Query) -> Result<Rendering, ApiError> {
    let include = IncludeObject::parse(query.get("includeObject").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let Some(accept) = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(Rendering::Object);
    };
    let mut saw_unsupported = false;
    for entry in accept.split(',') {
        let mut parts = entry.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        let mut as_ = None;
        let mut g = None;
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                match k {
                    "as" => as_ = Some(v),
                    "g" => g = Some(v),
                    _ => {}
                }
            }
        }
        if !matches!(media, "application/json" | "*/*" | "application/*" | "") {
            saw_unsupported = true;
            continue;
        }
        match (as_, g) {
            (None, _) => return Ok(Rendering::Object),
            (Some("Table"), Some("meta.k8s.io")) => return Ok(Rendering::Table(include)),
            (Some("PartialObjectMetadata"), Some("meta.k8s.io"))
            | (Some("PartialObjectMetadataList"), Some("meta.k8s.io")) => {
                return Ok(Rendering::Metadata)
            }
            _ => saw_unsupported = true,
        }
    }
    if saw_unsupported {
        return Err(ApiError::not_acceptable(
            "only the following media types are accepted: application/json, application/yaml",
        ));
    }
    Ok(Rendering::Object)
}

/// Decodes a request body as JSON or YAML according to its Content-Type.
pub fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if body.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    match media {
        "application/json" | "" | "*/*" => serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!(
                "couldn't get version/kind; json parse error: {e}"
            ))
        }),
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request("the YAML body is not valid UTF-8"))?;
            serde_saphyr::from_str::<Value>(text)
                .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))
        }
        "application/vnd.kubernetes.protobuf" => crate::protobuf::decode(body).map_err(|e| match e {
            crate::protobuf::ProtobufError::Unsupported(_) => {
                ApiError::unsupported_media_type(e.to_string())
            }
            other => ApiError::bad_request(other.to_string()),
        }),
        other => Err(ApiError::unsupported_media_type(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {other})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_and_cluster_paths() {
        let p =
            parse_resource_path("", "v1", &["namespaces", "ns1", "pods", "web", "status"]).unwrap();
        assert_eq!(p.resource.plural, "pods");
        assert_eq!(p.namespace.as_deref(), Some("ns1"));
        assert_eq!(p.name.as_deref(), Some("web"));
        assert_eq!(p.subresource.as_deref(), Some("status"));

        let p = parse_resource_path("", "v1", &["namespaces", "ns1"]).unwrap();
        assert_eq!(p.resource.plural, "namespaces");
        assert_eq!(p.name.as_deref(), Some("ns1"));

        let p = parse_resource_path("", "v1", &["namespaces", "ns1", "finalize"]).unwrap();
        assert_eq!(p.subresource.as_deref(), Some("finalize"));

        let p = parse_resource_path("", "v1", &["pods"]).unwrap();
        assert!(p.namespace.is_none() && p.name.is_none());

        let p = parse_resource_path("apps", "v1", &["watch", "namespaces", "a", "deployments"])
            .unwrap();
        assert!(p.legacy_watch);
        assert!(parse_resource_path("", "v1", &["pods", "x"]).is_err());
        assert!(parse_resource_path("", "v1", &["nothing"]).is_err());
    }

    #[test]
    fn queries_decode_percent_escapes() {
        let q = Query::parse(Some("labelSelector=app%3Dweb%2Ctier+in+(a)&watch=true"));
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert!(q.flag("watch"));
    }

    #[test]
    fn accept_header_picks_table() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::ACCEPT,
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            rendering(&h, &Query::default()).unwrap(),
            Rendering::Table(IncludeObject::Metadata)
        );
        h.insert(
            http::header::ACCEPT,
            "application/vnd.kubernetes.protobuf, application/json"
                .parse()
                .unwrap(),
        );
        assert_eq!(rendering(&h, &Query::default()).unwrap(), Rendering::Object);
    }
}
