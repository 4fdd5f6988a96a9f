//! The add-ons `cluster up` deploys and checks: the DNS add-on (deploy/dns.yaml, embedded at
//! build time) created through the API like `kubectl create`, and a DNS query for
//! `kubernetes.default.svc.cluster.local` sent to the kube-dns ClusterIP from inside a node's
//! network namespace.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::pinned_kind;
use kube::Client;

/// The DNS add-on manifest (Deployment coredns + Service kube-dns 10.96.0.10 in kube-system).
pub const DNS_MANIFEST: &str = include_str!("../../../deploy/dns.yaml");
/// The kube-dns Service's ClusterIP.
pub const DNS_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
/// The name whose answer proves DNS works end to end.
pub const PROBE_NAME: &str = "kubernetes.default.svc.cluster.local.";

/// Errors deploying or probing an add-on.
#[derive(Debug, thiserror::Error)]
pub enum AddonError {
    #[error("parse add-on manifest: {0}")]
    Manifest(String),
    #[error("add-on object {kind} {name} has no apiVersion or kind")]
    NoKind { kind: String, name: String },
    #[error("create {kind} {name}: {source}")]
    Create {
        kind: String,
        name: String,
        source: kube::Error,
    },
    #[error("dns query from {netns}: {message}")]
    Query { netns: String, message: String },
}

/// Creates every object of `manifest` (multi-document YAML); objects that exist are left alone.
pub async fn apply_manifest(client: &Client, manifest: &str) -> Result<usize, AddonError> {
    let documents: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(manifest).map_err(|e| AddonError::Manifest(e.to_string()))?;
    apply_objects(client, documents).await
}

/// Creates every object (as `kubectl create`); objects that exist are left alone.
pub async fn apply_objects(
    client: &Client,
    documents: Vec<serde_json::Value>,
) -> Result<usize, AddonError> {
    let mut created = 0;
    for document in documents.into_iter().filter(|d| !d.is_null()) {
        let object: DynamicObject =
            serde_json::from_value(document).map_err(|e| AddonError::Manifest(e.to_string()))?;
        let name = object.metadata.name.clone().unwrap_or_default();
        let Some(types) = object.types.clone() else {
            return Err(AddonError::NoKind {
                kind: String::new(),
                name,
            });
        };
        let gvk = GroupVersionKind::try_from(&types).map_err(|_| AddonError::NoKind {
            kind: types.kind.clone(),
            name: name.clone(),
        })?;
        let create_error = |source| AddonError::Create {
            kind: types.kind.clone(),
            name: name.clone(),
            source,
        };
        let (resource, capabilities) = pinned_kind(client, &gvk).await.map_err(create_error)?;
        let api: Api<DynamicObject> = match capabilities.scope {
            kube::discovery::Scope::Namespaced => Api::namespaced_with(
                client.clone(),
                object.metadata.namespace.as_deref().unwrap_or("default"),
                &resource,
            ),
            kube::discovery::Scope::Cluster => Api::all_with(client.clone(), &resource),
        };
        match api.create(&PostParams::default(), &object).await {
            Ok(_) => created += 1,
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(err) => return Err(create_error(err)),
        }
    }
    Ok(created)
}

/// Asks `server` for the A record of [`PROBE_NAME`] from inside the network namespace at
/// `netns` (a dedicated thread enters it); Ok(addresses) when it answered with any.
pub fn query_dns(netns: PathBuf, server: Ipv4Addr) -> Result<Vec<Ipv4Addr>, AddonError> {
    let label = netns.display().to_string();
    let query_error = |message: String| AddonError::Query {
        netns: label.clone(),
        message,
    };
    let name = Name::from_ascii(PROBE_NAME).map_err(|e| query_error(e.to_string()))?;
    let mut request = Message::query();
    request.metadata.recursion_desired = true;
    request.add_query(Query::query(name, RecordType::A));
    let bytes = request.to_vec().map_err(|e| query_error(e.to_string()))?;
    let reply = std::thread::spawn(move || -> io::Result<Vec<u8>> {
        network::lab::enter_netns(&netns)?;
        let socket = UdpSocket::bind("0.0.0.0:0")?;
        socket.set_read_timeout(Some(Duration::from_secs(2)))?;
        socket.send_to(&bytes, SocketAddr::from((server, 53)))?;
        let mut buf = vec![0u8; 4096];
        let (n, _) = socket.recv_from(&mut buf)?;
        buf.truncate(n);
        Ok(buf)
    })
    .join()
    .map_err(|_| query_error("query thread panicked".into()))?
    .map_err(|e| query_error(e.to_string()))?;
    let response = Message::from_vec(&reply).map_err(|e| query_error(e.to_string()))?;
    let addresses: Vec<Ipv4Addr> = response
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    if addresses.is_empty() {
        return Err(query_error(format!(
            "no A record in the answer ({:?})",
            response.metadata.response_code
        )));
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_dns_manifest_has_the_kube_dns_service_and_deployment() {
        let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(DNS_MANIFEST).unwrap();
        let kinds: Vec<(String, String)> = documents
            .iter()
            .map(|d| {
                (
                    d["kind"].as_str().unwrap_or_default().to_string(),
                    d["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
        assert!(
            kinds.contains(&("Deployment".into(), "coredns".into())),
            "{kinds:?}"
        );
        assert!(
            kinds.contains(&("Service".into(), "kube-dns".into())),
            "{kinds:?}"
        );
        let service = documents.iter().find(|d| d["kind"] == "Service").unwrap();
        assert_eq!(service["spec"]["clusterIP"], DNS_SERVICE_IP.to_string());
    }
}
