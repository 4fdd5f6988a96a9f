//! The PodSecurity admission plugin over the `podsecurity` crate: pods are enforced, audited
//! and warned by their namespace's `pod-security.kubernetes.io/*` labels; workloads with pod
//! templates are audited and warned; namespace label changes are validated and warned about
//! the existing pods. The cluster it asks is read before the (synchronous) decision.

use podsecurity::admission::{self as psa, Admission, Cluster, Denial};
use serde_json::{Map, Value};

use super::request::{Operation, Request};
use crate::error::ApiError;
use crate::objects;
use crate::server::ApiServer;

/// What the decision may ask of the cluster, read beforehand.
struct Snapshot {
    namespace: String,
    labels: Result<Map<String, Value>, String>,
    pods: Vec<Value>,
}

impl Cluster for Snapshot {
    fn namespace_labels(&self, namespace: &str) -> Result<Map<String, Value>, String> {
        if namespace != self.namespace {
            return Err(format!("namespaces \"{namespace}\" not found"));
        }
        self.labels.clone()
    }

    fn list_pods(&self, namespace: &str) -> Result<Vec<Value>, String> {
        if namespace != self.namespace {
            return Ok(Vec::new());
        }
        Ok(self.pods.clone())
    }
}

fn relevant(group: &str, plural: &str) -> bool {
    matches!((group, plural), ("", "pods") | ("", "namespaces")) || psa::has_pod_spec(group, plural)
}

/// The plugin on one create or update; the warnings for the client.
pub async fn admit(
    srv: &ApiServer,
    req: &Request<'_>,
    obj: &Value,
) -> Result<Vec<String>, ApiError> {
    let (group, plural) = (req.resource.group, req.resource.plural);
    let operation = match req.operation {
        Operation::Create => psa::Operation::Create,
        Operation::Update => psa::Operation::Update,
        Operation::Delete => return Ok(Vec::new()),
    };
    if !relevant(group, plural) {
        return Ok(Vec::new());
    }
    let is_namespace = (group, plural) == ("", "namespaces");
    let name = objects::name(obj).to_string();
    let namespace = if is_namespace {
        name.clone()
    } else {
        req.namespace.to_string()
    };
    let labels = if is_namespace {
        Ok(Map::new())
    } else {
        let nsr = api::registry::find("", "v1", "namespaces").expect("namespaces registered");
        match crate::handlers::cached_or_stored(srv, nsr, &nsr.key(None, &namespace)).await? {
            Some(ns) => Ok(ns
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()),
            None => Err(format!("namespaces \"{namespace}\" not found")),
        }
    };
    let pods = if is_namespace && operation == psa::Operation::Update {
        namespace_pods(srv, &namespace).await
    } else {
        Vec::new()
    };
    let cluster = Snapshot {
        namespace: namespace.clone(),
        labels,
        pods,
    };
    let attrs = psa::Attributes {
        operation,
        group,
        resource: plural,
        subresource: req.subresource,
        namespace: &namespace,
        name: &name,
        username: &req.user.name,
        object: obj,
        old_object: req.old,
    };
    let response = Admission::new(srv.config.pod_security.clone()).validate(&attrs, &cluster);
    match response.denial {
        None => Ok(response.warnings),
        Some(denial) => {
            let message = denial.message(&attrs);
            Err(match denial {
                Denial::Forbidden(err) => ApiError::forbidden(req.resource, &name, &err),
                Denial::Invalid(_) => ApiError::new(422, "Invalid", message),
                Denial::BadRequest(_) => ApiError::bad_request(message),
                Denial::InternalError(_) => ApiError::internal(message),
            })
        }
    }
}

/// The pods of a namespace from the watch cache.
async fn namespace_pods(srv: &ApiServer, namespace: &str) -> Vec<Value> {
    let pods = api::registry::find("", "v1", "pods").expect("pods registered");
    let revision = srv.cache.revision();
    srv.cache
        .resource(pods)
        .snapshot(&pods.namespace_prefix(namespace), revision)
        .await
        .objects
        .into_iter()
        .map(|p| (*p).clone())
        .collect()
}
